package policy

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/ctigate/ctigate/stix"
)

// Input is one version of a STIX object, as ingest validated and resolved
// it, to be evaluated for a route.
type Input struct {
	// Raw is the object's original bytes.
	Raw []byte
	// Type and ID are the object's type and id.
	Type, ID string
	// SHA256 is the SHA-256 of Raw's RFC 8785 canonical form (stix.Hash),
	// which ingest computed; Evaluate computes it when it is zero.
	SHA256 [32]byte
	// Markings is what the object's markings say (stix.Markings.Resolve).
	Markings stix.Resolution
	// Producer is the organisation of the producer that posted the object.
	Producer string
	// Revoked reports whether this version has "revoked": true.
	Revoked bool
	// Received reports whether the route already received an earlier
	// version of the object.
	Received bool
	// Published reports whether the route has published (some version of)
	// the object id; it decides reference handling. nil means nothing has
	// been published. It must be a pure lookup.
	Published func(id string) bool
}

// Action is what a Decision does with an object.
type Action uint8

// The actions. The zero value is Withhold, so that a Decision nobody
// filled in publishes nothing.
const (
	Withhold        Action = iota // publish nothing
	Publish                       // publish the object's original bytes
	PublishRedacted               // publish Decision.Object, with properties removed
)

func (a Action) String() string {
	switch a {
	case Withhold:
		return "withheld"
	case Publish:
		return "published"
	case PublishRedacted:
		return "redacted"
	}
	return "Action(" + strconv.Itoa(int(a)) + ")"
}

// Reason is a stable, machine-readable code for why an object was
// withheld or a property removed. Custody records carry it.
type Reason string

// Reasons an object is withheld.
const (
	ReasonInvalid           Reason = "invalid_object"             // not a JSON object, or markings that do not fit it
	ReasonMarkingDefinition Reason = "marking_definition"         // published with the objects that refer to it, not on its own
	ReasonTLPRed            Reason = "tlp_red"                    // TLP:RED is never published automatically
	ReasonAboveCeiling      Reason = "above_ceiling"              // object-level TLP above the route's ceiling
	ReasonUnmarked          Reason = "unmarked"                   // no TLP marking, and the route withholds unmarked objects
	ReasonUnknownMarking    Reason = "unknown_marking"            // a marking the gateway does not know, and the route withholds unmarked objects
	ReasonTypeNotAllowed    Reason = "type_not_allowed"           // not in allow_types
	ReasonTypeExcluded      Reason = "type_excluded"              // in exclude_types
	ReasonMinimisedType     Reason = "minimised_type"             // in minimise.drop_types
	ReasonProducer          Reason = "producer_not_allowed"       // producer not in producers
	ReasonExpired           Reason = "expired"                    // past valid_until
	ReasonConditionFalse    Reason = "condition_false"            // the route's condition is false
	ReasonConditionError    Reason = "condition_error"            // the route's condition failed
	ReasonReference         Reason = "unpublished_reference"      // refers to an object the route has not published (references: withhold)
	ReasonRequiredRedacted  Reason = "required_property_redacted" // redaction would leave an invalid object
	ReasonMarkingSelected   Reason = "marking_property_redacted"  // a granular marking above the ceiling selects the object's markings
	ReasonSourceProtected   Reason = "source_protected"           // an identity object, under a route that protects its sources
	ReasonSuperseded        Reason = "superseded"                 // a newer version from the same producer is withheld (decided by gateway.Decider, not Evaluate; superseded: withdraw)
)

// Reasons a property is removed (Removal.Reason).
const (
	ReasonGranular          Reason = "granular_marking"   // a granular marking above the ceiling (or unknown) selects it
	ReasonMinimisedProperty Reason = "minimised_property" // minimise.drop_properties or drop_custom_properties
	ReasonTrimmedReference  Reason = "trimmed_reference"  // a reference to an object the route has not published
	ReasonEmptiedList       Reason = "emptied_list"       // a list all of whose items were removed (STIX lists are never empty)
)

// Removal is one property (or list item) removed from a redacted object.
type Removal struct {
	Path   string // a selector of the original object (STIX 2.1 §7.2.3.1), e.g. "external_references.[1].url"
	Reason Reason
	Detail string // for people: which marking, which reference
}

