package bolt

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math/bits"
	"slices"
	"sort"
	"time"

	"go.etcd.io/bbolt"

	"github.com/ctigate/ctigate"
	"github.com/ctigate/ctigate/custody"
	"github.com/ctigate/ctigate/store"
)

var (
	_ store.LedgerIndex = (*Store)(nil)
	_ store.Deliveries  = (*Store)(nil)
)

// The ledger's index (store.LedgerIndex), built behind the chain:
//
//	ledger-tree       storage index (8 bytes) of the first hash -> tree
//	                  hashes (32 bytes each) at that index and after it
//	ledger-object-runs  run (8), its chunk's first pair (16) -> up to
//	                  runChunkPairs of the run's sorted (tag (8), seq (8))
//	                  pairs; run (8) -> all of them (runs written by
//	                  earlier builds)
//	ledger-objects    uvarint len(id), id, seq (8) -> nothing (read only:
//	                  stores indexed before the runs)
//	ledger-ranges     uvarint len(collection), collection, span class
//	                  (1), last date_added (8), seq (8) -> first date_added (8)
//	meta/ledger-indexed  the seq it is built through (8 bytes)
//
// The entries about an object are found by its tag (objectTag) in runs:
// each WriteIndex stores its batch's pairs as one value, sorted, and merges
// it with the newest runs no larger than it (up to maxRunPairs), so a
// batch costs a sequential write of its own size plus merges that rewrite
// each pair about log2(maxRunPairs/batch) times, and a lookup binary-
// searches each run. One B+tree keyed by object id (ledger-objects, still
// read) made every batch dirty a leaf page per entry all over the file:
// it was a quarter of the gateway's CPU during a push. A tag may be
// another object's too: readers keep only the entries about the id.
//
// A delivery's span class is the bit length of last-first in
// microseconds: every range of class k holding an instant d ends in
// [d, d+2^k), so a point query reads, per class, only ranges ending
// there. Delivery manifests (store.Deliveries):
//
//	delivery-manifests  uvarint len(collection), collection, items root
//	                    (32) -> custody.EncodeManifest
//	meta/delivery-key   the secret of item salts (32 bytes)
//
// Date_added times are Unix microseconds, big-endian, with the sign bit
// flipped so that they sort as numbers.
var (
	bucketLedgerTree    = []byte("ledger-tree")
	bucketLedgerObjects = []byte("ledger-objects")
	bucketLedgerRuns    = []byte("ledger-object-runs")
	bucketLedgerRanges  = []byte("ledger-ranges")
	bucketManifests     = []byte("delivery-manifests")
	keyLedgerIndexed    = []byte("ledger-indexed")
	keyDeliveryKey      = []byte("delivery-key")
)

var indexBuckets = [][]byte{bucketLedgerTree, bucketLedgerObjects, bucketLedgerRuns, bucketLedgerRanges, bucketManifests}

// treeChunk is how many tree hashes one ledger-tree value holds. Each
// ledger entry adds two hashes on average: a Put for each one was a
// quarter of indexing's CPU, and indexing about 9% of the gateway's
// during a push. WriteIndex fills the last value up to treeChunk before
// it starts a new one. Files indexed by earlier builds hold one hash per
// value, which is a chunk of one: the lookup is the same.
const treeChunk = 128

// maxRunPairs bounds the runs merges make (16 MiB each).
const maxRunPairs = 1 << 20

// runChunkPairs is how many pairs one stored value of a run holds (4 KiB,
// three to a page). bbolt keeps at least two values in a leaf and
// rewrites the whole leaf, large values included, when one of its values
// changes: runs stored whole made each batch rewrite a neighbouring run
// of up to 16 MiB, about 80 times the pairs' bytes over two million
// pairs in batches of 6,600 (tx stats' page allocation: 2.5 GB for 32
// MB). In chunks, a batch writes its run and what it merges, at the end
// of the bucket.
const runChunkPairs = 256

