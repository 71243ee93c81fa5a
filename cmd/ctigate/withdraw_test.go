package main

import (
	"context"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
	goredis "github.com/redis/go-redis/v9"

	"github.com/ctigate/ctigate/internal/shared"
	"github.com/ctigate/ctigate/store/redis/redistest"
)

// consumersSearch is the demo with the police and the prosecutor also
// analysts (so they can search what they read).
func consumersSearch(t *testing.T) string {
	return demoVariant(t, func(cfg map[string]any) {
		for _, u := range cfgList(cfg, "users") {
			u := u.(map[string]any)
			if u["name"] == "police" || u["name"] == "prosecutor" {
				u["roles"] = []any{"consumer", "analyst"}
			}
		}
	})
}

const (
	tlpGreen = "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb"
	tlpRed   = "marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1"
)

// visible reports whether user reads id in the collection at path.
func visible(t *testing.T, client *http.Client, base, path, user, id string) bool {
	t.Helper()
	res, b, err := request(t, client, "GET", base+path+"objects/"+id+"/", user, nil)
	if err != nil {
		t.Fatal(err)
	}
	switch res.StatusCode {
	case http.StatusOK:
		return true
	case http.StatusNotFound:
		return false
	}
	t.Fatalf("GET %s as %s: %d %s", id, user, res.StatusCode, b)
	return false
}

// found reports whether user's search for value finds id.
func found(t *testing.T, client *http.Client, base, user, value, id string) bool {
	t.Helper()
	res, b, err := request(t, client, "GET", base+"/api/v1/search?"+url.Values{"value": {value}}.Encode(), user, nil)
	if err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("search as %s: %v %v %s", user, res, err, b)
	}
	return strings.Contains(string(b), id)
}

