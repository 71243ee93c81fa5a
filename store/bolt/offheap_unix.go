//go:build unix

package bolt

import (
	"os"
	"sync"
	"sync/atomic"
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

// pagedFile backs the keydir's arenas (ids and versions, about 35 of the
// 39 bytes per version) with a file of their own beside the store, shared
// mappings of an unlinked file, so that the kernel may page them out
// under memory pressure like the store's own file, and they are not
// anonymous memory. The file is removed at once: nothing is left on disk
// once the process ends, whatever the way. Its pages count in the
// process's resident file pages, which the trimmers' budget leaves out
// (pagedBytes).
type pagedFile struct {
	mu   sync.Mutex
	f    *os.File
	size int64
	maps [][]byte
}

// pagedBytes is the bytes mapped by every pagedFile of the process.
var pagedBytes atomic.Int64

// openPagedFile creates the file in dir; nil when it cannot (the arenas
// then stay anonymous).
func openPagedFile(dir string) *pagedFile {
	f, err := os.CreateTemp(dir, ".keydir-*")
	if err != nil {
		return nil
	}
	if err := os.Remove(f.Name()); err != nil {
		f.Close()
		return nil
	}
	return &pagedFile{f: f}
}

// pagedChunk returns n zero values of T mapped from p's file, or from
// offHeap when p is nil or the file cannot grow.
func pagedChunk[T any](p *pagedFile, n int) []T {
	var zero T
	size := n * int(unsafe.Sizeof(zero))
	if p == nil || size == 0 || size%os.Getpagesize() != 0 {
		return offHeap[T](n)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.f == nil {
		return offHeap[T](n)
	}
	off := p.size
	// The chunk's blocks are allocated now: a write to a page of a sparse
	// file that finds the disk full would kill the process (SIGBUS). A
	// full disk, or a file system that cannot allocate ahead, leaves the
	// chunk anonymous.
	if err := fallocate(p.f, off, int64(size)); err != nil {
		return offHeap[T](n)
	}
	b, err := unix.Mmap(int(p.f.Fd()), off, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		_ = p.f.Truncate(off)
		return offHeap[T](n)
	}
	p.size += int64(size)
	p.maps = append(p.maps, b)
	pagedBytes.Add(int64(size))
	return unsafe.Slice((*T)(unsafe.Pointer(&b[0])), n)
}

// close gives the file back: each mapping is replaced, at the same
// addresses, by zero pages of anonymous memory (a read that should not
// happen any more gets zeros and cannot fault), and the file is closed,
// which frees its blocks.
func (p *pagedFile) close() {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, b := range p.maps {
		_, _, errno := unix.Syscall6(unix.SYS_MMAP, uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)),
			unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANON|unix.MAP_FIXED, ^uintptr(0), 0)
		if errno != 0 {
			// The mapping stays (reads give the file's bytes, kept
			// alive by the mapping).
			continue
		}
		pagedBytes.Add(-int64(len(b)))
	}
	p.maps = nil
	if p.f != nil {
		_ = p.f.Close()
		p.f = nil
	}
}
