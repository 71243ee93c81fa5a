package storetest

import (
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/ctigate/ctigate"
	"github.com/ctigate/ctigate/store"
)

// decision returns a decision about id for route, distinct per n.
func decision(route, id string, n int) store.Decision {
	d := store.Decision{
		Time:          t0.Add(time.Duration(n) * time.Second),
		Route:         route,
		Collection:    "published-" + route,
		PolicyVersion: "pv-1",
		ObjectID:      id,
		ObjectVersion: v(n),
		Source:        coll,
		Action:        store.ActionPublished,
	}
	d.OriginalSHA256[0], d.OriginalSHA256[31] = byte(n), 0xaa
	d.PublishedSHA256 = d.OriginalSHA256
	switch n % 3 {
	case 1:
		d.Action = store.ActionRedacted
		d.Removed = []string{"description", fmt.Sprintf("external_references.[%d]", n)}
		d.PublishedSHA256[1] = 0xbb
	case 2:
		d.Action, d.Reason, d.Detail = store.ActionWithheld, "tlp_red", "object is TLP:RED"
		d.PublishedSHA256 = [32]byte{}
	}
	return d
}

// record stores ds with a checkpoint move and no objects.
func (e *env) record(ds ...store.Decision) {
	e.t.Helper()
	// Each write moves the checkpoint on from where it was, as fan-out does.
	from := e.recorded
	e.recorded = t0
	if !from.IsZero() {
		e.recorded = from.Add(time.Microsecond)
	}
	if _, err := e.s.AddObjectsCheckpoint(e.ctx, coll, nil, ds, "fanout/decisions", from, e.recorded); err != nil {
		e.t.Fatalf("AddObjectsCheckpoint with %d decisions: %v", len(ds), err)
	}
}

// decisions reads every decision matching q, page by page.
func (e *env) decisions(q store.DecisionQuery) []store.Decision {
	e.t.Helper()
	var all []store.Decision
	for range 10000 {
		page, err := e.s.Decisions(e.ctx, q)
		if err != nil {
			e.t.Fatalf("Decisions(%+v): %v", q, err)
		}
		if len(page) == 0 {
			return all
		}
		limit := q.Limit
		if limit <= 0 {
			limit = store.DefaultDecisionLimit
		}
		if len(page) > limit {
			e.t.Fatalf("Decisions(%+v): %d decisions, more than the limit", q, len(page))
		}
		all = append(all, page...)
		q.After = page[len(page)-1].Seq
	}
	e.t.Fatal("Decisions: paging does not end")
	return nil
}

// checkSeqs checks that ds are numbered from first, one by one.
func checkSeqs(t *testing.T, what string, ds []store.Decision, first uint64) {
	t.Helper()
	for i, d := range ds {
		if d.Seq != first+uint64(i) {
			t.Fatalf("%s: decision %d has Seq %d, want %d (strictly increasing, gap-free)", what, i, d.Seq, first+uint64(i))
		}
	}
}

func sameDecision(got, want store.Decision) bool {
	want.Seq = got.Seq
	if !got.Time.Equal(want.Time) || !got.ObjectVersion.Equal(want.ObjectVersion) {
		return false
	}
	got.Time, want.Time, got.ObjectVersion, want.ObjectVersion = time.Time{}, time.Time{}, time.Time{}, time.Time{}
	if len(got.Removed) == 0 && len(want.Removed) == 0 {
		got.Removed, want.Removed = nil, nil
	}
	return reflect.DeepEqual(got, want)
}

