package bolt

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/bbolt"

	"github.com/ctigate/ctigate"
)

// Trimming keeps the process's resident memory bounded.
//
// bbolt reads through a read-only MAP_SHARED mapping of the whole file. Every
// page a transaction touches stays mapped into the process, and Linux counts
// mapped file pages in the process's RSS (RssFile) until they are unmapped
// or reclaimed. Consumers that page through a million objects would touch
// the whole file, and RSS would grow to the file's size even though the
// kernel could drop those pages at any time. Orchestrators and cgroup limits
// look at that number, so when the process's resident file pages pass a
// budget (Options.TrimAbove) the store tells the kernel, with
// madvise(MADV_DONTNEED), that it does not need the mapped range. For a
// shared file mapping this only removes the page-table entries: the data
// stays in the page cache (and on disk), and the next access faults it back
// in, so it is safe while other goroutines read. The trim runs inside a read
// transaction, which holds bbolt's mmap lock, so the mapping cannot be
// replaced (remapped) while it is being trimmed.
//
// Each trim costs a page fault for every page read again afterwards, so the
// trimmer does not trim below the budget: a working set that fits stays
// mapped (four consumers paging through 200,000 objects ran about 1.5
// times as fast as when the mapping was dropped after every 8 MiB read).
//
// The store and the search index (index.go) each run a trimmer over their
// own file; the budget is the process's, so either trims its own mapping
// when the two together pass it.

// trimmer drops one bbolt file's mapping from the page tables when the
// process's resident file pages are over the budget, checked every
// interval when the file was used and whenever enough bytes were read or
// written since the last check.
type trimmer struct {
	tdb        *bbolt.DB
	tlog       *slog.Logger
	what       string // "store" or "search index", for log messages
	trimAfter  int64
	trimAbove  int64        // resident file bytes over which to trim; negative: always
	touched    atomic.Int64 // bytes read or written since the last trim
	active     atomic.Bool  // the file was used since the last trim
	trimNow    chan struct{}
	stopTrim   context.CancelFunc
	trimmerWG  sync.WaitGroup
	trimsCount atomic.Int64
	checks     atomic.Int64 // checks against the budget by the trim loop
}

// startTrimmer trims once (opening read the file), then starts the trim
// loop; stopTrimmer stops it. after and interval are as in Options.
func (t *trimmer) startTrimmer(db *bbolt.DB, log *slog.Logger, what string, after, above int64, interval time.Duration) {
	t.tdb, t.tlog, t.what = db, log, what
	t.trimNow = make(chan struct{}, 1)
	t.trimAfter = after
	if t.trimAfter == 0 {
		t.trimAfter = DefaultTrimAfterBytes
	}
	t.trimAbove = above
	if t.trimAbove == 0 {
		t.trimAbove = DefaultTrimAbove
	}
	if interval == 0 {
		interval = DefaultTrimInterval
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.stopTrim = cancel
	if !trimSupported {
		return
	}
	if t.trimAfter >= 0 && t.overBudget() {
		if err := t.trim(); err != nil {
			t.tlog.Warn(t.what+": trimming the file mapping failed", "err", err)
		}
	}
	t.trimmerWG.Add(1)
	go t.trimLoop(ctx, interval)
}

// stopTrimmer stops the trim loop and waits for it.
func (t *trimmer) stopTrimmer() {
	if t.stopTrim != nil {
		t.stopTrim()
	}
	t.trimmerWG.Wait()
}

// noteRead records that a read returned n bytes and asks for a trim once
// enough bytes were read or written since the last one.
func (t *trimmer) noteRead(n int64) { t.noteTouched(n) }

// noteWrite records that a write transaction committed about n bytes.
// Writes go to the file with write(2), not through the mapping, but a
// transaction reads through the mapping every page it copies on write
// (for appends, the right edge of each B+tree, and the freelist), and the
// pages bbolt allocates past the end of the mapping are mapped when it
// grows: a steady ingest alone would keep growing RSS.
func (t *trimmer) noteWrite(n int64) { t.noteTouched(n) }

func (t *trimmer) noteTouched(n int64) {
	t.active.Store(true)
	if !trimSupported || t.trimAfter < 0 {
		return
	}
	if t.touched.Add(n) >= t.trimAfter {
		t.touched.Store(0)
		select {
		case t.trimNow <- struct{}{}:
		default:
		}
	}
}

// trimLoop trims every interval when the file was used since the last
// trim, and whenever noteTouched asks, until ctx is done.
func (t *trimmer) trimLoop(ctx context.Context, interval time.Duration) {
	defer t.trimmerWG.Done()
	var tick <-chan time.Time
	if interval > 0 {
		tk := time.NewTicker(interval)
		defer tk.Stop()
		tick = tk.C
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick:
			if !t.active.Swap(false) {
				continue
			}
		case <-t.trimNow:
		}
		if t.overBudget() {
			if err := t.trim(); err != nil {
				t.tlog.Warn(t.what+": trimming the file mapping failed", "err", err)
			}
		}
		t.checks.Add(1)
	}
}

// overBudget reports whether the process's resident file pages are over
// the budget (always when the budget is negative or unknown).
func (t *trimmer) overBudget() bool {
	if t.trimAbove < 0 {
		return true
	}
	n, ok := residentFileBytes()
	return !ok || n > t.trimAbove
}

// trim drops the file mapping from the process's page tables.
func (t *trimmer) trim() error {
	const op = "bolt.trim"
	tx, err := t.tdb.Begin(false)
	if err != nil {
		return ctigate.E(op, err)
	}
	defer tx.Rollback()
	// The read transaction holds the mmap lock: Info().Data is the current
	// mapping and stays mapped until Rollback. tx.Size() is the size of the
	// file as of this transaction, never more than the mapping.
	if err := dropMapping(t.tdb.Info().Data, tx.Size()); err != nil {
		return ctigate.E(op, err)
	}
	t.touched.Store(0)
	t.trimsCount.Add(1)
	return nil
}
