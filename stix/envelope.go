package stix

import (
	"bytes"
	"errors"
	"io"
	"strconv"
	"time"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/ctigate/ctigate"
)

// Item is one element of an envelope's "objects" array.
type Item struct {
	// Index is the element's position in the "objects" array.
	Index int
	// Raw is the element exactly as sent: the same bytes, whitespace, member
	// order and escapes. It is a copy owned by the Item.
	Raw []byte
	// ID is the element's "id" when that is a string (appearing once), else
	// "". It is set for invalid objects too, for status reports.
	ID string
	// Version is the element's "modified", else its "created", as sent,
	// when that is a string; else "". It is set for invalid objects too.
	Version string
	// Object holds the validated common properties; valid only when Err is
	// nil.
	Object Object
	// Err is nil when the element is a valid STIX 2.1 object. Otherwise it
	// is a *ctigate.Error of kind Invalid whose message has the form
	// "<id or objects[i]>: <property>: <rule>", for example
	// `relationship--1621d4d4-…: created: must be a STIX timestamp, …`. The
	// id is used when it is a valid identifier, objects[i] otherwise.
	Err error
}

// Object holds the common properties of a valid STIX 2.1 object.
type Object struct {
	ID          string // "<type>--<UUID>"
	Type        string // the type, equal to the prefix of ID
	SpecVersion string // always "2.1"; SCOs that omit spec_version get the default "2.1"
	Created     time.Time
	Modified    time.Time // zero when absent
	Version     time.Time // Modified, else Created, else zero
}

// DecodeEnvelope decodes a TAXII 2.1 envelope, {"objects": [...]}, and
// validates each object in it on its own.
//
// It fails, with a *ctigate.Error of kind Invalid whose message names the
// problem and its byte offset, only when the envelope as a whole is
// unusable: the body is not exactly one JSON value (empty, malformed,
// trailing data), holds invalid UTF-8 anywhere, is not an object, repeats a
// top-level member, has no "objects" or an "objects" that is not a
// non-empty array, or is a STIX bundle ("type": "bundle") rather than an
// envelope. Other top-level members (such as "more" and "next") are
// ignored.
//
// Otherwise it returns one Item per element of "objects", in order. An
// element that is not a JSON object, repeats a member name at any depth,
// or breaks a rule for the STIX 2.1 common properties (type, id,
// spec_version, created, modified) gets a non-nil Item.Err; the other
// elements are unaffected. Duplicate member names are rejected so that no
// two readers of an object can disagree about its content.
func DecodeEnvelope(data []byte) ([]Item, error) {
	// The fast path decodes the whole envelope with duplicate names
	// rejected, so that each object, known to be free of them, needs only a
	// light scan of its top-level members. Duplicate names inside one
	// object must fail that object only, though, so the first duplicate
	// anywhere sends the envelope down the careful path: decode it with
	// duplicates let through (checking the top-level members here) and
	// check each object strictly on its own. Both paths give the same
	// result; invalid UTF-8 fails the envelope on both.
	items, err := decodeEnvelope(data, true)
	if err == errRetryCareful {
		items, err = decodeEnvelope(data, false)
	}
	return items, err
}

// errRetryCareful reports that the fast path met a duplicate member name.
var errRetryCareful = errors.New("stix: duplicate member name: decode carefully")

