package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"flag"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-json-experiment/json"

	"github.com/ctigate/ctigate/auth"
	"github.com/ctigate/ctigate/config"
	"github.com/ctigate/ctigate/custody"
	"github.com/ctigate/ctigate/gateway"
	"github.com/ctigate/ctigate/server"
	"github.com/ctigate/ctigate/stix"
	"github.com/ctigate/ctigate/store"
	"github.com/ctigate/ctigate/store/bolt"
)

var evidenceEntries = flag.Int("evidence.entries", 0, "ledger entries of TestEvidenceLargeLedger (0 skips it; make soak: 1000000); BenchmarkEvidenceLargeLedger uses this or 1000000")

const (
	largeColl  = "5f1c1b0e-3f43-4c4a-9d0b-6c1f0d1e2a3b"
	largeToken = "ctg_large-ledger-police-token-0123456789"
)

func largeID(i int) string { return fmt.Sprintf("indicator--6ba7b810-9dad-41d1-80b4-%012d", i) }

// largeLedger is a ledger of about entries entries in which one object,
// target, was delivered in 1,000 pages of 1,000 objects, each page a
// different range, among a million entries about other objects by
// another organisation.
type largeLedger struct {
	st      *bolt.Store
	cfg     *config.Config
	cp      *custody.Checkpointer
	pub     ed25519.PublicKey
	target  string
	entries uint64

	pages, pageSize int
}

func buildLargeLedger(tb testing.TB, dir string, entries, largePages, largePage int) *largeLedger {
	tb.Helper()
	st, err := bolt.Open(filepath.Join(dir, "ctigate.db"), bolt.Options{NoSync: true})
	if err != nil {
		tb.Fatal(err)
	}
	cfg := config.Default()
	cfg.Paging = config.Paging{DefaultLimit: largePage, MaxLimit: largePage}
	limit := fmt.Sprint(largePage)
	cfg.APIRoots = []config.APIRoot{{Name: "exchange", Title: "Exchange", MaxContentLength: 1 << 20,
		Collections: []config.Collection{{ID: largeColl, Alias: "law-enforcement", Title: "Law enforcement", Writers: []string{"cert-a"}, Readers: []string{"org:National Police"}}}}}
	cfg.Users = []config.User{
		{Name: "cert-a", Organisation: "CERT-A", Roles: []string{"producer"}, TokenSHA256: []string{auth.TokenDigest("ctg_large-ledger-cert-a-token-0123456789")}},
		{Name: "police", Organisation: "National Police", Roles: []string{"consumer"}, TokenSHA256: []string{auth.TokenDigest(largeToken)}},
	}
	if err := cfg.Validate(); err != nil {
		tb.Fatal(err)
	}
	var users []auth.User
	for _, u := range cfg.Users {
		users = append(users, auth.User{Name: u.Name, Organisation: u.Organisation, Roles: u.Roles, TokenDigests: u.TokenSHA256})
	}
	a, err := auth.New(users, auth.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	srv := server.New(server.Options{Config: &cfg, Store: st, Auth: a, Ledger: st})
	ctx := store.WithActor(context.Background(), store.Actor{User: "cert-a", Org: "CERT-A"})
	// 2,000 objects; the target is the 1,001st.
	n := largePages + largePage
	var objs []store.Object
	for i := range n {
		raw := []byte(`{"type":"indicator","spec_version":"2.1","id":"` + largeID(i) + `","created":"2026-01-01T00:00:00.000Z","modified":"2026-01-01T00:00:00.000Z",` +
			`"pattern":"[ipv4-addr:value = '198.51.100.` + fmt.Sprint(i%250) + `']","pattern_type":"stix","valid_from":"2026-01-01T00:00:00Z"}`)
		h, err := stix.Hash(raw)
		if err != nil {
			tb.Fatal(err)
		}
		objs = append(objs, store.Object{ID: largeID(i), Type: "indicator", SpecVersion: "2.1", Version: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), Raw: raw, Hash: h, Producer: "CERT-A"})
	}
	res, err := st.AddObjects(ctx, largeColl, objs)
	if err != nil {
		tb.Fatal(err)
	}
	// Between pages, entries about a million other objects by CERT-B.
	fillers := max(0, entries-n-largePages) / largePages
	other := store.WithActor(context.Background(), store.Actor{User: "cert-b", Org: "CERT-B"})
	for k := range largePages {
		for done := 0; done < fillers; {
			batch := make([]custody.Entry, 0, min(1000, fillers-done))
			for range cap(batch) {
				batch = append(batch, custody.Entry{Action: custody.Rejected, User: "cert-b", Org: "CERT-B", ObjectID: fmt.Sprintf("indicator--filler-%d-%d", k, done), Reason: "invalid"})
				done++
			}
			if _, err := st.AppendEntries(other, batch); err != nil {
				tb.Fatal(err)
			}
		}
		// Page k: the 1,000 objects after object k, the target among them.
		req := httptest.NewRequest(http.MethodGet, "/exchange/collections/"+largeColl+"/objects/?limit="+limit+"&added_after="+custody.FormatTime(res[k].DateAdded), nil)
		req.Header.Set("Accept", "application/taxii+json;version=2.1")
		req.Header.Set("Authorization", "Bearer "+largeToken)
		w := httptest.NewRecorder()
		srv.ServeHTTP(w, req)
		if w.Code != http.StatusOK || !bytes.Contains(w.Body.Bytes(), []byte(largeID(largePages))) {
			tb.Fatalf("page %d: %d, or without the target", k, w.Code)
		}
	}
	pub, key, err := ed25519.GenerateKey(nil)
	if err != nil {
		tb.Fatal(err)
	}
	cp := newCheckpointer(st, custody.NewSigner(key))
	head, err := cp.Sign(context.Background()) // indexes the whole ledger, as serve's checkpointer does as it goes
	if err != nil {
		tb.Fatal(err)
	}
	return &largeLedger{st: st, cfg: &cfg, cp: cp, pub: pub, target: largeID(largePages), entries: head.Seq, pages: largePages, pageSize: largePage}
}

