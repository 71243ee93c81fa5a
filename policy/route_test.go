package policy

import (
	"errors"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/ctigate/ctigate"
	"github.com/ctigate/ctigate/stix"
)

func TestCompileErrors(t *testing.T) {
	tests := []struct {
		name string
		cfg  func(*RouteConfig)
		want string // a line of the error
	}{
		{"red ceiling", func(c *RouteConfig) { c.Ceiling = "TLP:RED" }, `route "law-enforcement".ceiling: TLP:RED is never published automatically`},
		{"red ceiling lower case", func(c *RouteConfig) { c.Ceiling = "red" }, `.ceiling: TLP:RED is never published automatically`},
		{"no ceiling", func(c *RouteConfig) { c.Ceiling = "" }, `.ceiling: required`},
		{"none ceiling", func(c *RouteConfig) { c.Ceiling = "none" }, `.ceiling: "none" is not a TLP level`},
		{"bad ceiling", func(c *RouteConfig) { c.Ceiling = "TLP:BLUE" }, `.ceiling: "TLP:BLUE" is not a TLP level`},
		{"bad id", func(c *RouteConfig) { c.ID = "law" }, `.id: "law" is not a UUID`},
		{"no name", func(c *RouteConfig) { c.Name = " " }, `.name: must not be empty`},
		{"no sources", func(c *RouteConfig) { c.Sources = nil }, `.sources: at least one`},
		{"bad source", func(c *RouteConfig) { c.Sources = []string{inboundID, "x"} }, `.sources[1]: "x" is not a collection id`},
		{"self source", func(c *RouteConfig) { c.Sources = []string{routeID} }, `.sources[0]: a route cannot read the collection it publishes to`},
		{"unmarked red", func(c *RouteConfig) { c.Unmarked = "TLP:RED" }, `.unmarked: TLP:RED would withhold`},
		{"unmarked above ceiling", func(c *RouteConfig) { c.Ceiling = "TLP:GREEN"; c.Unmarked = "TLP:AMBER" }, `.unmarked: TLP:AMBER is above the ceiling TLP:GREEN`},
		{"unmarked bad", func(c *RouteConfig) { c.Unmarked = "publish" }, `.unmarked: "publish" is neither "withhold" nor a TLP level`},
		{"bad type", func(c *RouteConfig) { c.AllowTypes = []string{"Indicator"} }, `.allow_types[0]: "Indicator" is not a STIX type name`},
		{"bad excluded type", func(c *RouteConfig) { c.ExcludeTypes = []string{"ok-type", "a"} }, `.exclude_types[1]: "a" is not a STIX type name`},
		{"allowed and excluded", func(c *RouteConfig) { c.AllowTypes = []string{"indicator"}; c.ExcludeTypes = []string{"indicator"} }, `.exclude_types: "indicator" is also in allow_types`},
		{"identity class only in drop_types", func(c *RouteConfig) { c.ExcludeTypes = []string{"identity:individual"} }, `.exclude_types[0]: "identity:individual" is not a STIX type name`},
		{"empty producer", func(c *RouteConfig) { c.Producers = []string{""} }, `.producers[0]: must not be empty`},
		{"bad references", func(c *RouteConfig) { c.References = "drop" }, `.references: "drop" is not one of trim, withhold, allow_dangling`},
		{"bad expiry", func(c *RouteConfig) { c.Expiry = "keep" }, `.expiry: "keep" is not one of withhold, ignore`},
		{"protected property", func(c *RouteConfig) { c.Minimise.DropProperties = []string{"object_marking_refs"} }, `.minimise.drop_properties[0]: "object_marking_refs" cannot be dropped`},
		{"bad property", func(c *RouteConfig) { c.Minimise.DropProperties = []string{"x-y"} }, `.minimise.drop_properties[0]: "x-y" is not a property name`},
		{"condition syntax", func(c *RouteConfig) { c.Condition = `object.type ==` }, `.condition: ERROR`},
		{"condition undeclared", func(c *RouteConfig) { c.Condition = `obj.type == "x"` }, `.condition: ERROR: <input>:1:1: undeclared reference to 'obj'`},
		{"condition not bool", func(c *RouteConfig) { c.Condition = `tlp` }, `.condition: must be a bool expression, got string`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rc := baseConfig()
			tt.cfg(&rc)
			r, err := Compile(rc)
			if err == nil {
				t.Fatalf("Compile succeeded (%+v), want an error with %q", r.Config(), tt.want)
			}
			if ctigate.KindOf(err) != ctigate.Invalid {
				t.Errorf("got kind %v, want invalid", ctigate.KindOf(err))
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %q, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestCompileRoutes(t *testing.T) {
	a := baseConfig()
	b := baseConfig()
	b.Name = "judiciary"
	b.ID = "5d0b7e6c-2a1f-4b8e-9c3d-7e6f5a4b3c2d"
	b.Ceiling = "TLP:RED"
	c := baseConfig()
	c.ID = "9C1F6A52-58A5-4D0A-8F3F-2F1B0A4C7E11" // a's id, upper case
	c.Name = "law-enforcement"
	_, err := CompileRoutes([]RouteConfig{a, b, c})
	if err == nil {
		t.Fatal("CompileRoutes succeeded")
	}
	for _, want := range []string{
		"routes[1].ceiling: TLP:RED is never published automatically",
		`routes[2].id: "9C1F6A52-58A5-4D0A-8F3F-2F1B0A4C7E11" is already the id of routes[0]`,
		`routes[2].name: "law-enforcement" is already the name of routes[0]`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("got %q, want it to contain %q", err, want)
		}
	}
	var e *ctigate.Error
	if !errors.As(err, &e) || e.Kind != ctigate.Invalid {
		t.Errorf("got %T %v, want a *ctigate.Error of kind invalid", err, err)
	}

	b.Ceiling = "TLP:GREEN"
	routes, err := CompileRoutes([]RouteConfig{a, b})
	if err != nil || len(routes) != 2 || routes[1].Ceiling() != stix.TLPGreen {
		t.Fatalf("got %v, %v", routes, err)
	}
}

func TestCompileDefaults(t *testing.T) {
	r := mustCompile(t, baseConfig())
	c := r.Config()
	if c.Unmarked != UnmarkedWithhold || c.References != ReferencesTrim || c.Expiry != ExpiryWithhold || c.Ceiling != "TLP:AMBER" {
		t.Errorf("defaults: got unmarked %q references %q expiry %q ceiling %q", c.Unmarked, c.References, c.Expiry, c.Ceiling)
	}
	if r.ID() != routeID || r.Name() != "law-enforcement" || len(r.Sources()) != 1 || r.Ceiling() != stix.TLPAmber {
		t.Errorf("got %q %q %v %v", r.ID(), r.Name(), r.Sources(), r.Ceiling())
	}
	if len(r.Version()) != 64 {
		t.Errorf("version %q is not a hex SHA-256", r.Version())
	}
}

func TestVersion(t *testing.T) {
	base := baseConfig()
	base.AllowTypes = []string{"indicator", "malware"}
	v := mustCompile(t, base).Version()

	same := []func(*RouteConfig){
		func(c *RouteConfig) { c.AllowTypes = []string{"malware", "indicator", "malware"} },
		func(c *RouteConfig) { c.Ceiling = "amber" },
		func(c *RouteConfig) { c.Unmarked = "withhold"; c.References = "trim"; c.Expiry = "withhold" },
		func(c *RouteConfig) { c.ID = strings.ToUpper(c.ID) },
		func(c *RouteConfig) { c.Condition = "  " },
	}
	for i, f := range same {
		c := baseConfig()
		c.AllowTypes = []string{"indicator", "malware"}
		f(&c)
		if got := mustCompile(t, c).Version(); got != v {
			t.Errorf("same[%d]: version %s, want %s", i, got, v)
		}
	}
	differ := []func(*RouteConfig){
		func(c *RouteConfig) { c.Ceiling = "TLP:GREEN" },
		func(c *RouteConfig) { c.Unmarked = "TLP:CLEAR" },
		func(c *RouteConfig) { c.AllowTypes = []string{"indicator"} },
		func(c *RouteConfig) { c.ExcludeTypes = []string{"identity"} },
		func(c *RouteConfig) { c.Producers = []string{"CERT-A"} },
		func(c *RouteConfig) { c.References = ReferencesAllowDangling },
		func(c *RouteConfig) { c.Expiry = ExpiryIgnore },
		func(c *RouteConfig) { c.Minimise.DropCustomProperties = true },
		func(c *RouteConfig) { c.Minimise.DropProperties = []string{"description"} },
		func(c *RouteConfig) { c.Minimise.DropTypes = []string{"identity:individual"} },
		func(c *RouteConfig) { c.Condition = "true" },
		func(c *RouteConfig) { c.Name = "other" },
	}
	seen := map[string]int{v: -1}
	for i, f := range differ {
		c := baseConfig()
		c.AllowTypes = []string{"indicator", "malware"}
		f(&c)
		got := mustCompile(t, c).Version()
		if j, dup := seen[got]; dup {
			t.Errorf("differ[%d]: version %s, the same as %d", i, got, j)
		}
		seen[got] = i
	}
	// The version is pinned: a change of the canonical form must be a
	// deliberate one (bump policyFormat).
	if want := mustCompile(t, baseConfig()).Version(); want != pinnedVersion {
		t.Errorf("base route version %s, want the pinned %s", want, pinnedVersion)
	}
}

// pinnedVersion is the policy version of baseConfig.
const pinnedVersion = "153bdb00a571df1ae9d1a7c077d76ce4c94c956902a4dafb85d6792c89e9c834"

func TestRouteConfigYAML(t *testing.T) {
	src := `
id: 9c1f6a52-58a5-4d0a-8f3f-2f1b0a4c7e11
name: law-enforcement
sources: [0b8f3d8e-5a8c-4f4e-9a43-7f0a9c7d2b10]
ceiling: TLP:AMBER
unmarked: withhold
exclude_types: [email-addr, user-account]
references: trim
expiry: withhold
minimise:
  drop_types: ["identity:individual"]
  drop_custom_properties: true
condition: 'object.type != "note"'
`
	var rc RouteConfig
	dec := yaml.NewDecoder(strings.NewReader(src))
	dec.KnownFields(true)
	if err := dec.Decode(&rc); err != nil {
		t.Fatal(err)
	}
	r := mustCompile(t, rc)
	if !r.cfg.Minimise.DropCustomProperties || !r.dropIndi || !r.exclude["user-account"] || r.cond == nil {
		t.Errorf("got %+v", r.Config())
	}
}
