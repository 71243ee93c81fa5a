package stix

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/ctigate/ctigate"
)

// The top-level members of an object that validation reads.
const (
	mType = iota
	mID
	mSpecVersion
	mCreated
	mModified
	mExtensions
	numMembers
)

// memberNames are the names of the members above, indexed alike.
var memberNames = [numMembers]string{"type", "id", "spec_version", "created", "modified", "extensions"}

// members holds the raw JSON values of the members validation reads, each a
// sub-slice of the object's bytes, nil when absent.
type members [numMembers][]byte

// complete reports whether m holds everything validation can read, so that
// the object's remaining members need not be scanned: type, id,
// spec_version, created and modified, and extensions unless the type is one
// STIX defines (only custom types consult extensions).
func (m *members) complete() bool {
	if m[mType] == nil || m[mID] == nil || m[mSpecVersion] == nil || m[mCreated] == nil || m[mModified] == nil {
		return false
	}
	if m[mExtensions] != nil {
		return true
	}
	typ, ok := stringValue(m[mType])
	return ok && isSpecType(typ)
}

// validator decodes and validates the objects of one envelope. It reuses
// its decoder from one object to the next.
type validator struct {
	dec jsontext.Decoder
	buf bytes.Buffer
	fs  fieldSet // scratch for properties
	ctx vctx     // scratch for properties
	lim Limits   // bounds beyond STIX's rules
}

// item fills it with element i of "objects", whose exact bytes are raw
// (owned by the Item). known says raw is already known to be free of
// duplicate member names.
func (v *validator) item(it *Item, i int, raw []byte, known bool) {
	*it = Item{Index: i, Raw: raw}
	if k := jsontext.Value(raw).Kind(); k != '{' {
		it.Err = invalidf("%s: must be a JSON object, got %s", itemLabel(i), kindName(k))
		return
	}

	var m members
	if !known || !scanKnown(raw, &m) {
		m = members{}
		if err := v.scan(raw, &m); err != nil {
			// The object is not valid on its own (a duplicate member
			// name): report its id and version only where they are
			// unambiguous.
			m = scanLenient(raw)
			it.ID, it.Version = idAndVersion(&m)
			it.Err = strictError(label(i, &m), err)
			return
		}
	}
	it.ID, it.Version = idAndVersion(&m)
	var problem string
	kind := ctigate.Invalid
	it.Object, problem = validate(&m, it.ID)
	if problem == "" {
		problem, it.Warnings = v.properties(raw, it.Object.ID, it.Object.Type, objectClass(&m))
		if v.ctx.overLimit {
			kind = ctigate.TooLarge
		}
	}
	if problem != "" {
		it.Object = Object{}
		// Concatenated, not formatted: an envelope may hold 100,000 refusals.
		it.Err = &ctigate.Error{Kind: kind, Msg: label(i, &m) + ": " + problem}
	}
}

// scan reads the top-level members of the object raw into m, rejecting
// duplicate member names at every depth.
func (v *validator) scan(raw []byte, m *members) error {
	v.buf = *bytes.NewBuffer(raw)
	// Strict: no duplicate names, valid UTF-8 only.
	v.dec.Reset(&v.buf)
	if _, err := v.dec.ReadToken(); err != nil { // '{'
		return err
	}
	for v.dec.PeekKind() == '"' {
		name, err := v.dec.ReadValue()
		if err != nil {
			return err
		}
		idx := memberIndex(name)
		val, err := v.dec.ReadValue()
		if err != nil {
			return err
		}
		if idx >= 0 {
			end := v.dec.InputOffset()
			m[idx] = raw[end-int64(len(val)) : end]
		}
	}
	_, err := v.dec.ReadToken() // '}'
	return err
}

