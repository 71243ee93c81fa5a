package bolt

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"

	"go.etcd.io/bbolt"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/ctigate/ctigate"
	"github.com/ctigate/ctigate/custody"
	"github.com/ctigate/ctigate/store"
)

// treeEntries appends n received entries about distinct objects.
func treeEntries(t *testing.T, s *Store, from, n int) {
	t.Helper()
	var es []custody.Entry
	for i := from; i < from+n; i++ {
		es = append(es, custody.Entry{Action: custody.Received, User: "cert-a", Org: "CERT-A", Collection: "inbound",
			ObjectID: fmt.Sprintf("indicator--00000000-0000-4000-8000-%012d", i), ObjectVersion: "2026-01-01T00:00:00.000Z",
			SHA256: fmt.Sprintf("%064x", i)})
	}
	if _, err := s.AppendEntries(context.Background(), es); err != nil {
		t.Fatal(err)
	}
}

// wantTree computes in memory, from the ledger's entries, every stored
// hash of its Merkle tree and checks TreeHashes against them, one index
// at a time and all at once, and the tree's root against TreeRoot.
func wantTree(t *testing.T, s *Store) {
	t.Helper()
	ctx := context.Background()
	es, err := s.LedgerEntries(ctx, store.LedgerQuery{Limit: store.MaxLedgerLimit})
	if err != nil {
		t.Fatal(err)
	}
	var all []tlog.Hash
	r := tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(idx))
		for i, x := range idx {
			out[i] = all[x]
		}
		return out, nil
	})
	for i, e := range es {
		leaf, err := custody.LeafHash(e.Hash)
		if err != nil {
			t.Fatal(err)
		}
		hs, err := tlog.StoredHashesForRecordHash(int64(i), leaf, r)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, hs...)
	}
	idx := make([]int64, len(all))
	for i := range idx {
		idx[i] = int64(len(all) - 1 - i) // backwards: every lookup seeks
	}
	got, err := s.TreeHashes(ctx, idx)
	if err != nil {
		t.Fatal(err)
	}
	for i, x := range idx {
		if got[i] != all[x] {
			t.Fatalf("tree hash %d of %d: %x, want %x", x, len(all), got[i], all[x])
		}
	}
	for _, x := range []int64{0, 1, treeChunk - 1, treeChunk, treeChunk + 1, int64(len(all) - 1)} {
		if x >= int64(len(all)) {
			continue
		}
		one, err := s.TreeHashes(ctx, []int64{x})
		if err != nil || one[0] != all[x] {
			t.Fatalf("tree hash %d alone: %x, %v; want %x", x, one, err, all[x])
		}
	}
	if _, err := s.TreeHashes(ctx, []int64{int64(len(all))}); ctigate.KindOf(err) != ctigate.NotFound {
		t.Fatalf("tree hash %d, one past the stored ones: %v, want NotFound", len(all), err)
	}
	want, err := tlog.TreeHash(int64(len(es)), r)
	if err != nil {
		t.Fatal(err)
	}
	root, err := store.TreeRoot(ctx, s, uint64(len(es)))
	if err != nil || root != custody.HexRoot(want) {
		t.Fatalf("TreeRoot %s, %v; want %s", root, err, custody.HexRoot(want))
	}
}

// treeValues returns the number of hashes in each ledger-tree value.
func treeValues(t *testing.T, s *Store) []int {
	t.Helper()
	var n []int
	err := s.db.View(func(tx *bbolt.Tx) error {
		return tx.Bucket(bucketLedgerTree).ForEach(func(k, v []byte) error {
			n = append(n, len(v)/32)
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestTreeChunks: the ledger's tree hashes are stored treeChunk to a
// value, the last value filled by the next batches; every hash reads back
// as computed from the entries, across batches of every size and a file
// whose earlier hashes were stored one to a value (as earlier builds
// stored them).
func TestTreeChunks(t *testing.T) {
	ctx := context.Background()
	s, err := Open(filepath.Join(t.TempDir(), "tree.db"), Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	n := 0
	for _, batch := range []int{1, 2, 3, 60, 61, 200, 7, 1, 500} {
		treeEntries(t, s, n, batch)
		n += batch
		if _, err := store.IndexLedger(ctx, s, 0); err != nil {
			t.Fatal(err)
		}
		wantTree(t, s)
	}
	vals := treeValues(t, s)
	for i, c := range vals {
		if c < 1 || c > treeChunk || (i < len(vals)-1 && c != treeChunk) {
			t.Fatalf("ledger-tree values hold %v hashes: all but the last must hold %d", vals, treeChunk)
		}
	}
	if len(vals) < 2 {
		t.Fatalf("%d values for %d entries", len(vals), n)
	}

	// One hash to a value, as an earlier build wrote them; then more
	// batches on top.
	count := tlog.StoredHashCount(int64(n))
	idx := make([]int64, count)
	for i := range idx {
		idx[i] = int64(i)
	}
	hs, err := s.TreeHashes(ctx, idx)
	if err != nil {
		t.Fatal(err)
	}
	err = s.db.Update(func(tx *bbolt.Tx) error {
		if err := tx.DeleteBucket(bucketLedgerTree); err != nil {
			return err
		}
		b, err := tx.CreateBucket(bucketLedgerTree)
		if err != nil {
			return err
		}
		for i, h := range hs {
			if err := b.Put(seqKey(uint64(i)), h[:]); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	wantTree(t, s)
	for _, batch := range []int{1, 300, 2} {
		treeEntries(t, s, n, batch)
		n += batch
		if _, err := store.IndexLedger(ctx, s, 0); err != nil {
			t.Fatal(err)
		}
		wantTree(t, s)
	}
	// The last single value is filled up to treeChunk, then new ones.
	added := int(tlog.StoredHashCount(int64(n)) - count)
	want := int(count) + (max(0, added-(treeChunk-1))+treeChunk-1)/treeChunk
	if vals = treeValues(t, s); len(vals) != want || vals[count-1] != treeChunk {
		t.Fatalf("%d values (the last single one now %d hashes) after %d single ones and %d more hashes; want %d", len(vals), vals[count-1], count, added, want)
	}
}

// TestTreeChunksCorrupt: a ledger-tree value that is not whole hashes,
// or stored hashes that do not end where the next batch begins, fail the
// read or the write with an error, not a wrong hash or a panic.
func TestTreeChunksCorrupt(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		key  uint64
		val  []byte
	}{
		{"short value", 0, make([]byte, 31)},
		{"ragged value", 0, make([]byte, 32*3+5)},
		{"empty value", 0, nil},
		{"gap", 5, make([]byte, 32)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Open(filepath.Join(t.TempDir(), "tree.db"), Options{NoSync: true})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			err = s.db.Update(func(tx *bbolt.Tx) error {
				return tx.Bucket(bucketLedgerTree).Put(seqKey(tc.key), tc.val)
			})
			if err != nil {
				t.Fatal(err)
			}
			if tc.key == 0 {
				if _, err := s.TreeHashes(ctx, []int64{0}); err == nil || ctigate.KindOf(err) == ctigate.NotFound {
					t.Fatalf("reading a corrupt value: %v", err)
				}
			}
			treeEntries(t, s, 0, 3)
			if _, err := store.IndexLedger(ctx, s, 0); !errors.Is(err, errCorrupt) {
				t.Fatalf("indexing over a corrupt tree: %v", err)
			}
		})
	}
}
