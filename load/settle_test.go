package load

import (
	"context"
	"sync/atomic"
	"testing"
	"time"
)

// TestWaitIdle: waitIdle returns once the CPU time grew by less than idle
// over a whole window, not while it grows faster, gives up at max, and
// returns at once when the CPU time cannot be read.
func TestWaitIdle(t *testing.T) {
	const step, window, idle = 5 * time.Millisecond, 50 * time.Millisecond, 10 * time.Millisecond
	ctx := context.Background()

	// Busy (more than idle each sample) until busyFor, then idle.
	busyFor := 200 * time.Millisecond
	start := time.Now()
	var used atomic.Int64
	cpu := func() (time.Duration, bool) {
		if time.Since(start) < busyFor {
			used.Add(int64(2 * idle))
		}
		return time.Duration(used.Load()), true
	}
	waited, ok, err := waitIdle(ctx, cpu, step, window, idle, 5*time.Second)
	if err != nil || !ok {
		t.Fatalf("waitIdle = %v, %v, %v; want idle", waited, ok, err)
	}
	if waited < busyFor+window-step { // the last busy sample is at most a step before busyFor
		t.Fatalf("idle after %v, while the process was busy for %v and the window is %v", waited, busyFor, window)
	}

	// Never idle: gives up at max.
	busy := func() (time.Duration, bool) { return time.Duration(used.Add(int64(idle))), true }
	waited, ok, err = waitIdle(ctx, busy, step, window, idle, 150*time.Millisecond)
	if err != nil || ok || waited < 150*time.Millisecond {
		t.Fatalf("a busy process: waitIdle = %v, %v, %v; want not idle after 150ms", waited, ok, err)
	}

	// Unreadable: at once, not idle.
	waited, ok, err = waitIdle(ctx, func() (time.Duration, bool) { return 0, false }, step, window, idle, time.Second)
	if err != nil || ok || waited > 50*time.Millisecond {
		t.Fatalf("unreadable: waitIdle = %v, %v, %v", waited, ok, err)
	}

	// Cancelled.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, ok, err := waitIdle(cctx, busy, step, window, idle, time.Second); ok || err == nil {
		t.Fatalf("cancelled: %v, %v; want the context's error", ok, err)
	}
}
