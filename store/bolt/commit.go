package bolt

import (
	"fmt"
	"runtime/debug"
	"sync"

	"go.etcd.io/bbolt"
)

// committer groups concurrent writes into shared transactions (group
// commit). A writer that finds no commit under way commits at once, so a
// lone writer pays no extra latency; writers that arrive while a commit is
// under way queue up, and the first of them then commits the whole queue in
// one transaction and one fsync. With several producers posting envelopes at
// once this divides the number of fsyncs by the number of producers.
type committer struct {
	mu    sync.Mutex
	queue []*writeReq
	busy  bool // a leader is committing
}

// writeReq is one write. fn may run more than once (see commit) and must
// reset whatever it reports on each run. fn returns an error only for
// failures of the file itself; a write that finds nothing to do reports that
// in its own fields and returns nil, so it does not roll back its
// neighbours.
type writeReq struct {
	fn   func(*bbolt.Tx) error
	size int // objects written, to bound transactions
	err  error
	wake chan bool // true: lead the next commit; false: done
}

// maxGroupSize bounds the objects committed in one transaction, so that the
// transaction's dirty pages stay small.
const maxGroupSize = 8192

// update runs fn in a write transaction, possibly shared with concurrent
// writers, and returns once that transaction is committed or failed.
func (s *Store) update(size int, fn func(*bbolt.Tx) error) error {
	r := &writeReq{fn: fn, size: size, wake: make(chan bool, 1)}
	c := &s.w
	c.mu.Lock()
	c.queue = append(c.queue, r)
	if c.busy {
		c.mu.Unlock()
		if lead := <-r.wake; !lead {
			return r.err
		}
		c.mu.Lock()
	} else {
		c.busy = true
	}
	// r leads: it is still in the queue, at its head.
	n, total := 0, 0
	for n < len(c.queue) && (n == 0 || total+c.queue[n].size <= maxGroupSize) {
		total += c.queue[n].size
		n++
	}
	group := c.queue[:n:n]
	c.queue = c.queue[n:]
	c.mu.Unlock()

	s.commit(group)
	for _, g := range group {
		if g != r {
			g.wake <- false
		}
	}

	c.mu.Lock()
	if len(c.queue) > 0 {
		c.queue[0].wake <- true
	} else {
		c.busy = false
		c.queue = nil
	}
	c.mu.Unlock()
	return r.err
}

// commit runs a group in one transaction. If that fails and the group has
// more than one write, each write is retried alone so that one write's
// failure is not reported for its neighbours. A panic (bbolt panics on a
// corrupt file) fails the group's writes instead of leaving their callers,
// and every later writer, waiting forever; bbolt has rolled the
// transaction back by then.
func (s *Store) commit(group []*writeReq) {
	s.commits.Add(1)
	defer func() {
		if p := recover(); p != nil {
			s.log.Error("store: write transaction panicked", "panic", p, "stack", string(debug.Stack()))
			err := fmt.Errorf("write transaction panicked: %v", p)
			for _, r := range group {
				r.err = err
			}
		}
	}()
	err := s.db.Update(func(tx *bbolt.Tx) error {
		for _, r := range group {
			if err := r.fn(tx); err != nil {
				return err
			}
		}
		return nil
	})
	if err == nil || len(group) == 1 {
		for _, r := range group {
			r.err = err
		}
		return
	}
	for _, r := range group {
		r.err = s.db.Update(r.fn)
	}
}
