package bolt

import (
	"encoding/base64"
	"encoding/binary"
	"errors"
	"math"
	"time"
)

// Keys and values are binary and ordered so that bbolt's byte-wise key order
// is the order the store needs.
//
//	dateKey     8 bytes: date_added in microseconds since the Unix epoch,
//	            int64 with the sign bit flipped, big-endian.
//	versionKey  12 bytes: Version as Unix seconds (int64, sign bit flipped,
//	            big-endian) followed by nanoseconds (uint32, big-endian), so
//	            any instant of any year and precision sorts correctly.
//
// Collection sub-buckets: index, then body (body.go) in collections
// created by this build, or raw, producer and hash in collections created
// by earlier ones:
//
//	index    dateKey -> header (flags, versionKey, id, type, spec_version)
//	body     dateKey -> hash value, producer and original bytes (body.go)
//	raw      dateKey -> the producer's original bytes
//	producer dateKey -> the submitting organisation, when the writer gave one
//	hash     dateKey -> SHA-256 of the canonical form (32 bytes), when the
//	         writer gave one; absent for versions written before it existed;
//	         followed (hashValueLen bytes) by the version's delivery leaf
//	         (custody.PageLeaves.Leaf with the hash, under the file's
//	         delivery key) in versions this build wrote, so that a page's
//	         delivery record hashes no item (store.Object.Leaf)
//
// All are keyed by date_added only, so writes append; the id -> versions
// lookup is kept in memory (keydir.go). Format 1 files also had a versions
// bucket (uvarint(len(id)) || id || versionKey -> dateKey || spec_version),
// which Open drops.
const (
	dateKeyLen    = 8
	versionKeyLen = 12
	hashValueLen  = 64
)

// Header flags. They let a date_added scan decide match[version]=first/last
// without looking at the object's other versions.
const (
	flagNotLast   byte = 1 << iota // a newer version of the id is stored
	flagNotFirst                   // an older version of the id is stored
	flagMixedSpec                  // the id's versions differ in spec_version
)

const signBit = 1 << 63

func putDateKey(b []byte, micros int64) { binary.BigEndian.PutUint64(b, uint64(micros)^signBit) }

func dateKey(micros int64) []byte {
	b := make([]byte, dateKeyLen)
	putDateKey(b, micros)
	return b
}

func dateMicros(b []byte) int64 { return int64(binary.BigEndian.Uint64(b) ^ signBit) }

func microsTime(micros int64) time.Time { return time.UnixMicro(micros).UTC() }

type versionKey [versionKeyLen]byte

func encodeVersion(t time.Time) versionKey {
	var k versionKey
	binary.BigEndian.PutUint64(k[:8], uint64(t.Unix())^signBit)
	binary.BigEndian.PutUint32(k[8:], uint32(t.Nanosecond()))
	return k
}

func (k versionKey) time() time.Time {
	sec := int64(binary.BigEndian.Uint64(k[:8]) ^ signBit)
	return time.Unix(sec, int64(binary.BigEndian.Uint32(k[8:]))).UTC()
}

// header is the decoded index value of one stored version. Its byte slices
// alias the transaction's memory.
type header struct {
	flags   byte
	version versionKey
	id      []byte
	typ     []byte
	spec    []byte
}

func appendHeader(b []byte, flags byte, v versionKey, id, typ, spec string) []byte {
	b = append(b, flags)
	b = append(b, v[:]...)
	b = binary.AppendUvarint(b, uint64(len(id)))
	b = append(b, id...)
	b = binary.AppendUvarint(b, uint64(len(typ)))
	b = append(b, typ...)
	return append(b, spec...)
}

var errCorrupt = errors.New("corrupt index entry")

func decodeHeader(b []byte) (header, error) {
	var h header
	if len(b) < 1+versionKeyLen {
		return h, errCorrupt
	}
	h.flags = b[0]
	copy(h.version[:], b[1:1+versionKeyLen])
	b = b[1+versionKeyLen:]
	var ok bool
	if h.id, b, ok = lenPrefixed(b); !ok {
		return h, errCorrupt
	}
	if h.typ, b, ok = lenPrefixed(b); !ok {
		return h, errCorrupt
	}
	h.spec = b
	return h, nil
}

// headerID returns the id of an index value without decoding the rest.
func headerID(b []byte) ([]byte, bool) {
	if len(b) < 1+versionKeyLen {
		return nil, false
	}
	id, _, ok := lenPrefixed(b[1+versionKeyLen:])
	return id, ok
}

func lenPrefixed(b []byte) (field, rest []byte, ok bool) {
	n, w := binary.Uvarint(b)
	if w <= 0 || n > uint64(len(b)-w) {
		return nil, nil, false
	}
	b = b[w:]
	return b[:n], b[n:], true
}

// Cursors (Page.Next) are base64url without padding of a format byte and the
// dateKey of the last version returned. date_added is unique within a
// collection, so that position alone is a stable keyset cursor: it survives
// restarts and stays valid while objects are added or deleted.
const (
	cursorFormat  = 1
	cursorRawLen  = 1 + dateKeyLen
	cursorTextLen = (cursorRawLen*8 + 5) / 6
)

var cursorEncoding = base64.RawURLEncoding.Strict()

func encodeCursor(micros int64) string {
	var b [cursorRawLen]byte
	b[0] = cursorFormat
	putDateKey(b[1:], micros)
	return cursorEncoding.EncodeToString(b[:])
}

func decodeCursor(s string) (micros int64, ok bool) {
	if len(s) != cursorTextLen {
		return 0, false
	}
	var b [cursorRawLen]byte
	n, err := cursorEncoding.Decode(b[:], []byte(s))
	if err != nil || n != cursorRawLen || b[0] != cursorFormat {
		return 0, false
	}
	micros = dateMicros(b[1:])
	if micros == math.MaxInt64 || micros == math.MinInt64 {
		return 0, false // never assigned: the store reserves both ends
	}
	return micros, true
}
