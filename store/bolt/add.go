package bolt

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"go.etcd.io/bbolt"

	"github.com/ctigate/ctigate"
	"github.com/ctigate/ctigate/custody"
	"github.com/ctigate/ctigate/store"
)

// Limits on stored fields, well above what STIX produces; they keep keys
// within bbolt's limits.
const (
	maxIDLen    = 1024
	maxFieldLen = 256 // type, spec_version
)

// pending is an object prepared for writing outside the write transaction,
// so that the transaction, which writers take turns at, only looks up,
// patches and puts.
type pending struct {
	obj     *store.Object
	version versionKey
	header  []byte // index value; header[0] (flags) is set in the transaction
	dk      []byte // dateKey, set in the transaction
	// hv is the hash value when obj has a Hash: the hash, then the
	// version's delivery leaf, set in the transaction (it commits to the
	// date_added). It lies within body.
	hv []byte
	// body is the version's body value (body.go), for collections in that
	// layout.
	body []byte
}

// AddObjects stores object versions in one collection atomically, assigning
// each new version a date_added strictly greater than any assigned before in
// the collection, in input order.
func (s *Store) AddObjects(ctx context.Context, collection string, objs []store.Object) ([]store.AddResult, error) {
	return s.addObjects(ctx, "bolt.AddObjects", collection, objs, nil, nil, time.Time{}, nil, nil)
}

// AddObjectsStatus is AddObjects that also stores the status status
// builds from the results, in the same write transaction.
func (s *Store) AddObjectsStatus(ctx context.Context, collection string, objs []store.Object, status func([]store.AddResult) store.Status) ([]store.AddResult, error) {
	return s.addObjects(ctx, "bolt.AddObjectsStatus", collection, objs, nil, nil, time.Time{}, nil, status)
}

// AddObjectsCheckpoint is AddObjects that also records decisions (as
// custody ledger entries) and sets the checkpoint name to at in the same
// write transaction.
func (s *Store) AddObjectsCheckpoint(ctx context.Context, collection string, objs []store.Object, decisions []store.Decision, name string, from, at time.Time) ([]store.AddResult, error) {
	const op = "bolt.AddObjectsCheckpoint"
	if err := store.ValidName("checkpoint", name); err != nil {
		return nil, ctigate.E(op, ctigate.Invalid, err.Error())
	}
	v, err := at.UTC().MarshalBinary()
	if err != nil {
		return nil, ctigate.E(op, ctigate.Invalid, fmt.Sprintf("checkpoint time: %v", err))
	}
	if err := store.ValidateDecisions(decisions); err != nil {
		return nil, ctigate.E(op, ctigate.Invalid, err.Error())
	}
	return s.addObjects(ctx, op, collection, objs, decisions, []byte(name), from, v, nil)
}

