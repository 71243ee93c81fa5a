package redis

import (
	"context"
	"fmt"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/ctigate/ctigate"
	"github.com/ctigate/ctigate/store"
	"github.com/ctigate/ctigate/store/redis/redistest"
)

// TestRunAddsCheckpointPerAdd: adds sharing a turn are checked each on
// its own: one whose checkpoint moved is a Conflict and writes nothing,
// the others are written, and a checkpoint moved by one add is what the
// next add in the same turn starts from.
func TestRunAddsCheckpointPerAdd(t *testing.T) {
	s, c := internalStore(t)
	item := func(i int) addItem {
		o := store.Object{ID: "indicator--00000000-0000-4000-8000-00000000000" + string(rune('0'+i)), Type: "indicator", SpecVersion: "2.1",
			Version: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), Raw: []byte(`{}`)}
		return addItem{id: o.ID, ver: versionKey(o.Version), spec: listSpec(&o), rec: encodeRecord(&o)}
	}
	now := time.Now().UnixMicro()
	stale := &addReq{items: []addItem{item(1)}, cpName: "cp", cpFrom: "42", cpAt: "43", now: now}
	first := &addReq{items: []addItem{item(2)}, cpName: "cp", cpFrom: "", cpAt: "100", now: now}
	second := &addReq{items: []addItem{item(3)}, cpName: "cp", cpFrom: "100", cpAt: "200", now: now}
	plain := &addReq{items: []addItem{item(4)}, now: now}
	s.runAdds(t.Context(), "c", []*addReq{stale, first, second, plain})
	if ctigate.KindOf(stale.err) != ctigate.Conflict {
		t.Fatalf("add from a moved checkpoint: %v, want a Conflict", stale.err)
	}
	for name, r := range map[string]*addReq{"first": first, "second": second, "plain": plain} {
		if r.err != nil || len(r.plan.res) != 1 || r.plan.res[0] <= 0 {
			t.Fatalf("%s add: %+v, %v; want it written", name, r.plan, r.err)
		}
	}
	if at, err := c.HGet(t.Context(), s.collKey("c", "ck"), "cp").Result(); err != nil || at != "200" {
		t.Fatalf("checkpoint %q, %v; want 200 (moved by both adds of the turn)", at, err)
	}
	p, err := s.Objects(t.Context(), "c", store.Query{Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Objects) != 3 {
		t.Fatalf("%d objects stored, want 3 (not the conflicting add's)", len(p.Objects))
	}
	for _, o := range p.Objects {
		if o.ID == item(1).id {
			t.Fatal("the conflicting add's object was stored")
		}
	}
}

// BenchmarkReceivedLines: the pending received entries of an envelope of
// 500 objects, encoded as an add does before its transaction.
func BenchmarkReceivedLines(b *testing.B) {
	s := &Store{}
	ctx := store.WithActor(context.Background(), store.Actor{User: "cert-a", Org: "CERT-A"})
	objs := make([]store.Object, 500)
	for i := range objs {
		objs[i] = store.Object{ID: fmt.Sprintf("indicator--00000000-0000-4000-8000-%012d", i), Type: "indicator", SpecVersion: "2.1",
			Version: time.Date(2026, 1, 1, 0, 0, i, 0, time.UTC)}
		objs[i].Hash[0] = byte(i)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := s.receivedLines(ctx, "24f70a31-7be5-4fdd-8353-9784877646c1", objs); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(objs))/1000, "µs/object")
}

// internalStore returns a Store on a fresh prefix of the test Redis, and
// its client.
func internalStore(t *testing.T) (*Store, goredis.UniversalClient) {
	t.Helper()
	c, err := NewClient(Config{URL: redistest.URL(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	s, err := New(c, Options{Prefix: redistest.Prefix(t, c)})
	if err != nil {
		t.Fatal(err)
	}
	return s, c
}
