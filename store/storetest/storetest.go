// Package storetest is the behavioural conformance suite that every store.Store backend runs unchanged.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ctigate/ctigate"
	"github.com/ctigate/ctigate/store"
)

// NewStore opens a new, empty store for one test. The store must take
// date_added from clock, read once or more per AddObjects call (the suite's
// clocks only move when the suite moves them).
//
// reopen, when the backend can provide it, opens another store over the
// same data, as after a restart or on another replica. The suite closes
// every store it is given (the first, then each one reopen returns) before
// it calls reopen and at the end of the test; a backend that also closes them
// in t.Cleanup must tolerate a second Close. Return a nil reopen to skip the
// restart tests.
type NewStore func(t *testing.T, clock func() time.Time) (s store.Store, reopen func(t *testing.T) store.Store)

// Run runs the conformance suite against the backend newStore opens.
func Run(t *testing.T, newStore NewStore) {
	tests := []struct {
		name string
		fn   func(*testing.T, *env)
	}{
		{"AddAndRead", testAddAndRead},
		{"Idempotent", testIdempotent},
		{"IdempotentWithinOneCall", testIdempotentWithinOneCall},
		{"Versions", testVersions},
		{"ZeroVersion", testZeroVersion},
		{"VersionPrecision", testVersionPrecision},
		{"DateAddedFrozenClock", testDateAddedFrozenClock},
		{"DateAddedClockBackwards", testDateAddedClockBackwards},
		{"DateAddedFollowsClock", testDateAddedFollowsClock},
		{"DateAddedAfterDelete", testDateAddedAfterDelete},
		{"CollectionsIsolated", testCollectionsIsolated},
		{"UnknownCollection", testUnknownCollection},
		{"Filters", testFilters},
		{"FirstLastPerSpecVersion", testFirstLastPerSpecVersion},
		{"AddedAfter", testAddedAfter},
		{"Limit", testLimit},
		{"DefaultLimit", testDefaultLimit},
		{"Pagination", testPagination},
		{"PaginationExactlyFullPage", testPaginationExactlyFullPage},
		{"MaxBytes", testMaxBytes},
		{"MaxBytesFilters", testMaxBytesFilters},
		{"CursorStableUnderAdds", testCursorStableUnderAdds},
		{"CursorStableUnderDeletes", testCursorStableUnderDeletes},
		{"CursorWithAddedAfter", testCursorWithAddedAfter},
		{"MalformedCursor", testMalformedCursor},
		{"WithoutRaw", testWithoutRaw},
		{"WithoutRawByID", testWithoutRawByID},
		{"Hash", testHash},
		{"Delete", testDelete},
		{"DeleteRecomputesFirstLast", testDeleteRecomputesFirstLast},
		{"DeleteSpecVersion", testDeleteSpecVersion},
		{"DeleteNotFound", testDeleteNotFound},
		{"DeleteThenReadd", testDeleteThenReadd},
		{"Tombstones", testTombstones},
		{"Status", testStatus},
		{"StatusNotFound", testStatusNotFound},
		{"InvalidInput", testInvalidInput},
		{"Atomic", testAtomic},
		{"ContextCancelled", testContextCancelled},
		{"Ping", testPing},
		{"Concurrent", testConcurrent},
		{"Restart", testRestart},
		{"Checkpoint", testCheckpoint},
		{"CheckpointAtomic", testCheckpointAtomic},
		{"CheckpointRestart", testCheckpointRestart},
		{"CheckpointConflict", testCheckpointConflict},
		{"CheckpointReset", testCheckpointReset},
		{"DecisionsRoundTrip", testDecisionsRoundTrip},
		{"DecisionsAtomic", testDecisionsAtomic},
		{"DecisionsSeqRestart", testDecisionsSeqRestart},
		{"DecisionsQuery", testDecisionsQuery},
		{"DecisionsPaging", testDecisionsPaging},
		{"Model", testModel},
		{"Ledger", testLedger},
		{"Memos", testMemos},
	}
	tests = append(tests, storeIndexTests()...)
	tests = append(tests, resolveTests()...)
	tests = append(tests, statusExpiryTests()...)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.fn(t, newEnv(t, newStore))
		})
	}
}

const coll = "collection-a"

func testAddAndRead(t *testing.T, e *env) {
	objs := []store.Object{
		obj(ind1, v(1)),
		obj(mal1, v(2)),
		objSpec(ind2, v(3), "2.0"),
	}
	// Bytes the store must not touch: odd whitespace, escapes, binary-ish
	// UTF-8, a trailing newline.
	objs[1].Raw = []byte("{\"id\":\"" + mal1 + "\" ,\"name\":\"\\ud83d\\ude00 \u00fc\"}\n")
	res := e.add(coll, objs...)
	for i, r := range res {
		if r.Existed {
			t.Fatalf("result %d: Existed = true for a new object", i)
		}
		if !r.DateAdded.After(t0.Add(-time.Microsecond)) {
			t.Fatalf("result %d: date_added %s is before the clock %s", i, fmtTime(r.DateAdded), fmtTime(t0))
		}
	}
	got := e.walk(coll, store.Query{Versions: []store.VersionMatch{vAll}})
	e.checkObjects("read back", got, storedAll(objs, res), true)

	// The returned bytes are the caller's: changing them changes nothing
	// stored.
	got[0].Raw[0] = 'X'
	again := e.page(coll, store.Query{Versions: []store.VersionMatch{vAll}})
	e.checkObjects("read again after modifying a result", again.Objects, storedAll(objs, res), true)
	// Nor do the caller's input bytes stay tied to the store.
	objs[0].Raw[0] = 'Y'
	again = e.page(coll, store.Query{Versions: []store.VersionMatch{vAll}})
	if again.Objects[0].Raw[0] != '{' {
		t.Fatalf("stored bytes changed when the caller modified its input: got %q", again.Objects[0].Raw)
	}
}

func testIdempotent(t *testing.T, e *env) {
	first := obj(ind1, v(1))
	r1 := e.add(coll, first)
	e.clock.Advance(time.Second)
	second := withRaw(obj(ind1, v(1)), "a later copy")
	r2 := e.add(coll, second, obj(ind2, v(1)))
	if r1[0].Existed {
		t.Fatalf("first add: Existed = true, want false")
	}
	if !r2[0].Existed {
		t.Fatalf("re-add: Existed = false, want true")
	}
	if !r2[0].DateAdded.Equal(r1[0].DateAdded) {
		t.Fatalf("re-add: date_added = %s, want the original %s", fmtTime(r2[0].DateAdded), fmtTime(r1[0].DateAdded))
	}
	if r2[1].Existed {
		t.Fatalf("new object beside a re-add: Existed = true, want false")
	}
	got := e.walk(coll, store.Query{IDs: []string{ind1}, Versions: []store.VersionMatch{vAll}})
	e.checkObjects("versions of "+ind1, got, []store.Object{stored(first, r1[0])}, true)
}

func testIdempotentWithinOneCall(t *testing.T, e *env) {
	a := obj(ind1, v(1))
	b := withRaw(obj(ind1, v(1)), "duplicate in the same envelope")
	res := e.add(coll, a, b, obj(ind2, v(1)))
	if res[0].Existed || !res[1].Existed || res[2].Existed {
		t.Fatalf("Existed = %v, %v, %v; want false, true, false", res[0].Existed, res[1].Existed, res[2].Existed)
	}
	if !res[1].DateAdded.Equal(res[0].DateAdded) {
		t.Fatalf("duplicate: date_added = %s, want %s", fmtTime(res[1].DateAdded), fmtTime(res[0].DateAdded))
	}
	got := e.walk(coll, store.Query{IDs: []string{ind1}, Versions: []store.VersionMatch{vAll}})
	e.checkObjects("versions of "+ind1, got, []store.Object{stored(a, res[0])}, true)
}

func testVersions(t *testing.T, e *env) {
	// Versions arrive out of order: the newest is not the last added.
	objs := []store.Object{obj(ind1, v(2)), obj(ind1, v(5)), obj(ind1, v(1)), obj(ind1, v(3))}
	res := e.add(coll, objs...)
	all := storedAll(objs, res)

	for _, tc := range []struct {
		versions []store.VersionMatch
		want     []store.Object
	}{
		{nil, all[1:2]},
		{[]store.VersionMatch{vLast}, all[1:2]},
		{[]store.VersionMatch{vFirst}, all[2:3]},
		{[]store.VersionMatch{vAll}, all},
		{[]store.VersionMatch{vFirst, vLast}, all[1:3]},
		{[]store.VersionMatch{vLast, vFirst, vLast}, all[1:3]},
		{[]store.VersionMatch{at(v(3))}, all[3:4]},
		{[]store.VersionMatch{at(v(3)), at(v(2))}, []store.Object{all[0], all[3]}},
		{[]store.VersionMatch{at(v(4))}, nil},
		{[]store.VersionMatch{at(v(5)), vLast}, all[1:2]},
		{[]store.VersionMatch{vAll, vFirst}, all},
	} {
		q := store.Query{Versions: tc.versions}
		e.checkObjects("Objects"+describe(q), e.walk(coll, q), tc.want, true)
		q.IDs = []string{ind1}
		e.checkObjects("Objects"+describe(q), e.walk(coll, q), tc.want, true)
	}
}

