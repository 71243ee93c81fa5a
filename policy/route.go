// Package policy decides, as a pure function of an object, a route and a
// clock, whether and in what form a STIX object may be published to a
// consumer route.
package policy

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/go-json-experiment/json"

	"github.com/ctigate/ctigate"
	"github.com/ctigate/ctigate/stix"
)

// RouteConfig is one consumer route as the configuration file states it
// (the YAML key routes[i]). Readers are not part of it: who may read a
// published collection is the server's business, not the policy's.
//
// Compile checks a RouteConfig, fills in its defaults and returns the
// Route that Evaluate applies.
type RouteConfig struct {
	// ID is the id (a UUID) of the published collection the route fills.
	ID string `yaml:"id"`
	// Name names the route in messages and custody records.
	Name string `yaml:"name"`
	// Sources are the ids of the inbound collections the route reads.
	Sources []string `yaml:"sources"`
	// Ceiling is the most restrictive TLP level the route may publish:
	// "TLP:CLEAR", "TLP:GREEN", "TLP:AMBER" or "TLP:AMBER+STRICT"
	// (TLP 1.0 "TLP:WHITE" is CLEAR). Required. TLP:RED is refused:
	// RED content is never published automatically.
	Ceiling string `yaml:"ceiling"`
	// Unmarked says what happens to an object without an object-level
	// TLP marking, or with an object-level marking the gateway does not
	// know, and to properties a granular marking the gateway does not know
	// selects: "withhold" (the default: the object is withheld, the
	// properties are removed), or a TLP label, meaning "treat the object
	// (the properties) as carrying at least this level". The label must be
	// within the ceiling.
	Unmarked string `yaml:"unmarked"`
	// AllowTypes, when not empty, lists the only object types the route
	// publishes.
	AllowTypes []string `yaml:"allow_types"`
	// ExcludeTypes lists object types the route never publishes.
	ExcludeTypes []string `yaml:"exclude_types"`
	// Producers, when not empty, lists the only producer organisations
	// whose objects the route publishes.
	Producers []string `yaml:"producers"`
	// References says what happens to an identifier reference (a *_ref or
	// *_refs property, at any depth; marking references excepted) to an
	// object the route has not published: "trim" (the default: remove the
	// reference, withholding the object when the reference is required),
	// "withhold" (withhold the referring object) or "allow_dangling" (keep
	// it; note that an observable's id may be the UUIDv5 of its value, so
	// a dangling reference can disclose a withheld IP address).
	References string `yaml:"references"`
	// Expiry says what happens to an object whose valid_until has passed:
	// "withhold" (the default) or "ignore".
	Expiry string `yaml:"expiry"`
	// ReferenceWait is how long an object whose references name objects
	// its producer has not submitted yet waits for them (parked, apart
	// from the route's other objects) before it is decided as if they
	// were withheld: a duration ("5m", the default) or "off". It does
	// not change the policy version: it says when a decision is made,
	// not what the policy is.
	ReferenceWait string `yaml:"reference_wait"`
	// ParkedLimit bounds how many objects of one producer may wait for
	// references at once (default 10000); an object beyond it is decided
	// at once, saying so.
	ParkedLimit int `yaml:"parked_limit"`
	// ProtectSource publishes without revealing the producing
	// organisation: each copy's created_by_ref names the gateway's own
	// identity (GatewayIdentity) instead, identity objects are withheld,
	// and the gateway keeps the producer out of what the route's readers
	// see of the collection (search hits, decision and custody records).
	ProtectSource bool `yaml:"protect_source"`
	// Superseded says what happens to the route's copies of earlier
	// versions of an object when the route withholds a newer version from
	// the same producer (say, one raised to TLP:RED): "withdraw" (the
	// default: they leave the collection, so the stale version is no
	// longer the latest) or "keep".
	Superseded string `yaml:"superseded"`
	// Minimise holds the data-minimisation rules.
	Minimise Minimise `yaml:"minimise"`
	// Condition is an optional CEL expression over the object that must
	// be true for the object to be published (see the package's CEL
	// variables in condition.go).
	Condition string `yaml:"condition"`
}