// scanKnown reads the top-level members of raw into m like scan, but
// without validating: raw must be a JSON object already known to be valid
// and free of duplicate names. It reports false, leaving m partly filled,
// if raw turns out not to be a well-formed object after all.
func scanKnown(raw []byte, m *members) bool {
	i := skipSpace(raw, 0)
	if i >= len(raw) || raw[i] != '{' {
		return false
	}
	i = skipSpace(raw, i+1)
	if i < len(raw) && raw[i] == '}' {
		return skipSpace(raw, i+1) == len(raw)
	}
	for i < len(raw) {
		// The name.
		start := i
		if i = skipString(raw, i); i < 0 {
			return false
		}
		idx := memberIndex(raw[start:i])
		if i = skipSpace(raw, i); i >= len(raw) || raw[i] != ':' {
			return false
		}
		// The value.
		start = skipSpace(raw, i+1)
		if i = skipValue(raw, start); i < 0 {
			return false
		}
		if idx >= 0 {
			m[idx] = raw[start:i]
			if m.complete() {
				return true // the rest cannot change the outcome
			}
		}
		// A comma and the next name, or the end.
		if i = skipSpace(raw, i); i >= len(raw) {
			return false
		}
		switch raw[i] {
		case ',':
			i = skipSpace(raw, i+1)
		case '}':
			return skipSpace(raw, i+1) == len(raw)
		default:
			return false
		}
	}
	return false
}

// skipSpace returns the index of the first byte of b at or after i that
// is not JSON whitespace.
func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\n' || b[i] == '\r' || b[i] == '\t') {
		i++
	}
	return i
}

// skipString returns the index just past the JSON string at b[i:], or -1.
func skipString(b []byte, i int) int {
	if i >= len(b) || b[i] != '"' {
		return -1
	}
	// The common case, a string without escapes, with a vectorised search.
	if end := bytes.IndexByte(b[i+1:], '"'); end >= 0 && bytes.IndexByte(b[i+1:i+1+end], '\\') < 0 {
		return i + 1 + end + 1
	}
	for i++; i < len(b); i++ {
		if c := b[i]; c == '"' {
			return i + 1
		} else if c == '\\' {
			i++ // skip the escaped byte ('"', '\\', 'u', ...)
		}
	}
	return -1
}

// skipValue returns the index just past the JSON value at b[i:], or -1.
func skipValue(b []byte, i int) int {
	if i >= len(b) {
		return -1
	}
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for i < len(b) {
			switch b[i] {
			case '"':
				if i = skipString(b, i); i < 0 {
					return -1
				}
				continue
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return i + 1
				}
			}
			i++
		}
		return -1
	default: // a number or a literal
		start := i
		for i < len(b) {
			switch b[i] {
			case ',', '}', ']', ' ', '\n', '\r', '\t':
				return i
			}
			i++
		}
		if i == start {
			return -1
		}
		return i
	}
}

// scanLenient reads the top-level members of raw like scan but tolerates
// duplicate names: a member that appears more than once is left out (nil),
// since readers may disagree about its value. It is used only to report an
// object that failed scan.
func scanLenient(raw []byte) members {
	var (
		m     members
		count [numMembers]int
	)
	dec := jsontext.NewDecoder(bytes.NewBuffer(raw), jsontext.AllowDuplicateNames(true))
	if _, err := dec.ReadToken(); err != nil {
		return members{}
	}
	for dec.PeekKind() == '"' {
		name, err := dec.ReadValue()
		if err != nil {
			return members{}
		}
		idx := memberIndex(name)
		val, err := dec.ReadValue()
		if err != nil {
			return members{}
		}
		if idx >= 0 {
			count[idx]++
			end := dec.InputOffset()
			m[idx] = raw[end-int64(len(val)) : end]
		}
	}
	for idx, n := range count {
		if n > 1 {
			m[idx] = nil
		}
	}
	return m
}

// memberIndex returns the index of the member whose quoted name is name,
// or -1 for members validation does not read.
func memberIndex(quoted []byte) int {
	switch string(quoted) {
	case `"type"`:
		return mType
	case `"id"`:
		return mID
	case `"spec_version"`:
		return mSpecVersion
	case `"created"`:
		return mCreated
	case `"modified"`:
		return mModified
	case `"extensions"`:
		return mExtensions
	}
	if bytes.IndexByte(quoted, '\\') < 0 {
		return -1
	}
	// An escaped name ("\u0069d") means the same as the plain one.
	name, err := jsontext.AppendUnquote(nil, quoted)
	if err != nil {
		return -1
	}
	for idx, n := range memberNames {
		if string(name) == n {
			return idx
		}
	}
	return -1
}

// stringValue returns the content of the raw JSON value v when it is a
// string. It allocates only when v holds escape sequences.
func stringValue(v []byte) (s []byte, ok bool) {
	if len(v) < 2 || v[0] != '"' {
		return nil, false
	}
	if bytes.IndexByte(v, '\\') < 0 {
		return v[1 : len(v)-1], true
	}
	s, err := jsontext.AppendUnquote(nil, v)
	if err != nil {
		return nil, false
	}
	return s, true
}