// Decision is what Evaluate decided for one object and one route. Every
// Decision is a custody record.
type Decision struct {
	Action Action
	// Reason and Detail say why an object is withheld (Detail for
	// people); both are empty otherwise.
	Reason Reason
	Detail string
	// Object is what to publish: the original bytes for Publish, the
	// redacted object for PublishRedacted, nil for Withhold.
	Object []byte
	// Removed lists what redaction removed, in the order removed.
	Removed []Removal
	// TLP is the object's effective level for the route: its object-level
	// TLP, raised to the route's unmarked level where that applied.
	TLP stix.TLP
	// Route and PolicyVersion identify the route and its policy version.
	Route, PolicyVersion string
	// OriginalSHA256 is the canonical hash of the object as received;
	// PublishedSHA256 that of Object (equal for Publish, zero for
	// Withhold). Custody keeps both; the published object never carries
	// the original's hash (see RedactionExtension).
	OriginalSHA256, PublishedSHA256 [32]byte
}

// RedactionExtension is the id of the STIX 2.1 property extension with
// which a redacted object tells consumers it was redacted. A redacted
// object carries, in its "extensions":
//
//	"extension-definition--c7a5b4e1-5f0e-4a43-9d0c-2f7de3a1b6d9": {
//	  "extension_type": "property-extension",
//	  "redacted_properties": ["description", "external_references.[1]"]
//	}
//
// listing the selectors (in the original object) of what was removed. An
// object without a TLP marking published under a route's unmarked level
// carries that level's TLP 2.0 marking in object_marking_refs, and the
// same extension says which level was assumed:
//
//	"extension-definition--c7a5b4e1-5f0e-4a43-9d0c-2f7de3a1b6d9": {
//	  "extension_type": "property-extension",
//	  "assumed_tlp": "TLP:GREEN"
//	}
//
// A redacted object keeps its id and modified: it is the producer's version
// with less in it, not a new version (only the creator may version an
// object), so a consumer that also sees the full version elsewhere can tell
// the two apart by this extension. It does not carry the original's hash:
// a hash of content that differs only by a short redacted value (an IP
// address) would let anyone confirm guesses of that value; the hash stays
// in custody (Decision.OriginalSHA256).
const RedactionExtension = "extension-definition--c7a5b4e1-5f0e-4a43-9d0c-2f7de3a1b6d9"