// decodeEnvelope implements DecodeEnvelope on the fast path (fast) or on the
// careful path.
func decodeEnvelope(data []byte, fast bool) ([]Item, error) {
	dec := jsontext.NewDecoder(bytes.NewBuffer(data), jsontext.AllowDuplicateNames(!fast))
	fail := func(err error) error {
		if fast && errors.Is(err, jsontext.ErrDuplicateName) {
			return errRetryCareful
		}
		return syntaxError(err)
	}

	tok, err := dec.ReadToken()
	if err != nil {
		if err == io.EOF {
			return nil, envelopeError(`empty body: expected a TAXII envelope {"objects": [...]}`)
		}
		return nil, fail(err)
	}
	if tok.Kind() != '{' {
		return nil, envelopeError(`the body is a JSON %s at byte offset %d: expected a TAXII envelope {"objects": [...]}`,
			kindName(tok.Kind()), dec.InputOffset()-1)
	}

	var (
		items     []Item
		seen      = make(map[string]bool, 4) // top-level member names
		validator validator
	)
	for dec.PeekKind() == '"' {
		rawName, err := dec.ReadValue() // the name, read raw to learn its offset
		if err != nil {
			return nil, fail(err)
		}
		name := unquoted(rawName)
		nameOff := dec.InputOffset() - int64(len(rawName))
		if seen[name] {
			return nil, envelopeError("duplicate top-level member %s at byte offset %d", quoteValue(name), nameOff)
		}
		seen[name] = true

		switch name {
		case "objects":
			if dec.PeekKind() != '[' {
				v, err := dec.ReadValue()
				if err != nil {
					return nil, fail(err)
				}
				return nil, envelopeError(`"objects" must be an array, got %s at byte offset %d`,
					kindName(v.Kind()), dec.InputOffset()-int64(len(v)))
			}
			if _, err := dec.ReadToken(); err != nil { // '['
				return nil, fail(err)
			}
			arrayOff := dec.InputOffset() - 1
			for dec.PeekKind() != ']' {
				v, err := dec.ReadValue()
				if err != nil {
					return nil, fail(err)
				}
				// Copy the element's bytes from data rather than from v,
				// which is only valid until the next read.
				end := dec.InputOffset()
				raw := bytes.Clone(data[end-int64(len(v)) : end])
				items = append(items, validator.item(len(items), raw, fast))
			}
			if _, err := dec.ReadToken(); err != nil { // ']'
				return nil, fail(err)
			}
			if len(items) == 0 {
				return nil, envelopeError(`"objects" at byte offset %d is empty: an envelope must hold at least one object`, arrayOff)
			}
		case "type":
			v, err := dec.ReadValue()
			if err != nil {
				return nil, fail(err)
			}
			if v.Kind() == '"' && unquoted(v) == "bundle" {
				return nil, envelopeError(`the body is a STIX bundle ("type": "bundle" at byte offset %d): `+
					`TAXII 2.1 expects an envelope {"objects": [...]}, not a bundle; `+
					`send the bundle's "objects" array in an envelope instead`, nameOff)
			}
		default: // "more", "next" and members TAXII does not define
			if err := dec.SkipValue(); err != nil {
				return nil, fail(err)
			}
		}
	}
	if _, err := dec.ReadToken(); err != nil { // '}'
		return nil, fail(err)
	}
	end := dec.InputOffset()
	if _, err := dec.ReadToken(); err != io.EOF {
		return nil, envelopeError("trailing data after the envelope at byte offset %d", end+int64(countSpace(data[end:])))
	}
	if !seen["objects"] {
		if seen["type"] || seen["id"] {
			return nil, envelopeError(`the body has no "objects" member: it looks like a single STIX object; ` +
				`TAXII 2.1 expects an envelope {"objects": [...]}`)
		}
		return nil, envelopeError(`the envelope has no "objects" member`)
	}
	return items, nil
}

// envelopeError returns an Invalid error about the envelope as a whole.
func envelopeError(format string, args ...any) error {
	return ctigate.Errorf(ctigate.Invalid, "invalid TAXII envelope: "+format, args...)
}

// syntaxError turns an error of the envelope decoder into an Invalid error
// naming the byte offset.
func syntaxError(err error) error {
	var se *jsontext.SyntacticError
	switch {
	case errors.Is(err, io.ErrUnexpectedEOF), err == io.EOF:
		return envelopeError("invalid JSON: unexpected end of input")
	case errors.As(err, &se):
		msg := "syntax error"
		if se.Err != nil {
			msg = se.Err.Error()
		}
		if se.JSONPointer != "" {
			return envelopeError("invalid JSON at byte offset %d (in %s): %s", se.ByteOffset, quoteValue(string(se.JSONPointer)), msg)
		}
		return envelopeError("invalid JSON at byte offset %d: %s", se.ByteOffset, msg)
	default:
		return envelopeError("invalid JSON: %v", err)
	}
}

// kindName names a JSON kind for messages.
func kindName(k jsontext.Kind) string {
	switch k {
	case '{':
		return "object"
	case '[':
		return "array"
	case '"':
		return "string"
	case '0':
		return "number"
	case 't', 'f':
		return "boolean"
	case 'n':
		return "null"
	}
	return "value"
}

// unquoted returns the content of the JSON string v, or "" if v is not a
// valid JSON string.
func unquoted(v []byte) string {
	b, err := jsontext.AppendUnquote(nil, v)
	if err != nil {
		return ""
	}
	return string(b)
}

// countSpace returns the number of leading JSON whitespace bytes of b.
func countSpace(b []byte) int {
	n := 0
	for n < len(b) && (b[n] == ' ' || b[n] == '\t' || b[n] == '\n' || b[n] == '\r') {
		n++
	}
	return n
}

// itemLabel names element i in messages.
func itemLabel(i int) string {
	return "objects[" + strconv.Itoa(i) + "]"
}
