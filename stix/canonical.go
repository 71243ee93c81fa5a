package stix

import (
	"crypto/sha256"
	"encoding/binary"
	"math"
	"math/bits"
	"slices"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/ctigate/ctigate"
)

// Canonical returns the RFC 8785 (JSON Canonicalization Scheme, JCS) form
// of the JSON text raw: no whitespace, object members sorted by the UTF-16
// code units of their names, strings with only the escapes JCS requires,
// numbers written as ECMAScript's Number.prototype.toString writes the
// IEEE 754 double they denote. raw is not modified; the result is a new
// slice.
//
// raw must be exactly one JSON value (RFC 8259), with optional surrounding
// whitespace, within the I-JSON subset RFC 8785 §3.1 requires. Canonical
// fails, with a *ctigate.Error of kind Invalid naming the byte offset and
// the path of the problem, when raw
//
//   - is not valid JSON, or holds more than 10,000 nested arrays and objects;
//   - holds invalid UTF-8, or a string escape that is a lone surrogate
//     ("\ud800"): strings must be Unicode text;
//   - repeats a member name within one object, also when the two names are
//     spelled differently ("id" and "\u0069d"): a reader could take either
//     value, so no canonical form exists;
//   - holds a number that is not a finite IEEE 754 double (1e400): ECMAScript
//     reads it as Infinity, which JSON cannot express.
//
// As RFC 8785 specifies, every number is read as the nearest double, so
// integers beyond 2⁵³ lose precision (9007199254740993 and 9007199254740992
// have the same canonical form, 9007199254740992), -0 becomes 0, and
// numbers too small for a double become 0.
//
// Canonical implements JCS itself rather than calling
// jsontext.Value.Canonicalize of github.com/go-json-experiment/json, which
// agrees with it on everything but numbers beyond the double range: the
// library writes 1e400 as 1.7976931348623157e+308 (the largest double), so
// two different documents would share a canonical form and a hash. It is
// also more than twice as fast on STIX objects (BenchmarkHash,
// BenchmarkHashLibrary).
func Canonical(raw []byte) ([]byte, error) {
	s := getJCS(true)
	defer putJCS(s)
	if err := s.run(raw); err != nil {
		return nil, err.public()
	}
	return append([]byte(nil), s.out...), nil
}

// Hash returns the SHA-256 digest of the canonical form of raw (see
// Canonical), the content hash the custody ledger records: two texts that
// differ only in whitespace, member order or escaping have the same hash.
func Hash(raw []byte) ([32]byte, error) {
	s := getJCS(true)
	defer putJCS(s)
	if err := s.run(raw); err != nil {
		return [32]byte{}, err.public()
	}
	return sha256.Sum256(s.out), nil
}

// jcsMaxDepth bounds the nesting of arrays and objects, as jsontext does.
const jcsMaxDepth = 10000

// jcs is a strict, single-pass JSON scanner. It validates one JSON text
// (grammar, UTF-8, surrogates, unique member names, finite numbers) and,
// when emit is set, writes its RFC 8785 canonical form to out. Its buffers
// are reused from one call to the next (see getJCS).
type jcs struct {
	in    []byte
	out   []byte // the canonical form, when emit
	emit  bool
	depth int

	// members holds the members of the objects being scanned, as a
	// stack: an object pushes its own on top of its ancestors' and pops
	// them when it ends. names holds the names that had escapes, unescaped
	// (the others are read from the input), the same way.
	members []jcsMember
	names   []byte
	name    []byte // the name str scanned last
	tmp     []byte // scratch for reordering members

	// When capture is set, top receives the values of the top-level
	// members Resolve reads (see topMembers).
	capture bool
	top     topMembers
	// With capture, got[j] receives the value of the top-level member
	// named want[j] (see ResolveMembers).
	want  []string
	got   [][]byte
	order []jcsOrder // scratch for sorting members
}

// jcsOrder is a member in the sort: its key (see jcsMember.key) and index.
type jcsOrder struct {
	key uint64
	i   int
}

// jcsMember is one member of an object being scanned.
type jcsMember struct {
	name []byte // unescaped
	// key orders names quickly: the first eight bytes of the name, big
	// endian and zero-padded, when they are all ASCII (where byte order is
	// UTF-16 order); 0 otherwise. Names whose keys are both non-zero and
	// differ compare as their keys do.
	key        uint64
	start, end int // its canonical form `"name":value`: out[start:end]
	off        int // the input offset of its name
}

