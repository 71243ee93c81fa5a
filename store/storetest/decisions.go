package storetest

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ctigate/ctigate"
	"github.com/ctigate/ctigate/custody"
	"github.com/ctigate/ctigate/store"
)

// Decisions are recorded only in the custody ledger: AddObjectsCheckpoint
// writes each as a published, redacted or withheld entry, in the write
// that carries its effect. These tests read them back with LedgerEntries.

// decision returns a decision about id for route, distinct per n.
func decision(route, id string, n int) store.Decision {
	d := store.Decision{
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

// decisionLedger returns the backend's ledger: where AddObjectsCheckpoint
// records decisions, so a backend without one fails.
func (e *env) decisionLedger() store.Ledger {
	e.t.Helper()
	l, ok := e.s.(store.Ledger)
	if !ok {
		e.t.Fatal("backend does not implement store.Ledger: AddObjectsCheckpoint has nowhere to record decisions")
	}
	return l
}

// decisions reads every decision entry (published, redacted, withheld)
// matching q's other filters, page by page from q.After.
func (e *env) decisions(q store.LedgerQuery) []custody.Entry {
	e.t.Helper()
	l := e.decisionLedger()
	q.Actions = store.DecisionActions()
	var all []custody.Entry
	for range 10000 {
		page, err := l.LedgerEntries(e.ctx, q)
		if err != nil {
			e.t.Fatalf("LedgerEntries(%+v): %v", q, err)
		}
		if len(page) == 0 {
			return all
		}
		limit := q.Limit
		if limit <= 0 {
			limit = store.DefaultLedgerLimit
		}
		if len(page) > limit {
			e.t.Fatalf("LedgerEntries(%+v): %d entries, more than the limit", q, len(page))
		}
		for i := range page {
			if !slices.Contains(q.Actions, page[i].Action) {
				e.t.Fatalf("LedgerEntries(%+v) returned a %s entry", q, page[i].Action)
			}
		}
		all = append(all, page...)
		q.After = page[len(page)-1].Seq
	}
	e.t.Fatal("LedgerEntries: paging does not end")
	return nil
}

// checkSeqs checks that es are numbered from first, one by one.
func checkSeqs(t *testing.T, what string, es []custody.Entry, first uint64) {
	t.Helper()
	for i, x := range es {
		if x.Seq != first+uint64(i) {
			t.Fatalf("%s: entry %d has seq %d, want %d (strictly increasing, gap-free)", what, i, x.Seq, first+uint64(i))
		}
	}
}

// recordsDecision reports how the ledger entry x differs from the record
// of decision d ("" when it is that record).
func recordsDecision(x *custody.Entry, d *store.Decision) string {
	want := custody.Entry{
		Action: d.Action, ObjectID: d.ObjectID, ObjectVersion: custody.FormatVersion(d.ObjectVersion),
		SHA256: custody.HexHash(d.OriginalSHA256), PublishedSHA256: custody.HexHash(d.PublishedSHA256),
		Collection: d.Collection, Source: d.Source, Route: d.Route, PolicyVersion: d.PolicyVersion,
		Reason: d.Reason, Detail: d.Detail, Removed: d.Removed,
	}
	got := custody.Entry{
		Action: x.Action, ObjectID: x.ObjectID, ObjectVersion: x.ObjectVersion,
		SHA256: x.SHA256, PublishedSHA256: x.PublishedSHA256,
		Collection: x.Collection, Source: x.Source, Route: x.Route, PolicyVersion: x.PolicyVersion,
		Reason: x.Reason, Detail: x.Detail, Removed: x.Removed,
	}
	if len(got.Removed) == 0 {
		got.Removed = nil
	}
	if len(want.Removed) == 0 {
		want.Removed = nil
	}
	if g, w := fmt.Sprintf("%+v", got), fmt.Sprintf("%+v", want); g != w {
		return fmt.Sprintf("\ngot  %s\nwant %s", g, w)
	}
	return ""
}

func testDecisionsRoundTrip(t *testing.T, e *env) {
	if ds := e.decisions(store.LedgerQuery{}); len(ds) != 0 {
		t.Fatalf("decisions in the ledger of an empty store: %v", actions(ds))
	}
	want := []store.Decision{decision("police", ind1, 0), decision("police", ind2, 1), decision("judiciary", ind1, 2)}
	unversioned := decision("judiciary", "ipv4-addr--ff26c055-6336-5bc5-b98d-13d6226742dd", 3)
	unversioned.ObjectVersion = time.Time{}
	want = append(want, unversioned, decision("judiciary", ind3, 4))
	e.clock.Advance(time.Hour) // the write's time, not the decisions'
	e.record(want...)
	got := e.decisions(store.LedgerQuery{})
	if len(got) != len(want) {
		t.Fatalf("read back %d decision entries, want %d", len(got), len(want))
	}
	// The decisions are the whole ledger: numbered from 1, in order.
	checkSeqs(t, "round trip", got, 1)
	for i := range want {
		if diff := recordsDecision(&got[i], &want[i]); diff != "" {
			t.Fatalf("entry %d does not record decision %d:%s", got[i].Seq, i, diff)
		}
		if got[i].Time != custody.FormatTime(e.clock.Now()) {
			t.Fatalf("entry %d has time %s, want the write's, %s", got[i].Seq, got[i].Time, custody.FormatTime(e.clock.Now()))
		}
	}
	if got[3].ObjectVersion != "" {
		t.Fatalf("unversioned decision recorded with version %s", got[3].ObjectVersion)
	}
	if all := e.verifyLedger(); len(all) != len(want) {
		t.Fatalf("the ledger holds %d entries, want the %d decisions", len(all), len(want))
	}

	// An invalid decision fails the whole write: nothing recorded, the
	// checkpoint where it was.
	for _, c := range []struct {
		what string
		bad  func(*store.Decision)
	}{
		{"an unknown action", func(d *store.Decision) { d.Action = "approved" }},
		{"no action", func(d *store.Decision) { d.Action = "" }},
		{"no object id", func(d *store.Decision) { d.ObjectID = "" }},
		{"no route", func(d *store.Decision) { d.Route = "" }},
		{"an overlong object id", func(d *store.Decision) { d.ObjectID = "indicator--" + strings.Repeat("a", store.MaxNameLen) }},
	} {
		bad := decision("police", ind1, 0)
		c.bad(&bad)
		_, err := e.s.AddObjectsCheckpoint(e.ctx, coll, nil, []store.Decision{decision("police", ind2, 1), bad}, "fanout/decisions", e.recorded, e.recorded.Add(time.Hour))
		wantKind(t, "AddObjectsCheckpoint with a decision with "+c.what, err, ctigate.Invalid)
	}
	if n := len(e.decisions(store.LedgerQuery{})); n != len(want) {
		t.Fatalf("after invalid decisions: %d recorded, want %d", n, len(want))
	}
	if cp, err := e.s.Checkpoint(e.ctx, "fanout/decisions"); err != nil || !cp.Equal(e.recorded) {
		t.Fatalf("Checkpoint after invalid decisions = %s, %v; want %s", fmtTime(cp), err, fmtTime(e.recorded))
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
	// Nor does a write from a checkpoint that moved on (a Conflict).
	_, err = e.s.AddObjectsCheckpoint(e.ctx, coll, []store.Object{obj(ind2, v(1))}, []store.Decision{decision("police", ind2, 3)}, name, time.Time{}, before.Add(time.Hour))
	wantKind(t, "AddObjectsCheckpoint from a stale checkpoint", err, ctigate.Conflict)
	if got := e.walk(coll, store.Query{Versions: []store.VersionMatch{vAll}}); len(got) != 1 {
		t.Fatalf("after failed adds: %d objects stored, want 1", len(got))
	}
	if got, err := e.s.Checkpoint(e.ctx, name); err != nil || !got.Equal(before) {
		t.Fatalf("Checkpoint after failed adds = %s, %v; want %s", fmtTime(got), err, fmtTime(before))
	}
	got := e.decisions(store.LedgerQuery{})
	if len(got) != 1 || got[0].ObjectID != ind1 {
		t.Fatalf("after failed adds: %d decisions recorded (%v), want only the first", len(got), actions(got))
	}
	// The retried batch records its decisions once, numbered after the
	// first: the failures used no numbers.
	retry := decision("police", ind2, 3)
	if _, err := e.s.AddObjectsCheckpoint(e.ctx, coll, []store.Object{obj(ind2, v(1))},
		[]store.Decision{retry}, name, before, before.Add(time.Hour)); err != nil {
		t.Fatalf("retrying the batch: %v", err)
	}
	got = e.decisions(store.LedgerQuery{})
	if len(got) != 2 {
		t.Fatalf("after the retry: %d decisions, want 2", len(got))
	}
	checkSeqs(t, "after the retry", got, 1)
	if diff := recordsDecision(&got[1], &retry); diff != "" {
		t.Fatalf("the retried decision:%s", diff)
	}
	if all := e.verifyLedger(); len(all) != 2 {
		t.Fatalf("the ledger holds %v, want the 2 decisions", actions(all))
	}
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
	got := e.decisions(store.LedgerQuery{})
	if len(got) != 4 {
		t.Fatalf("after restarts: %d decisions, want 4", len(got))
	}
	checkSeqs(t, "across restarts", got, 1)
	if got[3].ObjectID != ind2 || got[3].Route != "judiciary" {
		t.Fatalf("last decision = %+v; want judiciary's about %s", got[3], ind2)
	}
	e.verifyLedger()
}

// testDecisionsQuery reads decisions by object, route and action from a
// ledger where other entries about the same objects and routes (received,
// rejected, withdrawn) come between them.
func testDecisionsQuery(t *testing.T, e *env) {
	l := e.decisionLedger()
	var all []store.Decision
	for i := range 30 {
		route := []string{"police", "judiciary", "courts"}[i%3]
		id := []string{ind1, ind2, ind3, mal1}[i%4]
		all = append(all, decision(route, id, i))
	}
	actor := store.WithActor(e.ctx, store.Actor{User: "cert-a", Org: "CERT-A"})
	if _, err := e.s.AddObjects(actor, coll, []store.Object{obj(ind1, v(1)), obj(ind2, v(1))}); err != nil {
		t.Fatal(err)
	}
	e.record(all[:10]...)
	if _, err := l.AppendEntries(e.ctx, []custody.Entry{
		{Action: custody.Rejected, User: "cert-a", ObjectID: ind3, Reason: "invalid"},
		{Action: custody.Withdrawn, User: "ctigate", ObjectID: ind2, Route: "courts", Collection: "published-courts", Source: coll, Reason: "retracted"},
	}); err != nil {
		t.Fatal(err)
	}
	e.record(all[10:]...)

	// The decisions' seqs: after the 2 received entries, then after the 2
	// appended.
	seqOf := func(i int) uint64 {
		if i < 10 {
			return uint64(2 + i + 1)
		}
		return uint64(4 + i + 1)
	}
	matches := func(q store.LedgerQuery, i int, d *store.Decision) bool {
		return seqOf(i) > q.After && (q.ObjectID == "" || d.ObjectID == q.ObjectID) && (q.Route == "" || d.Route == q.Route) &&
			(len(q.Actions) == 0 || slices.Contains(q.Actions, d.Action))
	}
	for _, q := range []store.LedgerQuery{
		{}, {ObjectID: ind1}, {Route: "judiciary"}, {ObjectID: ind2, Route: "courts"},
		{ObjectID: "indicator--00000000-0000-4000-8000-000000000000"}, {Route: "nobody"},
		{ObjectID: ind3, Limit: 2}, {Route: "police", Limit: 1}, {Limit: 7}, {After: 25}, {ObjectID: mal1, After: 12, Limit: 3},
		{Actions: []string{store.ActionWithheld}}, {Actions: []string{store.ActionPublished, store.ActionRedacted}, ObjectID: ind2},
	} {
		var want []int
		for i := range all {
			if matches(q, i, &all[i]) {
				want = append(want, i)
			}
		}
		// Every page of decisions (e.decisions sets Actions to all three
		// unless the case names some).
		read := func(q store.LedgerQuery) []custody.Entry {
			if len(q.Actions) == 0 {
				return e.decisions(q)
			}
			var out []custody.Entry
			for {
				page, err := l.LedgerEntries(e.ctx, q)
				if err != nil {
					t.Fatalf("LedgerEntries(%+v): %v", q, err)
				}
				out = append(out, page...)
				if len(page) == 0 {
					return out
				}
				q.After = page[len(page)-1].Seq
			}
		}
		got := read(q)
		if len(got) != len(want) {
			t.Fatalf("decisions(%+v), all pages: %d entries (%v), want %d", q, len(got), actions(got), len(want))
		}
		for k, i := range want {
			if diff := recordsDecision(&got[k], &all[i]); diff != "" {
				t.Fatalf("decisions(%+v): entry %d:%s", q, k, diff)
			}
			if got[k].Seq != seqOf(i) {
				t.Fatalf("decisions(%+v): decision %d has seq %d, want %d", q, i, got[k].Seq, seqOf(i))
			}
		}
		// One page is the first Limit matches.
		pq := q
		if len(pq.Actions) == 0 {
			pq.Actions = store.DecisionActions()
		}
		page, err := l.LedgerEntries(e.ctx, pq)
		limit := q.Limit
		if limit <= 0 {
			limit = store.DefaultLedgerLimit
		}
		if err != nil || len(page) != min(limit, len(want)) {
			t.Fatalf("LedgerEntries(%+v), one page = %d entries, %v; want %d", pq, len(page), err, min(limit, len(want)))
		}
	}
	// Without Actions, the same query also finds the other entries.
	if es, err := l.LedgerEntries(e.ctx, store.LedgerQuery{ObjectID: ind2, Route: "courts"}); err != nil || len(es) != 4 || es[1].Action != custody.Withdrawn {
		t.Fatalf("entries of %s by courts = %v, %v; want its 3 decisions and the withdrawal after the first", ind2, actions(es), err)
	}
}

func testDecisionsPaging(t *testing.T, e *env) {
	const n = 250
	ds := make([]store.Decision, n)
	for i := range ds {
		ds[i] = decision("police", ind1, i)
	}
	// Two writes, with other entries about the same object between them.
	e.record(ds[:n/2]...)
	if _, err := e.decisionLedger().AppendEntries(e.ctx, []custody.Entry{
		{Action: custody.Rejected, User: "cert-a", ObjectID: ind1, Reason: "invalid"},
		{Action: custody.Rejected, User: "cert-a", ObjectID: ind1, Reason: "invalid"},
	}); err != nil {
		t.Fatal(err)
	}
	e.record(ds[n/2:]...)
	l := e.decisionLedger()
	page, err := l.LedgerEntries(e.ctx, store.LedgerQuery{Actions: store.DecisionActions()})
	if err != nil || len(page) != store.DefaultLedgerLimit {
		t.Fatalf("decisions without a limit = %d entries, %v; want %d", len(page), err, store.DefaultLedgerLimit)
	}
	for _, q := range []store.LedgerQuery{{ObjectID: ind1, Limit: 33}, {Route: "police", Limit: 7}, {Limit: n / 2}} {
		got := e.decisions(q)
		if len(got) != n {
			t.Fatalf("decisions(%+v), all pages: %d, want %d", q, len(got), n)
		}
		checkSeqs(t, "first write", got[:n/2], 1)
		checkSeqs(t, "second write", got[n/2:], n/2+3)
		for i := range got {
			if diff := recordsDecision(&got[i], &ds[i]); diff != "" {
				t.Fatalf("decisions(%+v): entry %d:%s", q, i, diff)
			}
		}
	}
	last := uint64(n + 2)
	for _, after := range []uint64{last, ^uint64(0)} {
		if page, err = l.LedgerEntries(e.ctx, store.LedgerQuery{Actions: store.DecisionActions(), After: after}); err != nil || len(page) != 0 {
			t.Fatalf("decisions after %d = %d, %v; want none", after, len(page), err)
		}
	}
}
