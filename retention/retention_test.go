package retention

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/ctigate/ctigate/custody"
	"github.com/ctigate/ctigate/store"
	"github.com/ctigate/ctigate/store/bolt"
)

type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time          { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Advance(d time.Duration) { c.mu.Lock(); c.now = c.now.Add(d); c.mu.Unlock() }

func obj(i int) store.Object {
	id := fmt.Sprintf("indicator--00000000-0000-4000-8000-%012d", i)
	raw := fmt.Appendf(nil, `{"type":"indicator","id":%q}`, id)
	return store.Object{ID: id, Type: "indicator", SpecVersion: "2.1", Version: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), Raw: raw, Hash: [32]byte{byte(i)}}
}

// TestSweep: versions older than their collection's retention are deleted,
// each with a deleted entry by "retention"; younger ones and collections
// without retention stay; the ledger still verifies.
func TestSweep(t *testing.T) {
	c := &clock{now: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)}
	st, err := bolt.Open(filepath.Join(t.TempDir(), "s.db"), bolt.Options{NoSync: true, Clock: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := store.WithActor(context.Background(), store.Actor{User: "cert-a"})
	add := func(coll string, objs ...store.Object) {
		if _, err := st.AddObjects(ctx, coll, objs); err != nil {
			t.Fatal(err)
		}
	}
	add("short", obj(1), obj(2))
	add("forever", obj(3))
	c.Advance(48 * time.Hour)
	add("short", obj(4))
	c.Advance(time.Hour)

	sw := &Sweeper{Store: st, Retention: map[string]time.Duration{"short": 24 * time.Hour, "forever": 0}, Clock: c.Now}
	n, err := sw.Sweep(context.Background())
	if err != nil || n != 2 {
		t.Fatalf("Sweep = %d, %v; want 2 deleted", n, err)
	}
	for coll, want := range map[string]int{"short": 1, "forever": 1} {
		p, err := st.Objects(context.Background(), coll, store.Query{})
		if err != nil || len(p.Objects) != want {
			t.Fatalf("%s holds %d, %v; want %d", coll, len(p.Objects), err, want)
		}
	}
	if n, err := sw.Sweep(context.Background()); err != nil || n != 0 {
		t.Fatalf("second Sweep = %d, %v; want 0", n, err)
	}
	es, err := st.LedgerEntries(context.Background(), store.LedgerQuery{Action: custody.Deleted})
	if err != nil || len(es) != 2 {
		t.Fatalf("deleted entries %v, %v", es, err)
	}
	for i, e := range es {
		if e.User != "retention" || e.ObjectID != obj(i+1).ID || e.SHA256 != custody.HexHash(obj(i+1).Hash) {
			t.Errorf("deleted entry %+v", e)
		}
	}
}