// idAndVersion returns the object's id, and its modified else created, when
// those are strings.
func idAndVersion(m *members) (id, version string) {
	if s, ok := stringValue(m[mID]); ok {
		id = string(s)
	}
	if s, ok := stringValue(m[mModified]); ok {
		version = string(s)
	} else if s, ok := stringValue(m[mCreated]); ok {
		version = string(s)
	}
	return id, version
}

// label names the object in messages: its id when that is a valid
// identifier, else its position.
func label(i int, m *members) string {
	if s, ok := stringValue(m[mID]); ok && isIdentifier(s) {
		return string(s)
	}
	return itemLabel(i)
}

// validate checks the common properties of an object (STIX 2.1 §3.2) and
// returns them, or a problem of the form "<property>: <rule>". id is the
// object's id if that is a string.
func validate(m *members, id string) (obj Object, problem string) {
	// type
	typ, problem := requiredString(m, mType)
	if problem != "" {
		return obj, problem
	}
	if p := typeProblem(typ); p != "" {
		return obj, fmt.Sprintf("type: %s, got %s", p, quoteValue(typ))
	}

	// id
	idBytes, problem := requiredString(m, mID)
	if problem != "" {
		return obj, problem
	}
	prefix, uuid, ok := splitID(idBytes)
	if !ok {
		return obj, fmt.Sprintf(`id: must be "%s--<UUID>", got %s`, typ, quoteValue(idBytes))
	}
	if !bytes.Equal(prefix, typ) {
		return obj, fmt.Sprintf("id: prefix %s does not match type %s", quoteValue(prefix), quoteValue(typ))
	}
	if p := uuidProblem(uuid); p != "" {
		return obj, fmt.Sprintf("id: UUID part %s %s", quoteValue(uuid), p)
	}
	obj = Object{ID: id, Type: id[:len(typ)], SpecVersion: "2.1"}

	c := objectClass(m)

	// spec_version: required but for SCOs, where it defaults to "2.1".
	if m[mSpecVersion] != nil || c != classObservable {
		sv, problem := requiredString(m, mSpecVersion)
		if problem != "" {
			return Object{}, problem
		}
		if string(sv) != "2.1" {
			return Object{}, fmt.Sprintf(`spec_version: must be "2.1", got %s`, quoteValue(sv))
		}
	}

	// created and modified: SCOs have neither (they may carry them when a
	// producer versions them), marking-definition has no modified.
	var hasCreated, hasModified bool
	if m[mCreated] != nil || c != classObservable {
		if obj.Created, problem = timestamp(m, mCreated); problem != "" {
			return Object{}, problem
		}
		hasCreated = true
	}
	if m[mModified] != nil || c == classDomain {
		if obj.Modified, problem = timestamp(m, mModified); problem != "" {
			return Object{}, problem
		}
		hasModified = true
	}
	if hasCreated && hasModified && obj.Modified.Before(obj.Created) {
		return Object{}, fmt.Sprintf("modified: must not be earlier than created (%s < %s)",
			quoteValue(stringOrEmpty(m[mModified])), quoteValue(stringOrEmpty(m[mCreated])))
	}
	switch {
	case hasModified:
		obj.Version = obj.Modified
	case hasCreated:
		obj.Version = obj.Created
	}
	return obj, ""
}

// objectClass returns the class of the object whose type m holds, which
// must be a string: custom objects declared through an extension
// definition of extension_type "new-sco" are SCOs.
func objectClass(m *members) class {
	typ, _ := stringValue(m[mType])
	c := classOf(typ)
	if c == classDomain && m[mExtensions] != nil && !isSpecType(typ) && isNewSCO(m[mExtensions]) {
		c = classObservable
	}
	return c
}

// requiredString returns the content of member idx, which must be present
// and a string, or a problem.
func requiredString(m *members, idx int) (s []byte, problem string) {
	v := m[idx]
	if v == nil {
		return nil, memberNames[idx] + ": required"
	}
	s, ok := stringValue(v)
	if !ok {
		return nil, fmt.Sprintf("%s: must be a string, got %s", memberNames[idx], kindName(jsontext.Value(v).Kind()))
	}
	return s, ""
}

