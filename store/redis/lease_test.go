package redis_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/ctigate/ctigate/store"
	"github.com/ctigate/ctigate/store/redis"
	"github.com/ctigate/ctigate/store/redis/redistest"
)

// leaseStore opens a store on the test Redis, on its own prefix.
func leaseStore(t *testing.T) *redis.Store {
	t.Helper()
	c, err := redis.NewClient(redis.Config{URL: redistest.URL(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	s, err := redis.New(c, redis.Options{Prefix: redistest.Prefix(t, c)})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestLease: one holder at a time; the holder renews; a lease not renewed
// passes to another holder once it expires.
func TestLease(t *testing.T) {
	s := leaseStore(t)
	ctx := t.Context()
	const ttl = 50 * time.Millisecond
	lease := func(holder string) bool {
		t.Helper()
		ok, err := s.Lease(ctx, "fanout/r/s/v", holder, ttl)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	if !lease("a") || lease("b") || !lease("a") {
		t.Fatal("a takes and renews the lease, b must not get it meanwhile")
	}
	if ok, _ := s.Lease(ctx, "another", "b", ttl); !ok {
		t.Fatal("leases of other names are independent")
	}
	time.Sleep(3 * ttl) // a stops renewing
	if !lease("b") || lease("a") {
		t.Fatal("after expiry b takes the lease and a no longer has it")
	}
	// Released by a, which does not hold it: b keeps it. Released by b:
	// a takes it at once.
	if err := s.ReleaseLease(ctx, "fanout/r/s/v", "a"); err != nil {
		t.Fatal(err)
	}
	if lease("a") {
		t.Fatal("a released a lease b holds, and took it")
	}
	if err := s.ReleaseLease(ctx, "fanout/r/s/v", "b"); err != nil {
		t.Fatal(err)
	}
	if !lease("a") {
		t.Fatal("b released its lease, yet a cannot take it")
	}
}

func testObj(i int) store.Object {
	id := fmt.Sprintf("indicator--00000000-0000-4000-8000-%012d", i)
	v := time.Date(2026, 1, 1, 0, 0, i, 0, time.UTC)
	return store.Object{ID: id, Type: "indicator", SpecVersion: "2.1", Version: v, Raw: []byte(`{"id":"` + id + `"}`)}
}