// Evaluate decides whether and how the object in may be published to the
// route r at time now. It is a pure, deterministic function of its
// arguments (in.Published must be a pure lookup). The rules, in order,
// the first that withholds deciding:
//
//  1. The object must be a JSON object; marking definitions are not
//     evaluated (they are published with the objects that refer to them).
//  2. Object-level TLP:RED withholds, whatever the route says.
//  3. No object-level TLP, or any object-level marking the gateway does
//     not know, applies the route's unmarked rule: withhold, or raise the
//     level to the configured one. Statement markings do not count.
//  4. A level above the ceiling withholds.
//  5. Types (allow_types, exclude_types, minimise.drop_types), producers
//     and expiry (valid_until at or before now) withhold, unless the
//     object is a revoked version of an object the route received:
//     revocations of what a route received are delivered, but never past
//     rules 2–4 or the redactions below.
//  6. Granular markings above the ceiling, and granular markings the
//     gateway does not know under the withhold unmarked rule, remove the
//     properties they select (language entries do not count); selecting
//     object_marking_refs or granular_markings withholds.
//  7. Data minimisation removes the properties it names.
//  8. References to objects the route has not published are trimmed, or
//     withhold the object, as the route says (for revoked versions of
//     received objects, withhold acts as trim).
//  9. The route's condition, evaluated over what would be published, must
//     be true (a failure withholds), except for revoked versions of
//     received objects.
//  10. A redacted object must still be a valid STIX object
//     (stix.DecodeEnvelope), or it is withheld: this is how removing a
//     required property withholds.
func Evaluate(in Input, r *Route, now time.Time) Decision {
	d := Decision{Route: r.cfg.ID, PolicyVersion: r.version}
	withhold := func(reason Reason, format string, args ...any) Decision {
		d.Action, d.Reason, d.Detail = Withhold, reason, fmt.Sprintf(format, args...)
		d.Object, d.Removed, d.PublishedSHA256 = nil, nil, [32]byte{}
		return d
	}

	d.OriginalSHA256 = in.SHA256
	if d.OriginalSHA256 == ([32]byte{}) {
		h, err := stix.Hash(in.Raw)
		if err != nil {
			return withhold(ReasonInvalid, "%v", err)
		}
		d.OriginalSHA256 = h
	}
	root, parser, err := parseTree(in.Raw)
	if err != nil {
		return withhold(ReasonInvalid, "the object is not a valid JSON object: %v", err)
	}
	defer parser.release() // root is not used after Evaluate
	if in.Type == "marking-definition" {
		return withhold(ReasonMarkingDefinition, "marking definitions are published with the objects that refer to them")
	}

	// Object-level markings.
	m := in.Markings
	level := m.TLP
	if level == stix.TLPRed {
		return withhold(ReasonTLPRed, "TLP:RED is never published automatically")
	}
	if level == stix.TLPNone || len(m.Unknown) > 0 {
		if r.unmarked == stix.TLPNone {
			if len(m.Unknown) > 0 {
				return withhold(ReasonUnknownMarking, "marked with %s, which the gateway does not know; the route withholds unmarked objects", strings.Join(m.Unknown, ", "))
			}
			return withhold(ReasonUnmarked, "no TLP marking; the route withholds unmarked objects")
		}
		level = max(level, r.unmarked)
	}
	d.TLP = level
	if !level.Within(r.ceiling) {
		return withhold(ReasonAboveCeiling, "%s is above the route's ceiling %s", level, r.ceiling)
	}

	bypass := in.Revoked && in.Received
	if !bypass {
		switch {
		case len(r.allow) > 0 && !r.allow[in.Type]:
			return withhold(ReasonTypeNotAllowed, "type %s is not in the route's allow_types", in.Type)
		case r.exclude[in.Type]:
			return withhold(ReasonTypeExcluded, "type %s is in the route's exclude_types", in.Type)
		case r.drop[strings.ToLower(strings.TrimSpace(in.Type))]:
			return withhold(ReasonMinimisedType, "type %s is dropped for data minimisation", in.Type)
		case r.dropIndi && in.Type == "identity" && !r.idClass[identityClassOf(root)]:
			return withhold(ReasonMinimisedType, "identity_class %q is not one the route publishes (%s): identities other than those are dropped for data minimisation",
				identityClassOf(root), strings.Join(r.cfg.Minimise.IdentityClasses, ", "))
		case len(r.prod) > 0 && !r.prod[in.Producer]:
			return withhold(ReasonProducer, "producer %q is not in the route's producers", in.Producer)
		case r.protect && in.Type == "identity":
			return withhold(ReasonSourceProtected, "the route protects its sources: identity objects are not published")
		}
		if r.expiry {
			if v := root.member("valid_until"); v != nil {
				s, _ := v.str()
				until, err := stix.ParseTimestamp(s)
				if err != nil {
					return withhold(ReasonInvalid, "valid_until: %v", err)
				}
				if !now.Before(until) {
					return withhold(ReasonExpired, "valid_until %s has passed", s)
				}
			}
		}
	}

	// Redaction.
	var removed []Removal
	remove := func(n *node, path string, reason Reason, detail string) {
		if !n.gone {
			n.gone = true
			removed = append(removed, Removal{Path: path, Reason: reason, Detail: detail})
		}
	}
	for i, g := range m.Granular {
		if g.Lang != "" {
			continue
		}
		var detail string
		switch g.Kind {
		case stix.StatementMarking:
			continue
		case stix.TLPMarking:
			if g.TLP.Within(r.ceiling) {
				continue
			}
			detail = fmt.Sprintf("granular_markings[%d]: %s is above the route's ceiling %s", i, g.TLP, r.ceiling)
		default:
			if r.unmarked != stix.TLPNone {
				continue // within the ceiling: Compile checked it
			}
			detail = fmt.Sprintf("granular_markings[%d]: %s is a marking the gateway does not know", i, g.MarkingRef)
		}
		for _, sel := range g.Selectors {
			comps := splitSelector(sel)
			switch comps[0] {
			case "object_marking_refs", "granular_markings", "id", "type":
				return withhold(ReasonMarkingSelected, "%s, and it selects %s, which cannot be removed", detail, sel)
			}
			n := lookup(root, comps)
			if n == nil {
				return withhold(ReasonInvalid, "granular marking selector %q selects nothing in the object", sel)
			}
			remove(n, sel, ReasonGranular, detail)
		}
	}
	for i, name := range root.names {
		if r.dropProp[strings.ToLower(name)] {
			remove(root.kids[i], name, ReasonMinimisedProperty, "minimise.drop_properties")
		}
	}
	if r.cfg.Minimise.DropCustomProperties {
		walkMembers(root, "", func(n *node, parent, name string) {
			if len(name) >= 2 && strings.EqualFold(name[:2], "x_") {
				remove(n, joinPath(parent, name), ReasonMinimisedProperty, "minimise.drop_custom_properties")
			}
		})
	}
	// Source protection: the copy names the gateway as its creator.
	protected := false
	if by := root.member("created_by_ref"); r.protect && by != nil && by.kind == '"' {
		q, _ := jsontext.AppendQuote(nil, GatewayIdentity)
		if s, _ := by.str(); s != GatewayIdentity {
			by.raw, protected = q, true
		}
	}
	if r.refs != ReferencesAllowDangling {
		published := func(id string) bool {
			// The gateway's identity goes out with the copy that names it.
			return id == in.ID || protected && id == GatewayIdentity || (in.Published != nil && in.Published(id))
		}
		var dangling, danglingPath string
		visit := func(n *node, pathOf func() string) {
			id, ok := n.str()
			if ok && published(id) {
				return
			}
			path := pathOf()
			if dangling == "" {
				dangling, danglingPath = id, path
			}
			remove(n, path, ReasonTrimmedReference, "refers to "+id+", which the route has not published")
		}
		walkMembers(root, "", func(n *node, parent, name string) {
			switch {
			case parent == "" && name == "object_marking_refs":
			case parent == "" && name == "granular_markings", strings.HasPrefix(parent, "granular_markings."):
			case strings.HasSuffix(name, "_ref") && n.kind == '"':
				visit(n, func() string { return joinPath(parent, name) })
			case strings.HasSuffix(name, "_refs") && n.kind == '[':
				for j, item := range n.kids {
					if item.kind == '"' && !item.gone {
						visit(item, func() string { return joinPath(parent, name) + ".[" + strconv.Itoa(j) + "]" })
					}
				}
			}
		})
		if dangling != "" && r.refs == ReferencesWithhold && !bypass {
			return withhold(ReasonReference, "%s refers to %s, which the route has not published", danglingPath, dangling)
		}
	}

	// An object without a TLP marking that the route treats as carrying
	// its unmarked level says so: the published copy carries that level's
	// marking, and the extension names it as assumed.
	assumed := stix.TLPNone
	if m.TLP == stix.TLPNone && r.unmarked != stix.TLPNone {
		assumed = r.unmarked
	}
	out := in.Raw
	if len(removed) > 0 || assumed != stix.TLPNone || protected {
		if assumed != stix.TLPNone {
			if problem := stampMarking(root, assumed.MarkingID()); problem != "" {
				return withhold(ReasonInvalid, "%s", problem)
			}
		}
		collapse(root, "", func(path string) {
			removed = append(removed, Removal{Path: path, Reason: ReasonEmptiedList, Detail: "all its items were removed"})
		})
		if gm := root.member("granular_markings"); gm != nil && gm.kind == '[' {
			for _, entry := range gm.kids {
				sels := entry.member("selectors")
				if sels == nil || sels.kind != '[' {
					continue
				}
				for _, s := range sels.kids {
					sel, _ := s.str()
					next, ok := remap(root, splitSelector(sel))
					switch {
					case !ok:
						s.gone = true
					case next != sel:
						s.raw, _ = jsontext.AppendQuote(nil, next)
					}
				}
				if !slices.ContainsFunc(sels.kids, func(s *node) bool { return !s.gone }) {
					entry.gone = true
				}
			}
			if !slices.ContainsFunc(gm.kids, func(e *node) bool { return !e.gone }) {
				gm.gone = true
			}
		}
		if problem := addRedactionExtension(root, removed, assumed, protected); problem != "" {
			return withhold(ReasonInvalid, "%s", problem)
		}
		out = root.appendTo(make([]byte, 0, len(in.Raw)+128))
	}

	if r.cond != nil && !bypass {
		var obj map[string]any
		if err := json.Unmarshal(out, &obj); err != nil {
			return withhold(ReasonConditionError, "decoding the object for the condition: %v", err)
		}
		ok, err := r.cond.eval(obj, level.String(), in.Producer)
		if err != nil {
			return withhold(ReasonConditionError, "the route's condition failed: %v", err)
		}
		if !ok {
			return withhold(ReasonConditionFalse, "the route's condition is false")
		}
	}

	if len(removed) == 0 && assumed == stix.TLPNone && !protected {
		d.Action, d.Object, d.PublishedSHA256 = Publish, in.Raw, d.OriginalSHA256
		return d
	}
	env := make([]byte, 0, len(out)+16)
	env = append(append(append(env, `{"objects":[`...), out...), "]}"...)
	items, err := stix.DecodeEnvelope(env)
	if err == nil && len(items) == 1 {
		err = items[0].Err
	}
	if err != nil {
		paths := make([]string, len(removed))
		for i, x := range removed {
			paths[i] = x.Path
		}
		return withhold(ReasonRequiredRedacted, "removing %s would leave an invalid object: %v", strings.Join(paths, ", "), err)
	}
	h, err := stix.Hash(out)
	if err != nil {
		return withhold(ReasonInvalid, "%v", err)
	}
	d.Action, d.Object, d.Removed, d.PublishedSHA256 = PublishRedacted, out, removed, h
	if len(removed) == 0 {
		d.Action = Publish // with the assumed marking stamped, or the source protected: nothing removed
		var what []string
		if assumed != stix.TLPNone {
			what = append(what, "with the assumed "+level.String()+" marking (unmarked: "+r.unmarked.String()+")")
		}
		if protected {
			what = append(what, "with the gateway as its creator (protect_source)")
		}
		d.Detail = "published " + strings.Join(what, " and ")
	}
	return d
}

