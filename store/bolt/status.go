package bolt

import (
	"context"
	"encoding/binary"
	"errors"
	"time"

	"go.etcd.io/bbolt"

	"github.com/ctigate/ctigate"
	"github.com/ctigate/ctigate/store"
)

// Statuses are stored in a compact binary form. A status of an envelope of
// 500 objects lists 500 successes whose message is the same and whose ids
// and versions have a fixed shape; as JSON that was about 54 KiB, here it is
// about 14 KiB:
//
//	status   format, [expires], str ID, str APIRoot, str Collection,
//	         str Owner, str Status, varint Unix seconds, uvarint
//	         nanoseconds, varint TotalCount, list Successes, list Failures,
//	         list Pendings
//	format   statusFormat (no expiry) or statusFormatExpires
//	expires  with statusFormatExpires only: Expires as varint Unix
//	         seconds, uvarint nanoseconds
//	list     uvarint n; if n > 0: str common message, then n details
//	detail   byte h, id, version, [str message unless h&detailCommonMsg]
//	id       h&detailIDMask: detailIDString: str id;
//	         detailIDSameType: 16-byte UUID, type as the previous id's;
//	         detailIDNewType: str type, 16-byte UUID
//	version  h>>detailVersionShift: versionString: str version;
//	         versionEmpty: nothing; versionTime+k: a UTC RFC 3339 time
//	         "YYYY-MM-DDTHH:MM:SS[.f…]Z" with k fraction digits: varint Unix
//	         seconds, uvarint fraction (k > 0)
//	str      uvarint length, bytes
//
// A compact form is used only when decoding it gives back the same string.
// A status without Expires is written in statusFormat, as statuses
// stored by earlier versions were, so those read as statuses that do not
// expire.
//
// bucketStatusExpiry indexes the statuses that expire, for the sweep
// (SweepStatuses): one empty value per status, keyed by its Expires in
// microseconds rounded up (dateKey) followed by the status id.
const (
	statusFormat        = 1
	statusFormatExpires = 2
)

var bucketStatusExpiry = []byte("status_expiry")

// expiryKey is the key of the status id in bucketStatusExpiry. Its time
// is Expires rounded up to the microsecond, so that a key at or before
// the current microsecond is always that of an expired status.
func expiryKey(expires time.Time, id string) []byte {
	micros := expires.UnixMicro()
	if expires.Nanosecond()%1000 != 0 {
		micros++
	}
	return append(dateKey(micros), id...)
}

// storedExpiry returns the Expires of a stored status, read from its
// first bytes; false when it has none.
func storedExpiry(b []byte) (time.Time, bool) {
	if len(b) == 0 || b[0] != statusFormatExpires {
		return time.Time{}, false
	}
	r := &statusReader{b: b[1:]}
	t := r.time()
	return t, r.err == nil
}

// expired reports whether a status that expires at t has expired at now.
func expired(t, now time.Time) bool { return !t.IsZero() && !now.Before(t) }

const (
	detailIDMask        = 3
	detailIDString      = 0
	detailIDSameType    = 1
	detailIDNewType     = 2
	detailCommonMsg     = 4
	detailVersionShift  = 3
	detailVersionString = 0
	detailVersionEmpty  = 1
	detailVersionTime   = 2 // + fraction digits, 0-9
)

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// encodeStatus returns the stored form of st.
func encodeStatus(st *store.Status) []byte {
	size := 64 + len(st.ID) + len(st.APIRoot) + len(st.Collection) + len(st.Owner) + len(st.Status)
	size += 32 * (len(st.Successes) + len(st.Failures) + len(st.Pendings))
	b := make([]byte, 0, size)
	if st.Expires.IsZero() {
		b = append(b, statusFormat)
	} else {
		b = append(b, statusFormatExpires)
		b = binary.AppendVarint(b, st.Expires.Unix())
		b = binary.AppendUvarint(b, uint64(st.Expires.Nanosecond()))
	}
	for _, s := range []string{st.ID, st.APIRoot, st.Collection, st.Owner, st.Status} {
		b = appendString(b, s)
	}
	ts := st.RequestTimestamp
	b = binary.AppendVarint(b, ts.Unix())
	b = binary.AppendUvarint(b, uint64(ts.Nanosecond()))
	b = binary.AppendVarint(b, int64(st.TotalCount))
	var lastType string
	for _, ds := range [][]store.StatusDetail{st.Successes, st.Failures, st.Pendings} {
		b = binary.AppendUvarint(b, uint64(len(ds)))
		if len(ds) == 0 {
			continue
		}
		common := commonMessage(ds)
		b = appendString(b, common)
		for i := range ds {
			b = appendDetail(b, &ds[i], common, &lastType)
		}
	}
	return b
}

