package bolt

import "sync"

// The keydirs' slot tables (4 bytes a slot, kept at most 3/4 full) are
// anonymous memory outside the Go heap (offHeap), so the runtime's soft
// memory limit does not see them: at ten million versions they are 64 MiB
// on top of whatever the limit lets the heap reach. offHeapSlots counts
// them for the whole process, so that a caller that bounds the process's
// memory (serve) can give the Go heap the rest (OnOffHeapChange). The
// keydirs' ids and versions are mapped from a file (pagedFile) and are not
// counted: the kernel pages them like the store's file.
var offHeapSlots struct {
	mu    sync.Mutex
	bytes int64
	hook  func(int64)
}

// OffHeapBytes returns the anonymous memory the process's open stores hold
// outside the Go heap: their keydirs' slot tables, in bytes.
func OffHeapBytes() int64 {
	offHeapSlots.mu.Lock()
	defer offHeapSlots.mu.Unlock()
	return offHeapSlots.bytes
}

// OnOffHeapChange makes f be called with OffHeapBytes each time it changes:
// a store opens or closes, or a keydir's table doubles (about log2 of the
// versions times over a store's life). A table that doubles is told twice:
// the new table before it is made (the old one is still there while the
// ids move to it), the old table's release after. nil stops the calls. f is called
// in order of the changes, on the goroutine that made the change (often
// the store's committer, between two commits): it must be quick and must
// not use the store.
func OnOffHeapChange(f func(int64)) {
	offHeapSlots.mu.Lock()
	defer offHeapSlots.mu.Unlock()
	offHeapSlots.hook = f
}

// noteSlots records that a keydir's table went from old to new slots.
func noteSlots(old, new int) {
	if offHeapHeap || old == new {
		return // on the heap, the limit sees them already
	}
	offHeapSlots.mu.Lock()
	defer offHeapSlots.mu.Unlock()
	offHeapSlots.bytes += int64(new-old) * slotSize
	if offHeapSlots.hook != nil {
		offHeapSlots.hook(offHeapSlots.bytes)
	}
}

// slotSize is the bytes of one slot of a keydir's table.
const slotSize = 4
