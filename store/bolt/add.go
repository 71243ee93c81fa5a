package bolt

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"

	"go.etcd.io/bbolt"

	"github.com/ctigate/ctigate"
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
	prefix  []byte // idPrefix
	vkey    []byte // prefix || version: the versions key
	header  []byte // index value; header[0] (flags) is set in the transaction
	vval    []byte // versions value: dateKey (set in the transaction) || spec_version
	dk      []byte // dateKey, set in the transaction
}

// AddObjects stores object versions in one collection atomically, assigning
// each new version a date_added strictly greater than any assigned before in
// the collection, in input order.
func (s *Store) AddObjects(ctx context.Context, collection string, objs []store.Object) ([]store.AddResult, error) {
	const op = "bolt.AddObjects"
	if err := validCollection(collection); err != nil {
		return nil, ctigate.E(op, ctigate.Invalid, err.Error())
	}
	ps := make([]pending, len(objs))
	size := 0
	for i := range objs {
		o := &objs[i]
		if err := validObject(o); err != nil {
			return nil, ctigate.E(op, ctigate.Invalid, fmt.Sprintf("object %d: %v", i, err))
		}
		size += 2*len(o.ID) + len(o.Type) + 2*len(o.SpecVersion) + 64
	}
	// One allocation for every key and value written.
	buf := make([]byte, 0, size)
	carve := func(b []byte) []byte {
		start := len(buf)
		buf = append(buf, b...)
		return buf[start:len(buf):len(buf)]
	}
	var scratch []byte
	for i := range objs {
		o := &objs[i]
		p := &ps[i]
		p.obj, p.version = o, encodeVersion(o.Version)
		scratch = appendIDPrefix(scratch[:0], o.ID)
		n := len(scratch)
		scratch = append(scratch, p.version[:]...)
		p.vkey = carve(scratch)
		p.prefix = p.vkey[:n:n]
		p.header = carve(appendHeader(scratch[:0], 0, p.version, o.ID, o.Type, o.SpecVersion))
		scratch = append(scratch[:0], make([]byte, dateKeyLen)...)
		p.vval = carve(append(scratch, o.SpecVersion...))
		p.dk = p.vval[:dateKeyLen:dateKeyLen]
	}
	if err := s.enter(op); err != nil {
		return nil, err
	}
	defer s.leave()
	if err := ctx.Err(); err != nil {
		return nil, ctxErr(op, err)
	}
	results := make([]store.AddResult, len(objs))
	if len(objs) == 0 {
		return results, nil
	}
	err := s.update(len(objs), func(tx *bbolt.Tx) error {
		return s.add(tx, collection, ps, results)
	})
	if err != nil {
		return nil, ctigate.E(op, err)
	}
	return results, nil
}

func validCollection(name string) error {
	if name == "" {
		return errors.New("empty collection name")
	}
	if len(name) > maxIDLen {
		return errors.New("collection name too long")
	}
	return nil
}

func validObject(o *store.Object) error {
	switch {
	case o.ID == "":
		return errors.New("empty id")
	case len(o.ID) > maxIDLen:
		return errors.New("id too long")
	case len(o.Type) > maxFieldLen:
		return errors.New("type too long")
	case len(o.SpecVersion) > maxFieldLen:
		return errors.New("spec_version too long")
	case len(o.Raw) == 0:
		return errors.New("no bytes")
	case len(o.Raw) > bbolt.MaxValueSize:
		return errors.New("object too large")
	}
	return nil
}

// collectionBuckets are the sub-buckets of one collection.
type collectionBuckets struct {
	coll, index, raw, versions *bbolt.Bucket
}

func openCollection(tx *bbolt.Tx, name string) (collectionBuckets, bool) {
	coll := tx.Bucket(bucketCollections).Bucket([]byte(name))
	if coll == nil {
		return collectionBuckets{}, false
	}
	cb := collectionBuckets{
		coll:     coll,
		index:    coll.Bucket(bucketIndex),
		raw:      coll.Bucket(bucketRaw),
		versions: coll.Bucket(bucketVersions),
	}
	return cb, cb.index != nil && cb.raw != nil && cb.versions != nil
}

func createCollection(tx *bbolt.Tx, name string) (collectionBuckets, error) {
	coll, err := tx.Bucket(bucketCollections).CreateBucketIfNotExists([]byte(name))
	if err != nil {
		return collectionBuckets{}, err
	}
	cb := collectionBuckets{coll: coll}
	for _, b := range []struct {
		dst  **bbolt.Bucket
		name []byte
	}{{&cb.index, bucketIndex}, {&cb.raw, bucketRaw}, {&cb.versions, bucketVersions}} {
		if *b.dst, err = coll.CreateBucketIfNotExists(b.name); err != nil {
			return collectionBuckets{}, err
		}
	}
	// index and raw only ever grow at their end (date_added increases), so
	// full pages are best; versions takes inserts anywhere.
	cb.index.FillPercent = 1
	cb.raw.FillPercent = 1
	return cb, nil
}

