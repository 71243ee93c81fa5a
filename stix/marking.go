package stix

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/ctigate/ctigate"
)

// MarkingKind is what a marking definition is to the gateway.
type MarkingKind uint8

// The kinds of marking definition.
const (
	// UnknownMarking is a marking definition the registry does not hold:
	// its meaning is never guessed.
	UnknownMarking MarkingKind = iota
	// TLPMarking is one of the nine standard TLP 1.0 and 2.0 marking
	// definitions.
	TLPMarking
	// StatementMarking is a statement marking (definition_type
	// "statement", STIX 2.1 §7.2.1.3), such as a copyright notice.
	StatementMarking
)

func (k MarkingKind) String() string {
	switch k {
	case UnknownMarking:
		return "unknown"
	case TLPMarking:
		return "tlp"
	case StatementMarking:
		return "statement"
	}
	return "MarkingKind(" + strconv.Itoa(int(k)) + ")"
}

// MarkingDefinition is a marking definition the registry holds.
type MarkingDefinition struct {
	ID        string
	Kind      MarkingKind // TLPMarking or StatementMarking
	TLP       TLP         // the level of a TLP marking, normalised to TLP 2.0; TLPNone otherwise
	Name      string      // the name property, "" when absent ("TLP:WHITE" for TLP 1.0 WHITE)
	Statement string      // the text of a statement marking
	Canonical string      // the definition in RFC 8785 canonical form (see Canonical)
}

// Errors Add reports, wrapped in a *ctigate.Error (test with errors.Is).
var (
	// ErrUntrustedTLP: a marking definition claims to be a TLP marking but
	// is not exactly one of the standard definitions. Its content is never
	// trusted; a standard id keeps its standard meaning.
	ErrUntrustedTLP = errors.New("untrusted TLP marking definition")
	// ErrMarkingRedefined: a marking definition id the registry holds was
	// posted again with different content. Marking definitions cannot be
	// versioned (STIX 2.1 §7.2.1); the first one stays in force.
	ErrMarkingRedefined = errors.New("marking definition redefined")
)

// Markings is the registry of the marking definitions the gateway knows:
// the nine standard TLP definitions, always, and the statement markings
// producers posted. It resolves the markings of objects (see Resolve).
//
// The zero value holds the TLP definitions only and is ready to use. A
// Markings is safe for concurrent use; lookups and Resolve do not lock.
//
// Statement markings are an organisation's own: Of returns the registry
// of one organisation, and an object is resolved against the definitions
// its own organisation posted (and the TLP ones), so that one
// organisation can neither learn from a receipt which definitions
// another one posted, nor block or change the meaning of another's.
type Markings struct {
	mu   sync.Mutex // serialises Add
	defs atomic.Pointer[map[string]*MarkingDefinition]
	orgs sync.Map // organisation -> *Markings
}

// NewMarkings returns a registry that holds the standard TLP definitions.
func NewMarkings() *Markings { return &Markings{} }

// Of returns the registry of organisation org's statement markings (m
// itself for ""), made empty on first use.
func (m *Markings) Of(org string) *Markings {
	if org == "" {
		return m
	}
	if o, ok := m.orgs.Load(org); ok {
		return o.(*Markings)
	}
	o, _ := m.orgs.LoadOrStore(org, &Markings{})
	return o.(*Markings)
}

// Clone returns a registry of its own holding org's definitions (as
// m.Of(org) holds them now), for org: what is added to it is not added
// to m (a dry run registers a bundle's definitions there).
func (m *Markings) Clone(org string) *Markings {
	c := &Markings{}
	c.Of(org).defs.Store(m.Of(org).defs.Load()) // the map is copied on write, never changed
	return c
}

// Lookup returns the marking definition id, and whether the registry holds
// it.
func (m *Markings) Lookup(id string) (MarkingDefinition, bool) {
	if d, ok := standardDefinition(id); ok {
		return d, true
	}
	if defs := m.defs.Load(); defs != nil {
		if d, ok := (*defs)[id]; ok {
			return *d, true
		}
	}
	return MarkingDefinition{}, false
}