func testZeroVersion(t *testing.T, e *env) {
	sco := obj(ip1, time.Time{})
	r1 := e.add(coll, sco)
	again := withRaw(obj(ip1, time.Time{}), "again")
	r2 := e.add(coll, again, obj(ip2, time.Time{}))
	if !r2[0].Existed || !r2[0].DateAdded.Equal(r1[0].DateAdded) {
		t.Fatalf("re-add of a zero-version object: got %+v, want Existed with date_added %s", r2[0], fmtTime(r1[0].DateAdded))
	}
	for _, versions := range [][]store.VersionMatch{nil, {vAll}, {vFirst}, {vLast}, {at(time.Time{})}} {
		q := store.Query{IDs: []string{ip1}, Versions: versions}
		got := e.walk(coll, q)
		e.checkObjects("Objects"+describe(q), got, []store.Object{stored(sco, r1[0])}, true)
		if !got[0].Version.IsZero() {
			t.Fatalf("Version = %s, want zero", fmtTime(got[0].Version))
		}
	}
	q := store.Query{Types: []string{"ipv4-addr"}}
	e.checkObjects("Objects"+describe(q), e.walk(coll, q),
		[]store.Object{stored(sco, r1[0]), stored(obj(ip2, time.Time{}), r2[1])}, false)
}

func testVersionPrecision(t *testing.T, e *env) {
	paris := time.FixedZone("CET", 3600)
	versions := []time.Time{
		time.Date(2026, 1, 2, 3, 4, 5, 123456789, time.UTC),
		time.Date(2026, 1, 2, 3, 4, 5, 123456788, time.UTC), // 1 ns older
		time.Date(1601, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(1969, 12, 31, 23, 59, 59, 999999999, time.UTC),
		time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC),
		time.Date(2026, 1, 2, 5, 4, 5, 500, paris), // not UTC
	}
	var objs []store.Object
	for _, vt := range versions {
		objs = append(objs, obj(ind1, vt))
	}
	res := e.add(coll, objs...)
	for i, r := range res {
		if r.Existed {
			t.Fatalf("version %s: Existed = true, want false", fmtTime(versions[i]))
		}
	}
	all := storedAll(objs, res)
	e.checkObjects("all versions", e.walk(coll, store.Query{Versions: []store.VersionMatch{vAll}}), all, true)
	e.checkObjects("first", e.walk(coll, store.Query{Versions: []store.VersionMatch{vFirst}}), all[2:3], true)
	e.checkObjects("last", e.walk(coll, store.Query{Versions: []store.VersionMatch{vLast}}), all[4:5], true)
	for i, vt := range versions {
		// The same instant in another zone is the same version.
		q := store.Query{Versions: []store.VersionMatch{at(vt.In(time.FixedZone("X", -7*3600)))}}
		e.checkObjects("Objects"+describe(q), e.walk(coll, q), all[i:i+1], true)
	}
	q := store.Query{Versions: []store.VersionMatch{at(versions[0].Add(time.Nanosecond))}}
	e.checkObjects("Objects"+describe(q), e.walk(coll, q), nil, true)
	// Re-adding the non-UTC version in UTC is a re-add.
	r := e.add(coll, obj(ind1, versions[5].UTC()))
	if !r[0].Existed {
		t.Fatalf("re-add of %s in UTC: Existed = false, want true", fmtTime(versions[5]))
	}
}

func testDateAddedFrozenClock(t *testing.T, e *env) {
	// The clock never moves: date_added must still increase strictly, by
	// whole microseconds, in input order, across calls.
	var all []store.AddResult
	for i := range 3 {
		var objs []store.Object
		for j := range 4 {
			objs = append(objs, obj(fmt.Sprintf("indicator--00000000-0000-4000-8000-%012d", i*10+j), v(1)))
		}
		all = append(all, e.add(coll, objs...)...)
	}
	if !all[0].DateAdded.Equal(t0) {
		t.Fatalf("first date_added = %s, want the clock's %s", fmtTime(all[0].DateAdded), fmtTime(t0))
	}
	for i := 1; i < len(all); i++ {
		if !all[i].DateAdded.After(all[i-1].DateAdded) {
			t.Fatalf("date_added %d = %s, not after %d = %s", i, fmtTime(all[i].DateAdded), i-1, fmtTime(all[i-1].DateAdded))
		}
	}
	got := e.walk(coll, store.Query{})
	if len(got) != len(all) {
		t.Fatalf("read %d objects, want %d", len(got), len(all))
	}
	for i := range got {
		if !got[i].DateAdded.Equal(all[i].DateAdded) {
			t.Fatalf("object %d date_added = %s, want %s", i, fmtTime(got[i].DateAdded), fmtTime(all[i].DateAdded))
		}
	}
}

func testDateAddedClockBackwards(t *testing.T, e *env) {
	e.clock.Set(t0.Add(time.Hour))
	r1 := e.add(coll, obj(ind1, v(1)), obj(ind2, v(1)))
	e.clock.Set(t0) // an hour back
	r2 := e.add(coll, obj(ind3, v(1)))
	if !r2[0].DateAdded.After(r1[1].DateAdded) {
		t.Fatalf("after the clock went back: date_added = %s, want after %s", fmtTime(r2[0].DateAdded), fmtTime(r1[1].DateAdded))
	}
	if r2[0].DateAdded.Sub(r1[1].DateAdded) > time.Millisecond {
		t.Fatalf("after the clock went back: date_added jumped from %s to %s", fmtTime(r1[1].DateAdded), fmtTime(r2[0].DateAdded))
	}
}

func testDateAddedFollowsClock(t *testing.T, e *env) {
	// date_added is the clock truncated to microseconds whenever the clock
	// is ahead of the last one assigned.
	now := t0.Add(1500 * time.Nanosecond)
	e.clock.Set(now)
	r := e.add(coll, obj(ind1, v(1)))
	if want := now.Truncate(time.Microsecond); !r[0].DateAdded.Equal(want) {
		t.Fatalf("date_added = %s, want %s", fmtTime(r[0].DateAdded), fmtTime(want))
	}
	now = now.Add(time.Second).In(time.FixedZone("CET", 3600))
	e.clock.Set(now)
	r = e.add(coll, obj(ind2, v(1)))
	if want := now.Truncate(time.Microsecond); !r[0].DateAdded.Equal(want) {
		t.Fatalf("date_added = %s, want %s", fmtTime(r[0].DateAdded), fmtTime(want))
	}
}

func testDateAddedAfterDelete(t *testing.T, e *env) {
	// A deleted version's date_added is never given again: a cursor past it
	// must not miss what comes next.
	r1 := e.add(coll, obj(ind1, v(1)), obj(ind2, v(1)))
	if _, err := e.s.DeleteObject(e.ctx, coll, ind2, nil, nil); err != nil {
		t.Fatalf("DeleteObject: %v", err)
	}
	r2 := e.add(coll, obj(ind3, v(1)))
	if !r2[0].DateAdded.After(r1[1].DateAdded) {
		t.Fatalf("date_added after deleting the newest = %s, want after %s", fmtTime(r2[0].DateAdded), fmtTime(r1[1].DateAdded))
	}
}

func testCollectionsIsolated(t *testing.T, e *env) {
	const other = "collection-b"
	a := e.add(coll, obj(ind1, v(1)), obj(ind2, v(1)))
	e.clock.Advance(-time.Hour) // per-collection order does not depend on the other's
	b := e.add(other, withRaw(obj(ind1, v(1)), "other"), obj(mal1, v(1)))
	if b[0].Existed {
		t.Fatalf("same (id, version) in another collection: Existed = true, want false")
	}
	if !b[0].DateAdded.Equal(t0.Add(-time.Hour)) {
		t.Fatalf("other collection: date_added = %s, want %s", fmtTime(b[0].DateAdded), fmtTime(t0.Add(-time.Hour)))
	}
	wantA := storedAll([]store.Object{obj(ind1, v(1)), obj(ind2, v(1))}, a)
	wantB := storedAll([]store.Object{withRaw(obj(ind1, v(1)), "other"), obj(mal1, v(1))}, b)
	e.checkObjects(coll, e.walk(coll, store.Query{}), wantA, true)
	e.checkObjects(other, e.walk(other, store.Query{}), wantB, true)

	if n, err := e.s.DeleteObject(e.ctx, other, ind1, nil, nil); err != nil || n != 1 {
		t.Fatalf("DeleteObject(%q, %q) = %d, %v; want 1, nil", other, ind1, n, err)
	}
	e.checkObjects(coll+" after deleting in "+other, e.walk(coll, store.Query{}), wantA, true)
	if _, err := e.s.DeleteObject(e.ctx, other, ind2, nil, nil); ctigate.KindOf(err) != ctigate.NotFound {
		t.Fatalf("DeleteObject(%q, %q) of an id only in %q: got %v, want NotFound", other, ind2, coll, err)
	}
	p := e.page(other, store.Query{Limit: 1, Versions: []store.VersionMatch{vAll}})
	if len(p.Objects) != 1 || p.More {
		t.Fatalf("%s with one object left: got %d objects, More = %v; want 1, false", other, len(p.Objects), p.More)
	}
}

