package policy

import (
	"bytes"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/ctigate/ctigate/stix"
)

const statementMD = "marking-definition--62fd3f9b-15f3-4ebc-802c-91fce9536bcf"

func statementRegistry(t *testing.T) *stix.Markings {
	t.Helper()
	reg := stix.NewMarkings()
	err := reg.Add([]byte(`{"type":"marking-definition","spec_version":"2.1","id":"` + statementMD +
		`","created":"2017-01-20T00:00:00.000Z","definition_type":"statement","definition":{"statement":"Copyright CERT-A"}}`))
	if err != nil {
		t.Fatal(err)
	}
	return reg
}

func TestEvaluate(t *testing.T) {
	green, amber := marked(stix.TLP2Green), marked(stix.TLP2Amber)
	relationship := func(src, dst string) string {
		return object("relationship", "relationship--2f3e4d5c-6b7a-4a8b-9c0d-1e2f3a4b5c6d", green,
			member{"relationship_type", `"indicates"`}, member{"source_ref", `"` + src + `"`}, member{"target_ref", `"` + dst + `"`})
	}
	report := func(refs ...string) string {
		return object("report", "report--84e4d88f-44ea-4bcd-bbf3-b2c1c320bcb3", green,
			member{"name", `"Campaign"`}, member{"published", `"2024-05-08T09:00:00.000Z"`},
			member{"object_refs", `["` + strings.Join(refs, `","`) + `"]`})
	}
	identity := func(class string) string {
		return object("identity", identID, green, member{"name", `"J. Doe"`}, member{"identity_class", `"` + class + `"`})
	}
	published := func(ids ...string) func(string) bool {
		return func(id string) bool { return slices.Contains(ids, id) }
	}

	tests := []struct {
		name      string
		cfg       func(*RouteConfig)
		raw       string
		in        func(*Input)
		reg       bool // use a registry that knows statementMD
		action    Action
		reason    Reason   // for Withhold
		removed   []string // paths, for PublishRedacted
		absent    []string // substrings that must not be in the output
		contains  []string // substrings that must be in the output
		unchanged bool     // the output is the input
	}{
		// Object-level TLP.
		{name: "green within amber", raw: indicator(green), action: Publish, unchanged: true},
		{name: "amber within amber", raw: indicator(amber), action: Publish},
		{name: "amber above green", cfg: func(c *RouteConfig) { c.Ceiling = "TLP:GREEN" }, raw: indicator(amber), action: Withhold, reason: ReasonAboveCeiling},
		{name: "amber+strict above amber", raw: indicator(marked(stix.TLP2AmberStrict)), action: Withhold, reason: ReasonAboveCeiling},
		{name: "amber+strict within amber+strict", cfg: func(c *RouteConfig) { c.Ceiling = "TLP:AMBER+STRICT" }, raw: indicator(marked(stix.TLP2AmberStrict)), action: Publish},
		{name: "tlp2 red", cfg: func(c *RouteConfig) { c.Ceiling = "TLP:AMBER+STRICT" }, raw: indicator(marked(stix.TLP2Red)), action: Withhold, reason: ReasonTLPRed},
		{name: "tlp1 red upper case", cfg: func(c *RouteConfig) { c.Ceiling = "TLP:AMBER+STRICT" }, raw: indicator(marked("marking-definition--" + strings.ToUpper(stix.TLP1Red[20:]))), action: Withhold, reason: ReasonTLPRed},
		{name: "red among green", raw: indicator(marked(stix.TLP2Green, stix.TLP1Red)), action: Withhold, reason: ReasonTLPRed},
		{name: "tlp1 white within clear", cfg: func(c *RouteConfig) { c.Ceiling = "TLP:CLEAR" }, raw: indicator(marked(stix.TLP1White)), action: Publish},
		{name: "tlp1 green above clear", cfg: func(c *RouteConfig) { c.Ceiling = "TLP:WHITE" }, raw: indicator(marked(stix.TLP1Green)), action: Withhold, reason: ReasonAboveCeiling},

		// Unmarked and unknown markings.
		{name: "unmarked withheld by default", raw: indicator(), action: Withhold, reason: ReasonUnmarked},
		{name: "unmarked treated as green", cfg: func(c *RouteConfig) { c.Unmarked = "TLP:GREEN" }, raw: indicator(), action: Publish},
		{name: "unmarked treated as amber above green", cfg: func(c *RouteConfig) { c.Ceiling = "TLP:AMBER+STRICT"; c.Unmarked = "TLP:AMBER+STRICT" }, raw: indicator(), action: Publish},
		{name: "unknown with green withheld", raw: indicator(marked(stix.TLP2Green, unknownMD)), action: Withhold, reason: ReasonUnknownMarking},
		{name: "unknown alone withheld", raw: indicator(marked(unknownMD)), action: Withhold, reason: ReasonUnknownMarking},
		{name: "unknown treated as green", cfg: func(c *RouteConfig) { c.Unmarked = "TLP:GREEN" }, raw: indicator(marked(stix.TLP2Green, unknownMD)), action: Publish},
		{name: "unknown treated as green with amber", cfg: func(c *RouteConfig) { c.Ceiling = "TLP:GREEN"; c.Unmarked = "TLP:GREEN" }, raw: indicator(marked(stix.TLP2Amber, unknownMD)), action: Withhold, reason: ReasonAboveCeiling},
		{name: "statement only is unmarked", reg: true, raw: indicator(marked(statementMD)), action: Withhold, reason: ReasonUnmarked},
		{name: "statement with green", reg: true, raw: indicator(marked(statementMD, stix.TLP2Green)), action: Publish},

		// Types, producers, expiry.
		{name: "type allowed", cfg: func(c *RouteConfig) { c.AllowTypes = []string{"indicator"} }, raw: indicator(green), action: Publish},
		{name: "type not allowed", cfg: func(c *RouteConfig) { c.AllowTypes = []string{"malware"} }, raw: indicator(green), action: Withhold, reason: ReasonTypeNotAllowed},
		{name: "type excluded", cfg: func(c *RouteConfig) { c.ExcludeTypes = []string{"indicator"} }, raw: indicator(green), action: Withhold, reason: ReasonTypeExcluded},
		{name: "other type excluded", cfg: func(c *RouteConfig) { c.ExcludeTypes = []string{"email-addr"} }, raw: indicator(green), action: Publish},
		{name: "type minimised", cfg: func(c *RouteConfig) { c.Minimise.DropTypes = []string{"indicator"} }, raw: indicator(green), action: Withhold, reason: ReasonMinimisedType},
		{name: "individual identity minimised", cfg: func(c *RouteConfig) { c.Minimise.DropTypes = []string{"identity:individual"} }, raw: identity("individual"), action: Withhold, reason: ReasonMinimisedType},
		{name: "organisation identity kept", cfg: func(c *RouteConfig) { c.Minimise.DropTypes = []string{"identity:individual"} }, raw: identity("organization"), action: Publish},
		{name: "producer allowed", cfg: func(c *RouteConfig) { c.Producers = []string{"CERT-A"} }, raw: indicator(green), action: Publish},
		{name: "producer not allowed", cfg: func(c *RouteConfig) { c.Producers = []string{"CERT-B"} }, raw: indicator(green), action: Withhold, reason: ReasonProducer},
		{name: "expired", raw: indicator(green, member{"valid_until", `"2025-06-01T12:00:00.000Z"`}), action: Withhold, reason: ReasonExpired},
		{name: "not yet expired", raw: indicator(green, member{"valid_until", `"2025-06-01T12:00:00.001Z"`}), action: Publish},
		{name: "expiry ignored", cfg: func(c *RouteConfig) { c.Expiry = ExpiryIgnore }, raw: indicator(green, member{"valid_until", `"2025-01-01T00:00:00.000Z"`}), action: Publish},

		// Revocations.
		{name: "revoked received bypasses type", cfg: func(c *RouteConfig) { c.ExcludeTypes = []string{"indicator"} }, raw: indicator(green, member{"revoked", "true"}),
			in: func(in *Input) { in.Revoked, in.Received = true, true }, action: Publish},
		{name: "revoked received bypasses expiry", raw: indicator(green, member{"revoked", "true"}, member{"valid_until", `"2025-01-01T00:00:00.000Z"`}),
			in: func(in *Input) { in.Revoked, in.Received = true, true }, action: Publish},
		{name: "revoked not received", cfg: func(c *RouteConfig) { c.ExcludeTypes = []string{"indicator"} }, raw: indicator(green, member{"revoked", "true"}),
			in: func(in *Input) { in.Revoked = true }, action: Withhold, reason: ReasonTypeExcluded},
		{name: "revoked received never above ceiling", raw: indicator(marked(stix.TLP2AmberStrict), member{"revoked", "true"}),
			in: func(in *Input) { in.Revoked, in.Received = true, true }, action: Withhold, reason: ReasonAboveCeiling},
		{name: "revoked received still redacted", raw: indicator(green, member{"revoked", "true"}, granular([]string{stix.TLP2Red, "description"})),
			in: func(in *Input) { in.Revoked, in.Received = true, true }, action: PublishRedacted, removed: []string{"description"}, absent: []string{"Seen in the campaign"}},

		// Granular markings.
		{name: "granular red removed", raw: indicator(green, granular([]string{stix.TLP2Red, "description"})),
			action: PublishRedacted, removed: []string{"description"}, absent: []string{"Seen in the campaign", `"granular_markings"`, stix.TLP2Red},
			contains: []string{RedactionExtension, `"redacted_properties":["description"]`}},
		{name: "granular green kept", raw: indicator(green, granular([]string{stix.TLP2Green, "description"})), action: Publish, unchanged: true},
		{name: "granular amber above green", cfg: func(c *RouteConfig) { c.Ceiling = "TLP:GREEN" }, raw: indicator(green, granular([]string{stix.TLP2Amber, "name", "description"})),
			action: PublishRedacted, removed: []string{"name", "description"}, absent: []string{"C2 address", "Seen in the campaign"}},
		{name: "granular lang kept", raw: indicator(green, granular([]string{"lang:en", "description"})), action: Publish},
		{name: "granular red on required", raw: indicator(green, granular([]string{stix.TLP2Red, "pattern"})), action: Withhold, reason: ReasonRequiredRedacted},
		{name: "granular red on markings", raw: indicator(green, granular([]string{stix.TLP2Red, "object_marking_refs"})), action: Withhold, reason: ReasonMarkingSelected},
		{name: "granular red on list item, selectors remapped",
			raw: indicator(green, member{"labels", `["secret-source","botnet","c2"]`},
				granular([]string{stix.TLP2Red, "labels.[0]"}, []string{stix.TLP2Green, "labels.[2]"}, []string{"lang:en", "labels.[0]", "labels.[1]"})),
			action: PublishRedacted, removed: []string{"labels.[0]"}, absent: []string{"secret-source", `"labels.[2]"`},
			contains: []string{`"labels":["botnet","c2"]`, `"selectors":["labels.[1]"]`, `"lang":"en","selectors":["labels.[0]"]`}},
		{name: "granular red empties list", raw: indicator(green, member{"labels", `["secret"]`}, granular([]string{stix.TLP2Red, "labels.[0]"})),
			action: PublishRedacted, removed: []string{"labels.[0]", "labels"}, absent: []string{"secret", `"labels":`}},
		{name: "granular nested", raw: indicator(green, member{"external_references", `[{"source_name":"cert-a","external_id":"CASE-42","url":"https://internal.example/case/42"}]`},
			granular([]string{stix.TLP2Red, "external_references.[0].url"})),
			action: PublishRedacted, removed: []string{"external_references.[0].url"}, absent: []string{"internal.example"}, contains: []string{`"source_name":"cert-a"`}},
		{name: "granular nested required", raw: indicator(green, member{"external_references", `[{"source_name":"cert-a","url":"https://internal.example/case/42"}]`},
			granular([]string{stix.TLP2Red, "external_references.[0].source_name"})),
			action: Withhold, reason: ReasonRequiredRedacted},
		{name: "granular unknown removed", raw: indicator(green, granular([]string{unknownMD, "description"})), action: PublishRedacted, removed: []string{"description"}},
		{name: "granular unknown treated as green", cfg: func(c *RouteConfig) { c.Unmarked = "TLP:GREEN" }, raw: indicator(green, granular([]string{unknownMD, "description"})), action: Publish},
		{name: "granular statement kept", reg: true, raw: indicator(green, granular([]string{statementMD, "description"})), action: Publish},
		{name: "existing extensions kept", raw: indicator(green,
			member{"extensions", `{"extension-definition--d83fce45-ef58-4c6c-a3f4-1fbc32e98c6e":{"extension_type":"property-extension","rank":5}}`},
			granular([]string{stix.TLP2Red, "description"})),
			action: PublishRedacted, removed: []string{"description"}, contains: []string{`"rank":5}`, RedactionExtension}},

		// Data minimisation.
		{name: "property dropped", cfg: func(c *RouteConfig) { c.Minimise.DropProperties = []string{"description"} }, raw: indicator(green),
			action: PublishRedacted, removed: []string{"description"}, absent: []string{"Seen in the campaign"}},
		{name: "absent property", cfg: func(c *RouteConfig) { c.Minimise.DropProperties = []string{"confidence"} }, raw: indicator(green), action: Publish, unchanged: true},
		{name: "custom properties dropped", cfg: func(c *RouteConfig) { c.Minimise.DropCustomProperties = true },
			raw:    indicator(green, member{"x_acme_victim", `"alice@example.org"`}, member{"external_references", `[{"source_name":"a","external_id":"1","x_acme_case":"42"}]`}),
			action: PublishRedacted, removed: []string{"x_acme_victim", "external_references.[0].x_acme_case"}, absent: []string{"alice@example.org", `"x_acme_case":"42"`}},
		{name: "custom properties kept", raw: indicator(green, member{"x_acme_victim", `"alice@example.org"`}), action: Publish},

		// References.
		{name: "reference published", raw: relationship(indID, malwareID), in: func(in *Input) { in.Published = published(indID, malwareID) }, action: Publish},
		{name: "required reference trimmed withholds", raw: relationship(indID, malwareID), in: func(in *Input) { in.Published = published(indID) }, action: Withhold, reason: ReasonRequiredRedacted},
		{name: "nil Published trims", raw: relationship(indID, malwareID), action: Withhold, reason: ReasonRequiredRedacted},
		{name: "report refs trimmed", raw: report(indID, malwareID, identID), in: func(in *Input) { in.Published = published(malwareID) },
			action: PublishRedacted, removed: []string{"object_refs.[0]", "object_refs.[2]"}, absent: []string{indID, identID}, contains: []string{`"object_refs":["` + malwareID + `"]`}},
		{name: "report refs all trimmed", raw: report(indID), action: Withhold, reason: ReasonRequiredRedacted},
		{name: "references withhold", cfg: func(c *RouteConfig) { c.References = ReferencesWithhold }, raw: report(indID, malwareID),
			in: func(in *Input) { in.Published = published(malwareID) }, action: Withhold, reason: ReasonReference},
		{name: "references withhold all published", cfg: func(c *RouteConfig) { c.References = ReferencesWithhold }, raw: report(indID, malwareID),
			in: func(in *Input) { in.Published = published(malwareID, indID) }, action: Publish},
		{name: "references allow dangling", cfg: func(c *RouteConfig) { c.References = ReferencesAllowDangling }, raw: report(indID), action: Publish},
		{name: "created_by_ref trimmed", raw: indicator(green, member{"created_by_ref", `"` + identID + `"`}),
			action: PublishRedacted, removed: []string{"created_by_ref"}, absent: []string{identID}},
		{name: "marking refs are not references", raw: indicator(green, granular([]string{stix.TLP2Clear, "name"})), action: Publish},

		// Conditions.
		{name: "condition true", cfg: func(c *RouteConfig) {
			c.Condition = `object.type == "indicator" && tlp == "TLP:GREEN" && producer == "CERT-A"`
		}, raw: indicator(green), action: Publish},
		{name: "condition false", cfg: func(c *RouteConfig) { c.Condition = `object.name.startsWith("x")` }, raw: indicator(green), action: Withhold, reason: ReasonConditionFalse},
		{name: "condition error", cfg: func(c *RouteConfig) { c.Condition = `object.confidence > 50.0` }, raw: indicator(green), action: Withhold, reason: ReasonConditionError},
		{name: "condition non-bool", cfg: func(c *RouteConfig) { c.Condition = `object.name` }, raw: indicator(green), action: Withhold, reason: ReasonConditionError},
		{name: "condition sees redacted object", cfg: func(c *RouteConfig) { c.Condition = `!has(object.description)` },
			raw: indicator(green, granular([]string{stix.TLP2Red, "description"})), action: PublishRedacted, removed: []string{"description"}},
		{name: "condition skipped for revocation", cfg: func(c *RouteConfig) { c.Condition = `false` }, raw: indicator(green, member{"revoked", "true"}),
			in: func(in *Input) { in.Revoked, in.Received = true, true }, action: Publish},

		// Other objects.
		{name: "marking definition", raw: `{"type":"marking-definition","spec_version":"2.1","id":"` + statementMD +
			`","created":"2017-01-20T00:00:00.000Z","definition_type":"statement","definition":{"statement":"c"}}`, action: Withhold, reason: ReasonMarkingDefinition},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rc := baseConfig()
			if tt.cfg != nil {
				tt.cfg(&rc)
			}
			r := mustCompile(t, rc)
			var reg *stix.Markings
			if tt.reg {
				reg = statementRegistry(t)
			}
			in := input(t, tt.raw, reg)
			if tt.in != nil {
				tt.in(&in)
			}
			d := Evaluate(in, r, testNow)
			if d.Action != tt.action || d.Reason != tt.reason {
				t.Fatalf("got %s (%s: %s), want %s (%s)", d.Action, d.Reason, d.Detail, tt.action, tt.reason)
			}
			if d.Route != routeID || d.PolicyVersion != r.Version() || d.OriginalSHA256 != in.SHA256 {
				t.Errorf("got route %q version %q original hash %x, want %q %q %x", d.Route, d.PolicyVersion, d.OriginalSHA256, routeID, r.Version(), in.SHA256)
			}
			again := Evaluate(in, r, testNow)
			if !reflect.DeepEqual(d, again) {
				t.Errorf("Evaluate is not deterministic:\n%+v\n%+v", d, again)
			}
			switch d.Action {
			case Withhold:
				if d.Object != nil || d.Detail == "" || d.PublishedSHA256 != ([32]byte{}) {
					t.Errorf("withheld with object %q, detail %q, published hash %x", d.Object, d.Detail, d.PublishedSHA256)
				}
				return
			case Publish:
				if in.Markings.TLP == stix.TLPNone && r.Config().Unmarked != UnmarkedWithhold {
					// Unmarked, published at the route's assumed level: the copy
					// says so.
					id := d.TLP.MarkingID()
					if !bytes.Contains(d.Object, []byte(`"`+id+`"]`)) || !bytes.Contains(d.Object, []byte(`"assumed_tlp":"`+d.TLP.String()+`"`)) || d.PublishedSHA256 == d.OriginalSHA256 || d.Removed != nil {
						t.Errorf("published %s with hash %x and removals %v, want the original with %s stamped", d.Object, d.PublishedSHA256, d.Removed, id)
					}
					break
				}
				if !bytes.Equal(d.Object, in.Raw) || d.PublishedSHA256 != d.OriginalSHA256 || d.Removed != nil {
					t.Errorf("published %s with hash %x and removals %v, want the original", d.Object, d.PublishedSHA256, d.Removed)
				}
			case PublishRedacted:
				var paths []string
				for _, x := range d.Removed {
					paths = append(paths, x.Path)
					if x.Reason == "" || x.Detail == "" {
						t.Errorf("removal %+v lacks a reason", x)
					}
				}
				if !slices.Equal(paths, tt.removed) {
					t.Errorf("removed %q, want %q", paths, tt.removed)
				}
				items, err := stix.DecodeEnvelope([]byte(`{"objects":[` + string(d.Object) + `]}`))
				if err != nil || items[0].Err != nil {
					t.Errorf("redacted object is invalid: %v %v\n%s", err, items[0].Err, d.Object)
				}
				if h, _ := stix.Hash(d.Object); h != d.PublishedSHA256 || h == d.OriginalSHA256 {
					t.Errorf("published hash %x, want %x (and not the original's)", d.PublishedSHA256, h)
				}
				if _, err := stix.NewMarkings().Resolve(d.Object); err != nil {
					t.Errorf("redacted object's markings do not resolve: %v\n%s", err, d.Object)
				}
			}
			out := string(d.Object)
			if tt.unchanged && out != tt.raw {
				t.Errorf("got %s, want the input unchanged", out)
			}
			for _, s := range tt.absent {
				if strings.Contains(out, s) {
					t.Errorf("output contains %q:\n%s", s, out)
				}
			}
			for _, s := range tt.contains {
				if !strings.Contains(out, s) {
					t.Errorf("output lacks %q:\n%s", s, out)
				}
			}
		})
	}
}

