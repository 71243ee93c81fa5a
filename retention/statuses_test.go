package retention

import (
	"context"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ctigate/ctigate"
	"github.com/ctigate/ctigate/store"
	"github.com/ctigate/ctigate/store/bolt"
)

// TestStatusSweep: the status sweeper removes every expired status, in
// batches, and no other; Run does so on its own until its context ends.
func TestStatusSweep(t *testing.T) {
	c := &clock{now: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)}
	st, err := bolt.Open(filepath.Join(t.TempDir(), "s.db"), bolt.Options{NoSync: true, Clock: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	id := func(i int) string { return fmt.Sprintf("5f6a3c1e-0000-4000-8000-%012d", i) }
	put := func(from, to int, expires time.Time) {
		for i := from; i < to; i++ {
			if err := st.PutStatus(ctx, store.Status{ID: id(i), Status: "complete", Expires: expires}); err != nil {
				t.Fatal(err)
			}
		}
	}
	put(0, 25, c.Now().Add(24*time.Hour))
	put(25, 30, c.Now().Add(48*time.Hour))
	put(30, 31, time.Time{})
	c.Advance(36 * time.Hour)

	sw := &StatusSweeper{Store: st, Batch: 10}
	if n, err := sw.Sweep(ctx); err != nil || n != 25 {
		t.Fatalf("Sweep = %d, %v; want 25 removed", n, err)
	}
	for i := range 31 {
		_, err := st.Status(ctx, id(i))
		if gone := ctigate.KindOf(err) == ctigate.NotFound; gone != (i < 25) {
			t.Fatalf("status %d after the sweep: %v", i, err)
		}
	}
	if n, err := sw.Sweep(ctx); err != nil || n != 0 {
		t.Fatalf("second Sweep = %d, %v; want 0", n, err)
	}

	// Run sweeps at once and every interval; it stops with its context.
	c.Advance(24 * time.Hour)
	counted := &countingStatuses{StatusStore: st}
	sw.Store = counted
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { sw.Run(rctx, 10*time.Millisecond); close(done) }()
	deadline := time.Now().Add(5 * time.Second)
	for counted.removed.Load() < 5 {
		if time.Now().After(deadline) {
			t.Fatalf("Run removed %d expired statuses, want 5", counted.removed.Load())
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not stop when its context ended")
	}
	if _, err := st.Status(ctx, id(30)); err != nil {
		t.Fatalf("status without Expires after Run: %v", err)
	}
}

// countingStatuses counts the statuses its sweeps remove.
type countingStatuses struct {
	StatusStore
	removed atomic.Int64
}

func (c *countingStatuses) SweepStatuses(ctx context.Context, limit int) (int, error) {
	n, err := c.StatusStore.SweepStatuses(ctx, limit)
	c.removed.Add(int64(n))
	return n, err
}
