package storetest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ctigate/ctigate"
	"github.com/ctigate/ctigate/store"
)

// t0 is the time every test's clock starts at.
var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// fakeClock is a clock that moves only when a test moves it.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// env is one test's store and clock.
type env struct {
	t      *testing.T
	ctx    context.Context
	clock  *fakeClock
	s      store.Store
	reopen func(t *testing.T) store.Store
	// recorded is the checkpoint of record's writes.
	recorded time.Time
	// newStore opened s, for suites that start fresh stores of their own.
	newStore NewStore
}

func newEnv(t *testing.T, newStore NewStore) *env {
	t.Helper()
	e := &env{t: t, ctx: t.Context(), clock: &fakeClock{now: t0}, newStore: newStore}
	e.s, e.reopen = newStore(t, e.clock.Now)
	if e.s == nil {
		t.Fatal("newStore returned a nil store")
	}
	t.Cleanup(func() {
		if e.s != nil {
			if err := e.s.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
		}
	})
	return e
}

// restart closes the store and opens it again over the same data.
func (e *env) restart() {
	e.t.Helper()
	if e.reopen == nil {
		e.t.Skip("backend does not support reopening")
	}
	s := e.s
	e.s = nil
	if err := s.Close(); err != nil {
		e.t.Fatalf("Close: %v", err)
	}
	e.s = e.reopen(e.t)
	if e.s == nil {
		e.t.Fatal("reopen returned a nil store")
	}
}

// add stores objs and fails the test on error.
func (e *env) add(coll string, objs ...store.Object) []store.AddResult {
	e.t.Helper()
	res, err := e.s.AddObjects(e.ctx, coll, objs)
	if err != nil {
		e.t.Fatalf("AddObjects(%q, %d objects): %v", coll, len(objs), err)
	}
	if len(res) != len(objs) {
		e.t.Fatalf("AddObjects(%q): got %d results, want %d", coll, len(res), len(objs))
	}
	for i, r := range res {
		checkDateAdded(e.t, fmt.Sprintf("AddObjects result %d", i), r.DateAdded)
	}
	return res
}

// page reads one page and checks its invariants.
func (e *env) page(coll string, q store.Query) store.Page {
	e.t.Helper()
	p, err := e.s.Objects(e.ctx, coll, q)
	if err != nil {
		e.t.Fatalf("Objects(%q, %s): %v", coll, describe(q), err)
	}
	checkPage(e.t, q, p)
	return p
}

// walk follows Next from q until More is false and returns every object
// read. It checks that a page claiming More is followed by more objects.
func (e *env) walk(coll string, q store.Query) []store.Object {
	e.t.Helper()
	var all []store.Object
	for pages := 0; ; pages++ {
		if pages > 10000 {
			e.t.Fatalf("walk(%q, %s): more than 10000 pages", coll, describe(q))
		}
		p := e.page(coll, q)
		if pages > 0 && !p.More && len(p.Objects) == 0 {
			e.t.Fatalf("walk(%q, %s): page %d is empty and last, but the page before said More", coll, describe(q), pages)
		}
		all = append(all, p.Objects...)
		if !p.More {
			return all
		}
		q.Next = p.Next
	}
}

// checkPage checks what holds for every page.
func checkPage(t *testing.T, q store.Query, p store.Page) {
	t.Helper()
	limit := q.Limit
	if limit <= 0 {
		limit = store.DefaultLimit
	}
	if len(p.Objects) > limit {
		t.Fatalf("Objects(%s): got %d objects, want at most %d", describe(q), len(p.Objects), limit)
	}
	if p.More && p.Next == "" {
		t.Fatalf("Objects(%s): More is true but Next is empty", describe(q))
	}
	if !p.More && p.Next != "" {
		t.Fatalf("Objects(%s): More is false but Next = %q, want empty", describe(q), p.Next)
	}
	if q.MaxBytes > 0 && !q.WithoutRaw && len(p.Objects) > 1 {
		if n := rawBytes(p.Objects); n > q.MaxBytes {
			t.Fatalf("Objects(%s): %d objects of %d bytes, want at most max_bytes (or one object)", describe(q), len(p.Objects), n)
		}
	}
	for i, o := range p.Objects {
		checkDateAdded(t, fmt.Sprintf("object %d (%s)", i, o.ID), o.DateAdded)
		if i > 0 && !o.DateAdded.After(p.Objects[i-1].DateAdded) {
			t.Fatalf("Objects(%s): object %d date_added %s is not after object %d's %s",
				describe(q), i, fmtTime(o.DateAdded), i-1, fmtTime(p.Objects[i-1].DateAdded))
		}
		if q.WithoutRaw && o.Raw != nil {
			t.Fatalf("Objects(%s): object %d has Raw with WithoutRaw set", describe(q), i)
		}
		if !q.WithoutRaw && len(o.Raw) == 0 {
			t.Fatalf("Objects(%s): object %d has no Raw", describe(q), i)
		}
	}
}

