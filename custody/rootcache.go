package custody

import (
	"slices"
	"sync"
	"sync/atomic"

	"golang.org/x/mod/sumdb/tlog"
)

// RootCache gives the tree hash of a page's item leaves (TreeRoot),
// remembering the last few pages': consumers that read one collection
// from the same point (several authorities reading a route's collection
// from its start, or in step) are served the same pages, whose delivered
// entries commit to the same leaves, and the tree of a page of 1,000
// costs about 1,000 SHA-256 calls where comparing its leaves costs a
// memory compare. A root is reused only for a leaf list equal, leaf by
// leaf, to the one it was computed from, so Root always equals TreeRoot.
// The zero value is ready to use; it is safe for concurrent use.
type RootCache struct {
	mu      sync.Mutex
	entries [rootCacheEntries]rootEntry
	next    int
	hits    atomic.Uint64 // roots reused, for tests
}

type rootEntry struct {
	leaves []tlog.Hash
	root   tlog.Hash
}

const (
	rootCacheEntries = 16
	// Pages smaller than rootCacheMin leaves are hashed, not looked up:
	// their trees cost little. Larger than rootCacheMax are not kept, to
	// bound the memory (16 × 4,096 × 32 bytes, 2 MiB at most).
	rootCacheMin = 32
	rootCacheMax = 4096
)

// Root returns TreeRoot(leaves).
func (c *RootCache) Root(leaves []tlog.Hash) tlog.Hash {
	if len(leaves) < rootCacheMin || len(leaves) > rootCacheMax {
		return TreeRoot(leaves)
	}
	c.mu.Lock()
	for i := range c.entries {
		e := &c.entries[i]
		if slices.Equal(e.leaves, leaves) {
			r := e.root
			c.mu.Unlock()
			c.hits.Add(1)
			return r
		}
	}
	c.mu.Unlock()
	r := TreeRoot(leaves)
	c.mu.Lock()
	e := &c.entries[c.next]
	c.next = (c.next + 1) % len(c.entries)
	e.leaves = append(e.leaves[:0], leaves...)
	e.root = r
	c.mu.Unlock()
	return r
}
