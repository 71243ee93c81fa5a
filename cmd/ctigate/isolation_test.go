package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/go-json-experiment/json"
	"go.yaml.in/yaml/v3"

	"github.com/ctigate/ctigate/auth"
	"github.com/ctigate/ctigate/custody"
	"github.com/ctigate/ctigate/stix"
)

// The findings of the producer-isolation review, each as a test. They use
// configurations derived in code from the demo topology
// (configs/ctigate.yaml): a second CSIRT, CERT-B (user cert-b, role
// producer), added the way the demo suggests.

const (
	certAInboundID = "24f70a31-7be5-4fdd-8353-9784877646c1"
	certBInboundID = "5b6b0f0e-3c2a-4c38-9f0e-7a1d2c3b4e5f"
	certBInbound   = "/exchange/collections/" + certBInboundID + "/"
)

// demoVariant reads the demo configuration as YAML, lets edit change it,
// and writes it to a file of the test's.
func demoVariant(t *testing.T, edit func(cfg map[string]any)) string {
	t.Helper()
	b, err := os.ReadFile(demoConfig)
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	if err := yaml.Unmarshal(b, &cfg); err != nil {
		t.Fatal(err)
	}
	edit(cfg)
	out, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "ctigate.yaml")
	if err := os.WriteFile(path, out, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func cfgList(m map[string]any, key string) []any { l, _ := m[key].([]any); return l }

// cfgCollection returns the demo collection with id, or nil.
func cfgCollection(cfg map[string]any, id string) map[string]any {
	for _, r := range cfgList(cfg, "api_roots") {
		for _, c := range cfgList(r.(map[string]any), "collections") {
			if c := c.(map[string]any); c["id"] == id {
				return c
			}
		}
	}
	return nil
}

// withCertB adds user cert-b (CERT-B, producer; password cert-b-demo) when
// the demo lacks it.
func withCertB(t *testing.T, cfg map[string]any) {
	t.Helper()
	for _, u := range cfgList(cfg, "users") {
		if u.(map[string]any)["name"] == "cert-b" {
			return
		}
	}
	h, err := auth.HashPassword("cert-b-demo")
	if err != nil {
		t.Fatal(err)
	}
	cfg["users"] = append(cfgList(cfg, "users"), map[string]any{
		"name": "cert-b", "organisation": "CERT-B", "roles": []any{"producer"}, "password_hash": h,
	})
}

// sharedInbound is the demo as the review found it: one inbound collection
// that every producer writes and reads (role:producer), with CERT-B added.
func sharedInbound(t *testing.T) string {
	return demoVariant(t, func(cfg map[string]any) {
		withCertB(t, cfg)
		c := cfgCollection(cfg, certAInboundID)
		c["writers"] = []any{"role:producer"}
		c["readers"] = []any{"role:producer"}
	})
}

// separateInbounds gives CERT-B an inbound collection of its own, read by
// both routes, names each inbound's users one by one, and lets the analyst
// role read the published collections (as the demo once did).
func separateInbounds(t *testing.T) string {
	return demoVariant(t, func(cfg map[string]any) {
		withCertB(t, cfg)
		a := cfgCollection(cfg, certAInboundID)
		a["writers"], a["readers"] = []any{"cert-a"}, []any{"cert-a", "analyst"}
		if b := cfgCollection(cfg, certBInboundID); b != nil {
			b["writers"], b["readers"] = []any{"cert-b"}, []any{"cert-b"}
		} else {
			root := cfgList(cfg, "api_roots")[0].(map[string]any)
			root["collections"] = append(cfgList(root, "collections"), map[string]any{
				"id": certBInboundID, "alias": "cert-b-inbound", "title": "CERT-B inbound",
				"writers": []any{"cert-b"}, "readers": []any{"cert-b"},
			})
		}
		for _, r := range cfgList(cfg, "routes") {
			r := r.(map[string]any)
			if !slices.Contains(cfgList(r, "sources"), any(certBInboundID)) {
				r["sources"] = append(cfgList(r, "sources"), certBInboundID)
			}
			col := cfgCollection(cfg, r["id"].(string))
			if !slices.Contains(cfgList(col, "readers"), any("role:analyst")) {
				col["readers"] = append(cfgList(col, "readers"), "role:analyst")
			}
		}
	})
}

// tryServe starts serve with config; it returns nil and serve's error when
// serve refuses to start.
func tryServe(t *testing.T, config string) (*gatewayProc, error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	errc := make(chan error, 1)
	go func() {
		err := run(ctx, []string{"serve", "--config", config, "--data", t.TempDir(), "--listen", "127.0.0.1:0"},
			opsPort0(func(string) string { return "" }), nil, pw, io.Discard)
		pw.CloseWithError(fmt.Errorf("serve returned: %v", err))
		errc <- err
	}()
	p := &gatewayProc{cancel: cancel, done: make(chan error, 1)}
	buf, _ := io.ReadAll(io.LimitReader(readUntil(pr, "serving TAXII 2.1 at "), 1<<20))
	if _, u, ok := strings.Cut(string(buf), "serving TAXII 2.1 at "); ok {
		p.base = strings.TrimSuffix(strings.TrimSpace(strings.SplitN(u, "\n", 2)[0]), "/taxii2/")
		go func() { _, _ = io.Copy(io.Discard, pr); p.done <- <-errc }()
		t.Cleanup(func() { p.stop(t) })
		return p, nil
	}
	cancel()
	return nil, <-errc
}

// readUntil returns a reader of r that ends after the line holding marker.
func readUntil(r io.Reader, marker string) io.Reader {
	pr, pw := io.Pipe()
	go func() {
		var line []byte
		b := make([]byte, 1)
		for {
			if _, err := r.Read(b); err != nil {
				pw.CloseWithError(err)
				return
			}
			_, _ = pw.Write(b)
			line = append(line, b[0])
			if b[0] == '\n' {
				if strings.Contains(string(line), marker) {
					pw.Close()
					return
				}
				line = line[:0]
			}
		}
	}()
	return pr
}

func isoIndicator(id, value, marking string) string {
	return `{"type":"indicator","spec_version":"2.1","id":"` + id + `","created":"2026-01-01T00:00:00.000Z","modified":"2026-01-01T00:00:00.000Z",` +
		`"pattern":"[domain-name:value = '` + value + `']","pattern_type":"stix","valid_from":"2026-01-01T00:00:00Z","object_marking_refs":["` + marking + `"]}`
}

// An SCO with a deterministic id: its id is a UUIDv5 of the address, so
// "already stored" would tell CERT-B that CERT-A reported it.
const (
	isoSCO   = `{"type":"ipv4-addr","spec_version":"2.1","id":"ipv4-addr--ff26c055-6336-5bc5-b98d-13d6226742dd","value":"198.51.100.3"}`
	isoSCOID = "ipv4-addr--ff26c055-6336-5bc5-b98d-13d6226742dd"
	isoRedA  = "indicator--a0a0a0a0-0000-4000-8000-000000000001"
	isoRedAV = "red-only-cert-a.example"
)

// TestIsolationSharedInbound: findings 1, 2 and 4. With one inbound
// collection written by two organisations, CERT-B read CERT-A's TLP:RED,
// deleted CERT-A's objects, and learnt from receipts what CERT-A had
// submitted. The gateway now refuses to start with a collection several
// organisations write to (the refusal names the key and the
// organisations); if it starts, none of the three may happen.
func TestIsolationSharedInbound(t *testing.T) {
	gw, err := tryServe(t, sharedInbound(t))
	if err != nil {
		for _, want := range []string{"collections[0].writers", "CERT-A", "CERT-B"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("refusal %q does not name %q", err, want)
			}
		}
		return
	}
	client := &http.Client{Timeout: 10 * time.Second}
	body := `{"objects":[` + isoIndicator(isoRedA, isoRedAV, stix.TLP2Red) + `,` + isoSCO + `]}`
	if res, b, err := request(t, client, "POST", gw.base+inboundPath+"objects/", "cert-a", []byte(body)); err != nil || res.StatusCode != http.StatusAccepted {
		t.Fatalf("cert-a POST: %v %v %s", res, err, b)
	}
	for _, p := range []string{"objects/", "manifest/", "objects/" + isoRedA + "/", "objects/" + isoRedA + "/versions/"} {
		_, b, err := request(t, client, "GET", gw.base+inboundPath+p, "cert-b", nil)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(b), isoRedA) || strings.Contains(string(b), isoRedAV) {
			t.Errorf("finding 1: cert-b reads CERT-A's TLP:RED through %s: %.200s", p, b)
		}
	}
	res, _, err := request(t, client, "DELETE", gw.base+inboundPath+"objects/"+isoRedA+"/", "cert-b", nil)
	if err != nil {
		t.Fatal(err)
	}
	_, b, _ := request(t, client, "GET", gw.base+inboundPath+"objects/"+isoRedA+"/", "cert-a", nil)
	if !strings.Contains(string(b), isoRedAV) {
		t.Errorf("finding 2: cert-b's DELETE (%d) removed CERT-A's object", res.StatusCode)
	}
	_, b, err = request(t, client, "POST", gw.base+inboundPath+"objects/", "cert-b", []byte(`{"objects":[`+isoSCO+`]}`))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"message":"added;`) || strings.Contains(string(b), "already stored") {
		t.Errorf("finding 4: cert-b's receipt for an address only CERT-A had submitted: %s", b)
	}
}

