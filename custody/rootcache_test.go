package custody

import (
	"math/rand/v2"
	"sync"
	"testing"

	"golang.org/x/mod/sumdb/tlog"
)

// TestRootCache: the cache's root is TreeRoot's for every list it is
// given: lists seen before (reused), lists that differ from one seen in
// one leaf, one leaf more or less, or order, and lists too small or too
// large to keep; with readers in parallel.
func TestRootCache(t *testing.T) {
	var c RootCache
	base := leaves(1000)
	variants := [][]tlog.Hash{
		base,
		base[:999],
		base[1:],
		append(append([]tlog.Hash(nil), base...), tlog.RecordHash([]byte("one more"))),
		leaves(10),
		leaves(rootCacheMax + 1),
	}
	changed := append([]tlog.Hash(nil), base...)
	changed[500][7] ^= 1
	variants = append(variants, changed)
	swapped := append([]tlog.Hash(nil), base...)
	swapped[998], swapped[999] = swapped[999], swapped[998]
	variants = append(variants, swapped)
	for i := range 40 { // more distinct pages than the cache keeps
		variants = append(variants, leaves(rootCacheMin+i*7))
	}
	want := make([]tlog.Hash, len(variants))
	for i, v := range variants {
		want[i] = TreeRoot(v)
	}

	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(g), 1))
			for range 400 {
				i := r.IntN(len(variants))
				if i >= 8 && r.IntN(2) == 0 {
					i = r.IntN(8) // the first eight more often: some reuse
				}
				if got := c.Root(variants[i]); got != want[i] {
					t.Errorf("variant %d (%d leaves): root %x, want %x", i, len(variants[i]), got, want[i])
					return
				}
			}
		})
	}
	wg.Wait()

	// The same page read again, as consumers reading in step do: reused.
	hits := c.hits.Load()
	for range 3 {
		if got := c.Root(base); got != want[0] {
			t.Fatalf("root %x, want %x", got, want[0])
		}
	}
	if c.hits.Load() < hits+2 {
		t.Errorf("the same page's root was computed again (%d reuses, want at least %d)", c.hits.Load(), hits+2)
	}
	// What the cache keeps is its own copy: changing the caller's list
	// afterwards does not change the cache's answer for the original.
	mine := append([]tlog.Hash(nil), base...)
	c.Root(mine)
	mine[0][0] ^= 1
	if got := c.Root(base); got != want[0] {
		t.Fatalf("after the caller changed its list: root %x, want %x", got, want[0])
	}
}
