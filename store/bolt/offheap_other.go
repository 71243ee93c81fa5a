//go:build !unix

package bolt

// offHeap returns n zero values of T; where mapping memory is not
// implemented, on the heap.
// offHeapHeap: the keydir tables are on the heap here.
const offHeapHeap = true

func offHeap[T any](n int) []T { return make([]T, n) }

func freeOffHeap[T any](s []T) {}

func releaseOffHeap[T any](s []T) {}
