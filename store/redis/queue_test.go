package redis_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/ctigate/ctigate/store"
	"github.com/ctigate/ctigate/store/redis"
	"github.com/ctigate/ctigate/store/redis/redistest"
)

// eventStore opens a store with events on the test Redis, on its own
// prefix.
func eventStore(t *testing.T, maxLen int64) (*redis.Store, goredis.UniversalClient) {
	t.Helper()
	c, err := redis.NewClient(redis.Config{URL: redistest.URL(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	s, err := redis.New(c, redis.Options{Prefix: redistest.Prefix(t, c), Events: true, EventMaxLen: maxLen})
	if err != nil {
		t.Fatal(err)
	}
	return s, c
}

func testObj(i int) store.Object {
	id := fmt.Sprintf("indicator--00000000-0000-4000-8000-%012d", i)
	v := time.Date(2026, 1, 1, 0, 0, i, 0, time.UTC)
	return store.Object{ID: id, Type: "indicator", SpecVersion: "2.1", Version: v, Raw: []byte(`{"id":"` + id + `"}`)}
}

func addN(t *testing.T, s *redis.Store, coll string, from, n int) []store.AddResult {
	t.Helper()
	var objs []store.Object
	for i := from; i < from+n; i++ {
		objs = append(objs, testObj(i))
	}
	res, err := s.AddObjects(t.Context(), coll, objs)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func queue(t *testing.T, s *redis.Store, coll, consumer string, idle time.Duration, max int64) *redis.Queue {
	t.Helper()
	q, err := s.Queue(coll, redis.QueueOptions{Group: "fanout", Consumer: consumer, ClaimIdle: idle, MaxDeliveries: max})
	if err != nil {
		t.Fatal(err)
	}
	return q
}

func ids(evs []redis.Event) []string {
	var out []string
	for _, e := range evs {
		out = append(out, e.ID)
	}
	return out
}

// TestEventsWithWrites: each new version appends one event, in the same
// script as the version; a re-add appends none.
func TestEventsWithWrites(t *testing.T) {
	s, c := eventStore(t, 0)
	ctx := t.Context()
	res := addN(t, s, "coll", 0, 3)
	addN(t, s, "coll", 1, 3) // 1, 2 exist; 3 is new
	msgs, err := c.XRange(ctx, s.EventStream("coll"), "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 4 {
		t.Fatalf("%d events, want 4 (one per new version)", len(msgs))
	}
	m := msgs[0].Values
	if m["id"] != testObj(0).ID || m["version"] != "2026-01-01T00:00:00Z" || m["date_added"] != fmt.Sprint(res[0].DateAdded.UnixMicro()) {
		t.Fatalf("first event %v", m)
	}
}

// TestQueueGroup: consumers of one group share the entries; acknowledged
// entries are not delivered again.
func TestQueueGroup(t *testing.T) {
	s, _ := eventStore(t, 0)
	ctx := t.Context()
	addN(t, s, "coll", 0, 10)
	a, b := queue(t, s, "coll", "a", time.Hour, 5), queue(t, s, "coll", "b", time.Hour, 5)
	ea, err := a.Read(ctx, 6, -1)
	if err != nil {
		t.Fatal(err)
	}
	eb, err := b.Read(ctx, 100, -1)
	if err != nil {
		t.Fatal(err)
	}
	if len(ea) != 6 || len(eb) != 4 {
		t.Fatalf("a read %d, b read %d; want 6 and 4", len(ea), len(eb))
	}
	all := append(ids(ea), ids(eb)...)
	slices.Sort(all)
	if len(slices.Compact(all)) != 10 {
		t.Fatalf("entries delivered twice: %v", all)
	}
	for _, e := range ea {
		if err := a.Ack(ctx, e.StreamID); err != nil {
			t.Fatal(err)
		}
	}
	if more, err := a.Read(ctx, 100, -1); err != nil || len(more) != 0 {
		t.Fatalf("read after all delivered: %v, %v; want none", ids(more), err)
	}
	// New versions reach the group.
	addN(t, s, "coll", 10, 1)
	if more, err := b.Read(ctx, 100, -1); err != nil || len(more) != 1 || more[0].ID != testObj(10).ID {
		t.Fatalf("read of a new version: %v, %v", ids(more), err)
	}
}

// TestQueueReclaimAndDeadLetter: entries a dead consumer left pending are
// reclaimed by another after the idle time; an entry never acknowledged
// goes to the dead-letter stream after MaxDeliveries deliveries and is not
// delivered again.
func TestQueueReclaimAndDeadLetter(t *testing.T) {
	s, _ := eventStore(t, 0)
	ctx := t.Context()
	addN(t, s, "coll", 0, 3)
	const idle = 20 * time.Millisecond
	dead := queue(t, s, "coll", "dead", idle, 3)
	got, err := dead.Read(ctx, 3, -1)
	if err != nil || len(got) != 3 {
		t.Fatalf("first read: %v, %v", ids(got), err)
	}
	// The consumer dies. Before the idle time nothing is reclaimed...
	live := queue(t, s, "coll", "live", time.Hour, 3)
	if got, err := live.Read(ctx, 10, -1); err != nil || len(got) != 0 {
		t.Fatalf("read before the idle time: %v, %v; want none", ids(got), err)
	}
	// ...after it, everything is.
	live = queue(t, s, "coll", "live", idle, 3)
	time.Sleep(2 * idle)
	got, err = live.Read(ctx, 10, -1)
	if err != nil || len(got) != 3 || got[0].Deliveries != 2 {
		t.Fatalf("reclaim: %+v, %v; want 3 entries delivered for the second time", got, err)
	}
	// live handles two and keeps failing on the third (poison).
	if err := live.Ack(ctx, got[0].StreamID, got[1].StreamID); err != nil {
		t.Fatal(err)
	}
	poison := got[2]
	time.Sleep(2 * idle)
	got, err = live.Read(ctx, 10, -1)
	if err != nil || len(got) != 1 || got[0].StreamID != poison.StreamID || got[0].Deliveries != 3 {
		t.Fatalf("third delivery: %+v, %v", got, err)
	}
	time.Sleep(2 * idle)
	got, err = live.Read(ctx, 10, -1)
	if err != nil || len(got) != 0 {
		t.Fatalf("after MaxDeliveries: %+v, %v; want nothing delivered", got, err)
	}
	dl, err := s.DeadLetters(ctx, "coll", "", 100)
	if err != nil || len(dl) != 1 {
		t.Fatalf("dead letters: %+v, %v; want 1", dl, err)
	}
	if d := dl[0]; d.StreamID != poison.StreamID || d.ID != poison.ID || d.Group != "fanout" || d.Consumer != "live" || d.Deliveries != 3 {
		t.Fatalf("dead letter %+v; want %s of group fanout, consumer live, 3 deliveries", d, poison.StreamID)
	}
	if more, err := s.DeadLetters(ctx, "coll", dl[0].DeadID, 100); err != nil || len(more) != 0 {
		t.Fatalf("dead letters after the last: %v, %v", more, err)
	}
}

// TestTrimEvents: trimming never drops an entry a group has not
// acknowledged; a stream without groups keeps about EventMaxLen entries.
func TestTrimEvents(t *testing.T) {
	s, c := eventStore(t, 100)
	ctx := context.Background()
	addN(t, s, "coll", 0, 50)
	q := queue(t, s, "coll", "a", time.Hour, 5)
	got, err := q.Read(ctx, 30, -1)
	if err != nil || len(got) != 30 {
		t.Fatalf("read: %d, %v", len(got), err)
	}
	// Acknowledge 0-9 and 20-29; 10-19 stay pending, 30-49 undelivered.
	for i, e := range got {
		if i < 10 || i >= 20 {
			if err := q.Ack(ctx, e.StreamID); err != nil {
				t.Fatal(err)
			}
		}
	}
	n, err := s.TrimEvents(ctx, "coll")
	if err != nil {
		t.Fatal(err)
	}
	if n != 10 {
		t.Fatalf("trimmed %d entries, want 10 (those below the oldest pending)", n)
	}
	if l := c.XLen(ctx, s.EventStream("coll")).Val(); l != 40 {
		t.Fatalf("stream length %d, want 40", l)
	}
	// The pending ones are still there to reclaim, the rest to read.
	other := queue(t, s, "coll", "b", time.Millisecond, 5)
	time.Sleep(5 * time.Millisecond)
	got, err = other.Read(ctx, 100, -1)
	if err != nil || len(got) != 10+20 {
		t.Fatalf("after trimming: read %d, %v; want 30 (10 reclaimed, 20 new)", len(got), err)
	}
	// A live feed without groups is bounded by EventMaxLen.
	addN(t, s, "feed", 0, 1000)
	if _, err := s.TrimEvents(ctx, "feed"); err != nil {
		t.Fatal(err)
	}
	if l := c.XLen(ctx, s.EventStream("feed")).Val(); l < 100 || l > 300 {
		t.Fatalf("feed length after trimming: %d, want about 100", l)
	}
}

// TestLease: one holder at a time; the holder renews; a lease not renewed
// passes to another holder once it expires.
func TestLease(t *testing.T) {
	s, _ := eventStore(t, 0)
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
}