func testUnknownCollection(t *testing.T, e *env) {
	p := e.page("no-such-collection", store.Query{})
	if len(p.Objects) != 0 || p.More {
		t.Fatalf("unknown collection: got %d objects, More = %v; want an empty last page", len(p.Objects), p.More)
	}
}

func testFilters(t *testing.T, e *env) {
	objs := []store.Object{
		obj(ind1, v(1)),            // 0
		obj(ind1, v(2)),            // 1
		obj(ind2, v(1)),            // 2
		obj(mal1, v(3)),            // 3
		obj(ip1, time.Time{}),      // 4
		objSpec(ind3, v(1), "2.0"), // 5
		obj(ind1, v(3)),            // 6
		objSpec(ind3, v(2), "2.0"), // 7
		obj(mal1, v(1)),            // 8: older version added later
	}
	res := e.add(coll, objs...)
	s := storedAll(objs, res)
	pick := func(idx ...int) []store.Object {
		var out []store.Object
		for _, i := range idx {
			out = append(out, s[i])
		}
		return out
	}
	all := []store.VersionMatch{vAll}
	for _, tc := range []struct {
		q    store.Query
		want []store.Object
	}{
		{store.Query{}, pick(2, 3, 4, 6, 7)},
		{store.Query{Versions: all}, s},
		{store.Query{Versions: []store.VersionMatch{vFirst}}, pick(0, 2, 4, 5, 8)},
		{store.Query{IDs: []string{ind1}}, pick(6)},
		{store.Query{IDs: []string{ind1}, Versions: all}, pick(0, 1, 6)},
		{store.Query{IDs: []string{ind1, mal1}, Versions: all}, pick(0, 1, 3, 6, 8)},
		{store.Query{IDs: []string{ind1, ind1}, Versions: all}, pick(0, 1, 6)},
		{store.Query{IDs: []string{"indicator--no-such-id"}}, nil},
		{store.Query{IDs: []string{"indicator--no-such-id", ind2}}, pick(2)},
		{store.Query{Types: []string{"indicator"}}, pick(2, 6, 7)},
		{store.Query{Types: []string{"indicator"}, Versions: all}, pick(0, 1, 2, 5, 6, 7)},
		{store.Query{Types: []string{"malware", "ipv4-addr"}}, pick(3, 4)},
		{store.Query{Types: []string{"report"}}, nil},
		{store.Query{SpecVersions: []string{"2.0"}}, pick(7)},
		{store.Query{SpecVersions: []string{"2.0"}, Versions: all}, pick(5, 7)},
		{store.Query{SpecVersions: []string{"2.1", "2.0"}}, pick(2, 3, 4, 6, 7)},
		{store.Query{SpecVersions: []string{"2.2"}}, nil},
		{store.Query{Versions: []store.VersionMatch{at(v(1))}}, pick(0, 2, 5, 8)},
		{store.Query{Versions: []store.VersionMatch{at(v(1)), at(v(3))}}, pick(0, 2, 3, 5, 6, 8)},
		{store.Query{Versions: []store.VersionMatch{at(v(2)), vFirst}}, pick(0, 1, 2, 4, 5, 7, 8)},
		{store.Query{Versions: []store.VersionMatch{vFirst, vLast}}, pick(0, 2, 3, 4, 5, 6, 7, 8)},
		{store.Query{IDs: []string{ind1, ind3}, Types: []string{"indicator"}, SpecVersions: []string{"2.1"}, Versions: []store.VersionMatch{vFirst}}, pick(0)},
		{store.Query{IDs: []string{mal1}, Types: []string{"indicator"}}, nil},
		{store.Query{IDs: []string{ind1}, Versions: []store.VersionMatch{at(v(2))}, SpecVersions: []string{"2.0"}}, nil},
		{store.Query{Types: []string{"indicator"}, AddedAfter: s[2].DateAdded, Versions: all}, pick(5, 6, 7)},
		{store.Query{IDs: []string{ind1}, AddedAfter: s[1].DateAdded, Versions: []store.VersionMatch{vFirst}}, nil},
		{store.Query{AddedAfter: s[5].DateAdded, Versions: []store.VersionMatch{vFirst}}, pick(8)},
	} {
		e.checkObjects("Objects"+describe(tc.q), e.walk(coll, tc.q), tc.want, true)
		for _, limit := range []int{1, 2} {
			q := tc.q
			q.Limit = limit
			e.checkObjects("Objects"+describe(q), e.walk(coll, q), tc.want, true)
		}
	}
}

func testFirstLastPerSpecVersion(t *testing.T, e *env) {
	// first and last are taken over the versions that pass match[spec_version].
	objs := []store.Object{
		objSpec(ind1, v(1), "2.0"),
		objSpec(ind1, v(2), "2.1"),
		objSpec(ind1, v(3), "2.0"),
		objSpec(ind1, v(4), "2.1"),
	}
	s := storedAll(objs, e.add(coll, objs...))
	for _, tc := range []struct {
		specs    []string
		versions []store.VersionMatch
		want     []store.Object
	}{
		{[]string{"2.0"}, []store.VersionMatch{vLast}, []store.Object{s[2]}},
		{[]string{"2.0"}, []store.VersionMatch{vFirst}, []store.Object{s[0]}},
		{[]string{"2.1"}, []store.VersionMatch{vLast}, []store.Object{s[3]}},
		{[]string{"2.1"}, []store.VersionMatch{vFirst}, []store.Object{s[1]}},
		{[]string{"2.1"}, []store.VersionMatch{vFirst, vLast}, []store.Object{s[1], s[3]}},
		{nil, []store.VersionMatch{vFirst}, []store.Object{s[0]}},
		{nil, []store.VersionMatch{vLast}, []store.Object{s[3]}},
		{[]string{"2.0", "2.1"}, []store.VersionMatch{vFirst, vLast}, []store.Object{s[0], s[3]}},
	} {
		for _, ids := range [][]string{nil, {ind1}} {
			q := store.Query{IDs: ids, SpecVersions: tc.specs, Versions: tc.versions}
			e.checkObjects("Objects"+describe(q), e.walk(coll, q), tc.want, true)
		}
	}
}

func testAddedAfter(t *testing.T, e *env) {
	var objs []store.Object
	for i := range 5 {
		objs = append(objs, obj(fmt.Sprintf("indicator--00000000-0000-4000-8000-%012d", i), v(1)))
	}
	e.clock.Set(t0.Add(7 * time.Microsecond))
	s := storedAll(objs, e.add(coll, objs...))
	for _, tc := range []struct {
		after time.Time
		want  []store.Object
	}{
		{time.Time{}, s},
		{s[0].DateAdded.Add(-time.Nanosecond), s},
		{s[0].DateAdded, s[1:]},                      // exclusive
		{s[0].DateAdded.Add(time.Nanosecond), s[1:]}, // between two
		{s[0].DateAdded.Add(999 * time.Nanosecond), s[1:]},
		{s[2].DateAdded.In(time.FixedZone("X", 5*3600)), s[3:]},
		{s[4].DateAdded, nil},
		{t0.Add(-24 * time.Hour), s},
		{time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC), s},
		{t0.Add(24 * time.Hour), nil},
	} {
		q := store.Query{AddedAfter: tc.after}
		e.checkObjects("Objects"+describe(q), e.walk(coll, q), tc.want, true)
		q.Limit = 2
		e.checkObjects("Objects"+describe(q), e.walk(coll, q), tc.want, true)
	}
}

func addMany(e *env, n int, prefix string) []store.Object {
	e.t.Helper()
	objs := make([]store.Object, n)
	for i := range objs {
		objs[i] = obj(fmt.Sprintf("%s--00000000-0000-4000-8000-%012d", prefix, i), v(i%7))
	}
	return storedAll(objs, e.add(coll, objs...))
}

func testLimit(t *testing.T, e *env) {
	s := addMany(e, 5, "indicator")
	for _, tc := range []struct {
		limit int
		n     int
		more  bool
	}{{1, 1, true}, {4, 4, true}, {5, 5, false}, {6, 5, false}, {1000000, 5, false}, {0, 5, false}, {-1, 5, false}} {
		p := e.page(coll, store.Query{Limit: tc.limit})
		if len(p.Objects) != tc.n || p.More != tc.more {
			t.Fatalf("limit %d: got %d objects, More = %v; want %d, %v", tc.limit, len(p.Objects), p.More, tc.n, tc.more)
		}
		e.checkObjects(fmt.Sprintf("limit %d", tc.limit), p.Objects, s[:tc.n], true)
	}
}