func (l *largeLedger) evidence(tb testing.TB) []byte {
	ev, err := gateway.BuildEvidence(context.Background(), gateway.EvidenceSource{Store: l.st, Ledger: l.st, Config: l.cfg, Checkpoints: l.cp}, l.target, false)
	if err != nil {
		tb.Fatal(err)
	}
	b, err := json.Marshal(ev)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// TestEvidenceLargeLedger (make soak): the evidence package of an object
// delivered in 1,000 pages of 1,000 objects, in a ledger of a million
// entries, holds every delivery, is at most 3 MB, verifies offline with
// `ctigate audit verify --evidence`, and names no other object, user or
// organisation. Its build time is BenchmarkEvidenceLargeLedger's.
func TestEvidenceLargeLedger(t *testing.T) {
	if *evidenceEntries == 0 {
		t.Skip("set -evidence.entries (make soak runs it with 1000000)")
	}
	checkLargeEvidence(t, *evidenceEntries, 1000, 1000, 3<<20)
}

// TestEvidenceLedger is TestEvidenceLargeLedger's check on a ledger of
// 5,000 entries and 50 pages of 100 objects.
func TestEvidenceLedger(t *testing.T) {
	checkLargeEvidence(t, 5000, 50, 100, 200<<10)
}

func checkLargeEvidence(t *testing.T, entries, pages, pageSize, maxBytes int) {
	dir := t.TempDir()
	start := time.Now()
	l := buildLargeLedger(t, dir, entries, pages, pageSize)
	defer l.st.Close()
	t.Logf("ledger of %d entries built and indexed in %v", l.entries, time.Since(start).Round(time.Millisecond))
	if l.entries < uint64(entries) {
		t.Fatalf("ledger of %d entries, want at least %d", l.entries, entries)
	}
	start = time.Now()
	b := l.evidence(t)
	t.Logf("evidence package: %d bytes, built in %v", len(b), time.Since(start).Round(time.Millisecond))
	if len(b) > maxBytes {
		t.Errorf("evidence package of %d bytes, want at most %d", len(b), maxBytes)
	}
	var ev custody.Evidence
	if err := json.Unmarshal(b, &ev); err != nil {
		t.Fatal(err)
	}
	if len(ev.Deliveries) != pages {
		t.Errorf("%d deliveries proven, want %d", len(ev.Deliveries), pages)
	}
	for _, other := range []string{largeID(0), largeID(pages - 1), largeID(pages + 1), largeID(pages + pageSize - 1), "indicator--filler-", "CERT-B", "cert-b"} {
		if bytes.Contains(b, []byte(other)) {
			t.Errorf("the package names %s", other)
		}
	}
	file := filepath.Join(dir, "evidence.json")
	if err := os.WriteFile(file, b, 0o600); err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(dir, "key.pub")
	if err := os.WriteFile(keyFile, []byte(base64.StdEncoding.EncodeToString(l.pub)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := auditCmd(t, nil, "verify", "--evidence", "--key", keyFile, file)
	if err != nil || !strings.Contains(out, fmt.Sprintf("%d deliveries proven", pages)) {
		t.Fatalf("verify --evidence: %v\n%s", err, out)
	}
	t.Log(strings.TrimSpace(out))
	// A delivery claimed for a version the page did not hold is refused.
	ev.Deliveries[0].Item.Version = "2026-02-02T00:00:00.000Z"
	bad, err := json.Marshal(&ev)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, bad, 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := auditCmd(t, nil, "verify", "--evidence", "--key", keyFile, file); err == nil || !strings.Contains(err.Error(), "did not hold") {
		t.Fatalf("verify --evidence of a forged delivery: %v\n%s", err, out)
	}
}

var (
	largeOnce sync.Once
	large     *largeLedger
	largeDir  string // removed by TestMain once every benchmark has run
)

func TestMain(m *testing.M) {
	code := m.Run()
	if largeDir != "" {
		_ = os.RemoveAll(largeDir)
	}
	os.Exit(code)
}

// BenchmarkEvidenceLargeLedger measures building the evidence package of
// TestEvidenceLargeLedger's object (the ledger is built once, outside the
// timing): go test ./cmd/ctigate -run '^$' -bench EvidenceLargeLedger -benchtime 5x
func BenchmarkEvidenceLargeLedger(b *testing.B) {
	largeOnce.Do(func() {
		n := *evidenceEntries
		if n == 0 {
			n = 1000000
		}
		dir, err := os.MkdirTemp("", "ctigate-evidence-bench")
		if err != nil {
			b.Fatal(err)
		}
		largeDir = dir
		large = buildLargeLedger(b, dir, n, 1000, 1000)
	})
	var size int
	for b.Loop() {
		size = len(large.evidence(b))
	}
	b.ReportMetric(float64(size), "bytes/package")
	b.ReportMetric(float64(large.entries), "ledger-entries")
}
