//go:build unix

package bolt

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// offHeapHeap: the keydir tables are outside the heap here.
const offHeapHeap = false

// offHeap returns n zero values of T in memory mapped outside the Go heap
// (anonymous, private), or on the heap when the mapping fails. T must hold
// no pointers. The keydir keeps its tables there: they are long-lived and
// grow with the store (about 39 bytes per version), and on the heap they
// would count towards the soft memory limit and the garbage collector's
// pacing, so that a store of a few million versions made the collector run
// without pause. freeOffHeap gives the memory back.
func offHeap[T any](n int) []T {
	var zero T
	size := n * int(unsafe.Sizeof(zero))
	if size == 0 {
		return nil
	}
	b, err := unix.Mmap(-1, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANON)
	if err != nil {
		return make([]T, n)
	}
	return unsafe.Slice((*T)(unsafe.Pointer(&b[0])), n)
}

// freeOffHeap unmaps s, which offHeap returned; s must not be used after.
// A slice offHeap made on the heap is left to the garbage collector
// (unix.Munmap refuses memory it did not map).
func freeOffHeap[T any](s []T) {
	if len(s) == 0 {
		return
	}
	var zero T
	_ = unix.Munmap(unsafe.Slice((*byte)(unsafe.Pointer(&s[0])), len(s)*int(unsafe.Sizeof(zero))))
}

// releaseOffHeap gives s's memory back but keeps its addresses mapped
// (reading them gives zeros): for tables whose store is closed, so that a
// read that should not happen any more cannot fault.
func releaseOffHeap[T any](s []T) {
	if len(s) == 0 {
		return
	}
	var zero T
	_ = unix.Madvise(unsafe.Slice((*byte)(unsafe.Pointer(&s[0])), len(s)*int(unsafe.Sizeof(zero))), unix.MADV_DONTNEED)
}