// classify returns the kind and TLP level of the marking definition id.
func (m *Markings) classify(id []byte) (MarkingKind, TLP) {
	if t, ok := standardTLP(id); ok {
		return TLPMarking, t
	}
	if defs := m.defs.Load(); defs != nil {
		if d, ok := (*defs)[string(id)]; ok {
			return d.Kind, d.TLP
		}
	}
	return UnknownMarking, TLPNone
}

// Add registers the marking definition raw, a STIX marking-definition
// object (its common properties are DecodeEnvelope's to check). It returns
// nil when the definition is registered or already known as it is, and
// otherwise a *ctigate.Error naming the definition:
//
//   - Invalid, wrapping ErrUntrustedTLP, for one of the standard TLP ids
//     with content other than the standard definition (compared in RFC 8785
//     canonical form, created as an instant), and for a definition that
//     claims to be TLP without a standard id (definition_type "tlp", the
//     TLP 2.0 extension, a "tlp" definition, or a name beginning "TLP:"):
//     STIX allows no TLP definitions but the standard ones. The content is
//     never used: a standard id keeps its standard level, another id stays
//     unknown.
//   - Conflict, wrapping ErrMarkingRedefined, for an id already registered
//     with different content.
//   - Unsupported for marking definitions other than statements and TLP:
//     other definition types and extension-based definitions stay unknown
//     (Resolve reports them in Resolution.Unknown).
//   - Invalid when raw is not a JSON object as Canonical requires, is not
//     a marking-definition, has no valid marking-definition id, or is a
//     statement marking without a statement.
func (m *Markings) Add(raw []byte) error {
	s := getJCS(true)
	defer putJCS(s)
	s.capture = true
	if err := s.run(raw); err != nil {
		return ctigate.Errorf(ctigate.Invalid, "%s: %s", markingLabel(s.top[topID]), err.message())
	}
	canon := string(s.out)
	label := markingLabel(s.top[topID])
	var obj map[string]jsontext.Value
	if err := json.Unmarshal(s.out, &obj); err != nil {
		return ctigate.Errorf(ctigate.Invalid, "%s: a marking definition must be a JSON object, got %s", label, describeJSON(s.out))
	}
	invalid := func(format string, args ...any) error {
		return ctigate.Errorf(ctigate.Invalid, "%s: "+format, append([]any{label}, args...)...)
	}

	typ, problem := markingString(obj, "type", true)
	if problem != "" {
		return invalid("%s", problem)
	}
	if typ != "marking-definition" {
		return invalid(`type: must be "marking-definition", got %s`, markingQuote(typ))
	}
	id, problem := markingString(obj, "id", true)
	if problem != "" {
		return invalid("%s", problem)
	}
	if !markingRefOK([]byte(id)) {
		return invalid(`id: must be "marking-definition--<UUID>", got %s`, markingQuote(id))
	}
	label = id

	if std, ok := standardDefinition(id); ok {
		diff := standardDifference(obj, std)
		if diff == "" {
			return nil
		}
		return &ctigate.Error{Kind: ctigate.Invalid, Err: ErrUntrustedTLP, Msg: fmt.Sprintf(
			"%s: differs from the standard %s marking definition (%s): not trusted; the standard definition stays in force",
			id, std.Name, diff)}
	}
	if why := claimsTLP(obj); why != "" {
		return &ctigate.Error{Kind: ctigate.Invalid, Err: ErrUntrustedTLP, Msg: fmt.Sprintf(
			"%s: claims to be a TLP marking (%s) but is not one of the standard TLP 1.0 or 2.0 marking definitions: not trusted",
			id, why)}
	}

	defType, problem := markingString(obj, "definition_type", false)
	if problem != "" {
		return invalid("%s", problem)
	}
	switch defType {
	case "statement":
	case "":
		return ctigate.Errorf(ctigate.Unsupported, "%s: marking definitions without definition_type (extension-based) "+
			"are not supported: the gateway knows statement markings and the standard TLP definitions", id)
	default:
		return ctigate.Errorf(ctigate.Unsupported, "%s: definition_type %s is not supported: "+
			"the gateway knows statement markings and the standard TLP definitions", id, markingQuote(defType))
	}
	var def map[string]jsontext.Value
	if v, ok := obj["definition"]; !ok {
		return invalid("definition: required for a statement marking")
	} else if v.Kind() != '{' || json.Unmarshal(v, &def) != nil {
		return invalid("definition: must be an object, got %s", describeJSON(v))
	}
	statement, problem := markingString(def, "statement", true)
	if problem != "" {
		return invalid("definition.%s", problem)
	}
	if strings.TrimSpace(statement) == "" {
		return invalid("definition.statement: must not be empty")
	}
	name, problem := markingString(obj, "name", false)
	if problem != "" {
		return invalid("%s", problem)
	}
	return m.register(&MarkingDefinition{
		ID:        id,
		Kind:      StatementMarking,
		Name:      name,
		Statement: statement,
		Canonical: canon,
	})
}