func testDefaultLimit(t *testing.T, e *env) {
	s := addMany(e, store.DefaultLimit+1, "indicator")
	p := e.page(coll, store.Query{})
	if len(p.Objects) != store.DefaultLimit || !p.More {
		t.Fatalf("no limit: got %d objects, More = %v; want %d, true", len(p.Objects), p.More, store.DefaultLimit)
	}
	p = e.page(coll, store.Query{Next: p.Next})
	e.checkObjects("second page", p.Objects, s[store.DefaultLimit:], true)
	if p.More {
		t.Fatalf("second page: More = true, want false")
	}
}

func testPagination(t *testing.T, e *env) {
	var objs []store.Object
	for i := range 30 {
		id := fmt.Sprintf("indicator--00000000-0000-4000-8000-%012d", i%11)
		if i%3 == 0 {
			id = fmt.Sprintf("malware--00000000-0000-4000-8000-%012d", i%11)
		}
		objs = append(objs, obj(id, v(i)))
	}
	res := e.add(coll, objs...)
	m := newModel()
	m.coll(coll).objs = storedAll(objs, res)
	for _, q := range []store.Query{
		{},
		{Versions: []store.VersionMatch{vAll}},
		{Types: []string{"malware"}, Versions: []store.VersionMatch{vAll}},
		{Versions: []store.VersionMatch{vFirst, vLast}},
		{IDs: []string{"indicator--00000000-0000-4000-8000-000000000001", "malware--00000000-0000-4000-8000-000000000000"}, Versions: []store.VersionMatch{vAll}},
	} {
		want := m.query(coll, q)
		for _, limit := range []int{1, 2, 3, 7, 100} {
			q.Limit = limit
			got := e.walk(coll, q)
			e.checkObjects("walk"+describe(q), got, want, true)
		}
	}
}

func testPaginationExactlyFullPage(t *testing.T, e *env) {
	s := addMany(e, 6, "indicator")
	p := e.page(coll, store.Query{Limit: 3})
	if !p.More {
		t.Fatalf("page 1 of 2: More = false, want true")
	}
	p = e.page(coll, store.Query{Limit: 3, Next: p.Next})
	e.checkObjects("page 2", p.Objects, s[3:], true)
	if p.More {
		t.Fatalf("page 2 of 2, full: More = true, want false")
	}
	// A filter that leaves exactly limit matches with non-matching objects
	// after them.
	e.add(coll, obj(mal1, v(1)))
	p = e.page(coll, store.Query{Limit: 6, Types: []string{"indicator"}})
	if len(p.Objects) != 6 || p.More {
		t.Fatalf("filtered: got %d objects, More = %v; want 6, false", len(p.Objects), p.More)
	}
}

func testCursorStableUnderAdds(t *testing.T, e *env) {
	s := addMany(e, 5, "indicator")
	p := e.page(coll, store.Query{Limit: 2})
	got := p.Objects
	e.clock.Advance(-time.Minute)
	// New objects, and a newer version of one already read: all come after
	// the cursor, and the superseded version is not read again.
	extra := []store.Object{obj(mal1, v(1)), obj(s[0].ID, v(9)), obj(ind1, v(1))}
	s = append(s, storedAll(extra, e.add(coll, extra...))...)
	q := store.Query{Limit: 2, Next: p.Next}
	got = append(got, e.walk(coll, q)...)
	e.checkObjects("pages before and after adds", got, s, true)
}

func testCursorStableUnderDeletes(t *testing.T, e *env) {
	s := addMany(e, 6, "indicator")
	p := e.page(coll, store.Query{Limit: 2})
	// Delete the last returned object and the next one.
	for _, o := range []store.Object{s[1], s[2]} {
		if _, err := e.s.DeleteObject(e.ctx, coll, o.ID, nil, nil); err != nil {
			t.Fatalf("DeleteObject(%s): %v", o.ID, err)
		}
	}
	got := e.walk(coll, store.Query{Limit: 2, Next: p.Next})
	e.checkObjects("after deleting around the cursor", got, s[3:], true)
}

func testCursorWithAddedAfter(t *testing.T, e *env) {
	s := addMany(e, 6, "indicator")
	q := store.Query{Limit: 2, AddedAfter: s[0].DateAdded}
	got := e.walk(coll, q)
	e.checkObjects("walk"+describe(q), got, s[1:], true)
}

func testMalformedCursor(t *testing.T, e *env) {
	addMany(e, 3, "indicator")
	p := e.page(coll, store.Query{Limit: 1})
	for _, next := range []string{
		"x",
		"!!!!",
		"not a cursor",
		p.Next + "A",
		p.Next[:len(p.Next)-1],
		p.Next + "=",
		strings.Repeat("A", 200),
		"\x00",
		"%2F",
	} {
		_, err := e.s.Objects(e.ctx, coll, store.Query{Next: next})
		wantKind(t, fmt.Sprintf("Objects(next=%q)", next), err, ctigate.Invalid)
	}
}

func testWithoutRaw(t *testing.T, e *env) {
	s := addMany(e, 3, "indicator")
	for _, q := range []store.Query{
		{WithoutRaw: true},
		{WithoutRaw: true, Limit: 1},
		{WithoutRaw: true, IDs: []string{s[1].ID}},
	} {
		got := e.walk(coll, q)
		for i, o := range got {
			if o.Raw != nil {
				t.Fatalf("Objects%s: object %d Raw = %q, want nil", describe(q), i, o.Raw)
			}
		}
		want := noRaw(s)
		if len(q.IDs) > 0 {
			want = want[1:2]
		}
		e.checkObjects("Objects"+describe(q), got, want, false)
	}
}

// testWithoutRawByID: a read by ids without the bytes answers what the
// same read with them does (ids, types, spec_versions, versions,
// date_added, order, pages), for every version selector and filter, also
// for versions whose type is not their id's prefix and ids without one.
func testWithoutRawByID(t *testing.T, e *env) {
	odd := withRaw(store.Object{ID: "odd--1", Type: "other", SpecVersion: "2.1", Version: v(1)}, "")
	plain := withRaw(store.Object{ID: "plain", Type: "plain", SpecVersion: "2.0"}, "")
	e.add(coll, obj(ind1, v(1)), objSpec(ind1, v(2), "2.0"), obj(ind1, v(3)), obj(mal1, time.Time{}), odd, plain)
	e.add(coll, obj(ind2, v(2)), obj(ind2, v(1)), objSpec(odd.ID, v(2), "2.0"), obj(ind3, v(5)))
	ids := []string{ind1, ind2, ind3, mal1, odd.ID, plain.ID, "indicator--00000000-0000-4000-8000-000000000000"}
	first := e.walk(coll, store.Query{Versions: []store.VersionMatch{vAll}, Limit: 1})
	if len(first) < 2 {
		t.Fatalf("%d versions stored, want 10", len(first))
	}
	for _, q := range []store.Query{
		{IDs: ids},
		{IDs: ids, Versions: []store.VersionMatch{vAll}},
		{IDs: ids, Versions: []store.VersionMatch{{Kind: store.First}}},
		{IDs: ids, Versions: []store.VersionMatch{{Kind: store.First}, {Kind: store.Last}}},
		{IDs: ids, Versions: []store.VersionMatch{{Kind: store.At, At: v(2)}}},
		{IDs: ids, Versions: []store.VersionMatch{vAll}, Types: []string{"other", "indicator"}},
		{IDs: ids, Versions: []store.VersionMatch{vAll}, Types: []string{"odd"}},
		{IDs: ids, Versions: []store.VersionMatch{vAll}, SpecVersions: []string{"2.0"}},
		{IDs: ids, Versions: []store.VersionMatch{vAll}, Limit: 3},
		{IDs: ids, Versions: []store.VersionMatch{vAll}, AddedAfter: first[1].DateAdded},
		{IDs: []string{odd.ID}, Versions: []store.VersionMatch{vAll}},
		{IDs: []string{plain.ID, mal1}},
	} {
		want := noRaw(e.walk(coll, q))
		for i := range want {
			want[i].Hash, want[i].Producer = [32]byte{}, ""
		}
		bare := q
		bare.WithoutRaw = true
		got := e.walk(coll, bare)
		for i := range got {
			if got[i].Raw != nil {
				t.Fatalf("Objects%s: object %d has Raw", describe(bare), i)
			}
			got[i].Hash, got[i].Producer = [32]byte{}, ""
		}
		e.checkObjects("Objects"+describe(bare), got, want, false)
	}
}

