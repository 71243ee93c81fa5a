package storetest

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/ctigate/ctigate"
	"github.com/ctigate/ctigate/store"
)

// NewIndex opens a new, empty search index for one test, and reopen, when
// the backend can, another one over the same data (nil skips the restart
// test). st, when not nil, is the store.Store the index lives beside.
type NewIndex func(t *testing.T) (ix store.Index, st store.Store, reopen func(t *testing.T) store.Index)

// RunIndex runs the search index tests against a backend that keeps its
// index apart from its store.Store. (Run runs them for a store.Store that
// implements store.Index.)
func RunIndex(t *testing.T, newIndex NewIndex) {
	for _, tc := range indexTests {
		t.Run(tc.name, func(t *testing.T) {
			ix, st, reopen := newIndex(t)
			tc.fn(t, &ixEnv{t: t, ctx: t.Context(), ix: ix, st: st, reopen: reopen})
		})
	}
}

// ixEnv is one index test's index, and the store beside it if any.
type ixEnv struct {
	t      *testing.T
	ctx    context.Context
	ix     store.Index
	st     store.Store
	reopen func(t *testing.T) store.Index
}

// indexTests run against backends that implement store.Index.
var indexTests = []struct {
	name string
	fn   func(*testing.T, *ixEnv)
}{
	{"IndexRoundTrip", testIndexRoundTrip},
	{"IndexReplace", testIndexReplace},
	{"IndexCheckpointAtomic", testIndexCheckpointAtomic},
	{"IndexDrop", testIndexDrop},
	{"IndexRestart", testIndexRestart},
	{"IndexKeysDistinct", testIndexKeysDistinct},
}

// storeIndexTests adapts indexTests to Run: they run when the store
// implements store.Index, and are skipped otherwise.
func storeIndexTests() []struct {
	name string
	fn   func(*testing.T, *env)
} {
	var out []struct {
		name string
		fn   func(*testing.T, *env)
	}
	for _, tc := range indexTests {
		out = append(out, struct {
			name string
			fn   func(*testing.T, *env)
		}{tc.name, func(t *testing.T, e *env) {
			ix, ok := e.s.(store.Index)
			if !ok {
				t.Skip("backend keeps no search index")
			}
			x := &ixEnv{t: t, ctx: e.ctx, ix: ix, st: e.s}
			if e.reopen != nil {
				x.reopen = func(t *testing.T) store.Index {
					e.restart()
					x.st = e.s
					return e.s.(store.Index)
				}
			}
			tc.fn(t, x)
		}})
	}
	return out
}

func (e *ixEnv) index() store.Index { return e.ix }

func entry(class, value, coll, id string, version time.Time, added int) store.IndexEntry {
	return store.IndexEntry{
		Class: class, Value: value, Collection: coll, ID: id, Type: typeOf(id), Version: version,
		DateAdded: t0.Add(time.Duration(added) * time.Microsecond), TLP: "TLP:GREEN",
		Producer: "CERT-A", Labels: []string{"malicious-activity"}, Observable: value,
	}
}

func showEntries(es []store.IndexEntry) string {
	s := ""
	for _, e := range es {
		s += fmt.Sprintf("\n\t%s|%s %s %s %s added=%s tlp=%s prod=%q labels=%q obs=%q type=%s",
			e.Class, e.Value, e.Collection, e.ID, fmtTime(e.Version), fmtTime(e.DateAdded), e.TLP, e.Producer, e.Labels, e.Observable, e.Type)
	}
	return s
}

func sameEntries(got, want []store.IndexEntry) bool {
	return slices.EqualFunc(got, want, func(a, b store.IndexEntry) bool {
		return a.Class == b.Class && a.Value == b.Value && a.Collection == b.Collection && a.ID == b.ID &&
			a.Type == b.Type && a.Version.Equal(b.Version) && a.DateAdded.Equal(b.DateAdded) && a.TLP == b.TLP &&
			a.Producer == b.Producer && slices.Equal(a.Labels, b.Labels) && a.Observable == b.Observable
	})
}

func (e *ixEnv) lookup(ix store.Index, keys ...store.IndexKey) []store.IndexEntry {
	e.t.Helper()
	got, err := ix.IndexLookup(e.ctx, keys)
	if err != nil {
		e.t.Fatalf("IndexLookup(%v): %v", keys, err)
	}
	return got
}

func (e *ixEnv) checkLookup(ix store.Index, keys []store.IndexKey, want []store.IndexEntry) {
	e.t.Helper()
	if got := e.lookup(ix, keys...); !sameEntries(got, want) {
		e.t.Errorf("IndexLookup(%v):\n got %s\nwant %s", keys, showEntries(got), showEntries(want))
	}
}

