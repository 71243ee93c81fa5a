package stix

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/go-json-experiment/json/jsontext"

	stixpattern "github.com/ctigate/ctigate/stix/pattern"
)

// This file holds the engine of per-type validation: a walk over the
// members of an object already known to be valid JSON free of duplicate
// names, and the rule tables it applies (see validate_types.go for the
// tables, validate_values.go for the checkers of STIX data types).
//
// A rule reports a problem as a string, "" when the value is valid. A
// problem that starts with "[" or "." carries a sub-path ("[0].source_name:
// required"), which the caller prefixes with the property's own name; any
// other problem is a rule about the value itself ("must be a string, got
// number"), which the caller prefixes with "<name>: ".

// check validates one JSON value.
type check func(c *vctx, v []byte) string

// objCheck validates rules that span several members of one object. It
// returns "<member>: <rule>", or ": <rule>" for a rule about the object as
// a whole, or "".
type objCheck func(c *vctx, o *fieldSet) string

// rules describe a JSON object: a checker per known member, the members it
// requires, and its cross-member rules. Members without a checker are
// accepted as they are, unless custom is set.
type rules struct {
	props    map[string]check
	required []string
	checks   []objCheck
	// custom, for top-level objects, subjects members without a checker to
	// the rules for custom properties (STIX 2.1 §11.1).
	custom bool
}

// typeDef is the rule set of one object type.
type typeDef struct {
	rules
	// scoIDProps are the ID contributing properties of a STIX-defined SCO
	// (STIX 2.1 §6), whose UUIDv5 ids are checked; nil for other types.
	scoIDProps []string
}

// vctx carries what checkers need to know about the object being checked.
type vctx struct {
	typ      string   // the object's type
	id       string   // the object's id
	raw      []byte   // the whole object
	warnings []string // SHOULD-level findings
	// overLimit says that the problem found is the object's being over
	// one of the validator's Limits, not a broken rule.
	overLimit bool
}

// field is one member of a JSON object: its name (unquoted) and raw value.
type field struct {
	name []byte
	val  []byte
}

// fieldSet is the members of one object, in order.
type fieldSet struct {
	fields []field
}

// get returns the raw value of member name, or nil.
func (s *fieldSet) get(name string) []byte {
	for i := range s.fields {
		if string(s.fields[i].name) == name {
			return s.fields[i].val
		}
	}
	return nil
}

// has reports whether member name is present.
func (s *fieldSet) has(name string) bool { return s.get(name) != nil }

// readFields appends the members of the JSON object obj, which must be
// valid JSON, to dst.
func readFields(dst []field, obj []byte) []field {
	i := skipSpace(obj, 0)
	if i >= len(obj) || obj[i] != '{' {
		return dst
	}
	i = skipSpace(obj, i+1)
	for i < len(obj) && obj[i] == '"' {
		start := i
		if i = skipString(obj, i); i < 0 {
			return dst
		}
		name, _ := stringValue(obj[start:i])
		i = skipSpace(obj, i)
		if i >= len(obj) || obj[i] != ':' {
			return dst
		}
		start = skipSpace(obj, i+1)
		if i = skipValue(obj, start); i < 0 {
			return dst
		}
		dst = append(dst, field{name, obj[start:i]})
		i = skipSpace(obj, i)
		if i < len(obj) && obj[i] == ',' {
			i = skipSpace(obj, i+1)
		}
	}
	return dst
}

// arrayIter walks the elements of a JSON array known to be valid.
type arrayIter struct {
	b []byte
	i int
}

// newArrayIter returns an iterator over the array v (v[0] == '[').
func newArrayIter(v []byte) arrayIter { return arrayIter{v, skipSpace(v, 1)} }

// next returns the next element, or nil at the end.
func (it *arrayIter) next() []byte {
	if it.i >= len(it.b) || it.b[it.i] == ']' {
		return nil
	}
	start := it.i
	end := skipValue(it.b, start)
	if end < 0 {
		it.i = len(it.b)
		return nil
	}
	it.i = skipSpace(it.b, end)
	if it.i < len(it.b) && it.b[it.i] == ',' {
		it.i = skipSpace(it.b, it.i+1)
	}
	return it.b[start:end]
}

