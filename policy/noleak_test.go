package policy

import (
	"bytes"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"

	"pgregory.net/rapid"

	"github.com/ctigate/ctigate/stix"
)

// TestNoLeak is the no-leak property, over generated objects (several
// types, nested custom properties, TLP 1.0 and 2.0 object markings in
// mixtures and upper-case spellings, unknown and statement markings,
// granular markings with random selectors including language entries,
// references) and generated routes. For every pair:
//
//   - nothing whose object-level TLP (computed here, independently of
//     stix.Resolve) is above the ceiling, or RED, is published;
//   - an object with an unknown marking is never published under the
//     default unmarked rule, nor an object without TLP;
//   - no value a granular marking above the ceiling selects (RED always)
//     appears in what is published: every string in the generated objects
//     is a unique token, so a leak is a substring;
//   - no reference to an object the route has not published survives,
//     unless the route allows dangling references;
//   - what is published decodes through stix.DecodeEnvelope and resolves.
//
// Run it broadly with
//
//	go test ./policy -run TestNoLeak -rapid.checks=2000
//
// (the default of 100 checks keeps `go test` fast).
func TestNoLeak(t *testing.T) {
	reg := stix.NewMarkings()
	if err := reg.Add([]byte(`{"type":"marking-definition","spec_version":"2.1","id":"` + statementMD +
		`","created":"2017-01-20T00:00:00.000Z","definition_type":"statement","definition":{"statement":"Copyright CERT-A"}}`)); err != nil {
		t.Fatal(err)
	}
	counts := map[string]int{}
	defer func() { t.Logf("decisions: %v", counts) }()
	rapid.Check(t, func(t *rapid.T) {
		g := &objectGen{}
		obj, typ, id := g.object(t)
		raw := []byte(obj.json())
		items, err := stix.DecodeEnvelope(append(append([]byte(`{"objects":[`), raw...), "]}"...))
		if err != nil || items[0].Err != nil {
			t.Fatalf("generator made an invalid object: %v %v\n%s", err, items[0].Err, raw)
		}
		res, err := reg.Resolve(raw)
		if err != nil {
			t.Fatalf("generator made markings that do not resolve: %v\n%s", err, raw)
		}
		rc := genRoute(t)
		r, err := Compile(rc)
		if err != nil {
			t.Fatalf("Compile: %v", err)
		}
		pub := rapid.SliceOfDistinct(rapid.SampledFrom(refPool), rapid.ID[string]).Draw(t, "published")
		in := Input{
			Raw: raw, Type: typ, ID: id, Markings: res, Producer: "CERT-A",
			Revoked:   rapid.Bool().Draw(t, "revoked"),
			Received:  rapid.Bool().Draw(t, "received"),
			Published: func(id string) bool { return slices.Contains(pub, id) },
		}
		d := Evaluate(in, r, testNow)
		counts[d.Action.String()+"/"+string(d.Reason)]++
		if d.Action == Withhold {
			if d.Object != nil {
				t.Fatalf("withheld, yet Object is set")
			}
			return
		}
		out := string(d.Object)

		// Object-level TLP, read from the object's own refs.
		level, unknown := stix.TLPNone, false
		for _, ref := range obj.markingRefs {
			if l, ok := stix.StandardTLP(ref); ok {
				level = max(level, l)
			} else if ref != statementMD {
				unknown = true
			}
		}
		if level == stix.TLPRed {
			t.Fatalf("published a TLP:RED object to a route with ceiling %s", r.Ceiling())
		}
		if (level == stix.TLPNone || unknown) && r.unmarked == stix.TLPNone {
			t.Fatalf("published an object with markings %q (unknown %v) under the withhold rule", obj.markingRefs, unknown)
		}
		if level.Known() && !level.Within(r.Ceiling()) {
			t.Fatalf("published a %s object to a route with ceiling %s", level, r.Ceiling())
		}
		if d.TLP.Known() && !d.TLP.Within(r.Ceiling()) || !d.TLP.Known() {
			t.Fatalf("published at effective level %s with ceiling %s", d.TLP, r.Ceiling())
		}

		// Granular markings above the ceiling.
		for _, gm := range obj.granular {
			hidden := false
			if l, ok := stix.StandardTLP(gm.ref); ok {
				hidden = !l.Within(r.Ceiling())
			} else if gm.ref != "" && gm.ref != statementMD {
				hidden = r.unmarked == stix.TLPNone
			}
			if !hidden {
				continue
			}
			for _, sel := range gm.selectors {
				for _, tok := range obj.tokensAt(sel) {
					if strings.Contains(out, tok) {
						t.Fatalf("value %q selected by %q under %s leaked to a route with ceiling %s:\n%s", tok, sel, gm.ref, r.Ceiling(), out)
					}
				}
			}
		}

		// References.
		if r.refs != ReferencesAllowDangling {
			for _, ref := range refPool {
				if ref != id && !slices.Contains(pub, ref) && strings.Contains(out, ref) {
					t.Fatalf("published a reference to %s, which the route has not published:\n%s", ref, out)
				}
			}
		}

		// Form.
		switch d.Action {
		case Publish:
			if level == stix.TLPNone && r.unmarked != stix.TLPNone {
				// Published at the assumed level, which the copy carries.
				got, err := reg.Resolve(d.Object)
				if err != nil || got.TLP != r.unmarked || !strings.Contains(out, `"assumed_tlp":"`+r.unmarked.String()+`"`) {
					t.Fatalf("an unmarked object published under unmarked %s carries %s (%v):\n%s", r.unmarked, got.TLP, err, out)
				}
				break
			}
			if !bytes.Equal(d.Object, raw) {
				t.Fatalf("published bytes differ from the original")
			}
		case PublishRedacted:
			items, err := stix.DecodeEnvelope([]byte(`{"objects":[` + out + `]}`))
			if err != nil || items[0].Err != nil {
				t.Fatalf("redacted object does not decode: %v %v\n%s", err, items[0].Err, out)
			}
			if _, err := reg.Resolve(d.Object); err != nil {
				t.Fatalf("redacted object's markings do not resolve: %v\n%s", err, out)
			}
			if !strings.Contains(out, RedactionExtension) {
				t.Fatalf("redacted object does not say so:\n%s", out)
			}
		}
	})
}

