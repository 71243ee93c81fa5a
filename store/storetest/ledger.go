package storetest

import (
	"bytes"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/ctigate/ctigate"
	"github.com/ctigate/ctigate/custody"
	"github.com/ctigate/ctigate/store"
)

// testLedger runs the custody ledger conformance tests when the backend
// implements store.Ledger.
func testLedger(t *testing.T, e *env) {
	if _, ok := e.s.(store.Ledger); !ok {
		t.Skip("backend does not implement store.Ledger: custody ledger tests skipped")
	}
	tests := []struct {
		name string
		fn   func(*testing.T, *env)
	}{
		{"Received", testLedgerReceived},
		{"Decisions", testLedgerDecisions},
		{"Deleted", testLedgerDeleted},
		{"Append", testLedgerAppend},
		{"Atomic", testLedgerAtomic},
		{"Query", testLedgerQuery},
		{"ObjectPaging", testLedgerObjectPaging},
		{"Restart", testLedgerRestart},
		{"Concurrent", testLedgerConcurrent},
		{"Index", testLedgerIndex},
		{"IndexConcurrent", testLedgerIndexConcurrent},
		{"Deliveries", testLedgerDeliveries},
		{"DeliveryRanges", testLedgerDeliveryRanges},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, e.newStore)
			tc.fn(t, e)
		})
	}
}

func (e *env) ledger() store.Ledger { return e.s.(store.Ledger) }

// allEntries reads the whole ledger, page by page.
func (e *env) allEntries() []custody.Entry {
	e.t.Helper()
	var out []custody.Entry
	q := store.LedgerQuery{Limit: 3}
	for {
		es, err := e.ledger().LedgerEntries(e.ctx, q)
		if err != nil {
			e.t.Fatalf("LedgerEntries: %v", err)
		}
		out = append(out, es...)
		if len(es) < q.Limit {
			return out
		}
		q.After = es[len(es)-1].Seq
	}
}

// verifyLedger checks that the whole ledger verifies as an export and
// returns it.
func (e *env) verifyLedger() []custody.Entry {
	e.t.Helper()
	all := e.allEntries()
	var b bytes.Buffer
	if err := custody.WriteJSONL(&b, all, nil); err != nil {
		e.t.Fatal(err)
	}
	rep, err := custody.VerifyJSONL(&b, custody.VerifyOptions{})
	if err != nil {
		e.t.Fatalf("the ledger does not verify: %v", err)
	}
	head, err := e.ledger().LedgerHead(e.ctx)
	if err != nil {
		e.t.Fatalf("LedgerHead: %v", err)
	}
	if head.Seq != rep.Last || head.Hash != rep.Head {
		e.t.Fatalf("LedgerHead = %d %s, want the last entry %d %s", head.Seq, head.Hash, rep.Last, rep.Head)
	}
	return all
}

func actions(es []custody.Entry) []string {
	out := make([]string, len(es))
	for i, x := range es {
		out[i] = x.Action + " " + x.ObjectID
	}
	return out
}

func sameStrings(a, b []string) bool { return fmt.Sprint(a) == fmt.Sprint(b) }

func testLedgerReceived(t *testing.T, e *env) {
	ctx := store.WithActor(e.ctx, store.Actor{User: "cert-a", Org: "CERT-A"})
	a, b := obj("indicator--a", v(1)), obj("indicator--b", v(1))
	if _, err := e.s.AddObjects(ctx, coll, []store.Object{a, b}); err != nil {
		t.Fatal(err)
	}
	// A repeat, and one new version: one more entry.
	a2 := obj("indicator--a", v(2))
	if _, err := e.s.AddObjects(ctx, coll, []store.Object{a, a2}); err != nil {
		t.Fatal(err)
	}
	// Without an actor (a published copy written by fan-out): no entry.
	e.add("collection-b", obj("indicator--c", v(1)))
	all := e.verifyLedger()
	want := []string{"received indicator--a", "received indicator--b", "received indicator--a"}
	if got := actions(all); !sameStrings(got, want) {
		t.Fatalf("entries %v, want %v", got, want)
	}
	for i, o := range []store.Object{a, b, a2} {
		x := all[i]
		if x.User != "cert-a" || x.Org != "CERT-A" || x.Collection != coll || x.SHA256 != custody.HexHash(o.Hash) ||
			x.ObjectVersion != custody.FormatVersion(o.Version) || x.Seq != uint64(i+1) {
			t.Errorf("entry %d = %+v, want received of %s by cert-a/CERT-A in %s", i, x, show(o), coll)
		}
	}
}