func testDecisionsRoundTrip(t *testing.T, e *env) {
	if ds, err := e.s.Decisions(e.ctx, store.DecisionQuery{}); err != nil || len(ds) != 0 {
		t.Fatalf("Decisions on an empty store = %v, %v; want none, nil", ds, err)
	}
	want := []store.Decision{decision("police", ind1, 0), decision("police", ind2, 1), decision("judiciary", ind1, 2)}
	unversioned := decision("judiciary", "ipv4-addr--ff26c055-6336-5bc5-b98d-13d6226742dd", 3)
	unversioned.ObjectVersion = time.Time{}
	unstamped := decision("judiciary", ind3, 4)
	unstamped.Time = time.Time{}
	want = append(want, unversioned, unstamped)
	e.record(want...)
	want[4].Time = e.clock.Now() // a zero Time is the store's clock
	got := e.decisions(store.DecisionQuery{})
	if len(got) != len(want) {
		t.Fatalf("read back %d decisions, want %d", len(got), len(want))
	}
	checkSeqs(t, "round trip", got, 1)
	for i := range want {
		if !sameDecision(got[i], want[i]) {
			t.Fatalf("decision %d:\ngot  %+v\nwant %+v", i, got[i], want[i])
		}
	}
	if !got[3].ObjectVersion.IsZero() {
		t.Fatalf("unversioned decision read back with version %s", fmtTime(got[3].ObjectVersion))
	}

	bad := decision("police", ind1, 0)
	bad.Action = "approved"
	_, err := e.s.AddObjectsCheckpoint(e.ctx, coll, nil, []store.Decision{bad}, "fanout/decisions", e.recorded, t0)
	wantKind(t, "a decision with an unknown action", err, ctigate.Invalid)
	bad = decision("police", "", 0)
	_, err = e.s.AddObjectsCheckpoint(e.ctx, coll, nil, []store.Decision{bad}, "fanout/decisions", e.recorded, t0)
	wantKind(t, "a decision without an object id", err, ctigate.Invalid)
	if n := len(e.decisions(store.DecisionQuery{})); n != len(want) {
		t.Fatalf("after invalid decisions: %d recorded, want %d", n, len(want))
	}
}

func testDecisionsAtomic(t *testing.T, e *env) {
	const name = "fanout/decisions-atomic"
	before := t0.Add(time.Second)
	if _, err := e.s.AddObjectsCheckpoint(e.ctx, coll, []store.Object{obj(ind1, v(1))}, []store.Decision{decision("police", ind1, 0)}, name, time.Time{}, before); err != nil {
		t.Fatalf("AddObjectsCheckpoint: %v", err)
	}
	// A failed add (an invalid object) records nothing, and neither does
	// an add failed by an invalid decision.
	bad := obj(ind3, v(1))
	bad.ID = ""
	_, err := e.s.AddObjectsCheckpoint(e.ctx, coll, []store.Object{obj(ind2, v(1)), bad},
		[]store.Decision{decision("police", ind2, 3), decision("police", ind3, 5)}, name, before, before.Add(time.Hour))
	if err == nil {
		t.Fatal("AddObjectsCheckpoint with an invalid object: got no error")
	}
	badD := decision("police", ind2, 3)
	badD.Action = ""
	_, err = e.s.AddObjectsCheckpoint(e.ctx, coll, []store.Object{obj(ind2, v(1))}, []store.Decision{badD}, name, before, before.Add(time.Hour))
	wantKind(t, "AddObjectsCheckpoint with an invalid decision", err, ctigate.Invalid)
	if got := e.walk(coll, store.Query{Versions: []store.VersionMatch{vAll}}); len(got) != 1 {
		t.Fatalf("after failed adds: %d objects stored, want 1", len(got))
	}
	if got, err := e.s.Checkpoint(e.ctx, name); err != nil || !got.Equal(before) {
		t.Fatalf("Checkpoint after failed adds = %s, %v; want %s", fmtTime(got), err, fmtTime(before))
	}
	got := e.decisions(store.DecisionQuery{})
	if len(got) != 1 || got[0].ObjectID != ind1 {
		t.Fatalf("after failed adds: %d decisions recorded (%+v), want only the first", len(got), got)
	}
	// The retried batch records its decisions once, numbered after the
	// first: the failures used no numbers.
	if _, err := e.s.AddObjectsCheckpoint(e.ctx, coll, []store.Object{obj(ind2, v(1))},
		[]store.Decision{decision("police", ind2, 3)}, name, before, before.Add(time.Hour)); err != nil {
		t.Fatalf("retrying the batch: %v", err)
	}
	got = e.decisions(store.DecisionQuery{})
	if len(got) != 2 {
		t.Fatalf("after the retry: %d decisions, want 2", len(got))
	}
	checkSeqs(t, "after the retry", got, 1)
}