// register adds d, unless its id is registered already.
func (m *Markings) register(d *MarkingDefinition) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	old := m.defs.Load()
	if old != nil {
		if prev, ok := (*old)[d.ID]; ok {
			if prev.Canonical == d.Canonical {
				return nil
			}
			return &ctigate.Error{Kind: ctigate.Conflict, Err: ErrMarkingRedefined, Msg: d.ID +
				": a marking definition with this id and different content is registered already; marking definitions cannot be changed"}
		}
	}
	// Copy on write, so that readers need no lock.
	next := make(map[string]*MarkingDefinition, 1+lenDefs(old))
	if old != nil {
		for k, v := range *old {
			next[k] = v
		}
	}
	next[d.ID] = d
	m.defs.Store(&next)
	return nil
}

func lenDefs(m *map[string]*MarkingDefinition) int {
	if m == nil {
		return 0
	}
	return len(*m)
}

// standardDifference compares a posted definition (its top-level members,
// in canonical form) with the standard one and returns the first
// difference, or "" when they agree. created is compared as an instant.
func standardDifference(got map[string]jsontext.Value, std MarkingDefinition) string {
	var want map[string]jsontext.Value
	if err := json.Unmarshal([]byte(std.Canonical), &want); err != nil {
		return "internal error: " + err.Error()
	}
	names := make([]string, 0, len(got)+len(want))
	for k := range got {
		names = append(names, k)
	}
	for k := range want {
		if _, ok := got[k]; !ok {
			names = append(names, k)
		}
	}
	slices.Sort(names)
	for _, k := range names {
		g, inGot := got[k]
		w, inWant := want[k]
		switch {
		case !inGot:
			return "it lacks " + k
		case !inWant:
			return "it adds " + k
		case bytes.Equal(g, w):
		case k == "created" && sameInstant(g, w):
		default:
			return k + " is " + markingQuote(string(g)) + ", want " + markingQuote(string(w))
		}
	}
	return ""
}

// sameInstant reports whether two JSON strings are STIX timestamps of the
// same instant.
func sameInstant(a, b jsontext.Value) bool {
	sa, okA := stringValue(a)
	sb, okB := stringValue(b)
	if !okA || !okB {
		return false
	}
	ta, errA := ParseTimestamp(string(sa))
	tb, errB := ParseTimestamp(string(sb))
	return errA == nil && errB == nil && ta.Equal(tb)
}

// claimsTLP returns why a marking definition without a standard id looks
// like a TLP marking, or "".
func claimsTLP(obj map[string]jsontext.Value) string {
	if t, _ := markingString(obj, "definition_type", false); strings.EqualFold(strings.TrimSpace(t), "tlp") {
		return "definition_type " + markingQuote(t)
	}
	if v, ok := obj["extensions"]; ok {
		var exts map[string]jsontext.Value
		if json.Unmarshal(v, &exts) == nil {
			if _, ok := exts[markingTLP2Extension]; ok {
				return "the TLP 2.0 extension"
			}
		}
	}
	if v, ok := obj["definition"]; ok {
		var def map[string]jsontext.Value
		if json.Unmarshal(v, &def) == nil {
			for k := range def {
				if strings.EqualFold(k, "tlp") {
					return "a " + markingQuote(k) + " definition"
				}
			}
		}
	}
	if n, _ := markingString(obj, "name", false); strings.HasPrefix(strings.ToLower(strings.TrimSpace(n)), "tlp:") {
		return "name " + markingQuote(n)
	}
	return ""
}