// testRetraction: a producer's DELETE at the source, sent to replica b,
// of an indicator posted to replica a, disappears from both consumers'
// collections and from their searches within a second; the withdrawal is
// listed for each. A newer version raised to TLP:RED withdraws the GREEN
// one. What was not retracted stays.
func testRetraction(t *testing.T, a, b *gatewayProc) {
	client := &http.Client{Timeout: 20 * time.Second}
	const (
		gone  = "indicator--7e1d0000-0000-4000-8000-000000000001"
		kept  = "indicator--7e1d0000-0000-4000-8000-000000000002"
		risen = "indicator--7e1d0000-0000-4000-8000-000000000003"
	)
	body := `{"objects":[` + isoIndicator(gone, "retract-me.example", tlpGreen) + `,` + isoIndicator(kept, "keep-me.example", tlpGreen) +
		`,` + isoIndicator(risen, "raise-me.example", tlpGreen) + `]}`
	if res, rb, err := request(t, client, "POST", a.base+inboundPath+"objects/", "cert-a", []byte(body)); err != nil || res.StatusCode != http.StatusAccepted {
		t.Fatalf("POST: %v %v %s", res, err, rb)
	}
	consumers := []struct{ user, path string }{{"police", lawEnforcementPath}, {"prosecutor", judiciaryPath}}
	waitFor(t, "both consumers read and find the indicators", 20*time.Second, func() bool {
		for _, c := range consumers {
			for _, g := range []*gatewayProc{a, b} {
				if !visible(t, client, g.base, c.path, c.user, gone) || !visible(t, client, g.base, c.path, c.user, risen) ||
					!found(t, client, g.base, c.user, "retract-me.example", gone) {
					return false
				}
			}
		}
		return true
	})

	res, rb, err := request(t, client, "DELETE", b.base+inboundPath+"objects/"+gone+"/", "cert-a", nil)
	if err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("DELETE: %v %v %s", res, err, rb)
	}
	deleted := time.Now()
	waitFor(t, "the deleted indicator leaves both consumers' collections and searches", time.Second, func() bool {
		for _, c := range consumers {
			for _, g := range []*gatewayProc{a, b} {
				if visible(t, client, g.base, c.path, c.user, gone) || found(t, client, g.base, c.user, "retract-me.example", gone) {
					return false
				}
			}
		}
		return true
	})
	t.Logf("a DELETE at the source left both consumers' collections and searches in %v", time.Since(deleted).Round(time.Millisecond))
	for _, c := range consumers {
		if !visible(t, client, a.base, c.path, c.user, kept) {
			t.Errorf("%s lost %s, which was not deleted", c.user, kept)
		}
		res, wb, err := request(t, client, "GET", b.base+"/api/v1/collections/"+strings.Trim(strings.TrimPrefix(c.path, "/exchange/collections/"), "/")+"/withdrawn", c.user, nil)
		if err != nil || res.StatusCode != http.StatusOK {
			t.Fatalf("GET withdrawn as %s: %v %v %s", c.user, res, err, wb)
		}
		var page struct {
			Withdrawn []struct {
				ID     string `json:"id"`
				Reason string `json:"reason"`
			} `json:"withdrawn"`
		}
		if err := json.Unmarshal(wb, &page); err != nil {
			t.Fatal(err)
		}
		if len(page.Withdrawn) != 1 || page.Withdrawn[0].ID != gone || page.Withdrawn[0].Reason != "retracted" {
			t.Errorf("%s's withdrawals = %s; want %s, retracted", c.user, wb, gone)
		}
	}
	// Another organisation learns nothing: CERT-B reads neither the
	// routes' withdrawals nor anything of CERT-A's.
	if res, _, _ := request(t, client, "GET", a.base+"/api/v1/collections/law-enforcement/withdrawn", "cert-b", nil); res.StatusCode != http.StatusNotFound {
		t.Errorf("cert-b reading law-enforcement's withdrawals: %d, want 404", res.StatusCode)
	}

	// TLP raised to RED: the GREEN version leaves both routes.
	red := strings.Replace(isoIndicator(risen, "raise-me.example", tlpRed), `"modified":"2026-01-01T00:00:00.000Z"`, `"modified":"2026-02-01T00:00:00.000Z"`, 1)
	if res, rb, err := request(t, client, "POST", b.base+inboundPath+"objects/", "cert-a", []byte(`{"objects":[`+red+`]}`)); err != nil || res.StatusCode != http.StatusAccepted {
		t.Fatalf("POST RED version: %v %v %s", res, err, rb)
	}
	waitFor(t, "the GREEN version of an indicator raised to RED leaves both routes", 5*time.Second, func() bool {
		for _, c := range consumers {
			if visible(t, client, a.base, c.path, c.user, risen) {
				return false
			}
		}
		return true
	})
}

func TestRetractionReachesConsumers(t *testing.T) {
	gw := startServe(t, nil, "--config", consumersSearch(t), "--data", t.TempDir(), "--listen", "127.0.0.1:0")
	testRetraction(t, gw, gw)
}

// TestRedisRetractionAcrossReplicas: posted on one replica, deleted on the
// other (which may not hold the routes' lease).
func TestRedisRetractionAcrossReplicas(t *testing.T) {
	u := redistest.URL(t)
	opts, _ := goredis.ParseURL(u)
	admin := goredis.NewClient(opts)
	t.Cleanup(func() { admin.Close() })
	getenv := redisEnv(u, nil, redistest.Prefix(t, admin))
	config := consumersSearch(t)
	a := startServe(t, getenv, "--config", config, "--data", t.TempDir(), "--listen", "127.0.0.1:0")
	b := startServe(t, getenv, "--config", config, "--data", t.TempDir(), "--listen", "127.0.0.1:0")
	testRetraction(t, a, b)
}

// refsOf returns every identifier reference in v (a decoded object): the
// values of *_ref and *_refs members at any depth, marking references
// excepted.
func refsOf(v any, name string, out map[string]bool) {
	switch x := v.(type) {
	case map[string]any:
		for k, c := range x {
			if k == "object_marking_refs" || k == "granular_markings" {
				continue
			}
			refsOf(c, k, out)
		}
	case []any:
		for _, c := range x {
			refsOf(c, name, out)
		}
	case string:
		if strings.HasSuffix(name, "_ref") || strings.HasSuffix(name, "_refs") {
			out[x] = true
		}
	}
}

