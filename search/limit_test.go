package search_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/ctigate/ctigate/search"
	"github.com/ctigate/ctigate/store"
)

// addrs returns n distinct IPv4 addresses of the /16 net (e.g. "10.1").
func addrs(net string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s.%d.%d", net, i>>8, i&0xff)
	}
	return out
}

// inPattern is a STIX pattern comparing ipv4-addr:value with the IN set of
// values.
func inPattern(values []string) string {
	return "[ipv4-addr:value IN ('" + strings.Join(values, "', '") + "')]"
}

// indexedOf returns, of values, those the index has an entry for under
// object id, in order.
func indexedOf(t *testing.T, ix store.Index, id string, values []string) []string {
	t.Helper()
	keys := make([]store.IndexKey, len(values))
	for i, v := range values {
		keys[i] = store.IndexKey{Class: "ipv4/32", Value: v}
	}
	es, err := ix.IndexLookup(t.Context(), keys)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range es {
		if e.ID == id {
			out = append(out, e.Value)
		}
	}
	return out
}

// counterSums returns the sums of the Int64 counters named in rm, by
// metric name, collection and, where a counter has it, extraction.
func counterSums(rm *metricdata.ResourceMetrics) map[string]int64 {
	out := map[string]int64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			sum, ok := m.Data.(metricdata.Sum[int64])
			if !ok {
				continue
			}
			for _, dp := range sum.DataPoints {
				coll, _ := dp.Attributes.Value(attribute.Key("ctigate.collection"))
				k := m.Name + " " + coll.AsString()
				if ex, ok := dp.Attributes.Value(attribute.Key("ctigate.extraction")); ok {
					k += " " + ex.AsString()
				}
				out[k] += dp.Value
			}
		}
	}
	return out
}

// TestObservableLimit: an object with more observables than the limit
// gets index entries for the first MaxObservables only, and the pass says
// so (Stats, a log line, metrics); an object at the limit is indexed
// whole, and without a word.
func TestObservableLimit(t *testing.T) {
	ctx := t.Context()
	st, ix := openStore(t)
	t1 := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	const n, k = search.DefaultMaxObservables, 50
	over := addrs("10.1", n+k)
	at := addrs("10.2", n)
	// A repeated value counts once: the limit is on distinct observables.
	long := indicator(1, inPattern(append(over, over[0], over[1])), tlpGreen, t1)
	full := indicator(2, inPattern(at), tlpGreen, t1)
	small := indicator(3, "[ipv4-addr:value = '192.0.2.1']", tlpGreen, t1)
	add(t, st, "inbound", long, full, small)

	var logs bytes.Buffer
	reader := sdkmetric.NewManualReader()
	x := search.NewIndexer(search.IndexerOptions{
		Store: search.Join(st, ix), Collections: []string{"inbound"},
		Logger:        slog.New(slog.NewJSONHandler(&logs, nil)),
		MeterProvider: sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader)),
	})
	stats, err := x.RunOnce(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := (search.Stats{Versions: 3, Entries: n + n + 1, Partial: 1}); stats != want {
		t.Errorf("stats %+v, want %+v", stats, want)
	}

	// The index holds the first n values of the long pattern, and every
	// value of the one at the limit.
	got := indexedOf(t, ix, long.ID, over)
	if len(got) != n {
		t.Fatalf("%d entries for an object of %d observables, want %d", len(got), n+k, n)
	}
	for i, v := range got {
		if v != over[i] {
			t.Fatalf("entry %d is %s, want %s (the first %d in pattern order)", i, v, over[i], n)
		}
	}
	if got := indexedOf(t, ix, full.ID, at); len(got) != n {
		t.Errorf("%d entries for an object of %d observables, want all", len(got), n)
	}
	s := search.NewSearcher(search.Join(st, ix))
	for v, want := range map[string]int{over[0]: 1, over[n-1]: 1, over[n]: 0, over[n+k-1]: 0} {
		r, err := s.Search(ctx, search.Query{Value: v, Collections: []string{"inbound"}})
		if err != nil || len(r.Hits) != want {
			t.Errorf("search %s: %d hits, %v; want %d", v, len(r.Hits), err, want)
		}
	}

	// One log line, for the long one.
	var lines []map[string]any
	for line := range strings.Lines(logs.String()) {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatal(err)
		}
		lines = append(lines, m)
	}
	if len(lines) != 1 {
		t.Fatalf("log:\n%s\nwant one line", logs.String())
	}
	l := lines[0]
	if l["level"] != "WARN" || !strings.Contains(l["msg"].(string), "indexed partially") || l["collection"] != "inbound" || l["id"] != long.ID ||
		l["version"] != "2024-01-01T00:00:00.000Z" || l["observables"] != float64(n+k) || l["indexed"] != float64(n) ||
		l["limit_setting"] != "search.max_observables_per_object" {
		t.Errorf("log line %v", l)
	}

	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	sums := counterSums(&rm)
	if sums["ctigate.search.objects.partial inbound"] != 1 || sums["ctigate.search.observables.skipped inbound"] != k {
		t.Errorf("metrics %v, want 1 object indexed partially, %d observables skipped", sums, k)
	}
}