// Minimise holds a route's data-minimisation rules.
type Minimise struct {
	// DropTypes lists object types withheld for data minimisation, such
	// as "email-addr" or "user-account"; "identity:individual" withholds
	// every identity whose identity_class is not in IdentityClasses
	// (individuals, misspelt or unknown classes, and a missing class: an
	// allow-list, so that no spelling gets a person through).
	DropTypes []string `yaml:"drop_types"`
	// IdentityClasses are the identity classes a route that drops
	// individuals publishes, compared without regard to case or spaces.
	// Default: organization, class, system (not group: a group of
	// individuals).
	IdentityClasses []string `yaml:"identity_classes"`
	// DropProperties lists top-level property names removed from every
	// published object (the object is then published redacted).
	DropProperties []string `yaml:"drop_properties"`
	// DropCustomProperties removes every property whose name begins with
	// "x_", at any depth.
	DropCustomProperties bool `yaml:"drop_custom_properties"`
}

// The values of RouteConfig.Unmarked, References and Expiry.
const (
	UnmarkedWithhold = "withhold"

	ReferencesTrim          = "trim"
	ReferencesWithhold      = "withhold"
	ReferencesAllowDangling = "allow_dangling"

	ExpiryWithhold = "withhold"
	ExpiryIgnore   = "ignore"

	SupersededWithdraw = "withdraw"
	SupersededKeep     = "keep"
)

// Route is a compiled, immutable route: what Evaluate applies. Make one
// with Compile. A Route is safe for concurrent use.
type Route struct {
	cfg      RouteConfig // normalised: defaults filled in, lists sorted
	version  string
	ceiling  stix.TLP
	unmarked stix.TLP // TLPNone: withhold
	allow    map[string]bool
	exclude  map[string]bool
	drop     map[string]bool
	dropIndi bool // publish identity objects only of the classes in idClass
	idClass  map[string]bool
	dropProp map[string]bool
	refs     string
	expiry   bool
	keepOld  bool // superseded: keep
	protect  bool // protect_source
	wait     time.Duration
	parked   int
	prod     map[string]bool
	cond     *condition
}

// ID returns the id of the published collection the route fills.
func (r *Route) ID() string { return r.cfg.ID }

// Name returns the route's name.
func (r *Route) Name() string { return r.cfg.Name }

// Sources returns the ids of the inbound collections the route reads.
func (r *Route) Sources() []string { return slices.Clone(r.cfg.Sources) }

// Defaults of RouteConfig.ReferenceWait and ParkedLimit.
const (
	DefaultReferenceWait = 5 * time.Minute
	DefaultParkedLimit   = 10_000
)

// ReferenceWait returns how long an object waits for referenced objects
// its producer has not submitted yet (0: it does not wait).
func (r *Route) ReferenceWait() time.Duration { return r.wait }

// ParkedLimit returns how many objects of one producer may wait at once.
func (r *Route) ParkedLimit() int { return r.parked }

// DefaultIdentityClasses are the identity classes published by a route
// that drops individuals, unless it lists its own.
var DefaultIdentityClasses = []string{"class", "organization", "system"}

// IdentityClass is an identity_class as minimisation compares it:
// lower-case, without white space.
func IdentityClass(s string) string {
	return strings.Join(strings.Fields(strings.ToLower(s)), "")
}

// ProtectsSource reports whether the route hides its producers
// (RouteConfig.ProtectSource).
func (r *Route) ProtectsSource() bool { return r.protect }

// KeepsSuperseded reports whether the route keeps its copies of earlier
// versions of an object whose newer version it withholds (RouteConfig.Superseded).
func (r *Route) KeepsSuperseded() bool { return r.keepOld }

// Ceiling returns the route's TLP ceiling.
func (r *Route) Ceiling() stix.TLP { return r.ceiling }

// Version returns the policy version: the lowercase hex SHA-256 of the
// route's canonical form (see Compile). It travels with every Decision.
func (r *Route) Version() string { return r.version }

// Config returns the route's configuration as Compile normalised it.
func (r *Route) Config() RouteConfig {
	c := r.cfg
	c.Sources = slices.Clone(c.Sources)
	c.AllowTypes = slices.Clone(c.AllowTypes)
	c.ExcludeTypes = slices.Clone(c.ExcludeTypes)
	c.Producers = slices.Clone(c.Producers)
	c.Minimise.DropTypes = slices.Clone(c.Minimise.DropTypes)
	c.Minimise.DropProperties = slices.Clone(c.Minimise.DropProperties)
	c.Minimise.IdentityClasses = slices.Clone(c.Minimise.IdentityClasses)
	return c
}

// protected are the properties minimisation may not drop: they identify
// the object and its markings.
var protected = []string{"id", "type", "spec_version", "created", "modified",
	"object_marking_refs", "granular_markings", "revoked"}

