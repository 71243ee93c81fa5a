package storetest

import (
	"testing"
	"time"

	"github.com/ctigate/ctigate/store"
)

// testTombstones: deletions, withdrawals and expiries leave tombstones on
// the collection's date_added clock, with the removed version's hash and
// producer and the removal's kind; tombstones survive a restart and page.
func testTombstones(t *testing.T, e *env) {
	nano := v(1).Add(123456789 * time.Nanosecond)
	objs := []store.Object{obj(ind1, nano), obj(ind1, v(2)), obj(ind2, v(1)), obj(ind2, v(2)), obj(ip1, time.Time{})}
	s := storedAll(objs, e.add(coll, objs...))
	if got, more, err := e.s.Tombstones(e.ctx, coll, time.Time{}, 0); err != nil || len(got) != 0 || more {
		t.Fatalf("Tombstones before any removal = %v, %v, %v; want none", got, more, err)
	}
	remove := func(ctx any, id string, ver time.Time) {
		t.Helper()
		c := e.ctx
		if r, ok := ctx.(store.Removal); ok {
			c = store.WithRemoval(e.ctx, r)
		}
		m := []store.VersionMatch{at(ver)}
		if ver.IsZero() {
			m = nil
		}
		if n, err := e.s.DeleteObject(c, coll, id, m, nil); err != nil || n != 1 {
			t.Fatalf("DeleteObject(%s %v) = %d, %v", id, ver, n, err)
		}
	}
	e.clock.Advance(time.Second)
	remove(nil, ind1, nano) // a deletion
	remove(store.Removal{Kind: store.RemovalExpired}, ind2, v(1))
	remove(store.Removal{Kind: store.RemovalWithdrawn, Route: "r", Reason: "tlp_red"}, ind2, v(2))
	remove(nil, ip1, time.Time{})
	later := e.add(coll, obj(ind1, v(3)))[0].DateAdded

	e.restart()
	got, more, err := e.s.Tombstones(e.ctx, coll, time.Time{}, 0)
	if err != nil || more {
		t.Fatalf("Tombstones = %v, %v", more, err)
	}
	want := []store.Tombstone{
		{ID: ind1, Version: nano, DateAdded: s[0].DateAdded, Kind: store.RemovalDeleted, Hash: s[0].Hash, Producer: s[0].Producer},
		{ID: ind2, Version: v(1), DateAdded: s[2].DateAdded, Kind: store.RemovalExpired, Hash: s[2].Hash, Producer: s[2].Producer},
		{ID: ind2, Version: v(2), DateAdded: s[3].DateAdded, Kind: store.RemovalWithdrawn, Reason: "tlp_red", Hash: s[3].Hash, Producer: s[3].Producer},
		{ID: ip1, DateAdded: s[4].DateAdded, Kind: store.RemovalDeleted, Hash: s[4].Hash, Producer: s[4].Producer},
	}
	if len(got) != len(want) {
		t.Fatalf("Tombstones = %+v; want %d", got, len(want))
	}
	prev := s[len(s)-1].DateAdded
	for i := range want {
		g := got[i]
		if !g.Removed.After(prev) || !g.Removed.Before(later) {
			t.Errorf("tombstone %d removed at %v: want after %v (the last date_added before it) and before %v (the next)", i, g.Removed, prev, later)
		}
		prev = g.Removed
		g.Removed = time.Time{}
		if !g.Version.Equal(want[i].Version) || !g.DateAdded.Equal(want[i].DateAdded) {
			t.Errorf("tombstone %d = %+v; want %+v", i, g, want[i])
		}
		g.Version, g.DateAdded = want[i].Version, want[i].DateAdded
		if g != want[i] {
			t.Errorf("tombstone %d = %+v; want %+v", i, g, want[i])
		}
	}
	// Paging and the exclusive after.
	p1, more, err := e.s.Tombstones(e.ctx, coll, time.Time{}, 2)
	if err != nil || len(p1) != 2 || !more {
		t.Fatalf("Tombstones(limit 2) = %d, %v, %v; want 2, more", len(p1), more, err)
	}
	p2, more, err := e.s.Tombstones(e.ctx, coll, p1[1].Removed, 2)
	if err != nil || len(p2) != 2 || more || p2[0].Kind != store.RemovalWithdrawn || p2[1].ID != ip1 {
		t.Fatalf("Tombstones(after the second) = %+v, %v, %v; want the third and fourth", p2, more, err)
	}
	if got, _, err := e.s.Tombstones(e.ctx, "collection-b", time.Time{}, 0); err != nil || len(got) != 0 {
		t.Errorf("Tombstones of another collection = %v, %v; want none", got, err)
	}
}