// TestObservableLimitConfigured: the limit in force is read at each pass
// (a reload changes it); versions indexed before keep their entries.
func TestObservableLimitConfigured(t *testing.T) {
	ctx := t.Context()
	st, ix := openStore(t)
	t1, t2 := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2024, 1, 2, 0, 0, 0, 0, time.UTC)
	values := addrs("10.3", 40)
	limit := 10
	x := search.NewIndexer(search.IndexerOptions{Store: search.Join(st, ix), Collections: []string{"c"},
		MaxObservablesOf: func() int { return limit }})

	add(t, st, "c", indicator(1, inPattern(values), tlpGreen, t1))
	stats, err := x.RunOnce(ctx)
	if err != nil || stats.Entries != 10 || stats.Partial != 1 {
		t.Fatalf("limit 10: %+v, %v", stats, err)
	}
	limit = 100
	add(t, st, "c", indicator(1, inPattern(values), tlpGreen, t2))
	stats, err = x.RunOnce(ctx)
	if err != nil || stats.Entries != 40 || stats.Partial != 0 {
		t.Fatalf("limit 100: %+v, %v", stats, err)
	}
	keys := make([]store.IndexKey, len(values))
	for i, v := range values {
		keys[i] = store.IndexKey{Class: "ipv4/32", Value: v}
	}
	es, err := ix.IndexLookup(ctx, keys)
	if err != nil {
		t.Fatal(err)
	}
	byVersion := map[time.Time]int{}
	for _, e := range es {
		byVersion[e.Version]++
	}
	if byVersion[t1] != 10 || byVersion[t2] != 40 {
		t.Errorf("entries by version %v, want 10 of the first, 40 of the second", byVersion)
	}
}

// TestObservableLimitObservedData: observed-data is bounded alike, the
// SCOs it refers to and those it embeds counted together, in a fixed
// order (embedded objects by key).
func TestObservableLimitObservedData(t *testing.T) {
	ctx := t.Context()
	st, ix := openStore(t)
	t1 := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	var embedded []string
	for i := range 5 {
		embedded = append(embedded, fmt.Sprintf(`"%d":{"type":"ipv4-addr","value":"10.4.0.%d"}`, i, i))
	}
	id := "observed-data--00000000-0000-4000-8000-000000000009"
	raw := `{"type":"observed-data","spec_version":"2.1","id":"` + id + `","created":"2024-01-01T00:00:00Z","modified":"2024-01-01T00:00:00Z",` +
		`"first_observed":"2024-01-01T00:00:00Z","last_observed":"2024-01-01T00:00:00Z","number_observed":1,"objects":{` + strings.Join(embedded, ",") + `}}`
	add(t, st, "c", store.Object{ID: id, Type: "observed-data", SpecVersion: "2.1", Version: t1, Raw: []byte(raw)})
	for range 3 { // the same entries each time the index is rebuilt
		x := search.NewIndexer(search.IndexerOptions{Store: search.Join(st, ix), Collections: []string{"c"}, MaxObservables: 3})
		stats, err := x.RunOnce(ctx)
		if err != nil || stats.Entries != 3 || stats.Partial != 1 {
			t.Fatalf("%+v, %v", stats, err)
		}
		if got := indexedOf(t, ix, id, addrs("10.4", 5)); strings.Join(got, " ") != "10.4.0.0 10.4.0.1 10.4.0.2" {
			t.Fatalf("indexed %q", got)
		}
		if err := ix.DropIndex(ctx); err != nil {
			t.Fatal(err)
		}
	}
}