// refPool are the ids generated objects refer to.
var refPool = []string{
	indID, malwareID, identID,
	"note--0d6a5c3b-2e1f-4a7b-8c9d-0e1f2a3b4c5d",
	"ipv4-addr--ff26c055-6336-5bc5-b98d-13d6226742dd",
}

// markingPool are the marking refs objects are marked with: the nine
// standard TLP ids, upper-case spellings of some, an unknown marking and
// a statement marking.
var markingPool = []string{
	stix.TLP1White, stix.TLP1Green, stix.TLP1Amber, stix.TLP1Red,
	stix.TLP2Clear, stix.TLP2Green, stix.TLP2Amber, stix.TLP2AmberStrict, stix.TLP2Red,
	"marking-definition--" + strings.ToUpper(stix.TLP1Red[20:]),
	"marking-definition--" + strings.ToUpper(stix.TLP2Red[20:]),
	"marking-definition--" + strings.ToUpper(stix.TLP2Green[20:]),
	unknownMD,
	statementMD,
}

// genRoute draws a valid route configuration.
func genRoute(t *rapid.T) RouteConfig {
	rc := baseConfig()
	ceiling := rapid.SampledFrom([]stix.TLP{stix.TLPClear, stix.TLPGreen, stix.TLPAmber, stix.TLPAmberStrict}).Draw(t, "ceiling")
	rc.Ceiling = ceiling.String()
	if rapid.Bool().Draw(t, "unmarked_level") {
		rc.Unmarked = stix.TLP(rapid.IntRange(int(stix.TLPClear), int(ceiling)).Draw(t, "unmarked")).String()
	}
	types := []string{"indicator", "report", "note", "relationship", "identity", "x-case-file"}
	rc.AllowTypes = rapid.SliceOfDistinct(rapid.SampledFrom(types), rapid.ID[string]).Draw(t, "allow")
	if len(rc.AllowTypes) == 0 {
		rc.ExcludeTypes = rapid.SliceOfNDistinct(rapid.SampledFrom(types), 0, 2, rapid.ID[string]).Draw(t, "exclude")
	}
	rc.References = rapid.SampledFrom([]string{"", ReferencesTrim, ReferencesWithhold, ReferencesAllowDangling}).Draw(t, "references")
	rc.Minimise.DropCustomProperties = rapid.Bool().Draw(t, "drop_custom")
	if rapid.Bool().Draw(t, "drop_description") {
		rc.Minimise.DropProperties = []string{"description"}
	}
	return rc
}

// gobj is a generated JSON object: ordered members whose values are
// string (a JSON string), []any, *gobj or rawJSON.
type gobj struct {
	names []string
	vals  []any

	// For the top-level object: its markings.
	markingRefs []string
	granular    []genGranular
}

type rawJSON string

type genGranular struct {
	ref       string // "" for a language entry
	selectors []string
}

func (o *gobj) add(name string, v any) { o.names = append(o.names, name); o.vals = append(o.vals, v) }