// testHash: the writer's hash is kept with each version, returned with its
// raw bytes, kept by the first copy when a version is re-added, and kept
// across a restart; a version written without one reads back zero.
func testHash(t *testing.T, e *env) {
	a, b := obj(ind1, v(1)), obj(ind1, v(2))
	noHash := obj(mal1, v(1))
	noHash.Hash = [32]byte{}
	e.add(coll, a, b, noHash)
	again := a
	again.Hash[0] ^= 0xff
	if r := e.add(coll, again); !r[0].Existed || r[0].Hash != a.Hash {
		t.Fatalf("re-adding a version with another hash: got %+v, want Existed with the first hash %x", r[0], a.Hash)
	}
	check := func(when string) {
		t.Helper()
		got := e.walk(coll, store.Query{Versions: []store.VersionMatch{vAll}})
		want := map[string][32]byte{ind1 + "@1": a.Hash, ind1 + "@2": b.Hash, mal1 + "@1": {}}
		if len(got) != 3 {
			t.Fatalf("%s: %d versions, want 3", when, len(got))
		}
		for _, o := range got {
			key := o.ID + "@1"
			if o.Version.Equal(v(2)) {
				key = o.ID + "@2"
			}
			if o.Hash != want[key] {
				t.Errorf("%s: %s hash %x, want %x", when, key, o.Hash, want[key])
			}
		}
		for _, o := range e.walk(coll, store.Query{Versions: []store.VersionMatch{vAll}, WithoutRaw: true}) {
			if o.Hash != ([32]byte{}) {
				t.Errorf("%s: WithoutRaw read returned a hash for %s", when, o.ID)
			}
		}
	}
	check("after add")
	if e.reopen != nil {
		e.restart()
		check("after restart")
	}
}

func testDelete(t *testing.T, e *env) {
	objs := []store.Object{obj(ind1, v(1)), obj(ind1, v(2)), obj(ind1, v(3)), obj(ind1, v(4)), obj(ind2, v(1))}
	s := storedAll(objs, e.add(coll, objs...))
	n, err := e.s.DeleteObject(e.ctx, coll, ind1, []store.VersionMatch{at(v(2)), at(v(9))}, nil)
	if err != nil || n != 1 {
		t.Fatalf("DeleteObject(at v2, v9) = %d, %v; want 1, nil", n, err)
	}
	e.checkObjects("after deleting v2", e.walk(coll, store.Query{Versions: []store.VersionMatch{vAll}}),
		[]store.Object{s[0], s[2], s[3], s[4]}, true)
	_, err = e.s.DeleteObject(e.ctx, coll, ind1, []store.VersionMatch{at(v(2))}, nil)
	wantKind(t, "DeleteObject of a deleted version", err, ctigate.NotFound)

	n, err = e.s.DeleteObject(e.ctx, coll, ind1, nil, nil)
	if err != nil || n != 3 {
		t.Fatalf("DeleteObject(all) = %d, %v; want 3, nil", n, err)
	}
	for _, q := range []store.Query{
		{Versions: []store.VersionMatch{vAll}},
		{IDs: []string{ind1}, Versions: []store.VersionMatch{vAll}},
		{IDs: []string{ind1}},
		{IDs: []string{ind1}, Versions: []store.VersionMatch{vFirst}},
		{Types: []string{"indicator"}},
		{WithoutRaw: true},
	} {
		want := []store.Object{s[4]}
		if len(q.IDs) > 0 {
			want = nil
		}
		if q.WithoutRaw {
			want = noRaw(want)
		}
		e.checkObjects("after deleting "+ind1+": Objects"+describe(q), e.walk(coll, q), want, !q.WithoutRaw)
	}
}

func testDeleteRecomputesFirstLast(t *testing.T, e *env) {
	objs := []store.Object{obj(ind1, v(2)), obj(ind1, v(1)), obj(ind1, v(3)), obj(ind1, v(4))}
	s := storedAll(objs, e.add(coll, objs...))
	first := []store.VersionMatch{vFirst}
	last := []store.VersionMatch{vLast}
	if n, err := e.s.DeleteObject(e.ctx, coll, ind1, last, nil); err != nil || n != 1 {
		t.Fatalf("DeleteObject(last) = %d, %v; want 1, nil", n, err)
	}
	e.checkObjects("last after deleting the last", e.walk(coll, store.Query{}), s[2:3], true)
	if n, err := e.s.DeleteObject(e.ctx, coll, ind1, first, nil); err != nil || n != 1 {
		t.Fatalf("DeleteObject(first) = %d, %v; want 1, nil", n, err)
	}
	e.checkObjects("first after deleting the first", e.walk(coll, store.Query{Versions: first}), s[0:1], true)
	if n, err := e.s.DeleteObject(e.ctx, coll, ind1, []store.VersionMatch{vFirst, vLast}, nil); err != nil || n != 2 {
		t.Fatalf("DeleteObject(first, last) = %d, %v; want 2, nil", n, err)
	}
	e.checkObjects("after deleting first and last", e.walk(coll, store.Query{Versions: []store.VersionMatch{vAll}}), nil, true)
	// A new version after deletions is first and last.
	r := e.add(coll, obj(ind1, v(7)))
	want := []store.Object{stored(obj(ind1, v(7)), r[0])}
	e.checkObjects("first of a re-created object", e.walk(coll, store.Query{Versions: first}), want, true)
	e.checkObjects("last of a re-created object", e.walk(coll, store.Query{Versions: last}), want, true)
}

func testDeleteSpecVersion(t *testing.T, e *env) {
	objs := []store.Object{objSpec(ind1, v(1), "2.0"), objSpec(ind1, v(2), "2.1"), objSpec(ind1, v(3), "2.0"), objSpec(ind1, v(4), "2.1")}
	s := storedAll(objs, e.add(coll, objs...))
	// last among the 2.0 versions is v3, not v4.
	if n, err := e.s.DeleteObject(e.ctx, coll, ind1, []store.VersionMatch{vLast}, []string{"2.0"}); err != nil || n != 1 {
		t.Fatalf("DeleteObject(last, 2.0) = %d, %v; want 1, nil", n, err)
	}
	e.checkObjects("after deleting the last 2.0 version", e.walk(coll, store.Query{Versions: []store.VersionMatch{vAll}}),
		[]store.Object{s[0], s[1], s[3]}, true)
	e.checkObjects("last 2.0 version now", e.walk(coll, store.Query{SpecVersions: []string{"2.0"}}), s[0:1], true)
	if n, err := e.s.DeleteObject(e.ctx, coll, ind1, nil, []string{"2.1"}); err != nil || n != 2 {
		t.Fatalf("DeleteObject(all, 2.1) = %d, %v; want 2, nil", n, err)
	}
	e.checkObjects("left", e.walk(coll, store.Query{}), s[0:1], true)
	_, err := e.s.DeleteObject(e.ctx, coll, ind1, nil, []string{"2.1"})
	wantKind(t, "DeleteObject(2.1) with none left", err, ctigate.NotFound)
}

func testDeleteNotFound(t *testing.T, e *env) {
	e.add(coll, obj(ind1, v(1)))
	for _, tc := range []struct {
		coll, id string
		versions []store.VersionMatch
		specs    []string
	}{
		{coll, ind2, nil, nil},
		{"no-such-collection", ind1, nil, nil},
		{coll, ind1, []store.VersionMatch{at(v(2))}, nil},
		{coll, ind1, nil, []string{"2.0"}},
	} {
		n, err := e.s.DeleteObject(e.ctx, tc.coll, tc.id, tc.versions, tc.specs)
		wantKind(t, fmt.Sprintf("DeleteObject(%q, %q, %v, %v)", tc.coll, tc.id, tc.versions, tc.specs), err, ctigate.NotFound)
		if n != 0 {
			t.Fatalf("DeleteObject removing nothing returned %d", n)
		}
	}
	if got := e.walk(coll, store.Query{}); len(got) != 1 {
		t.Fatalf("after failed deletes: %d objects, want 1", len(got))
	}
}

func testDeleteThenReadd(t *testing.T, e *env) {
	r1 := e.add(coll, obj(ind1, v(1)))
	if _, err := e.s.DeleteObject(e.ctx, coll, ind1, nil, nil); err != nil {
		t.Fatalf("DeleteObject: %v", err)
	}
	again := withRaw(obj(ind1, v(1)), "re-added")
	r2 := e.add(coll, again)
	if r2[0].Existed {
		t.Fatalf("re-add after delete: Existed = true, want false")
	}
	if !r2[0].DateAdded.After(r1[0].DateAdded) {
		t.Fatalf("re-add after delete: date_added %s, want after %s", fmtTime(r2[0].DateAdded), fmtTime(r1[0].DateAdded))
	}
	e.checkObjects("re-added", e.walk(coll, store.Query{}), []store.Object{stored(again, r2[0])}, true)
}

func sampleStatus() store.Status {
	return store.Status{
		ID:               "2d086da7-4bdc-4f91-900e-d77486753710",
		APIRoot:          "exchange",
		Collection:       "csirt-inbound",
		Owner:            "cert-a",
		Status:           "pending",
		RequestTimestamp: time.Date(2026, 3, 1, 12, 0, 0, 123456000, time.UTC),
		TotalCount:       4,
		Successes:        []store.StatusDetail{{ID: ind1, Version: "2026-03-01T12:00:00.000Z"}},
		Failures:         []store.StatusDetail{{ID: ind2, Version: "2026-03-01T12:00:00Z", Message: "invalid \"pattern\" ü"}},
		Pendings:         []store.StatusDetail{{ID: mal1, Version: "2026-03-01T12:00:00Z"}, {ID: ip1}},
	}
}

