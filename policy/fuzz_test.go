package policy

import (
	"testing"

	"github.com/ctigate/ctigate/stix"
)

// FuzzEvaluate evaluates arbitrary object bytes, resolved as ingest
// resolves them, for routes of every ceiling. Evaluate must not panic, and
// what it publishes must resolve to nothing above the ceiling: no
// object-level TLP above it (nor RED), and no granular marking above it.
//
//	go test ./policy -run '^$' -fuzz FuzzEvaluate -fuzztime 60s
func FuzzEvaluate(f *testing.F) {
	green := marked(stix.TLP2Green)
	for _, s := range []string{
		indicator(green),
		indicator(marked(stix.TLP2Red)),
		indicator(marked(stix.TLP2Green, unknownMD)),
		indicator(green, granular([]string{stix.TLP2Red, "description"}, []string{"lang:en", "name"})),
		indicator(green, member{"labels", `["a","b"]`}, granular([]string{stix.TLP2Amber, "labels.[0]"}, []string{stix.TLP2Green, "labels.[1]"})),
		indicator(green, member{"x_a", `{"x_b":[1,{"c_ref":"indicator--33fe3b22-0201-47cf-85d0-97c02164528d"}]}`}, member{"created_by_ref", `"` + identID + `"`}),
		object("report", "report--84e4d88f-44ea-4bcd-bbf3-b2c1c320bcb3", green, member{"name", `"r"`},
			member{"published", `"2024-05-08T09:00:00.000Z"`}, member{"object_refs", `["` + indID + `","` + malwareID + `"]`}),
		`{"type":"x","granular_markings":[{"marking_ref":"` + stix.TLP2Red + `","selectors":["a.[0].b"]}],"a":[{"b":1}],"object_marking_refs":["` + stix.TLP1White + `"]}`,
	} {
		for c := range uint8(4) {
			f.Add([]byte(s), c, false)
		}
		f.Add([]byte(s), uint8(2), true)
	}
	reg := stix.NewMarkings()
	f.Fuzz(func(t *testing.T, raw []byte, c uint8, unmarked bool) {
		res, err := reg.Resolve(raw)
		if err != nil {
			return // ingest refuses the object: it is never evaluated
		}
		ceiling := stix.TLP(c%4) + stix.TLPClear
		rc := baseConfig()
		rc.Ceiling = ceiling.String()
		if unmarked {
			rc.Unmarked = "TLP:CLEAR"
		}
		r := mustCompile(t, rc)
		in := Input{Raw: raw, Type: "indicator", ID: indID, Markings: res, Producer: "CERT-A",
			Published: func(id string) bool { return id == malwareID }}
		d := Evaluate(in, r, testNow)
		if d.Action == Withhold {
			return
		}
		out, err := reg.Resolve(d.Object)
		if err != nil {
			t.Fatalf("published an object whose markings do not resolve: %v\n%s", err, d.Object)
		}
		if out.TLP == stix.TLPRed || out.TLP.Known() && !out.TLP.Within(ceiling) {
			t.Fatalf("published a %s object with ceiling %s:\n%s", out.TLP, ceiling, d.Object)
		}
		if !unmarked && (out.TLP == stix.TLPNone || len(out.Unknown) > 0) {
			t.Fatalf("published an unmarked object under the withhold rule:\n%s", d.Object)
		}
		for _, g := range out.Granular {
			if g.Kind == stix.TLPMarking && !g.TLP.Within(ceiling) || !unmarked && g.Kind == stix.UnknownMarking && g.Lang == "" {
				t.Fatalf("published content under granular marking %s with ceiling %s:\n%s", g.MarkingRef, ceiling, d.Object)
			}
		}
	})
}
