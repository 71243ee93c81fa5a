package bolt

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"time"

	"go.etcd.io/bbolt"

	"github.com/ctigate/ctigate"
	"github.com/ctigate/ctigate/store"
)

// The decision record. bucketDecisions maps Seq (8 bytes, big-endian) to
// the encoded decision (decisionFormat); it is append-only, and its bbolt
// sequence is the last Seq assigned, so Seq advances with the transaction
// that records the decision and rolls back with it. The index buckets map
// a length-prefixed object id or route name followed by Seq to nothing.
var (
	bucketDecisions        = []byte("decisions")
	bucketDecisionsByObjID = []byte("decisions-by-object")
	bucketDecisionsByRoute = []byte("decisions-by-route")
)

// decisionFormat is the first byte of an encoded decision. Format 1 is,
// after it: Time and ObjectVersion as int64 Unix nanoseconds (big-endian;
// math.MinInt64 for the zero time), then OriginalSHA256 and PublishedSHA256
// (32 bytes each), then Route, Collection, PolicyVersion, ObjectID, Source,
// Action, Reason and Detail as uvarint-length-prefixed strings, then the
// number of Removed entries (uvarint) and each as a prefixed string.
const decisionFormat = 1

func appendTime(b []byte, t time.Time) []byte {
	n := int64(math.MinInt64)
	if !t.IsZero() {
		n = t.UnixNano()
	}
	return binary.BigEndian.AppendUint64(b, uint64(n))
}

func encodeDecision(d *store.Decision) []byte {
	strs := []string{d.Route, d.Collection, d.PolicyVersion, d.ObjectID, d.Source, d.Action, d.Reason, d.Detail}
	n := 1 + 16 + 64 + binary.MaxVarintLen64
	for _, s := range strs {
		n += binary.MaxVarintLen64 + len(s)
	}
	for _, s := range d.Removed {
		n += binary.MaxVarintLen64 + len(s)
	}
	b := make([]byte, 0, n)
	b = append(b, decisionFormat)
	b = appendTime(b, d.Time)
	b = appendTime(b, d.ObjectVersion)
	b = append(b, d.OriginalSHA256[:]...)
	b = append(b, d.PublishedSHA256[:]...)
	for _, s := range strs {
		b = appendString(b, s)
	}
	b = binary.AppendUvarint(b, uint64(len(d.Removed)))
	for _, s := range d.Removed {
		b = appendString(b, s)
	}
	return b
}

// decisionReader reads the fields of an encoded decision.
type decisionReader struct {
	b   []byte
	bad bool
}

