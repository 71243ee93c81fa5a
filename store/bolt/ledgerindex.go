package bolt

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math/bits"
	"slices"
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
//	ledger-tree       storage index (8 bytes) -> tree hash (32 bytes)
//	ledger-objects    uvarint len(id), id, seq (8) -> nothing
//	ledger-ranges     uvarint len(collection), collection, span class
//	                  (1), last date_added (8), seq (8) -> first date_added (8)
//	meta/ledger-indexed  the seq it is built through (8 bytes)
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
	bucketLedgerRanges  = []byte("ledger-ranges")
	bucketManifests     = []byte("delivery-manifests")
	keyLedgerIndexed    = []byte("ledger-indexed")
	keyDeliveryKey      = []byte("delivery-key")
)

var indexBuckets = [][]byte{bucketLedgerTree, bucketLedgerObjects, bucketLedgerRanges, bucketManifests}

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
		tree := tx.Bucket(bucketLedgerTree)
		tree.FillPercent = 1
		for i, h := range b.Tree {
			if err := tree.Put(seqKey(uint64(b.TreeStart)+uint64(i)), h[:]); err != nil {
				return err
			}
		}
		objs := tx.Bucket(bucketLedgerObjects)
		var k []byte
		for _, o := range b.Objects {
			k = binary.BigEndian.AppendUint64(prefixed(k[:0], o.ID), o.Seq)
			if err := objs.Put(k, nil); err != nil {
				return err
			}
		}
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
		b := tx.Bucket(bucketLedgerTree)
		for i, x := range indexes {
			v := b.Get(seqKey(uint64(x)))
			if len(v) != 32 {
				return ctigate.E(op, ctigate.NotFound, fmt.Sprintf("tree hash %d not stored", x))
			}
			copy(out[i][:], v)
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

// objectSeqs returns the indexed seqs of entries about id in (after,
// through], ascending.
func objectSeqs(tx *bbolt.Tx, id string, after, through uint64) []uint64 {
	var out []uint64
	p := prefixed(nil, id)
	c := tx.Bucket(bucketLedgerObjects).Cursor()
	for k, _ := c.Seek(binary.BigEndian.AppendUint64(slices.Clip(p), after+1)); k != nil && bytes.HasPrefix(k, p) && len(k) == len(p)+8; k, _ = c.Next() {
		seq := binary.BigEndian.Uint64(k[len(p):])
		if seq > through {
			break
		}
		out = append(out, seq)
	}
	return out
}

// deliveryKey returns the secret of item salts, made on first use. It is
// read without a write transaction when it exists, and made through the
// committer when it does not: a write transaction that bypassed the
// committer would leave the keydir behind the file, and readers of ids
// waiting for it until the next write, forever if that write fails (the
// disk is full).
func (s *Store) deliveryKey() ([32]byte, error) {
	var key [32]byte
	s.saltMu.Lock()
	defer s.saltMu.Unlock()
	if s.salt != nil {
		return *s.salt, nil
	}
	found := false
	err := s.db.View(func(tx *bbolt.Tx) error {
		if v := tx.Bucket(bucketMeta).Get(keyDeliveryKey); len(v) == 32 {
			copy(key[:], v)
			found = true
		}
		return nil
	})
	if err == nil && !found {
		err = s.update(1, func(tx *bbolt.Tx) error {
			meta := tx.Bucket(bucketMeta)
			if v := meta.Get(keyDeliveryKey); len(v) == 32 {
				copy(key[:], v)
				return nil
			}
			_, _ = rand.Read(key[:])
			return meta.Put(keyDeliveryKey, key[:])
		})
	}
	if err != nil {
		return key, err
	}
	s.salt = &key
	return key, nil
}

// DeliverySalter returns the Salter of this store's deliveries.
func (s *Store) DeliverySalter(ctx context.Context) (*custody.Salter, error) {
	const op = "bolt.DeliverySalter"
	if err := s.enter(op); err != nil {
		return nil, err
	}
	defer s.leave()
	k, err := s.deliveryKey()
	if err != nil {
		return nil, ctigate.E(op, err)
	}
	return custody.NewSalter(k), nil
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
	err = s.update(1, func(tx *bbolt.Tx) error {
		m := tx.Bucket(bucketManifests)
		if m.Get(mk) == nil {
			if err := m.Put(mk, manifest); err != nil {
				return err
			}
		}
		return appendLedger(tx, ps, out, s.clock())
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