// stampMarking adds the marking definition id to root's object_marking_refs
// (making the list when there is none).
func stampMarking(root *node, id string) string {
	q, _ := jsontext.AppendQuote(nil, id)
	ref := &node{kind: '"', raw: q}
	refs := root.member("object_marking_refs")
	if refs == nil {
		root.names = append(root.names, "object_marking_refs")
		root.kids = append(root.kids, &node{kind: '[', kids: []*node{ref}})
		return ""
	}
	if refs.kind != '[' || refs.raw != nil && len(refs.kids) == 0 {
		return "object_marking_refs is not a list"
	}
	refs.kids = append(refs.kids, ref)
	refs.raw = nil
	return ""
}

// identityClassOf is the identity root's identity_class as minimisation
// compares it ("" when missing or not a string).
func identityClassOf(root *node) string {
	s, _ := root.member("identity_class").str()
	return IdentityClass(s)
}

// walkMembers calls f for every member of every object in n that is not
// removed, depth first, with the selector path of the object holding it
// (path(parent, name) is the member's); f may remove the member, which then
// is not descended into.
func walkMembers(n *node, parent string, f func(n *node, parent, name string)) {
	if n.raw != nil || n.gone {
		return
	}
	for i, kid := range n.kids {
		if kid.gone {
			continue
		}
		if n.kind == '{' {
			f(kid, parent, n.names[i])
			if kid.raw == nil && !kid.gone {
				walkMembers(kid, joinPath(parent, n.names[i]), f)
			}
		} else if kid.raw == nil {
			walkMembers(kid, joinPath(parent, "["+strconv.Itoa(i)+"]"), f)
		}
	}
}