// TestIsolationAnalystScoped: finding 3. The published collections granted
// role:analyst, and search filtered only by that grant, so CERT-A's analyst
// read CERT-B's TLP:AMBER released to the police. A role grant now reaches
// only collections holding nothing but the reader's own organisation's
// objects; CERT-A's analyst still finds CERT-A's indicators.
func TestIsolationAnalystScoped(t *testing.T) {
	gw, err := tryServe(t, separateInbounds(t))
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Timeout: 10 * time.Second}
	const (
		aID, aValue = "indicator--a0a0a0a0-0000-4000-8000-000000000002", "green-cert-a.example"
		bID, bValue = "indicator--b0b0b0b0-0000-4000-8000-000000000002", "amber-cert-b.example"
	)
	for _, p := range []struct{ user, path, obj string }{
		{"cert-a", inboundPath, isoIndicator(aID, aValue, stix.TLP2Green)},
		{"cert-b", certBInbound, isoIndicator(bID, bValue, stix.TLP2Amber)},
	} {
		if res, b, err := request(t, client, "POST", gw.base+p.path+"objects/", p.user, []byte(`{"objects":[`+p.obj+`]}`)); err != nil || res.StatusCode != http.StatusAccepted {
			t.Fatalf("%s POST: %v %v %s", p.user, res, err, b)
		}
	}
	waitFor(t, "police see both CSIRTs' indicators", 10*time.Second, func() bool {
		_, b, _ := request(t, client, "GET", gw.base+lawEnforcementPath+"objects/", "police", nil)
		return strings.Contains(string(b), aID) && strings.Contains(string(b), bID)
	})
	waitFor(t, "the search index holds CERT-A's indicator", 10*time.Second, func() bool {
		_, b, _ := request(t, client, "GET", gw.base+"/api/v1/search?value="+aValue, "analyst", nil)
		return strings.Contains(string(b), aID)
	})
	for _, p := range []string{
		"/api/v1/search?value=" + bValue,
		lawEnforcementPath + "objects/", lawEnforcementPath + "manifest/", lawEnforcementPath + "objects/" + bID + "/",
		judiciaryPath + "objects/", certBInbound + "objects/",
	} {
		_, b, err := request(t, client, "GET", gw.base+p, "analyst", nil)
		if err != nil {
			t.Fatal(err)
		}
		// (A search response repeats the value asked for.)
		if strings.Contains(string(b), bID) || (!strings.HasPrefix(p, "/api/") && strings.Contains(string(b), bValue)) {
			t.Errorf("finding 3: CERT-A's analyst reads CERT-B's indicator through %s: %.300s", p, b)
		}
	}
}