// addObjects writes objs into collection and, in the same transaction, the
// ledger entries of the decisions ds and the checkpoint cpName (when not
// nil), provided it is still cpFrom, and the status status makes of the
// results (when not nil).
func (s *Store) addObjects(ctx context.Context, op, collection string, objs []store.Object, ds []store.Decision, cpName []byte, cpFrom time.Time, cpValue []byte, status func([]store.AddResult) store.Status) ([]store.AddResult, error) {
	if err := store.ValidName("collection", collection); err != nil {
		return nil, ctigate.E(op, ctigate.Invalid, err.Error())
	}
	ps := make([]pending, len(objs))
	size := 0
	var bytes int64
	for i := range objs {
		o := &objs[i]
		if err := validObject(o); err != nil {
			return nil, ctigate.E(op, ctigate.Invalid, fmt.Sprintf("object %d: %v", i, err))
		}
		n := dateKeyLen + 1 + versionKeyLen + 2*binary.MaxVarintLen16 + len(o.ID) + len(o.Type) + len(o.SpecVersion)
		size += n + 1 + hashValueLen + binary.MaxVarintLen64 + len(o.Producer) + len(o.Raw)
		bytes += int64(n + dateKeyLen + len(o.Raw))
	}
	// One allocation for every key and value written.
	buf := make([]byte, 0, size)
	for i := range objs {
		o := &objs[i]
		p := &ps[i]
		p.obj, p.version = o, encodeVersion(o.Version)
		start := len(buf)
		buf = append(buf, make([]byte, dateKeyLen)...)
		p.dk = buf[start:len(buf):len(buf)]
		start = len(buf)
		buf = appendHeader(buf, 0, p.version, o.ID, o.Type, o.SpecVersion)
		p.header = buf[start:len(buf):len(buf)]
		var hash []byte
		if o.Hash != ([32]byte{}) {
			hash = o.Hash[:]
		}
		buf, p.body, p.hv = appendBody(buf, hash, o.Producer, o.Raw)
	}
	if err := s.enter(op); err != nil {
		return nil, err
	}
	defer s.leave()
	if err := ctx.Err(); err != nil {
		return nil, ctxErr(op, err)
	}
	results := make([]store.AddResult, len(objs))
	if len(objs) == 0 && cpName == nil && status == nil {
		return results, nil
	}
	// The custody entries: received for new versions written for an
	// actor, one per decision.
	actor, received := store.ActorFrom(ctx)
	var tmpl, entries []*custody.Prepared
	if received {
		var err error
		if tmpl, err = receivedTemplates(actor, collection, objs); err != nil {
			return nil, ctigate.E(op, ctigate.Invalid, err.Error())
		}
	}
	decided, err := prepare(decisionEntries(actor, ds))
	if err != nil {
		return nil, ctigate.E(op, ctigate.Invalid, err.Error())
	}
	// A write whose checkpoint is no longer the one it started from
	// (another worker wrote from there first) changes nothing. It returns
	// nil to the shared transaction, so it does not roll back its
	// neighbours, and reports the conflict after.
	var conflict bool
	err = s.write(len(objs), bytes, func(w *writeTx) error {
		conflict = false
		if cpName != nil {
			var cur time.Time
			if v := w.tx.Bucket(bucketCheckpoints).Get(cpName); v != nil {
				if err := cur.UnmarshalBinary(v); err != nil {
					return fmt.Errorf("checkpoint %q: %w", cpName, err)
				}
			}
			if !cur.Equal(cpFrom) {
				conflict = true
				return nil
			}
		}
		if len(ps) > 0 {
			if err := s.add(w, collection, ps, results); err != nil {
				return err
			}
		}
		entries = entries[:0]
		if received {
			entries = receivedEntries(results, tmpl, entries)
		}
		entries = append(entries, decided...)
		if err := appendLedger(w, entries, nil, s.clock()); err != nil {
			return err
		}
		if status != nil {
			if err := putStatus(w.tx, status(results)); err != nil {
				return err
			}
		}
		if cpName != nil {
			return w.tx.Bucket(bucketCheckpoints).Put(cpName, cpValue)
		}
		return nil
	})
	if err != nil {
		return nil, ctigate.E(op, err)
	}
	if conflict {
		return nil, ctigate.E(op, ctigate.Conflict, "checkpoint already moved by another writer")
	}
	return results, nil
}

// Checkpoint returns the time last set under name, zero when none.
func (s *Store) Checkpoint(ctx context.Context, name string) (time.Time, error) {
	const op = "bolt.Checkpoint"
	if err := store.ValidName("checkpoint", name); err != nil {
		return time.Time{}, ctigate.E(op, ctigate.Invalid, err.Error())
	}
	if err := s.enter(op); err != nil {
		return time.Time{}, err
	}
	defer s.leave()
	if err := ctx.Err(); err != nil {
		return time.Time{}, ctxErr(op, err)
	}
	var at time.Time
	err := s.db.View(func(tx *bbolt.Tx) error {
		v := tx.Bucket(bucketCheckpoints).Get([]byte(name))
		if v == nil {
			return nil
		}
		return at.UnmarshalBinary(v)
	})
	if err != nil {
		return time.Time{}, ctigate.E(op, err)
	}
	return at.UTC(), nil
}

func validObject(o *store.Object) error {
	if err := o.Validate(); err != nil {
		return err
	}
	// The body value (body.go) adds its flags, hash value and producer.
	if len(o.Raw) > bbolt.MaxValueSize-1-hashValueLen-binary.MaxVarintLen64-len(o.Producer) {
		return errors.New("object too large")
	}
	return nil
}

