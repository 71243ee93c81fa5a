package redis

// The stored form of a ledger append (P:{l}:log). An append's entries
// are JSON lines of one shape, and most of a line's bytes are hex hashes
// written as text, members equal to the line before's (action, user,
// collection, time), the line before's hash again as "prev", and a seq
// one more than the line before's. Packed, an append keeps each line's
// members in their order with each value as one of: the same as the
// line before's, 32 bytes for 64 hex digits, the line before's hash, the
// line before's number + 1, an id's type and 16 bytes for its UUID, a
// UTC time as seconds and fraction, 16 bytes for a 22-character base64
// nonce, or the text itself. A line that is not a flat JSON object of
// strings and numbers without spaces is kept whole. Unpacking gives back
// every line byte for byte (FuzzLogPack), which the chain's hashes
// depend on.
//
// Packed:  0x00 0x01, then per line: 'e' uvarint(members) members…, or
// 'r' uvarint(len) line. A member: a key byte (an index in logKeys, or
// 0xff uvarint(len) key) and a value (a tag byte, then what it says).
// A field that starts with '{' is an append as earlier builds stored
// it: the lines joined by newlines.

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"strconv"
	"strings"

	"github.com/ctigate/ctigate/store"
)

// logKeys are the member names packed as one byte. Append only: the
// index of a name is part of the stored format.
var logKeys = []string{
	"seq", "time", "action", "user", "org", "object_id", "object_version", "sha256",
	"collection", "source", "route", "policy_version", "reason", "detail", "removed",
	"published_sha256", "date_added", "count", "first_added", "last_added", "filter",
	"view", "items_root", "permission", "role", "token_id", "grants_sha256",
	"rejected_items", "nonce", "signed_seq", "signed_hash", "root", "public_key",
	"signature", "prev", "hash",
}

var logKeyIndex = func() map[string]byte {
	m := make(map[string]byte, len(logKeys))
	for i, k := range logKeys {
		m[k] = byte(i)
	}
	return m
}()

const (
	logKeyOther = 0xff // a key not in logKeys follows

	logKeyHash = 35 // "hash"
	logKeyPrev = 34 // "prev"
)

// Value tags.
const (
	tagSame   = iota // the line before's value of the key
	tagHex32         // a string of 64 lowercase hex digits: 32 bytes
	tagString        // a string: uvarint(len), its text between the quotes
	tagToken         // a number (or other bare token): uvarint(len), its text
	tagPrev          // the string the line before has as "hash"
	tagNext          // the line before's number of the key + 1
	tagID            // "type--uuid" (store.CutCanonicalID): uvarint(len) type, 16 bytes
	tagTime          // "YYYY-MM-DDTHH:MM:SS[.f…]Z" (store.CutUTCTime): varint seconds, digits, uvarint fraction
	tagNonce         // 22 characters of unpadded standard base64: 16 bytes
)

const (
	logPackedMagic   = 0x00
	logPackedVersion = 0x01
)

// logValue is a member's value as written: a string's text between its
// quotes (str) or a bare token.
type logValue struct {
	text string
	str  bool
	set  bool
}

// logPacker packs the lines of one append.
type logPacker struct {
	buf  []byte
	prev [64]logValue // by key index: the last packed line's values
	mem  []logMember  // scratch
}

type logMember struct {
	key   string
	index int // in logKeys, -1 for others
	val   logValue
}

func newLogPacker(sizeHint int) *logPacker {
	p := &logPacker{buf: make([]byte, 0, sizeHint/2+16)}
	p.buf = append(p.buf, logPackedMagic, logPackedVersion)
	return p
}

// add packs one line (without its newline).
func (p *logPacker) add(line string) {
	mem, ok := parseLogLine(line, p.mem[:0])
	p.mem = mem
	if !ok {
		p.buf = append(p.buf, 'r')
		p.buf = binary.AppendUvarint(p.buf, uint64(len(line)))
		p.buf = append(p.buf, line...)
		return
	}
	p.buf = append(p.buf, 'e')
	p.buf = binary.AppendUvarint(p.buf, uint64(len(mem)))
	for _, m := range mem {
		if m.index >= 0 {
			p.buf = append(p.buf, byte(m.index))
		} else {
			p.buf = append(p.buf, logKeyOther)
			p.buf = binary.AppendUvarint(p.buf, uint64(len(m.key)))
			p.buf = append(p.buf, m.key...)
		}
		p.buf = p.value(p.buf, m)
	}
	for _, m := range mem {
		if m.index >= 0 {
			p.prev[m.index] = m.val
		}
	}
}