// markingString returns the string member name of obj, "" when absent, or
// a problem "<name>: ..." when it is not a string or is required but
// absent.
func markingString(obj map[string]jsontext.Value, name string, required bool) (string, string) {
	v, ok := obj[name]
	if !ok {
		if required {
			return "", name + ": required"
		}
		return "", ""
	}
	s, ok := stringValue(v)
	if !ok {
		return "", name + ": must be a string, got " + describeJSON(v)
	}
	return string(s), ""
}

// Resolution is what the markings of an object say (see Markings.Resolve).
//
// A sharing policy must treat the object as unmarked (the route's rule for
// unmarked objects; by default, withhold) when TLP is TLPNone, and must
// not publish it on the strength of TLP alone while Unknown is not empty:
// an unknown marking may restrict more than the TLP level does.
type Resolution struct {
	// TLP is the object-level TLP: the most restrictive TLP level among
	// object_marking_refs, TLPNone when none of them is a TLP marking
	// (see StandardTLP).
	TLP TLP
	// Unknown lists the object_marking_refs the registry does not hold,
	// in order, without repeats.
	Unknown []string
	// Statements lists the object_marking_refs that are statement
	// markings the registry holds, in order, without repeats.
	Statements []string
	// Granular lists granular_markings, in order.
	Granular []GranularMarking
}

// GranularMarking is one entry of granular_markings (STIX 2.1 §7.2.3): a
// marking applied to the selected properties of the object, or the
// language of the selected text.
type GranularMarking struct {
	// Selectors are the selectors, each checked to select content of the
	// object.
	Selectors []string
	// MarkingRef is the marking definition applied, "" for a language
	// entry.
	MarkingRef string
	// Lang is the language (RFC 5646) of the selected text, "" for a
	// marking entry. Language entries are not handling markings.
	Lang string
	// Kind is what MarkingRef is (UnknownMarking for a language entry).
	Kind MarkingKind
	// TLP is the level of MarkingRef when it is a TLP marking, TLPNone
	// otherwise.
	TLP TLP
}

// Resolve reads the markings of a STIX object: its object_marking_refs and
// granular_markings, resolved against the registry. Unknown markings are
// reported, never guessed at.
//
// raw must be a JSON object that Canonical accepts: Resolve rejects, as
// Canonical does, invalid JSON and UTF-8, lone surrogates, numbers beyond
// the double range and repeated member names at any depth (so that no
// reader can take a different object_marking_refs from the object). It
// also fails, with a *ctigate.Error of kind Invalid whose message names
// the object (its id, when that is a valid identifier) and the property,
// when
//
//   - object_marking_refs is not a non-empty list of marking-definition
//     identifiers;
//   - granular_markings is not a non-empty list of objects;
//   - a granular marking has both or neither of marking_ref and lang, a
//     marking_ref that is not a marking-definition identifier, a lang that
//     is not a non-empty string, or no non-empty list of selectors;
//   - a selector is not property names and list indexes "[n]" joined by
//     "." (STIX 2.1 §7.2.3.1), selects nothing in the object, or selects
//     id or type, which identify the object and cannot be marked apart
//     from it.
//
// For example: `indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f:
// granular_markings[0].selectors[1]: "foo.bar" selects nothing in the
// object`.
func (m *Markings) Resolve(raw []byte) (Resolution, error) {
	s := getJCS(false)
	defer putJCS(s)
	return m.resolve(s, raw)
}

