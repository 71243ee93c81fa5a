package bolt

import (
	"fmt"
	"runtime"
	"testing"
)

// TestKeydirOutsideHeap checks that the keydir's tables do not count in
// the Go heap (the soft memory limit and the collector's pacing), and
// that they are usable all the same.
func TestKeydirOutsideHeap(t *testing.T) {
	if offHeapHeap {
		t.Skip("no mapping outside the heap on this platform")
	}
	const n = 200_000
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("indicator--00000000-0000-4000-8000-%012d", i)
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	k := newKeys()
	kd := &keydir{}
	k.colls["c"] = kd
	k.mu.Lock()
	for i, id := range ids {
		k.add(kd, id, int64(i))
		if i%10 == 0 {
			k.add(kd, id, int64(n+i)) // a second version
		}
	}
	k.mu.Unlock()
	runtime.GC()
	runtime.ReadMemStats(&after)
	grew := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	t.Logf("Go heap grew by %d bytes for %d ids (%.1f per id)", grew, n, float64(grew)/n)
	if grew > 4*n {
		t.Errorf("the Go heap grew by %d bytes for %d ids, want the tables outside it (under 4 bytes per id)", grew, n)
	}
	k.mu.RLock()
	for _, i := range []int{0, 10, 12345, n - 1} {
		got, err := k.lookup("c", ids[i], -1, nil)
		if err != nil {
			t.Fatal(err)
		}
		want := 1
		if i%10 == 0 {
			want = 2
		}
		if len(got) != want {
			t.Errorf("%s: %d versions, want %d", ids[i], len(got), want)
		}
	}
	k.mu.RUnlock()
	k.drop()
	runtime.KeepAlive(ids)
}
