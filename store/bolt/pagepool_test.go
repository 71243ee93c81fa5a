package bolt

import (
	"bytes"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
	"unsafe"

	"github.com/ctigate/ctigate/store"
)

// pooledFixture stores n objects in each of two collections, of sizes
// from a few hundred bytes to more than an arena chunk, and returns each
// collection's bytes by id.
func pooledFixture(t *testing.T, s *Store, n int) map[string]map[string][]byte {
	t.Helper()
	want := map[string]map[string][]byte{}
	for _, coll := range []string{"c1", "c2"} {
		want[coll] = map[string][]byte{}
		var objs []store.Object
		for i := range n {
			id := fmt.Sprintf("indicator--00000000-0000-4000-8000-%012d", i)
			pad := 200 + i%7*90
			switch {
			case i%97 == 0:
				pad = 40 << 10
			case i == n/2:
				pad = arenaChunk + 1000 // larger than a chunk: a chunk of its own
			}
			raw := fmt.Appendf(nil, `{"type":"indicator","id":%q,"name":"%s %s"}`, id, coll, strings.Repeat("x", pad))
			want[coll][id] = raw
			objs = append(objs, store.Object{ID: id, Type: "indicator", SpecVersion: "2.1",
				Version: time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC), Raw: raw})
		}
		if _, err := s.AddObjects(t.Context(), coll, objs); err != nil {
			t.Fatal(err)
		}
	}
	return want
}

// TestReleasedPages: pages read while others are released, and memory
// given back reused, always hold their own versions' bytes, also joined
// (store.Page.Joined), whatever the readers' interleaving; a page
// released from two copies is given back once.
func TestReleasedPages(t *testing.T) {
	s := openTest(t, filepath.Join(t.TempDir(), "ctigate.db"), Options{NoSync: true})
	const n = 1500
	want := pooledFixture(t, s, n)

	var wg sync.WaitGroup
	for g := range 6 {
		wg.Go(func() {
			coll := []string{"c1", "c2"}[g%2]
			limit := []int{1000, 300, 7}[g%3]
			for range 3 {
				q := store.Query{Limit: limit}
				seen := 0
				for {
					page, err := s.Objects(t.Context(), coll, q)
					if err != nil {
						t.Error(err)
						return
					}
					var raws [][]byte
					for _, o := range page.Objects {
						if !bytes.Equal(o.Raw, want[coll][o.ID]) {
							t.Errorf("%s %s: page holds %.40q…, want %.40q…", coll, o.ID, o.Raw, want[coll][o.ID])
							return
						}
						raws = append(raws, o.Raw)
					}
					if got := bytes.Join(page.Joined(), nil); !bytes.Equal(got, bytes.Join(raws, []byte(","))) {
						t.Errorf("%s: the page's joined bytes (%d) are not its objects' (%d)", coll, len(got), len(bytes.Join(raws, []byte(","))))
						return
					}
					seen += len(page.Objects)
					more, next := page.More, page.Next
					copied := page
					page.Release()
					copied.Release() // a second copy's release does nothing
					if page.Objects != nil {
						t.Error("a released page still lists objects")
					}
					if !more {
						break
					}
					q.Next = next
				}
				if seen != n {
					t.Errorf("%s: read %d versions, want %d", coll, seen, n)
				}
			}
		})
	}
	wg.Wait()
}

// TestReleasePoisons: in race builds (the tests CI runs) a released page's
// bytes are overwritten, so that code using a page after releasing it
// fails its tests instead of serving another reader's objects later.
func TestReleasePoisons(t *testing.T) {
	if !poisonReleased {
		t.Skip("released pages are overwritten only in race builds")
	}
	s := openTest(t, filepath.Join(t.TempDir(), "ctigate.db"), Options{NoSync: true})
	pooledFixture(t, s, 50)
	page, err := s.Objects(t.Context(), "c1", store.Query{Limit: 50})
	if err != nil || len(page.Objects) != 50 {
		t.Fatalf("page: %d objects, %v", len(page.Objects), err)
	}
	kept := page.Objects[3].Raw
	page.Release()
	if strings.Trim(string(kept), "X") != "" {
		t.Errorf("a released version's bytes still read %.40q…", kept)
	}
}

// TestIndexerPagesReused: a page as large as the search indexer's batches
// (search.DefaultBatchSize, 5,000 versions) goes back to the pool when
// released, so the next read of that size takes its slice instead of
// growing a new one. (sync.Pool may drop what it is given, after a
// collection and, in race builds, a quarter of the time at random: a
// fifth of the reads must reuse, where a bound below the page's size
// reuses none.)
func TestIndexerPagesReused(t *testing.T) {
	s := openTest(t, filepath.Join(t.TempDir(), "ctigate.db"), Options{NoSync: true})
	const n = 5000
	fillStore(t, s, "c", n, 10)
	var prev *store.Object
	reused := 0
	const reads = 40
	for range reads {
		page, err := s.Objects(t.Context(), "c", store.Query{Limit: n, Versions: []store.VersionMatch{{Kind: store.All}}})
		if err != nil {
			t.Fatal(err)
		}
		if len(page.Objects) != n {
			t.Fatalf("read %d versions, want %d", len(page.Objects), n)
		}
		if p := unsafe.SliceData(page.Objects); p == prev {
			reused++
		} else {
			prev = p
		}
		page.Release()
	}
	t.Logf("%d of %d reads reused the slice", reused, reads-1)
	if reused < reads/5 {
		t.Errorf("%d of %d reads of %d versions reused the released page's slice, want at least %d", reused, reads-1, n, reads/5)
	}
}