func testDecisionsSeqRestart(t *testing.T, e *env) {
	if e.reopen == nil {
		t.Skip("backend does not support reopening")
	}
	e.record(decision("police", ind1, 0), decision("police", ind2, 1))
	e.record(decision("judiciary", ind1, 2))
	e.restart()
	e.record(decision("judiciary", ind2, 3))
	e.restart()
	got := e.decisions(store.DecisionQuery{})
	if len(got) != 4 {
		t.Fatalf("after restarts: %d decisions, want 4", len(got))
	}
	checkSeqs(t, "across restarts", got, 1)
	if got[3].ObjectID != ind2 || got[3].Route != "judiciary" {
		t.Fatalf("last decision = %+v; want judiciary's about %s", got[3], ind2)
	}
}

func testDecisionsQuery(t *testing.T, e *env) {
	var all []store.Decision
	for i := range 30 {
		route := []string{"police", "judiciary", "courts"}[i%3]
		id := []string{ind1, ind2, ind3, mal1}[i%4]
		all = append(all, decision(route, id, i))
	}
	e.record(all[:10]...)
	e.record(all[10:]...)
	for _, q := range []store.DecisionQuery{
		{}, {ObjectID: ind1}, {Route: "judiciary"}, {ObjectID: ind2, Route: "courts"},
		{ObjectID: "indicator--00000000-0000-4000-8000-000000000000"}, {Route: "nobody"},
		{ObjectID: ind3, Limit: 2}, {Route: "police", Limit: 1}, {Limit: 7}, {After: 25}, {ObjectID: mal1, After: 12, Limit: 3},
	} {
		var want []store.Decision
		for i, d := range all {
			seq := uint64(i + 1)
			if seq > q.After && (q.ObjectID == "" || d.ObjectID == q.ObjectID) && (q.Route == "" || d.Route == q.Route) {
				want = append(want, d)
			}
		}
		got := e.decisions(q)
		if len(got) != len(want) {
			t.Fatalf("Decisions(%+v), all pages: %d decisions, want %d", q, len(got), len(want))
		}
		for i := range want {
			if !sameDecision(got[i], want[i]) {
				t.Fatalf("Decisions(%+v): decision %d:\ngot  %+v\nwant %+v", q, i, got[i], want[i])
			}
			if i > 0 && got[i].Seq <= got[i-1].Seq {
				t.Fatalf("Decisions(%+v): Seq %d after %d, want increasing", q, got[i].Seq, got[i-1].Seq)
			}
		}
		// One page is the first Limit matches.
		page, err := e.s.Decisions(e.ctx, q)
		limit := q.Limit
		if limit <= 0 {
			limit = store.DefaultDecisionLimit
		}
		if err != nil || len(page) != min(limit, len(want)) {
			t.Fatalf("Decisions(%+v), one page = %d decisions, %v; want %d", q, len(page), err, min(limit, len(want)))
		}
	}
}

func testDecisionsPaging(t *testing.T, e *env) {
	n := store.MaxDecisionLimit + 50
	ds := make([]store.Decision, n)
	for i := range ds {
		ds[i] = decision("police", ind1, i)
	}
	e.record(ds...)
	page, err := e.s.Decisions(e.ctx, store.DecisionQuery{Limit: n})
	if err != nil || len(page) != store.MaxDecisionLimit {
		t.Fatalf("Decisions with a limit above the maximum = %d decisions, %v; want %d", len(page), err, store.MaxDecisionLimit)
	}
	page, err = e.s.Decisions(e.ctx, store.DecisionQuery{})
	if err != nil || len(page) != store.DefaultDecisionLimit {
		t.Fatalf("Decisions without a limit = %d decisions, %v; want %d", len(page), err, store.DefaultDecisionLimit)
	}
	got := e.decisions(store.DecisionQuery{ObjectID: ind1, Limit: 333})
	if len(got) != n {
		t.Fatalf("all pages: %d decisions, want %d", len(got), n)
	}
	checkSeqs(t, "paging", got, 1)
	if page, err = e.s.Decisions(e.ctx, store.DecisionQuery{After: uint64(n)}); err != nil || len(page) != 0 {
		t.Fatalf("Decisions after the last = %d, %v; want none", len(page), err)
	}
	if page, err = e.s.Decisions(e.ctx, store.DecisionQuery{After: ^uint64(0)}); err != nil || len(page) != 0 {
		t.Fatalf("Decisions after the largest Seq = %d, %v; want none", len(page), err)
	}
}