func testIndexRoundTrip(t *testing.T, e *ixEnv) {
	ix := e.index()
	if cp, err := ix.IndexCheckpoint(e.ctx, "c1", "ix/a"); err != nil || !cp.IsZero() {
		t.Fatalf("IndexCheckpoint on an empty index = %v, %v; want zero, nil", cp, err)
	}
	if got := e.lookup(ix, store.IndexKey{Class: "domain", Value: "x.example"}); len(got) != 0 {
		t.Fatalf("lookup on an empty index: %s", showEntries(got))
	}
	a := entry("domain", "x.example", "c1", ind1, v(1), 1)
	b := entry("domain", "x.example", "c1", ind1, v(2), 2)
	c := entry("domain", "x.example", "c0", ind2, v(1), 3)
	d := entry("ipv4/24", "198.51.100.0", "c1", ind2, time.Time{}, 4) // unversioned
	d.Labels = nil
	d.Producer = ""
	f := entry("sha256", "ab", "c1", ind1, v(1), 5)
	if err := ix.AddIndexEntries(e.ctx, "c1", []store.IndexEntry{f, b, d, a}, "ix/a", v(9)); err != nil {
		t.Fatalf("AddIndexEntries: %v", err)
	}
	if err := ix.AddIndexEntries(e.ctx, "c0", []store.IndexEntry{c}, "ix/a", v(7)); err != nil {
		t.Fatalf("AddIndexEntries: %v", err)
	}
	// Checkpoints are per collection.
	if cp, err := ix.IndexCheckpoint(e.ctx, "c0", "ix/a"); err != nil || !cp.Equal(v(7)) {
		t.Errorf("IndexCheckpoint(c0) = %v, %v; want %v", cp, err, v(7))
	}
	// Ordered by collection, id, version within a key; keys in the order given.
	e.checkLookup(ix, []store.IndexKey{{Class: "domain", Value: "x.example"}}, []store.IndexEntry{c, a, b})
	e.checkLookup(ix, []store.IndexKey{{Class: "ipv4/24", Value: "198.51.100.0"}, {Class: "domain", Value: "x.example"}}, []store.IndexEntry{d, c, a, b})
	e.checkLookup(ix, []store.IndexKey{{Class: "domain", Value: "x.exampl"}}, nil)
	e.checkLookup(ix, []store.IndexKey{{Class: "sha256", Value: "a"}}, nil)
	cp, err := ix.IndexCheckpoint(e.ctx, "c1", "ix/a")
	if err != nil || !cp.Equal(v(9)) {
		t.Fatalf("IndexCheckpoint = %v, %v; want %v", cp, err, v(9))
	}
	classes, err := ix.IndexClasses(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"domain", "ipv4/24", "sha256"}; !slices.Equal(classes, want) {
		t.Errorf("IndexClasses = %q, want %q", classes, want)
	}
	// Moving the checkpoint alone.
	if err := ix.AddIndexEntries(e.ctx, "c1", nil, "ix/a", v(10)); err != nil {
		t.Fatal(err)
	}
	if cp, _ := ix.IndexCheckpoint(e.ctx, "c1", "ix/a"); !cp.Equal(v(10)) {
		t.Errorf("checkpoint after an empty write = %v, want %v", cp, v(10))
	}
}

func testIndexReplace(t *testing.T, e *ixEnv) {
	ix := e.index()
	a := entry("domain", "x.example", "c1", ind1, v(1), 1)
	if err := ix.AddIndexEntries(e.ctx, "c1", []store.IndexEntry{a}, "ix", v(1)); err != nil {
		t.Fatal(err)
	}
	a.TLP, a.DateAdded, a.Labels = "TLP:AMBER", t0.Add(time.Hour), []string{"x", "y"}
	if err := ix.AddIndexEntries(e.ctx, "c1", []store.IndexEntry{a}, "ix", v(2)); err != nil {
		t.Fatal(err)
	}
	e.checkLookup(ix, []store.IndexKey{{Class: "domain", Value: "x.example"}}, []store.IndexEntry{a})
}