func checkStatus(t *testing.T, what string, got, want store.Status) {
	t.Helper()
	ok := got.ID == want.ID && got.APIRoot == want.APIRoot && got.Collection == want.Collection &&
		got.Owner == want.Owner && got.Status == want.Status && got.RequestTimestamp.Equal(want.RequestTimestamp) &&
		got.TotalCount == want.TotalCount && slices.Equal(got.Successes, want.Successes) &&
		slices.Equal(got.Failures, want.Failures) && slices.Equal(got.Pendings, want.Pendings)
	if !ok {
		t.Fatalf("%s: got %+v, want %+v", what, got, want)
	}
}

func testStatus(t *testing.T, e *env) {
	st := sampleStatus()
	if err := e.s.PutStatus(e.ctx, st); err != nil {
		t.Fatalf("PutStatus: %v", err)
	}
	got, err := e.s.Status(e.ctx, st.ID)
	if err != nil {
		t.Fatalf("Status: %v", err)
	}
	checkStatus(t, "Status", got, st)

	st.Status = "complete"
	st.Successes = append(st.Successes, st.Pendings...)
	st.Pendings = nil
	st.RequestTimestamp = st.RequestTimestamp.In(time.FixedZone("CET", 3600))
	if err := e.s.PutStatus(e.ctx, st); err != nil {
		t.Fatalf("PutStatus (replace): %v", err)
	}
	got, err = e.s.Status(e.ctx, st.ID)
	if err != nil {
		t.Fatalf("Status after replace: %v", err)
	}
	checkStatus(t, "Status after replace", got, st)

	other := sampleStatus()
	other.ID = "5f6a3c1e-0000-4000-8000-000000000000"
	other.Successes, other.Failures, other.Pendings = nil, nil, nil
	if err := e.s.PutStatus(e.ctx, other); err != nil {
		t.Fatalf("PutStatus (second): %v", err)
	}
	got, err = e.s.Status(e.ctx, other.ID)
	if err != nil {
		t.Fatalf("Status (second): %v", err)
	}
	checkStatus(t, "second status", got, other)
	got, err = e.s.Status(e.ctx, st.ID)
	if err != nil {
		t.Fatalf("Status (first, after second): %v", err)
	}
	checkStatus(t, "first status after adding a second", got, st)

	// An envelope's worth: 5,000 details, every kind.
	big := sampleStatus()
	big.ID = "5f6a3c1e-0000-4000-8000-0000000000b1"
	big.Successes, big.Failures, big.Pendings = nil, nil, nil
	for i := range 5000 {
		d := store.StatusDetail{ID: fmt.Sprintf("indicator--%08x-0000-4000-8000-%012x", i, i*7919),
			Version: v(i).Format(time.RFC3339Nano), Message: fmt.Sprintf("added; TLP:GREEN; sha256 %064x; é \u2028 \"%d\"", i*104729, i)}
		switch i % 3 {
		case 0:
			big.Successes = append(big.Successes, d)
		case 1:
			big.Failures = append(big.Failures, d)
		default:
			big.Pendings = append(big.Pendings, d)
		}
	}
	big.TotalCount = 5000
	if err := e.s.PutStatus(e.ctx, big); err != nil {
		t.Fatalf("PutStatus (5,000 details): %v", err)
	}
	if got, err = e.s.Status(e.ctx, big.ID); err != nil {
		t.Fatalf("Status (5,000 details): %v", err)
	}
	checkStatus(t, "status of 5,000 details", got, big)
}

func testStatusNotFound(t *testing.T, e *env) {
	_, err := e.s.Status(e.ctx, "86a1bf3d-0000-4000-8000-000000000000")
	wantKind(t, "Status of an unknown id", err, ctigate.NotFound)
	_, err = e.s.Status(e.ctx, "")
	if k := ctigate.KindOf(err); k != ctigate.NotFound && k != ctigate.Invalid {
		t.Fatalf("Status(\"\"): got %v, want NotFound or Invalid", err)
	}
}

func testInvalidInput(t *testing.T, e *env) {
	_, err := e.s.AddObjects(e.ctx, "", []store.Object{obj(ind1, v(1))})
	wantKind(t, "AddObjects to an empty collection name", err, ctigate.Invalid)
	noID := obj(ind1, v(1))
	noID.ID = ""
	_, err = e.s.AddObjects(e.ctx, coll, []store.Object{noID})
	wantKind(t, "AddObjects of an object without id", err, ctigate.Invalid)
	// Every backend refuses the same objects (store.Object.Validate).
	noBytes := obj(ind1, v(1))
	noBytes.Raw = nil
	_, err = e.s.AddObjects(e.ctx, coll, []store.Object{noBytes})
	wantKind(t, "AddObjects of an object without bytes", err, ctigate.Invalid)
	badSpec := obj(ind1, v(1))
	badSpec.SpecVersion = "2.1,2.0"
	_, err = e.s.AddObjects(e.ctx, coll, []store.Object{badSpec})
	wantKind(t, "AddObjects of a spec_version with ','", err, ctigate.Invalid)
	_, err = e.s.Objects(e.ctx, coll, store.Query{Versions: []store.VersionMatch{{Kind: store.VersionKind(200)}}})
	wantKind(t, "Objects with an unknown version kind", err, ctigate.Invalid)
	_, err = e.s.DeleteObject(e.ctx, coll, ind1, []store.VersionMatch{{Kind: store.VersionKind(200)}}, nil)
	wantKind(t, "DeleteObject with an unknown version kind", err, ctigate.Invalid)
	err = e.s.PutStatus(e.ctx, store.Status{})
	wantKind(t, "PutStatus without id", err, ctigate.Invalid)
	res, err := e.s.AddObjects(e.ctx, coll, nil)
	if err != nil || len(res) != 0 {
		t.Fatalf("AddObjects(nil) = %v, %v; want no results, nil", res, err)
	}
}

func testAtomic(t *testing.T, e *env) {
	bad := obj(ind3, v(1))
	bad.ID = ""
	_, err := e.s.AddObjects(e.ctx, coll, []store.Object{obj(ind1, v(1)), obj(ind2, v(1)), bad})
	if err == nil {
		t.Fatal("AddObjects with an invalid object: got no error")
	}
	if got := e.walk(coll, store.Query{Versions: []store.VersionMatch{vAll}}); len(got) != 0 {
		t.Fatalf("after a failed AddObjects: %d objects stored, want 0: %s", len(got), showAll(got))
	}
	r := e.add(coll, obj(ind1, v(1)))
	if r[0].Existed {
		t.Fatal("object of a failed AddObjects reported as Existed")
	}
}

func testContextCancelled(t *testing.T, e *env) {
	e.add(coll, obj(ind1, v(1)))
	if err := e.s.PutStatus(e.ctx, sampleStatus()); err != nil {
		t.Fatalf("PutStatus: %v", err)
	}
	ctx, cancel := context.WithCancel(e.ctx)
	cancel()
	check := func(what string, err error) {
		t.Helper()
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("%s with a cancelled context: got %v, want an error wrapping context.Canceled", what, err)
		}
	}
	_, err := e.s.AddObjects(ctx, coll, []store.Object{obj(ind2, v(1))})
	check("AddObjects", err)
	_, err = e.s.Objects(ctx, coll, store.Query{})
	check("Objects", err)
	_, err = e.s.DeleteObject(ctx, coll, ind1, nil, nil)
	check("DeleteObject", err)
	err = e.s.PutStatus(ctx, sampleStatus())
	check("PutStatus", err)
	_, err = e.s.Status(ctx, sampleStatus().ID)
	check("Status", err)
	got := e.walk(coll, store.Query{})
	if len(got) != 1 || got[0].ID != ind1 {
		t.Fatalf("after cancelled calls: got %s, want only %s", showAll(got), ind1)
	}
}

func testPing(t *testing.T, e *env) {
	if err := e.s.Ping(e.ctx); err != nil {
		t.Fatalf("Ping: %v", err)
	}
}