// TestIsolationAuditScoped: finding 5. The audit API returned every
// organisation's entries (ids and hashes; an SCO's id is a UUIDv5 of its
// value). CERT-A's auditor now sees CERT-A's entries and what was delivered
// to CERT-A, nothing about CERT-B's submissions.
func TestIsolationAuditScoped(t *testing.T) {
	gw, err := tryServe(t, separateInbounds(t))
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Timeout: 10 * time.Second}
	const (
		aID = "indicator--a0a0a0a0-0000-4000-8000-000000000003"
		bID = "indicator--b0b0b0b0-0000-4000-8000-000000000003"
	)
	if res, b, err := request(t, client, "POST", gw.base+inboundPath+"objects/", "cert-a",
		[]byte(`{"objects":[`+isoIndicator(aID, "a3.example", stix.TLP2Green)+`]}`)); err != nil || res.StatusCode != http.StatusAccepted {
		t.Fatalf("cert-a POST: %v %v %s", res, err, b)
	}
	if res, b, err := request(t, client, "POST", gw.base+certBInbound+"objects/", "cert-b",
		[]byte(`{"objects":[`+isoSCO+`,`+isoIndicator(bID, "b3.example", stix.TLP2Green)+`,{"type":"indicator","id":"indicator--bad"}]}`)); err != nil || res.StatusCode != http.StatusAccepted {
		t.Fatalf("cert-b POST: %v %v %s", res, err, b)
	}
	waitFor(t, "police see CERT-B's indicator", 10*time.Second, func() bool {
		_, b, _ := request(t, client, "GET", gw.base+lawEnforcementPath+"objects/", "police", nil)
		return strings.Contains(string(b), bID)
	})
	paths := []string{
		"/api/v1/audit/entries?limit=10000", "/api/v1/audit/export",
		"/api/v1/audit/entries?object=" + url.QueryEscape(isoSCOID),
		"/api/v1/audit/evidence/" + isoSCOID,
		"/api/v1/audit/evidence/indicator--bad",
		"/api/v1/audit/evidence/" + bID,
		"/api/v1/decisions?limit=1000",
		"/api/v1/decisions?object=" + bID,
	}
	sawOwn := false
	for _, p := range paths {
		_, b, err := request(t, client, "GET", gw.base+p, "auditor", nil)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(b), isoSCOID) || strings.Contains(string(b), bID) || strings.Contains(string(b), "indicator--bad") || strings.Contains(string(b), "CERT-B") {
			t.Errorf("finding 5: CERT-A's auditor sees CERT-B's submissions through %s: %.300s", p, b)
		}
		sawOwn = sawOwn || strings.Contains(string(b), aID)
	}
	if !sawOwn {
		t.Error("CERT-A's auditor does not see CERT-A's own entries")
	}
}

