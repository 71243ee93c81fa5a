package server_test

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/ctigate/ctigate/custody"
	ctigw "github.com/ctigate/ctigate/gateway"
	"github.com/ctigate/ctigate/server"
	"github.com/ctigate/ctigate/store"
	"github.com/ctigate/ctigate/store/bolt"
)

// TestJunkEnvelopeCostsLittle: an envelope of 100,000 empty objects (300
// kB) is refused object by object with an exact count, but the status
// lists a bounded number of failures and the ledger holds 100 entries
// and one summary, which the envelope proves (each refusal stays
// provable) and another envelope does not.
func TestJunkEnvelopeCostsLittle(t *testing.T) {
	cfg := testConfig(t)
	cfg.APIRoots[0].MaxContentLength = 1 << 20
	st, err := bolt.Open(filepath.Join(t.TempDir(), "ctigate.db"), bolt.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	srv := server.New(server.Options{Config: cfg, Store: st, Auth: authOf(t, cfg), Ledger: st})
	const n = 100_000
	elems := make([]string, n)
	for i := range elems {
		elems[i] = "{}"
	}
	elems[7] = indicator(7, "2026-01-02T00:00:00.000Z") // one valid object among them
	body := `{"objects":[` + strings.Join(elems, ",") + `]}`
	before, err := st.UsedBytes()
	if err != nil {
		t.Fatal(err)
	}
	w := postInProcess(srv, body)
	if w.Code != http.StatusAccepted {
		t.Fatalf("POST: %d %.300s", w.Code, w.Body.String())
	}
	var status struct {
		TotalCount   int              `json:"total_count"`
		SuccessCount int              `json:"success_count"`
		FailureCount int              `json:"failure_count"`
		Failures     []jsontext.Value `json:"failures"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &status); err != nil {
		t.Fatal(err)
	}
	if status.TotalCount != n || status.SuccessCount != 1 || status.FailureCount != n-1 || len(status.Failures) != ctigw.MaxListedFailures {
		t.Fatalf("status: total %d, successes %d, failures %d with %d listed; want %d, 1, %d with %d listed",
			status.TotalCount, status.SuccessCount, status.FailureCount, len(status.Failures), n, n-1, ctigw.MaxListedFailures)
	}
	if w.Body.Len() > 256<<10 {
		t.Errorf("status of %d bytes", w.Body.Len())
	}
	after, err := st.UsedBytes()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("store grew by %d bytes; status %d bytes", after-before, w.Body.Len())
	if after-before > 1<<20 {
		t.Errorf("the envelope grew the store by %d bytes, want at most 1 MiB", after-before)
	}
	es, err := st.LedgerEntries(context.Background(), store.LedgerQuery{Action: custody.Rejected, Limit: store.MaxLedgerLimit})
	if err != nil {
		t.Fatal(err)
	}
	if len(es) != ctigw.MaxRejectedEntries+1 {
		t.Fatalf("%d rejected entries, want %d and a summary", len(es), ctigw.MaxRejectedEntries)
	}
	sum := es[len(es)-1]
	if sum.Count != n-1-ctigw.MaxRejectedEntries || sum.Reason != "invalid ×99899" || !strings.Contains(sum.Detail, "status ") {
		t.Fatalf("summary entry %+v", sum)
	}
	// The producer's envelope proves the summary; another does not.
	raw := make([][]byte, n)
	for i, e := range elems {
		raw[i] = []byte(e)
	}
	if err := custody.RejectedRoot(&sum, raw); err != nil {
		t.Fatalf("the envelope does not prove its summary: %v", err)
	}
	raw[n-1] = []byte(`{ }`)
	if err := custody.RejectedRoot(&sum, raw); err == nil {
		t.Fatal("another envelope proves the summary")
	}
	// And the ledger verifies with it.
	all, err := st.LedgerEntries(context.Background(), store.LedgerQuery{Limit: store.MaxLedgerLimit})
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := custody.WriteJSONL(&b, all, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := custody.VerifyJSONL(&b, custody.VerifyOptions{}); err != nil {
		t.Fatal(err)
	}
}

// TestJunkEnvelopesKeepReadsFast: while a producer posts envelopes of
// 100,000 empty objects, another user's small reads stay within twice
// their p99 without them (and 20 ms, for a shared 2-core machine's noise).
func TestJunkEnvelopesKeepReadsFast(t *testing.T) {
	if testing.Short() || raceDetector {
		t.Skip("a latency bound: not under -race or -short")
	}
	do := junkGateway(t)
	var objs []string
	for i := range 100 {
		objs = append(objs, indicator(i, "2026-01-02T00:00:00.000Z"))
	}
	published := root + "collections/" + publishedID + "/"
	if c := do(http.MethodPost, published+"objects/", "cert-a", `{"objects":[`+strings.Join(objs, ",")+`]}`); c != http.StatusAccepted {
		t.Fatal(c)
	}
	p99 := func() time.Duration {
		var ds []time.Duration
		for range 100 {
			start := time.Now()
			if c := do(http.MethodGet, published+"objects/?limit=1", "police", ""); c != http.StatusOK {
				t.Fatalf("read: %d", c)
			}
			ds = append(ds, time.Since(start))
			time.Sleep(5 * time.Millisecond)
		}
		slices.Sort(ds)
		return ds[98]
	}
	quiet := p99()
	junk := `{"objects":[` + strings.Repeat("{},", 99_999) + `{}]}`
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int)
	go func() {
		n := 0
		for ctx.Err() == nil {
			if c := do(http.MethodPost, inbound+"objects/", "cert-a", junk); c != http.StatusAccepted {
				t.Errorf("junk POST: %d", c)
			}
			n++
		}
		done <- n
	}()
	loaded := p99()
	cancel()
	n := <-done
	t.Logf("small reads p99: %v without, %v during %d envelopes of 100,000 empty objects", quiet, loaded, n)
	if loaded > 2*quiet+20*time.Millisecond {
		t.Errorf("reads p99 %v during junk envelopes, %v without: want at most twice (and 20 ms)", loaded, quiet)
	}
}

// junkGateway serves a gateway over a bbolt file (fsync on) that takes
// bodies of up to 1 MiB, and returns a function making one request of it
// as user (password user-pw) and returning the status code.
func junkGateway(tb testing.TB) func(method, path, user, body string) int {
	cfg := testConfig(tb)
	cfg.APIRoots[0].MaxContentLength = 1 << 20
	st, err := bolt.Open(filepath.Join(tb.TempDir(), "ctigate.db"), bolt.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { st.Close() })
	srv := server.New(server.Options{Config: cfg, Store: st, Auth: authOf(tb, cfg), Ledger: st})
	return func(method, path, user, body string) int {
		req := httptest.NewRequest(method, path, strings.NewReader(body))
		req.Header.Set("Accept", "application/taxii+json;version=2.1")
		req.Header.Set("Content-Type", "application/taxii+json;version=2.1")
		req.SetBasicAuth(user, user+"-pw")
		w := httptest.NewRecorder()
		srv.ServeHTTP(w, req)
		return w.Code
	}
}

// BenchmarkJunkEnvelope posts envelopes of 100,000 empty objects: what
// refusing them costs in time and allocations.
func BenchmarkJunkEnvelope(b *testing.B) {
	do := junkGateway(b)
	junk := `{"objects":[` + strings.Repeat("{},", 99_999) + `{}]}`
	b.ReportAllocs()
	for b.Loop() {
		if c := do(http.MethodPost, inbound+"objects/", "cert-a", junk); c != http.StatusAccepted {
			b.Fatal(c)
		}
	}
}