func TestEvaluateRedactedOrder(t *testing.T) {
	raw := indicator(marked(stix.TLP2Green), granular([]string{stix.TLP2Red, "description"}))
	d := Evaluate(input(t, raw, nil), mustCompile(t, baseConfig()), testNow)
	want := `{"type":"indicator","spec_version":"2.1","id":"` + indID + `","created":"2024-05-08T09:00:00.000Z","modified":"2024-05-08T09:00:00.000Z",` +
		`"name":"C2 address","indicator_types":["malicious-activity"],"pattern":"[ipv4-addr:value = '198.51.100.7']","pattern_type":"stix",` +
		`"valid_from":"2024-05-08T09:00:00.000Z","object_marking_refs":["` + stix.TLP2Green + `"],` +
		`"extensions":{"` + RedactionExtension + `":{"extension_type":"property-extension","redacted_properties":["description"]}}}`
	if string(d.Object) != want {
		t.Errorf("got\n%s\nwant\n%s", d.Object, want)
	}
}

func TestEvaluateInvalid(t *testing.T) {
	r := mustCompile(t, baseConfig())
	for _, raw := range []string{``, `[]`, `{"a":1,"a":2}`, `{"a":1} {}`, "\"\xff\""} {
		d := Evaluate(Input{Raw: []byte(raw), Markings: stix.Resolution{TLP: stix.TLPGreen}}, r, testNow)
		if d.Action != Withhold || d.Reason != ReasonInvalid {
			t.Errorf("%q: got %s (%s), want withheld as invalid", raw, d.Action, d.Reason)
		}
	}
	// Granular markings that do not fit the object fail closed.
	in := input(t, indicator(marked(stix.TLP2Green)), nil)
	in.Markings.Granular = []stix.GranularMarking{{Selectors: []string{"no_such"}, MarkingRef: stix.TLP2Red, Kind: stix.TLPMarking, TLP: stix.TLPRed}}
	if d := Evaluate(in, r, testNow); d.Action != Withhold || d.Reason != ReasonInvalid {
		t.Errorf("selector selecting nothing: got %s (%s), want withheld as invalid", d.Action, d.Reason)
	}
}
