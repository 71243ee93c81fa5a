package bolt

import (
	"sync"

	"github.com/ctigate/ctigate/store"
)

// A page's memory (its Objects slice and the arena its objects' Raw point
// into) is reused for later pages once its reader releases it
// (store.Page.Release): the server releases every page once written, so a
// polling consumer's pages stop costing an allocation and the zeroing of
// about twice their size each; the search indexer releases each batch
// once it has its entries. Pages that are never released (fan-out,
// evidence) are collected as before.
var (
	objsPool  sync.Pool // *[]store.Object, cap in [pooledObjsMin, pooledObjsMax]
	chunkPool sync.Pool // *[]byte, cap arenaChunk
)

const (
	arenaChunk    = 256 << 10 // the largest arena chunk, the only size pooled
	firstChunk    = 8 << 10   // an arena's first chunk when none is pooled
	pooledObjsMin = 256
	// pooledObjsMax holds the search indexer's batches (5,000 versions,
	// search.DefaultBatchSize): a bound below that sent every batch's
	// slice, grown past it, to the collector (about 50 MB a second of
	// allocation during a push of envelopes of 500).
	pooledObjsMax = 8192
)

// newObjs returns an empty slice for a page of up to limit objects.
func newObjs(limit int) []store.Object {
	if limit >= pooledObjsMin {
		if p, _ := objsPool.Get().(*[]store.Object); p != nil {
			return (*p)[:0]
		}
	}
	return make([]store.Object, 0, min(limit, 64))
}

// newChunk returns an empty arena chunk for at least n bytes, after one of
// size prev.
func newChunk(n, prev int) []byte {
	if n <= arenaChunk {
		if p, _ := chunkPool.Get().(*[]byte); p != nil {
			return (*p)[:0]
		}
	}
	return make([]byte, 0, max(n, min(arenaChunk, max(firstChunk, 2*prev))))
}

// release gives the reader's objects and arena to the pools. In race
// builds (the tests) the memory is overwritten first, so that a use
// after release shows as wrong bytes rather than passing unnoticed.
func (r *pageReader) release() {
	objs := r.objs
	clear(objs)
	if c := cap(objs); c >= pooledObjsMin && c <= pooledObjsMax {
		objs = objs[:0]
		objsPool.Put(&objs)
	}
	for _, c := range r.chunks {
		if poisonReleased {
			c = c[:cap(c)]
			for i := range c {
				c[i] = 'X'
			}
		}
		if cap(c) == arenaChunk {
			c = c[:0]
			chunkPool.Put(&c)
		}
	}
	*r = pageReader{}
}