// collectionBuckets are the sub-buckets of one collection: index, and
// either body (collections created by this build) or raw, hash and
// producer (body.go).
type collectionBuckets struct {
	coll, index *bbolt.Bucket
	body        *bbolt.Bucket
	raw         *bbolt.Bucket
	hash        *bbolt.Bucket // nil in files written before hashes were kept, until the next add
	producer    *bbolt.Bucket // likewise for producer organisations
}

func openCollection(tx *bbolt.Tx, name string) (collectionBuckets, bool) {
	coll := tx.Bucket(bucketCollections).Bucket([]byte(name))
	if coll == nil {
		return collectionBuckets{}, false
	}
	cb := collectionBuckets{
		coll:     coll,
		index:    coll.Bucket(bucketIndex),
		body:     coll.Bucket(bucketBody),
		raw:      coll.Bucket(bucketRaw),
		hash:     coll.Bucket(bucketHash),
		producer: coll.Bucket(bucketProd),
	}
	if cb.raw != nil {
		cb.body = nil // a raw bucket is the earlier layout; it never has both
	}
	return cb, cb.index != nil && (cb.raw != nil || cb.body != nil)
}

// createCollection opens the collection name, creating it when missing:
// in the body layout, unless legacy (tests of the earlier layout).
func createCollection(tx *bbolt.Tx, name string, legacy bool) (collectionBuckets, error) {
	coll, err := tx.Bucket(bucketCollections).CreateBucketIfNotExists([]byte(name))
	if err != nil {
		return collectionBuckets{}, err
	}
	cb := collectionBuckets{coll: coll}
	if cb.index, err = coll.CreateBucketIfNotExists(bucketIndex); err != nil {
		return collectionBuckets{}, err
	}
	// Both only ever grow at their end (date_added increases), so full
	// pages are best.
	cb.index.FillPercent = 1
	if coll.Bucket(bucketRaw) == nil && !legacy {
		if cb.body, err = coll.CreateBucketIfNotExists(bucketBody); err != nil {
			return collectionBuckets{}, err
		}
		cb.body.FillPercent = 1
		return cb, nil
	}
	if cb.raw, err = coll.CreateBucketIfNotExists(bucketRaw); err != nil {
		return collectionBuckets{}, err
	}
	if cb.hash, err = coll.CreateBucketIfNotExists(bucketHash); err != nil {
		return collectionBuckets{}, err
	}
	cb.hash.FillPercent = 1
	if cb.producer, err = coll.CreateBucketIfNotExists(bucketProd); err != nil {
		return collectionBuckets{}, err
	}
	cb.producer.FillPercent = 1
	cb.raw.FillPercent = 1
	return cb, nil
}

// storedVersion is one stored version of an id, from its index entry.
type storedVersion struct {
	version versionKey
	date    int64
	flags   byte
	spec    []byte // aliases the transaction
}

// readVersions appends the versions of id at the date_added values dates
// that index holds, sorted by version. Dates index does not hold (versions
// deleted, or not in this snapshot) are skipped.
func readVersions(index *bbolt.Bucket, id string, dates []int64, dst []storedVersion) ([]storedVersion, error) {
	var dk [dateKeyLen]byte
	for _, d := range dates {
		putDateKey(dk[:], d)
		v := index.Get(dk[:])
		if v == nil {
			continue
		}
		h, err := decodeHeader(v)
		if err != nil {
			return dst, err
		}
		if string(h.id) != id {
			return dst, errCorrupt
		}
		dst = append(dst, storedVersion{version: h.version, date: d, flags: h.flags, spec: h.spec})
	}
	slices.SortFunc(dst, func(a, b storedVersion) int { return bytes.Compare(a.version[:], b.version[:]) })
	return dst, nil
}