func testConcurrent(t *testing.T, e *env) {
	const (
		writers   = 4
		envelopes = 10
		perEnv    = 50
		total     = writers * envelopes * perEnv
	)
	ctx := e.ctx
	var wg sync.WaitGroup
	errs := make(chan error, writers+1)
	for w := range writers {
		wg.Go(func() {
			for i := range envelopes {
				objs := make([]store.Object, perEnv)
				for j := range objs {
					objs[j] = obj(fmt.Sprintf("indicator--%08d-0000-4000-8000-%012d", w, i*perEnv+j), v(j%3))
				}
				if _, err := e.s.AddObjects(ctx, coll, objs); err != nil {
					errs <- fmt.Errorf("writer %d: %w", w, err)
					return
				}
				if w == 0 && i%3 == 0 {
					e.clock.Advance(time.Millisecond)
				}
			}
		})
	}
	// A consumer pages through concurrently, resuming from the last
	// date_added it saw when it reaches the end.
	seen := make(map[string]int)
	var order []time.Time
	pagerDone := make(chan struct{})
	go func() {
		defer close(pagerDone)
		deadline := time.Now().Add(30 * time.Second)
		var q store.Query
		q.Limit = 37
		for len(seen) < total && time.Now().Before(deadline) {
			p, err := e.s.Objects(ctx, coll, q)
			if err != nil {
				errs <- fmt.Errorf("pager: %w", err)
				return
			}
			for _, o := range p.Objects {
				seen[o.ID]++
				order = append(order, o.DateAdded)
			}
			if p.More {
				q.Next = p.Next
				continue
			}
			q.Next = ""
			if len(p.Objects) > 0 {
				q.AddedAfter = p.Objects[len(p.Objects)-1].DateAdded
			}
			time.Sleep(time.Millisecond)
		}
	}()
	wg.Wait()
	<-pagerDone
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if len(seen) != total {
		t.Fatalf("pager saw %d distinct objects, want %d", len(seen), total)
	}
	for id, n := range seen {
		if n != 1 {
			t.Fatalf("pager saw %s %d times, want once", id, n)
		}
	}
	for i := 1; i < len(order); i++ {
		if !order[i].After(order[i-1]) {
			t.Fatalf("pager saw date_added %s after %s", fmtTime(order[i]), fmtTime(order[i-1]))
		}
	}
	if got := e.walk(coll, store.Query{WithoutRaw: true}); len(got) != total {
		t.Fatalf("walk after writers finished: %d objects, want %d", len(got), total)
	}
}

func testRestart(t *testing.T, e *env) {
	if e.reopen == nil {
		t.Skip("backend does not support reopening")
	}
	e.clock.Set(t0.Add(time.Hour))
	s := addMany(e, 5, "indicator")
	st := sampleStatus()
	if err := e.s.PutStatus(e.ctx, st); err != nil {
		t.Fatalf("PutStatus: %v", err)
	}
	p := e.page(coll, store.Query{Limit: 2})

	e.clock.Set(t0) // the clock is an hour behind after the restart
	e.restart()

	rest := e.walk(coll, store.Query{Limit: 2, Next: p.Next})
	e.checkObjects("cursor after restart", rest, s[2:], true)
	r := e.add(coll, obj(ind1, v(1)))
	if !r[0].DateAdded.After(s[4].DateAdded) {
		t.Fatalf("date_added after restart with the clock behind = %s, want after %s", fmtTime(r[0].DateAdded), fmtTime(s[4].DateAdded))
	}
	if r2 := e.add(coll, s[0]); !r2[0].Existed {
		t.Fatalf("re-add after restart: Existed = false, want true")
	}
	got, err := e.s.Status(e.ctx, st.ID)
	if err != nil {
		t.Fatalf("Status after restart: %v", err)
	}
	checkStatus(t, "status after restart", got, st)
	e.checkObjects("everything after restart", e.walk(coll, store.Query{}), append(s, stored(obj(ind1, v(1)), r[0])), true)
}

// testModel runs random operations against the store and the model and
// compares every read.
func testModel(t *testing.T, e *env) {
	rng := rand.New(rand.NewPCG(1, 2))
	m := newModel()
	colls := []string{coll, "collection-b"}
	var ids []string
	for i := range 4 {
		ids = append(ids, fmt.Sprintf("indicator--00000000-0000-4000-8000-%012d", i))
	}
	for i := range 2 {
		ids = append(ids, fmt.Sprintf("malware--00000000-0000-4000-8000-%012d", i))
	}
	scos := []string{ip1, ip2}
	allIDs := append(slices.Clip(ids), scos...)
	versions := []time.Time{v(0), v(1), v(2), v(3).Add(time.Nanosecond), v(4)}
	specs := []string{"2.1", "2.1", "2.1", "2.0"}
	randVersions := func() []store.VersionMatch {
		var vm []store.VersionMatch
		for range rng.IntN(3) {
			switch rng.IntN(4) {
			case 0:
				vm = append(vm, vLast)
			case 1:
				vm = append(vm, vFirst)
			case 2:
				vm = append(vm, vAll)
			default:
				vm = append(vm, at(versions[rng.IntN(len(versions))]))
			}
		}
		return vm
	}
	pickSome := func(from []string, max int) []string {
		var out []string
		for range rng.IntN(max + 1) {
			out = append(out, from[rng.IntN(len(from))])
		}
		return out
	}
	ops := 300
	if testing.Short() {
		ops = 100
	}
	for op := range ops {
		c := colls[rng.IntN(len(colls))]
		switch r := rng.IntN(10); {
		case r < 4: // add
			var objs []store.Object
			for range 1 + rng.IntN(5) {
				var o store.Object
				if rng.IntN(5) == 0 {
					o = objSpec(scos[rng.IntN(len(scos))], time.Time{}, "2.1")
				} else {
					o = objSpec(ids[rng.IntN(len(ids))], versions[rng.IntN(len(versions))], specs[rng.IntN(len(specs))])
				}
				objs = append(objs, withRaw(o, fmt.Sprint(op)))
			}
			want := m.add(c, e.clock.Now(), objs)
			got := e.add(c, objs...)
			for i := range got {
				if got[i].Existed != want[i].Existed || !got[i].DateAdded.Equal(want[i].DateAdded) {
					t.Fatalf("op %d: AddObjects result %d (%s) = {%s %v}, want {%s %v}", op, i, show(objs[i]),
						fmtTime(got[i].DateAdded), got[i].Existed, fmtTime(want[i].DateAdded), want[i].Existed)
				}
			}
		case r < 5: // delete, withdraw or expire
			id := allIDs[rng.IntN(len(allIDs))]
			vm, sp := randVersions(), pickSome(specs, 1)
			kind := []string{store.RemovalDeleted, store.RemovalWithdrawn, store.RemovalExpired}[rng.IntN(3)]
			want := m.delete(c, e.clock.Now(), id, vm, sp)
			n, err := e.s.DeleteObject(store.WithRemoval(e.ctx, store.Removal{Kind: kind}), c, id, vm, sp)
			if want == 0 {
				if ctigate.KindOf(err) != ctigate.NotFound {
					t.Fatalf("op %d: DeleteObject(%s, %v, %v) = %d, %v; want NotFound", op, id, vm, sp, n, err)
				}
			} else if err != nil || n != want {
				t.Fatalf("op %d: DeleteObject(%s, %v, %v) = %d, %v; want %d, nil", op, id, vm, sp, n, err, want)
			}
		case r < 6: // move the clock
			e.clock.Advance(time.Duration(rng.IntN(5000)-2000) * time.Nanosecond)
		case r < 7: // resolve date_added values, assigned or not
			var das []time.Time
			if mc := m.colls[c]; mc != nil && len(mc.added) > 0 {
				for range rng.IntN(8) {
					da := mc.added[rng.IntN(len(mc.added))]
					das = append(das, da.Add(time.Duration(rng.IntN(3)-1)*time.Microsecond))
				}
			}
			want := m.resolve(c, das)
			got := e.resolve(c, das...)
			for i := range want {
				if !sameAdded(got[i], want[i]) {
					t.Fatalf("op %d: ResolveAdded(%q, %s) = %s, want %s", op, c, fmtTime(das[i]), showAdded(got[i]), showAdded(want[i]))
				}
			}
		default: // query
			q := store.Query{
				IDs:          pickSome(allIDs, 2),
				Types:        pickSome([]string{"indicator", "malware", "ipv4-addr"}, 1),
				SpecVersions: pickSome(specs, 1),
				Versions:     randVersions(),
				Limit:        rng.IntN(5),
				WithoutRaw:   rng.IntN(4) == 0,
			}
			if mc := m.colls[c]; mc != nil && len(mc.objs) > 0 && rng.IntN(3) == 0 {
				q.AddedAfter = mc.objs[rng.IntN(len(mc.objs))].DateAdded.Add(time.Duration(rng.IntN(3)-1) * time.Nanosecond)
			}
			want := m.query(c, q)
			got := e.walk(c, q)
			if d := sameObjects(got, want, !q.WithoutRaw); d != "" {
				t.Fatalf("op %d: Objects(%q, %s): %s\ngot:  %s\nwant: %s", op, c, describe(q), d, showAll(got), showAll(want))
			}
		}
	}
}

