package storetest

import (
	"bytes"
	"fmt"
	"sync"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/ctigate/ctigate"
	"github.com/ctigate/ctigate/custody"
	"github.com/ctigate/ctigate/store"
)

// delivery returns a valid delivered entry of a page of n versions of
// collection, added from first to last.
func delivery(collection string, first, last time.Time, n int) custody.Entry {
	return custody.Entry{Action: custody.Delivered, Collection: collection, Count: n,
		FirstAdded: custody.FormatTime(first), LastAdded: custody.FormatTime(last),
		Filter: custody.FilterDigest(nil), ItemsRoot: custody.HexRoot(tlog.RecordHash([]byte(fmt.Sprint(first, last, n))))}
}

func (e *env) indexed(t *testing.T) store.IndexedLedger {
	il, ok := e.s.(store.IndexedLedger)
	if !ok {
		t.Skip("backend keeps no ledger index")
	}
	return il
}

// leavesOf returns the Merkle leaf hashes of the whole ledger.
func (e *env) leavesOf(t *testing.T) []tlog.Hash {
	var out []tlog.Hash
	for _, x := range e.allEntries() {
		l, err := custody.LeafHash(x.Hash)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, l)
	}
	return out
}

// testLedgerIndex: the index built in several passes gives the Merkle
// root of the entries as the RFC defines it for every size, inclusion
// proofs that verify, and the entries of each object.
func testLedgerIndex(t *testing.T, e *env) {
	il := e.indexed(t)
	ctx := store.WithActor(e.ctx, store.Actor{User: "cert-a", Org: "CERT-A"})
	var roots []string
	for round := range 5 {
		var objs []store.Object
		for i := range 3 + round*7 {
			objs = append(objs, obj(fmt.Sprintf("indicator--%d", (round*31+i)%11), v(round*100+i+1)))
		}
		if _, err := e.s.AddObjects(ctx, coll, objs); err != nil {
			t.Fatal(err)
		}
		if _, err := il.AppendEntries(e.ctx, []custody.Entry{delivery(coll, v(1), v(2), 2)}); err != nil {
			t.Fatal(err)
		}
		head, err := il.LedgerHead(e.ctx)
		if err != nil {
			t.Fatal(err)
		}
		root, err := store.TreeRoot(e.ctx, il, head.Seq)
		if err != nil {
			t.Fatal(err)
		}
		roots = append(roots, root)
		if n, err := il.IndexedThrough(e.ctx); err != nil || n != head.Seq {
			t.Fatalf("indexed through %d, %v; want %d", n, err, head.Seq)
		}
	}
	e.restart()
	il = e.indexed(t)
	ls := e.leavesOf(t)
	if got, want := roots[len(roots)-1], custody.HexRoot(custody.TreeRoot(ls)); got != want {
		t.Fatalf("stored tree's root %s, the entries' %s", got, want)
	}
	r := store.TreeReader(e.ctx, il)
	for size := 1; size <= len(ls); size++ {
		th, err := tlog.TreeHash(int64(size), r)
		if err != nil || th != custody.TreeRoot(ls[:size]) {
			t.Fatalf("tree hash of size %d: %v, %v", size, th, err)
		}
		for _, n := range []int{0, size / 2, size - 1} {
			p, err := tlog.ProveRecord(int64(size), int64(n), r)
			if err != nil {
				t.Fatal(err)
			}
			if err := tlog.CheckRecord(p, int64(size), th, int64(n), ls[n]); err != nil {
				t.Fatalf("proof of entry %d in tree %d: %v", n+1, size, err)
			}
		}
	}
	// Each object's entries come from the index, as a scan finds them.
	all := e.allEntries()
	for i := range 11 {
		id := fmt.Sprintf("indicator--%d", i)
		var want []uint64
		for _, x := range all {
			if x.ObjectID == id {
				want = append(want, x.Seq)
			}
		}
		es, err := il.LedgerEntries(e.ctx, store.LedgerQuery{ObjectID: id, Limit: store.MaxLedgerLimit})
		if err != nil {
			t.Fatal(err)
		}
		var got []uint64
		for _, x := range es {
			got = append(got, x.Seq)
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("entries of %s: %v, want %v", id, got, want)
		}
	}
	// Writing from a stale position is a conflict and writes nothing.
	n, _ := il.IndexedThrough(e.ctx)
	err := il.WriteIndex(e.ctx, n-1, &store.IndexBatch{Through: n + 5})
	wantKind(t, "WriteIndex from a stale position", err, ctigate.Conflict)
	if m, _ := il.IndexedThrough(e.ctx); m != n {
		t.Fatalf("a conflicting write moved the index to %d", m)
	}
}