// ResolveHash is Resolve and Hash in one pass over raw, for the ingest
// path, which needs both: it costs little more than Hash alone.
func (m *Markings) ResolveHash(raw []byte) (Resolution, [32]byte, error) {
	s := getJCS(true)
	defer putJCS(s)
	r, err := m.resolve(s, raw)
	if err != nil {
		return Resolution{}, [32]byte{}, err
	}
	return r, sha256.Sum256(s.out), nil
}

// ResolveMembers is Resolve, and in the same pass over raw it finds the
// values of raw's top-level members named names (unescaped, compared
// exactly): values[j] is the JSON text of the value of names[j], a
// sub-slice of raw, nil when raw has no such member. On error values is
// nil. A reader that needs both an object's markings and a few of its
// members reads raw once instead of twice.
func (m *Markings) ResolveMembers(raw []byte, names []string) (r Resolution, values [][]byte, err error) {
	s := getJCS(false)
	defer putJCS(s)
	s.want, s.got = names, make([][]byte, len(names))
	if r, err = m.resolve(s, raw); err != nil {
		return Resolution{}, nil, err
	}
	return r, s.got, nil
}

// resolve implements Resolve with the scanner s.
func (m *Markings) resolve(s *jcs, raw []byte) (Resolution, error) {
	s.capture = true
	if err := s.run(raw); err != nil {
		return Resolution{}, ctigate.Errorf(ctigate.Invalid, "%s: %s", markingLabel(s.top[topID]), err.message())
	}
	if jsontext.Value(raw).Kind() != '{' {
		return Resolution{}, ctigate.Errorf(ctigate.Invalid, "object: must be a JSON object, got %s", describeJSON(raw))
	}
	r := Resolution{}
	if v := s.top[topObjectMarkingRefs]; v != nil {
		if problem := m.objectMarkings(&r, v); problem != "" {
			return Resolution{}, ctigate.Errorf(ctigate.Invalid, "%s: %s", markingLabel(s.top[topID]), problem)
		}
	}
	if v := s.top[topGranularMarkings]; v != nil {
		if problem := m.granularMarkings(&r, v, raw); problem != "" {
			return Resolution{}, ctigate.Errorf(ctigate.Invalid, "%s: %s", markingLabel(s.top[topID]), problem)
		}
	}
	return r, nil
}

// objectMarkings resolves object_marking_refs, the valid JSON value v,
// into r. It returns a problem "<path>: <rule>", or "".
func (m *Markings) objectMarkings(r *Resolution, v []byte) string {
	if v[0] != '[' {
		return "object_marking_refs: must be a list of marking-definition identifiers, got " + describeJSON(v)
	}
	it := markingIter{b: v}
	n := 0
	var seen map[string]bool // for long lists
	for e := it.next(); e != nil; e = it.next() {
		id, ok := stringValue(e)
		if !ok || !markingRefOK(id) {
			return fmt.Sprintf("object_marking_refs[%d]: must be a marking-definition identifier, got %s", n, markingDescribe(e))
		}
		n++
		kind, t := m.classify(id)
		if kind == TLPMarking {
			r.TLP = max(r.TLP, t)
			continue
		}
		list := &r.Unknown
		if kind == StatementMarking {
			list = &r.Statements
		}
		if seen == nil && len(*list) < 16 {
			if !slices.Contains(*list, string(id)) {
				*list = append(*list, string(id))
			}
			continue
		}
		if seen == nil {
			seen = make(map[string]bool)
			for _, x := range r.Unknown {
				seen[x] = true
			}
			for _, x := range r.Statements {
				seen[x] = true
			}
		}
		if !seen[string(id)] {
			seen[string(id)] = true
			*list = append(*list, string(id))
		}
	}
	if n == 0 {
		return "object_marking_refs: must not be empty (STIX lists are never empty: omit the property instead)"
	}
	return ""
}

