package bolt

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"testing"

	"go.etcd.io/bbolt"

	"github.com/ctigate/ctigate/store"
)

// TestObjectRuns writes the per-object index as the indexer does, batch
// after batch, and checks every object's lookup against a model while
// runs merge, with a small cap so that capped runs accumulate too.
func TestObjectRuns(t *testing.T) {
	s := openTest(t, filepath.Join(t.TempDir(), "s.db"), Options{NoSync: true})
	rng := rand.New(rand.NewPCG(3, 4))
	const objects, maxPairs = 300, 4000
	want := map[string][]uint64{}
	seq := uint64(0)
	for batch := range 60 {
		var refs []store.ObjectRef
		for range 50 + rng.IntN(400) {
			seq++
			id := fmt.Sprintf("indicator--%d", rng.IntN(objects))
			refs = append(refs, store.ObjectRef{ID: id, Seq: seq})
			want[id] = append(want[id], seq)
		}
		err := s.db.Update(func(tx *bbolt.Tx) error {
			return putObjectRun(tx.Bucket(bucketLedgerRuns), objectRun(refs), maxPairs)
		})
		if err != nil {
			t.Fatalf("batch %d: %v", batch, err)
		}
	}
	err := s.db.View(func(tx *bbolt.Tx) error {
		runs := tx.Bucket(bucketLedgerRuns)
		n, pairs := 0, 0
		runs.ForEach(func(k, v []byte) error {
			n++
			pairs += len(v) / 16
			if len(v)/16 > maxPairs {
				t.Errorf("run %x holds %d pairs, more than the cap %d", k, len(v)/16, maxPairs)
			}
			return nil
		})
		if pairs != int(seq) {
			t.Errorf("runs hold %d pairs, want %d", pairs, seq)
		}
		// Capped runs plus a binary counter below the cap.
		if limit := int(seq)/maxPairs*2 + 8; n > limit {
			t.Errorf("%d runs for %d pairs (cap %d), want at most %d", n, seq, maxPairs, limit)
		}
		for id, w := range want {
			got, err := objectSeqs(tx, id, 0, seq)
			if err != nil {
				return err
			}
			if !isSuperset(got, w) {
				t.Errorf("%s: seqs %v, want %v among them", id, got, w)
			}
			mid := w[len(w)/2]
			got, _ = objectSeqs(tx, id, mid, seq-1)
			var wr []uint64
			for _, x := range w {
				if x > mid && x <= seq-1 {
					wr = append(wr, x)
				}
			}
			if !isSuperset(got, wr) || slices.ContainsFunc(got, func(x uint64) bool { return x <= mid || x > seq-1 }) {
				t.Errorf("%s in (%d, %d]: seqs %v, want %v", id, mid, seq-1, got, wr)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestObjectRunsReadOldIndex checks that a store indexed before the runs
// (ledger-objects, one key per entry) still answers from both.
func TestObjectRunsReadOldIndex(t *testing.T) {
	s := openTest(t, filepath.Join(t.TempDir(), "s.db"), Options{NoSync: true})
	id, other := "indicator--a", "indicator--b"
	err := s.db.Update(func(tx *bbolt.Tx) error {
		old := tx.Bucket(bucketLedgerObjects)
		for _, r := range []store.ObjectRef{{ID: id, Seq: 2}, {ID: other, Seq: 3}, {ID: id, Seq: 5}} {
			if err := old.Put(binary.BigEndian.AppendUint64(prefixed(nil, r.ID), r.Seq), nil); err != nil {
				return err
			}
		}
		return putObjectRun(tx.Bucket(bucketLedgerRuns), objectRun([]store.ObjectRef{{ID: other, Seq: 7}, {ID: id, Seq: 8}}), maxRunPairs)
	})
	if err != nil {
		t.Fatal(err)
	}
	s.db.View(func(tx *bbolt.Tx) error {
		got, err := objectSeqs(tx, id, 0, 10)
		if err != nil || !slices.Equal(got, []uint64{2, 5, 8}) {
			t.Errorf("objectSeqs(%s) = %v, %v; want [2 5 8]", id, got, err)
		}
		got, err = objectSeqs(tx, id, 2, 7)
		if err != nil || !slices.Equal(got, []uint64{5}) {
			t.Errorf("objectSeqs(%s, (2, 7]) = %v, %v; want [5]", id, got, err)
		}
		return nil
	})
}

func isSuperset(got, want []uint64) bool {
	for _, w := range want {
		if _, ok := slices.BinarySearch(got, w); !ok {
			return false
		}
	}
	return true
}