// Compile checks rc and returns the route it configures. Problems are
// reported all at once in a *ctigate.Error of kind Invalid, one line per
// problem, each naming its key as `route "NAME".key` (CompileRoutes names
// them routes[i].key).
//
// The policy version is the SHA-256 of the RFC 8785 canonical JSON of the
// normalised configuration: defaults filled in, TLP labels in their TLP 2.0
// spelling, type, producer, source and property lists sorted without
// repeats, plus a "policy_format" member that changes when Evaluate's
// semantics do. Reordering a list or spelling "TLP:WHITE" for "TLP:CLEAR"
// keeps the version; any change of meaning changes it.
func Compile(rc RouteConfig) (*Route, error) {
	return compile(rc, fmt.Sprintf("route %q", rc.Name))
}

// CompileRoutes compiles every route and also checks that no two routes
// share an id or a name. Problems name their key as routes[i].key.
func CompileRoutes(rcs []RouteConfig) ([]*Route, error) {
	var errs []error
	routes := make([]*Route, 0, len(rcs))
	ids, names := map[string]int{}, map[string]int{}
	for i, rc := range rcs {
		key := fmt.Sprintf("routes[%d]", i)
		r, err := compile(rc, key)
		if err != nil {
			errs = append(errs, err)
		} else {
			routes = append(routes, r)
		}
		id := strings.ToLower(rc.ID)
		if j, dup := ids[id]; dup && id != "" {
			errs = append(errs, problem(key+".id", "%q is already the id of routes[%d]", rc.ID, j))
		} else {
			ids[id] = i
		}
		if j, dup := names[rc.Name]; dup && rc.Name != "" {
			errs = append(errs, problem(key+".name", "%q is already the name of routes[%d]", rc.Name, j))
		} else {
			names[rc.Name] = i
		}
	}
	if len(errs) > 0 {
		return nil, joinProblems(errs)
	}
	return routes, nil
}

func problem(key, format string, args ...any) error {
	return errors.New(key + ": " + fmt.Sprintf(format, args...))
}

func joinProblems(errs []error) error {
	var lines []string
	for _, e := range errs {
		var ce *ctigate.Error
		if errors.As(e, &ce) && ce.Err != nil {
			lines = append(lines, ce.Err.Error())
			continue
		}
		lines = append(lines, e.Error())
	}
	return ctigate.E("policy", ctigate.Invalid, errors.New(strings.Join(lines, "\n")))
}

