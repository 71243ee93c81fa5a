package bolt

import (
	"strings"
	"sync"

	"github.com/ctigate/ctigate/custody"
	"github.com/ctigate/ctigate/store"
)

var _ store.RecentLedger = (*Store)(nil)

// feedMax is how many of the newest entries the feed keeps while the
// index is behind: it forgets the oldest beyond that (about 200 bytes
// each), and the index reads those back from the file.
const feedMax = 1 << 15

// ledgerFeed keeps what the ledger's index needs of the entries this
// store appended last (store.RecentLedger), so that the checkpointer
// indexes them without reading their lines back. It holds consecutive
// entries only, each put there once the transaction appending it has
// committed; an append that does not follow the last one held (after a
// failed commit) starts it again.
type ledgerFeed struct {
	mu    sync.Mutex
	es    []store.IndexedEntry // es[start:] are held, in seq order
	start int
}

// indexedOf is what the index needs of a sealed entry. Its strings are
// copied: an object id may point into a request's body.
func indexedOf(e *custody.Entry) store.IndexedEntry {
	return store.IndexedEntry{Seq: e.Seq, Action: e.Action, ObjectID: strings.Clone(e.ObjectID),
		Collection: strings.Clone(e.Collection), FirstAdded: strings.Clone(e.FirstAdded),
		LastAdded: strings.Clone(e.LastAdded), Hash: e.Hash}
}

// add holds es, appended by a transaction that has committed.
func (f *ledgerFeed) add(es []store.IndexedEntry) {
	if len(es) == 0 {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if held := f.es[f.start:]; len(held) > 0 && held[len(held)-1].Seq+1 != es[0].Seq {
		f.drop(len(held))
	}
	f.es = append(f.es, es...)
	if n := len(f.es) - f.start - feedMax; n > 0 {
		f.drop(n)
	}
}

// drop forgets the n oldest entries held. The slice is compacted once
// half of it is forgotten, so each entry is copied at most once more.
func (f *ledgerFeed) drop(n int) {
	clear(f.es[f.start : f.start+n])
	f.start += n
	if f.start == len(f.es) {
		f.es, f.start = f.es[:0], 0
		return
	}
	if f.start >= len(f.es)/2 {
		k := copy(f.es, f.es[f.start:])
		clear(f.es[k:])
		f.es, f.start = f.es[:k], 0
	}
}

// take appends the entries (from, to] to out if it holds them all, and
// forgets those through from.
func (f *ledgerFeed) take(from, to uint64, out []store.IndexedEntry) ([]store.IndexedEntry, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	held := f.es[f.start:]
	if len(held) == 0 {
		return out, false
	}
	first := held[0].Seq
	if from >= first {
		n := int(min(from-first+1, uint64(len(held))))
		f.drop(n)
		held = f.es[f.start:]
	}
	if to <= from || len(held) == 0 || held[0].Seq != from+1 || held[len(held)-1].Seq < to {
		return out, false
	}
	return append(out, held[:to-from]...), true
}

// RecentIndexed implements store.RecentLedger.
func (s *Store) RecentIndexed(from, to uint64, out []store.IndexedEntry) ([]store.IndexedEntry, bool) {
	return s.feed.take(from, to, out)
}
