package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ctigate/ctigate/custody"
	"github.com/ctigate/ctigate/store"
	"github.com/ctigate/ctigate/store/bolt"
)

// recorder notes the order actors stop in.
type recorder struct {
	mu      sync.Mutex
	stopped []string
}

func (r *recorder) actor(name string, fail <-chan error) func(ctx context.Context) error {
	return func(ctx context.Context) error {
		select {
		case <-ctx.Done():
		case err := <-fail:
			r.note(name)
			return err
		}
		time.Sleep(5 * time.Millisecond) // finishing takes a moment; the next must wait for it
		r.note(name)
		return nil
	}
}

func (r *recorder) note(name string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.stopped = append(r.stopped, name)
}

// settled waits until the process has at most n goroutines.
func settled(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > n {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("%d goroutines remain, want %d:\n%s", runtime.NumGoroutine(), n, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestGroupStopsInOrder: a cancelled parent (SIGTERM) stops every actor,
// one after the other in the order added, and leaves no goroutine.
func TestGroupStopsInOrder(t *testing.T) {
	before := runtime.NumGoroutine()
	r := &recorder{}
	g := &group{}
	for _, n := range []string{"http", "fan-out", "indexer", "checkpoints"} {
		g.add(n, r.actor(n, nil))
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- g.Run(ctx) }()
	time.Sleep(20 * time.Millisecond)
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	if want := []string{"http", "fan-out", "indexer", "checkpoints"}; !slices.Equal(r.stopped, want) {
		t.Errorf("stopped in order %v, want %v", r.stopped, want)
	}
	settled(t, before)
}

// TestGroupFailure: an actor that fails stops the group with its error,
// named, and the others are stopped in order; one that returns nil on its
// own is a failure too.
func TestGroupFailure(t *testing.T) {
	for _, c := range []struct {
		name string
		err  error
		want string
	}{{"error", errors.New("index file is corrupt"), "indexer: index file is corrupt"}, {"quiet", nil, "indexer: stopped by itself"}} {
		t.Run(c.name, func(t *testing.T) {
			before := runtime.NumGoroutine()
			r := &recorder{}
			fail := make(chan error, 1)
			g := &group{}
			g.add("http", r.actor("http", nil))
			g.add("fan-out", r.actor("fan-out", nil))
			g.add("indexer", r.actor("indexer", fail))
			g.add("checkpoints", r.actor("checkpoints", nil))
			fail <- c.err
			err := g.Run(context.Background())
			if err == nil || err.Error() != c.want {
				t.Fatalf("Run: %v, want %q", err, c.want)
			}
			if want := []string{"indexer", "http", "fan-out", "checkpoints"}; !slices.Equal(r.stopped, want) {
				t.Errorf("stopped in order %v, want %v", r.stopped, want)
			}
			settled(t, before)
		})
	}
}

// TestCheckpointerClock: with an injected clock, a checkpoint is signed
// when Interval has passed on that clock and entries were added, not
// before, and once more when the checkpointer stops.
func TestCheckpointerClock(t *testing.T) {
	st, err := bolt.Open(filepath.Join(t.TempDir(), "db"), bolt.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	var now atomic.Int64
	now.Store(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	c := newCheckpointer(st, custody.NewSigner(key))
	c.Interval, c.Poll, c.Clock = time.Hour, time.Millisecond, func() time.Time { return time.Unix(0, now.Load()) }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); c.Run(ctx) }()
	checkpoints := func() int {
		es, err := st.LedgerEntries(context.Background(), store.LedgerQuery{Action: custody.Checkpoint, Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		return len(es)
	}
	if _, err := st.AppendEntries(context.Background(), []custody.Entry{{Action: custody.ConfigLoaded, User: "ctigate", Detail: "test"}}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond) // many polls, no hour on the clock
	if n := checkpoints(); n != 0 {
		t.Fatalf("%d checkpoints before the interval passed", n)
	}
	now.Add(int64(time.Hour))
	waitFor(t, "a checkpoint once the hour passed", 5*time.Second, func() bool { return checkpoints() == 1 })
	time.Sleep(50 * time.Millisecond)
	if n := checkpoints(); n != 1 {
		t.Fatalf("%d checkpoints with no new entry, want 1", n)
	}
	if _, err := st.AppendEntries(context.Background(), []custody.Entry{{Action: custody.ConfigLoaded, User: "ctigate", Detail: strings.Repeat("x", 3)}}); err != nil {
		t.Fatal(err)
	}
	cancel()
	<-done
	if n := checkpoints(); n != 2 {
		t.Fatalf("%d checkpoints after stopping, want 2 (the final head signed)", n)
	}
}

// TestCheckpointAfterRacedEntries: entries appended while a checkpoint's
// tree was computed land before the checkpoint, which signs only what
// came before them. The head is then a checkpoint that leaves entries
// unsigned: the next Sign (the final one of a clean stop) signs them
// rather than taking the head for signed.
func TestCheckpointAfterRacedEntries(t *testing.T) {
	st, err := bolt.Open(filepath.Join(t.TempDir(), "db"), bolt.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	entry := custody.Entry{Action: custody.ConfigLoaded, User: "ctigate", Detail: "test"}
	if _, err := st.AppendEntries(ctx, []custody.Entry{entry, entry}); err != nil {
		t.Fatal(err)
	}
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	c := newCheckpointer(st, custody.NewSigner(key))
	root := c.Root
	raced := false
	c.Root = func(ctx context.Context, size uint64) (string, error) {
		r, err := root(ctx, size)
		if !raced { // entries of another writer, appended meanwhile
			raced = true
			if _, err := st.AppendEntries(ctx, []custody.Entry{entry, entry, entry}); err != nil {
				t.Fatal(err)
			}
		}
		return r, err
	}
	first, err := c.Sign(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if first.Seq != 6 {
		t.Fatalf("the raced checkpoint is entry %d, want 6 (after the 3 raced entries)", first.Seq)
	}
	second, err := c.Sign(ctx)
	if err != nil {
		t.Fatal(err)
	}
	es, err := st.LedgerEntries(ctx, store.LedgerQuery{Action: custody.Checkpoint, Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(es) != 2 || es[0].SignedSeq != 2 || es[1].SignedSeq != 6 || second.Seq != 7 {
		t.Fatalf("checkpoints %+v (head %d): want one signing entry 2, then one signing entry 6", es, second.Seq)
	}
	if third, err := c.Sign(ctx); err != nil || third.Seq != 7 {
		t.Fatalf("a third Sign with nothing new: head %d, %v; want no new checkpoint", third.Seq, err)
	}
}

// TestCheckpointerSignsRacedEntries: while running, a checkpoint that
// raced with other entries is followed, once the interval passes, by one
// that signs them, with no new entry needed.
func TestCheckpointerSignsRacedEntries(t *testing.T) {
	st, err := bolt.Open(filepath.Join(t.TempDir(), "db"), bolt.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	entry := custody.Entry{Action: custody.ConfigLoaded, User: "ctigate", Detail: "test"}
	if _, err := st.AppendEntries(context.Background(), []custody.Entry{entry}); err != nil {
		t.Fatal(err)
	}
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	c := newCheckpointer(st, custody.NewSigner(key))
	c.Interval, c.Poll = 20*time.Millisecond, time.Millisecond
	root := c.Root
	var raced atomic.Bool
	c.Root = func(ctx context.Context, size uint64) (string, error) {
		r, err := root(ctx, size)
		if raced.CompareAndSwap(false, true) {
			if _, err := st.AppendEntries(ctx, []custody.Entry{entry, entry}); err != nil {
				t.Error(err)
			}
		}
		return r, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); c.Run(ctx) }()
	defer func() { cancel(); <-done }()
	waitFor(t, "a checkpoint signing the raced entries while running", 5*time.Second, func() bool {
		es, err := st.LedgerEntries(context.Background(), store.LedgerQuery{Action: custody.Checkpoint, Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		return len(es) == 2 && es[0].SignedSeq == 1 && es[1].SignedSeq == es[0].Seq
	})
}
