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
	// Raw is the element exactly as sent: the same bytes, whitespace,
	// member order and escapes. It is a copy owned by the Item.
	Raw []byte
	// ID is the element's "id" when that is a string, else "". It is set
	// for invalid objects too (for status reports), unless "id" appears
	// more than once.
	ID string
	// Version is the element's "modified", else its "created", exactly as
	// sent, when that is a string; else "". Like ID, it is set for invalid
	// objects too, unless the member appears more than once.
	Version string
	// Object holds the validated common properties; it is the zero Object
	// unless Err is nil.
	Object Object
	// Err is nil when the element is a valid STIX 2.1 object (see
	// DecodeEnvelope for the rules). Otherwise it is a *ctigate.Error of
	// kind Invalid, safe to show to the producer, whose message has the
	// form "<id or objects[i]>: <property>: <rule>", for example
	// `relationship--1621d4d4-b67d-11e3-9670-f01faf20d111: created: must be
	// a STIX timestamp, YYYY-MM-DDTHH:MM:SS[.s+]Z in UTC, got
	// "2022-101-27T13:49:54.326Z"`. The object is named by its id when
	// that is a valid identifier, by its position otherwise; the property
	// of a duplicate member is its JSON Pointer without the leading slash.
	// An object over the Limits of DecodeEnvelopeLimited fails with kind
	// TooLarge and a message of the same form naming the limit.
	Err error
	// Warnings lists what a valid object does that STIX 2.1 says it
	// SHOULD NOT (such as a SCO whose UUIDv5 id is not the deterministic
	// id of its properties), each "<property>: <finding>"; nil when there
	// is nothing to say, and always nil when Err is set.
	Warnings []string
}

// Object holds the common properties of a valid STIX 2.1 object.
type Object struct {
	ID          string    // "<type>--<UUID>"
	Type        string    // the type, equal to the prefix of ID
	SpecVersion string    // always "2.1", also for SCOs that omit it
	Created     time.Time // zero when absent (SCOs)
	Modified    time.Time // zero when absent (SCOs, marking definitions)
	Version     time.Time // Modified, else Created, else zero
}

// DecodeEnvelope decodes a TAXII 2.1 envelope, {"objects": [...]}, and
// validates each object in it on its own.
//
// It fails, with a *ctigate.Error of kind Invalid whose message names the
// problem and, where there is one, its byte offset, only when the envelope
// as a whole is unusable: the body is not exactly one JSON value (empty,
// malformed, trailing data), holds invalid UTF-8 anywhere, is not an
// object, repeats a top-level member, has no "objects", has an "objects"
// that is not a non-empty array, or holds more than MaxObjects elements.
// Other top-level members (such as "more" and "next") are ignored, so a
// STIX bundle is read as the envelope of its objects.
//
// Otherwise it returns one Item per element of "objects", in order. An
// element fails on its own, with Item.Err set and the other elements
// unaffected, when
//
//   - it is not a JSON object;
//   - it repeats a member name at any depth (also when the names are
//     spelled differently, as "type" and "t\u0079pe"), so that no two
//     readers can disagree about what the object says;
//   - type is missing, not a string, or not a valid type name (STIX 2.1
//     §3.1, §11.2.1): 3 to 250 characters of a–z, 0–9 and hyphen, beginning
//     with a letter, with no "--" and no trailing hyphen;
//   - id is missing, not a string, or not "<type>--<UUID>" with the prefix
//     equal to type and the UUID an RFC 4122 UUID (§2.9) of version 1 to 5
//     and variant 10, written in lowercase hexadecimal 8-4-4-4-12;
//   - spec_version is not "2.1", or is missing from an object that is not
//     a SCO (§3.2: for SCOs it is optional and defaults to "2.1");
//   - created or modified, where present, is not a STIX timestamp (see
//     ParseTimestamp) with at least millisecond precision (§3.2), or
//     modified is earlier than created;
//   - created is missing from an SDO, SRO, language-content,
//     extension-definition, marking-definition or custom object, or
//     modified is missing from any of those but marking-definition.
//
// SCOs are the 18 types of STIX 2.1 §6, and custom objects whose
// extensions include one of extension_type "new-sco" (§7.3); any other
// type STIX 2.1 does not define is a custom object with the SDO rules.
//
// An object that passes these checks is then checked by the rules of its
// type (validate_types.go): required properties, property types (lists
// non-empty, integers in range, timestamps, hashes, kill chain phases,
// external references, granular markings, extensions), the enumerations
// STIX says MUST for, the types identifier references may point at, and
// rules across properties (valid_until after valid_from, last_seen not
// before first_seen, ...). Open vocabularies accept any value. Custom
// properties must have names of 3 to 250 characters a–z, 0–9 and "_" and
// a value that is neither null nor an empty list. Validation never changes
// Raw. Findings the specification makes SHOULD rules of, such as a SCO
// whose UUIDv5 id is not its deterministic id, are Item.Warnings.
func DecodeEnvelope(data []byte) ([]Item, error) {
	// The fast path decodes the whole envelope with duplicate names
	// rejected, so that each object, known to be free of them, needs only a
	// light scan of its top-level members. Duplicate names inside one
	// object must fail that object only, though, so the first duplicate
	// anywhere sends the envelope down the careful path: decode it with
	// duplicates let through (checking the top-level members here) and
	// check each object strictly on its own. Both paths give the same
	// result; invalid UTF-8 fails the envelope on both.
	return DecodeEnvelopeLimited(data, Limits{})
}