// granularMarkings resolves granular_markings, the valid JSON value v of
// the object raw, into r. It returns a problem "<path>: <rule>", or "".
func (m *Markings) granularMarkings(r *Resolution, v, raw []byte) string {
	if v[0] != '[' {
		return "granular_markings: must be a list of granular markings, got " + describeJSON(v)
	}
	var entries []jsontext.Value
	if err := json.Unmarshal(v, &entries); err != nil {
		return "granular_markings: " + err.Error()
	}
	if len(entries) == 0 {
		return "granular_markings: must not be empty (STIX lists are never empty: omit the property instead)"
	}
	// The object as a tree, decoded once, for the selectors.
	var root map[string]any
	if err := json.Unmarshal(raw, &root); err != nil {
		return "granular_markings: " + err.Error()
	}
	r.Granular = make([]GranularMarking, 0, len(entries))
	for i, e := range entries {
		path := "granular_markings[" + strconv.Itoa(i) + "]"
		var gm map[string]jsontext.Value
		if e.Kind() != '{' || json.Unmarshal(e, &gm) != nil {
			return path + ": must be a granular marking (an object), got " + describeJSON(e)
		}
		var g GranularMarking

		sels, ok := gm["selectors"]
		if !ok {
			return path + ".selectors: required"
		}
		var list []jsontext.Value
		if sels.Kind() != '[' || json.Unmarshal(sels, &list) != nil {
			return path + ".selectors: must be a list of selectors, got " + describeJSON(sels)
		}
		if len(list) == 0 {
			return path + ".selectors: must not be empty"
		}
		for j, sv := range list {
			sel, ok := stringValue(sv)
			if !ok {
				return fmt.Sprintf("%s.selectors[%d]: must be a string, got %s", path, j, describeJSON(sv))
			}
			if problem := checkSelector(root, string(sel)); problem != "" {
				return fmt.Sprintf("%s.selectors[%d]: %s", path, j, problem)
			}
			g.Selectors = append(g.Selectors, string(sel))
		}

		ref, hasRef := gm["marking_ref"]
		lang, hasLang := gm["lang"]
		switch {
		case hasRef && hasLang:
			return path + ": has both marking_ref and lang: a granular marking applies either a marking or a language"
		case !hasRef && !hasLang:
			return path + ": must have marking_ref or lang"
		case hasRef:
			id, ok := stringValue(ref)
			if !ok || !markingRefOK(id) {
				return path + ".marking_ref: must be a marking-definition identifier, got " + markingDescribe(ref)
			}
			g.MarkingRef = string(id)
			g.Kind, g.TLP = m.classify(id)
		default:
			l, ok := stringValue(lang)
			if !ok || len(bytes.TrimSpace(l)) == 0 {
				return path + ".lang: must be a language tag (RFC 5646), got " + markingDescribe(lang)
			}
			g.Lang = string(l)
		}
		r.Granular = append(r.Granular, g)
	}
	return ""
}

// checkSelector checks the selector sel (STIX 2.1 §7.2.3.1) against the
// object root and returns a problem, or "".
func checkSelector(root map[string]any, sel string) string {
	q := markingQuote(sel)
	if sel == "" {
		return `"" is not a selector: it is empty`
	}
	comps := strings.Split(sel, ".")
	var cur any = root
	pos := 0 // the offset of comps[k] in sel
	for k, c := range comps {
		where := sel[:max(0, pos-1)] // the selector up to comps[k], for messages
		pos += len(c) + 1
		switch {
		case c == "":
			return q + ` is not a valid selector: it has an empty component (selectors join property names and list indexes "[n]" with ".")`
		case c[0] == '[':
			n, ok := selectorIndex(c)
			if !ok {
				return q + " is not a valid selector: " + markingQuote(c) + ` is not a list index "[n]" (n a non-negative integer without leading zeros)`
			}
			if k == 0 {
				return q + " is not a valid selector: it must begin with a property name"
			}
			list, ok := cur.([]any)
			if !ok {
				return q + " selects nothing in the object (" + where + " is " + describeAny(cur) + ", not a list)"
			}
			if n >= len(list) {
				return q + " selects nothing in the object (" + where + " has " + strconv.Itoa(len(list)) + " items)"
			}
			cur = list[n]
		default:
			if strings.ContainsAny(c, "[]") {
				return q + " is not a valid selector: " + markingQuote(c) +
					` is neither a property name nor a list index (components are joined with ".", as in "external_references.[0]")`
			}
			if k == 0 && (c == "id" || c == "type") {
				return q + " must not be selected: id and type identify the object and cannot be marked apart from it"
			}
			obj, ok := cur.(map[string]any)
			if !ok {
				return q + " selects nothing in the object (" + where + " is " + describeAny(cur) + ", not an object)"
			}
			if cur, ok = obj[c]; !ok {
				return q + " selects nothing in the object"
			}
		}
	}
	return ""
}