func testLedgerDecisions(t *testing.T, e *env) {
	pub := obj("indicator--p", v(1))
	ds := []store.Decision{decision("law-enforcement", "indicator--p", 1), decision("judiciary", "indicator--p", 2)}
	ds[0].Action = store.ActionPublished
	ds[1].Action, ds[1].Reason = store.ActionWithheld, "tlp-above-ceiling"
	if _, err := e.s.AddObjectsCheckpoint(e.ctx, "published", []store.Object{pub}, ds, "cp", time.Time{}, v(1)); err != nil {
		t.Fatal(err)
	}
	all := e.verifyLedger()
	want := []string{"published indicator--p", "withheld indicator--p"}
	if got := actions(all); !sameStrings(got, want) {
		t.Fatalf("entries %v, want %v", got, want)
	}
	if all[0].Route != "law-enforcement" || all[0].PolicyVersion != ds[0].PolicyVersion || all[1].Reason != "tlp-above-ceiling" ||
		all[0].PublishedSHA256 != custody.HexHash(ds[0].PublishedSHA256) || all[0].SHA256 != custody.HexHash(ds[0].OriginalSHA256) {
		t.Fatalf("decision entries %+v do not carry the decisions %+v", all, ds)
	}
}

func testLedgerDeleted(t *testing.T, e *env) {
	ctx := store.WithActor(e.ctx, store.Actor{User: "cert-a", Org: "CERT-A"})
	a1, a2 := obj("indicator--a", v(1)), obj("indicator--a", v(2))
	if _, err := e.s.AddObjects(ctx, coll, []store.Object{a1, a2}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.s.DeleteObject(ctx, coll, "indicator--a", []store.VersionMatch{{Kind: store.First}}, nil); err != nil {
		t.Fatal(err)
	}
	all := e.verifyLedger()
	want := []string{"received indicator--a", "received indicator--a", "deleted indicator--a"}
	if got := actions(all); !sameStrings(got, want) {
		t.Fatalf("entries %v, want %v", got, want)
	}
	d := all[2]
	if d.SHA256 != custody.HexHash(a1.Hash) || d.ObjectVersion != custody.FormatVersion(a1.Version) || d.User != "cert-a" {
		t.Fatalf("deleted entry %+v, want version %s with hash %x by cert-a", d, show(a1), a1.Hash)
	}
	// The record of the deleted version is still there.
	es, err := e.ledger().LedgerEntries(e.ctx, store.LedgerQuery{ObjectID: "indicator--a"})
	if err != nil || len(es) != 3 {
		t.Fatalf("entries of indicator--a: %d, %v; want 3", len(es), err)
	}
}

func testLedgerAppend(t *testing.T, e *env) {
	d := delivery(coll, v(1), v(2), 2)
	d.User, d.Org = "police", "National Police"
	in := []custody.Entry{d, {Action: custody.Rejected, User: "cert-a", ObjectID: "indicator--x", Reason: "invalid"}}
	out, err := e.ledger().AppendEntries(e.ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != 2 || out[0].Seq != 1 || out[1].Seq != 2 || out[1].Prev != out[0].Hash || out[0].Prev != custody.ZeroHash {
		t.Fatalf("AppendEntries returned %+v, want seqs 1 and 2 chained", out)
	}
	if in[0].Seq != 0 {
		t.Errorf("AppendEntries changed its input")
	}
	all := e.verifyLedger()
	if fmt.Sprint(all) != fmt.Sprint(out) {
		t.Fatalf("stored %+v, returned %+v", all, out)
	}
	// A delivery names no object: its pages are found by their ranges.
	if es, err := e.ledger().LedgerEntries(e.ctx, store.LedgerQuery{ObjectID: "indicator--x"}); err != nil || len(es) != 1 || es[0].Seq != 2 {
		t.Errorf("entries of indicator--x: %v, %v; want the rejection", es, err)
	}
	got, err := e.ledger().LedgerEntry(e.ctx, 2)
	if err != nil || got.Hash != out[1].Hash {
		t.Errorf("LedgerEntry(2) = %+v, %v", got, err)
	}
	_, err = e.ledger().LedgerEntry(e.ctx, 3)
	wantKind(t, "LedgerEntry(3)", err, ctigate.NotFound)
	_, err = e.ledger().AppendEntries(e.ctx, []custody.Entry{{Action: custody.Rejected}, {Action: "bogus"}})
	wantKind(t, "AppendEntries with an unknown action", err, ctigate.Invalid)
	_, err = e.ledger().AppendEntries(e.ctx, []custody.Entry{{Action: custody.Received}})
	wantKind(t, "AppendEntries of received without object", err, ctigate.Invalid)
	if n := len(e.verifyLedger()); n != 2 {
		t.Fatalf("after invalid appends: %d entries, want 2", n)
	}
}

func testLedgerAtomic(t *testing.T, e *env) {
	bad := decision("r", "indicator--a", 1)
	bad.Action = "bogus"
	_, err := e.s.AddObjectsCheckpoint(e.ctx, coll, []store.Object{obj("indicator--a", v(1))}, []store.Decision{decision("r", "indicator--a", 1), bad}, "cp", time.Time{}, v(1))
	wantKind(t, "AddObjectsCheckpoint with an invalid decision", err, ctigate.Invalid)
	if all := e.allEntries(); len(all) != 0 {
		t.Fatalf("a failed write left ledger entries: %v", actions(all))
	}
	head, err := e.ledger().LedgerHead(e.ctx)
	if err != nil || head != (custody.Head{}) {
		t.Fatalf("LedgerHead of an empty ledger = %+v, %v", head, err)
	}
}

func testLedgerQuery(t *testing.T, e *env) {
	l := e.ledger()
	mk := func(action, user, org, id, route string) custody.Entry {
		x := custody.Entry{Action: action, User: user, Org: org, ObjectID: id, Route: route}
		if action == custody.Delivered {
			x = delivery(coll, v(1), v(1), 1)
			x.User, x.Org = user, org
		}
		return x
	}
	batches := [][]custody.Entry{
		{mk(custody.Rejected, "cert-a", "CERT-A", "indicator--a", "")},
		{mk(custody.Delivered, "police", "Police", "indicator--a", ""), mk(custody.Rejected, "cert-b", "CERT-B", "indicator--b", "")},
		{mk(custody.Withheld, "ctigate", "", "indicator--b", "judiciary")},
	}
	var times []time.Time
	for _, b := range batches {
		times = append(times, e.clock.Now())
		if _, err := l.AppendEntries(e.ctx, b); err != nil {
			t.Fatal(err)
		}
		e.clock.Advance(time.Second)
	}
	seqs := func(q store.LedgerQuery) string {
		es, err := l.LedgerEntries(e.ctx, q)
		if err != nil {
			t.Fatalf("LedgerEntries(%+v): %v", q, err)
		}
		var s []uint64
		for _, x := range es {
			s = append(s, x.Seq)
		}
		return fmt.Sprint(s)
	}
	for _, c := range []struct {
		q    store.LedgerQuery
		want string
	}{
		{store.LedgerQuery{}, "[1 2 3 4]"},
		{store.LedgerQuery{ObjectID: "indicator--a"}, "[1]"},
		{store.LedgerQuery{ObjectID: "indicator--a", After: 1}, "[]"},
		{store.LedgerQuery{User: "cert-b"}, "[3]"},
		{store.LedgerQuery{Org: "Police"}, "[2]"},
		{store.LedgerQuery{Action: custody.Rejected}, "[1 3]"},
		{store.LedgerQuery{Route: "judiciary"}, "[4]"},
		{store.LedgerQuery{From: times[1], To: times[2]}, "[2 3]"},
		{store.LedgerQuery{From: times[2]}, "[4]"},
		{store.LedgerQuery{Limit: 2}, "[1 2]"},
		{store.LedgerQuery{After: 1, Through: 3}, "[2 3]"},
		{store.LedgerQuery{Action: custody.Rejected, After: 1, Limit: 1}, "[3]"},
		{store.LedgerQuery{ObjectID: "indicator--none"}, "[]"},
	} {
		if got := seqs(c.q); got != c.want {
			t.Errorf("LedgerEntries(%+v) = %s, want %s", c.q, got, c.want)
		}
	}
}

func testLedgerRestart(t *testing.T, e *env) {
	ctx := store.WithActor(e.ctx, store.Actor{User: "cert-a"})
	if _, err := e.s.AddObjects(ctx, coll, []store.Object{obj("indicator--a", v(1))}); err != nil {
		t.Fatal(err)
	}
	e.restart()
	if _, err := e.s.AddObjects(ctx, coll, []store.Object{obj("indicator--b", v(1))}); err != nil {
		t.Fatal(err)
	}
	if all := e.verifyLedger(); len(all) != 2 || all[1].Seq != 2 {
		t.Fatalf("after a restart: %v, want seqs 1 and 2", actions(all))
	}
}

func testLedgerConcurrent(t *testing.T, e *env) {
	const writers, each = 8, 25
	var wg sync.WaitGroup
	errs := make(chan error, writers*each)
	for w := range writers {
		wg.Go(func() {
			ctx := store.WithActor(e.ctx, store.Actor{User: fmt.Sprintf("user-%d", w)})
			for i := range each {
				var err error
				if i%2 == 0 {
					_, err = e.s.AddObjects(ctx, coll, []store.Object{obj(fmt.Sprintf("indicator--%d-%d", w, i), v(1))})
				} else {
					_, err = e.ledger().AppendEntries(ctx, []custody.Entry{delivery(coll, v(1), v(1), 1)})
				}
				if err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if n := len(e.verifyLedger()); n != writers*each {
		t.Fatalf("%d entries, want %d", n, writers*each)
	}
}

// testLedgerObjectPaging pages through the entries of one object written
// among others, in appends of several entries, from every starting point.
func testLedgerObjectPaging(t *testing.T, e *env) {
	l := e.ledger()
	var want []uint64
	seq := uint64(0)
	for batch := range 7 {
		var es []custody.Entry
		for i := range batch + 1 {
			id := fmt.Sprintf("indicator--%d", (batch+i)%3)
			es = append(es, custody.Entry{Action: custody.Rejected, ObjectID: id})
			seq++
			if id == "indicator--1" {
				want = append(want, seq)
			}
		}
		if batch == 3 {
			es = append(es, delivery(coll, v(1), v(1), 1)) // names no object
			seq++
		}
		if _, err := l.AppendEntries(e.ctx, es); err != nil {
			t.Fatal(err)
		}
		if il, ok := l.(store.IndexedLedger); ok && batch == 4 {
			// The index holds the first batches, the tags the rest: a
			// query reads both.
			if _, err := store.IndexLedger(e.ctx, il, 0); err != nil {
				t.Fatal(err)
			}
		}
	}
	for after := uint64(0); after <= seq; after++ {
		var got []uint64
		q := store.LedgerQuery{ObjectID: "indicator--1", After: after, Limit: 2}
		for {
			es, err := l.LedgerEntries(e.ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			for _, x := range es {
				got = append(got, x.Seq)
			}
			if len(es) < q.Limit {
				break
			}
			q.After = es[len(es)-1].Seq
		}
		var exp []uint64
		for _, s := range want {
			if s > after {
				exp = append(exp, s)
			}
		}
		if fmt.Sprint(got) != fmt.Sprint(exp) {
			t.Fatalf("after %d: got %v, want %v", after, got, exp)
		}
	}
}

// testMemos: a memo reads back as stored, is replaced by the next, is
// nil before any, survives a restart, and refuses bad names and values
// over the bound.
func testMemos(t *testing.T, e *env) {
	m, ok := e.s.(store.Memos)
	if !ok {
		t.Skip("backend keeps no memos")
	}
	ctx := t.Context()
	if v, err := m.Memo(ctx, "grants"); err != nil || v != nil {
		t.Fatalf("Memo before any: %q, %v", v, err)
	}
	for _, v := range []string{`{"through":7}`, `{"through":9}`} {
		if err := m.PutMemo(ctx, "grants", []byte(v)); err != nil {
			t.Fatal(err)
		}
		if got, err := m.Memo(ctx, "grants"); err != nil || string(got) != v {
			t.Fatalf("Memo = %q, %v; want %q", got, err, v)
		}
	}
	if v, err := m.Memo(ctx, "other"); err != nil || v != nil {
		t.Errorf("another name reads %q, %v", v, err)
	}
	wantKind(t, "PutMemo with an empty name", m.PutMemo(ctx, "", []byte("x")), ctigate.Invalid)
	wantKind(t, "PutMemo over the bound", m.PutMemo(ctx, "big", make([]byte, store.MaxMemoBytes+1)), ctigate.Invalid)
	e.restart()
	m = e.s.(store.Memos)
	if got, err := m.Memo(ctx, "grants"); err != nil || string(got) != `{"through":9}` {
		t.Errorf("after a restart Memo = %q, %v", got, err)
	}
}