func (r *decisionReader) time() time.Time {
	if len(r.b) < 8 {
		r.bad = true
		return time.Time{}
	}
	n := int64(binary.BigEndian.Uint64(r.b))
	r.b = r.b[8:]
	if n == math.MinInt64 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

func (r *decisionReader) hash() (h [32]byte) {
	if len(r.b) < 32 {
		r.bad = true
		return h
	}
	copy(h[:], r.b)
	r.b = r.b[32:]
	return h
}

func (r *decisionReader) uvarint() uint64 {
	n, k := binary.Uvarint(r.b)
	if k <= 0 {
		r.bad = true
		return 0
	}
	r.b = r.b[k:]
	return n
}

func (r *decisionReader) string() string {
	n := r.uvarint()
	if r.bad || n > uint64(len(r.b)) {
		r.bad = true
		return ""
	}
	s := string(r.b[:n])
	r.b = r.b[n:]
	return s
}

func decodeDecision(seq uint64, v []byte) (store.Decision, error) {
	if len(v) == 0 || v[0] != decisionFormat {
		return store.Decision{}, errCorrupt
	}
	r := &decisionReader{b: v[1:]}
	d := store.Decision{Seq: seq, Time: r.time(), ObjectVersion: r.time(), OriginalSHA256: r.hash(), PublishedSHA256: r.hash()}
	d.Route, d.Collection, d.PolicyVersion, d.ObjectID = r.string(), r.string(), r.string(), r.string()
	d.Source, d.Action, d.Reason, d.Detail = r.string(), r.string(), r.string(), r.string()
	n := r.uvarint()
	if n > uint64(len(r.b)) {
		r.bad = true
	}
	for i := uint64(0); i < n && !r.bad; i++ {
		d.Removed = append(d.Removed, r.string())
	}
	if r.bad || len(r.b) != 0 {
		return store.Decision{}, fmt.Errorf("decision %d: %w", seq, errCorrupt)
	}
	return d, nil
}

// indexKey is a length-prefixed name followed by seq; with seq 0 it is the
// prefix every key of name starts with, and the first of them.
func indexKey(name string, seq uint64) []byte {
	k := binary.AppendUvarint(make([]byte, 0, binary.MaxVarintLen64+len(name)+8), uint64(len(name)))
	k = append(k, name...)
	return binary.BigEndian.AppendUint64(k, seq)
}

func seqKey(seq uint64) []byte { return binary.BigEndian.AppendUint64(nil, seq) }

// encodeDecisions validates and encodes decisions outside the write
// transaction; those with a zero Time get now.
func encodeDecisions(ds []store.Decision, now time.Time) ([][]byte, error) {
	enc := make([][]byte, len(ds))
	for i := range ds {
		d := ds[i]
		if err := d.Validate(); err != nil {
			return nil, fmt.Errorf("decision %d: %v", i, err)
		}
		if d.Time.IsZero() {
			d.Time = now
		}
		enc[i] = encodeDecision(&d)
	}
	return enc, nil
}

// recordDecisions appends the encoded decisions enc (of ds) to the record
// in tx, numbering them from the record's sequence. It may run more than
// once: the transaction's rollback undoes the sequence with the records.
func recordDecisions(tx *bbolt.Tx, ds []store.Decision, enc [][]byte) error {
	b := tx.Bucket(bucketDecisions)
	byObj := tx.Bucket(bucketDecisionsByObjID)
	byRoute := tx.Bucket(bucketDecisionsByRoute)
	b.FillPercent = 1 // only ever grows at its end
	for i := range ds {
		seq, err := b.NextSequence()
		if err != nil {
			return err
		}
		if err := b.Put(seqKey(seq), enc[i]); err != nil {
			return err
		}
		if err := byObj.Put(indexKey(ds[i].ObjectID, seq), nil); err != nil {
			return err
		}
		if err := byRoute.Put(indexKey(ds[i].Route, seq), nil); err != nil {
			return err
		}
	}
	return nil
}

// Decisions returns recorded decisions matching q in Seq order.
func (s *Store) Decisions(ctx context.Context, q store.DecisionQuery) ([]store.Decision, error) {
	const op = "bolt.Decisions"
	if len(q.ObjectID) > maxIDLen || len(q.Route) > maxIDLen {
		return nil, ctigate.E(op, ctigate.Invalid, "object id or route name too long")
	}
	limit := q.Limit
	if limit <= 0 {
		limit = store.DefaultDecisionLimit
	}
	limit = min(limit, store.MaxDecisionLimit)
	if err := s.enter(op); err != nil {
		return nil, err
	}
	defer s.leave()
	if err := ctx.Err(); err != nil {
		return nil, ctxErr(op, err)
	}
	var out []store.Decision
	err := s.db.View(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketDecisions)
		match := func(d *store.Decision) bool {
			return (q.ObjectID == "" || d.ObjectID == q.ObjectID) && (q.Route == "" || d.Route == q.Route)
		}
		take := func(seq uint64, v []byte) (bool, error) {
			if v == nil {
				return false, errCorrupt
			}
			d, err := decodeDecision(seq, v)
			if err != nil {
				return false, err
			}
			if match(&d) {
				out = append(out, d)
			}
			return len(out) < limit, nil
		}
		if q.After == ^uint64(0) {
			return nil
		}
		// Walk an index when the query names an object or a route (the
		// object's is the narrower), else the record itself.
		var idx *bbolt.Bucket
		var name string
		switch {
		case q.ObjectID != "":
			idx, name = tx.Bucket(bucketDecisionsByObjID), q.ObjectID
		case q.Route != "":
			idx, name = tx.Bucket(bucketDecisionsByRoute), q.Route
		}
		if idx == nil {
			c := b.Cursor()
			for k, v := c.Seek(seqKey(q.After + 1)); k != nil; k, v = c.Next() {
				more, err := take(binary.BigEndian.Uint64(k), v)
				if err != nil || !more {
					return err
				}
			}
			return nil
		}
		prefix := indexKey(name, 0)
		prefix = prefix[:len(prefix)-8]
		c := idx.Cursor()
		for k, _ := c.Seek(indexKey(name, q.After+1)); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
			if len(k) != len(prefix)+8 {
				return errCorrupt
			}
			seq := binary.BigEndian.Uint64(k[len(prefix):])
			more, err := take(seq, b.Get(seqKey(seq)))
			if err != nil || !more {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, ctigate.E(op, err)
	}
	return out, nil
}
