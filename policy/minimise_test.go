package policy

import (
	"strconv"
	"strings"
	"testing"

	"pgregory.net/rapid"

	"github.com/ctigate/ctigate/stix"
)

// identityWith returns a TLP:GREEN identity with the identity_class member
// given raw ("" for none).
func identityWith(class string) string {
	ms := []member{marked(stix.TLP2Green), {"name", `"J. Doe"`}}
	if class != "" {
		ms = append(ms, member{"identity_class", class})
	}
	return object("identity", identID, ms...)
}

func dropIndividuals(c *RouteConfig) { c.Minimise.DropTypes = []string{"identity:individual"} }

// TestMinimiseIdentityAllowList: a route that drops individuals publishes
// an identity only when its class is one it lists (default organization,
// class, system), whatever the spelling; every other class, a misspelt
// one, an unknown one and a missing one are withheld.
func TestMinimiseIdentityAllowList(t *testing.T) {
	cfg := baseConfig()
	dropIndividuals(&cfg)
	r := mustCompile(t, cfg)
	for class, publish := range map[string]bool{
		`"individual"`: false, `"Individual"`: false, `"INDIVIDUAL"`: false, `" individual"`: false, `"individual "`: false,
		`"person"`: false, `"group"`: false, `"unknown"`: false, `""`: false, ``: false, `"indi vidual"`: false,
		`"organization"`: true, `"Organization"`: true, `" ORGANIZATION "`: true, `"class"`: true, `"system"`: true,
	} {
		d := Evaluate(input(t, identityWith(class), nil), r, testNow)
		if got := d.Action != Withhold; got != publish {
			t.Errorf("identity_class %s: %s (%s), want published %v", class, d.Action, d.Detail, publish)
		}
		if !publish && d.Reason != ReasonMinimisedType {
			t.Errorf("identity_class %s: reason %s, want %s", class, d.Reason, ReasonMinimisedType)
		}
	}
	// A route may list its own classes, spelt as it likes; group then
	// passes, organisations do not.
	cfg.Minimise.IdentityClasses = []string{" Group"}
	r = mustCompile(t, cfg)
	if d := Evaluate(input(t, identityWith(`"group"`), nil), r, testNow); d.Action == Withhold {
		t.Errorf("identity_classes [Group]: a group identity withheld: %s", d.Detail)
	}
	if d := Evaluate(input(t, identityWith(`"organization"`), nil), r, testNow); d.Action != Withhold {
		t.Errorf("identity_classes [Group]: an organisation published")
	}
	// Listing individuals, or classes without dropping individuals, is refused.
	for _, bad := range []RouteConfig{
		func() RouteConfig { c := cfg; c.Minimise.IdentityClasses = []string{"INDIVIDUAL"}; return c }(),
		func() RouteConfig { c := baseConfig(); c.Minimise.IdentityClasses = []string{"organization"}; return c }(),
	} {
		if _, err := Compile(bad); err == nil || !strings.Contains(err.Error(), "minimise.identity_classes") {
			t.Errorf("Compile(%v) = %v; want an error naming minimise.identity_classes", bad.Minimise, err)
		}
	}
}

// TestMinimiseSpellings: the other minimisation rules read names without
// regard to case: drop_properties and drop_custom_properties remove
// DESCRIPTION-like and X_-prefixed spellings too.
func TestMinimiseSpellings(t *testing.T) {
	cfg := baseConfig()
	cfg.Minimise.DropProperties = []string{"x_case"}
	r := mustCompile(t, cfg)
	d := Evaluate(input(t, indicator(marked(stix.TLP2Green), member{"x_case", `"secret"`}), nil), r, testNow)
	if d.Action != PublishRedacted || strings.Contains(string(d.Object), "secret") {
		t.Errorf("drop_properties: %s %s", d.Action, d.Object)
	}
	cfg = baseConfig()
	cfg.Minimise.DropCustomProperties = true
	r = mustCompile(t, cfg)
	d = Evaluate(input(t, indicator(marked(stix.TLP2Green), member{"x_acme", `{"x_inner":"secret"}`}), nil), r, testNow)
	if d.Action != PublishRedacted || strings.Contains(string(d.Object), "secret") {
		t.Errorf("drop_custom_properties: %s %s", d.Action, d.Object)
	}
}

// TestNoIdentityOutsideAllowList is the property: under a route that drops
// individuals, an identity is published only when its class, lower-cased
// and without spaces, is in the route's allow-list; generated classes mix
// cases, spaces, personal and unknown words, and absence.
//
//	go test ./policy -run TestNoIdentityOutsideAllowList -rapid.checks=10000
func TestNoIdentityOutsideAllowList(t *testing.T) {
	words := []string{"individual", "organization", "group", "class", "system", "unknown", "person", "people", "human", "org", "Individual", ""}
	rapid.Check(t, func(rt *rapid.T) {
		cfg := baseConfig()
		dropIndividuals(&cfg)
		allow := rapid.SliceOfNDistinct(rapid.SampledFrom([]string{"organization", "class", "system", "group"}), 0, 3, rapid.ID[string]).Draw(rt, "allow")
		cfg.Minimise.IdentityClasses = allow
		r, err := Compile(cfg)
		if err != nil {
			rt.Fatal(err)
		}
		var class string
		if rapid.Bool().Draw(rt, "has_class") {
			w := rapid.SampledFrom(words).Draw(rt, "word")
			var b strings.Builder
			for _, c := range w {
				if rapid.Bool().Draw(rt, "upper") {
					c = []rune(strings.ToUpper(string(c)))[0]
				}
				b.WriteRune(c)
				if rapid.IntRange(0, 9).Draw(rt, "space") == 0 {
					b.WriteString(rapid.SampledFrom([]string{" ", "\t", "  "}).Draw(rt, "blank"))
				}
			}
			class = strconv.Quote(rapid.SampledFrom([]string{"", " "}).Draw(rt, "lead") + b.String())
		}
		raw := identityWith(class)
		res, h, err := stix.NewMarkings().ResolveHash([]byte(raw))
		if err != nil {
			rt.Fatal(err)
		}
		d := Evaluate(Input{Raw: []byte(raw), Type: "identity", ID: identID, SHA256: h, Markings: res, Producer: "CERT-A"}, r, testNow)
		norm := ""
		if class != "" {
			s, _ := strconv.Unquote(class)
			norm = strings.Join(strings.Fields(strings.ToLower(s)), "")
		}
		listed := false
		for _, a := range r.Config().Minimise.IdentityClasses {
			listed = listed || a == norm
		}
		if (d.Action != Withhold) != listed {
			rt.Fatalf("identity_class %s (allow-list %v): %s %s", class, r.Config().Minimise.IdentityClasses, d.Action, d.Detail)
		}
		if d.Action != Withhold && (norm == "individual" || norm == "") {
			rt.Fatalf("an identity of class %s was published", class)
		}
	})
}
