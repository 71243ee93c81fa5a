package redis_test

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
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

// TestStatusPacked: an envelope's status is stored deflated, in less
// than half its JSON, and reads back whole; a status stored as JSON (as
// earlier builds wrote every one) still reads.
func TestStatusPacked(t *testing.T) {
	ctx := t.Context()
	ss, admin := replicas(t, 1)
	s, prefix := ss[0], ss[0].Prefix()

	st := store.Status{ID: "5f6a3c1e-0000-4000-8000-0000000000a1", APIRoot: "exchange", Collection: "c", Owner: "cert-a",
		Status: "complete", RequestTimestamp: time.Date(2026, 12, 6, 10, 0, 0, 123, time.UTC), TotalCount: 500}
	jsonLen := 0
	for i := range 500 {
		h := sha256.Sum256(fmt.Appendf(nil, "%d", i))
		d := store.StatusDetail{ID: fmt.Sprintf("indicator--%s", uuidOf(i)), Version: "2026-12-06T08:51:29.829Z",
			Message: "added; TLP:GREEN; sha256 " + hex.EncodeToString(h[:])}
		st.Successes = append(st.Successes, d)
		jsonLen += len(`{"id":"","v":"","m":""},`) + len(d.ID) + len(d.Version) + len(d.Message)
	}
	if err := s.PutStatus(ctx, st); err != nil {
		t.Fatal(err)
	}
	n, err := admin.StrLen(ctx, prefix+":st:"+st.ID).Result()
	if err != nil {
		t.Fatal(err)
	}
	if n*2 > int64(jsonLen) {
		t.Fatalf("a status of %d bytes of JSON details is stored in %d bytes, want less than half", jsonLen, n)
	}
	got, err := s.Status(ctx, st.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Successes) != 500 || got.Successes[499] != st.Successes[499] || !got.RequestTimestamp.Equal(st.RequestTimestamp) {
		t.Fatalf("read back %d successes, last %+v", len(got.Successes), got.Successes[len(got.Successes)-1])
	}

	legacy := `{"id":"5f6a3c1e-0000-4000-8000-0000000000a2","api_root":"exchange","collection":"c","owner":"cert-a","status":"complete","request_timestamp":"2026-12-06T10:00:00Z","total_count":1,"successes":[{"id":"indicator--x","v":"2026-12-06T08:51:29.829Z","m":"added"}]}`
	if err := admin.Set(ctx, prefix+":st:5f6a3c1e-0000-4000-8000-0000000000a2", legacy, 0).Err(); err != nil {
		t.Fatal(err)
	}
	got, err = s.Status(ctx, "5f6a3c1e-0000-4000-8000-0000000000a2")
	if err != nil || len(got.Successes) != 1 || got.Successes[0].Message != "added" {
		t.Fatalf("a status stored as JSON: %+v, %v", got, err)
	}

	// A stored value that does not inflate is an error, not a status.
	if err := admin.Set(ctx, prefix+":st:5f6a3c1e-0000-4000-8000-0000000000a3", "\x01not deflate", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Status(ctx, "5f6a3c1e-0000-4000-8000-0000000000a3"); ctigate.KindOf(err) != ctigate.Internal {
		t.Fatalf("a corrupt packed status: got %v, want Internal", err)
	}
}

func uuidOf(i int) string {
	h := sha256.Sum256(fmt.Appendf(nil, "uuid %d", i))
	x := hex.EncodeToString(h[:16])
	return x[:8] + "-" + x[8:12] + "-4" + x[13:16] + "-8" + x[17:20] + "-" + x[20:32]
}
