package server_test

import (
	"context"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ctigate/ctigate/fanout"
	"github.com/ctigate/ctigate/policy"
	"github.com/ctigate/ctigate/server"
	"github.com/ctigate/ctigate/stix"
	"github.com/ctigate/ctigate/store"
	"github.com/ctigate/ctigate/store/bolt"
)

// BenchmarkPropagation measures, at light load, how long after a POST is
// acknowledged its object is in a route's collection: one TLP:GREEN
// indicator at a time into a real bbolt file (fsync on), with fan-out
// running as serve runs it (woken by each ingest), the route's
// collection read directly from the store every 100 µs. It reports the
// p50 and p99 of b.N such propagations.
//
//	go test ./server -run '^$' -bench Propagation -benchtime 200x
func BenchmarkPropagation(b *testing.B) {
	cfg := testConfig(b)
	cfg.Routes = []policy.RouteConfig{{ID: publishedID, Name: "law-enforcement", Sources: []string{inboundID}, Ceiling: "TLP:AMBER"}}
	st, err := bolt.Open(filepath.Join(b.TempDir(), "ctigate.db"), bolt.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	routes, err := policy.CompileRoutes(cfg.Routes)
	if err != nil {
		b.Fatal(err)
	}
	markings := stix.NewMarkings()
	fan := fanout.New(fanout.Options{Store: st, Routes: routes, Markings: markings})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = fan.Run(ctx); close(done) }()
	b.Cleanup(func() { cancel(); <-done })
	srv := server.New(server.Options{Config: cfg, Store: st, Auth: authOf(b, cfg), Markings: markings,
		OnIngest: func(string) { fan.Notify() }})
	post := func(body string) {
		w := postInProcess(srv, body)
		if w.Code != http.StatusAccepted {
			b.Fatalf("POST: %d %.200s", w.Code, w.Body.String())
		}
	}
	var lat []time.Duration
	b.ResetTimer()
	for i := range b.N {
		ind := strings.TrimSuffix(indicator(i, "2026-01-02T00:00:00.000Z"), "}") + `,"object_marking_refs":["` + stix.TLP2Green + `"]}`
		id := ind[strings.Index(ind, `"id":"`)+6:]
		id = id[:strings.IndexByte(id, '"')]
		post(`{"objects":[` + ind + `]}`)
		acked := time.Now()
		for {
			p, err := st.Objects(context.Background(), publishedID, store.Query{IDs: []string{id}, WithoutRaw: true})
			if err != nil {
				b.Fatal(err)
			}
			if len(p.Objects) > 0 {
				break
			}
			if time.Since(acked) > 10*time.Second {
				b.Fatalf("%s not published after 10 s", id)
			}
			time.Sleep(100 * time.Microsecond)
		}
		lat = append(lat, time.Since(acked))
		time.Sleep(20 * time.Millisecond) // light load: one at a time, spaced
	}
	b.StopTimer()
	slices.Sort(lat)
	q := func(f float64) float64 { return float64(lat[int(f*float64(len(lat)-1))].Microseconds()) / 1000 }
	b.ReportMetric(q(0.5), "p50-ms")
	b.ReportMetric(q(0.99), "p99-ms")
}
