package redis

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/ctigate/ctigate/store"
)

// Record formats, the first byte of every record. A record of format 2
// holds its date_added, so that a page is read without the members'
// scores (Redis formats each score as decimal text, which was about half
// of its CPU per record read); earlier builds wrote format 1, whose
// date_added is only its score. A record of format 3 also holds the
// version's delivery leaf (store.Object.Leaf), which this build writes
// for every version with a hash.
const (
	recordFormat     = 1 // then as encodeRecord writes
	recordFormatDA   = 2 // then the date_added (µs, 8 bytes big-endian), then as format 1 after its first byte
	recordFormatLeaf = 3 // then the date_added, then the leaf (32 bytes), then as format 1 after its first byte
)

// recordPrefix returns the length of a record's format byte, date_added
// and leaf: where format 1's fields start after its first byte, less one;
// 0 when b is no record.
func recordPrefix[T string | []byte](b T) int {
	switch {
	case len(b) > 0 && b[0] == recordFormat:
		return 1
	case len(b) >= 9 && b[0] == recordFormatDA:
		return 9
	case len(b) >= 41 && b[0] == recordFormatLeaf:
		return 41
	}
	return 0
}

// Limits on stored fields, well above what STIX produces.
const (
	maxIDLen    = 1024
	maxFieldLen = 256
)

// versionKey is a version time as 12 bytes that sort like the times:
// seconds (sign bit flipped) then nanoseconds, big-endian.
func versionKey(t time.Time) string {
	var k [12]byte
	binary.BigEndian.PutUint64(k[:8], uint64(t.Unix())^(1<<63))
	binary.BigEndian.PutUint32(k[8:], uint32(t.Nanosecond()))
	return hex.EncodeToString(k[:])
}

func versionTime(k []byte) time.Time {
	sec := int64(binary.BigEndian.Uint64(k[:8]) ^ (1 << 63))
	t := time.Unix(sec, int64(binary.BigEndian.Uint32(k[8:12]))).UTC()
	if t.IsZero() {
		return time.Time{}
	}
	return t
}

