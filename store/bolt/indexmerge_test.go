package bolt

import (
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/ctigate/ctigate/store"
)

// indexModel is what lookups should return: by value, id → TLP of the
// entry written last.
type indexModel map[string]map[string]string

func (m indexModel) want(value string) []string {
	var out []string
	for id, tlp := range m[value] {
		out = append(out, id+"/"+tlp)
	}
	slices.Sort(out)
	return out
}

func segmentCount(t *testing.T, ix *Index) (segs int, levels map[byte]int) {
	t.Helper()
	levels = map[byte]int{}
	err := ix.db.View(func(tx *bbolt.Tx) error {
		root := tx.Bucket(bucketSearch)
		if root == nil || root.Bucket(bucketSearchSegments) == nil {
			return nil
		}
		meta := root.Bucket(bucketSearchSegMeta)
		return root.Bucket(bucketSearchSegments).ForEachBucket(func(k []byte) error {
			l, _ := segmentLevel(meta, k)
			levels[l]++
			segs++
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return segs, levels
}

func checkLookups(t *testing.T, ix *Index, values []string, m indexModel) {
	t.Helper()
	for _, v := range values {
		got := lookupIDs(t, ix, v)
		slices.Sort(got)
		if got, want := fmt.Sprint(got), fmt.Sprint(m.want(v)); got != want {
			t.Fatalf("lookup %s = %s, want %s", v, got, want)
		}
	}
}

// TestIndexMerge: with segments merged as they accumulate (in the
// background and on demand, several transactions per merge, drops in
// between), lookups find exactly the entries written since the last drop,
// the newest copy of each; at most fanIn−1 segments of each level remain.
func TestIndexMerge(t *testing.T) {
	defer func(n int) { mergeChunk = n }(mergeChunk)
	mergeChunk = 3
	for seed := range uint64(4) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			rnd := rand.New(rand.NewPCG(seed, 7))
			fanIn := 2 + int(seed%3)
			ix, err := OpenIndex(filepath.Join(t.TempDir(), "search.db"), IndexOptions{SegmentEntries: 3, MergeFanIn: fanIn})
			if err != nil {
				t.Fatal(err)
			}
			defer ix.Close()
			ctx := t.Context()
			var values []string
			for i := range 30 {
				values = append(values, fmt.Sprintf("v%d.example", i))
			}
			tlps := []string{"TLP:CLEAR", "TLP:GREEN", "TLP:AMBER", "TLP:RED"}
			m := indexModel{}
			for batch := range 400 {
				if rnd.IntN(100) == 0 {
					if err := ix.DropIndex(ctx); err != nil {
						t.Fatal(err)
					}
					m = indexModel{}
				}
				var es []store.IndexEntry
				for range 1 + rnd.IntN(3) {
					e := indexEntry(values[rnd.IntN(len(values))], fmt.Sprintf("indicator--%d", rnd.IntN(12)), 1)
					e.TLP = tlps[rnd.IntN(len(tlps))]
					if slices.ContainsFunc(es, func(o store.IndexEntry) bool { return o.Value == e.Value && o.ID == e.ID }) {
						continue // one copy of an entry per batch
					}
					es = append(es, e)
					if m[e.Value] == nil {
						m[e.Value] = map[string]string{}
					}
					m[e.Value][e.ID] = e.TLP
				}
				if err := ix.AddIndexEntries(ctx, "c1", es, "cp", time.Unix(int64(batch), 0)); err != nil {
					t.Fatal(err)
				}
				if rnd.IntN(10) == 0 {
					if _, err := ix.MergeSegments(ctx); err != nil {
						t.Fatal(err)
					}
				}
				if batch%50 == 0 {
					checkLookups(t, ix, values, m)
				}
			}
			if _, err := ix.MergeSegments(ctx); err != nil {
				t.Fatal(err)
			}
			checkLookups(t, ix, values, m)
			segs, levels := segmentCount(t, ix)
			for l, n := range levels {
				if n > fanIn { // fanIn−1, and the current segment
					t.Errorf("%d segments of level %d (fan-in %d): %v", n, l, fanIn, levels)
				}
			}
			if len(levels) < 2 {
				t.Errorf("segments by level %v: no merge made", levels)
			}
			t.Logf("fan-in %d: %d segments, by level %v", fanIn, segs, levels)
		})
	}
}

// TestIndexMergeWhileReading: an index of many unmerged segments, opened
// with merging on, is merged in the background while lookups run; every
// lookup finds what was written. A merge left unfinished by a stopped
// process is discarded when the index is opened again.
func TestIndexMergeWhileReading(t *testing.T) {
	defer func(n int) { mergeChunk = n }(mergeChunk)
	mergeChunk = 2
	path := filepath.Join(t.TempDir(), "search.db")
	ix, err := OpenIndex(path, IndexOptions{SegmentEntries: 2, MergeFanIn: -1})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	rnd := rand.New(rand.NewPCG(1, 2))
	var values []string
	for i := range 20 {
		values = append(values, fmt.Sprintf("w%d.example", i))
	}
	m := indexModel{}
	for batch := range 300 {
		e := indexEntry(values[rnd.IntN(len(values))], fmt.Sprintf("indicator--%d", rnd.IntN(5)), 1)
		e.TLP = fmt.Sprintf("TLP:%d", batch)
		if m[e.Value] == nil {
			m[e.Value] = map[string]string{}
		}
		m[e.Value][e.ID] = e.TLP
		if err := ix.AddIndexEntries(ctx, "c1", []store.IndexEntry{e}, "cp", time.Unix(int64(batch), 0)); err != nil {
			t.Fatal(err)
		}
	}
	before, _ := segmentCount(t, ix)
	// A merge a stopped process left behind.
	if err := ix.db.Update(func(tx *bbolt.Tx) error {
		mb, err := tx.Bucket(bucketSearch).CreateBucketIfNotExists(bucketSearchMerging)
		if err != nil {
			return err
		}
		b, err := mb.CreateBucket([]byte("\x00\x00\x00\x00\x00\x00\x00\x05"))
		if err != nil {
			return err
		}
		return b.Put(encodeIndexKey(&store.IndexEntry{Class: "domain", Value: values[0], Collection: "c1", ID: "indicator--left"}), nil)
	}); err != nil {
		t.Fatal(err)
	}
	if err := ix.Close(); err != nil {
		t.Fatal(err)
	}
	if ix, err = OpenIndex(path, IndexOptions{SegmentEntries: 2, MergeFanIn: 3}); err != nil {
		t.Fatal(err)
	}
	defer ix.Close()
	for range 50 {
		checkLookups(t, ix, values, m)
	}
	if _, err := ix.MergeSegments(ctx); err != nil {
		t.Fatal(err)
	}
	checkLookups(t, ix, values, m)
	after, levels := segmentCount(t, ix)
	if after >= before/3 {
		t.Errorf("%d segments before merging, %d after (%v)", before, after, levels)
	}
	ix.db.View(func(tx *bbolt.Tx) error {
		if tx.Bucket(bucketSearch).Bucket(bucketSearchMerging) != nil && tx.Bucket(bucketSearch).Bucket(bucketSearchMerging).Bucket([]byte("\x00\x00\x00\x00\x00\x00\x00\x05")) != nil {
			t.Error("the unfinished merge was kept")
		}
		return nil
	})
	t.Logf("%d segments merged into %d, by level %v", before, after, levels)
}