// TestTwoCSIRTsDemo: the demo topology end to end with both CSIRTs, as
// their tools would use it, with a restart between the two pushes. CERT-A
// and CERT-B push with `ctigate push`; each reads back only its own; the
// police read both CSIRTs' releases through their route (never TLP:RED),
// the prosecutor both CSIRTs' TLP:GREEN; CERT-A's analyst finds CERT-A's
// indicators (TLP:RED included: they are CERT-A's own) and none of
// CERT-B's; each CSIRT's inbound collection is invisible (404) to the
// other, which cannot push into it either.
func TestTwoCSIRTsDemo(t *testing.T) {
	data := t.TempDir()
	type obj struct{ id, value, tlp, marking string }
	csirts := []struct {
		user, alias, path string
		objs              []obj
	}{
		{"cert-a", "cert-a-inbound", inboundPath, []obj{
			{"indicator--a1a1a1a1-0000-4000-8000-000000000001", "green-a.example", "GREEN", stix.TLP2Green},
			{"indicator--a1a1a1a1-0000-4000-8000-000000000002", "amber-a.example", "AMBER", stix.TLP1Amber},
			{"indicator--a1a1a1a1-0000-4000-8000-000000000003", "red-a.example", "RED", stix.TLP2Red},
		}},
		{"cert-b", "cert-b-inbound", certBInbound, []obj{
			{"indicator--b1b1b1b1-0000-4000-8000-000000000001", "green-b.example", "GREEN", stix.TLP1Green},
			{"indicator--b1b1b1b1-0000-4000-8000-000000000002", "amber-b.example", "AMBER", stix.TLP2Amber},
			{"indicator--b1b1b1b1-0000-4000-8000-000000000003", "red-b.example", "RED", stix.TLP1Red},
		}},
	}
	client := &http.Client{Timeout: 10 * time.Second}
	var gw *gatewayProc
	for i, c := range csirts {
		// A restart between the two pushes: each gateway reads the same data.
		if gw != nil {
			gw.stop(t)
		}
		gw = startServe(t, nil, "--config", demoConfig, "--data", data, "--listen", "127.0.0.1:0")
		var lines []string
		for _, o := range c.objs {
			lines = append(lines, isoIndicator(o.id, o.value, o.marking))
		}
		env := map[string]string{"CTIGATE_PASSWORD": c.user + "-demo"}
		out, errs, err := ctl(context.Background(), env, strings.NewReader(strings.Join(lines, "\n")), nil,
			"push", "--server", gw.base, "--collection", c.alias, "--user", c.user, "-")
		if err != nil {
			t.Fatalf("%s push: %v\n%s%s", c.user, err, out, errs)
		}
		// The other CSIRT cannot push into this one's collection.
		other := csirts[1-i]
		if _, _, err := ctl(context.Background(), map[string]string{"CTIGATE_PASSWORD": other.user + "-demo"}, strings.NewReader(lines[0]), nil,
			"push", "--server", gw.base, "--collection", c.alias, "--user", other.user, "-"); err == nil {
			t.Errorf("%s pushed into %s", other.user, c.alias)
		}
	}
	get := func(user, path string) (int, string) {
		t.Helper()
		res, b, err := request(t, client, "GET", gw.base+path, user, nil)
		if err != nil {
			t.Fatal(err)
		}
		return res.StatusCode, string(b)
	}
	for i, c := range csirts {
		other := csirts[1-i]
		code, b := get(c.user, c.path+"objects/")
		for _, o := range c.objs {
			if !strings.Contains(b, o.id) {
				t.Errorf("%s does not read back its own %s (%s): %d %.200s", c.user, o.tlp, o.id, code, b)
			}
		}
		for _, o := range other.objs {
			if strings.Contains(b, o.id) || strings.Contains(b, o.value) {
				t.Errorf("%s reads %s's %s in its own collection", c.user, other.user, o.tlp)
			}
		}
		for _, p := range []string{other.path, other.path + "objects/", other.path + "manifest/", other.path + "objects/" + other.objs[2].id + "/"} {
			if code, b := get(c.user, p); code != http.StatusNotFound || strings.Contains(b, other.objs[2].id) {
				t.Errorf("%s GET %s: %d %s, want 404", c.user, p, code, b)
			}
		}
		if _, b := get(c.user, "/exchange/collections/"); strings.Contains(b, other.alias) {
			t.Errorf("%s's collections list %s: %s", c.user, other.alias, b)
		}
	}
	// The police read both CSIRTs' GREEN and AMBER, the prosecutor both
	// GREEN, neither any RED.
	for _, r := range []struct {
		user, path string
		levels     string
	}{{"police", lawEnforcementPath, "GREEN AMBER"}, {"prosecutor", judiciaryPath, "GREEN"}} {
		var b string
		waitFor(t, r.user+" see both CSIRTs' releases", 10*time.Second, func() bool {
			_, b = get(r.user, r.path+"objects/")
			for _, c := range csirts {
				for _, o := range c.objs {
					if strings.Contains(r.levels, o.tlp) && !strings.Contains(b, o.id) {
						return false
					}
				}
			}
			return true
		})
		for _, c := range csirts {
			for _, o := range c.objs {
				if !strings.Contains(r.levels, o.tlp) && (strings.Contains(b, o.id) || strings.Contains(b, o.value)) {
					t.Errorf("%s reads %s's %s indicator", r.user, c.user, o.tlp)
				}
			}
		}
	}
	for _, o := range csirts[0].objs {
		waitFor(t, "CERT-A's analyst finds "+o.value, 10*time.Second, func() bool {
			_, b := get("analyst", "/api/v1/search?value="+o.value)
			return strings.Contains(b, o.id)
		})
	}
	for _, o := range csirts[1].objs {
		if _, b := get("analyst", "/api/v1/search?value="+o.value); strings.Contains(b, o.id) {
			t.Errorf("CERT-A's analyst finds CERT-B's %s indicator: %s", o.tlp, b)
		}
	}
}

