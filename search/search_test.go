package search_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/ctigate/ctigate/search"
	"github.com/ctigate/ctigate/store"
	"github.com/ctigate/ctigate/store/bolt"
)

const (
	tlpGreen = "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb"
	tlpAmber = "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421"
)

func openStore(t *testing.T) (*bolt.Store, *bolt.Index) {
	t.Helper()
	dir := t.TempDir()
	st, err := bolt.Open(filepath.Join(dir, "ctigate.db"), bolt.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	ix, err := bolt.OpenIndex(filepath.Join(dir, "search.db"), bolt.IndexOptions{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ix.Close() })
	return st, ix
}

func indicator(n int, pattern, marking string, modified time.Time) store.Object {
	id := fmt.Sprintf("indicator--00000000-0000-4000-8000-%012d", n)
	raw := fmt.Sprintf(`{"type":"indicator","spec_version":"2.1","id":%q,"created":"2024-01-01T00:00:00Z","modified":%q,`+
		`"pattern":%q,"pattern_type":"stix","valid_from":"2024-01-01T00:00:00Z","labels":["malicious-activity"],"object_marking_refs":[%q]}`,
		id, modified.Format(time.RFC3339Nano), pattern, marking)
	return store.Object{ID: id, Type: "indicator", SpecVersion: "2.1", Version: modified, Raw: []byte(raw), Producer: "CERT-A"}
}

func add(t *testing.T, st *bolt.Store, coll string, objs ...store.Object) {
	t.Helper()
	if _, err := st.AddObjects(t.Context(), coll, objs); err != nil {
		t.Fatal(err)
	}
}

func ids(r search.Result) []string {
	var out []string
	for _, h := range r.Hits {
		out = append(out, h.Collection+" "+h.ID)
	}
	return out
}

func TestIndexAndSearch(t *testing.T) {
	ctx := t.Context()
	st, ix := openStore(t)
	t1 := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	add(t, st, "pub",
		indicator(1, "[ipv4-addr:value = '198.51.100.0/24']", tlpGreen, t1),
		indicator(2, "[url:value = 'http://evil.example/payload']", tlpAmber, t1),
		indicator(3, "[file:hashes.'SHA-256' = 'aec070645fe53ee3b3763059376134f058cc337247c978add178b6ccdfb0019f']", tlpGreen, t1),
		store.Object{ID: "ipv4-addr--00000000-0000-5000-8000-000000000001", Type: "ipv4-addr", SpecVersion: "2.1",
			Raw: []byte(`{"type":"ipv4-addr","spec_version":"2.1","id":"ipv4-addr--00000000-0000-5000-8000-000000000001","value":"198.51.100.77"}`)},
		store.Object{ID: "observed-data--00000000-0000-4000-8000-000000000001", Type: "observed-data", SpecVersion: "2.1", Version: t1,
			Raw: []byte(`{"type":"observed-data","spec_version":"2.1","id":"observed-data--00000000-0000-4000-8000-000000000001","created":"2024-01-01T00:00:00Z","modified":"2024-01-01T00:00:00Z",` +
				`"first_observed":"2024-01-01T00:00:00Z","last_observed":"2024-01-01T00:00:00Z","number_observed":1,"object_refs":["ipv4-addr--00000000-0000-5000-8000-000000000001"]}`)},
	)
	// The inbound original of indicator 1, which a reader of "pub" only may not see.
	add(t, st, "inbound", indicator(1, "[ipv4-addr:value = '198.51.100.0/24']", tlpGreen, t1))

	x := search.NewIndexer(search.IndexerOptions{Store: search.Join(st, ix), Collections: []string{"inbound", "pub"}, BatchSize: 2})
	stats, err := x.RunOnce(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if stats.Versions != 6 {
		t.Errorf("indexed %d versions, want 6", stats.Versions)
	}
	s := search.NewSearcher(search.Join(st, ix))
	find := func(q search.Query) search.Result {
		t.Helper()
		if q.Collections == nil {
			q.Collections = []string{"pub"}
		}
		r, err := s.Search(ctx, q)
		if err != nil {
			t.Fatalf("Search(%+v): %v", q, err)
		}
		return r
	}
	check := func(q search.Query, want ...string) search.Result {
		t.Helper()
		r := find(q)
		if got := ids(r); !slices.Equal(got, want) {
			t.Errorf("Search(%q, %v): got %q, want %q", q.Value, q.Collections, got, want)
		}
		return r
	}
	r := check(search.Query{Value: "198.51.100.77"},
		"pub indicator--00000000-0000-4000-8000-000000000001",
		"pub ipv4-addr--00000000-0000-5000-8000-000000000001",
		"pub observed-data--00000000-0000-4000-8000-000000000001")
	if h := r.Hits[0]; h.TLP != "TLP:GREEN" || h.Producer != "CERT-A" || !h.Version.Equal(t1) || h.FirstSeen.IsZero() ||
		!slices.Equal(h.Matched, []string{"198.51.100.0/24"}) || !slices.Equal(h.Labels, []string{"malicious-activity"}) {
		t.Errorf("hit: %+v", h)
	}
	if r.Kind != "ipv4" || r.Normalised != "198.51.100.77" {
		t.Errorf("kind %q, normalised %q", r.Kind, r.Normalised)
	}
	check(search.Query{Value: "198.51.100.0/24"}, "pub indicator--00000000-0000-4000-8000-000000000001")
	check(search.Query{Value: "198.51.101.1"})
	check(search.Query{Value: "EVIL.example"}, "pub indicator--00000000-0000-4000-8000-000000000002")
	check(search.Query{Value: "AEC070645FE53EE3B3763059376134F058CC337247C978ADD178B6CCDFB0019F"}, "pub indicator--00000000-0000-4000-8000-000000000003")
	// Only the readable collections.
	check(search.Query{Value: "198.51.100.1", Collections: []string{"inbound"}}, "inbound indicator--00000000-0000-4000-8000-000000000001")
	check(search.Query{Value: "198.51.100.1", Collections: []string{"elsewhere"}})
	// Filters.
	check(search.Query{Value: "198.51.100.77", Types: []string{"ipv4-addr", "observed-data"}},
		"pub ipv4-addr--00000000-0000-5000-8000-000000000001", "pub observed-data--00000000-0000-4000-8000-000000000001")
	check(search.Query{Value: "198.51.100.77", TLPs: []string{"TLP:GREEN"}}, "pub indicator--00000000-0000-4000-8000-000000000001")
	check(search.Query{Value: "198.51.100.77", Labels: []string{"malicious-activity"}}, "pub indicator--00000000-0000-4000-8000-000000000001")
	check(search.Query{Value: "198.51.100.77", Producers: []string{"CERT-B"}})
	check(search.Query{Value: "198.51.100.77", AddedAfter: time.Now().Add(time.Hour)})
	// Paging.
	var got []string
	q := search.Query{Value: "198.51.100.77", Limit: 2}
	for n := 0; ; n++ {
		r := find(q)
		got = append(got, ids(r)...)
		if r.Next == "" {
			break
		}
		if n > 3 {
			t.Fatal("paging does not end")
		}
		q.Next = r.Next
	}
	if len(got) != 3 || len(slices.Compact(slices.Clone(got))) != 3 {
		t.Errorf("paged: %q", got)
	}
	if _, err := s.Search(ctx, search.Query{Value: "1.2.3.4", Collections: []string{"pub"}, Next: "%%"}); err == nil {
		t.Error("bad cursor: no error")
	}

	// A new version: first and last seen span both; deleting the newer one
	// leaves the older one, deleting all drops the hit.
	t2 := t1.Add(time.Hour)
	add(t, st, "pub", indicator(2, "[url:value = 'http://evil.example/payload']", tlpGreen, t2))
	if _, err := x.RunOnce(ctx); err != nil {
		t.Fatal(err)
	}
	r = check(search.Query{Value: "http://EVIL.example/payload"}, "pub indicator--00000000-0000-4000-8000-000000000002")
	if h := r.Hits[0]; !h.Version.Equal(t2) || h.TLP != "TLP:GREEN" || !h.LastSeen.After(h.FirstSeen) {
		t.Errorf("after a new version: %+v", h)
	}
	if _, err := st.DeleteObject(ctx, "pub", "indicator--00000000-0000-4000-8000-000000000002", []store.VersionMatch{{Kind: store.At, At: t2}}, nil); err != nil {
		t.Fatal(err)
	}
	r = check(search.Query{Value: "evil.example"}, "pub indicator--00000000-0000-4000-8000-000000000002")
	if h := r.Hits[0]; !h.Version.Equal(t1) || h.TLP != "TLP:AMBER" || !h.LastSeen.Equal(h.FirstSeen) {
		t.Errorf("after deleting the new version: %+v", h)
	}
	if _, err := st.DeleteObject(ctx, "pub", "indicator--00000000-0000-4000-8000-000000000002", nil, nil); err != nil {
		t.Fatal(err)
	}
	check(search.Query{Value: "evil.example"})

	// Rebuild: drop, index again, same answers.
	if err := ix.DropIndex(ctx); err != nil {
		t.Fatal(err)
	}
	check(search.Query{Value: "198.51.100.0/24"})
	stats, err = x.RunOnce(ctx)
	if err != nil || stats.Versions != 5 { // indicator 2 was deleted
		t.Fatalf("rebuild: %+v, %v", stats, err)
	}
	check(search.Query{Value: "198.51.100.0/24"}, "pub indicator--00000000-0000-4000-8000-000000000001")
}

// TestIndexerReusesExtraction: a version whose canonical hash the
// indexer has just extracted (a route's unchanged copy) is indexed from
// that extraction, with the same entries but its own collection; a copy
// with other bytes (a redacted one) is read from its bytes. Stats and the
// ctigate.search.versions counter say which was which.
func TestIndexerReusesExtraction(t *testing.T) {
	ctx := t.Context()
	st, ix := openStore(t)
	t1 := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	const n = 50
	var src, copies []store.Object
	for i := range n {
		o := indicator(i, fmt.Sprintf("[ipv4-addr:value = '198.51.100.%d']", i), tlpGreen, t1)
		o.Hash = sha256.Sum256(o.Raw)
		src = append(src, o)
		c := o
		if i%5 == 0 { // other bytes: what a redaction publishes
			c.Raw = bytes.Replace(o.Raw, []byte(`"labels":["malicious-activity"],`), nil, 1)
			c.Hash = sha256.Sum256(c.Raw)
		}
		copies = append(copies, c)
	}
	add(t, st, "inbound", src...)
	add(t, st, "pub", copies...)
	reader := sdkmetric.NewManualReader()
	x := search.NewIndexer(search.IndexerOptions{Store: search.Join(st, ix), Collections: []string{"inbound", "pub"},
		MeterProvider: sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))})
	stats, err := x.RunOnce(ctx)
	if err != nil {
		t.Fatal(err)
	}
	const changed = n / 5
	if stats.Versions != 2*n || stats.Reused != n-changed {
		t.Fatalf("indexed %d versions, %d reused; want %d, %d", stats.Versions, stats.Reused, 2*n, n-changed)
	}
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(ctx, &rm); err != nil {
		t.Fatal(err)
	}
	got := counterSums(&rm)
	for k, want := range map[string]int64{
		"ctigate.search.versions inbound read": n, "ctigate.search.versions inbound reused": 0,
		"ctigate.search.versions pub read": changed, "ctigate.search.versions pub reused": n - changed,
	} {
		if got[k] != want {
			t.Errorf("%s = %d, want %d (all: %v)", k, got[k], want, got)
		}
	}
	// Reused or read, each copy is found in its own collection, with
	// its own labels.
	for i, c := range copies {
		r, err := search.NewSearcher(search.Join(st, ix)).Search(ctx, search.Query{Value: fmt.Sprintf("198.51.100.%d", i), Collections: []string{"pub"}})
		if err != nil {
			t.Fatal(err)
		}
		if len(r.Hits) != 1 || r.Hits[0].ID != c.ID || r.Hits[0].Collection != "pub" {
			t.Fatalf("copy %d: hits %v", i, ids(r))
		}
	}
	es, err := ix.IndexLookup(ctx, []store.IndexKey{{Class: "ipv4/32", Value: "198.51.100.1"}, {Class: "ipv4/32", Value: "198.51.100.0"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range es {
		redacted := e.Value == "198.51.100.0"
		if want := !(redacted && e.Collection == "pub"); (len(e.Labels) == 1) != want || e.TLP != "TLP:GREEN" {
			t.Errorf("%s in %s: labels %v, TLP %s", e.Value, e.Collection, e.Labels, e.TLP)
		}
	}
}

// recordingStore records the collection of each AddIndexEntries.
type recordingStore struct {
	search.Store
	colls []string
}

func (r *recordingStore) AddIndexEntries(ctx context.Context, coll string, es []store.IndexEntry, name string, at time.Time) error {
	r.colls = append(r.colls, coll)
	return r.Store.AddIndexEntries(ctx, coll, es, name, at)
}

// TestIndexerFollowsFanout: with Follow, a collection is indexed no
// further than the date_added its routes have decided, except for
// versions older than FollowWait; a collection no route reads, and every
// collection without Follow, to its end. A pass takes the collections a
// batch at a time, in turn, so that copies are indexed close to their
// sources; an error of Follow fails that collection only.
func TestIndexerFollowsFanout(t *testing.T) {
	ctx := t.Context()
	st, ix := openStore(t)
	t1 := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	const n = 10
	var src []store.Object
	for i := range n {
		o := indicator(i, fmt.Sprintf("[ipv4-addr:value = '198.51.100.%d']", i), tlpGreen, t1)
		o.Hash = sha256.Sum256(o.Raw)
		src = append(src, o)
		add(t, st, "inbound", o) // one date_added each
	}
	add(t, st, "pub", src...)
	page, err := st.Objects(ctx, "inbound", store.Query{Versions: []store.VersionMatch{{Kind: store.All}}})
	if err != nil || len(page.Objects) != n {
		t.Fatalf("inbound: %d versions, %v", len(page.Objects), err)
	}
	added := make([]time.Time, n)
	for i, o := range page.Objects {
		added[i] = o.DateAdded
	}
	page.Release()

	var (
		decided   time.Time
		followErr error
		now       = added[n-1].Add(time.Second)
	)
	rec := &recordingStore{Store: search.Join(st, ix)}
	x := search.NewIndexer(search.IndexerOptions{Store: rec, Collections: []string{"inbound", "pub"}, BatchSize: 2,
		FollowWait: time.Minute, Clock: func() time.Time { return now },
		Follow: func(_ context.Context, coll string) (time.Time, bool, error) {
			if coll != "inbound" {
				return time.Time{}, false, nil
			}
			return decided, true, followErr
		}})
	indexed := func(coll string) int {
		t.Helper()
		keys := make([]store.IndexKey, n)
		for i := range keys {
			keys[i] = store.IndexKey{Class: "ipv4/32", Value: fmt.Sprintf("198.51.100.%d", i)}
		}
		es, err := ix.IndexLookup(ctx, keys)
		if err != nil {
			t.Fatal(err)
		}
		k := 0
		for _, e := range es {
			if e.Collection == coll {
				k++
			}
		}
		return k
	}

	// Nothing decided: the inbound collection waits, the other is indexed.
	stats, err := x.RunOnce(ctx)
	if err != nil || stats.Versions != n || indexed("inbound") != 0 || indexed("pub") != n {
		t.Fatalf("nothing decided: %+v, %v; inbound %d, pub %d indexed", stats, err, indexed("inbound"), indexed("pub"))
	}
	// Decided through the fourth: the first four, from pub's extractions.
	decided = added[3]
	stats, err = x.RunOnce(ctx)
	if err != nil || stats.Versions != 4 || stats.Reused != 4 || indexed("inbound") != 4 {
		t.Fatalf("decided through the fourth: %+v, %v; inbound %d indexed", stats, err, indexed("inbound"))
	}
	// Follow fails: that collection fails, and waits.
	followErr = errors.New("checkpoint unreadable")
	decided = added[n-1]
	if _, err := x.RunOnce(ctx); err == nil || !strings.Contains(err.Error(), "collection inbound") || indexed("inbound") != 4 {
		t.Fatalf("Follow failing: %v; inbound %d indexed", err, indexed("inbound"))
	}
	// Not decided, but added more than FollowWait ago: indexed.
	followErr, decided = nil, time.Time{}
	now = added[7].Add(time.Minute)
	if stats, err = x.RunOnce(ctx); err != nil || stats.Versions != 4 || indexed("inbound") != 8 {
		t.Fatalf("waited for: %+v, %v; inbound %d indexed", stats, err, indexed("inbound"))
	}

	// Without Follow, a pass alternates between the collections, a batch
	// of each at a time, and reuses every copy's extraction.
	st2, ix2 := openStore(t)
	add(t, st2, "inbound", src...)
	add(t, st2, "pub", src[:6]...)
	rec2 := &recordingStore{Store: search.Join(st2, ix2)}
	x2 := search.NewIndexer(search.IndexerOptions{Store: rec2, Collections: []string{"inbound", "pub"}, BatchSize: 2})
	stats, err = x2.RunOnce(ctx)
	if err != nil || stats.Versions != n+6 || stats.Reused != 6 {
		t.Fatalf("without Follow: %+v, %v", stats, err)
	}
	want := []string{"inbound", "pub", "inbound", "pub", "inbound", "pub", "inbound", "inbound"}
	if !slices.Equal(rec2.colls, want) {
		t.Fatalf("batches written %v, want %v", rec2.colls, want)
	}
}