func (o *gobj) json() string {
	var b strings.Builder
	writeJSON(&b, o)
	return b.String()
}

func writeJSON(b *strings.Builder, v any) {
	switch v := v.(type) {
	case string:
		b.WriteString(strconv.Quote(v))
	case rawJSON:
		b.WriteString(string(v))
	case []any:
		b.WriteByte('[')
		for i, x := range v {
			if i > 0 {
				b.WriteByte(',')
			}
			writeJSON(b, x)
		}
		b.WriteByte(']')
	case *gobj:
		b.WriteByte('{')
		for i, n := range v.names {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(strconv.Quote(n) + ":")
			writeJSON(b, v.vals[i])
		}
		b.WriteByte('}')
	}
}

// paths appends the selectors of every value in v below prefix.
func paths(v any, prefix string, out []string) []string {
	switch v := v.(type) {
	case []any:
		for i, x := range v {
			p := prefix + ".[" + strconv.Itoa(i) + "]"
			out = append(out, p)
			out = paths(x, p, out)
		}
	case *gobj:
		for i, n := range v.names {
			p := joinPath(prefix, n)
			out = append(out, p)
			out = paths(v.vals[i], p, out)
		}
	}
	return out
}

// tokensAt returns the tokens in the value sel selects.
func (o *gobj) tokensAt(sel string) []string {
	var cur any = o
	for _, c := range strings.Split(sel, ".") {
		if i, ok := selectorIndex(c); ok {
			cur = cur.([]any)[i]
			continue
		}
		obj := cur.(*gobj)
		cur = obj.vals[slices.Index(obj.names, c)]
	}
	var toks []string
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case string:
			if strings.Contains(v, "tq") {
				toks = append(toks, tokenIn(v))
			}
		case []any:
			for _, x := range v {
				walk(x)
			}
		case *gobj:
			for _, x := range v.vals {
				walk(x)
			}
		}
	}
	walk(cur)
	return toks
}

// tokenIn extracts the token "tq<n>z" from s.
func tokenIn(s string) string {
	i := strings.Index(s, "tq")
	j := strings.IndexByte(s[i:], 'z')
	return s[i : i+j+1]
}

// objectGen draws objects whose every string value holds a unique token.
type objectGen struct{ n int }

func (g *objectGen) token() string {
	g.n++
	return "tq" + strconv.Itoa(g.n) + "z"
}

// value draws a nested custom value.
func (g *objectGen) value(t *rapid.T, depth int) any {
	kind := rapid.IntRange(0, 2).Draw(t, "kind")
	if depth >= 2 {
		kind = 0
	}
	switch kind {
	case 1:
		n := rapid.IntRange(1, 3).Draw(t, "len")
		l := make([]any, n)
		for i := range l {
			l[i] = g.value(t, depth+1)
		}
		return l
	case 2:
		o := &gobj{}
		n := rapid.IntRange(1, 3).Draw(t, "members")
		for i := 0; i < n; i++ {
			prefix := rapid.SampledFrom([]string{"x_", "k_"}).Draw(t, "prefix")
			o.add(prefix+strconv.Itoa(i), g.value(t, depth+1))
		}
		return o
	}
	return "v " + g.token()
}

func (g *objectGen) refs(t *rapid.T, label string, pool []string) []any {
	picked := rapid.SliceOfNDistinct(rapid.SampledFrom(pool), 1, 3, rapid.ID[string]).Draw(t, label)
	l := make([]any, len(picked))
	for i, p := range picked {
		l[i] = p
	}
	return l
}

