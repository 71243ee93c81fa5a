//go:build !unix

package bolt

import "sync/atomic"

// offHeap returns n zero values of T; where mapping memory is not
// implemented, on the heap.
// offHeapHeap: the keydir tables are on the heap here.
const offHeapHeap = true

func offHeap[T any](n int) []T { return make([]T, n) }

func freeOffHeap[T any](s []T) {}

func releaseOffHeap[T any](s []T) {}

// pagedFile is not implemented here: the arenas stay on the heap.
type pagedFile struct{}

func openPagedFile(dir string) *pagedFile { return nil }

func pagedChunk[T any](p *pagedFile, n int) []T { return make([]T, n) }

func (p *pagedFile) close() {}

// pagedBytes is the bytes mapped by every pagedFile of the process.
var pagedBytes atomic.Int64
