package bolt

import (
	"context"
	"time"

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
// look at that number, so the store periodically tells the kernel, with
// madvise(MADV_DONTNEED), that it does not need the mapped range. For a
// shared file mapping this only removes the page-table entries: the data
// stays in the page cache (and on disk), and the next access faults it back
// in, so it is safe while other goroutines read. The trim runs inside a read
// transaction, which holds bbolt's mmap lock, so the mapping cannot be
// replaced (remapped) while it is being trimmed.

// noteRead records that a read returned n bytes and asks for a trim once
// enough bytes were read or written since the last one.
func (s *Store) noteRead(n int64) { s.noteTouched(n) }

// noteWrite records that a write transaction committed about n bytes.
// Writes go to the file with write(2), not through the mapping, but a
// transaction reads through the mapping every page it copies on write
// (for appends, the right edge of each B+tree, and the freelist), and the
// pages bbolt allocates past the end of the mapping are mapped when it
// grows: a steady ingest alone would keep growing RSS.
func (s *Store) noteWrite(n int64) { s.noteTouched(n) }

func (s *Store) noteTouched(n int64) {
	if !trimSupported || s.trimAfter < 0 {
		return
	}
	if s.touched.Add(n) >= s.trimAfter {
		s.touched.Store(0)
		select {
		case s.trimNow <- struct{}{}:
		default:
		}
	}
}

// trimLoop trims every interval when the store was used since the last trim,
// and whenever noteTouched asks, until ctx is done.
func (s *Store) trimLoop(ctx context.Context, interval time.Duration) {
	defer s.trimmerWG.Done()
	var tick <-chan time.Time
	if interval > 0 {
		t := time.NewTicker(interval)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick:
			if !s.active.Swap(false) {
				continue
			}
		case <-s.trimNow:
		}
		if err := s.trim(); err != nil {
			s.log.Warn("store: trimming the file mapping failed", "err", err)
		}
	}
}

// trim drops the file mapping from the process's page tables.
func (s *Store) trim() error {
	const op = "bolt.trim"
	tx, err := s.db.Begin(false)
	if err != nil {
		return ctigate.E(op, err)
	}
	defer tx.Rollback()
	// The read transaction holds the mmap lock: Info().Data is the current
	// mapping and stays mapped until Rollback. tx.Size() is the size of the
	// file as of this transaction, never more than the mapping.
	if err := dropMapping(s.db.Info().Data, tx.Size()); err != nil {
		return ctigate.E(op, err)
	}
	s.touched.Store(0)
	s.trimsCount.Add(1)
	return nil
}
