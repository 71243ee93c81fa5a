package storetest

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ctigate/ctigate"
	"github.com/ctigate/ctigate/custody"
	"github.com/ctigate/ctigate/store"
)

// resolveTests are the ResolveAdded tests, registered in Run.
func resolveTests() []struct {
	name string
	fn   func(*testing.T, *env)
} {
	return []struct {
		name string
		fn   func(*testing.T, *env)
	}{
		{"ResolveAdded", testResolveAdded},
		{"ResolveAddedMany", testResolveAddedMany},
		{"ResolveAddedInvalid", testResolveAddedInvalid},
		{"RemovedEntriesDateAdded", testRemovedEntriesDateAdded},
	}
}

// resolve calls ResolveAdded and fails the test on error or a result of
// the wrong length.
func (e *env) resolve(collection string, das ...time.Time) []store.AddedVersion {
	e.t.Helper()
	got, err := e.s.ResolveAdded(e.ctx, collection, das)
	if err != nil {
		e.t.Fatalf("ResolveAdded(%q, %d values): %v", collection, len(das), err)
	}
	if len(got) != len(das) {
		e.t.Fatalf("ResolveAdded(%q, %d values): %d results", collection, len(das), len(got))
	}
	return got
}

// storedAs is what ResolveAdded tells of o, stored (removed false) or
// removed since (removed true).
func storedAs(o store.Object, removed bool) store.AddedVersion {
	return store.AddedVersion{Found: true, Removed: removed, ID: o.ID, Version: o.Version, Hash: o.Hash}
}

func showAdded(a store.AddedVersion) string {
	if !a.Found {
		return "{not found}"
	}
	return fmt.Sprintf("{%s v=%s removed=%v hash=%x}", a.ID, fmtTime(a.Version), a.Removed, a.Hash[:4])
}

// sameAdded reports whether two ResolveAdded results say the same.
func sameAdded(a, b store.AddedVersion) bool {
	return a.Found == b.Found && a.Removed == b.Removed && a.ID == b.ID && a.Version.Equal(b.Version) && a.Hash == b.Hash
}

// checkAdded compares ResolveAdded results with what they must be.
func checkAdded(t *testing.T, what string, das []time.Time, got, want []store.AddedVersion) {
	t.Helper()
	for i := range want {
		g, w := got[i], want[i]
		if !sameAdded(g, w) {
			t.Errorf("%s: date_added %s (value %d) resolves to %s, want %s", what, fmtTime(das[i]), i, showAdded(g), showAdded(w))
		}
	}
}

// testResolveAdded: a date_added resolves to the version stored at it, or
// to the version removed since by deletion, withdrawal or expiry (from its
// tombstone, of that kind); not to one released, nor to an instant that
// no version was added at; a version deleted and added again resolves at
// both its date_added; results follow the order of the values asked for,
// whatever it is, and survive a restart.
func testResolveAdded(t *testing.T, e *env) {
	nano := v(1).Add(123456789 * time.Nanosecond)
	unhashed := obj(mal1, v(1))
	unhashed.Hash, unhashed.Producer = [32]byte{}, ""
	objs := []store.Object{
		obj(ind1, nano), obj(ind1, v(2)), obj(ind2, v(1)), obj(ind2, v(2)),
		obj(ip1, time.Time{}), unhashed, obj(ind3, v(1)),
	}
	s := storedAll(objs, e.add(coll, objs...))
	das := make([]time.Time, len(s))
	want := make([]store.AddedVersion, len(s))
	for i, o := range s {
		das[i], want[i] = o.DateAdded, storedAs(o, false)
	}
	checkAdded(t, "before any removal", das, e.resolve(coll, das...), want)

	e.clock.Advance(time.Second)
	remove := func(r store.Removal, id string, ver time.Time) {
		t.Helper()
		m := []store.VersionMatch{at(ver)}
		if ver.IsZero() {
			m = nil
		}
		if n, err := e.s.DeleteObject(store.WithRemoval(e.ctx, r), coll, id, m, nil); err != nil || n != 1 {
			t.Fatalf("DeleteObject(%s %s, %s) = %d, %v", id, fmtTime(ver), r.Kind, n, err)
		}
	}
	remove(store.Removal{Kind: store.RemovalDeleted}, ind1, nano)
	remove(store.Removal{Kind: store.RemovalExpired}, ind2, v(1))
	remove(store.Removal{Kind: store.RemovalWithdrawn, Route: "r", Reason: "tlp_red"}, ind2, v(2))
	remove(store.Removal{Kind: store.RemovalReleased}, ind3, v(1))
	remove(store.Removal{Kind: store.RemovalExpired}, mal1, v(1))
	again := withRaw(obj(ind1, nano), "added again")
	readded := stored(again, e.add(coll, again)[0])
	if readded.DateAdded.Equal(s[0].DateAdded) {
		t.Fatalf("re-added version got its old date_added %s", fmtTime(readded.DateAdded))
	}
	tombs, _, err := e.s.Tombstones(e.ctx, coll, time.Time{}, 0)
	if err != nil {
		t.Fatalf("Tombstones: %v", err)
	}
	var kinds []string
	for _, tb := range tombs {
		kinds = append(kinds, tb.Kind+" "+tb.ID)
	}
	wantKinds := []string{"deleted " + ind1, "expired " + ind2, "withdrawn " + ind2, "expired " + mal1}
	if !sameStrings(kinds, wantKinds) {
		t.Fatalf("tombstones %v, want %v (released leaves none)", kinds, wantKinds)
	}
	if e.reopen != nil {
		e.restart()
	}

	// Descending, with repeats, instants that are no date_added, and the
	// re-added version's two date_added.
	das = []time.Time{
		readded.DateAdded,
		s[6].DateAdded,                      // released
		s[5].DateAdded,                      // expired, hash unknown
		s[4].DateAdded,                      // stored, unversioned
		s[3].DateAdded,                      // withdrawn
		s[2].DateAdded,                      // expired
		s[1].DateAdded,                      // stored
		s[0].DateAdded,                      // deleted
		s[0].DateAdded.Add(time.Nanosecond), // not a whole microsecond
		tombs[0].Removed,                    // a removal, not an addition
		t0.Add(-time.Hour),                  // before anything
		{},                                  // the zero time
		s[0].DateAdded,                      // a repeat
	}
	want = []store.AddedVersion{
		storedAs(readded, false), {}, storedAs(s[5], true), storedAs(s[4], false), storedAs(s[3], true),
		storedAs(s[2], true), storedAs(s[1], false), storedAs(s[0], true), {}, {}, {}, {}, storedAs(s[0], true),
	}
	got := e.resolve(coll, das...)
	checkAdded(t, "after the removals", das, got, want)
	if got[0].Hash == got[7].Hash {
		t.Errorf("the re-added version resolves with its first copy's hash at its new date_added")
	}

	// Other collections know none of them.
	for _, c := range []string{"collection-b", "no-such-collection"} {
		for i, a := range e.resolve(c, das...) {
			if a.Found {
				t.Errorf("ResolveAdded(%q): value %d (%s) resolves to %s, want not found", c, i, fmtTime(das[i]), showAdded(a))
			}
		}
	}
	if got, err := e.s.ResolveAdded(e.ctx, coll, nil); err != nil || len(got) != 0 {
		t.Errorf("ResolveAdded of no values = %v, %v; want none, nil", got, err)
	}
}

