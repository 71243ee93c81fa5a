package bolt

import (
	"path/filepath"
	"slices"
	"testing"
)

// TestOffHeapBytes: OffHeapBytes counts every open keydir's slot table as
// it grows, is told to the hook in order, and returns to where it was when
// the store closes; a reopened store counts the table its rebuild sized.
func TestOffHeapBytes(t *testing.T) {
	if offHeapHeap {
		t.Skip("the keydir's tables are on the heap on this platform")
	}
	var told []int64
	OnOffHeapChange(func(n int64) { told = append(told, n) })
	defer OnOffHeapChange(nil)
	before := OffHeapBytes()
	slots := func(s *Store) int64 {
		s.keys.mu.RLock()
		defer s.keys.mu.RUnlock()
		var n int64
		for _, kd := range s.keys.colls {
			n += int64(len(kd.slots)) * slotSize
		}
		return n
	}

	path := filepath.Join(t.TempDir(), "s.db")
	s, err := Open(path, Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	fillStore(t, s, "c", 5000, 10) // 1024 slots, then 2048, 4096, 8192
	fillStore(t, s, "d", 10, 10)
	want := slots(s)
	if want < (8192+1024)*slotSize {
		t.Fatalf("the tables hold %d bytes, want those of 8192 and 1024 slots", want)
	}
	if got := OffHeapBytes() - before; got != want {
		t.Errorf("OffHeapBytes grew by %d, the open tables hold %d", got, want)
	}
	if len(told) < 5 || told[len(told)-1] != before+want {
		t.Errorf("the hook was told %v, want at least 5 changes ending at %d", told, before+want)
	}
	// While the ids move from 4096 slots to 8192, both tables are counted.
	if peak := slices.Max(told) - before; peak < (4096+8192)*slotSize {
		t.Errorf("the hook was told at most %d bytes above the start, want both tables of the last growth (%d)", peak, (4096+8192)*slotSize)
	}
	for i := 1; i < len(told); i++ {
		if told[i] == told[i-1] {
			t.Errorf("the hook was told %d twice in a row (%v)", told[i], told)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if got := OffHeapBytes(); got != before || told[len(told)-1] != before {
		t.Errorf("after Close OffHeapBytes = %d and the hook was last told %d, want %d", got, told[len(told)-1], before)
	}

	s = openTest(t, path, Options{NoSync: true})
	if got, want := OffHeapBytes()-before, slots(s); got != want || want == 0 {
		t.Errorf("after reopening OffHeapBytes grew by %d, the rebuilt tables hold %d", got, want)
	}
}