// topMembers captures the raw values of a few members of the top-level
// object, as sub-slices of the input, nil when absent. Only members listed
// in topMemberIndex are kept.
type topMembers [numTopMembers][]byte

// The top-level members Resolve reads.
const (
	topID = iota
	topObjectMarkingRefs
	topGranularMarkings
	numTopMembers
)

// topMemberIndex returns which top-level member the unescaped name is, or
// -1.
func topMemberIndex(name []byte) int {
	switch string(name) {
	case "id":
		return topID
	case "object_marking_refs":
		return topObjectMarkingRefs
	case "granular_markings":
		return topGranularMarkings
	}
	return -1
}

var jcsPool = sync.Pool{New: func() any { return new(jcs) }}

// getJCS returns a scanner from the pool, set to write the canonical form
// or only to validate.
func getJCS(emit bool) *jcs {
	s := jcsPool.Get().(*jcs)
	s.emit = emit
	return s
}

// putJCS returns s to the pool, unless it grew large.
func putJCS(s *jcs) {
	const maxKeep = 1 << 20
	if cap(s.out) > maxKeep || cap(s.tmp) > maxKeep || cap(s.names) > maxKeep || cap(s.members) > maxKeep/32 {
		return
	}
	s.in, s.name, s.capture, s.top, s.want, s.got = nil, nil, false, topMembers{}, nil, nil
	clear(s.members[:cap(s.members)]) // drop references to inputs
	jcsPool.Put(s)
}

// jsonError is a problem found by the scanner: its message, the input
// offset, and the path to it, built while the recursion unwinds
// (innermost component first).
type jsonError struct {
	off      int
	msg      string
	path     []string
	rangeErr bool // a number beyond the double range (where jsontext differs)
}

// pathString renders the path as "a.b[2].c".
func (e *jsonError) pathString() string {
	var b strings.Builder
	for i := len(e.path) - 1; i >= 0; i-- {
		c := e.path[i]
		if i < len(e.path)-1 && !strings.HasPrefix(c, "[") {
			b.WriteByte('.')
		}
		b.WriteString(c)
	}
	return b.String()
}

// message is the error's text, as Canonical reports it.
func (e *jsonError) message() string {
	if p := e.pathString(); p != "" {
		return "invalid JSON at byte offset " + strconv.Itoa(e.off) + " (in " + strconv.Quote(p) + "): " + e.msg
	}
	return "invalid JSON at byte offset " + strconv.Itoa(e.off) + ": " + e.msg
}

// public returns the error Canonical and Hash report: Invalid, with a
// message safe to show to the producer.
func (e *jsonError) public() error {
	return ctigate.Errorf(ctigate.Invalid, "%s", e.message())
}

// run scans in, which must be one JSON value with optional surrounding
// whitespace. On success out holds its canonical form (when emit).
func (s *jcs) run(in []byte) *jsonError {
	s.in = in
	s.out = s.out[:0]
	s.names = s.names[:0]
	s.members = s.members[:0]
	s.depth = 0
	i := s.space(0)
	if i == len(in) {
		return &jsonError{off: i, msg: "empty input: expected a JSON value"}
	}
	i, err := s.value(i)
	if err != nil {
		return err
	}
	if i = s.space(i); i != len(in) {
		return &jsonError{off: i, msg: "trailing data after the JSON value"}
	}
	return nil
}

