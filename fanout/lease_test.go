package fanout

import (
	"context"
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
