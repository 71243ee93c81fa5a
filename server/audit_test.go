package server_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-json-experiment/json"

	"github.com/ctigate/ctigate/auth"
	"github.com/ctigate/ctigate/config"
	"github.com/ctigate/ctigate/custody"
	"github.com/ctigate/ctigate/server"
	"github.com/ctigate/ctigate/store"
	"github.com/ctigate/ctigate/store/bolt"
)

// auditGateway is newGateway with a custody ledger, a checkpoint signer
// and an auditor.
func auditGateway(t *testing.T) (*gateway, ed25519.PublicKey) {
	t.Helper()
	cfg := testConfig(t)
	h, err := auth.HashPassword("auditor-pw")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Users = append(cfg.Users, config.User{Name: "auditor", Organisation: "Oversight", Roles: []string{"auditor"}, PasswordHash: h})
	cfg.Custody.AllOrganisations = []string{"auditor"} // an oversight body: every organisation's entries
	st, err := bolt.Open(filepath.Join(t.TempDir(), "ctigate.db"), bolt.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	a := authOf(t, cfg)
	key := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, 32))
	cp := &custody.Checkpointer{Chain: st, Signer: custody.NewSigner(key), Root: func(ctx context.Context, size uint64) (string, error) {
		return store.TreeRoot(ctx, st, size)
	}}
	srv := server.New(server.Options{Config: cfg, Store: st, Auth: a, Ledger: st, Checkpoints: cp})
	ts := httptest.NewServer(srv)
	t.Cleanup(func() {
		ts.Close()
		if err := st.Close(); err != nil {
			t.Error(err)
		}
	})
	return &gateway{t: t, URL: ts.URL}, key.Public().(ed25519.PublicKey)
}

func entriesOf(t *testing.T, g *gateway, query string) []custody.Entry {
	t.Helper()
	r := g.get("/api/v1/audit/entries"+query, "auditor")
	if r.Status != http.StatusOK {
		t.Fatalf("GET entries%s: %d %s", query, r.Status, r.Body)
	}
	var page struct {
		Entries []custody.Entry `json:"entries"`
		Next    string          `json:"next"`
	}
	if err := json.Unmarshal(r.Body, &page); err != nil {
		t.Fatal(err)
	}
	return page.Entries
}