// TestATTACKReferencesKept: MITRE ATT&CK ICS 18.1, whose identity comes
// near the end of the bundle, through a route that publishes unmarked
// data as TLP:GREEN: every reference whose target the route published is
// kept. Posted in two envelopes in reverse order (the second half
// first), the route publishes exactly the same bytes.
func TestATTACKReferencesKept(t *testing.T) { testATTACKReferences(t, nil) }

// TestRedisATTACKReferencesKept is the same over Redis, where the objects
// posted second-half-first wait for their references in Redis.
func TestRedisATTACKReferencesKept(t *testing.T) {
	u := redistest.URL(t)
	opts, _ := goredis.ParseURL(u)
	admin := goredis.NewClient(opts)
	t.Cleanup(func() { admin.Close() })
	testATTACKReferences(t, func() func(string) string { return redisEnv(u, nil, redistest.Prefix(t, admin)) })
}

func testATTACKReferences(t *testing.T, backend func() func(string) string) {
	raw, err := os.ReadFile(shared.Path(t, "attack", "ics-attack-18.1.json"))
	if err != nil {
		t.Fatal(err)
	}
	var bundle struct {
		Objects []jsontext.Value `json:"objects"`
	}
	if err := json.Unmarshal(raw, &bundle); err != nil {
		t.Fatal(err)
	}
	config := demoVariant(t, func(cfg map[string]any) {
		cfgList(cfg, "api_roots")[0].(map[string]any)["max_content_length"] = 16 << 20
		for _, r := range cfgList(cfg, "routes") {
			r.(map[string]any)["unmarked"] = "TLP:GREEN"
		}
	})
	half := len(bundle.Objects) / 2
	run := func(envelopes ...[]jsontext.Value) map[string]jsontext.Value {
		var getenv func(string) string
		if backend != nil {
			getenv = backend() // a fresh key prefix each run
		}
		gw := startServe(t, getenv, "--config", config, "--data", t.TempDir(), "--listen", "127.0.0.1:0")
		client := &http.Client{Timeout: 60 * time.Second}
		for _, objs := range envelopes {
			env, _ := json.Marshal(map[string]any{"objects": objs})
			if res, b, err := request(t, client, "POST", gw.base+inboundPath+"objects/", "cert-a", env); err != nil || res.StatusCode != http.StatusAccepted {
				t.Fatalf("POST: %v %v %.300s", res, err, b)
			}
		}
		inbound := len(readAll(t, client, gw.base, inboundPath, "cert-a", true))
		waitFor(t, "fan-out decides about every inbound version", 120*time.Second, func() bool {
			return len(allDecisions(t, client, gw.base)) >= 2*inbound
		})
		out := map[string]jsontext.Value{}
		for _, o := range readAll(t, client, gw.base, lawEnforcementPath, "police", false) {
			var head struct {
				ID string `json:"id"`
			}
			if err := json.Unmarshal(o, &head); err != nil {
				t.Fatal(err)
			}
			out[head.ID] = o
		}
		gw.stop(t)
		return out
	}
	whole := run(bundle.Objects)
	originals := map[string]map[string]bool{}
	for _, o := range bundle.Objects {
		var v map[string]any
		if err := json.Unmarshal(o, &v); err != nil {
			t.Fatal(err)
		}
		refs := map[string]bool{}
		refsOf(v, "", refs)
		originals[v["id"].(string)] = refs
	}
	kept, lost := 0, 0
	for id, o := range whole {
		var v map[string]any
		if err := json.Unmarshal(o, &v); err != nil {
			t.Fatal(err)
		}
		got := map[string]bool{}
		refsOf(v, "", got)
		for ref := range originals[id] {
			if _, published := whole[ref]; !published {
				continue
			}
			if got[ref] {
				kept++
			} else {
				lost++
				if lost <= 5 {
					t.Errorf("%s lost its reference to %s, which the route published", id, ref)
				}
			}
		}
	}
	if lost > 0 || kept < 1000 {
		t.Fatalf("references to published objects: %d kept, %d lost (of %d published objects)", kept, lost, len(whole))
	}
	t.Logf("law-enforcement published %d of %d ATT&CK ICS objects; %d references to published objects, all kept", len(whole), len(bundle.Objects), kept)

	reversed := run(bundle.Objects[half:], bundle.Objects[:half])
	if len(reversed) != len(whole) {
		t.Fatalf("posted in two envelopes in reverse order: %d objects published, %d in one envelope", len(reversed), len(whole))
	}
	var differ []string
	for id, o := range whole {
		if string(reversed[id]) != string(o) {
			differ = append(differ, id)
		}
	}
	slices.Sort(differ)
	if len(differ) > 0 {
		t.Fatalf("posted in two envelopes in reverse order, %d objects differ, e.g. %s:\n%s\n%s", len(differ), differ[0], whole[differ[0]], reversed[differ[0]])
	}
}

