package bolt

import (
	"bytes"
	"encoding/binary"
	"errors"
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
// runs merge, with a small cap so that capped runs accumulate too. The
// store starts with runs stored whole, as earlier builds wrote them,
// and one object has entries in every batch, so that its pairs span
// chunks.
func TestObjectRuns(t *testing.T) {
	s := openTest(t, filepath.Join(t.TempDir(), "s.db"), Options{NoSync: true})
	rng := rand.New(rand.NewPCG(3, 4))
	const objects, maxPairs = 300, 4000
	want := map[string][]uint64{}
	seq := uint64(0)
	refs := func(n int) []store.ObjectRef {
		var out []store.ObjectRef
		for range n {
			seq++
			id := fmt.Sprintf("indicator--%d", rng.IntN(objects))
			if rng.IntN(8) == 0 {
				id = "indicator--hot"
			}
			out = append(out, store.ObjectRef{ID: id, Seq: seq})
			want[id] = append(want[id], seq)
		}
		return out
	}
	err := s.db.Update(func(tx *bbolt.Tx) error {
		runs := tx.Bucket(bucketLedgerRuns)
		for i, n := range []int{900, 300, 40} {
			if err := runs.Put(seqKey(uint64(i+1)), objectRun(refs(n))); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	check := func(stage string) {
		t.Helper()
		err := s.db.View(func(tx *bbolt.Tx) error {
			all, err := readRuns(tx.Bucket(bucketLedgerRuns))
			if err != nil {
				return err
			}
			pairs := 0
			for _, r := range all {
				pairs += r.size / 16
				if r.size/16 > maxPairs {
					t.Errorf("%s: run %d holds %d pairs, more than the cap %d", stage, r.run, r.size/16, maxPairs)
				}
				p := r.pairs()
				if !slices.IsSortedFunc(slices.Collect(chunks16(p)), bytes.Compare) {
					t.Errorf("%s: run %d is not sorted", stage, r.run)
				}
				for i, c := range r.chunks {
					if len(r.keys[i]) == 24 && len(c)/16 > runChunkPairs {
						t.Errorf("%s: run %d has a chunk of %d pairs", stage, r.run, len(c)/16)
					}
				}
			}
			if pairs != int(seq) {
				t.Errorf("%s: runs hold %d pairs, want %d", stage, pairs, seq)
			}
			// Capped runs plus a binary counter below the cap.
			if limit := int(seq)/maxPairs*2 + 8; len(all) > limit {
				t.Errorf("%s: %d runs for %d pairs (cap %d), want at most %d", stage, len(all), seq, maxPairs, limit)
			}
			for id, w := range want {
				got, err := objectSeqs(tx, id, 0, seq)
				if err != nil {
					return err
				}
				if !isSuperset(got, w) {
					t.Errorf("%s: %s: seqs %v, want %v among them", stage, id, got, w)
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
					t.Errorf("%s: %s in (%d, %d]: seqs %v, want %v", stage, id, mid, seq-1, got, wr)
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	check("runs stored whole")
	for batch := range 60 {
		rs := refs(50 + rng.IntN(400))
		err := s.db.Update(func(tx *bbolt.Tx) error {
			return putObjectRun(tx.Bucket(bucketLedgerRuns), objectRun(rs), maxPairs)
		})
		if err != nil {
			t.Fatalf("batch %d: %v", batch, err)
		}
		if batch%10 == 0 {
			check(fmt.Sprintf("batch %d", batch))
		}
	}
	check("the end")
	if n := len(want["indicator--hot"]); n < 2*runChunkPairs {
		t.Fatalf("the hot object has %d entries: too few to span chunks", n)
	}
}

// readRuns returns the runs of the bucket, oldest first, read forwards.
func readRuns(runs *bbolt.Bucket) ([]storedRun, error) {
	var all []storedRun
	err := runs.ForEach(func(k, v []byte) error {
		if !validRunValue(k, v) {
			return fmt.Errorf("ledger object run: %w", errCorrupt)
		}
		run := binary.BigEndian.Uint64(k)
		if n := len(all); len(k) == 24 && n > 0 && all[n-1].run == run && len(all[n-1].keys[0]) == 24 {
			r := &all[n-1]
			r.keys, r.chunks, r.size = append(r.keys, k), append(r.chunks, v), r.size+len(v)
			return nil
		}
		all = append(all, storedRun{run: run, keys: [][]byte{k}, chunks: [][]byte{v}, size: len(v)})
		return nil
	})
	return all, err
}

// chunks16 yields p's 16-byte pairs.
func chunks16(p []byte) func(func([]byte) bool) {
	return func(yield func([]byte) bool) {
		for len(p) >= 16 && yield(p[:16]) {
			p = p[16:]
		}
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

// TestObjectRunsCorrupt: a run value of a bad size or key, or a chunk
// whose key does not name its first pair, is reported as corrupt, by the
// writer and by lookups, instead of being read.
func TestObjectRunsCorrupt(t *testing.T) {
	pair := objectRun([]store.ObjectRef{{ID: "indicator--a", Seq: 1}})
	for name, kv := range map[string][2][]byte{
		"short key":   {[]byte{1, 2, 3}, pair},
		"odd value":   {seqKey(1), pair[:15]},
		"chunk key":   {append(seqKey(1), make([]byte, 16)...), pair},
		"empty chunk": {append(seqKey(1), pair...), nil},
		"odd chunk":   {append(seqKey(1), pair...), append(slices.Clone(pair), 1)},
	} {
		t.Run(name, func(t *testing.T) {
			s := openTest(t, filepath.Join(t.TempDir(), "s.db"), Options{NoSync: true})
			err := s.db.Update(func(tx *bbolt.Tx) error {
				if err := tx.Bucket(bucketLedgerRuns).Put(kv[0], kv[1]); err != nil {
					return err
				}
				return putObjectRun(tx.Bucket(bucketLedgerRuns), pair, maxRunPairs)
			})
			if !errors.Is(err, errCorrupt) {
				t.Errorf("putObjectRun: %v, want corrupt", err)
			}
		})
	}
}