// objectRun returns the (tag, seq) pairs of refs, sorted, as a run.
func objectRun(refs []store.ObjectRef) []byte {
	type pair struct{ tag, seq uint64 }
	ps := make([]pair, len(refs))
	for i, o := range refs {
		ps[i] = pair{objectTag(o.ID), o.Seq}
	}
	slices.SortFunc(ps, func(a, b pair) int {
		if c := cmp.Compare(a.tag, b.tag); c != 0 {
			return c
		}
		return cmp.Compare(a.seq, b.seq)
	})
	run := make([]byte, 0, 16*len(ps))
	for _, p := range ps {
		run = binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint64(run, p.tag), p.seq)
	}
	return run
}

// mergeRuns returns the sorted union of runs a and b.
func mergeRuns(a, b []byte) []byte {
	out := make([]byte, 0, len(a)+len(b))
	for len(a) > 0 && len(b) > 0 {
		if bytes.Compare(a[:16], b[:16]) <= 0 {
			out, a = append(out, a[:16]...), a[16:]
		} else {
			out, b = append(out, b[:16]...), b[16:]
		}
	}
	return append(append(out, a...), b...)
}

// storedRun is a run as the bucket holds it: one value under its 8-byte
// key, or chunks under 24-byte keys (its first pair's after the run's).
type storedRun struct {
	run    uint64
	keys   [][]byte
	chunks [][]byte
	size   int // bytes of pairs
}

// pairs returns the run's pairs, in one slice.
func (r *storedRun) pairs() []byte {
	if len(r.chunks) == 1 {
		return r.chunks[0]
	}
	out := make([]byte, 0, r.size)
	for _, c := range r.chunks {
		out = append(out, c...)
	}
	return out
}

// validRunValue reports whether (k, v) is a value of a run as stored: a
// whole run under its 8-byte key, or a chunk under its run's key and its
// first pair.
func validRunValue(k, v []byte) bool {
	switch len(k) {
	case 8:
		return len(v)%16 == 0
	case 24:
		return len(v) > 0 && len(v)%16 == 0 && bytes.Equal(k[8:], v[:16])
	}
	return false
}

// runBefore reads the run whose last value is (k, v), the cursor's
// position, and returns it with the cursor's position before it.
func runBefore(c *bbolt.Cursor, k, v []byte) (storedRun, []byte, []byte, error) {
	corrupt := fmt.Errorf("ledger object run: %w", errCorrupt)
	if !validRunValue(k, v) {
		return storedRun{}, nil, nil, corrupt
	}
	r := storedRun{run: binary.BigEndian.Uint64(k)}
	whole := len(k) == 8
	for {
		r.keys, r.chunks, r.size = append(r.keys, bytes.Clone(k)), append(r.chunks, v), r.size+len(v)
		if k, v = c.Prev(); whole || len(k) <= 8 || binary.BigEndian.Uint64(k) != r.run {
			break
		}
		if !validRunValue(k, v) {
			return storedRun{}, nil, nil, corrupt
		}
	}
	if k != nil && len(k) < 8 {
		return storedRun{}, nil, nil, corrupt
	}
	slices.Reverse(r.keys)
	slices.Reverse(r.chunks)
	return r, k, v, nil
}

// putObjectRun stores run, merged with the newest stored runs while they
// are no larger than it and the result stays within maxPairs: a binary
// counter below the cap, capped runs before it.
func putObjectRun(runs *bbolt.Bucket, run []byte, maxPairs int) error {
	if len(run) == 0 {
		return nil
	}
	// The newest runs are read backwards, as far as they merge, before
	// anything is deleted (Cursor.Last after deletes that empty a
	// bucket's leaves does not return in bbolt 1.5).
	c := runs.Cursor()
	next := uint64(1)
	k, v := c.Last()
	if k != nil {
		if len(k) < 8 {
			return fmt.Errorf("ledger object run: %w", errCorrupt)
		}
		next = binary.BigEndian.Uint64(k) + 1
	}
	var merged [][]byte
	for k != nil {
		r, pk, pv, err := runBefore(c, k, v)
		if err != nil {
			return err
		}
		if r.size > len(run) || r.size+len(run) > 16*maxPairs {
			break
		}
		run = mergeRuns(r.pairs(), run)
		next = r.run
		merged = append(merged, r.keys...)
		k, v = pk, pv
	}
	for _, k := range merged {
		if err := runs.Delete(k); err != nil {
			return err
		}
	}
	runs.FillPercent = 1
	for off := 0; off < len(run); off += 16 * runChunkPairs {
		chunk := run[off:min(off+16*runChunkPairs, len(run))]
		if err := runs.Put(append(seqKey(next), chunk[:16]...), chunk); err != nil {
			return err
		}
	}
	return nil
}

