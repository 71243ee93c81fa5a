package redis_test

import (
	"testing"
	"time"

	"github.com/ctigate/ctigate"
	"github.com/ctigate/ctigate/store"
	"github.com/ctigate/ctigate/store/redis"
	"github.com/ctigate/ctigate/store/redis/redistest"
)

// TestStatusTTL: Redis itself removes an expired status. PutStatus sets
// the key's TTL to the time left until Expires in the same command,
// renews it when the status is replaced, and clears it when the
// replacement has no Expires; a key whose TTL has run out is gone, and
// the status reads as unknown.
func TestStatusTTL(t *testing.T) {
	ctx := t.Context()
	url := redistest.URL(t)
	admin, err := redis.NewClient(redis.Config{URL: url})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Close() })
	prefix := redistest.Prefix(t, admin)
	c, err := redis.NewClient(redis.Config{URL: url})
	if err != nil {
		t.Fatal(err)
	}
	s, err := redis.New(c, redis.Options{Prefix: prefix, CloseClient: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })

	st := store.Status{ID: "5f6a3c1e-0000-4000-8000-000000000001", APIRoot: "exchange", Collection: "c", Owner: "cert-a",
		Status: "complete", RequestTimestamp: time.Now().UTC()}
	key := prefix + ":st:" + st.ID
	put := func(expires time.Time) {
		t.Helper()
		st.Expires = expires
		if err := s.PutStatus(ctx, st); err != nil {
			t.Fatalf("PutStatus: %v", err)
		}
	}
	wantTTL := func(what string, want time.Duration) {
		t.Helper()
		got, err := admin.PTTL(ctx, key).Result()
		if err != nil {
			t.Fatal(err)
		}
		if got > want || got < want-time.Minute {
			t.Fatalf("%s: TTL of %s = %s, want about %s", what, key, got, want)
		}
	}

	put(time.Now().Add(24 * time.Hour))
	wantTTL("written", 24*time.Hour)
	put(time.Now().Add(7 * 24 * time.Hour))
	wantTTL("replaced with a later Expires", 7*24*time.Hour)
	put(time.Time{})
	if got, err := admin.PTTL(ctx, key).Result(); err != nil || got != -1 {
		t.Fatalf("replaced without Expires: PTTL = %v, %v; want -1 (no TTL)", got, err)
	}

	put(time.Now().Add(300 * time.Millisecond))
	if _, err := s.Status(ctx, st.ID); err != nil {
		t.Fatalf("Status before its TTL ran out: %v", err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		n, err := admin.Exists(ctx, key).Result()
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s still exists 5 s after its status expired", key)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, err := s.Status(ctx, st.ID); ctigate.KindOf(err) != ctigate.NotFound {
		t.Fatalf("Status after its TTL ran out: got %v, want NotFound", err)
	}
}