// selectorIndex parses a list index component "[n]".
func selectorIndex(c string) (int, bool) {
	if len(c) < 3 || c[0] != '[' || c[len(c)-1] != ']' {
		return 0, false
	}
	d := c[1 : len(c)-1]
	if len(d) > 9 || (len(d) > 1 && d[0] == '0') {
		return 0, false
	}
	n := 0
	for i := 0; i < len(d); i++ {
		if d[i] < '0' || d[i] > '9' {
			return 0, false
		}
		n = n*10 + int(d[i]-'0')
	}
	return n, true
}

// describeAny names the JSON type of a decoded value.
func describeAny(v any) string {
	switch v.(type) {
	case map[string]any:
		return "an object"
	case []any:
		return "a list"
	case string:
		return "a string"
	case float64:
		return "a number"
	case bool:
		return "a boolean"
	case nil:
		return "null"
	}
	return "a value"
}

// markingIter iterates over the elements of a valid JSON array.
type markingIter struct {
	b []byte
	i int
}

// next returns the next element, or nil after the last.
func (it *markingIter) next() []byte {
	if it.i == 0 {
		it.i = skipSpace(it.b, 1) // past '['
	} else if it.i < len(it.b) && it.b[it.i] == ',' {
		it.i = skipSpace(it.b, it.i+1)
	}
	if it.i >= len(it.b) || it.b[it.i] == ']' {
		return nil
	}
	start := it.i
	end := skipValue(it.b, start)
	if end < 0 { // cannot happen: the bytes were validated before
		end = len(it.b)
	}
	it.i = skipSpace(it.b, end)
	return it.b[start:end]
}

// markingRefOK reports whether id is a marking-definition identifier:
// "marking-definition--" and an RFC 4122 UUID (version 1 to 5, variant
// 10), as STIX 2.1 §2.9 requires. Like DecodeEnvelope, it accepts
// hexadecimal in either case; ids are compared as written, except that
// StandardTLP recognises the TLP ids in either case.
func markingRefOK(id []byte) bool {
	const prefix = "marking-definition--"
	return len(id) == len(prefix)+36 && string(id[:len(prefix)]) == prefix && uuidProblem(id[len(prefix):]) == ""
}

// markingLabel names an object in messages by its id, the raw JSON value
// v, when that is a plausible STIX identifier, and as "object" otherwise.
func markingLabel(v []byte) string {
	id, ok := stringValue(v)
	if !ok {
		return "object"
	}
	typ, uuid, found := bytes.Cut(id, []byte("--"))
	if !found || len(typ) < 3 || len(typ) > 250 || uuidProblem(uuid) != "" {
		return "object"
	}
	for _, c := range typ {
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
			return "object"
		}
	}
	return string(id)
}

// markingDescribe describes a JSON value in a message: a string quoted,
// anything else by its kind.
func markingDescribe(v []byte) string {
	if s, ok := stringValue(v); ok {
		return markingQuote(string(s))
	}
	return describeJSON(v)
}

// markingQuote quotes s for a message, shortened to a readable length.
func markingQuote(s string) string { return jcsQuote([]byte(s)) }

// describeJSON names the kind of the JSON value v.
func describeJSON(v []byte) string {
	switch jsontext.Value(v).Kind() {
	case '{':
		return "an object"
	case '[':
		return "a list"
	case '"':
		return "a string"
	case '0':
		return "a number"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	}
	return "nothing"
}