// timestamp returns member idx (created or modified), which must be present
// and a STIX timestamp with at least millisecond precision (STIX 2.1 §3.2),
// or a problem.
func timestamp(m *members, idx int) (t time.Time, problem string) {
	s, problem := requiredString(m, idx)
	if problem != "" {
		return t, problem
	}
	t, frac, p := parseTimestamp(s)
	if p != "" {
		return t, fmt.Sprintf("%s: %s, got %s", memberNames[idx], p, quoteValue(s))
	}
	if frac < 3 {
		return time.Time{}, fmt.Sprintf("%s: must have at least millisecond precision (three fraction digits), got %s",
			memberNames[idx], quoteValue(s))
	}
	return t, ""
}

// stringOrEmpty returns the content of a raw JSON string, or "".
func stringOrEmpty(v []byte) string {
	s, _ := stringValue(v)
	return string(s)
}

// isNewSCO reports whether the extensions property ext declares the object
// a custom SCO: an extension of extension_type "new-sco" (STIX 2.1 §7.3).
// Anything unreadable counts as no, which keeps the stricter SDO rules.
func isNewSCO(ext []byte) bool {
	var exts map[string]struct {
		ExtensionType string `json:"extension_type"`
	}
	if err := json.Unmarshal(ext, &exts); err != nil {
		return false
	}
	for _, e := range exts {
		if e.ExtensionType == "new-sco" {
			return true
		}
	}
	return false
}

// strictError reports why an object failed the strict decoder: a
// duplicate member name, at the JSON Pointer the decoder names.
func strictError(label string, err error) error {
	var se *jsontext.SyntacticError
	if !errors.As(err, &se) {
		return invalidf("%s: invalid JSON object", label)
	}
	prop := strings.TrimPrefix(string(se.JSONPointer), "/")
	if prop == "" {
		prop = "(object)"
	}
	if errors.Is(se.Err, jsontext.ErrDuplicateName) {
		return invalidf("%s: %s: duplicate member name", label, quoteIfOdd(prop))
	}
	return invalidf("%s: %s: %v", label, quoteIfOdd(prop), se.Err)
}

// quoteIfOdd returns a property path as is when it is plain printable
// ASCII, quoted otherwise.
func quoteIfOdd(p string) string {
	for i := 0; i < len(p); i++ {
		if c := p[i]; c < 0x21 || c > 0x7e || c == '"' || c == ':' {
			return quoteValue(p)
		}
	}
	if len(p) > 64 {
		return quoteValue(p)
	}
	return p
}

// invalidf returns an Invalid error whose client-safe message is formatted.
func invalidf(format string, args ...any) error {
	return ctigate.Errorf(ctigate.Invalid, format, args...)
}

// quoteValue quotes s for an error message, shortened to a readable length
// without splitting a UTF-8 sequence.
func quoteValue[S string | []byte](s S) string {
	const max = 64
	if len(s) <= max {
		return fmt.Sprintf("%q", s)
	}
	cut := max
	for cut > 0 && s[cut]&0xC0 == 0x80 { // do not cut inside a UTF-8 sequence
		cut--
	}
	return fmt.Sprintf("%q…", s[:cut])
}

// Revoked reports whether raw, an object's JSON, has "revoked": true.
//
// Most objects have no such member or have "revoked": false; they are
// answered without decoding raw. Only where raw has the name written
// plainly and followed by a value beginning with 't', or has a \u escape
// (which could spell the name), is it decoded.
func Revoked(raw []byte) bool {
	if !mayBeRevoked(raw) {
		return false
	}
	var v struct {
		Revoked bool `json:"revoked"`
	}
	return json.Unmarshal(raw, &v) == nil && v.Revoked
}

var revokedName = []byte(`"revoked"`)

// mayBeRevoked is false only where raw cannot have a top-level member
// "revoked" whose value is true: no occurrence of the name written without
// escapes is followed by ':' and a value beginning with 't', and raw has
// no \u escape, the only escape that can stand for a letter of the name.
func mayBeRevoked(raw []byte) bool {
	for i := 0; ; {
		j := bytes.Index(raw[i:], revokedName)
		if j < 0 {
			return bytes.Contains(raw, []byte(`\u`))
		}
		k := skipSpace(raw, i+j+len(revokedName))
		if k < len(raw) && raw[k] == ':' {
			if k = skipSpace(raw, k+1); k < len(raw) && raw[k] == 't' {
				return true
			}
		}
		i += j + 1
	}
}