// add writes one AddObjects call inside w. It may run more than once.
// New versions are appended to the index and body buckets in input order,
// which is date_added order, and recorded in w for the keydir.
func (s *Store) add(w *writeTx, collection string, ps []pending, results []store.AddResult) error {
	cb, err := createCollection(w.tx, collection, s.legacyLayout)
	if err != nil {
		return err
	}
	last := int64(math.MinInt64)
	if v := cb.coll.Get(keySeq); len(v) == dateKeyLen {
		last = dateMicros(v)
	}
	now := s.clock().UnixMicro()
	s.keys.mu.RLock()
	defer s.keys.mu.RUnlock()
	var (
		dates    []int64
		existing []storedVersion
		added    uint64
		leaves   *custody.PageLeaves
	)
	for i := range ps {
		p := &ps[i]
		o := p.obj
		dates = s.versions(w, collection, o.ID, dates[:0])
		if existing, err = readVersions(cb.index, o.ID, dates, existing[:0]); err != nil {
			return err
		}
		if date, ok := findVersion(existing, p.version); ok {
			results[i] = store.AddResult{DateAdded: microsTime(date), Existed: true}
			hv, _, err := cb.hashProducer(dateKey(date))
			if err != nil {
				return err
			}
			copy(results[i].Hash[:], hv)
			continue
		}
		if last == math.MaxInt64-1 {
			return errors.New("date_added space exhausted")
		}
		d := max(now, last+1)
		last = d
		flags, err := linkVersion(cb.index, existing, p.version, o.SpecVersion)
		if err != nil {
			return err
		}
		putDateKey(p.dk, d)
		p.header[0] = flags
		if err := cb.index.Put(p.dk, p.header); err != nil {
			return err
		}
		if p.hv != nil {
			if leaves == nil {
				leaves = s.salter.Page(collection)
			}
			leaf, err := leaves.Leaf(o.ID, o.Version, microsTime(d), &o.Hash)
			if err != nil {
				return err
			}
			copy(p.hv[len(o.Hash):], leaf[:])
		}
		if err := cb.put(p.dk, p.body, p.hv, o.Raw, o.Producer); err != nil {
			return err
		}
		w.added(collection, o.ID, d)
		added++
		results[i] = store.AddResult{DateAdded: microsTime(d)}
	}
	if added == 0 {
		return nil
	}
	if err := addCount(cb.coll, int64(added)); err != nil {
		return err
	}
	return cb.coll.Put(keySeq, dateKey(last))
}

// addCount adds delta to the collection's version count.
func addCount(coll *bbolt.Bucket, delta int64) error {
	var n uint64
	if v := coll.Get(keyCount); len(v) == 8 {
		n = binary.BigEndian.Uint64(v)
	}
	return coll.Put(keyCount, binary.BigEndian.AppendUint64(nil, uint64(max(0, int64(n)+delta))))
}

func findVersion(vs []storedVersion, v versionKey) (int64, bool) {
	for _, sv := range vs {
		if sv.version == v {
			return sv.date, true
		}
	}
	return 0, false
}

// linkVersion returns the header flags of a new version v of an id whose
// other versions are existing (ascending), and updates the flags of those
// versions' index entries that the new version changes.
func linkVersion(index *bbolt.Bucket, existing []storedVersion, v versionKey, spec string) (byte, error) {
	if len(existing) == 0 {
		return 0, nil
	}
	var flags byte
	first, last := existing[0], existing[len(existing)-1]
	switch {
	case bytes.Compare(v[:], last.version[:]) > 0:
		flags = flagNotFirst
		if err := setFlags(index, last.date, flagNotLast, 0); err != nil {
			return 0, err
		}
	case bytes.Compare(v[:], first.version[:]) < 0:
		flags = flagNotLast
		if err := setFlags(index, first.date, flagNotFirst, 0); err != nil {
			return 0, err
		}
	default:
		flags = flagNotFirst | flagNotLast
	}
	mixed := false
	for _, e := range existing {
		if string(e.spec) != spec {
			mixed = true
			break
		}
	}
	if mixed {
		flags |= flagMixedSpec
		for _, e := range existing {
			if err := setFlags(index, e.date, flagMixedSpec, 0); err != nil {
				return 0, err
			}
		}
	}
	return flags, nil
}

// setFlags sets and clears header flags of the index entry at date.
func setFlags(index *bbolt.Bucket, date int64, set, clear byte) error {
	k := dateKey(date) // bbolt keeps the key until the commit
	v := index.Get(k)
	if len(v) == 0 {
		return errCorrupt
	}
	f := v[0]&^clear | set
	if f == v[0] {
		return nil
	}
	nv := bytes.Clone(v)
	nv[0] = f
	return index.Put(k, nv)
}