// TestReloadOnSIGHUP: the configuration is read again on SIGHUP and put
// in force at once for server and fan-out, through the one snapshot they
// read: a route widened re-evaluates its history under the new policy
// version; a reader removed loses access with the next request; the
// ledger records the configuration loaded. A configuration that does not
// load changes nothing.
func TestReloadOnSIGHUP(t *testing.T) {
	const reloadedID = "7e3f1a2b-9c4d-4e5f-8a6b-1c2d3e4f5a6b"
	path := demoVariant(t, func(cfg map[string]any) {})
	gw := startServe(t, nil, "--config", path, "--data", t.TempDir(), "--listen", "127.0.0.1:0")
	client := &http.Client{Timeout: 10 * time.Second}
	const id, value = "indicator--a2a2a2a2-0000-4000-8000-000000000001", "amber-reload.example"
	if res, b, err := request(t, client, "POST", gw.base+inboundPath+"objects/", "cert-a",
		[]byte(`{"objects":[`+isoIndicator(id, value, stix.TLP2Amber)+`]}`)); err != nil || res.StatusCode != http.StatusAccepted {
		t.Fatalf("POST: %v %v %s", res, err, b)
	}
	waitFor(t, "police read the AMBER indicator", 10*time.Second, func() bool {
		_, b, _ := request(t, client, "GET", gw.base+lawEnforcementPath+"objects/", "police", nil)
		return strings.Contains(string(b), id)
	})
	if _, b, _ := request(t, client, "GET", gw.base+judiciaryPath+"objects/", "prosecutor", nil); strings.Contains(string(b), id) {
		t.Fatal("the prosecutor reads AMBER under a GREEN ceiling")
	}
	loaded := func() int {
		_, b, _ := request(t, client, "GET", gw.base+"/api/v1/audit/entries?action=config-loaded", "auditor", nil)
		return strings.Count(string(b), `"action":"config-loaded"`)
	}
	if n := loaded(); n != 1 {
		t.Fatalf("%d config-loaded entries at start", n)
	}

	rewrite := func(edit func(cfg map[string]any)) {
		t.Helper()
		b, err := os.ReadFile(demoVariant(t, edit))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	rewrite(func(cfg map[string]any) {
		for _, r := range cfgList(cfg, "routes") {
			if r := r.(map[string]any); r["name"] == "judiciary" {
				r["ceiling"] = "TLP:AMBER"
			}
		}
		cfgCollection(cfg, "1dae5e88-4b59-4503-a9cf-2e649dd6544c")["readers"] = []any{"org:Prosecution Service"}
		root := cfgList(cfg, "api_roots")[0].(map[string]any)
		root["collections"] = append(cfgList(root, "collections"), map[string]any{
			"id": reloadedID, "alias": "cert-a-extra", "title": "CERT-A extra",
			"writers": []any{"role:producer@CERT-A"}, "readers": []any{"role:producer@CERT-A", "role:analyst@CERT-A"},
		})
	})
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the reload recorded", 10*time.Second, func() bool { return loaded() == 2 })
	// With it, what it changed in access: CERT-A's auditor reads what
	// CERT-A's users gained on the added collection.
	_, b, err := request(t, client, "GET", gw.base+"/api/v1/audit/entries?action=access-granted&collection="+reloadedID, "auditor", nil)
	if err != nil {
		t.Fatal(err)
	}
	var granted struct {
		Entries []custody.Entry `json:"entries"`
	}
	if err := json.Unmarshal(b, &granted); err != nil {
		t.Fatalf("%v: %s", err, b)
	}
	var gains []string
	for _, e := range granted.Entries {
		gains = append(gains, e.User+" "+e.Permission)
	}
	if want := []string{"analyst read", "cert-a read", "cert-a write"}; !slices.Equal(gains, want) {
		t.Errorf("access granted by the reload on the added collection: %v, want %v", gains, want)
	}
	waitFor(t, "the prosecutor reads the AMBER indicator under the widened route", 10*time.Second, func() bool {
		_, b, _ := request(t, client, "GET", gw.base+judiciaryPath+"objects/", "prosecutor", nil)
		return strings.Contains(string(b), id)
	})
	if res, b, _ := request(t, client, "GET", gw.base+lawEnforcementPath+"objects/", "police", nil); res.StatusCode != http.StatusNotFound || strings.Contains(string(b), id) {
		t.Errorf("police after being removed from the readers: %d %s", res.StatusCode, b)
	}
	if res, _, _ := request(t, client, "GET", gw.base+lawEnforcementPath+"objects/", "prosecutor", nil); res.StatusCode != http.StatusOK {
		t.Errorf("prosecutor, now a reader of law-enforcement: %d", res.StatusCode)
	}
	// A collection added by the reload takes objects, and the indexer
	// follows it: the analyst finds what was posted there.
	const extraID, extraValue = "indicator--a2a2a2a2-0000-4000-8000-000000000002", "extra-reload.example"
	if res, b, err := request(t, client, "POST", gw.base+"/exchange/collections/"+reloadedID+"/objects/", "cert-a",
		[]byte(`{"objects":[`+isoIndicator(extraID, extraValue, stix.TLP2Green)+`]}`)); err != nil || res.StatusCode != http.StatusAccepted {
		t.Fatalf("POST to the added collection: %v %v %s", res, err, b)
	}
	waitFor(t, "the analyst finds the indicator in the added collection", 10*time.Second, func() bool {
		_, b, _ := request(t, client, "GET", gw.base+"/api/v1/search?value="+extraValue, "analyst", nil)
		return strings.Contains(string(b), extraID)
	})

	// A configuration that does not load changes nothing.
	if err := os.WriteFile(path, []byte("listen: [broken\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond) // a reload that happened would be recorded by now
	if n := loaded(); n != 2 {
		t.Errorf("%d config-loaded entries after a broken configuration, want 2", n)
	}
	if res, _, _ := request(t, client, "GET", gw.base+judiciaryPath+"objects/", "prosecutor", nil); res.StatusCode != http.StatusOK {
		t.Errorf("after the broken reload: %d", res.StatusCode)
	}
}