// compile implements Compile, naming keys below prefix.
func compile(rc RouteConfig, prefix string) (*Route, error) {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, problem(prefix+"."+key, format, args...))
	}
	c := rc
	r := &Route{}

	c.ID = strings.ToLower(strings.TrimSpace(c.ID))
	if !isUUID(c.ID) {
		bad("id", "%q is not a UUID: it is the id of the published collection", rc.ID)
	}
	if strings.TrimSpace(c.Name) == "" {
		bad("name", "must not be empty")
	}
	if len(c.Sources) == 0 {
		bad("sources", "at least one source collection is needed")
	}
	c.Sources = slices.Clone(c.Sources)
	for i, s := range c.Sources {
		c.Sources[i] = strings.ToLower(strings.TrimSpace(s))
		switch {
		case !isUUID(c.Sources[i]):
			bad(fmt.Sprintf("sources[%d]", i), "%q is not a collection id (a UUID)", s)
		case c.Sources[i] == c.ID:
			bad(fmt.Sprintf("sources[%d]", i), "a route cannot read the collection it publishes to")
		}
	}
	c.Sources = sortedSet(c.Sources)

	switch t, err := stix.ParseTLP(c.Ceiling); {
	case strings.TrimSpace(c.Ceiling) == "":
		bad("ceiling", "required: the most restrictive TLP level the route may publish (TLP:CLEAR, TLP:GREEN, TLP:AMBER or TLP:AMBER+STRICT)")
	case err != nil:
		bad("ceiling", "%q is not a TLP level: want TLP:CLEAR, TLP:GREEN, TLP:AMBER or TLP:AMBER+STRICT", c.Ceiling)
	case t == stix.TLPRed:
		bad("ceiling", "TLP:RED is never published automatically: the highest ceiling is TLP:AMBER+STRICT")
	case t == stix.TLPNone:
		bad("ceiling", "%q is not a TLP level: want TLP:CLEAR, TLP:GREEN, TLP:AMBER or TLP:AMBER+STRICT", c.Ceiling)
	default:
		r.ceiling = t
		c.Ceiling = t.String()
	}

	switch u := strings.TrimSpace(c.Unmarked); u {
	case "", UnmarkedWithhold:
		c.Unmarked = UnmarkedWithhold
	default:
		t, err := stix.ParseTLP(u)
		switch {
		case err != nil || t == stix.TLPNone:
			bad("unmarked", "%q is neither %q nor a TLP level", c.Unmarked, UnmarkedWithhold)
		case t == stix.TLPRed:
			bad("unmarked", "TLP:RED would withhold every unmarked object: write %q", UnmarkedWithhold)
		case r.ceiling.Known() && !t.Within(r.ceiling):
			bad("unmarked", "%s is above the ceiling %s, so every unmarked object would be withheld: write %q", t, r.ceiling, UnmarkedWithhold)
		default:
			r.unmarked = t
			c.Unmarked = t.String()
		}
	}

	typeList := func(key string, list []string, allowIdentityClass bool) []string {
		for i, t := range list {
			name := t
			if allowIdentityClass && t == "identity:individual" {
				continue
			}
			if !isTypeName(name) {
				bad(fmt.Sprintf("%s[%d]", key, i), "%q is not a STIX type name (3–250 of a–z, 0–9 and -)", t)
			}
		}
		return sortedSet(list)
	}
	c.AllowTypes = typeList("allow_types", c.AllowTypes, false)
	c.ExcludeTypes = typeList("exclude_types", c.ExcludeTypes, false)
	c.Minimise.DropTypes = typeList("minimise.drop_types", c.Minimise.DropTypes, true)
	for _, t := range c.ExcludeTypes {
		if slices.Contains(c.AllowTypes, t) {
			bad("exclude_types", "%q is also in allow_types", t)
		}
	}
	r.allow, r.exclude, r.drop = setOf(c.AllowTypes), setOf(c.ExcludeTypes), setOf(c.Minimise.DropTypes)
	r.dropIndi = r.drop["identity:individual"]
	for i, cl := range c.Minimise.IdentityClasses {
		if IdentityClass(cl) == "" {
			bad(fmt.Sprintf("minimise.identity_classes[%d]", i), "must not be empty")
		}
		if IdentityClass(cl) == "individual" {
			bad(fmt.Sprintf("minimise.identity_classes[%d]", i), "individuals are what dropping identity:individual withholds")
		}
	}
	switch {
	case !r.dropIndi && len(c.Minimise.IdentityClasses) > 0:
		bad("minimise.identity_classes", "applies only with identity:individual in minimise.drop_types")
	case r.dropIndi && len(c.Minimise.IdentityClasses) == 0:
		c.Minimise.IdentityClasses = DefaultIdentityClasses
	}
	if r.dropIndi {
		classes := make([]string, len(c.Minimise.IdentityClasses))
		for i, cl := range c.Minimise.IdentityClasses {
			classes[i] = IdentityClass(cl)
		}
		c.Minimise.IdentityClasses = sortedSet(classes)
		r.idClass = setOf(c.Minimise.IdentityClasses)
	}

	for i, p := range c.Producers {
		if strings.TrimSpace(p) == "" {
			bad(fmt.Sprintf("producers[%d]", i), "must not be empty")
		}
	}
	c.Producers = sortedSet(c.Producers)
	r.prod = setOf(c.Producers)

	switch c.References {
	case "":
		c.References = ReferencesTrim
	case ReferencesTrim, ReferencesWithhold, ReferencesAllowDangling:
	default:
		bad("references", "%q is not one of %s, %s, %s", c.References, ReferencesTrim, ReferencesWithhold, ReferencesAllowDangling)
	}
	r.refs = c.References

	switch c.Expiry {
	case "":
		c.Expiry = ExpiryWithhold
	case ExpiryWithhold, ExpiryIgnore:
	default:
		bad("expiry", "%q is not one of %s, %s", c.Expiry, ExpiryWithhold, ExpiryIgnore)
	}
	r.expiry = c.Expiry == ExpiryWithhold

	switch w := strings.TrimSpace(c.ReferenceWait); w {
	case "":
		r.wait = DefaultReferenceWait
		c.ReferenceWait = r.wait.String()
	case "off":
	default:
		d, err := time.ParseDuration(w)
		if err != nil || d <= 0 || d > 7*24*time.Hour {
			bad("reference_wait", "%q is neither \"off\" nor a duration between 1s and 168h (e.g. \"5m\")", c.ReferenceWait)
		}
		r.wait = d
	}
	switch {
	case c.ParkedLimit == 0:
		c.ParkedLimit = DefaultParkedLimit
	case c.ParkedLimit < 0 || c.ParkedLimit > 1_000_000:
		bad("parked_limit", "%d is not between 1 and 1000000", c.ParkedLimit)
	}
	r.parked = c.ParkedLimit

	switch c.Superseded {
	case "":
		c.Superseded = SupersededWithdraw
	case SupersededWithdraw, SupersededKeep:
	default:
		bad("superseded", "%q is not one of %s, %s", c.Superseded, SupersededWithdraw, SupersededKeep)
	}
	r.keepOld = c.Superseded == SupersededKeep
	r.protect = c.ProtectSource

	for i, p := range c.Minimise.DropProperties {
		key := fmt.Sprintf("minimise.drop_properties[%d]", i)
		switch {
		case !isPropertyName(p):
			bad(key, "%q is not a property name (1–250 of a–z, 0–9 and _)", p)
		case slices.Contains(protected, p):
			bad(key, "%q cannot be dropped: it identifies the object or its markings", p)
		}
	}
	c.Minimise.DropProperties = sortedSet(c.Minimise.DropProperties)
	r.dropProp = setOf(c.Minimise.DropProperties)

	if strings.TrimSpace(c.Condition) != "" {
		cond, err := compileCondition(c.Condition)
		if err != nil {
			bad("condition", "%v", err)
		}
		r.cond = cond
	} else {
		c.Condition = ""
	}

	if len(errs) > 0 {
		return nil, joinProblems(errs)
	}
	r.cfg = c
	r.version = versionOf(c)
	return r, nil
}

