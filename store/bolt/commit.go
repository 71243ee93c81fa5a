package bolt

import (
	"fmt"
	"runtime/debug"
	"sync"

	"go.etcd.io/bbolt"

	"github.com/ctigate/ctigate/store"
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
// failures of the file itself or of its input; a write that finds nothing
// to do reports that in its own fields and returns nil, so it does not roll
// back its neighbours.
type writeReq struct {
	fn    func(*writeTx) error
	size  int   // objects written, to bound transactions
	bytes int64 // bytes written, for the trimmer
	err   error
	wake  chan bool // true: lead the next commit; false: done
}

// writeTx is one write transaction shared by a group of writes, and what
// they change in the keydir, applied only once the transaction has
// committed (see keys).
type writeTx struct {
	tx  *bbolt.Tx
	ops []keyOp
	// lastAdd is, per collection and id, the index+1 in ops of the id's
	// last version added in this transaction: the overlay through which
	// writes see versions added earlier in the same transaction.
	lastAdd map[string]map[string]int32
	// ledger is what the ledger's index needs of the entries appended in
	// this transaction, for the feed once it has committed.
	ledger []store.IndexedEntry
}

// added records a new version for the keydir.
func (w *writeTx) added(coll, id string, date int64) {
	m := w.lastAdd[coll]
	if m == nil {
		if w.lastAdd == nil {
			w.lastAdd = make(map[string]map[string]int32)
		}
		m = make(map[string]int32)
		w.lastAdd[coll] = m
	}
	w.ops = append(w.ops, keyOp{coll: coll, id: id, date: date, prev: m[id]})
	m[id] = int32(len(w.ops))
}

// deleted records a deleted version for the keydir.
func (w *writeTx) deleted(coll, id string, date int64) {
	w.ops = append(w.ops, keyOp{coll: coll, id: id, date: date, del: true})
}

// versions appends the date_added of the versions of id the transaction
// may hold: those of the keydir (which holds the state the transaction
// started from) and those added by this transaction. Some may have been
// deleted by this transaction: callers look each up in the index and skip
// those missing. The caller holds s.keys.mu (read).
func (s *Store) versions(w *writeTx, coll, id string, dst []int64) []int64 {
	dst, _ = s.keys.lookup(coll, id, -1, dst)
	for i := w.lastAdd[coll][id]; i != 0; i = w.ops[i-1].prev {
		dst = append(dst, w.ops[i-1].date)
	}
	return dst
}

// maxGroupSize bounds the objects committed in one transaction, so that the
// transaction's dirty pages stay small.
const maxGroupSize = 8192

// update runs fn in a write transaction, possibly shared with concurrent
// writers, and returns once that transaction is committed or failed.
func (s *Store) update(size int, fn func(*bbolt.Tx) error) error {
	return s.write(size, 0, func(w *writeTx) error { return fn(w.tx) })
}

// write is update for writes that change the keydir or report the bytes
// they write.
func (s *Store) write(size int, bytes int64, fn func(*writeTx) error) error {
	r := &writeReq{fn: fn, size: size, bytes: bytes, wake: make(chan bool, 1)}
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
// and every later writer, waiting forever; the transaction has been rolled
// back by then and the keydir not touched.
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
	err := s.runTx(group)
	if err == nil || len(group) == 1 {
		for _, r := range group {
			r.err = err
		}
		return
	}
	for _, r := range group {
		r.err = s.runTx([]*writeReq{r})
	}
}

// runTx runs writes in one transaction and, once it has committed, applies
// their changes to the keydir. This runs before the next transaction begins
// (the committer runs one at a time), so that transaction's lookups see
// them.
func (s *Store) runTx(group []*writeReq) error {
	tx, err := s.db.Begin(true)
	if err != nil {
		return err
	}
	// Rolls back on an error or a panic; a no-op after Commit.
	defer tx.Rollback()
	w := &writeTx{tx: tx}
	var bytes int64
	for _, r := range group {
		if err := r.fn(w); err != nil {
			return err
		}
		bytes += r.bytes
	}
	txid := tx.ID()
	if err := tx.Commit(); err != nil {
		// A commit that fails after writing its meta page may be visible
		// to readers all the same (bbolt reads the meta page from the
		// mapping); then the keydir must follow, or readers would wait
		// for it forever.
		if rtx, rerr := s.db.Begin(false); rerr == nil {
			if rtx.ID() >= txid {
				s.keys.apply(txid, w.ops)
			}
			rtx.Rollback()
		}
		return err
	}
	s.keys.apply(txid, w.ops)
	s.feed.add(w.ledger)
	s.noteWrite(bytes)
	return nil
}