// runSeqs appends to out the seqs in (after, through] paired with tag in
// the sorted run.
func runSeqs(out []uint64, run []byte, tag, after, through uint64) []uint64 {
	n := len(run) / 16
	i := sort.Search(n, func(i int) bool { return binary.BigEndian.Uint64(run[16*i:]) >= tag })
	for ; i < n && binary.BigEndian.Uint64(run[16*i:]) == tag; i++ {
		if seq := binary.BigEndian.Uint64(run[16*i+8:]); seq > after && seq <= through {
			out = append(out, seq)
		}
	}
	return out
}

func prefixed(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func microsKey(b []byte, t time.Time) []byte {
	return binary.BigEndian.AppendUint64(b, uint64(t.UnixMicro())^(1<<63))
}

func spanClass(first, last time.Time) byte {
	return byte(bits.Len64(uint64(last.UnixMicro() - first.UnixMicro())))
}

func readIndexed(tx *bbolt.Tx) uint64 {
	if v := tx.Bucket(bucketMeta).Get(keyLedgerIndexed); len(v) == 8 {
		return binary.BigEndian.Uint64(v)
	}
	return 0
}

// IndexedThrough returns the seq the index is built through.
func (s *Store) IndexedThrough(ctx context.Context) (uint64, error) {
	const op = "bolt.IndexedThrough"
	if err := s.enter(op); err != nil {
		return 0, err
	}
	defer s.leave()
	var n uint64
	if err := s.db.View(func(tx *bbolt.Tx) error { n = readIndexed(tx); return nil }); err != nil {
		return 0, ctigate.E(op, err)
	}
	return n, nil
}

// WriteIndex writes b if the index is still built through from.
func (s *Store) WriteIndex(ctx context.Context, from uint64, b *store.IndexBatch) error {
	const op = "bolt.WriteIndex"
	if err := s.enter(op); err != nil {
		return err
	}
	defer s.leave()
	if err := ctx.Err(); err != nil {
		return ctxErr(op, err)
	}
	err := s.update(1, func(tx *bbolt.Tx) error {
		if readIndexed(tx) != from {
			return ctigate.E(op, ctigate.Conflict, "the ledger index moved")
		}
		if err := putTreeHashes(tx.Bucket(bucketLedgerTree), uint64(b.TreeStart), b.Tree); err != nil {
			return err
		}
		if err := putObjectRun(tx.Bucket(bucketLedgerRuns), objectRun(b.Objects), maxRunPairs); err != nil {
			return err
		}
		var k []byte
		ranges := tx.Bucket(bucketLedgerRanges)
		for _, d := range b.Deliveries {
			k = prefixed(k[:0], d.Collection)
			k = append(k, spanClass(d.First, d.Last))
			k = microsKey(k, d.Last)
			k = binary.BigEndian.AppendUint64(k, d.Seq)
			if err := ranges.Put(k, microsKey(nil, d.First)); err != nil {
				return err
			}
		}
		return tx.Bucket(bucketMeta).Put(keyLedgerIndexed, binary.BigEndian.AppendUint64(nil, b.Through))
	})
	if err != nil {
		return ctigate.E(op, err)
	}
	return nil
}

// TreeHashes returns the stored tree hashes at indexes.
func (s *Store) TreeHashes(ctx context.Context, indexes []int64) ([][32]byte, error) {
	const op = "bolt.TreeHashes"
	if err := s.enter(op); err != nil {
		return nil, err
	}
	defer s.leave()
	out := make([][32]byte, len(indexes))
	err := s.db.View(func(tx *bbolt.Tx) error {
		r := treeReader{c: tx.Bucket(bucketLedgerTree).Cursor()}
		for i, x := range indexes {
			h, err := r.at(x)
			if err != nil {
				return ctigate.E(op, err)
			}
			out[i] = h
		}
		return nil
	})
	if err != nil {
		return nil, ctigate.E(op, err)
	}
	return out, nil
}

// DeliveriesContaining returns the indexed deliveries of collection whose
// range holds at.
func (s *Store) DeliveriesContaining(ctx context.Context, collection string, at time.Time, after uint64, limit int) ([]uint64, error) {
	const op = "bolt.DeliveriesContaining"
	if err := store.ValidName("collection", collection); err != nil {
		return nil, ctigate.E(op, ctigate.Invalid, err.Error())
	}
	if err := s.enter(op); err != nil {
		return nil, err
	}
	defer s.leave()
	var out []uint64
	d := at.UnixMicro()
	err := s.db.View(func(tx *bbolt.Tx) error {
		c := tx.Bucket(bucketLedgerRanges).Cursor()
		p := prefixed(nil, collection)
		for class := 0; class <= 64; class++ {
			start := microsKey(append(slices.Clip(p), byte(class)), at)
			end := d + int64(1)<<min(class, 62)
			for k, v := c.Seek(start); k != nil && bytes.HasPrefix(k, start[:len(p)+1]); k, v = c.Next() {
				rest := k[len(p)+1:]
				if len(rest) != 16 || len(v) != 8 {
					return fmt.Errorf("ledger range index: %w", errCorrupt)
				}
				last := int64(binary.BigEndian.Uint64(rest) ^ (1 << 63))
				if class < 63 && last >= end {
					break
				}
				first := int64(binary.BigEndian.Uint64(v) ^ (1 << 63))
				if seq := binary.BigEndian.Uint64(rest[8:]); first <= d && seq > after {
					out = append(out, seq)
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, ctigate.E(op, err)
	}
	slices.Sort(out)
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

// objectSeqs returns the indexed seqs of entries that may be about id
// (its tag's) in (after, through], ascending.
func objectSeqs(tx *bbolt.Tx, id string, after, through uint64) ([]uint64, error) {
	var out []uint64
	tag := objectTag(id)
	corrupt := fmt.Errorf("ledger object run: %w", errCorrupt)
	c := tx.Bucket(bucketLedgerRuns).Cursor()
	for k, v := c.First(); k != nil; {
		if len(v)%16 != 0 {
			return nil, corrupt
		}
		switch len(k) {
		case 8: // a run stored whole
			out = runSeqs(out, v, tag, after, through)
			k, v = c.Next()
			continue
		case 24:
		default:
			return nil, corrupt
		}
		// A run in chunks: from the last chunk that starts before the
		// tag's first pair, while chunks start at or before the tag.
		run := binary.BigEndian.Uint64(k)
		from := binary.BigEndian.AppendUint64(seqKey(run), tag)
		from = append(from, make([]byte, 8)...)
		k, v = c.Seek(from)
		if k == nil || !bytes.Equal(k, from) {
			if k == nil {
				k, v = c.Last()
			} else {
				k, v = c.Prev()
			}
			if len(k) != 24 || binary.BigEndian.Uint64(k) != run {
				k, v = c.Seek(from)
			}
		}
		for ; len(k) == 24 && binary.BigEndian.Uint64(k) == run && binary.BigEndian.Uint64(k[8:]) <= tag; k, v = c.Next() {
			if len(v)%16 != 0 {
				return nil, corrupt
			}
			out = runSeqs(out, v, tag, after, through)
		}
		if run == ^uint64(0) {
			break
		}
		k, v = c.Seek(seqKey(run + 1))
	}
	p := prefixed(nil, id)
	c = tx.Bucket(bucketLedgerObjects).Cursor()
	for k, _ := c.Seek(binary.BigEndian.AppendUint64(slices.Clip(p), after+1)); k != nil && bytes.HasPrefix(k, p) && len(k) == len(p)+8; k, _ = c.Next() {
		seq := binary.BigEndian.Uint64(k[len(p):])
		if seq > through {
			break
		}
		out = append(out, seq)
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// DeliverySalter returns the Salter of this store's deliveries.
func (s *Store) DeliverySalter(ctx context.Context) (*custody.Salter, error) {
	const op = "bolt.DeliverySalter"
	if err := s.enter(op); err != nil {
		return nil, err
	}
	s.leave()
	return s.salter, nil
}

func manifestKey(collection, root string) ([]byte, error) {
	r, err := hex.DecodeString(root)
	if err != nil || len(r) != 32 {
		return nil, fmt.Errorf("items root %.70q is not a hex SHA-256", root)
	}
	return append(prefixed(nil, collection), r...), nil
}

// RecordDelivery stores the manifest unless present and appends e, in
// one transaction.
func (s *Store) RecordDelivery(ctx context.Context, e custody.Entry, manifest []byte) (custody.Entry, error) {
	const op = "bolt.RecordDelivery"
	if e.Action != custody.Delivered {
		return custody.Entry{}, ctigate.E(op, ctigate.Invalid, "not a delivered entry")
	}
	if err := e.Valid(); err != nil {
		return custody.Entry{}, ctigate.E(op, ctigate.Invalid, err.Error())
	}
	mk, err := manifestKey(e.Collection, e.ItemsRoot)
	if err != nil {
		return custody.Entry{}, ctigate.E(op, ctigate.Invalid, err.Error())
	}
	if err := s.enter(op); err != nil {
		return custody.Entry{}, err
	}
	defer s.leave()
	if err := ctx.Err(); err != nil {
		return custody.Entry{}, ctxErr(op, err)
	}
	ps, err := prepare([]custody.Entry{e})
	if err != nil {
		return custody.Entry{}, ctigate.E(op, ctigate.Invalid, err.Error())
	}
	out := make([]custody.Entry, 1)
	err = s.write(1, 0, func(w *writeTx) error {
		m := w.tx.Bucket(bucketManifests)
		if m.Get(mk) == nil {
			if err := m.Put(mk, manifest); err != nil {
				return err
			}
		}
		return appendLedger(w, ps, out, s.clock())
	})
	if err != nil {
		return custody.Entry{}, ctigate.E(op, err)
	}
	return out[0], nil
}

// Manifest returns the manifest stored under (collection, root).
func (s *Store) Manifest(ctx context.Context, collection, root string) ([]byte, error) {
	const op = "bolt.Manifest"
	mk, err := manifestKey(collection, root)
	if err != nil {
		return nil, ctigate.E(op, ctigate.Invalid, err.Error())
	}
	if err := s.enter(op); err != nil {
		return nil, err
	}
	defer s.leave()
	var out []byte
	err = s.db.View(func(tx *bbolt.Tx) error {
		out = bytes.Clone(tx.Bucket(bucketManifests).Get(mk))
		return nil
	})
	if err != nil {
		return nil, ctigate.E(op, err)
	}
	if out == nil {
		return nil, ctigate.E(op, ctigate.NotFound, "no such delivery manifest")
	}
	return out, nil
}

// UsedBytes returns the bytes the store's data occupies in its file: the
// in-use bytes of every bucket's pages (bbolt's bucket statistics), which
// grow as the store grows, whatever the file's preallocated size.
func (s *Store) UsedBytes() (int64, error) {
	const op = "bolt.UsedBytes"
	if err := s.enter(op); err != nil {
		return 0, err
	}
	defer s.leave()
	var n int64
	err := s.db.View(func(tx *bbolt.Tx) error {
		return tx.ForEach(func(_ []byte, b *bbolt.Bucket) error {
			st := b.Stats()
			n += int64(st.BranchInuse + st.LeafInuse)
			return nil
		})
	})
	if err != nil {
		return 0, ctigate.E(op, err)
	}
	return n, nil
}

// Memos (store.Memos) are kept in the meta bucket under "memo/" + name.
var _ store.Memos = (*Store)(nil)

func memoKey(name string) []byte { return append([]byte("memo/"), name...) }

// Memo returns the memo stored under name, nil when there is none.
func (s *Store) Memo(ctx context.Context, name string) ([]byte, error) {
	const op = "bolt.Memo"
	if err := store.ValidName("memo", name); err != nil {
		return nil, ctigate.E(op, ctigate.Invalid, err.Error())
	}
	if err := s.enter(op); err != nil {
		return nil, err
	}
	defer s.leave()
	var out []byte
	err := s.db.View(func(tx *bbolt.Tx) error {
		out = bytes.Clone(tx.Bucket(bucketMeta).Get(memoKey(name)))
		return nil
	})
	if err != nil {
		return nil, ctigate.E(op, err)
	}
	return out, nil
}

// PutMemo stores v under name.
func (s *Store) PutMemo(ctx context.Context, name string, v []byte) error {
	const op = "bolt.PutMemo"
	if err := store.ValidName("memo", name); err != nil {
		return ctigate.E(op, ctigate.Invalid, err.Error())
	}
	if len(v) > store.MaxMemoBytes {
		return ctigate.E(op, ctigate.Invalid, "memo too large")
	}
	if err := s.enter(op); err != nil {
		return err
	}
	defer s.leave()
	if err := ctx.Err(); err != nil {
		return ctxErr(op, err)
	}
	if err := s.update(1, func(tx *bbolt.Tx) error { return tx.Bucket(bucketMeta).Put(memoKey(name), v) }); err != nil {
		return ctigate.E(op, err)
	}
	return nil
}

// putTreeHashes stores hs, the tree hashes from index start on, in
// ledger-tree: first into the last value while it holds fewer than
// treeChunk, then in new values of treeChunk. The stored hashes must end
// at start: the tree's hashes are stored in order, without gaps.
func putTreeHashes(tree *bbolt.Bucket, start uint64, hs [][32]byte) error {
	if len(hs) == 0 {
		return nil
	}
	tree.FillPercent = 1
	next := uint64(0) // the index after the stored hashes
	k, v := tree.Cursor().Last()
	if k != nil {
		if len(k) != 8 || len(v) == 0 || len(v)%32 != 0 {
			return fmt.Errorf("ledger tree: %w", errCorrupt)
		}
		next = binary.BigEndian.Uint64(k) + uint64(len(v)/32)
	}
	if next != start {
		return fmt.Errorf("ledger tree: hashes stored through %d, the batch starts at %d: %w", next, start, errCorrupt)
	}
	if k != nil && len(v)/32 < treeChunk {
		n := min(treeChunk-len(v)/32, len(hs))
		nv := make([]byte, 0, len(v)+32*n)
		nv = append(nv, v...)
		for _, h := range hs[:n] {
			nv = append(nv, h[:]...)
		}
		if err := tree.Put(bytes.Clone(k), nv); err != nil {
			return err
		}
		hs, start = hs[n:], start+uint64(n)
	}
	for len(hs) > 0 {
		n := min(treeChunk, len(hs))
		nv := make([]byte, 0, 32*n)
		for _, h := range hs[:n] {
			nv = append(nv, h[:]...)
		}
		if err := tree.Put(seqKey(start), nv); err != nil {
			return err
		}
		hs, start = hs[n:], start+uint64(n)
	}
	return nil
}

// treeReader reads tree hashes from ledger-tree, keeping the value it
// read last: a proof's or a tree head's hashes are mostly near each other.
type treeReader struct {
	c     *bbolt.Cursor
	first uint64 // storage index of v's first hash
	v     []byte
}

// at returns the tree hash at storage index x.
func (r *treeReader) at(x int64) ([32]byte, error) {
	if x < 0 {
		return [32]byte{}, ctigate.E(ctigate.NotFound, fmt.Sprintf("tree hash %d not stored", x))
	}
	i := uint64(x)
	if r.v == nil || i < r.first || i >= r.first+uint64(len(r.v)/32) {
		k, v := r.c.Seek(seqKey(i))
		switch {
		case k == nil:
			k, v = r.c.Last()
		case len(k) == 8 && binary.BigEndian.Uint64(k) > i:
			k, v = r.c.Prev()
		}
		if k == nil {
			return [32]byte{}, ctigate.E(ctigate.NotFound, fmt.Sprintf("tree hash %d not stored", x))
		}
		if len(k) != 8 || len(v) == 0 || len(v)%32 != 0 {
			return [32]byte{}, fmt.Errorf("ledger tree: %w", errCorrupt)
		}
		r.first, r.v = binary.BigEndian.Uint64(k), v
		if i >= r.first+uint64(len(v)/32) {
			return [32]byte{}, ctigate.E(ctigate.NotFound, fmt.Sprintf("tree hash %d not stored", x))
		}
	}
	return [32]byte(r.v[32*(i-r.first):]), nil
}