// TestPollAppliesWithdrawals: `ctigate poll` with a state file and a JSON
// Lines output removes what the gateway withdrew since the last run,
// reports it, and appends it to the --withdrawn file; a second run changes
// nothing more.
func TestPollAppliesWithdrawals(t *testing.T) {
	gw := startServe(t, nil, "--config", demoConfig, "--data", t.TempDir(), "--listen", "127.0.0.1:0")
	client := &http.Client{Timeout: 20 * time.Second}
	const (
		gone = "indicator--7e1d0000-0000-4000-8000-00000000000a"
		kept = "indicator--7e1d0000-0000-4000-8000-00000000000b"
	)
	body := `{"objects":[` + isoIndicator(gone, "poll-gone.example", tlpGreen) + `,` + isoIndicator(kept, "poll-kept.example", tlpGreen) + `]}`
	if res, b, err := request(t, client, "POST", gw.base+inboundPath+"objects/", "cert-a", []byte(body)); err != nil || res.StatusCode != http.StatusAccepted {
		t.Fatalf("POST: %v %v %s", res, err, b)
	}
	waitFor(t, "the police read both", 10*time.Second, func() bool {
		return visible(t, client, gw.base, lawEnforcementPath, "police", gone) && visible(t, client, gw.base, lawEnforcementPath, "police", kept)
	})
	dir := t.TempDir()
	out, state, withdrawn := filepath.Join(dir, "out.jsonl"), filepath.Join(dir, "state.json"), filepath.Join(dir, "withdrawn.jsonl")
	env := map[string]string{"CTIGATE_PASSWORD": "police-demo"}
	poll := func() string {
		t.Helper()
		_, errs, err := ctl(context.Background(), env, nil, nil, "poll", "--server", gw.base, "--collection", "law-enforcement", "--user", "police",
			"--state", state, "--out", out, "--withdrawn", withdrawn)
		if err != nil {
			t.Fatalf("poll: %v\n%s", err, errs)
		}
		return errs
	}
	poll()
	if b, _ := os.ReadFile(out); !strings.Contains(string(b), gone) || !strings.Contains(string(b), kept) {
		t.Fatalf("first poll wrote %s", b)
	}
	if res, b, err := request(t, client, "DELETE", gw.base+inboundPath+"objects/"+gone+"/", "cert-a", nil); err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("DELETE: %v %v %s", res, err, b)
	}
	waitFor(t, "the route withdraws it", 5*time.Second, func() bool { return !visible(t, client, gw.base, lawEnforcementPath, "police", gone) })
	errs := poll()
	if !strings.Contains(errs, "1 versions withdrawn") || !strings.Contains(errs, "1 lines removed from "+out) {
		t.Errorf("second poll reported:\n%s", errs)
	}
	b, _ := os.ReadFile(out)
	if strings.Contains(string(b), gone) || !strings.Contains(string(b), kept) {
		t.Errorf("after the withdrawal the output holds:\n%s", b)
	}
	if w, _ := os.ReadFile(withdrawn); !strings.Contains(string(w), gone) || !strings.Contains(string(w), `"reason":"retracted"`) {
		t.Errorf("withdrawn file: %s", w)
	}
	if errs := poll(); strings.Contains(errs, "withdrawn") {
		t.Errorf("a third poll reported withdrawals again:\n%s", errs)
	}
}