// testLedgerIndexConcurrent: processes indexing at once build one index.
func testLedgerIndexConcurrent(t *testing.T, e *env) {
	il := e.indexed(t)
	for i := range 40 {
		if _, err := il.AppendEntries(e.ctx, []custody.Entry{{Action: custody.Rejected, ObjectID: fmt.Sprint("indicator--", i%5)}}); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			if _, err := store.IndexLedger(e.ctx, il, 0); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	root, err := store.TreeRoot(e.ctx, il, 40)
	if err != nil || root != custody.HexRoot(custody.TreeRoot(e.leavesOf(t))) {
		t.Fatalf("root %s, %v", root, err)
	}
	es, err := il.LedgerEntries(e.ctx, store.LedgerQuery{ObjectID: "indicator--3"})
	if err != nil || len(es) != 8 {
		t.Fatalf("indicator--3: %d entries, %v; want 8 (each indexed once)", len(es), err)
	}
}

// testLedgerDeliveries: a delivery is recorded with its manifest, which
// is kept once per page; the salt key is stable across restarts.
func testLedgerDeliveries(t *testing.T, e *env) {
	d, ok := e.s.(store.Deliveries)
	if !ok {
		t.Skip("backend records no deliveries by reference")
	}
	das := []time.Time{v(1), v(2), v(5)}
	m := custody.EncodeManifest(das)
	entry := delivery(coll, das[0], das[2], 3)
	got, err := d.RecordDelivery(e.ctx, entry, m)
	if err != nil || got.Seq != 1 || got.ItemsRoot != entry.ItemsRoot {
		t.Fatalf("RecordDelivery: %+v, %v", got, err)
	}
	// The same page again: a second entry, the manifest unchanged.
	if _, err := d.RecordDelivery(e.ctx, entry, []byte("other")); err != nil {
		t.Fatal(err)
	}
	b, err := d.Manifest(e.ctx, coll, entry.ItemsRoot)
	if err != nil || !bytes.Equal(b, m) {
		t.Fatalf("Manifest: %x, %v; want %x", b, err, m)
	}
	_, err = d.Manifest(e.ctx, coll, custody.HexRoot(tlog.Hash{1}))
	wantKind(t, "Manifest of an unknown page", err, ctigate.NotFound)
	bad := entry
	bad.Count = 0
	_, err = d.RecordDelivery(e.ctx, bad, m)
	wantKind(t, "RecordDelivery without a count", err, ctigate.Invalid)
	bad = entry
	bad.ItemsRoot = "zz"
	_, err = d.RecordDelivery(e.ctx, bad, m)
	wantKind(t, "RecordDelivery with a bad root", err, ctigate.Invalid)
	if n := len(e.verifyLedger()); n != 2 {
		t.Fatalf("%d entries, want 2", n)
	}
	s1, err := d.DeliverySalter(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	e.restart()
	d = e.s.(store.Deliveries)
	s2, err := d.DeliverySalter(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if a, b := s1.Salt(coll, v(1)), s2.Salt(coll, v(1)); a != b || a == s1.Salt(coll, v(2)) {
		t.Fatalf("salts %s and %s: the key changed across a restart, or salts do not vary", a, b)
	}
}

// testLedgerDeliveryRanges: the deliveries whose ranges hold an instant,
// whatever their spans.
func testLedgerDeliveryRanges(t *testing.T, e *env) {
	il := e.indexed(t)
	base := v(1000)
	us := func(n int64) time.Time { return base.Add(time.Duration(n) * time.Microsecond) }
	ranges := [][2]int64{{0, 0}, {0, 10}, {5, 6}, {7, 1 << 20}, {-(1 << 40), 3}, {11, 12}, {-5, 1 << 45}}
	for _, r := range ranges {
		if _, err := il.AppendEntries(e.ctx, []custody.Entry{delivery(coll, us(r[0]), us(r[1]), 1)}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := il.AppendEntries(e.ctx, []custody.Entry{delivery("other", us(0), us(100), 1)}); err != nil {
		t.Fatal(err)
	}
	if _, err := store.IndexLedger(e.ctx, il, 0); err != nil {
		t.Fatal(err)
	}
	for _, at := range []int64{-(1 << 41), -6, -5, 0, 3, 4, 5, 6, 7, 10, 11, 12, 13, 1 << 20, 1<<20 + 1, 1 << 45} {
		var want []uint64
		for i, r := range ranges {
			if r[0] <= at && at <= r[1] {
				want = append(want, uint64(i+1))
			}
		}
		got, err := il.DeliveriesContaining(e.ctx, coll, us(at), 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("deliveries holding %d: %v, want %v", at, got, want)
		}
		if len(want) > 1 {
			got, _ := il.DeliveriesContaining(e.ctx, coll, us(at), want[0], 1)
			if fmt.Sprint(got) != fmt.Sprint(want[1:2]) {
				t.Errorf("paged deliveries holding %d after %d: %v, want %v", at, want[0], got, want[1:2])
			}
		}
	}
}
