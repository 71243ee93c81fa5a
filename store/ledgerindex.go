package store

import (
	"context"
	"fmt"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/ctigate/ctigate"
	"github.com/ctigate/ctigate/custody"
)

// IndexedLedger is a ledger with its index.
type IndexedLedger interface {
	Ledger
	LedgerIndex
}

// indexBatch is how many entries one WriteIndex indexes.
const indexBatch = 10000

// IndexLedger builds l's index through seq through (the head when 0) and
// returns the seq it is built through. Several processes may run it at
// once: each batch is written by one of them.
func IndexLedger(ctx context.Context, l IndexedLedger, through uint64) (uint64, error) {
	if through == 0 {
		h, err := l.LedgerHead(ctx)
		if err != nil {
			return 0, err
		}
		through = h.Seq
	}
	for {
		from, err := l.IndexedThrough(ctx)
		if err != nil {
			return 0, err
		}
		if from >= through {
			return from, nil
		}
		b, err := indexBatchAfter(ctx, l, from, min(through, from+indexBatch))
		if err != nil {
			return 0, err
		}
		if err := l.WriteIndex(ctx, from, b); err != nil && ctigate.KindOf(err) != ctigate.Conflict {
			return 0, err
		}
	}
}

// IndexedEntry is what the index needs of an entry: decoding only these
// members of a ledger line costs a fraction of a whole custody.Entry.
type IndexedEntry struct {
	Seq        uint64 `json:"seq"`
	Action     string `json:"action"`
	ObjectID   string `json:"object_id"`
	Collection string `json:"collection"`
	FirstAdded string `json:"first_added"`
	LastAdded  string `json:"last_added"`
	Hash       string `json:"hash"`
}

// ledgerLines is a ledger whose entries can be read as their JSON text
// (both backends).
type ledgerLines interface {
	LedgerLines(ctx context.Context, after, through uint64, fn func(seq uint64, line []byte) error) error
}

// RecentLedger is a ledger that keeps in memory what the index needs of
// the entries it appended last (the embedded store, whose one process
// writes them all). The index takes entries from there when it holds all
// of a batch: reading each line back and decoding it was about 4% of the
// gateway's CPU during a push.
type RecentLedger interface {
	// RecentIndexed appends the entries (from, to] to out and reports
	// whether it held every one of them. The index is built through
	// from: the entries through from may be forgotten.
	RecentIndexed(from, to uint64, out []IndexedEntry) ([]IndexedEntry, bool)
}

// indexedEntries reads what the index needs of entries (from, to].
func indexedEntries(ctx context.Context, l IndexedLedger, from, to uint64) ([]IndexedEntry, error) {
	out := make([]IndexedEntry, 0, to-from)
	if r, ok := l.(RecentLedger); ok {
		if es, ok := r.RecentIndexed(from, to, out); ok {
			return es, nil
		}
	}
	if ll, ok := l.(ledgerLines); ok {
		err := ll.LedgerLines(ctx, from, to, func(seq uint64, line []byte) error {
			var e IndexedEntry
			if err := decodeIndexed(line, &e); err != nil {
				return ctigate.E("store.IndexLedger", ctigate.Internal, fmt.Errorf("ledger entry %d: %v", seq, err))
			}
			out = append(out, e)
			return nil
		})
		return out, err
	}
	es, err := l.LedgerEntries(ctx, LedgerQuery{After: from, Through: to, Limit: MaxLedgerLimit})
	for i := range es {
		e := &es[i]
		out = append(out, IndexedEntry{Seq: e.Seq, Action: e.Action, ObjectID: e.ObjectID, Collection: e.Collection,
			FirstAdded: e.FirstAdded, LastAdded: e.LastAdded, Hash: e.Hash})
	}
	return out, err
}

// indexBatchAfter computes the index of entries (from, to].
func indexBatchAfter(ctx context.Context, l IndexedLedger, from, to uint64) (*IndexBatch, error) {
	es, err := indexedEntries(ctx, l, from, to)
	if err != nil {
		return nil, err
	}
	if len(es) == 0 || es[0].Seq != from+1 {
		return nil, ctigate.E("store.IndexLedger", ctigate.Internal, fmt.Sprintf("ledger entry %d missing", from+1))
	}
	b := &IndexBatch{TreeStart: tlog.StoredHashIndex(0, int64(from))}
	// Older hashes from the store, this batch's from b.Tree.
	r := tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(idx))
		var old []int64
		for i, x := range idx {
			if x >= b.TreeStart {
				if x-b.TreeStart >= int64(len(b.Tree)) {
					return nil, fmt.Errorf("tree hash %d not computed yet", x)
				}
				out[i] = b.Tree[x-b.TreeStart]
			} else {
				old = append(old, x)
			}
		}
		if len(old) > 0 {
			hs, err := l.TreeHashes(ctx, old)
			if err != nil {
				return nil, err
			}
			k := 0
			for i, x := range idx {
				if x < b.TreeStart {
					out[i] = hs[k]
					k++
				}
			}
		}
		return out, nil
	})
	for i := range es {
		e := &es[i]
		if e.Seq != from+uint64(i)+1 {
			return nil, ctigate.E("store.IndexLedger", ctigate.Internal, fmt.Sprintf("ledger entry %d missing", from+uint64(i)+1))
		}
		leaf, err := custody.LeafHash(e.Hash)
		if err != nil {
			return nil, ctigate.E("store.IndexLedger", ctigate.Internal, fmt.Errorf("ledger entry %d: %v", e.Seq, err))
		}
		hs, err := tlog.StoredHashesForRecordHash(int64(e.Seq-1), leaf, r)
		if err != nil {
			return nil, err
		}
		for _, h := range hs {
			b.Tree = append(b.Tree, h)
		}
		switch {
		case e.Action == custody.Delivered:
			first, err1 := custody.ParseTime(e.FirstAdded)
			last, err2 := custody.ParseTime(e.LastAdded)
			if err1 != nil || err2 != nil || last.Before(first) {
				return nil, ctigate.E("store.IndexLedger", ctigate.Internal, fmt.Errorf("delivered entry %d: bad range", e.Seq))
			}
			b.Deliveries = append(b.Deliveries, DeliveryRef{Collection: e.Collection, First: first, Last: last, Seq: e.Seq})
		case e.ObjectID != "":
			b.Objects = append(b.Objects, ObjectRef{ID: e.ObjectID, Seq: e.Seq})
		}
	}
	b.Through = es[len(es)-1].Seq
	return b, nil
}

// TreeReader reads l's stored tree hashes (tlog.HashReader).
func TreeReader(ctx context.Context, l LedgerIndex) tlog.HashReader {
	return tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
		hs, err := l.TreeHashes(ctx, idx)
		if err != nil {
			return nil, err
		}
		out := make([]tlog.Hash, len(hs))
		for i := range hs {
			out[i] = hs[i]
		}
		return out, nil
	})
}

// TreeRoot returns the Merkle tree hash (hex) of entries 1..size of l,
// indexing through size first.
func TreeRoot(ctx context.Context, l IndexedLedger, size uint64) (string, error) {
	if _, err := IndexLedger(ctx, l, size); err != nil {
		return "", err
	}
	h, err := tlog.TreeHash(int64(size), TreeReader(ctx, l))
	if err != nil {
		return "", err
	}
	return custody.HexRoot(h), nil
}