// commonMessage returns the message most details share (the majority one
// if there is a majority).
func commonMessage(ds []store.StatusDetail) string {
	var m string
	n := 0
	for i := range ds {
		switch {
		case n == 0:
			m, n = ds[i].Message, 1
		case ds[i].Message == m:
			n++
		default:
			n--
		}
	}
	return m
}

func appendDetail(b []byte, d *store.StatusDetail, common string, lastType *string) []byte {
	at := len(b)
	b = append(b, 0)
	var h byte
	var u [16]byte
	if typ, ok := store.CutCanonicalID(d.ID, &u); ok {
		if typ == *lastType {
			h = detailIDSameType
		} else {
			h = detailIDNewType
			b = appendString(b, typ)
			*lastType = typ
		}
		b = append(b, u[:]...)
	} else {
		b = appendString(b, d.ID)
	}
	switch secs, frac, digits, ok := store.CutUTCTime(d.Version); {
	case d.Version == "":
		h |= detailVersionEmpty << detailVersionShift
	case ok:
		h |= byte(detailVersionTime+digits) << detailVersionShift
		b = binary.AppendVarint(b, secs)
		if digits > 0 {
			b = binary.AppendUvarint(b, frac)
		}
	default:
		b = appendString(b, d.Version)
	}
	if d.Message == common {
		h |= detailCommonMsg
	} else {
		b = appendString(b, d.Message)
	}
	b[at] = h
	return b
}

var errBadStatus = errors.New("corrupt status record")

// statusReader decodes the stored form.
type statusReader struct {
	b   []byte
	err error
}

