package fanout

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/ctigate/ctigate/gateway"
	"github.com/ctigate/ctigate/policy"
	"github.com/ctigate/ctigate/stix"
	"github.com/ctigate/ctigate/store"
	"github.com/ctigate/ctigate/store/bolt"
)

// BenchmarkRunOnce measures fan-out throughput: 100,000 inbound
// indicators (TLP:CLEAR, GREEN, AMBER and RED in turn) through
// Worker.RunOnce for the two demo routes (AMBER and GREEN ceilings) over a
// bolt store, as `ctigate serve` opens it (fsync on commit) and with
// NoSync. Each iteration fans the whole inbound collection out to two
// fresh routes (new published collections), so every iteration does the
// same work. The figure is object-route decisions/s.
//
//	go test ./fanout -run '^$' -bench RunOnce -benchtime 3x
func BenchmarkRunOnce(b *testing.B) {
	const n = 100_000
	for _, c := range []struct {
		name   string
		noSync bool
	}{{"sync", false}, {"nosync", true}} {
		b.Run(c.name, func(b *testing.B) {
			st, err := bolt.Open(filepath.Join(b.TempDir(), "ctigate.db"), bolt.Options{NoSync: c.noSync})
			if err != nil {
				b.Fatal(err)
			}
			defer st.Close()
			ctx := context.Background()
			tlp := [4]string{stix.TLP2Clear, stix.TLP2Green, stix.TLP2Amber, stix.TLP2Red}
			objs := make([]store.Object, 0, 1000)
			for i := range n {
				objs = append(objs, indicator(i, marked(tlp[i%4])))
				if len(objs) == cap(objs) {
					if _, err := st.AddObjects(ctx, inbound, objs); err != nil {
						b.Fatal(err)
					}
					objs = objs[:0]
				}
			}
			decisions := 0
			iter := 0
			for b.Loop() {
				b.StopTimer()
				routes := benchRoutes(b, iter)
				w := New(Options{Store: st, Routes: routes, Clock: func() time.Time { return now }})
				iter++
				b.StartTimer()
				k, err := w.RunOnce(ctx)
				if err != nil {
					b.Fatal(err)
				}
				if k != 2*n {
					b.Fatalf("evaluated %d, want %d", k, 2*n)
				}
				decisions += k
			}
			b.ReportMetric(float64(decisions)/b.Elapsed().Seconds(), "decisions/s")
		})
	}
}

// benchRoutes returns the demo routes (AMBER, GREEN) over fresh published
// collections, distinct for each i.
func benchRoutes(b *testing.B, i int) []*policy.Route {
	var out []*policy.Route
	for k, ceiling := range []string{"TLP:AMBER", "TLP:GREEN"} {
		r, err := policy.Compile(policy.RouteConfig{
			ID:      fmt.Sprintf("0b5e7c1a-2d3f-4a6b-8c9d-%06d%06d", k, i),
			Name:    fmt.Sprintf("bench-%d-%d", k, i),
			Sources: []string{inbound}, Ceiling: ceiling,
		})
		if err != nil {
			b.Fatal(err)
		}
		out = append(out, r)
	}
	return out
}

// BenchmarkRelease measures releasing parked objects: 2,000 indicators
// waiting for their creator's identity, then the identity, over a bolt
// store with fsync on commit as `ctigate serve` opens it. One op is the
// RunOnce that publishes them and removes their parking entries; the
// figure is objects released per second.
//
//	go test ./fanout -run '^$' -bench Release -benchtime 5x
func BenchmarkRelease(b *testing.B) {
	const n = 2000
	st, err := bolt.Open(filepath.Join(b.TempDir(), "ctigate.db"), bolt.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	released := 0
	for iter := 0; b.Loop(); iter++ {
		b.StopTimer()
		routes := benchRoutes(b, iter)
		w := New(Options{Store: st, Routes: routes[:1], Clock: func() time.Time { return now }})
		who := greenIdentity(10_000 + iter)
		objs := make([]store.Object, n)
		for i := range objs {
			objs[i] = indicator(iter*n+i, marked(stix.TLP2Green)+`,"created_by_ref":"`+who.ID+`"`)
			objs[i].Producer = who.Producer
		}
		if _, err := st.AddObjects(ctx, inbound, objs); err != nil {
			b.Fatal(err)
		}
		if _, err := w.RunOnce(ctx); err != nil {
			b.Fatal(err)
		}
		if pk, err := st.Objects(ctx, gateway.ParkingOf(CheckpointName(routes[0], inbound)), store.Query{Limit: n + 10, WithoutRaw: true}); err != nil || len(pk.Objects) != n {
			b.Fatalf("%d objects parked (%v); want %d", len(pk.Objects), err, n)
		}
		if _, err := st.AddObjects(ctx, inbound, []store.Object{who}); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if _, err := w.RunOnce(ctx); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		p, err := st.Objects(ctx, routes[0].ID(), store.Query{Limit: n + 10, WithoutRaw: true})
		if err != nil {
			b.Fatal(err)
		}
		if len(p.Objects) < n {
			b.Fatalf("the route holds %d objects; want the %d released", len(p.Objects), n)
		}
		released += n
		b.StartTimer()
	}
	b.ReportMetric(float64(released)/b.Elapsed().Seconds(), "released/s")
}