// encodeRecord returns the stored form of o: format, id, type,
// spec_version, version key, hash, producer, then the raw bytes.
func encodeRecord(o *store.Object) []byte {
	b := make([]byte, 0, 1+4*binary.MaxVarintLen16+len(o.ID)+len(o.Type)+len(o.SpecVersion)+len(o.Producer)+12+32+len(o.Raw))
	b = append(b, recordFormat)
	for _, s := range []string{o.ID, o.Type, o.SpecVersion} {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	var k [12]byte
	binary.BigEndian.PutUint64(k[:8], uint64(o.Version.Unix())^(1<<63))
	binary.BigEndian.PutUint32(k[8:], uint32(o.Version.Nanosecond()))
	b = append(b, k[:]...)
	b = append(b, o.Hash[:]...)
	b = binary.AppendUvarint(b, uint64(len(o.Producer)))
	b = append(b, o.Producer...)
	return append(b, o.Raw...)
}

// withDateAdded returns the stored form of rec (encodeRecord's) added at
// da: format 2, or format 3 with leaf when leaf is not nil.
func withDateAdded(rec []byte, da int64, leaf *[32]byte) string {
	n := 9
	if leaf != nil {
		n += len(leaf)
	}
	b := make([]byte, n, n+len(rec)-1)
	b[0] = recordFormatDA
	binary.BigEndian.PutUint64(b[1:9], uint64(da))
	if leaf != nil {
		b[0] = recordFormatLeaf
		copy(b[9:], leaf[:])
	}
	return string(append(b, rec[1:]...))
}

// recordDateAdded returns the date_added a stored record holds; ok is
// false when it holds none (format 1).
func recordDateAdded(b string) (da int64, ok bool) {
	if recordPrefix(b) < 9 {
		return 0, false
	}
	var u uint64
	for i := 1; i < 9; i++ {
		u = u<<8 | uint64(b[i])
	}
	return int64(u), true
}

var errRecord = errors.New("malformed stored record")

// decodeRecord decodes a record of any format (its date_added is
// recordDateAdded's); Raw, Hash, Leaf and Producer are set only when
// withRaw. Raw is a fresh copy, and the strings are cut from one copy of
// the record's header: what is decoded holds nothing of b, so a page
// keeps its objects' bytes once, not the records it was read from too.
func decodeRecord(b string, withRaw bool) (store.Object, error) {
	var o store.Object
	prefix := recordPrefix(b)
	if prefix == 0 {
		return o, errRecord
	}
	p := prefix
	var bounds [4][2]int // id, type, spec_version, producer: start and end in b
	for i := range 3 {
		n, w := uvarint(b[p:])
		if w <= 0 || uint64(len(b)-p-w) < n {
			return o, errRecord
		}
		bounds[i] = [2]int{p + w, p + w + int(n)}
		p += w + int(n)
	}
	if len(b)-p < 44 {
		return o, errRecord
	}
	vk := p
	end := p + 12 // the header ends after the version key, or after the producer
	if withRaw {
		q := p + 44
		n, w := uvarint(b[q:])
		if w <= 0 || uint64(len(b)-q-w) < n {
			return o, errRecord
		}
		bounds[3] = [2]int{q + w, q + w + int(n)}
		end = bounds[3][1]
	}
	h := strings.Clone(b[:end])
	o.ID, o.Type, o.SpecVersion = h[bounds[0][0]:bounds[0][1]], h[bounds[1][0]:bounds[1][1]], h[bounds[2][0]:bounds[2][1]]
	o.Version = versionTime([]byte(h[vk : vk+12]))
	if !withRaw {
		return o, nil
	}
	copy(o.Hash[:], h[vk+12:vk+44])
	if b[0] == recordFormatLeaf {
		copy(o.Leaf[:], b[9:prefix])
	}
	o.Producer = h[bounds[3][0]:bounds[3][1]]
	o.Raw = []byte(b[end:])
	return o, nil
}

// uvarint is binary.Uvarint over a string.
func uvarint(s string) (uint64, int) {
	var x uint64
	var sh uint
	for i := 0; i < len(s) && i < binary.MaxVarintLen64; i++ {
		c := s[i]
		if c < 0x80 {
			return x | uint64(c)<<sh, i + 1
		}
		x |= uint64(c&0x7f) << sh
		sh += 7
	}
	return 0, 0
}

// recordHash returns the hash in a record of any format, zero when
// malformed.
func recordHash(b []byte) [32]byte {
	var h [32]byte
	n := recordPrefix(b)
	if n == 0 {
		return h
	}
	p := b[n:]
	for range 3 {
		n, w := binary.Uvarint(p)
		if w <= 0 || uint64(len(p)-w) < n {
			return h
		}
		p = p[w+int(n):]
	}
	if len(p) >= 44 {
		copy(h[:], p[12:44])
	}
	return h
}

// versionEntry is one entry of an id's version list (key :n).
type versionEntry struct {
	da      int64  // date_added, µs
	version string // versionKey
	spec    string
	// mistyped: the version's type is not its id's prefix (not STIX: the
	// gateway validates that they agree), so a read of the type needs
	// the record. Written as ",t" after the spec.
	mistyped bool
}

// idType returns the type an id names (what precedes its "--"), "" when
// it names none.
func idType(id string) string {
	if t, _, ok := strings.Cut(id, "--"); ok {
		return t
	}
	return ""
}

// listSpec is what a version list holds after the version key: the
// spec_version, then ",t" when the type is not the id's prefix.
func listSpec(o *store.Object) string {
	if o.Type != idType(o.ID) || o.Type == "" {
		return o.SpecVersion + ",t"
	}
	return o.SpecVersion
}

// parseVersions parses "da,version,spec;" entries (spec as listSpec
// writes it).
func parseVersions(s string) []versionEntry {
	var out []versionEntry
	for s != "" {
		e, rest, ok := strings.Cut(s, ";")
		if !ok {
			break
		}
		s = rest
		da, e2, ok1 := strings.Cut(e, ",")
		ver, spec, ok2 := strings.Cut(e2, ",")
		n, err := strconv.ParseInt(da, 10, 64)
		if !ok1 || !ok2 || err != nil {
			continue
		}
		spec, flag, _ := strings.Cut(spec, ",")
		out = append(out, versionEntry{da: n, version: ver, spec: spec, mistyped: flag == "t"})
	}
	return out
}

func formatVersions(es []versionEntry) string {
	var b strings.Builder
	for _, e := range es {
		b.WriteString(strconv.FormatInt(e.da, 10))
		b.WriteByte(',')
		b.WriteString(e.version)
		b.WriteByte(',')
		b.WriteString(e.spec)
		if e.mistyped {
			b.WriteString(",t")
		}
		b.WriteByte(';')
	}
	return b.String()
}

// Cursors: base64url (no padding) of a format byte and the date_added of
// the last version returned, in µs.
const cursorFormat = 1

func encodeCursor(da int64) string {
	var b [9]byte
	b[0] = cursorFormat
	binary.BigEndian.PutUint64(b[1:], uint64(da))
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func decodeCursor(s string) (int64, bool) {
	if len(s) != 12 {
		return 0, false
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(s)
	if err != nil || len(b) != 9 || b[0] != cursorFormat {
		return 0, false
	}
	return int64(binary.BigEndian.Uint64(b[1:])), true
}

func microTime(us int64) time.Time { return time.UnixMicro(us).UTC() }
