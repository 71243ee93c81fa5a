package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io/fs"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-json-experiment/json"

	"github.com/ctigate/ctigate/custody"
)

// auditCmd runs `ctigate audit args…`.
func auditCmd(t *testing.T, env map[string]string, args ...string) (string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := run(context.Background(), append([]string{"audit"}, args...), func(k string) string { return env[k] }, nil, &out, &errOut)
	return out.String() + errOut.String(), err
}

func auditGet(t *testing.T, client *http.Client, base, path string) []byte {
	t.Helper()
	res, b, err := request(t, client, "GET", base+path, "auditor", nil)
	if err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("GET %s as auditor: %v %v %.300s", path, res, err, b)
	}
	return b
}

func parseLines(t *testing.T, b []byte) []custody.Entry {
	t.Helper()
	var out []custody.Entry
	for _, l := range bytes.Split(bytes.TrimSpace(b), []byte("\n")) {
		var e custody.Entry
		if err := json.Unmarshal(l, &e); err != nil {
			t.Fatalf("export line %s: %v", l, err)
		}
		out = append(out, e)
	}
	return out
}

// TestCustodyEndToEnd: in the demo topology, cert-a posts, fan-out
// decides, police and prosecutor poll; the ledger holds exactly that
// sequence, its export verifies against the pinned key and fails, naming
// the entry, once altered; the evidence package of one indicator shows its
// submission, its decision per route and each delivery, online (no
// content) and offline (with the original bytes, re-hashed).
func TestCustodyEndToEnd(t *testing.T) {
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "custody.pem")
	if out, err := auditCmd(t, nil, "keygen", "--out", keyFile); err != nil {
		t.Fatalf("keygen: %v %s", err, out)
	}
	pubFile := keyFile + ".pub"
	env := map[string]string{"CTIGATE_CUSTODY_SIGNING_KEY_FILE": keyFile}
	data := filepath.Join(dir, "data")
	// The demo's auditor, granted every organisation's entries (an
	// oversight auditor), sees the deliveries to police and prosecutor too.
	config := demoVariant(t, func(cfg map[string]any) {
		cfg["custody"].(map[string]any)["all_organisations"] = []any{"auditor"}
	})
	gw := startServe(t, func(k string) string { return env[k] }, "--config", config, "--data", data, "--listen", "127.0.0.1:0")
	client := &http.Client{Timeout: 10 * time.Second}

	green := "indicator--2b0b8f4e-1c7a-4d55-9f3e-000000000001"
	body := `{"objects":[` + strings.Join([]string{
		markedIndicator("green", "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb"),
		markedIndicator("amber", "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421"),
		markedIndicator("red", "marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1"),
		`{"type":"indicator","id":"indicator--2b0b8f4e-1c7a-4d55-9f3e-000000000009"}`,
	}, ",") + `]}`
	res, b, err := request(t, client, "POST", gw.base+inboundPath+"objects/", "cert-a", []byte(body))
	if err != nil || res.StatusCode != http.StatusAccepted || !strings.Contains(string(b), `"success_count":3`) {
		t.Fatalf("POST: %v %v %s", res, err, b)
	}
	// Fan-out decides each of the three for each of the two routes.
	deadline := time.Now().Add(20 * time.Second)
	for {
		var page struct {
			Entries []custody.Entry `json:"entries"`
		}
		if err := json.Unmarshal(auditGet(t, client, gw.base, "/api/v1/audit/entries?limit=1000"), &page); err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, e := range page.Entries {
			if e.Route != "" {
				n++
			}
		}
		if n == 6 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d decision entries after 20 s, want 6", n)
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, c := range []struct{ user, path string }{{"police", lawEnforcementPath}, {"prosecutor", judiciaryPath}} {
		if res, b, err := request(t, client, "GET", gw.base+c.path+"objects/", c.user, nil); err != nil || res.StatusCode != http.StatusOK {
			t.Fatalf("GET as %s: %v %v %s", c.user, res, err, b)
		}
	}

	export := auditGet(t, client, gw.base, "/api/v1/audit/export")
	var seq []string
	decisions := map[string]string{}
	var deliveries []custody.Entry
	for _, e := range parseLines(t, export) {
		switch {
		case e.Action == custody.Checkpoint, custody.AccessChange(e.Action):
			continue
		case e.Route != "":
			seq = append(seq, "decision")
			decisions[e.Route+" "+e.ObjectID[len(e.ObjectID)-1:]] = e.Action
			continue
		case e.Action == custody.Delivered:
			deliveries = append(deliveries, e)
		}
		seq = append(seq, e.Action+" "+e.User)
	}
	want := []string{"config-loaded ctigate", "rejected cert-a", "received cert-a", "received cert-a", "received cert-a",
		"decision", "decision", "decision", "decision", "decision", "decision", "delivered police", "delivered prosecutor"}
	if !slices.Equal(seq, want) {
		t.Fatalf("ledger sequence\n%v\nwant\n%v", seq, want)
	}
	wantDecisions := map[string]string{
		"law-enforcement 1": "published", "law-enforcement 2": "published", "law-enforcement 3": "withheld",
		"judiciary 1": "published", "judiciary 2": "withheld", "judiciary 3": "withheld",
	}
	if fmt.Sprint(decisions) != fmt.Sprint(wantDecisions) {
		t.Fatalf("decisions %v, want %v", decisions, wantDecisions)
	}
	if deliveries[0].Count != 2 || deliveries[1].Count != 1 || deliveries[1].Org != "Prosecution Service" || bytes.Contains(export, []byte(`"items"`)) {
		t.Fatalf("deliveries %+v", deliveries)
	}

	// The export verifies against the pinned key; altered, it does not.
	exportFile := filepath.Join(dir, "ledger.jsonl")
	if err := os.WriteFile(exportFile, export, 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := auditCmd(t, nil, "verify", "--key", pubFile, exportFile); err != nil || !strings.Contains(out, "OK:") {
		t.Fatalf("verify: %v %s", err, out)
	}
	// The first receipt, altered to name another producer.
	lines := bytes.Split(export, []byte("\n"))
	altered := slices.IndexFunc(lines, func(l []byte) bool { return bytes.Contains(l, []byte(`"action":"received"`)) })
	lines[altered] = bytes.Replace(lines[altered], []byte(`"cert-a"`), []byte(`"cert-b"`), 1)
	if err := os.WriteFile(exportFile, bytes.Join(lines, []byte("\n")), 0o600); err != nil {
		t.Fatal(err)
	}
	named := fmt.Sprintf("entry %d (line %d)", altered+1, altered+1)
	if out, err := auditCmd(t, nil, "verify", exportFile); err == nil || !strings.Contains(err.Error(), named) {
		t.Fatalf("verify of an altered export: %v %s, want %s named", err, out, named)
	}

	// Evidence, online: no content, signed, verifies.
	ev := auditGet(t, client, gw.base, "/api/v1/audit/evidence/"+green)
	var evDoc custody.Evidence
	if err := json.Unmarshal(ev, &evDoc); err != nil {
		t.Fatal(err)
	}
	if len(evDoc.Policies) != 2 || len(evDoc.Policies[0].Config) == 0 || len(evDoc.Policies[1].Config) == 0 {
		t.Fatalf("evidence policies %+v, want both routes with their configuration", evDoc.Policies)
	}
	evFile := filepath.Join(dir, "evidence.json")
	if err := os.WriteFile(evFile, ev, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := auditCmd(t, nil, "verify", "--evidence", "--key", pubFile, evFile)
	if err != nil || !strings.Contains(out, "(received, published ×2, delivered ×2)") {
		t.Fatalf("verify --evidence: %v %s", err, out)
	}

	// Offline, with the original bytes, after a clean stop.
	gw.stop(t)
	dataEnv := map[string]string{"CTIGATE_CUSTODY_SIGNING_KEY_FILE": keyFile}
	if out, err := auditCmd(t, dataEnv, "evidence", "--config", demoConfig, "--data", data, "--object", green, "--out", evFile); err != nil {
		t.Fatalf("audit evidence: %v %s", err, out)
	}
	out, err = auditCmd(t, nil, "verify", "--evidence", "--key", pubFile, evFile)
	if err != nil || !strings.Contains(out, "3 original versions re-hashed") {
		t.Fatalf("verify --evidence (offline): %v %s", err, out)
	}
	b, err = os.ReadFile(evFile)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	vs := doc["versions"].([]any)
	v0 := vs[0].(map[string]any)
	raw := v0["raw"].(string)
	v0["raw"] = raw[:len(raw)-8] + "AAAAAA=="
	b, _ = json.Marshal(doc)
	if err := os.WriteFile(evFile, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := auditCmd(t, nil, "verify", "--evidence", evFile); err == nil || !strings.Contains(err.Error(), "version 0") {
		t.Fatalf("verify of evidence with altered bytes: %v, want version 0 named", err)
	}
	// Verifying and exporting read the data directory only: every file
	// in it keeps its bytes.
	before := treeSums(t, data)
	out, err = auditCmd(t, nil, "verify", "--data", data, "--config", demoConfig, "--key", pubFile)
	if err != nil || !strings.Contains(out, "stored object versions match") {
		t.Fatalf("verify --data: %v %s", err, out)
	}
	// The whole ledger, exported offline, verifies and is signed to its
	// end (the final checkpoint at shutdown, or the evidence one).
	if out, err := auditCmd(t, nil, "export", "--config", demoConfig, "--data", data, "--out", exportFile); err != nil {
		t.Fatalf("audit export: %v %s", err, out)
	}
	if after := treeSums(t, data); !maps.Equal(before, after) {
		t.Errorf("audit verify --data and export changed the data directory: %v before, %v after", before, after)
	}
	out, err = auditCmd(t, nil, "verify", "--key", pubFile, exportFile)
	if err != nil || strings.Contains(out, "not covered") {
		t.Fatalf("verify of the offline export: %v %s", err, out)
	}
}

// treeSums returns the SHA-256 of every file under dir, by path.
func treeSums(t *testing.T, dir string) map[string]string {
	t.Helper()
	sums := map[string]string{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		sums[path] = fmt.Sprintf("%x", sha256.Sum256(b))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return sums
}

// TestAuditDataErrors: audit verify --data says to stop the gateway only
// when the file is locked, not when the file is one it cannot read.
func TestAuditDataErrors(t *testing.T) {
	data := t.TempDir()
	if err := os.WriteFile(filepath.Join(data, "ctigate.db"), bytes.Repeat([]byte("not bbolt"), 4096), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := auditCmd(t, nil, "verify", "--data", data, "--config", demoConfig)
	if err == nil || strings.Contains(err.Error(), "stop the gateway") {
		t.Errorf("verify of a file that is not a store: %v, want an error without the hint to stop the gateway", err)
	}
	live := t.TempDir()
	startServe(t, nil, "--config", demoConfig, "--data", live, "--listen", "127.0.0.1:0")
	_, err = auditCmd(t, nil, "verify", "--data", live, "--config", demoConfig)
	if err == nil || !strings.Contains(err.Error(), "stop the gateway first") {
		t.Errorf("verify while the gateway runs: %v, want the hint to stop it", err)
	}
}

// TestIndexRebuildErrors: `ctigate index rebuild` says to stop the gateway
// only when the store file is locked, as audit does.
func TestIndexRebuildErrors(t *testing.T) {
	rebuild := func(data string) error {
		var out, errOut bytes.Buffer
		return run(t.Context(), []string{"index", "rebuild", "--config", demoConfig, "--data", data}, func(string) string { return "" }, nil, &out, &errOut)
	}
	data := t.TempDir()
	if err := os.WriteFile(filepath.Join(data, "ctigate.db"), bytes.Repeat([]byte("not bbolt"), 4096), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := rebuild(data); err == nil || strings.Contains(err.Error(), "stop the gateway") {
		t.Errorf("rebuild over a file that is not a store: %v, want an error without the hint to stop the gateway", err)
	}
	live := t.TempDir()
	startServe(t, nil, "--config", demoConfig, "--data", live, "--listen", "127.0.0.1:0")
	if err := rebuild(live); err == nil || !strings.Contains(err.Error(), "stop the gateway first") {
		t.Errorf("rebuild while the gateway runs: %v, want the hint to stop it", err)
	}
}