func checkDateAdded(t *testing.T, what string, d time.Time) {
	t.Helper()
	if d.IsZero() {
		t.Fatalf("%s: date_added is zero", what)
	}
	if d.Location() != time.UTC {
		t.Fatalf("%s: date_added location = %v, want UTC", what, d.Location())
	}
	if d.Nanosecond()%1000 != 0 {
		t.Fatalf("%s: date_added %s has sub-microsecond digits", what, fmtTime(d))
	}
}

// sameObjects reports the first difference between two object lists, or "".
func sameObjects(got, want []store.Object, withRaw bool) string {
	for i := 0; i < len(got) || i < len(want); i++ {
		if i >= len(got) {
			return fmt.Sprintf("missing object %d: want %s", i, show(want[i]))
		}
		if i >= len(want) {
			return fmt.Sprintf("extra object %d: got %s", i, show(got[i]))
		}
		g, w := got[i], want[i]
		if g.ID != w.ID || g.Type != w.Type || g.SpecVersion != w.SpecVersion ||
			!g.Version.Equal(w.Version) || !g.DateAdded.Equal(w.DateAdded) {
			return fmt.Sprintf("object %d: got %s, want %s", i, show(g), show(w))
		}
		if withRaw && !bytes.Equal(g.Raw, w.Raw) {
			return fmt.Sprintf("object %d (%s): got raw %q, want %q", i, g.ID, g.Raw, w.Raw)
		}
		if withRaw && g.Hash != w.Hash {
			return fmt.Sprintf("object %d (%s): got hash %x, want %x", i, g.ID, g.Hash, w.Hash)
		}
		if withRaw && g.Producer != w.Producer {
			return fmt.Sprintf("object %d (%s): got producer %q, want %q", i, g.ID, g.Producer, w.Producer)
		}
	}
	return ""
}

func (e *env) checkObjects(what string, got, want []store.Object, withRaw bool) {
	e.t.Helper()
	if d := sameObjects(got, want, withRaw); d != "" {
		e.t.Fatalf("%s: %s\ngot:  %s\nwant: %s", what, d, showAll(got), showAll(want))
	}
}

func show(o store.Object) string {
	v := "-"
	if !o.Version.IsZero() {
		v = fmtTime(o.Version)
	}
	return fmt.Sprintf("{%s %s %s v=%s added=%s}", o.ID, o.Type, o.SpecVersion, v, fmtTime(o.DateAdded))
}

func showAll(objs []store.Object) string {
	var b strings.Builder
	b.WriteString("[")
	for i, o := range objs {
		if i > 0 {
			b.WriteString(" ")
		}
		b.WriteString(show(o))
	}
	b.WriteString("]")
	return b.String()
}

func fmtTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.999999999Z07:00") }

func describe(q store.Query) string {
	var parts []string
	if !q.AddedAfter.IsZero() {
		parts = append(parts, "added_after="+fmtTime(q.AddedAfter))
	}
	if q.Limit != 0 {
		parts = append(parts, fmt.Sprintf("limit=%d", q.Limit))
	}
	if q.Next != "" {
		parts = append(parts, "next="+q.Next)
	}
	if len(q.IDs) > 0 {
		parts = append(parts, "id="+strings.Join(q.IDs, ","))
	}
	if len(q.Types) > 0 {
		parts = append(parts, "type="+strings.Join(q.Types, ","))
	}
	if len(q.Versions) > 0 {
		var vs []string
		for _, v := range q.Versions {
			vs = append(vs, versionString(v))
		}
		parts = append(parts, "version="+strings.Join(vs, ","))
	}
	if len(q.SpecVersions) > 0 {
		parts = append(parts, "spec_version="+strings.Join(q.SpecVersions, ","))
	}
	if q.WithoutRaw {
		parts = append(parts, "without_raw")
	}
	if q.MaxBytes != 0 {
		parts = append(parts, fmt.Sprintf("max_bytes=%d", q.MaxBytes))
	}
	return "{" + strings.Join(parts, " ") + "}"
}