// at prefixes the problem p about a member with the member's name.
func at(name, p string) string {
	if p == "" {
		return ""
	}
	if p[0] == '[' || p[0] == '.' {
		return name + p
	}
	return name + ": " + p
}

// atIndex prefixes the problem p about element i of a list.
func atIndex(i int, p string) string {
	if p == "" {
		return ""
	}
	return at("["+strconv.Itoa(i)+"]", p)
}

// properties validates the members of the object raw beyond the common
// properties validate already checked, by the rules of its type. typ is
// its type and c its class. It returns the first problem found, in the form
// "<property path>: <rule>", and the SHOULD-level findings.
func (v *validator) properties(raw []byte, id, typ string, c class) (problem string, warnings []string) {
	def := typeDefs[typ]
	if def == nil {
		def = customDomain
		if c == classObservable {
			def = customObservable
		}
	}
	// The scratch state lives in v, so that checking an object allocates
	// nothing on the common path.
	v.fs.fields = readFields(v.fs.fields[:0], raw)
	fs := &v.fs
	v.ctx = vctx{typ: typ, id: id, raw: raw}
	ctx := &v.ctx
	if p := checkObject(ctx, &def.rules, fs, ""); p != "" {
		return p, nil
	}
	if def.scoIDProps != nil {
		checkSCOID(ctx, def.scoIDProps, fs)
	}
	if typ == "indicator" {
		pt, _ := stringValue(fs.get("pattern_type"))
		pat, _ := stringValue(fs.get("pattern"))
		if p := v.lim.checkPattern(string(pt), pat); p != "" {
			ctx.overLimit = true
			return at("pattern", p), nil
		}
		if p := validatePattern(string(pt), string(pat)); p != "" {
			return at("pattern", p), nil
		}
	}
	return "", ctx.warnings
}

// checkObject applies r to the members fs of an object. prefix is "" for a
// top-level object and "." for a nested one, so that member names become
// sub-paths.
func checkObject(c *vctx, r *rules, fs *fieldSet, prefix string) string {
	for _, name := range r.required {
		if !fs.has(name) {
			return prefix + name + ": required"
		}
	}
	for i := range fs.fields {
		f := &fs.fields[i]
		chk := r.props[string(f.name)]
		var p string
		switch {
		case chk != nil:
			p = chk(c, f.val)
		case r.custom:
			if p = customPropertyName(f.name); p != "" {
				return prefix + quoteIfOdd(string(f.name)) + ": " + p
			}
			p = customValue(f.val)
		}
		if p != "" {
			return at(prefix+string(f.name), p)
		}
	}
	for _, chk := range r.checks {
		p := chk(c, fs)
		switch {
		case p == "":
		case strings.HasPrefix(p, ": ") && prefix == "":
			return "(object)" + p
		case strings.HasPrefix(p, ": "):
			return p[2:] // a rule about the nested object as a whole
		default:
			return prefix + p
		}
	}
	return ""
}

// object returns a checker for a nested JSON object described by r.
func object(r *rules) check {
	return func(c *vctx, v []byte) string {
		if k := jsontext.Value(v).Kind(); k != '{' {
			return "must be an object, got " + kindName(k)
		}
		fs := fieldSet{readFields(nil, v)}
		return checkObject(c, r, &fs, ".")
	}
}

// customPropertyName returns why name is not a valid custom property name
// (STIX 2.1 §11.1: 3 to 250 characters of a–z, 0–9 and underscore), or "".
func customPropertyName(name []byte) string {
	if len(name) < 3 || len(name) > 250 {
		return "custom property names must be 3 to 250 characters long"
	}
	for _, ch := range name {
		if !('a' <= ch && ch <= 'z' || '0' <= ch && ch <= '9' || ch == '_') {
			return "custom property names must contain only a–z, 0–9 and underscore"
		}
	}
	return ""
}

// customValue checks the value of a top-level custom property: any JSON
// value but null or an empty list (STIX 2.1 §3.1: lists must not be empty;
// no property is null).
func customValue(v []byte) string {
	switch jsontext.Value(v).Kind() {
	case 'n':
		return "must not be null"
	case '[':
		it := newArrayIter(v)
		if it.next() == nil {
			return "must not be empty"
		}
	}
	return ""
}