func TestAuditLedger(t *testing.T) {
	g, pub := auditGateway(t)
	ind := indicator(1, "2026-01-02T00:00:00.000Z")
	bad := `{"type":"indicator","id":"indicator--` + uuidN(2) + `","spec_version":"2.1"}`
	var st status
	g.post(inbound+"objects/", "cert-a", env(ind, bad)).expect(t, http.StatusAccepted, &st)
	if st.SuccessCount != 1 || st.FailureCount != 1 {
		t.Fatalf("status %+v", st)
	}
	// A repeat: no second received entry.
	g.post(inbound+"objects/", "cert-a", env(ind)).expect(t, http.StatusAccepted, nil)
	g.get(inbound+"objects/", "cert-a").expect(t, http.StatusOK, nil)
	g.get(inbound+"manifest/", "cert-a").expect(t, http.StatusOK, nil)

	all := entriesOf(t, g, "")
	var got []string
	for _, e := range all {
		got = append(got, e.Action+" "+e.User)
	}
	want := []string{"rejected cert-a", "received cert-a", "delivered cert-a", "delivered cert-a"}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("entries %v, want %v", got, want)
	}
	all[0], all[1] = all[1], all[0] // received, rejected
	if all[0].ObjectID != "indicator--"+uuidN(1) || all[0].Org != "CERT-A" || len(all[0].SHA256) != 64 {
		t.Errorf("received entry %+v", all[0])
	}
	if all[1].ObjectID != "indicator--"+uuidN(2) || all[1].Reason != "invalid" || all[1].Detail != "status "+st.ID {
		t.Errorf("rejected entry %+v, want reason invalid and status %s", all[1], st.ID)
	}
	if d := all[2]; d.Count != 1 || d.FirstAdded == "" || d.FirstAdded != d.LastAdded || len(d.ItemsRoot) != 64 || len(d.Filter) != 32 || len(d.View) != 32 || d.Detail != "GET objects" || d.Org != "CERT-A" {
		t.Errorf("delivered entry %+v, want a page of one version by reference", d)
	}
	if bytes.Contains(mustJSON(t, all[2]), []byte(uuidN(1))) {
		t.Errorf("delivered entry names the object: %+v", all[2])
	}
	if all[3].Detail != "GET manifest" {
		t.Errorf("manifest delivery %+v", all[3])
	}

	// Filters.
	if es := entriesOf(t, g, "?action=delivered&limit=1"); len(es) != 1 || es[0].Seq != 3 {
		t.Errorf("action=delivered&limit=1: %+v", es)
	}
	if es := entriesOf(t, g, "?object=indicator--"+uuidN(1)); len(es) != 1 || es[0].Action != custody.Received {
		t.Errorf("object filter: %+v, want the received entry (deliveries name no object)", es)
	}

	// Only auditors.
	for _, u := range []string{"police", "cert-a", ""} {
		for _, p := range []string{"entries", "export", "evidence/indicator--" + uuidN(1)} {
			if r := g.get("/api/v1/audit/"+p, u); r.Status != http.StatusForbidden && r.Status != http.StatusUnauthorized {
				t.Errorf("%s as %q: %d, want 401 or 403", p, u, r.Status)
			}
		}
	}
	if r := g.get("/api/v1/audit/entries?after=x", "auditor"); r.Status != http.StatusBadRequest {
		t.Errorf("after=x: %d, want 400", r.Status)
	}

	// The export verifies.
	r := g.get("/api/v1/audit/export", "auditor")
	if r.Status != http.StatusOK || r.Header.Get("Content-Type") != "application/jsonl" {
		t.Fatalf("export: %d %s", r.Status, r.Header.Get("Content-Type"))
	}
	rep, err := custody.VerifyJSONL(bytes.NewReader(r.Body), custody.VerifyOptions{})
	if err != nil || rep.Entries != len(all) {
		t.Fatalf("export: %+v, %v", rep, err)
	}

	// The evidence package: signed, no content, verifies offline.
	r = g.get("/api/v1/audit/evidence/indicator--"+uuidN(1), "auditor")
	if r.Status != http.StatusOK {
		t.Fatalf("evidence: %d %s", r.Status, r.Body)
	}
	if bytes.Contains(r.Body, []byte(`"raw"`)) || bytes.Contains(r.Body, []byte("198.51.100")) {
		t.Fatalf("evidence for an auditor holds content: %s", r.Body)
	}
	erep, err := custody.VerifyEvidence(bytes.NewReader(r.Body), custody.VerifyOptions{Keys: []ed25519.PublicKey{pub}})
	if err != nil {
		t.Fatalf("evidence does not verify: %v\n%s", err, r.Body)
	}
	if strings.Join(erep.Actions, ",") != "received,delivered,delivered" {
		t.Errorf("evidence actions %v", erep.Actions)
	}
	if r := g.get("/api/v1/audit/evidence/indicator--"+uuidN(9), "auditor"); r.Status != http.StatusNotFound {
		t.Errorf("evidence of an unknown object: %d, want 404", r.Status)
	}

	// Deleting keeps the record.
	if r := g.do(http.MethodDelete, inbound+"objects/indicator--"+uuidN(1)+"/", "cert-a", nil); r.Status != http.StatusOK {
		t.Fatalf("delete: %d %s", r.Status, r.Body)
	}
	es := entriesOf(t, g, "?action=deleted")
	if len(es) != 1 || es[0].SHA256 != all[0].SHA256 || es[0].User != "cert-a" || es[0].DateAdded == "" {
		t.Fatalf("deleted entries %+v", es)
	}
	// And the deliveries of the deleted version stay provable.
	r = g.get("/api/v1/audit/evidence/indicator--"+uuidN(1), "auditor")
	erep, err = custody.VerifyEvidence(bytes.NewReader(r.Body), custody.VerifyOptions{Keys: []ed25519.PublicKey{pub}})
	if err != nil || strings.Join(erep.Actions, ",") != "received,delivered,delivered,deleted" || erep.Deliveries != 2 {
		t.Fatalf("evidence after the delete: %+v, %v\n%s", erep, err, r.Body)
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
