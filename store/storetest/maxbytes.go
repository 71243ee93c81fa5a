package storetest

import (
	"fmt"
	"strings"
	"testing"

	"github.com/ctigate/ctigate/store"
)

// rawBytes is the sum of the objects' Raw lengths.
func rawBytes(objs []store.Object) int64 {
	var n int64
	for i := range objs {
		n += int64(len(objs[i].Raw))
	}
	return n
}

// sizedObjects stores n versions of n/3 ids whose raw bytes grow with i
// (from about 200 bytes to about 200+n*37), some of them malware.
func sizedObjects(e *env, n int) []store.Object {
	e.t.Helper()
	objs := make([]store.Object, n)
	for i := range objs {
		typ := "indicator"
		if i%4 == 1 {
			typ = "malware"
		}
		id := fmt.Sprintf("%s--00000000-0000-4000-8000-%012d", typ, i%(n/3+1))
		objs[i] = withRaw(obj(id, v(i)), strings.Repeat("x", i*37))
	}
	return storedAll(objs, e.add(coll, objs...))
}

// walkPages follows Next from q and returns every page read.
func (e *env) walkPages(q store.Query) []store.Page {
	e.t.Helper()
	var pages []store.Page
	for len(pages) <= 10000 {
		p := e.page(coll, q)
		pages = append(pages, p)
		if !p.More {
			return pages
		}
		q.Next = p.Next
	}
	e.t.Fatalf("walk%s: more than 10000 pages", describe(q))
	return nil
}

// testMaxBytes: a page is bounded by the bytes of its objects' Raw as well
// as by its limit (Query.MaxBytes): it holds as many objects as fit, at
// least one, and its cursor carries on after its last object, so a walk
// loses and repeats nothing. A page is cut by bytes only when the next
// object would not fit. Reads without Raw are bounded by the limit only.
func testMaxBytes(t *testing.T, e *env) {
	s := sizedObjects(e, 60)
	m := newModel()
	m.coll(coll).objs = s
	all := store.Query{Versions: []store.VersionMatch{vAll}}
	want := m.query(coll, all)
	total := rawBytes(want)
	for _, maxBytes := range []int64{1, int64(len(s[0].Raw)), 1000, 2500, 4096, total - 1, total, total + 1} {
		for _, limit := range []int{1, 3, 7, 1000} {
			q := all
			q.Limit, q.MaxBytes = limit, maxBytes
			pages := e.walkPages(q)
			var got []store.Object
			for i, p := range pages {
				got = append(got, p.Objects...)
				if i == len(pages)-1 {
					break
				}
				// A page short of its limit was cut by bytes: the next
				// page's first object did not fit.
				if len(p.Objects) < limit {
					if len(pages[i+1].Objects) == 0 {
						t.Fatalf("walk%s: page %d has More, and the next page is empty", describe(q), i)
					}
					if n := rawBytes(p.Objects) + int64(len(pages[i+1].Objects[0].Raw)); n <= maxBytes {
						t.Fatalf("walk%s: page %d holds %d objects (%d bytes), but the next object fits too (%d bytes in all)",
							describe(q), i, len(p.Objects), rawBytes(p.Objects), n)
					}
				}
			}
			e.checkObjects("walk"+describe(q), got, want, true)
			if maxBytes >= total && limit >= len(want) && len(pages) != 1 {
				t.Fatalf("walk%s: %d pages, want 1 (everything fits)", describe(q), len(pages))
			}
		}
	}

	// An object larger than max_bytes makes a page of its own.
	p := e.page(coll, store.Query{Versions: []store.VersionMatch{vAll}, Limit: 10, MaxBytes: 1})
	if len(p.Objects) != 1 || !p.More {
		t.Fatalf("max_bytes 1: got %d objects, More = %v; want 1, true", len(p.Objects), p.More)
	}

	// A page whose objects exactly fill max_bytes, with nothing after
	// it, is the last.
	last := want[len(want)-3:]
	q := store.Query{Versions: []store.VersionMatch{vAll}, AddedAfter: want[len(want)-4].DateAdded, MaxBytes: rawBytes(last)}
	if p := e.page(coll, q); len(p.Objects) != 3 || p.More {
		t.Fatalf("Objects%s: got %d objects, More = %v; want 3, false", describe(q), len(p.Objects), p.More)
	}
	q.AddedAfter = want[len(want)-5].DateAdded
	if p := e.page(coll, q); len(p.Objects) != 3 || !p.More {
		t.Fatalf("Objects%s: got %d objects, More = %v; want 3 (cut), true", describe(q), len(p.Objects), p.More)
	} else {
		e.checkObjects("page cut by bytes", p.Objects, want[len(want)-4:len(want)-1], true)
	}

	// Without Raw, max_bytes bounds nothing.
	q = store.Query{Versions: []store.VersionMatch{vAll}, WithoutRaw: true, Limit: 50, MaxBytes: 1}
	if p := e.page(coll, q); len(p.Objects) != 50 || !p.More {
		t.Fatalf("Objects%s: got %d objects, More = %v; want 50, true", describe(q), len(p.Objects), p.More)
	}
}

// testMaxBytesFilters: max_bytes with filters, by scan and by ids, walks
// exactly what the filters select.
func testMaxBytesFilters(t *testing.T, e *env) {
	s := sizedObjects(e, 45)
	m := newModel()
	m.coll(coll).objs = s
	for _, q := range []store.Query{
		{},
		{Types: []string{"malware"}, Versions: []store.VersionMatch{vAll}},
		{Versions: []store.VersionMatch{vFirst, vLast}},
		{IDs: []string{s[2].ID, s[3].ID, s[5].ID}, Versions: []store.VersionMatch{vAll}},
		{IDs: []string{s[0].ID}},
	} {
		want := m.query(coll, q)
		for _, maxBytes := range []int64{1, 700, 3000} {
			for _, limit := range []int{2, 100} {
				q.Limit, q.MaxBytes = limit, maxBytes
				e.checkObjects("walk"+describe(q), e.walk(coll, q), want, true)
			}
		}
	}
}