func testCheckpoint(t *testing.T, e *env) {
	const name = "fanout/route-a/collection-a/v1"
	got, err := e.s.Checkpoint(e.ctx, name)
	if err != nil || !got.IsZero() {
		t.Fatalf("Checkpoint before any was set = %s, %v; want the zero time, nil", fmtTime(got), err)
	}
	at := t0.Add(1234567 * time.Microsecond)
	res, err := e.s.AddObjectsCheckpoint(e.ctx, coll, []store.Object{obj(ind1, v(1)), obj(ind2, v(1))}, nil, name, time.Time{}, at)
	if err != nil || len(res) != 2 || res[0].Existed || res[1].Existed {
		t.Fatalf("AddObjectsCheckpoint = %+v, %v; want two new versions", res, err)
	}
	if got, err = e.s.Checkpoint(e.ctx, name); err != nil || !got.Equal(at) {
		t.Fatalf("Checkpoint = %s, %v; want %s", fmtTime(got), err, fmtTime(at))
	}
	if n := len(e.walk(coll, store.Query{Versions: []store.VersionMatch{vAll}})); n != 2 {
		t.Fatalf("after AddObjectsCheckpoint: %d versions stored, want 2", n)
	}
	// Moving the checkpoint alone; other names are independent.
	later := at.Add(time.Hour)
	if res, err = e.s.AddObjectsCheckpoint(e.ctx, coll, nil, nil, name, at, later); err != nil || len(res) != 0 {
		t.Fatalf("AddObjectsCheckpoint with no objects = %v, %v; want no results, nil", res, err)
	}
	if got, err = e.s.Checkpoint(e.ctx, name); err != nil || !got.Equal(later) {
		t.Fatalf("Checkpoint after moving it alone = %s, %v; want %s", fmtTime(got), err, fmtTime(later))
	}
	if got, err = e.s.Checkpoint(e.ctx, name+"-other"); err != nil || !got.IsZero() {
		t.Fatalf("another checkpoint = %s, %v; want the zero time", fmtTime(got), err)
	}
	// Re-adding changes nothing but still moves the checkpoint.
	after := later.Add(time.Microsecond)
	res, err = e.s.AddObjectsCheckpoint(e.ctx, coll, []store.Object{obj(ind1, v(1))}, nil, name, later, after)
	if err != nil || !res[0].Existed {
		t.Fatalf("re-adding with a checkpoint = %+v, %v; want Existed", res, err)
	}
	if got, _ = e.s.Checkpoint(e.ctx, name); !got.Equal(after) {
		t.Fatalf("Checkpoint after a re-add = %s, want %s", fmtTime(got), fmtTime(after))
	}
	_, err = e.s.AddObjectsCheckpoint(e.ctx, coll, nil, nil, "", time.Time{}, at)
	wantKind(t, "AddObjectsCheckpoint without a name", err, ctigate.Invalid)
	_, err = e.s.Checkpoint(e.ctx, "")
	wantKind(t, "Checkpoint without a name", err, ctigate.Invalid)
}

func testCheckpointAtomic(t *testing.T, e *env) {
	const name = "fanout/atomic"
	before := t0.Add(time.Second)
	if _, err := e.s.AddObjectsCheckpoint(e.ctx, coll, nil, nil, name, time.Time{}, before); err != nil {
		t.Fatalf("AddObjectsCheckpoint: %v", err)
	}
	bad := obj(ind3, v(1))
	bad.ID = ""
	_, err := e.s.AddObjectsCheckpoint(e.ctx, coll, []store.Object{obj(ind1, v(1)), bad}, nil, name, before, before.Add(time.Hour))
	if err == nil {
		t.Fatal("AddObjectsCheckpoint with an invalid object: got no error")
	}
	if got := e.walk(coll, store.Query{Versions: []store.VersionMatch{vAll}}); len(got) != 0 {
		t.Fatalf("after a failed AddObjectsCheckpoint: %d objects stored, want 0", len(got))
	}
	if got, err := e.s.Checkpoint(e.ctx, name); err != nil || !got.Equal(before) {
		t.Fatalf("Checkpoint after a failed AddObjectsCheckpoint = %s, %v; want it unchanged at %s", fmtTime(got), err, fmtTime(before))
	}
}

func testCheckpointRestart(t *testing.T, e *env) {
	if e.reopen == nil {
		t.Skip("backend does not support reopening")
	}
	const name = "fanout/restart"
	at := t0.Add(42 * time.Microsecond)
	res, err := e.s.AddObjectsCheckpoint(e.ctx, coll, []store.Object{obj(ind1, v(1))}, nil, name, time.Time{}, at)
	if err != nil {
		t.Fatalf("AddObjectsCheckpoint: %v", err)
	}
	e.restart()
	if got, err := e.s.Checkpoint(e.ctx, name); err != nil || !got.Equal(at) {
		t.Fatalf("Checkpoint after restart = %s, %v; want %s", fmtTime(got), err, fmtTime(at))
	}
	got := e.walk(coll, store.Query{Versions: []store.VersionMatch{vAll}})
	e.checkObjects("after restart", got, []store.Object{stored(obj(ind1, v(1)), res[0])}, true)
}

// testCheckpointConflict: a write names the checkpoint it started from.
// When another writer (a replica) has moved it since, even to an earlier
// point or over a shorter batch, the write changes nothing, records no
// decision and is a Conflict; the writer re-reads the checkpoint and goes
// on from there. So work done twice is recorded once.
// testCheckpointReset: a checkpoint set back to the zero time reads as
// never set, and the next write from the zero time succeeds.
func testCheckpointReset(t *testing.T, e *env) {
	at := t0.Add(time.Hour)
	if _, err := e.s.AddObjectsCheckpoint(e.ctx, coll, nil, nil, "cp", time.Time{}, at); err != nil {
		t.Fatal(err)
	}
	if _, err := e.s.AddObjectsCheckpoint(e.ctx, coll, nil, nil, "cp", at, time.Time{}); err != nil {
		t.Fatalf("setting a checkpoint back to the start: %v", err)
	}
	if got, err := e.s.Checkpoint(e.ctx, "cp"); err != nil || !got.IsZero() {
		t.Fatalf("Checkpoint after the reset = %v, %v; want the zero time", got, err)
	}
	if _, err := e.s.AddObjectsCheckpoint(e.ctx, coll, nil, nil, "cp", time.Time{}, at); err != nil {
		t.Fatalf("writing from the start after a reset: %v", err)
	}
	if got, _ := e.s.Checkpoint(e.ctx, "cp"); !got.Equal(at) {
		t.Fatalf("Checkpoint = %v, want %v", got, at)
	}
}

func testCheckpointConflict(t *testing.T, e *env) {
	const name = "fanout/conflict"
	short, long := t0.Add(time.Second), t0.Add(2*time.Second)
	// One writer read "no checkpoint" and wrote a short batch.
	if _, err := e.s.AddObjectsCheckpoint(e.ctx, coll, []store.Object{obj(ind1, v(1))},
		[]store.Decision{decision("police", ind1, 0)}, name, time.Time{}, short); err != nil {
		t.Fatalf("AddObjectsCheckpoint: %v", err)
	}
	// Another read "no checkpoint" too, and its batch overlaps: a longer
	// one, the same one, an earlier end.
	for _, at := range []time.Time{long, short, t0} {
		_, err := e.s.AddObjectsCheckpoint(e.ctx, coll, []store.Object{obj(ind1, v(1)), obj(ind2, v(1))},
			[]store.Decision{decision("police", ind1, 0), decision("police", ind2, 1)}, name, time.Time{}, at)
		wantKind(t, fmt.Sprintf("AddObjectsCheckpoint from a stale checkpoint to %s", fmtTime(at)), err, ctigate.Conflict)
	}
	// From a checkpoint that never was.
	_, err := e.s.AddObjectsCheckpoint(e.ctx, coll, nil, []store.Decision{decision("police", ind2, 1)}, name, long, long.Add(time.Second))
	wantKind(t, "AddObjectsCheckpoint from a checkpoint never set", err, ctigate.Conflict)
	if got, err := e.s.Checkpoint(e.ctx, name); err != nil || !got.Equal(short) {
		t.Fatalf("Checkpoint after conflicts = %s, %v; want %s", fmtTime(got), err, fmtTime(short))
	}
	if got := e.walk(coll, store.Query{Versions: []store.VersionMatch{vAll}}); len(got) != 1 || got[0].ID != ind1 {
		t.Fatalf("after conflicts: %s stored, want only %s", showAll(got), ind1)
	}
	if got := e.decisions(store.LedgerQuery{}); len(got) != 1 {
		t.Fatalf("after conflicts: %d decisions, want 1", len(got))
	}
	// Concurrent writers of the same batch: exactly one succeeds.
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Go(func() {
			_, errs[i] = e.s.AddObjectsCheckpoint(e.ctx, coll, []store.Object{obj(ind2, v(1))},
				[]store.Decision{decision("police", ind2, 1)}, name, short, long)
		})
	}
	wg.Wait()
	ok := 0
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case ctigate.KindOf(err) != ctigate.Conflict:
			t.Fatalf("concurrent AddObjectsCheckpoint: %v, want nil or Conflict", err)
		}
	}
	if ok != 1 {
		t.Fatalf("concurrent writers of one batch: %d succeeded, want 1", ok)
	}
	got := e.decisions(store.LedgerQuery{})
	if len(got) != 2 {
		t.Fatalf("after concurrent writers: %d decisions, want 2", len(got))
	}
	checkSeqs(t, "after concurrent writers", got, 1)
	if cp, err := e.s.Checkpoint(e.ctx, name); err != nil || !cp.Equal(long) {
		t.Fatalf("Checkpoint = %s, %v; want %s", fmtTime(cp), err, fmtTime(long))
	}
}