// MaxObjects is the most elements one envelope may hold. It bounds the
// work and memory one request can cause (each element, even a bare
// number, becomes an Item and a status entry).
const MaxObjects = 100_000

// errRetryCareful reports that the fast path met a duplicate member name.
var errRetryCareful = errors.New("stix: duplicate member name: decode carefully")

// decodeEnvelope implements DecodeEnvelopeLimited on the fast path (fast)
// or on the careful path.
func decodeEnvelope(data []byte, fast bool, lim Limits) ([]Item, error) {
	dec := jsontext.NewDecoder(bytes.NewBuffer(data), jsontext.AllowDuplicateNames(!fast))
	fail := func(err error) error {
		if fast && errors.Is(err, jsontext.ErrDuplicateName) {
			return errRetryCareful
		}
		return syntaxError(err)
	}

	switch k := dec.PeekKind(); k {
	case '{':
		if _, err := dec.ReadToken(); err != nil {
			return nil, fail(err)
		}
	case 0: // empty or not JSON
		_, err := dec.ReadToken()
		if err == io.EOF {
			return nil, envelopeError(`empty body: expected a TAXII envelope {"objects": [...]}`)
		}
		return nil, fail(err)
	default:
		v, err := dec.ReadValue()
		if err != nil {
			return nil, fail(err)
		}
		return nil, envelopeError(`the body is a JSON %s at byte offset %d: expected a TAXII envelope {"objects": [...]}`,
			kindName(k), dec.InputOffset()-int64(len(v)))
	}

	var (
		elems []span                     // the elements of "objects", validated last
		seen  = make(map[string]bool, 4) // top-level member names
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
				if len(elems) == MaxObjects {
					return nil, envelopeError(`"objects" holds more than %d elements; split it into several requests`, MaxObjects)
				}
				end := int(dec.InputOffset())
				elems = append(elems, span{end - len(v), end})
			}
			if _, err := dec.ReadToken(); err != nil { // ']'
				return nil, fail(err)
			}
			if len(elems) == 0 {
				return nil, envelopeError(`"objects" at byte offset %d is empty: an envelope must hold at least one object`, arrayOff)
			}
		default: // "more", "next", members TAXII does not define, and a
			// STIX bundle's "type" and "id": a bundle is accepted as an
			// envelope, since STIX tooling hands producers bundles.
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

	// The envelope is sound: validate its objects. Each Raw is copied from
	// data (the decoder's values are only valid until its next read).
	items := make([]Item, len(elems))
	v := validator{lim: lim}
	for i, e := range elems {
		v.item(&items[i], i, bytes.Clone(data[e.start:e.end]), fast)
	}
	return items, nil
}

// span locates an element of "objects" in the envelope: data[start:end].
type span struct{ start, end int }

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
