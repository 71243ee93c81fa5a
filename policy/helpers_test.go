package policy

import (
	"strings"
	"testing"
	"time"

	"github.com/ctigate/ctigate/stix"
)

// Fixed ids and times for tests.
const (
	routeID   = "9c1f6a52-58a5-4d0a-8f3f-2f1b0a4c7e11"
	inboundID = "0b8f3d8e-5a8c-4f4e-9a43-7f0a9c7d2b10"
	indID     = "indicator--33fe3b22-0201-47cf-85d0-97c02164528d"
	identID   = "identity--8c1f6f3e-4e6b-4d0a-9f1e-1a2b3c4d5e6f"
	malwareID = "malware--0c7b5b88-8ff7-4a4d-aa9d-feb398cd0061"
	unknownMD = "marking-definition--1d1c3b1a-7b2c-4c7b-8d5e-6f4a3b2c1d0e"
)

var testNow = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

// member is one "name": value pair, value already JSON.
type member struct{ name, value string }

// object returns a STIX object of type typ with id id and the members,
// in order, after the common ones.
func object(typ, id string, members ...member) string {
	var b strings.Builder
	b.WriteString(`{"type":"` + typ + `","spec_version":"2.1","id":"` + id + `","created":"2024-05-08T09:00:00.000Z","modified":"2024-05-08T09:00:00.000Z"`)
	for _, m := range members {
		b.WriteString(`,"` + m.name + `":` + m.value)
	}
	b.WriteString("}")
	return b.String()
}

// indicator returns a valid indicator with the members added.
func indicator(members ...member) string {
	base := []member{
		{"name", `"C2 address"`},
		{"description", `"Seen in the campaign"`},
		{"indicator_types", `["malicious-activity"]`},
		{"pattern", `"[ipv4-addr:value = '198.51.100.7']"`},
		{"pattern_type", `"stix"`},
		{"valid_from", `"2024-05-08T09:00:00.000Z"`},
	}
	return object("indicator", indID, append(base, members...)...)
}

// marked returns the object_marking_refs member for ids.
func marked(ids ...string) member {
	return member{"object_marking_refs", `["` + strings.Join(ids, `","`) + `"]`}
}

// granular returns a granular_markings member; each entry is
// "marking_ref or lang:tag", then its selectors.
func granular(entries ...[]string) member {
	var parts []string
	for _, e := range entries {
		head := `"marking_ref":"` + e[0] + `"`
		if tag, ok := strings.CutPrefix(e[0], "lang:"); ok {
			head = `"lang":"` + tag + `"`
		}
		parts = append(parts, `{`+head+`,"selectors":["`+strings.Join(e[1:], `","`)+`"]}`)
	}
	return member{"granular_markings", "[" + strings.Join(parts, ",") + "]"}
}

// input returns the evaluation input for raw, which must be a valid STIX
// object, resolved against reg (the standard registry when nil).
func input(t testing.TB, raw string, reg *stix.Markings) Input {
	t.Helper()
	items, err := stix.DecodeEnvelope([]byte(`{"objects":[` + raw + `]}`))
	if err != nil {
		t.Fatalf("DecodeEnvelope: %v", err)
	}
	if items[0].Err != nil {
		t.Fatalf("test object is invalid: %v\n%s", items[0].Err, raw)
	}
	if reg == nil {
		reg = stix.NewMarkings()
	}
	res, h, err := reg.ResolveHash([]byte(raw))
	if err != nil {
		t.Fatalf("Resolve: %v", err)
	}
	return Input{
		Raw:      []byte(raw),
		Type:     items[0].Object.Type,
		ID:       items[0].Object.ID,
		SHA256:   h,
		Markings: res,
		Producer: "CERT-A",
	}
}

// baseConfig is a route with ceiling TLP:AMBER and the defaults.
func baseConfig() RouteConfig {
	return RouteConfig{
		ID:      routeID,
		Name:    "law-enforcement",
		Sources: []string{inboundID},
		Ceiling: "TLP:AMBER",
	}
}

// mustCompile compiles rc or fails the test.
func mustCompile(t testing.TB, rc RouteConfig) *Route {
	t.Helper()
	r, err := Compile(rc)
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	return r
}