// value appends the tag and bytes of m's value.
func (p *logPacker) value(b []byte, m logMember) []byte {
	v := m.val
	if m.index >= 0 {
		if last := p.prev[m.index]; last.set && last == v {
			return append(b, tagSame)
		}
		if m.index == logKeyPrev && v.str {
			if h := p.prev[logKeyHash]; h.set && h.str && h.text == v.text {
				return append(b, tagPrev)
			}
		}
		if last := p.prev[m.index]; !v.str && last.set && !last.str {
			if n, ok := decimal(v.text); ok {
				if l, ok := decimal(last.text); ok && l+1 == n {
					return append(b, tagNext)
				}
			}
		}
	}
	if !v.str {
		b = append(b, tagToken)
		b = binary.AppendUvarint(b, uint64(len(v.text)))
		return append(b, v.text...)
	}
	s := v.text
	if len(s) == 64 && store.IsLowerHex(s) {
		b = append(b, tagHex32)
		b, _ = hex.AppendDecode(b, []byte(s)) // checked: lowercase hex
		return b
	}
	var u [16]byte
	if typ, ok := store.CutCanonicalID(s, &u); ok {
		b = append(b, tagID)
		b = binary.AppendUvarint(b, uint64(len(typ)))
		b = append(b, typ...)
		return append(b, u[:]...)
	}
	if sec, frac, digits, ok := store.CutUTCTime(s); ok {
		b = append(b, tagTime)
		b = binary.AppendVarint(b, sec)
		b = append(b, byte(digits))
		return binary.AppendUvarint(b, frac)
	}
	if len(s) == 22 {
		if raw, err := base64.RawStdEncoding.DecodeString(s); err == nil && len(raw) == 16 && base64.RawStdEncoding.EncodeToString(raw) == s {
			b = append(b, tagNonce)
			return append(b, raw...)
		}
	}
	b = append(b, tagString)
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// bytes returns the packed append.
func (p *logPacker) bytes() []byte { return p.buf }

// parseLogLine splits a line of the form {"k":v,…} (no spaces; each v a
// string or a bare token of number characters, true, false or null) into
// its members, appended to dst. ok is false for any other line.
func parseLogLine(line string, dst []logMember) ([]logMember, bool) {
	if len(line) < 2 || line[0] != '{' || line[len(line)-1] != '}' {
		return dst, false
	}
	if line == "{}" {
		return dst, true
	}
	i := 1
	for {
		// "key":
		if i >= len(line) || line[i] != '"' {
			return dst, false
		}
		j := i + 1
		for j < len(line) && line[j] != '"' {
			if line[j] == '\\' || line[j] < 0x20 {
				return dst, false
			}
			j++
		}
		if j+1 >= len(line) || line[j+1] != ':' {
			return dst, false
		}
		m := logMember{key: line[i+1 : j], index: -1}
		if k, ok := logKeyIndex[m.key]; ok {
			m.index = int(k)
		}
		i = j + 2
		if i >= len(line) {
			return dst, false
		}
		if line[i] == '"' {
			j = i + 1
			for j < len(line) && line[j] != '"' {
				switch c := line[j]; {
				case c == '\\':
					j++ // the escaped character is never the closing quote
				case c < 0x20:
					return dst, false
				}
				j++
			}
			if j >= len(line) {
				return dst, false
			}
			m.val = logValue{text: line[i+1 : j], str: true, set: true}
			i = j + 1
		} else {
			j = i
			for j < len(line) && isTokenByte(line[j]) {
				j++
			}
			if j == i {
				return dst, false
			}
			m.val = logValue{text: line[i:j], set: true}
			i = j
		}
		dst = append(dst, m)
		if i >= len(line) {
			return dst, false
		}
		switch line[i] {
		case ',':
			i++
		case '}':
			return dst, i == len(line)-1
		default:
			return dst, false
		}
	}
}

func isTokenByte(c byte) bool {
	return c >= '0' && c <= '9' || c == '-' || c == '+' || c == '.' || c >= 'a' && c <= 'z' || c == 'E'
}

// decimal parses a number written without sign, leading zeros or other
// characters.
func decimal(s string) (uint64, bool) {
	if s == "" || len(s) > 19 || (s[0] == '0' && len(s) > 1) {
		return 0, false
	}
	var n uint64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + uint64(c-'0')
	}
	return n, true
}

var errLogPacked = errors.New("malformed packed ledger append")

