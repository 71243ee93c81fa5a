package fanout

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"
)

// TestLeaseSharesRoutes: a worker drains only the routes whose lease it
// holds; together the workers publish everything. (Leases on Redis, with
// expiry, are tested in store/redis and with replicas in cmd/ctigate.)
func TestLeaseSharesRoutes(t *testing.T) {
	e := newEnv(t)
	e.add(samples()...)
	var mu sync.Mutex
	holders := map[string]string{} // lease name -> holder
	lease := func(holder string) func(context.Context, string, time.Duration) (bool, error) {
		return func(_ context.Context, name string, ttl time.Duration) (bool, error) {
			mu.Lock()
			defer mu.Unlock()
			if h, ok := holders[name]; ok && h != holder {
				return false, nil
			}
			holders[name] = holder
			return true, nil
		}
	}
	// b holds the judiciary route's lease; a gets the rest.
	holders[leaseName(e.routes[1], inbound)] = "b"
	a := New(Options{Store: e.st, Routes: e.routes, Markings: e.markings, Clock: func() time.Time { return now }, Lease: lease("a")})
	if n := e.runOnce(a); n != len(samples())+1 {
		t.Fatalf("worker a evaluated %d versions, want %d (one route)", n, len(samples())+1)
	}
	if got := e.all(judiColl); len(got) != 0 {
		t.Fatalf("judiciary, whose lease b holds, has %d objects after a's pass", len(got))
	}
	b := New(Options{Store: e.st, Routes: e.routes, Markings: e.markings, Clock: func() time.Time { return now }, Lease: lease("b")})
	if n := e.runOnce(b); n != len(samples())+1 {
		t.Fatalf("worker b evaluated %d versions, want %d (its route)", n, len(samples())+1)
	}
	e.check("after both workers")
}

// TestLeasesReleasedOnStop: stopped, the worker gives up the leases it
// holds (and only those), so another replica takes its routes over at
// once.
func TestLeasesReleasedOnStop(t *testing.T) {
	e := newEnv(t)
	e.add(samples()...)
	var mu sync.Mutex
	holders := map[string]string{}
	holders[leaseName(e.routes[1], inbound)] = "b" // b keeps the judiciary route
	lease := func(_ context.Context, name string, _ time.Duration) (bool, error) {
		mu.Lock()
		defer mu.Unlock()
		if h, ok := holders[name]; ok && h != "a" {
			return false, nil
		}
		holders[name] = "a"
		return true, nil
	}
	var released []string
	release := func(_ context.Context, name string) error {
		mu.Lock()
		defer mu.Unlock()
		if holders[name] == "a" {
			delete(holders, name)
		}
		released = append(released, name)
		return nil
	}
	w := New(Options{Store: e.st, Routes: e.routes, Markings: e.markings, Clock: func() time.Time { return now },
		Lease: lease, Release: release, Interval: time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- w.Run(ctx) }()
	for len(e.all(lawColl)) == 0 {
		time.Sleep(time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	w.ReleaseLeases(context.Background())
	mu.Lock()
	defer mu.Unlock()
	if want := []string{leaseName(e.routes[0], inbound)}; !slices.Equal(released, want) {
		t.Errorf("released %v, want only the lease a held, %v", released, want)
	}
	if _, ok := holders[leaseName(e.routes[0], inbound)]; ok {
		t.Error("the law-enforcement lease is still held after a stopped")
	}
	if holders[leaseName(e.routes[1], inbound)] != "b" {
		t.Error("b's lease changed hands")
	}
}