// addRedactionExtension adds the RedactionExtension, listing removed, to
// the object root's extensions. It returns a problem, or "".
func addRedactionExtension(root *node, removed []Removal, assumed stix.TLP, protected bool) string {
	var ext []byte
	ext = append(ext, `{"extension_type":"property-extension"`...)
	if len(removed) > 0 {
		ext = append(ext, `,"redacted_properties":[`...)
		for i, x := range removed {
			if i > 0 {
				ext = append(ext, ',')
			}
			ext, _ = jsontext.AppendQuote(ext, x.Path)
		}
		ext = append(ext, ']')
	}
	if assumed != stix.TLPNone {
		ext = append(ext, `,"assumed_tlp":`...)
		ext, _ = jsontext.AppendQuote(ext, assumed.String())
	}
	if protected {
		ext = append(ext, `,"source_protected":true`...)
	}
	ext = append(ext, '}')
	value := &node{kind: '{', raw: ext}

	exts := root.member("extensions")
	if exts == nil {
		root.names = append(root.names, "extensions")
		root.kids = append(root.kids, &node{kind: '{', names: []string{RedactionExtension}, kids: []*node{value}})
		return ""
	}
	if exts.kind != '{' || exts.raw != nil {
		return "extensions is not a dictionary"
	}
	for i, name := range exts.names {
		if name == RedactionExtension {
			exts.kids[i].gone = true // a producer's claim is replaced by what was done here
		}
	}
	exts.names = append(exts.names, RedactionExtension)
	exts.kids = append(exts.kids, value)
	return ""
}