// policyFormat changes when Evaluate's semantics change, so that the
// same configuration evaluated differently has a different version.
const policyFormat = 1

// versionOf returns the policy version of the normalised configuration c.
func versionOf(c RouteConfig) string {
	type minimise struct {
		DropTypes            []string `json:"drop_types"`
		DropProperties       []string `json:"drop_properties"`
		DropCustomProperties bool     `json:"drop_custom_properties"`
		IdentityClasses      []string `json:"identity_classes,omitzero"` // with identity:individual only
	}
	doc := struct {
		Format       int      `json:"policy_format"`
		ID           string   `json:"id"`
		Name         string   `json:"name"`
		Sources      []string `json:"sources"`
		Ceiling      string   `json:"ceiling"`
		Unmarked     string   `json:"unmarked"`
		AllowTypes   []string `json:"allow_types"`
		ExcludeTypes []string `json:"exclude_types"`
		Producers    []string `json:"producers"`
		References   string   `json:"references"`
		Expiry       string   `json:"expiry"`
		Superseded   string   `json:"superseded,omitzero"` // absent for the default, withdraw
		Protect      bool     `json:"protect_source,omitzero"`
		Minimise     minimise `json:"minimise"`
		Condition    string   `json:"condition"`
	}{policyFormat, c.ID, c.Name, c.Sources, c.Ceiling, c.Unmarked, c.AllowTypes, c.ExcludeTypes,
		c.Producers, c.References, c.Expiry, keepOnly(c.Superseded), c.ProtectSource,
		minimise{c.Minimise.DropTypes, c.Minimise.DropProperties, c.Minimise.DropCustomProperties, c.Minimise.IdentityClasses}, c.Condition}
	// (IdentityClasses is nil, so absent, unless individuals are dropped:
	// routes that do not drop them keep their versions.)
	b, err := json.Marshal(doc, json.FormatNilSliceAsNull(false))
	if err != nil {
		panic("policy: marshal route: " + err.Error()) // plain strings and lists cannot fail
	}
	canon, err := stix.Canonical(b)
	if err != nil {
		panic("policy: canonical route: " + err.Error())
	}
	sum := sha256.Sum256(canon)
	return hex.EncodeToString(sum[:])
}

// keepOnly is superseded as the policy version spells it: the default
// (withdraw) is left out, so routes that do not set it keep their versions.
func keepOnly(superseded string) string {
	if superseded == SupersededKeep {
		return superseded
	}
	return ""
}

// sortedSet returns list sorted without repeats, never nil.
func sortedSet(list []string) []string {
	out := slices.Clone(list)
	if out == nil {
		out = []string{}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func setOf(list []string) map[string]bool {
	m := make(map[string]bool, len(list))
	for _, s := range list {
		m[s] = true
	}
	return m
}

// isUUID reports whether s is a UUID in lowercase 8-4-4-4-12 form.
func isUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
				return false
			}
		}
	}
	return true
}

// isTypeName reports whether s is a STIX type name (STIX 2.1 §3.1).
func isTypeName(s string) bool {
	if len(s) < 3 || len(s) > 250 || !('a' <= s[0] && s[0] <= 'z') || s[len(s)-1] == '-' || strings.Contains(s, "--") {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// isPropertyName reports whether s is a plausible STIX property name.
func isPropertyName(s string) bool {
	if len(s) < 1 || len(s) > 250 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}