// logLines returns the lines of a stored append, packed or as text.
func logLines(field string) ([]string, error) {
	if field == "" {
		return nil, nil
	}
	if field[0] != logPackedMagic {
		return strings.Split(field, "\n"), nil
	}
	if len(field) < 2 || field[1] != logPackedVersion {
		return nil, errLogPacked
	}
	type span struct {
		index      int
		start, end int // of the value's text in the line
		str        bool
	}
	var (
		out  []string
		prev [64]logValue
		cur  []span
		line []byte
	)
	d := logReader{s: field, i: 2}
	for !d.done() {
		switch d.byte() {
		case 'r':
			out = append(out, d.take(d.uvarint()))
		case 'e':
			n := d.uvarint()
			if n > uint64(len(field)) {
				return nil, errLogPacked
			}
			line = append(line[:0], '{')
			cur = cur[:0]
			for k := uint64(0); k < n && d.err == nil; k++ {
				if k > 0 {
					line = append(line, ',')
				}
				index := int(d.byte())
				key := ""
				switch {
				case index == logKeyOther:
					index = -1
					key = d.take(d.uvarint())
				case index < len(logKeys):
					key = logKeys[index]
				default:
					return nil, errLogPacked
				}
				line = append(line, '"')
				line = append(line, key...)
				line = append(line, '"', ':')
				var str bool
				var err error
				vstart := len(line)
				if line, str, err = d.value(line, index, &prev); err != nil {
					return nil, err
				}
				if index >= 0 {
					sp := span{index: index, start: vstart, end: len(line), str: str}
					if str {
						sp.start, sp.end = sp.start+1, sp.end-1
					}
					cur = append(cur, sp)
				}
			}
			line = append(line, '}')
			l := string(line)
			for _, c := range cur {
				prev[c.index] = logValue{text: l[c.start:c.end], str: c.str, set: true}
			}
			out = append(out, l)
		default:
			return nil, errLogPacked
		}
		if d.err != nil {
			return nil, d.err
		}
	}
	return out, nil
}

// logReader reads a packed append.
type logReader struct {
	s   string
	i   int
	err error
}

func (d *logReader) done() bool { return d.err != nil || d.i >= len(d.s) }

func (d *logReader) byte() byte {
	if d.i >= len(d.s) {
		d.err = errLogPacked
		return 0
	}
	d.i++
	return d.s[d.i-1]
}

func (d *logReader) uvarint() uint64 {
	n, w := uvarint(d.s[min(d.i, len(d.s)):])
	if w <= 0 {
		d.err = errLogPacked
		return 0
	}
	d.i += w
	return n
}

func (d *logReader) varint() int64 {
	u := d.uvarint()
	x := int64(u >> 1)
	if u&1 != 0 {
		x = ^x
	}
	return x
}

func (d *logReader) take(n uint64) string {
	if d.err != nil || n > uint64(len(d.s)-d.i) {
		d.err = errLogPacked
		return ""
	}
	d.i += int(n)
	return d.s[d.i-int(n) : d.i]
}

// value appends to line one value of the key index (-1: a key not in
// logKeys) as JSON, and whether it is a string.
func (d *logReader) value(line []byte, index int, prev *[64]logValue) ([]byte, bool, error) {
	tag := d.byte()
	if d.err != nil {
		return line, false, d.err
	}
	var v logValue
	switch tag {
	case tagSame:
		if index < 0 || !prev[index].set {
			return line, false, errLogPacked
		}
		v = prev[index]
	case tagPrev:
		if h := prev[logKeyHash]; index != logKeyPrev || !h.set || !h.str {
			return line, false, errLogPacked
		}
		v = prev[logKeyHash]
	case tagNext:
		if index < 0 || !prev[index].set || prev[index].str {
			return line, false, errLogPacked
		}
		n, ok := decimal(prev[index].text)
		if !ok || n == 1<<64-1 {
			return line, false, errLogPacked
		}
		return strconv.AppendUint(line, n+1, 10), false, nil
	case tagToken, tagString:
		v = logValue{text: d.take(d.uvarint()), str: tag == tagString}
	case tagHex32:
		x := d.take(32)
		if d.err != nil {
			return line, false, d.err
		}
		line = append(line, '"')
		line = hex.AppendEncode(line, []byte(x))
		return append(line, '"'), true, nil
	case tagID:
		typ := d.take(d.uvarint())
		u := d.take(16)
		if d.err != nil {
			return line, false, d.err
		}
		var x [16]byte
		copy(x[:], u)
		line = append(line, '"')
		line = store.AppendCanonicalID(line, typ, &x)
		return append(line, '"'), true, nil
	case tagTime:
		sec := d.varint()
		digits := int(d.byte())
		frac := d.uvarint()
		if d.err != nil || digits > 9 {
			return line, false, errLogPacked
		}
		line = append(line, '"')
		line = store.AppendUTCTime(line, sec, frac, digits)
		return append(line, '"'), true, nil
	case tagNonce:
		x := d.take(16)
		if d.err != nil {
			return line, false, d.err
		}
		line = append(line, '"')
		line = base64.RawStdEncoding.AppendEncode(line, []byte(x))
		return append(line, '"'), true, nil
	default:
		return line, false, errLogPacked
	}
	if d.err != nil {
		return line, false, d.err
	}
	if v.str {
		line = append(line, '"')
		line = append(line, v.text...)
		return append(line, '"'), true, nil
	}
	return append(line, v.text...), false, nil
}