// space returns the offset of the first non-whitespace byte at or after i.
func (s *jcs) space(i int) int {
	for i < len(s.in) {
		switch s.in[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// value scans the value that starts at in[i] (not whitespace) and returns
// the offset just past it.
func (s *jcs) value(i int) (int, *jsonError) {
	if i >= len(s.in) {
		return i, errEOF(i)
	}
	switch c := s.in[i]; c {
	case '{':
		return s.object(i)
	case '[':
		return s.array(i)
	case '"':
		return s.str(i, false)
	case 't':
		return s.literal(i, "true")
	case 'f':
		return s.literal(i, "false")
	case 'n':
		return s.literal(i, "null")
	default:
		if c == '-' || '0' <= c && c <= '9' {
			return s.number(i)
		}
		return i, s.badChar(i, "at the start of a value")
	}
}

func errEOF(i int) *jsonError {
	return &jsonError{off: i, msg: "unexpected end of input"}
}

// badChar reports an unexpected byte at in[i].
func (s *jcs) badChar(i int, where string) *jsonError {
	if i >= len(s.in) {
		return errEOF(i)
	}
	c := s.in[i]
	if c < utf8.RuneSelf {
		return &jsonError{off: i, msg: "invalid character " + strconv.QuoteRune(rune(c)) + " " + where}
	}
	r, _ := utf8.DecodeRune(s.in[i:])
	if r == utf8.RuneError {
		return &jsonError{off: i, msg: "invalid UTF-8 " + where}
	}
	return &jsonError{off: i, msg: "invalid character " + strconv.QuoteRune(r) + " " + where}
}

// literal scans true, false or null.
func (s *jcs) literal(i int, lit string) (int, *jsonError) {
	if len(s.in)-i < len(lit) || string(s.in[i:i+len(lit)]) != lit {
		for k := 0; k < len(lit); k++ {
			if i+k >= len(s.in) {
				return i + k, errEOF(i + k)
			}
			if s.in[i+k] != lit[k] {
				return i + k, s.badChar(i+k, "in literal "+lit)
			}
		}
	}
	if s.emit {
		s.out = append(s.out, lit...)
	}
	return i + len(lit), nil
}

// array scans the array that starts at in[i].
func (s *jcs) array(i int) (int, *jsonError) {
	if s.depth++; s.depth > jcsMaxDepth {
		return i, &jsonError{off: i, msg: "arrays and objects nested too deeply (more than 10000 levels)"}
	}
	if s.emit {
		s.out = append(s.out, '[')
	}
	i = s.space(i + 1)
	if i < len(s.in) && s.in[i] == ']' {
		if s.emit {
			s.out = append(s.out, ']')
		}
		s.depth--
		return i + 1, nil
	}
	for n := 0; ; n++ {
		var err *jsonError
		if i, err = s.value(i); err != nil {
			err.path = append(err.path, "["+strconv.Itoa(n)+"]")
			return i, err
		}
		i = s.space(i)
		if i >= len(s.in) {
			return i, errEOF(i)
		}
		switch s.in[i] {
		case ',':
			if s.emit {
				s.out = append(s.out, ',')
			}
			i = s.space(i + 1)
		case ']':
			if s.emit {
				s.out = append(s.out, ']')
			}
			s.depth--
			return i + 1, nil
		default:
			return i, s.badChar(i, "after an array element: expected ',' or ']'")
		}
	}
}

// object scans the object that starts at in[i], sorts its members and
// rejects repeated names.
func (s *jcs) object(i int) (int, *jsonError) {
	if s.depth++; s.depth > jcsMaxDepth {
		return i, &jsonError{off: i, msg: "arrays and objects nested too deeply (more than 10000 levels)"}
	}
	outStart := len(s.out)
	if s.emit {
		s.out = append(s.out, '{')
	}
	base, namesBase := len(s.members), len(s.names)
	i = s.space(i + 1)
	if i < len(s.in) && s.in[i] == '}' {
		if s.emit {
			s.out = append(s.out, '}')
		}
		s.depth--
		return i + 1, nil
	}
	for {
		if i >= len(s.in) {
			return i, errEOF(i)
		}
		if s.in[i] != '"' {
			return i, s.badChar(i, "where a member name was expected")
		}
		m := jcsMember{start: len(s.out), off: i}
		var err *jsonError
		if i, err = s.str(i, true); err != nil {
			return i, err
		}
		m.name = s.name
		m.key = nameKey(m.name)
		if i = s.space(i); i >= len(s.in) || s.in[i] != ':' {
			return i, s.badChar(i, "after a member name: expected ':'")
		}
		if s.emit {
			s.out = append(s.out, ':')
		}
		valStart := s.space(i + 1)
		if i, err = s.value(valStart); err != nil {
			err.path = append(err.path, string(m.name))
			return i, err
		}
		if s.capture && s.depth == 1 {
			if k := topMemberIndex(m.name); k >= 0 {
				s.top[k] = s.in[valStart:i]
			}
			for j, w := range s.want {
				if string(m.name) == w {
					s.got[j] = s.in[valStart:i]
					break
				}
			}
		}
		m.end = len(s.out)
		s.members = append(s.members, m)

		i = s.space(i)
		if i >= len(s.in) {
			return i, errEOF(i)
		}
		if c := s.in[i]; c == ',' {
			if s.emit {
				s.out = append(s.out, ',')
			}
			i = s.space(i + 1)
			continue
		} else if c != '}' {
			return i, s.badChar(i, "after an object member: expected ',' or '}'")
		}
		i++
		break
	}
	if err := s.sortMembers(outStart, base); err != nil {
		return i, err
	}
	if s.emit {
		s.out = append(s.out, '}')
	}
	s.members = s.members[:base]
	s.names = s.names[:namesBase]
	s.depth--
	return i, nil
}

// sortMembers puts the members of the object just scanned, members[base:],
// in RFC 8785 order (by the UTF-16 code units of their names), rejects a
// name that appears twice, and rewrites the object's canonical form from
// out[outStart] on in that order.
func (s *jcs) sortMembers(outStart, base int) *jsonError {
	ms := s.members[base:]
	sorted := true
	for k := 1; k < len(ms); k++ {
		if compareMembers(&ms[k-1], &ms[k]) >= 0 {
			sorted = false
			break
		}
	}
	if sorted {
		return nil
	}
	// Sort (key, index) pairs: by insertion for the dozen or two members
	// of a STIX object, in O(n log n) for large objects.
	order := s.order[:0]
	for k := range ms {
		order = append(order, jcsOrder{ms[k].key, k})
	}
	s.order = order
	less := func(a, b jcsOrder) int {
		if a.key != b.key && a.key != 0 && b.key != 0 {
			if a.key < b.key {
				return -1
			}
			return 1
		}
		return compareUTF16(ms[a.i].name, ms[b.i].name)
	}
	if len(order) <= 32 {
		for k := 1; k < len(order); k++ {
			o := order[k]
			j := k
			for ; j > 0 && less(order[j-1], o) > 0; j-- {
				order[j] = order[j-1]
			}
			order[j] = o
		}
	} else {
		slices.SortFunc(order, less)
	}
	for k := 1; k < len(order); k++ {
		if less(order[k-1], order[k]) == 0 {
			second := ms[order[k].i]
			if first := ms[order[k-1].i]; first.off > second.off {
				second = first
			}
			return &jsonError{
				off:  second.off,
				msg:  "duplicate member name",
				path: []string{string(second.name)},
			}
		}
	}
	if !s.emit {
		return nil
	}
	// The members sit in out, in input order, separated by commas: copy
	// them aside and write them back in order.
	from := outStart + 1
	s.tmp = append(s.tmp[:0], s.out[from:]...)
	s.out = s.out[:from]
	for k, o := range order {
		if k > 0 {
			s.out = append(s.out, ',')
		}
		m := &ms[o.i]
		s.out = append(s.out, s.tmp[m.start-from:m.end-from]...)
	}
	return nil
}

// compareMembers compares the names of two members in RFC 8785 order.
func compareMembers(a, b *jcsMember) int {
	if a.key != b.key && a.key != 0 && b.key != 0 {
		if a.key < b.key {
			return -1
		}
		return 1
	}
	return compareUTF16(a.name, b.name)
}

// nameKey returns the sort key of a member name (see jcsMember.key).
func nameKey(name []byte) uint64 {
	const highs = 0x8080808080808080
	if len(name) >= 8 {
		k := binary.BigEndian.Uint64(name)
		if k&highs != 0 {
			return 0
		}
		return k
	}
	var k uint64
	for _, c := range name {
		k = k<<8 | uint64(c)
	}
	if k&highs != 0 {
		return 0
	}
	return k << (8 * (8 - len(name)))
}

// compareUTF16 compares two valid UTF-8 strings by their UTF-16 code
// units, as RFC 8785 §3.2.3 orders member names. UTF-8 byte order is code
// point order, which differs from UTF-16 order only between U+E000–U+FFFF
// and the supplementary planes (encoded as surrogates, U+D800–U+DFFF).
func compareUTF16(a, b []byte) int {
	n := min(len(a), len(b))
	i := 0
	for i < n && a[i] == b[i] {
		i++
	}
	if i == n {
		return len(a) - len(b)
	}
	// Back up to the start of the code point that differs: the bytes
	// before i are equal, so it starts at the same offset in both.
	for i > 0 && a[i]&0xC0 == 0x80 {
		i--
	}
	ra, _ := utf8.DecodeRune(a[i:])
	rb, _ := utf8.DecodeRune(b[i:])
	if ua, ub := firstUTF16(ra), firstUTF16(rb); ua != ub {
		return int(ua) - int(ub)
	}
	return int(ra) - int(rb)
}

// firstUTF16 returns the first UTF-16 code unit of r.
func firstUTF16(r rune) rune {
	if r >= 0x10000 {
		return 0xD800 + (r-0x10000)>>10
	}
	return r
}

// plainASCII[c] is true for the ASCII bytes a JSON string holds as is in
// both its input and its canonical form: all but controls, '"' and '\\'.
var plainASCII = func() (t [utf8.RuneSelf]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// nonPlain returns a mask of the bytes of w (little endian: the first byte
// is the lowest) that are not plain ASCII (see plainASCII): controls, '"',
// '\\' and bytes from 0x80. Only its lowest set bit is exact: for a byte b
// < 0x80, (b - k) &^ b has its high bit set exactly when b < k, and a
// borrow can only add false positives in the bytes after a true one.
func nonPlain(w uint64) uint64 {
	const (
		ones   = 0x0101010101010101
		highs  = 0x8080808080808080
		quotes = ones * '"'
		slashs = ones * '\\'
	)
	q, b := w^quotes, w^slashs
	return (w | (w-ones*0x20)&^w | (q-ones)&^q | (b-ones)&^b) & highs
}

// str scans the string that starts at in[i] and writes its canonical form.
// For a member name (name), it also sets s.name to the unescaped name.
func (s *jcs) str(i int, name bool) (int, *jsonError) {
	start := i
	i++
	// Fast path: plain ASCII and valid UTF-8, copied as is. Eight bytes
	// at a time while they are all plain ASCII.
	for i < len(s.in) {
		if i+8 <= len(s.in) {
			m := nonPlain(binary.LittleEndian.Uint64(s.in[i:]))
			if m == 0 {
				i += 8
				continue
			}
			i += bits.TrailingZeros64(m) >> 3
		} else if c := s.in[i]; c < utf8.RuneSelf && plainASCII[c] {
			i++
			continue
		}
		if s.in[i] < utf8.RuneSelf {
			break // '"', '\\' or a control
		}
		r, size := utf8.DecodeRune(s.in[i:])
		if r == utf8.RuneError && size == 1 {
			return i, &jsonError{off: i, msg: "invalid UTF-8 in string"}
		}
		i += size
	}
	if i >= len(s.in) {
		return i, &jsonError{off: start, msg: "unterminated string"}
	}
	if s.in[i] == '"' {
		if s.emit {
			s.out = append(s.out, s.in[start:i+1]...)
		}
		if name {
			s.name = s.in[start+1 : i]
		}
		return i + 1, nil
	}

	// Slow path: escapes (or a raw control character, an error).
	if s.emit {
		s.out = append(s.out, s.in[start:i]...)
	}
	nameStart := len(s.names)
	if name {
		s.names = append(s.names, s.in[start+1:i]...)
	}
	for {
		if i >= len(s.in) {
			return i, &jsonError{off: start, msg: "unterminated string"}
		}
		c := s.in[i]
		switch {
		case c == '"':
			if s.emit {
				s.out = append(s.out, '"')
			}
			if name {
				s.name = s.names[nameStart:len(s.names):len(s.names)]
			}
			return i + 1, nil
		case c < 0x20:
			return i, &jsonError{off: i, msg: "control character " + hexRune(rune(c)) + " in string: it must be escaped"}
		case c == '\\':
			r, n, err := s.escape(i)
			if err != nil {
				return i, err
			}
			i += n
			if s.emit {
				s.out = appendJCSRune(s.out, r)
			}
			if name {
				s.names = utf8.AppendRune(s.names, r)
			}
		case c < utf8.RuneSelf:
			if s.emit {
				s.out = append(s.out, c)
			}
			if name {
				s.names = append(s.names, c)
			}
			i++
		default:
			r, size := utf8.DecodeRune(s.in[i:])
			if r == utf8.RuneError && size == 1 {
				return i, &jsonError{off: i, msg: "invalid UTF-8 in string"}
			}
			if s.emit {
				s.out = append(s.out, s.in[i:i+size]...)
			}
			if name {
				s.names = append(s.names, s.in[i:i+size]...)
			}
			i += size
		}
	}
}

// escape decodes the escape sequence at in[i] ('\\'), joining a surrogate
// pair, and returns the code point and the number of input bytes.
func (s *jcs) escape(i int) (rune, int, *jsonError) {
	if i+1 >= len(s.in) {
		return 0, 0, errEOF(i + 1)
	}
	switch s.in[i+1] {
	case '"':
		return '"', 2, nil
	case '\\':
		return '\\', 2, nil
	case '/':
		return '/', 2, nil
	case 'b':
		return '\b', 2, nil
	case 'f':
		return '\f', 2, nil
	case 'n':
		return '\n', 2, nil
	case 'r':
		return '\r', 2, nil
	case 't':
		return '\t', 2, nil
	case 'u':
	default:
		return 0, 0, &jsonError{off: i, msg: "invalid escape sequence " + strconv.Quote(string(s.in[i:i+2]))}
	}
	r, ok := s.hex4(i + 2)
	if !ok {
		return 0, 0, &jsonError{off: i, msg: "invalid \\u escape: expected four hexadecimal digits"}
	}
	switch {
	case 0xD800 <= r && r < 0xDC00:
		// A high surrogate must be followed by an escaped low one.
		if i+8 <= len(s.in) && s.in[i+6] == '\\' && s.in[i+7] == 'u' {
			if lo, ok := s.hex4(i + 8); ok && 0xDC00 <= lo && lo < 0xE000 {
				return 0x10000 + (r-0xD800)<<10 + (lo - 0xDC00), 12, nil
			}
		}
		return 0, 0, &jsonError{off: i, msg: "lone surrogate " + hexRune(r) + " in string: strings must be Unicode text"}
	case 0xDC00 <= r && r < 0xE000:
		return 0, 0, &jsonError{off: i, msg: "lone surrogate " + hexRune(r) + " in string: strings must be Unicode text"}
	}
	return r, 6, nil
}

// hex4 decodes the four hexadecimal digits at in[i:].
func (s *jcs) hex4(i int) (rune, bool) {
	if i+4 > len(s.in) {
		return 0, false
	}
	var r rune
	for _, c := range s.in[i : i+4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

// hexRune writes r as U+XXXX.
func hexRune(r rune) string {
	h := strconv.FormatInt(int64(r), 16)
	return "U+" + strings.Repeat("0", max(0, 4-len(h))) + strings.ToUpper(h)
}

// appendJCSRune appends r as RFC 8785 §3.2.2.2 writes it in a string: the
// two-character escapes for '"', '\\', \b, \f, \n, \r and \t, \u00xx with
// lowercase hexadecimal for the other controls, and UTF-8 for the rest.
func appendJCSRune(dst []byte, r rune) []byte {
	switch r {
	case '"':
		return append(dst, '\\', '"')
	case '\\':
		return append(dst, '\\', '\\')
	case '\b':
		return append(dst, '\\', 'b')
	case '\f':
		return append(dst, '\\', 'f')
	case '\n':
		return append(dst, '\\', 'n')
	case '\r':
		return append(dst, '\\', 'r')
	case '\t':
		return append(dst, '\\', 't')
	}
	if r < 0x20 {
		const hex = "0123456789abcdef"
		return append(dst, '\\', 'u', '0', '0', hex[r>>4], hex[r&0xF])
	}
	return utf8.AppendRune(dst, r)
}

// number scans the number that starts at in[i] and writes it as
// ECMAScript writes the double it denotes.
func (s *jcs) number(i int) (int, *jsonError) {
	start := i
	if s.in[i] == '-' {
		i++
	}
	switch {
	case i >= len(s.in):
		return i, errEOF(i)
	case s.in[i] == '0':
		i++
	case '1' <= s.in[i] && s.in[i] <= '9':
		for i++; i < len(s.in) && '0' <= s.in[i] && s.in[i] <= '9'; i++ {
		}
	default:
		return i, s.badChar(i, "in number: expected a digit")
	}
	intEnd := i
	hasExp := false
	if i < len(s.in) && s.in[i] == '.' {
		i++
		if i >= len(s.in) || s.in[i] < '0' || s.in[i] > '9' {
			return i, s.badChar(i, "in number: expected a digit after '.'")
		}
		for i++; i < len(s.in) && '0' <= s.in[i] && s.in[i] <= '9'; i++ {
		}
	}
	if i < len(s.in) && (s.in[i] == 'e' || s.in[i] == 'E') {
		hasExp = true
		i++
		if i < len(s.in) && (s.in[i] == '+' || s.in[i] == '-') {
			i++
		}
		if i >= len(s.in) || s.in[i] < '0' || s.in[i] > '9' {
			return i, s.badChar(i, "in number: expected a digit in the exponent")
		}
		for i++; i < len(s.in) && '0' <= s.in[i] && s.in[i] <= '9'; i++ {
		}
	}
	lit := s.in[start:i]

	// An integer of at most 15 digits is exact as a double and written as
	// is (but -0 as 0).
	if intEnd == i {
		digits := i - start
		if lit[0] == '-' {
			digits--
		}
		if digits <= 15 {
			if s.emit {
				if string(lit) == "-0" {
					s.out = append(s.out, '0')
				} else {
					s.out = append(s.out, lit...)
				}
			}
			return i, nil
		}
	}
	// Only an exponent or a very long integer part can leave the double
	// range: check those even when validating only.
	if !s.emit && !hasExp && intEnd-start < 300 {
		return i, nil
	}
	f, err := strconv.ParseFloat(string(lit), 64)
	if err != nil && (math.IsInf(f, 0) || math.IsNaN(f)) {
		return i, &jsonError{off: start, rangeErr: true,
			msg: "number " + jcsQuote(lit) + " is beyond the range of an IEEE 754 double (RFC 8785 §3.1)"}
	}
	if s.emit {
		s.out = appendES6Number(s.out, f)
	}
	return i, nil
}

// appendES6Number appends the finite double f as ECMAScript's
// Number::toString writes it (ECMA-262 §7.1.12.1, RFC 8785 §3.2.2.3):
// the shortest decimal digits that read back as f, in plain notation for
// 1e-7 < |f| < 1e21 and in exponent notation otherwise; -0 as 0.
func appendES6Number(dst []byte, f float64) []byte {
	if f == 0 {
		return append(dst, '0')
	}
	if f < 0 {
		dst = append(dst, '-')
		f = -f
	}
	// Shortest round-trip digits, in the form d.ddde±x.
	var buf [32]byte
	e := strconv.AppendFloat(buf[:0], f, 'e', -1, 64)
	var digits [24]byte
	k := 0
	j := 0
	for ; e[j] != 'e'; j++ {
		if e[j] != '.' {
			digits[k] = e[j]
			k++
		}
	}
	exp, _ := strconv.Atoi(string(e[j+1:]))
	// ECMA-262: f = digits × 10^(n−k), with k digits.
	n := exp + 1
	switch {
	case k <= n && n <= 21:
		dst = append(dst, digits[:k]...)
		for range n - k {
			dst = append(dst, '0')
		}
	case 0 < n && n <= 21:
		dst = append(dst, digits[:n]...)
		dst = append(dst, '.')
		dst = append(dst, digits[n:k]...)
	case -6 < n && n <= 0:
		dst = append(dst, '0', '.')
		for range -n {
			dst = append(dst, '0')
		}
		dst = append(dst, digits[:k]...)
	default:
		dst = append(dst, digits[0])
		if k > 1 {
			dst = append(dst, '.')
			dst = append(dst, digits[1:k]...)
		}
		dst = append(dst, 'e')
		if n-1 >= 0 {
			dst = append(dst, '+')
		}
		dst = strconv.AppendInt(dst, int64(n-1), 10)
	}
	return dst
}

// jcsQuote quotes b for a message, shortened to a readable length.
func jcsQuote(b []byte) string {
	const max = 64
	if len(b) <= max {
		return strconv.Quote(string(b))
	}
	cut := max
	for cut > 0 && b[cut]&0xC0 == 0x80 {
		cut--
	}
	return strconv.Quote(string(b[:cut])) + "…"
}