func (r *statusReader) uvarint() uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.err, r.b = errBadStatus, nil
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *statusReader) varint() int64 {
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.err, r.b = errBadStatus, nil
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *statusReader) bytes(n uint64) []byte {
	if n > uint64(len(r.b)) {
		r.err, r.b = errBadStatus, nil
		return nil
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

func (r *statusReader) str() string { return string(r.bytes(r.uvarint())) }

// time reads varint Unix seconds and uvarint nanoseconds.
func (r *statusReader) time() time.Time {
	secs := r.varint()
	nanos := r.uvarint()
	if nanos >= 1e9 {
		r.err, r.b = errBadStatus, nil
	}
	return time.Unix(secs, int64(nanos)).UTC()
}

func decodeStatus(b []byte) (store.Status, error) {
	if len(b) == 0 || (b[0] != statusFormat && b[0] != statusFormatExpires) {
		return store.Status{}, errBadStatus
	}
	r := &statusReader{b: b[1:]}
	var st store.Status
	if b[0] == statusFormatExpires {
		st.Expires = r.time()
	}
	st.ID, st.APIRoot, st.Collection, st.Owner, st.Status = r.str(), r.str(), r.str(), r.str(), r.str()
	st.RequestTimestamp = r.time()
	st.TotalCount = int(r.varint())
	var lastType string
	for _, dst := range []*[]store.StatusDetail{&st.Successes, &st.Failures, &st.Pendings} {
		n := r.uvarint()
		if n == 0 || r.err != nil {
			continue
		}
		if n > uint64(len(r.b)) { // every detail takes at least a byte
			return store.Status{}, errBadStatus
		}
		common := r.str()
		ds := make([]store.StatusDetail, n)
		for i := range ds {
			if err := r.detail(&ds[i], common, &lastType); err != nil {
				return store.Status{}, err
			}
		}
		*dst = ds
	}
	if r.err != nil || len(r.b) != 0 {
		return store.Status{}, errBadStatus
	}
	return st, nil
}

func (r *statusReader) detail(d *store.StatusDetail, common string, lastType *string) error {
	hb := r.bytes(1)
	if r.err != nil {
		return r.err
	}
	h := hb[0]
	switch h & detailIDMask {
	case detailIDString:
		d.ID = r.str()
	case detailIDNewType:
		*lastType = r.str()
		fallthrough
	case detailIDSameType:
		var u [16]byte
		copy(u[:], r.bytes(16))
		d.ID = string(store.AppendCanonicalID(nil, *lastType, &u))
	default:
		return errBadStatus
	}
	switch v := int(h >> detailVersionShift); {
	case v == detailVersionString:
		d.Version = r.str()
	case v == detailVersionEmpty:
	case v >= detailVersionTime && v <= detailVersionTime+9:
		digits := v - detailVersionTime
		secs := r.varint()
		var frac uint64
		if digits > 0 {
			frac = r.uvarint()
		}
		d.Version = string(store.AppendUTCTime(nil, secs, frac, digits))
	default:
		return errBadStatus
	}
	if h&detailCommonMsg != 0 {
		d.Message = common
	} else {
		d.Message = r.str()
	}
	return r.err
}

// PutStatus creates or replaces a status resource. Its write joins the
// group commit of concurrent writes (AddObjects of other requests). A
// status with Expires is indexed by it for SweepStatuses; a replacement
// takes the place of the earlier one in that index.
func (s *Store) PutStatus(ctx context.Context, st store.Status) error {
	const op = "bolt.PutStatus"
	if err := checkStatus(&st); err != nil {
		return ctigate.E(op, ctigate.Invalid, err.Error())
	}
	if len(encodeStatus(&st)) > bbolt.MaxValueSize {
		return ctigate.E(op, ctigate.Invalid, "status too large")
	}
	if err := s.enter(op); err != nil {
		return err
	}
	defer s.leave()
	if err := ctx.Err(); err != nil {
		return ctxErr(op, err)
	}
	err := s.write(1, 0, func(w *writeTx) error { return putStatus(w.tx, st) })
	if err != nil {
		return ctigate.E(op, err)
	}
	return nil
}

func checkStatus(st *store.Status) error {
	if st.ID == "" || len(st.ID) > maxIDLen {
		return errors.New("bad status id")
	}
	return nil
}

// putStatus writes st in tx, replacing its expiry index entry.
func putStatus(tx *bbolt.Tx, st store.Status) error {
	if err := checkStatus(&st); err != nil {
		return err
	}
	b := encodeStatus(&st)
	if len(b) > bbolt.MaxValueSize {
		return errors.New("status too large")
	}
	sb, xb := tx.Bucket(bucketStatuses), tx.Bucket(bucketStatusExpiry)
	if t, ok := storedExpiry(sb.Get([]byte(st.ID))); ok {
		if err := xb.Delete(expiryKey(t, st.ID)); err != nil {
			return err
		}
	}
	if !st.Expires.IsZero() {
		if err := xb.Put(expiryKey(st.Expires, st.ID), nil); err != nil {
			return err
		}
	}
	return sb.Put([]byte(st.ID), b)
}

// Status returns a status resource; ctigate.NotFound if there is none or
// it has expired by the store's clock (whether or not SweepStatuses has
// removed it yet).
func (s *Store) Status(ctx context.Context, id string) (store.Status, error) {
	const op = "bolt.Status"
	if err := s.enter(op); err != nil {
		return store.Status{}, err
	}
	defer s.leave()
	if err := ctx.Err(); err != nil {
		return store.Status{}, ctxErr(op, err)
	}
	var st store.Status
	found := false
	err := s.db.View(func(tx *bbolt.Tx) error {
		v := tx.Bucket(bucketStatuses).Get([]byte(id))
		if v == nil {
			return nil
		}
		found = true
		var err error
		st, err = decodeStatus(v)
		return err
	})
	if err != nil {
		return store.Status{}, ctigate.E(op, err)
	}
	if !found || expired(st.Expires, s.clock()) {
		return store.Status{}, ctigate.E(op, ctigate.NotFound, "no such status")
	}
	return st, nil
}

// DefaultStatusSweepLimit is the number of statuses SweepStatuses removes
// in one write when its limit is not positive.
const DefaultStatusSweepLimit = 1000

// SweepStatuses removes the statuses that have expired by the store's
// clock, the earliest expiry first, up to limit of them
// (DefaultStatusSweepLimit when limit <= 0) in one write, and returns how
// many it removed: fewer than limit means no expired status is left. Status
// already reads an expired status as not found; the sweep frees its
// space. Statuses without Expires are never swept. The gateway runs it
// every minute (retention.StatusSweeper).
func (s *Store) SweepStatuses(ctx context.Context, limit int) (int, error) {
	const op = "bolt.SweepStatuses"
	if limit <= 0 {
		limit = DefaultStatusSweepLimit
	}
	if err := s.enter(op); err != nil {
		return 0, err
	}
	defer s.leave()
	if err := ctx.Err(); err != nil {
		return 0, ctxErr(op, err)
	}
	now := s.clock()
	through := now.UnixMicro() // expiryKey rounds up: a key through now is expired
	var n int
	err := s.write(limit, 0, func(w *writeTx) error {
		n = 0
		sb, xb := w.tx.Bucket(bucketStatuses), w.tx.Bucket(bucketStatusExpiry)
		var keys [][]byte
		c := xb.Cursor()
		for k, _ := c.First(); k != nil && len(keys) < limit; k, _ = c.Next() {
			if len(k) < dateKeyLen || dateMicros(k[:dateKeyLen]) > through {
				break
			}
			keys = append(keys, append([]byte(nil), k...))
		}
		for _, k := range keys {
			id := k[dateKeyLen:]
			// The index names the status's expiry as written: check the
			// record's own all the same.
			if t, ok := storedExpiry(sb.Get(id)); ok && expired(t, now) {
				if err := sb.Delete(id); err != nil {
					return err
				}
			}
			if err := xb.Delete(k); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	if err != nil {
		return 0, ctigate.E(op, err)
	}
	return n, nil
}
