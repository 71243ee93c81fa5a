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

// junkEnvelope is an envelope of 100,000 empty objects, each refused.
var junkEnvelope = `{"objects":[` + strings.Repeat("{},", 99_999) + `{}]}`

// millis is d in milliseconds, for benchmarks' metrics.
func millis(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// junkReads makes 100 small reads as police (5 ms apart) of the
// published collection, which a first call fills with 100 indicators,
// while envelopes of 100,000 empty objects are posted back to back when
// junk is set, and returns the reads' times, ascending, and the number
// of such envelopes posted meanwhile. Every read must succeed and every
// envelope be accepted (its objects refused).
func junkReads(tb testing.TB, do func(method, path, user, body string) int, junk bool) ([]time.Duration, int) {
	tb.Helper()
	published := root + "collections/" + publishedID + "/"
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	if junk {
		go func() {
			n := 0
			for ctx.Err() == nil {
				if c := do(http.MethodPost, inbound+"objects/", "cert-a", junkEnvelope); c != http.StatusAccepted {
					tb.Errorf("junk POST: %d", c)
				}
				n++
			}
			done <- n
		}()
	} else {
		done <- 0
	}
	var ds []time.Duration
	for range 100 {
		start := time.Now()
		if c := do(http.MethodGet, published+"objects/?limit=1", "police", ""); c != http.StatusOK {
			cancel()
			<-done // no junk POST outlives the test
			tb.Fatalf("read: %d", c)
		}
		ds = append(ds, time.Since(start))
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	slices.Sort(ds)
	return ds, <-done
}

// junkPublished is junkGateway with 100 indicators in the published
// collection.
func junkPublished(tb testing.TB) func(method, path, user, body string) int {
	do := junkGateway(tb)
	var objs []string
	for i := range 100 {
		objs = append(objs, indicator(i, "2026-01-02T00:00:00.000Z"))
	}
	if c := do(http.MethodPost, root+"collections/"+publishedID+"/objects/", "cert-a", `{"objects":[`+strings.Join(objs, ",")+`]}`); c != http.StatusAccepted {
		tb.Fatal(c)
	}
	return do
}

// TestJunkEnvelopesKeepReadsServed: while a producer posts envelopes of
// 100,000 empty objects back to back, another user's small reads all
// succeed, and the envelopes are all answered (202, their objects
// refused). How fast the reads are then is measured by
// BenchmarkJunkEnvelopeReads.
func TestJunkEnvelopesKeepReadsServed(t *testing.T) {
	if testing.Short() {
		t.Skip("posts envelopes of 100,000 objects for a second or more")
	}
	do := junkPublished(t)
	ds, n := junkReads(t, do, true)
	t.Logf("100 small reads during %d envelopes of 100,000 empty objects: p50 %v, p99 %v", n, ds[50], ds[98])
	if n == 0 {
		t.Error("no junk envelope was posted during the reads")
	}
}

// BenchmarkJunkEnvelopeReads measures small reads (p99 of 100, in ms)
// without junk envelopes (quiet-p99-ms) and while a producer posts
// envelopes of 100,000 empty objects back to back (p99-ms). Run it with
// -benchtime 1x.
func BenchmarkJunkEnvelopeReads(b *testing.B) {
	for b.Loop() {
		do := junkPublished(b)
		quiet, _ := junkReads(b, do, false)
		loaded, n := junkReads(b, do, true)
		b.ReportMetric(millis(quiet[98]), "quiet-p99-ms")
		b.ReportMetric(millis(loaded[98]), "p99-ms")
		b.ReportMetric(float64(n), "envelopes")
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
	b.ReportAllocs()
	for b.Loop() {
		if c := do(http.MethodPost, inbound+"objects/", "cert-a", junkEnvelope); c != http.StatusAccepted {
			b.Fatal(c)
		}
	}
}