// --- cross-member rules -----------------------------------------------

// requireOne returns a rule that at least one of names is present.
func requireOne(names ...string) objCheck {
	msg := "must have at least one of " + strings.Join(names, ", ")
	return func(c *vctx, o *fieldSet) string {
		for _, n := range names {
			if o.has(n) {
				return ""
			}
		}
		return ": " + msg
	}
}

// exclusive returns a rule that a and b are not both present.
func exclusive(a, b string) objCheck {
	return func(c *vctx, o *fieldSet) string {
		if o.has(a) && o.has(b) {
			return b + ": must not be present together with " + a
		}
		return ""
	}
}

// requires returns a rule that b is present when a is.
func requires(a, b string) objCheck {
	return func(c *vctx, o *fieldSet) string {
		if o.has(a) && !o.has(b) {
			return b + ": required when " + a + " is present"
		}
		return ""
	}
}

// order returns a rule that timestamp b is later than timestamp a (strict)
// or not earlier than it, when both are present and valid.
func order(a, b string, strict bool) objCheck {
	msg := "must not be earlier than " + a
	if strict {
		msg = "must be later than " + a
	}
	return func(c *vctx, o *fieldSet) string {
		ta, ok1 := timeOf(o.get(a))
		tb, ok2 := timeOf(o.get(b))
		if !ok1 || !ok2 {
			return ""
		}
		if tb.Before(ta) || strict && tb.Equal(ta) {
			return b + ": " + msg
		}
		return ""
	}
}

// atLeastOneProperty returns a rule that the object holds at least one of
// the properties its type defines, or an extension (STIX 2.1 §6: process,
// user-account, windows-registry-key and x509-certificate, whose properties
// are all optional).
func atLeastOneProperty(names ...string) objCheck {
	names = append(names, "extensions")
	return func(c *vctx, o *fieldSet) string {
		for _, n := range names {
			if o.has(n) {
				return ""
			}
		}
		return ": must have at least one " + c.typ + " property"
	}
}

// --- JSON value helpers ------------------------------------------------

// intValue returns the JSON number v as an integer when it is a whole
// number within the range STIX integers have (STIX 2.1 §2.7: a signed
// 54-bit value).
func intValue(v []byte) (n int64, ok bool) {
	if len(v) == 0 {
		return 0, false
	}
	neg := v[0] == '-'
	digits := v
	if neg {
		digits = v[1:]
	}
	if len(digits) > 0 && len(digits) <= 16 {
		plain := true
		for _, c := range digits {
			if c < '0' || c > '9' {
				plain = false
				break
			}
			n = n*10 + int64(c-'0')
		}
		if plain {
			if neg {
				n = -n
			}
			return n, n >= -maxInt && n <= maxInt
		}
	}
	f, ok := floatValue(v)
	if !ok || f != math.Trunc(f) || f < -maxInt || f > maxInt {
		return 0, false
	}
	return int64(f), true
}

// maxInt bounds STIX integers: [-(2**53)+2, (2**53)-2].
const maxInt = 1<<53 - 2

// floatValue returns the JSON number v.
func floatValue(v []byte) (float64, bool) {
	if jsontext.Value(v).Kind() != '0' {
		return 0, false
	}
	f, err := strconv.ParseFloat(string(v), 64)
	return f, err == nil
}

// isTrue reports whether v is the JSON literal true.
func isTrue(v []byte) bool { return bytes.Equal(v, []byte("true")) }

// validatePattern is the hook for checking an indicator's pattern in its
// pattern language. It returns a problem or "". STIX patterns are parsed
// with package stix/pattern; patterns of other languages are not checked.
func validatePattern(patternType, pattern string) string {
	if patternType != "stix" {
		return "" // other pattern languages (snort, yara, sigma, …) are carried as they are
	}
	if _, err := stixpattern.Parse(pattern); err != nil {
		var pe *stixpattern.Error
		if errors.As(err, &pe) {
			return fmt.Sprintf("not a valid STIX pattern: offset %d: %s", pe.Offset, pe.Msg)
		}
		return "not a valid STIX pattern: " + err.Error()
	}
	return ""
}
