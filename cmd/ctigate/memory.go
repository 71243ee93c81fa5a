package main

import (
	"context"
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// With the collector left to the memory limit (gcPercent), garbage stays
// until the heap reaches the limit: what startup allocated (161 MiB of
// anonymous memory after the start of the demo configuration, against 84
// MiB at GOGC=200) and what a burst of pushes left would be kept while
// the gateway idles, and the little it allocates idling
// would take it to the limit over hours. The reclaimer collects and
// returns the heap's free pages to the system once the gateway allocates
// little and the heap holds much garbage.
const (
	// idleAllocs is what the process may allocate between two looks
	// and still be idle (a push of envelopes of 10 allocates hundreds
	// of MiB a second).
	idleAllocs = 8 << 20
	// reclaimGarbage is the garbage (heap objects beyond what the last
	// collection found live) worth a collection.
	reclaimGarbage = 32 << 20
)

// How often serve's reclaimer looks, and what it calls after each
// reclaim (variables for tests).
var (
	reclaimEvery = 10 * time.Second
	onReclaim    func()
)

// heapSample is what the reclaimer reads of the runtime.
type heapSample struct {
	allocs  uint64 // bytes allocated since the process began
	objects uint64 // bytes of heap objects, live or not yet collected
	live    uint64 // bytes the last collection found live
}

var heapMetrics = []string{"/gc/heap/allocs:bytes", "/memory/classes/heap/objects:bytes", "/gc/heap/live:bytes"}

func readHeap() heapSample {
	s := make([]metrics.Sample, len(heapMetrics))
	for i, name := range heapMetrics {
		s[i].Name = name
	}
	metrics.Read(s)
	v := func(i int) uint64 {
		if s[i].Value.Kind() != metrics.KindUint64 {
			return 0
		}
		return s[i].Value.Uint64()
	}
	return heapSample{allocs: v(0), objects: v(1), live: v(2)}
}

// shouldReclaim reports whether, from prev to cur, the process allocated
// little and its heap holds enough garbage to collect.
func shouldReclaim(prev, cur heapSample) bool {
	return cur.allocs-prev.allocs < idleAllocs && cur.objects > cur.live+reclaimGarbage
}

// reclaimIdle looks every interval and reclaims (debug.FreeOSMemory: a
// collection, then every free page back to the system) when
// shouldReclaim says so, until ctx ends. reclaimed, when not nil, is
// called after each.
func reclaimIdle(ctx context.Context, interval time.Duration, reclaimed func()) {
	t := time.NewTicker(interval)
	defer t.Stop()
	prev := readHeap()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		cur := readHeap()
		if shouldReclaim(prev, cur) {
			debug.FreeOSMemory()
			if reclaimed != nil {
				reclaimed()
			}
			cur = readHeap()
		}
		prev = cur
	}
}