// testResolveAddedMany resolves a few thousand date_added in one call, as
// a delivered page's proof does, over a collection some of whose versions
// were removed: every value is answered, in order.
func testResolveAddedMany(t *testing.T, e *env) {
	const n = 2500
	var s []store.Object
	for start := 0; start < n; start += 500 {
		var objs []store.Object
		for i := start; i < start+500; i++ {
			objs = append(objs, withRaw(obj(fmt.Sprintf("indicator--00000000-0000-4000-8000-%012d", i), v(i%7)), fmt.Sprint(i)))
		}
		s = append(s, storedAll(objs, e.add(coll, objs...))...)
		e.clock.Advance(time.Millisecond)
	}
	for i := 0; i < n; i += 9 {
		if _, err := e.s.DeleteObject(e.ctx, coll, s[i].ID, nil, nil); err != nil {
			t.Fatalf("DeleteObject(%s): %v", s[i].ID, err)
		}
	}
	// Every other version, and every instant between two of them.
	var das []time.Time
	var want []store.AddedVersion
	for i := 0; i < n; i += 2 {
		das = append(das, s[i].DateAdded, s[i].DateAdded.Add(-time.Microsecond/2))
		want = append(want, storedAs(s[i], i%9 == 0), store.AddedVersion{})
	}
	checkAdded(t, "many", das, e.resolve(coll, das...), want)
}

func testResolveAddedInvalid(t *testing.T, e *env) {
	das := []time.Time{t0}
	_, err := e.s.ResolveAdded(e.ctx, "", das)
	wantKind(t, "ResolveAdded of an empty collection name", err, ctigate.Invalid)
	_, err = e.s.ResolveAdded(e.ctx, strings.Repeat("c", store.MaxNameLen+1), das)
	wantKind(t, "ResolveAdded of an overlong collection name", err, ctigate.Invalid)
}

// testRemovedEntriesDateAdded: the custody entry of each removed version
// (deleted, withdrawn, or deleted with reason expired) carries the
// version's date_added, when the backend keeps a ledger.
func testRemovedEntriesDateAdded(t *testing.T, e *env) {
	l, ok := e.s.(store.Ledger)
	if !ok {
		t.Skip("backend does not implement store.Ledger")
	}
	objs := []store.Object{obj(ind1, v(1)), obj(ind2, v(1)), obj(ind3, v(1))}
	s := storedAll(objs, e.add(coll, objs...))
	kinds := []string{store.RemovalDeleted, store.RemovalWithdrawn, store.RemovalExpired}
	for i, k := range kinds {
		ctx := store.WithRemoval(e.ctx, store.Removal{Kind: k, Route: "r", Reason: "tlp_red"})
		if _, err := e.s.DeleteObject(ctx, coll, s[i].ID, nil, nil); err != nil {
			t.Fatalf("DeleteObject(%s, %s): %v", s[i].ID, k, err)
		}
	}
	for i, k := range kinds {
		es, err := l.LedgerEntries(e.ctx, store.LedgerQuery{ObjectID: s[i].ID})
		if err != nil {
			t.Fatalf("LedgerEntries(%s): %v", s[i].ID, err)
		}
		var found bool
		for _, x := range es {
			if x.Action != custody.Deleted && x.Action != custody.Withdrawn {
				continue
			}
			found = true
			if x.DateAdded != custody.FormatTime(s[i].DateAdded) || x.Collection != coll {
				t.Errorf("%s entry of %s (removal %s): date_added %q in %q, want %q in %q",
					x.Action, s[i].ID, k, x.DateAdded, x.Collection, custody.FormatTime(s[i].DateAdded), coll)
			}
		}
		if !found {
			t.Errorf("no deleted or withdrawn entry for %s (removal %s) in %+v", s[i].ID, k, es)
		}
	}
}