func versionString(v store.VersionMatch) string {
	switch v.Kind {
	case store.Last:
		return "last"
	case store.First:
		return "first"
	case store.All:
		return "all"
	case store.At:
		return fmtTime(v.At)
	}
	return fmt.Sprintf("kind(%d)", v.Kind)
}

// wantKind fails the test unless err is a ctigate error of kind k.
func wantKind(t *testing.T, what string, err error, k ctigate.Kind) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: got no error, want %v", what, k)
	}
	var ce *ctigate.Error
	if !errors.As(err, &ce) {
		t.Fatalf("%s: got error %v (%T), want a *ctigate.Error of kind %v", what, err, err, k)
	}
	if got := ctigate.KindOf(err); got != k {
		t.Fatalf("%s: got error kind %v (%v), want %v", what, got, err, k)
	}
}

// Object constructors. The raw bytes are deliberately not canonical JSON:
// the store must hand back exactly what it was given.

func typeOf(id string) string {
	typ, _, _ := strings.Cut(id, "--")
	return typ
}

// obj returns a spec_version 2.1 object version with distinct raw bytes.
func obj(id string, version time.Time) store.Object {
	return objSpec(id, version, "2.1")
}

func objSpec(id string, version time.Time, spec string) store.Object {
	return withRaw(store.Object{ID: id, Type: typeOf(id), SpecVersion: spec, Version: version}, "")
}

// withRaw sets o.Raw to bytes derived from o and tag.
func withRaw(o store.Object, tag string) store.Object {
	v := ""
	if !o.Version.IsZero() {
		v = o.Version.Format(time.RFC3339Nano)
	}
	o.Raw = fmt.Appendf(nil, "{ \"type\":%q,\n\t\"id\" : %q, \"spec_version\":%q, \"modified\": %q, \"name\": \"Zürich \\u00e9 %s\" }",
		o.Type, o.ID, o.SpecVersion, v, tag)
	// Any 32 bytes will do: the store keeps the writer's hash, it does
	// not compute one.
	o.Hash = sha256.Sum256(o.Raw)
	o.Producer = "Org " + o.Type
	return o
}

// stored returns o as the store reports it after assigning date_added.
func stored(o store.Object, r store.AddResult) store.Object {
	o.DateAdded = r.DateAdded
	return o
}

func storedAll(objs []store.Object, rs []store.AddResult) []store.Object {
	out := make([]store.Object, len(objs))
	for i := range objs {
		out[i] = stored(objs[i], rs[i])
	}
	return out
}

func noRaw(objs []store.Object) []store.Object {
	out := make([]store.Object, len(objs))
	for i, o := range objs {
		o.Raw = nil
		out[i] = o
	}
	return out
}

// ids used across tests.
const (
	ind1 = "indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f"
	ind2 = "indicator--c410e480-e42b-47d1-9476-85307c12bcbf"
	ind3 = "indicator--d81f86b9-975b-4c0b-875e-810c5ad45a4f"
	mal1 = "malware--31b940d4-6f7f-459a-80ea-9c1f17b5891b"
	ip1  = "ipv4-addr--ff26c055-6336-5bc5-b98d-13d6226742dd"
	ip2  = "ipv4-addr--0fc1d4a3-2a28-5d4b-9b39-1d6a2fb1a0e2"
)

// v returns the version time t0 + n minutes.
func v(n int) time.Time { return t0.Add(time.Duration(n) * time.Minute) }

func at(t time.Time) store.VersionMatch { return store.VersionMatch{Kind: store.At, At: t} }

var (
	vLast  = store.VersionMatch{Kind: store.Last}
	vFirst = store.VersionMatch{Kind: store.First}
	vAll   = store.VersionMatch{Kind: store.All}
)
