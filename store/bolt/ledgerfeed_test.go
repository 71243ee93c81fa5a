package bolt

import (
	"context"
	"encoding/json"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/ctigate/ctigate/custody"
	"github.com/ctigate/ctigate/store"
)

// linesIndexed decodes what the index needs of the entries (from, to]
// from their lines in the file, as the index does without the feed.
func linesIndexed(t *testing.T, s *Store, from, to uint64) []store.IndexedEntry {
	t.Helper()
	var out []store.IndexedEntry
	err := s.LedgerLines(context.Background(), from, to, func(_ uint64, line []byte) error {
		var e store.IndexedEntry
		if err := json.Unmarshal(line, &e); err != nil {
			return err
		}
		out = append(out, e)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestLedgerFeedMatchesLines appends entries of every kind the index
// reads (received entries of an add, a delivery with its range, entries
// without an object) and checks that the feed gives the index what it
// would decode from the lines, and the same Merkle root; then that a
// reopened store, whose feed is empty, reads the lines and still builds
// the same tree.
func TestLedgerFeedMatchesLines(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ctigate.db")
	s := openTest(t, path, Options{NoSync: true})
	ctx := store.WithActor(context.Background(), store.Actor{User: "cert-a", Org: "CERT-A"})
	var objs []store.Object
	for i := range 40 {
		objs = append(objs, stixObject(t, i))
	}
	if _, err := s.AddObjects(ctx, "inbound", objs[:25]); err != nil {
		t.Fatal(err)
	}
	first := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	if _, err := s.AppendEntries(ctx, []custody.Entry{
		{Action: custody.Delivered, User: "police", Collection: "inbound", Count: 25,
			FirstAdded: custody.FormatTime(first), LastAdded: custody.FormatTime(first.Add(time.Second)),
			Filter: custody.FilterDigest(nil), ItemsRoot: custody.ZeroHash},
		{Action: "user-added", User: "admin", Org: "CERT-A"},
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AddObjects(ctx, "inbound", objs[25:]); err != nil {
		t.Fatal(err)
	}
	head, err := s.LedgerHead(ctx)
	if err != nil || head.Seq != 42 {
		t.Fatalf("head %d, %v; want 42 entries", head.Seq, err)
	}
	for _, to := range []uint64{1, 30, 42} {
		got, ok := s.RecentIndexed(0, to, nil)
		if !ok {
			t.Fatalf("RecentIndexed(0, %d): not held", to)
		}
		if want := linesIndexed(t, s, 0, to); !reflect.DeepEqual(got, want) {
			t.Fatalf("RecentIndexed(0, %d):\n got %+v\nwant %+v", to, got, want)
		}
	}
	if _, ok := s.RecentIndexed(0, 43, nil); ok {
		t.Fatal("RecentIndexed(0, 43): entry 43 does not exist, yet held")
	}

	// The index through 30 comes from the feed alone.
	w := &countLines{Store: s}
	checkRoot(t, w, 30)
	if w.lines != 0 {
		t.Fatalf("indexing through 30 read %d lines back", w.lines)
	}
	// The index asks next for what follows 30, and what it passed goes.
	if _, ok := s.RecentIndexed(30, 31, nil); !ok {
		t.Fatal("RecentIndexed(30, 31): not held")
	}
	if _, ok := s.RecentIndexed(10, 31, nil); ok {
		t.Fatal("RecentIndexed(10, 31) after the index passed 30: held")
	}

	// A restart: the feed starts empty, and holds only what this process
	// appends.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2 := openTest(t, path, Options{NoSync: true})
	if _, err := s2.AddObjects(ctx, "inbound", []store.Object{stixObject(t, 100), stixObject(t, 101)}); err != nil {
		t.Fatal(err)
	}
	if _, ok := s2.RecentIndexed(30, 44, nil); ok {
		t.Fatal("RecentIndexed(30, 44) after reopening: held what the earlier process appended")
	}
	// A batch comes from the feed only when the feed holds all of it:
	// (30, 44] is read, and what follows from the feed again.
	w = &countLines{Store: s2}
	checkRoot(t, w, 44)
	if w.lines != 14 {
		t.Fatalf("indexing (30, 44] after reopening read %d lines back, want 14", w.lines)
	}
	if _, err := s2.AddObjects(ctx, "inbound", []store.Object{stixObject(t, 102)}); err != nil {
		t.Fatal(err)
	}
	checkRoot(t, w, 45)
	if w.lines != 14 {
		t.Fatalf("indexing entry 45, appended by this process, read %d lines back", w.lines-14)
	}
}

// countLines counts the ledger lines the index reads back.
type countLines struct {
	*Store
	lines int
}

func (c *countLines) LedgerLines(ctx context.Context, after, through uint64, fn func(uint64, []byte) error) error {
	return c.Store.LedgerLines(ctx, after, through, func(seq uint64, line []byte) error {
		c.lines++
		return fn(seq, line)
	})
}

// checkRoot builds the index through size and checks its Merkle root
// against the one of the lines in the file.
func checkRoot(t *testing.T, s *countLines, size uint64) {
	t.Helper()
	root, err := store.TreeRoot(context.Background(), s, size)
	if err != nil {
		t.Fatal(err)
	}
	leaves := leavesOfLines(t, s.Store)[:size]
	if want := custody.HexRoot(custody.TreeRoot(leaves)); root != want {
		t.Fatalf("root through %d: %s, from the lines %s", size, root, want)
	}
}

func leavesOfLines(t *testing.T, s *Store) []tlog.Hash {
	t.Helper()
	var out []tlog.Hash
	for _, e := range linesIndexed(t, s, 0, 0) {
		l, err := custody.LeafHash(e.Hash)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, l)
	}
	return out
}

// TestLedgerFeedBounds checks the feed alone: it holds only consecutive
// entries, starts again after a gap, keeps at most feedMax and forgets
// what the index has passed.
func TestLedgerFeedBounds(t *testing.T) {
	run := func(from, to uint64) []store.IndexedEntry {
		var es []store.IndexedEntry
		for seq := from; seq <= to; seq++ {
			es = append(es, store.IndexedEntry{Seq: seq, Action: "received", Hash: "h"})
		}
		return es
	}
	var f ledgerFeed
	if _, ok := f.take(0, 1, nil); ok {
		t.Fatal("an empty feed held entry 1")
	}
	f.add(run(1, 10))
	f.add(run(12, 20)) // 11 is missing: 1..10 are dropped
	if _, ok := f.take(0, 5, nil); ok {
		t.Fatal("held entries from before a gap")
	}
	got, ok := f.take(11, 20, nil)
	if !ok || len(got) != 9 || got[0].Seq != 12 || got[8].Seq != 20 {
		t.Fatalf("take(11, 20) = %d entries, %v", len(got), ok)
	}
	// Past feedMax the oldest go.
	f.add(run(21, 20+feedMax))
	if _, ok := f.take(11, 21, nil); ok {
		t.Fatal("held more than feedMax entries")
	}
	got, ok = f.take(20, 20+feedMax, got[:0])
	if !ok || len(got) != feedMax || got[0].Seq != 21 {
		t.Fatalf("take(20, %d) = %d entries, %v", 20+feedMax, len(got), ok)
	}
	// The index passed 20+feedMax-1: only the last is held.
	if _, ok := f.take(20+feedMax-1, 20+feedMax, nil); !ok {
		t.Fatal("lost the last entry")
	}
	if held := len(f.es) - f.start; held != 1 {
		t.Fatalf("%d entries held after the index passed all but one", held)
	}
}
