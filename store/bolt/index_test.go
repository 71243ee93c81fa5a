package bolt

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/ctigate/ctigate/store"
	"github.com/ctigate/ctigate/store/storetest"
)

func TestIndexConformance(t *testing.T) {
	storetest.RunIndex(t, func(t *testing.T) (store.Index, store.Store, func(*testing.T) store.Index) {
		dir := t.TempDir()
		st := openTest(t, filepath.Join(dir, "ctigate.db"), Options{NoSync: true})
		var last *Index
		open := func(t *testing.T) store.Index {
			if last != nil {
				if err := last.Close(); err != nil {
					t.Fatal(err)
				}
			}
			ix, err := OpenIndex(filepath.Join(dir, "search.db"), IndexOptions{NoSync: true})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { ix.Close() })
			last = ix
			return ix
		}
		return open(t), st, open
	})
}

func indexEntry(value, id string, minute int) store.IndexEntry {
	v := time.Date(2026, 1, 1, 0, minute, 0, 0, time.UTC)
	return store.IndexEntry{Class: "domain", Value: value, Collection: "c1", ID: id, Type: "indicator",
		Version: v, DateAdded: v, TLP: "TLP:GREEN", Producer: "CERT-A"}
}

func lookupIDs(t *testing.T, ix *Index, value string) []string {
	t.Helper()
	es, err := ix.IndexLookup(t.Context(), []store.IndexKey{{Class: "domain", Value: value}})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range es {
		out = append(out, e.ID+"/"+e.TLP)
	}
	return out
}

// TestIndexSegments: entries spread over many small segments are found
// once each, in key order, the newest copy of an entry written again
// winning.
func TestIndexSegments(t *testing.T) {
	ix, err := OpenIndex(filepath.Join(t.TempDir(), "search.db"), IndexOptions{SegmentEntries: 2, MergeFanIn: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer ix.Close()
	ctx := t.Context()
	ids := []string{"indicator--3", "indicator--1", "indicator--2", "indicator--5", "indicator--4"}
	for i, id := range ids {
		if err := ix.AddIndexEntries(ctx, "c1", []store.IndexEntry{indexEntry("x.example", id, 1), indexEntry("y.example", id, 1)}, "cp", time.Unix(int64(i), 0)); err != nil {
			t.Fatal(err)
		}
	}
	again := indexEntry("x.example", "indicator--1", 1)
	again.TLP = "TLP:AMBER"
	if err := ix.AddIndexEntries(ctx, "c1", []store.IndexEntry{again}, "cp", time.Unix(9, 0)); err != nil {
		t.Fatal(err)
	}
	want := "[indicator--1/TLP:AMBER indicator--2/TLP:GREEN indicator--3/TLP:GREEN indicator--4/TLP:GREEN indicator--5/TLP:GREEN]"
	if got := fmt.Sprint(lookupIDs(t, ix, "x.example")); got != want {
		t.Errorf("lookup over segments = %s, want %s", got, want)
	}
	var segs int
	ix.db.View(func(tx *bbolt.Tx) error {
		segs = tx.Bucket(bucketSearch).Bucket(bucketSearchSegments).Stats().BucketN - 1
		return nil
	})
	if segs != 6 {
		t.Errorf("%d segments, want 6 (11 entries, 2 per segment, batches not split)", segs)
	}
}

// TestIndexUncleanShutdown: an index left open by another boot of the
// machine is discarded on open; one left open by a crashed process of this
// boot, or closed cleanly, is kept.
func TestIndexUncleanShutdown(t *testing.T) {
	if bootID() == "" {
		t.Skip("no boot id on this system")
	}
	path := filepath.Join(t.TempDir(), "search.db")
	write := func() {
		ix, err := OpenIndex(path, IndexOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if err := ix.AddIndexEntries(t.Context(), "c1", []store.IndexEntry{indexEntry("x.example", "indicator--1", 1)}, "cp", time.Unix(1, 0)); err != nil {
			t.Fatal(err)
		}
		if err := ix.Close(); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(path + ".open"); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("open marker after Close: %v", err)
		}
	}
	check := func(name string, wantRebuilt bool) {
		t.Helper()
		ix, err := OpenIndex(path, IndexOptions{})
		if err != nil {
			t.Fatal(err)
		}
		defer ix.Close()
		cp, err := ix.IndexCheckpoint(t.Context(), "c1", "cp")
		if err != nil {
			t.Fatal(err)
		}
		got := lookupIDs(t, ix, "x.example")
		if ix.Rebuilt() != wantRebuilt || cp.IsZero() != wantRebuilt || (len(got) == 0) != wantRebuilt {
			t.Errorf("%s: Rebuilt %v, checkpoint %v, entries %v; want rebuilt %v", name, ix.Rebuilt(), cp, got, wantRebuilt)
		}
	}
	write()
	check("clean close", false)
	if err := os.WriteFile(path+".open", []byte(bootID()), 0o600); err != nil {
		t.Fatal(err)
	}
	check("process crash", false)
	if err := os.WriteFile(path+".open", []byte("00000000-0000-0000-0000-000000000000"), 0o600); err != nil {
		t.Fatal(err)
	}
	check("machine crash", true)
	write()
	if err := os.WriteFile(path, []byte("not a bbolt file, torn"), 0o600); err != nil {
		t.Fatal(err)
	}
	check("invalid file", true)
}