func testIndexCheckpointAtomic(t *testing.T, e *ixEnv) {
	ix := e.index()
	good := entry("domain", "x.example", "c1", ind1, v(1), 1)
	bad := entry("domain", "", "c1", ind1, v(1), 1)
	err := ix.AddIndexEntries(e.ctx, "c1", []store.IndexEntry{good, bad}, "ix", v(5))
	wantKind(t, "AddIndexEntries with an entry without value", err, ctigate.Invalid)
	e.checkLookup(ix, []store.IndexKey{{Class: "domain", Value: "x.example"}}, nil)
	if cp, err := ix.IndexCheckpoint(e.ctx, "c1", "ix"); err != nil || !cp.IsZero() {
		t.Errorf("checkpoint after a failed write = %v, %v; want zero", cp, err)
	}
	err = ix.AddIndexEntries(e.ctx, "c1", []store.IndexEntry{good}, "", v(5))
	wantKind(t, "AddIndexEntries with an empty checkpoint name", err, ctigate.Invalid)
	err = ix.AddIndexEntries(e.ctx, "c2", []store.IndexEntry{good}, "ix", v(5))
	wantKind(t, "AddIndexEntries with an entry of another collection", err, ctigate.Invalid)
	e.checkLookup(ix, []store.IndexKey{{Class: "domain", Value: "x.example"}}, nil)
}

func testIndexDrop(t *testing.T, e *ixEnv) {
	ix := e.index()
	if err := ix.DropIndex(e.ctx); err != nil {
		t.Fatalf("DropIndex on an empty index: %v", err)
	}
	a := entry("domain", "x.example", "c1", ind1, v(1), 1)
	if err := ix.AddIndexEntries(e.ctx, "c1", []store.IndexEntry{a}, "ix", v(1)); err != nil {
		t.Fatal(err)
	}
	if err := ix.DropIndex(e.ctx); err != nil {
		t.Fatal(err)
	}
	e.checkLookup(ix, []store.IndexKey{{Class: "domain", Value: "x.example"}}, nil)
	if cp, err := ix.IndexCheckpoint(e.ctx, "c1", "ix"); err != nil || !cp.IsZero() {
		t.Errorf("checkpoint after DropIndex = %v, %v; want zero", cp, err)
	}
	if cs, err := ix.IndexClasses(e.ctx); err != nil || len(cs) != 0 {
		t.Errorf("IndexClasses after DropIndex = %q, %v; want none", cs, err)
	}
	// Objects are not touched by dropping the index.
	if e.st != nil {
		if _, err := e.st.AddObjects(e.ctx, coll, []store.Object{obj(ind1, v(1))}); err != nil {
			t.Fatal(err)
		}
		if err := ix.DropIndex(e.ctx); err != nil {
			t.Fatal(err)
		}
		if p, err := e.st.Objects(e.ctx, coll, store.Query{}); err != nil || len(p.Objects) != 1 {
			t.Errorf("objects after DropIndex: %v, %v; want 1", p.Objects, err)
		}
	}
	// The index works again after a drop.
	if err := ix.AddIndexEntries(e.ctx, "c1", []store.IndexEntry{a}, "ix", v(2)); err != nil {
		t.Fatal(err)
	}
	e.checkLookup(ix, []store.IndexKey{{Class: "domain", Value: "x.example"}}, []store.IndexEntry{a})
}

func testIndexRestart(t *testing.T, e *ixEnv) {
	e.index()
	a := entry("email", "a@x.example", "c1", ind1, v(1), 1)
	if err := e.index().AddIndexEntries(e.ctx, "c1", []store.IndexEntry{a}, "ix", v(3)); err != nil {
		t.Fatal(err)
	}
	if e.reopen == nil {
		t.Skip("backend does not support reopening")
	}
	ix := e.reopen(t)
	e.checkLookup(ix, []store.IndexKey{{Class: "email", Value: "a@x.example"}}, []store.IndexEntry{a})
	if cp, err := ix.IndexCheckpoint(e.ctx, "c1", "ix"); err != nil || !cp.Equal(v(3)) {
		t.Errorf("checkpoint after restart = %v, %v; want %v", cp, err, v(3))
	}
}

// testIndexKeysDistinct checks that keys are compared whole: no class or
// value is a prefix match of another, whatever bytes they hold.
func testIndexKeysDistinct(t *testing.T, e *ixEnv) {
	ix := e.index()
	es := []store.IndexEntry{
		entry("a", "bc", "c1", ind1, v(1), 1),
		entry("ab", "c", "c1", ind1, v(1), 2),
		entry("a", "b", "c1", ind1, v(1), 3),
		entry("a", "b\x00c", "c1", ind1, v(1), 4),
		entry("url", "http://x.example/é?q=1 2", "c1", ind1, v(1), 5),
	}
	if err := ix.AddIndexEntries(e.ctx, "c1", es, "ix", v(1)); err != nil {
		t.Fatal(err)
	}
	for _, x := range es {
		e.checkLookup(ix, []store.IndexKey{{Class: x.Class, Value: x.Value}}, []store.IndexEntry{x})
	}
}
