package store

import (
	"bytes"
	"strconv"
	"unicode/utf8"
	"unsafe"

	"github.com/go-json-experiment/json"
)

// decodeIndexed reads the members of a ledger line that the index needs
// into e: what json.Unmarshal into an indexed does, faster. The index
// reads every entry of the ledger once, and decoding whole lines was 40%
// of it. Ledger lines are RFC 8785 text (no whitespace, escapes only
// where needed), which fastIndexed reads in one pass; a line it is not
// sure of (an escape in a member it keeps, a nested object, whitespace,
// a number it does not take for an unsigned integer) is left to
// json.Unmarshal, so the result is the same either way (FuzzDecodeIndexed).
func decodeIndexed(line []byte, e *IndexedEntry) error {
	if fastIndexed(line, e) {
		return nil
	}
	*e = IndexedEntry{}
	return json.Unmarshal(line, e)
}

// fastIndexed decodes line into e when it is a JSON object of the simple
// form ledger lines have, reporting whether it did.
func fastIndexed(line []byte, e *IndexedEntry) bool {
	*e = IndexedEntry{}
	if len(line) < 2 || line[0] != '{' || !utf8.Valid(line) {
		return false
	}
	var seen [24][]byte // names read so far: a duplicate is Unmarshal's to refuse
	n := 0
	// The strings kept, as ranges of line, made strings at the end in
	// one allocation.
	type kept struct {
		dst        *string
		start, end int
	}
	var keep [6]kept
	nk := 0
	i := 1
	if line[i] == '}' {
		return i+1 == len(line)
	}
	for {
		// A name without escapes.
		if line[i] != '"' {
			return false
		}
		end := plainString(line, i)
		if end < 0 {
			return false
		}
		name := line[i+1 : end]
		if n == len(seen) {
			return false
		}
		for _, s := range seen[:n] {
			if bytes.Equal(s, name) {
				return false
			}
		}
		seen[n] = name
		n++
		i = end + 1
		if i >= len(line) || line[i] != ':' {
			return false
		}
		i++
		if i >= len(line) {
			return false
		}
		var dst *string
		switch string(name) {
		case "seq":
			j := i
			for j < len(line) && line[j] >= '0' && line[j] <= '9' {
				j++
			}
			if j == i || (line[i] == '0' && j > i+1) {
				return false
			}
			v, err := strconv.ParseUint(string(line[i:j]), 10, 64)
			if err != nil {
				return false
			}
			e.Seq = v
			i = j
		case "action":
			dst = &e.Action
		case "object_id":
			dst = &e.ObjectID
		case "collection":
			dst = &e.Collection
		case "first_added":
			dst = &e.FirstAdded
		case "last_added":
			dst = &e.LastAdded
		case "hash":
			dst = &e.Hash
		default:
			if i = skipValue(line, i, true); i < 0 {
				return false
			}
		}
		if dst != nil {
			if line[i] != '"' {
				return false
			}
			end := plainString(line, i)
			if end < 0 {
				return false
			}
			keep[nk] = kept{dst, i + 1, end}
			nk++
			i = end + 1
		}
		if i >= len(line) {
			return false
		}
		switch line[i] {
		case ',':
			i++
			if i >= len(line) {
				return false
			}
		case '}':
			if i+1 != len(line) {
				return false
			}
			size := 0
			for _, k := range keep[:nk] {
				size += k.end - k.start
			}
			if size == 0 {
				return true
			}
			buf := make([]byte, 0, size)
			for _, k := range keep[:nk] {
				buf = append(buf, line[k.start:k.end]...)
			}
			all := unsafe.String(&buf[0], len(buf)) // buf is not written again
			at := 0
			for _, k := range keep[:nk] {
				*k.dst = all[at : at+k.end-k.start]
				at += k.end - k.start
			}
			return true
		default:
			return false
		}
	}
}

// plainString returns the index of the quote that ends the string opening
// at line[i], -1 when it holds an escape or a control character or does
// not end.
func plainString(line []byte, i int) int {
	for j := i + 1; j < len(line); j++ {
		switch c := line[j]; {
		case c == '"':
			return j
		case c == '\\' || c < 0x20:
			return -1
		}
	}
	return -1
}

// skipValue returns the index after the JSON value at line[i], -1 when it
// is not one fastIndexed takes: a string (escapes checked), a number, true,
// false, null, or (when arrays is set) an array of those.
func skipValue(line []byte, i int, arrays bool) int {
	switch c := line[i]; {
	case c == '"':
		for j := i + 1; j < len(line); j++ {
			switch c := line[j]; {
			case c == '"':
				return j + 1
			case c < 0x20:
				return -1
			case c == '\\':
				j++
				if j >= len(line) {
					return -1
				}
				switch line[j] {
				case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				case 'u':
					if j+4 >= len(line) {
						return -1
					}
					for _, h := range line[j+1 : j+5] {
						if !('0' <= h && h <= '9' || 'a' <= h && h <= 'f' || 'A' <= h && h <= 'F') {
							return -1
						}
					}
					// A surrogate escape must pair up, as Unmarshal
					// checks: left to it.
					if v, _ := strconv.ParseUint(string(line[j+1:j+5]), 16, 32); v >= 0xd800 && v <= 0xdfff {
						return -1
					}
					j += 4
				default:
					return -1
				}
			}
		}
		return -1
	case c == '-' || c >= '0' && c <= '9':
		return skipNumber(line, i)
	case c == 't':
		return literal(line, i, "true")
	case c == 'f':
		return literal(line, i, "false")
	case c == 'n':
		return literal(line, i, "null")
	case c == '[' && arrays:
		j := i + 1
		if j < len(line) && line[j] == ']' {
			return j + 1
		}
		for j < len(line) {
			if j = skipValue(line, j, false); j < 0 || j >= len(line) {
				return -1
			}
			switch line[j] {
			case ',':
				j++
			case ']':
				return j + 1
			default:
				return -1
			}
		}
		return -1
	}
	return -1
}

func literal(line []byte, i int, lit string) int {
	if !bytes.HasPrefix(line[i:], []byte(lit)) {
		return -1
	}
	return i + len(lit)
}

// skipNumber returns the index after the JSON number at line[i], -1 when
// the grammar does not hold.
func skipNumber(line []byte, i int) int {
	digits := func(j int) int {
		k := j
		for k < len(line) && line[k] >= '0' && line[k] <= '9' {
			k++
		}
		return k
	}
	j := i
	if line[j] == '-' {
		j++
	}
	if j >= len(line) {
		return -1
	}
	switch {
	case line[j] == '0':
		j++
	case line[j] >= '1' && line[j] <= '9':
		j = digits(j)
	default:
		return -1
	}
	if j < len(line) && line[j] == '.' {
		k := digits(j + 1)
		if k == j+1 {
			return -1
		}
		j = k
	}
	if j < len(line) && (line[j] == 'e' || line[j] == 'E') {
		j++
		if j < len(line) && (line[j] == '+' || line[j] == '-') {
			j++
		}
		k := digits(j)
		if k == j {
			return -1
		}
		j = k
	}
	return j
}