// object draws a valid STIX object; it returns it with its type and id.
func (g *objectGen) object(t *rapid.T) (*gobj, string, string) {
	sdos := []string{indID, malwareID, identID, refPool[3]}
	typ := rapid.SampledFrom([]string{"indicator", "report", "note", "relationship", "identity", "x-case-file"}).Draw(t, "type")
	id := map[string]string{
		"indicator":    indID,
		"report":       "report--84e4d88f-44ea-4bcd-bbf3-b2c1c320bcb3",
		"note":         refPool[3],
		"relationship": "relationship--2f3e4d5c-6b7a-4a8b-9c0d-1e2f3a4b5c6d",
		"identity":     identID,
		"x-case-file":  "x-case-file--6f5e4d3c-2b1a-4c9d-8e7f-6a5b4c3d2e1f",
	}[typ]
	o := &gobj{}
	o.add("type", typ)
	o.add("spec_version", "2.1")
	o.add("id", id)
	o.add("created", "2024-05-08T09:00:00.000Z")
	o.add("modified", "2024-05-08T09:00:00.000Z")
	switch typ {
	case "indicator":
		o.add("name", "n "+g.token())
		o.add("pattern", "[domain-name:value = '"+g.token()+".example']")
		o.add("pattern_type", "stix")
		o.add("valid_from", "2024-05-08T09:00:00.000Z")
		if rapid.Bool().Draw(t, "valid_until") {
			o.add("valid_until", rapid.SampledFrom([]string{"2025-01-01T00:00:00.000Z", "2026-01-01T00:00:00.000Z"}).Draw(t, "until"))
		}
	case "report":
		o.add("name", "n "+g.token())
		o.add("published", "2024-05-08T09:00:00.000Z")
		o.add("object_refs", g.refs(t, "object_refs", refPool))
	case "note":
		o.add("content", "c "+g.token())
		o.add("object_refs", g.refs(t, "object_refs", refPool))
	case "relationship":
		o.add("relationship_type", "related-to")
		o.add("source_ref", rapid.SampledFrom(sdos).Draw(t, "source"))
		o.add("target_ref", rapid.SampledFrom(sdos).Draw(t, "target"))
	case "identity":
		o.add("name", "n "+g.token())
		o.add("identity_class", rapid.SampledFrom([]string{"individual", "organization"}).Draw(t, "class"))
	case "x-case-file":
		o.add("name", "n "+g.token())
	}
	if rapid.Bool().Draw(t, "description") {
		o.add("description", "d "+g.token())
	}
	if typ != "identity" && rapid.Bool().Draw(t, "created_by") {
		o.add("created_by_ref", identID)
	}
	if rapid.Bool().Draw(t, "labels") {
		l := make([]any, rapid.IntRange(1, 3).Draw(t, "labels_len"))
		for i := range l {
			l[i] = "l " + g.token()
		}
		o.add("labels", l)
	}
	if rapid.Bool().Draw(t, "external_references") {
		l := make([]any, rapid.IntRange(1, 2).Draw(t, "ext_len"))
		for i := range l {
			e := &gobj{}
			e.add("source_name", "s "+g.token())
			if rapid.Bool().Draw(t, "url") {
				e.add("url", "https://"+g.token()+".example/")
			}
			e.add("external_id", "e "+g.token())
			l[i] = e
		}
		o.add("external_references", l)
	}
	for i, n := 0, rapid.IntRange(0, 2).Draw(t, "custom"); i < n; i++ {
		prefix := rapid.SampledFrom([]string{"x_acme_", "zz_"}).Draw(t, "custom_prefix")
		o.add(prefix+strconv.Itoa(i), g.value(t, 0))
	}

	selectable := paths(o, "", nil)
	selectable = slices.DeleteFunc(selectable, func(p string) bool { return p == "id" || p == "type" })
	if refs := rapid.SliceOfN(rapid.SampledFrom(markingPool), 0, 3).Draw(t, "object_marking_refs"); len(refs) > 0 {
		o.markingRefs = refs
		l := make([]any, len(refs))
		for i, r := range refs {
			l[i] = r
		}
		o.add("object_marking_refs", l)
		selectable = append(selectable, "object_marking_refs")
	}
	if n := rapid.IntRange(0, 3).Draw(t, "granular"); n > 0 {
		var entries []any
		for i := 0; i < n; i++ {
			var gm genGranular
			e := &gobj{}
			if rapid.IntRange(0, 4).Draw(t, "lang") == 0 {
				e.add("lang", "de")
			} else {
				gm.ref = rapid.SampledFrom(markingPool).Draw(t, "marking_ref")
				e.add("marking_ref", gm.ref)
			}
			gm.selectors = rapid.SliceOfNDistinct(rapid.SampledFrom(selectable), 1, 3, rapid.ID[string]).Draw(t, "selectors")
			sels := make([]any, len(gm.selectors))
			for j, s := range gm.selectors {
				sels[j] = s
			}
			e.add("selectors", sels)
			entries = append(entries, e)
			o.granular = append(o.granular, gm)
		}
		o.add("granular_markings", entries)
	}
	return o, typ, id
}

// TestNoLeakGenerator checks the generator's token bookkeeping once.
func TestNoLeakGenerator(t *testing.T) {
	o := &gobj{}
	o.add("a", []any{"v tq1z", &gobj{names: []string{"b"}, vals: []any{"https://tq2z.example/"}}})
	if got := o.tokensAt("a"); fmt.Sprint(got) != "[tq1z tq2z]" {
		t.Errorf("got %v", got)
	}
	if got := o.tokensAt("a.[1].b"); fmt.Sprint(got) != "[tq2z]" {
		t.Errorf("got %v", got)
	}
}