// storedVersion is one entry of the versions bucket.
type storedVersion struct {
	version versionKey
	date    []byte // dateKey
	spec    []byte
}

// versionsOf appends the stored versions of the id whose idPrefix is prefix,
// in ascending version order, found with c, a cursor on the versions bucket.
// The slices alias the transaction.
func versionsOf(c *bbolt.Cursor, prefix []byte, dst []storedVersion) []storedVersion {
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		if len(k) != len(prefix)+versionKeyLen || len(v) < dateKeyLen {
			continue
		}
		var sv storedVersion
		copy(sv.version[:], k[len(prefix):])
		sv.date, sv.spec = v[:dateKeyLen], v[dateKeyLen:]
		dst = append(dst, sv)
	}
	return dst
}

// add writes one AddObjects call inside tx. It may run more than once.
//
// New versions are appended to the index and raw buckets in input order,
// which is date_added order. Their entries in the versions bucket, whose
// keys are random, are put at the end in key order: bbolt splits nodes only
// at commit, so many random inserts into a small tree would otherwise shift
// one large node quadratically. Until then the call's own new versions are
// looked up in added.
func (s *Store) add(tx *bbolt.Tx, collection string, ps []pending, results []store.AddResult) error {
	cb, err := createCollection(tx, collection)
	if err != nil {
		return err
	}
	last := int64(math.MinInt64)
	if v := cb.coll.Get(keySeq); len(v) == dateKeyLen {
		last = dateMicros(v)
	}
	now := s.clock().UnixMicro()
	// The versions bucket is not written until the end, so one cursor
	// serves every lookup.
	vc := cb.versions.Cursor()
	var (
		existing []storedVersion
		added    = make(map[string][]storedVersion) // by idPrefix, ascending
		puts     = make([]*pending, 0, len(ps))
	)
	for i := range ps {
		p := &ps[i]
		o := p.obj
		existing = versionsOf(vc, p.prefix, existing[:0])
		if more := added[string(p.prefix)]; len(more) > 0 {
			existing = mergeVersions(existing, more)
		}
		if date, ok := findVersion(existing, p.version); ok {
			results[i] = store.AddResult{DateAdded: microsTime(dateMicros(date)), Existed: true}
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
		putDateKey(p.dk, d) // also the head of p.vval
		p.header[0] = flags
		if err := cb.index.Put(p.dk, p.header); err != nil {
			return err
		}
		if err := cb.raw.Put(p.dk, o.Raw); err != nil {
			return err
		}
		sv := storedVersion{version: p.version, date: p.dk, spec: p.vval[dateKeyLen:]}
		added[string(p.prefix)] = mergeVersions(added[string(p.prefix)], []storedVersion{sv})
		puts = append(puts, p)
		results[i] = store.AddResult{DateAdded: microsTime(d)}
	}
	slices.SortFunc(puts, func(a, b *pending) int { return bytes.Compare(a.vkey, b.vkey) })
	for _, p := range puts {
		if err := cb.versions.Put(p.vkey, p.vval); err != nil {
			return err
		}
	}
	return cb.coll.Put(keySeq, dateKey(last))
}

// mergeVersions merges two ascending lists of versions into a new one.
func mergeVersions(a, b []storedVersion) []storedVersion {
	out := make([]storedVersion, 0, len(a)+len(b))
	for len(a) > 0 && len(b) > 0 {
		if bytes.Compare(a[0].version[:], b[0].version[:]) <= 0 {
			out, a = append(out, a[0]), a[1:]
		} else {
			out, b = append(out, b[0]), b[1:]
		}
	}
	return append(append(out, a...), b...)
}

func findVersion(vs []storedVersion, v versionKey) ([]byte, bool) {
	for _, sv := range vs {
		if sv.version == v {
			return sv.date, true
		}
	}
	return nil, false
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
func setFlags(index *bbolt.Bucket, date []byte, set, clear byte) error {
	v := index.Get(date)
	if len(v) == 0 {
		return errCorrupt
	}
	f := v[0]&^clear | set
	if f == v[0] {
		return nil
	}
	nv := bytes.Clone(v)
	nv[0] = f
	// date aliases the transaction's memory, which a Put may move.
	return index.Put(bytes.Clone(date), nv)
}
