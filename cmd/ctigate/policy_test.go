package main

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-json-experiment/json"

	"github.com/ctigate/ctigate/stix"

	"github.com/ctigate/ctigate/internal/shared"
)

const policyFixture = "testdata/policy-check.json"

// policyCheck runs `ctigate policy check args…` and returns its output
// and error.
func policyCheck(t *testing.T, stdin string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err = run(context.Background(), append([]string{"policy", "check"}, args...), func(string) string { return "" },
		strings.NewReader(stdin), &out, &errOut)
	return out.String(), errOut.String(), err
}

type checkLine struct {
	Index    int    `json:"index"`
	ID       string `json:"id"`
	Version  string `json:"version"`
	Decision string `json:"decision"`
	Reason   string `json:"reason"`
	Detail   string `json:"detail"`
	TLP      string `json:"tlp"`
	Removed  []struct {
		Path   string `json:"path"`
		Reason string `json:"reason"`
		Detail string `json:"detail"`
	} `json:"removed"`
	SHA256  string        `json:"sha256"`
	Summary *checkSummary `json:"summary"`
}

// parseCheckLines parses JSON Lines output: the decisions, then the
// summary, which must come last and only there.
func parseCheckLines(t *testing.T, out string) ([]checkLine, *checkSummary) {
	t.Helper()
	var lines []checkLine
	var sum *checkSummary
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var l checkLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("line %d is not JSON: %v: %s", len(lines)+1, err, sc.Text())
		}
		if sum != nil {
			t.Fatalf("line after the summary: %s", sc.Text())
		}
		if l.Summary != nil {
			sum = l.Summary
			continue
		}
		lines = append(lines, l)
	}
	if sum == nil {
		t.Fatal("no summary line")
	}
	return lines, sum
}

func TestPolicyCheckDemoRoutes(t *testing.T) {
	type want struct{ decision, reason, removed string }
	var (
		publish  = want{"publish", "", ""}
		red      = want{"withhold", "tlp_red", ""}
		rejected = want{"rejected", "", ""}
		markDef  = want{"withhold", "marking_definition", ""}
	)
	withhold := func(reason string) want { return want{"withhold", reason, ""} }
	redacted := func(reason, removed string) want { return want{"publish_redacted", reason, removed} }
	// One row per object of the fixture, in order: law-enforcement
	// (ceiling TLP:AMBER, defaults), judiciary (ceiling TLP:GREEN, data
	// minimisation).
	cases := []struct {
		what       string
		police     want
		judiciary  want
		idContains string
	}{
		{"organisation identity, TLP 2.0 CLEAR", publish, publish, "identity--"},
		{"TLP 2.0 CLEAR", publish, publish, "indicator--"},
		{"TLP 1.0 WHITE", publish, publish, "indicator--"},
		{"TLP 1.0 GREEN", publish, publish, "indicator--"},
		{"TLP 2.0 GREEN + statement defined later in the file", publish, publish, "indicator--"},
		{"TLP 1.0 AMBER", publish, withhold("above_ceiling"), "indicator--"},
		{"TLP 2.0 AMBER", publish, withhold("above_ceiling"), "indicator--"},
		{"TLP 2.0 AMBER+STRICT", withhold("above_ceiling"), withhold("above_ceiling"), "indicator--"},
		{"TLP 1.0 RED", red, red, "indicator--"},
		{"TLP 2.0 RED", red, red, "indicator--"},
		{"unmarked", withhold("unmarked"), withhold("unmarked"), "indicator--"},
		{"GREEN + unknown marking", withhold("unknown_marking"), withhold("unknown_marking"), "indicator--"},
		{"GREEN with granular RED description", redacted("granular_marking", "description"), redacted("granular_marking", "description"), "indicator--"},
		{"GREEN with x_ property", publish, redacted("minimised_property", "x_cert_a_case"), "indicator--"},
		{"expired", withhold("expired"), withhold("expired"), "indicator--"},
		{"relationship from a RED indicator", withhold("required_property_redacted"), withhold("required_property_redacted"), "relationship--"},
		{"relationship from an AMBER indicator", publish, withhold("required_property_redacted"), "relationship--"},
		{"report referring to a RED indicator", redacted("trimmed_reference", "object_refs.[1]"), redacted("trimmed_reference", "object_refs.[1]"), "report--"},
		{"individual identity", publish, withhold("minimised_type"), "identity--"},
		{"invalid indicator", rejected, rejected, "indicator--"},
		{"relationship to an object later in the file", publish, publish, "relationship--"}, // decided as one set: order does not matter
		{"indicator referred to before it", publish, publish, "indicator--"},
		{"statement marking definition", markDef, markDef, "marking-definition--"},
		{"standard TLP 2.0 AMBER definition", markDef, markDef, "marking-definition--"},
		{"forged TLP definition", rejected, rejected, "marking-definition--"},
	}
	for _, route := range []string{"law-enforcement", "judiciary"} {
		t.Run(route, func(t *testing.T) {
			out, _, err := policyCheck(t, "", "--config", demoConfig, "--route", route, "--json", policyFixture)
			if err != nil {
				t.Fatal(err)
			}
			lines, sum := parseCheckLines(t, out)
			if len(lines) != len(cases) {
				t.Fatalf("got %d decisions, want %d", len(lines), len(cases))
			}
			counts := map[string]int{}
			for i, c := range cases {
				w := c.police
				if route == "judiciary" {
					w = c.judiciary
				}
				l := lines[i]
				var removed []string
				for _, r := range l.Removed {
					removed = append(removed, r.Path)
				}
				got := want{l.Decision, l.Reason, strings.Join(removed, ",")}
				if l.Index != i || !strings.HasPrefix(l.ID, c.idContains) {
					t.Errorf("line %d: index %d, id %s; want index %d, a %s", i, l.Index, l.ID, i, c.idContains)
				}
				if got != w {
					t.Errorf("%d %s (%s): got %+v, want %+v (detail %q)", i, c.what, l.ID, got, w, l.Detail)
				}
				if l.TLP == "TLP:RED" && l.Decision != "withhold" {
					t.Errorf("%s: TLP:RED object decided %s", l.ID, l.Decision)
				}
				if w.decision == "rejected" && l.Detail == "" {
					t.Errorf("%s: rejected without the validation error", l.ID)
				}
				counts[w.decision]++
			}
			if sum.Route != route || sum.Objects != len(cases) || len(sum.PolicyVersion) != 64 {
				t.Errorf("summary %+v", sum)
			}
			for d, n := range counts {
				key := map[string]string{"publish_redacted": "publish redacted", "rejected": "rejected at ingest"}[d]
				if key == "" {
					key = d
				}
				if sum.Decisions[key] != n {
					t.Errorf("summary counts %d %s, want %d", sum.Decisions[key], key, n)
				}
			}
			if sum.Reasons["tlp_red"] != 2 {
				t.Errorf("summary counts %d tlp_red, want 2", sum.Reasons["tlp_red"])
			}

			// The readable form says the same, one line per object and a
			// summary naming the policy version.
			text, _, err := policyCheck(t, "", "--config", demoConfig, "--route", route, policyFixture)
			if err != nil {
				t.Fatal(err)
			}
			tl := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
			if len(tl) != len(cases)+2 {
				t.Fatalf("text output has %d lines, want %d:\n%s", len(tl), len(cases)+2, text)
			}
			// Offline, it says what it cannot see.
			if note := tl[len(tl)-2]; !strings.HasPrefix(note, "note: offline check: the route's collection is not seen") {
				t.Errorf("note line: %s", note)
			}
			if !strings.Contains(tl[8], " withhold ") || !strings.Contains(tl[8], "tlp_red: ") {
				t.Errorf("TLP:RED line: %s", tl[8])
			}
			if !strings.Contains(tl[12], "publish redacted") || !strings.Contains(tl[12], "removed description (granular_marking: ") {
				t.Errorf("redacted line: %s", tl[12])
			}
			if !strings.Contains(tl[19], "rejected at ingest  indicator--") || !strings.Contains(tl[19], "valid_until") {
				t.Errorf("rejected line: %s", tl[19])
			}
			last := tl[len(tl)-1]
			if !strings.HasPrefix(last, "summary: 25 objects: ") || !strings.Contains(last, "policy version "+sum.PolicyVersion) {
				t.Errorf("summary line: %s", last)
			}
		})
	}
}

func TestPolicyCheckRouteNames(t *testing.T) {
	data, err := os.ReadFile(policyFixture)
	if err != nil {
		t.Fatal(err)
	}
	// A route is named by its name, its collection's id or alias; - reads
	// stdin; flags may follow the file.
	for _, args := range [][]string{
		{"--route", "17f28d77-a964-471e-ab40-76087911370a", "--json", policyFixture},
		{"--route", "judiciary", "--json", "-"},
		{"-", "--json", "--route", "judiciary"},
	} {
		out, _, err := policyCheck(t, string(data), append([]string{"--config", demoConfig}, args...)...)
		if err != nil {
			t.Errorf("%v: %v", args, err)
			continue
		}
		if _, sum := parseCheckLines(t, out); sum.Route != "judiciary" || sum.Objects != 25 {
			t.Errorf("%v: summary %+v", args, sum)
		}
	}

	_, _, err = policyCheck(t, "", "--config", demoConfig, "--route", "interpol", policyFixture)
	if err == nil {
		t.Fatal("unknown route: no error")
	}
	for _, want := range []string{`no route "interpol"`, "law-enforcement (collection 1dae5e88-4b59-4503-a9cf-2e649dd6544c", "judiciary (collection 17f28d77-a964-471e-ab40-76087911370a"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("unknown route: %v, want it to say %q", err, want)
		}
	}
}

func TestPolicyCheckFailures(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cases := []struct {
		what string
		args []string
		want string
	}{
		{"missing file", []string{"--route", "judiciary", filepath.Join(dir, "nope.json")}, "no such file"},
		{"not JSON", []string{"--route", "judiciary", write("bad.json", "{\"objects\": [")}, "bad.json"},
		{"no objects", []string{"--route", "judiciary", write("empty.json", `{"type":"bundle","objects":[]}`)}, "objects"},
		{"not an envelope", []string{"--route", "judiciary", write("list.json", `[{"type":"indicator"}]`)}, "list.json"},
		{"no --route", []string{policyFixture}, "usage"},
		{"two files", []string{"--route", "judiciary", policyFixture, policyFixture}, "usage"},
	}
	for _, c := range cases {
		_, _, err := policyCheck(t, "", append([]string{"--config", demoConfig}, c.args...)...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want an error containing %q", c.what, err, c.want)
		}
	}
}

func TestPolicyCheckRouteConfigErrors(t *testing.T) {
	base, err := os.ReadFile(demoConfig)
	if err != nil {
		t.Fatal(err)
	}
	const (
		leID  = "id: 1dae5e88-4b59-4503-a9cf-2e649dd6544c # law-enforcement"
		judID = "id: 17f28d77-a964-471e-ab40-76087911370a # judiciary"
		src   = "sources: [24f70a31-7be5-4fdd-8353-9784877646c1, 5b6b0f0e-3c2a-4c38-9f0e-7a1d2c3b4e5f] # cert-a-inbound, cert-b-inbound\n    ceiling: TLP:AMBER"
	)
	cases := []struct{ what, from, to, want string }{
		{"ceiling TLP:RED", "ceiling: TLP:GREEN", "ceiling: TLP:RED", "config: routes[1].ceiling: TLP:RED is never published"},
		{"unknown ceiling", "ceiling: TLP:GREEN", "ceiling: TLP:PURPLE", "config: routes[1].ceiling: "},
		{"unknown source", src, "sources: [0b3c3ab8-1d3e-4c56-9c4e-2f1e5b0c7a11]\n    ceiling: TLP:AMBER", "config: routes[0].sources[0]: \"0b3c3ab8-1d3e-4c56-9c4e-2f1e5b0c7a11\" is not the id of a configured collection"},
		{"source not a UUID", src, "sources: [cert-a-inbound]\n    ceiling: TLP:AMBER", "config: routes[0].sources[0]: "},
		{"route id not a collection", leID, "id: 0b3c3ab8-1d3e-4c56-9c4e-2f1e5b0c7a11", "config: routes[0].id: \"0b3c3ab8-1d3e-4c56-9c4e-2f1e5b0c7a11\" is not the id of a configured collection"},
		{"two routes into one collection", judID, leID, "config: routes[1].id: "},
		{"route reads its own collection", src, "sources: [1dae5e88-4b59-4503-a9cf-2e649dd6544c]\n    ceiling: TLP:AMBER", "config: routes[0].sources[0]: a route cannot read the collection it publishes to"},
		{"unknown key", "drop_custom_properties: true", "drop_custom_properties: true\n    colour: red", "colour"},
	}
	for _, c := range cases {
		mod := strings.Replace(string(base), c.from, c.to, 1)
		if mod == string(base) {
			t.Fatalf("%s: %q is not in the demo config", c.what, c.from)
		}
		path := filepath.Join(t.TempDir(), "ctigate.yaml")
		if err := os.WriteFile(path, []byte(mod), 0o600); err != nil {
			t.Fatal(err)
		}
		_, _, err := policyCheck(t, "", "--config", path, "--route", "judiciary", policyFixture)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want an error containing %q", c.what, err, c.want)
		}
	}
}

// TestPolicyCheckAttack runs the check over MITRE ATT&CK for ICS, a large
// real bundle, when the shared test data is present.
func TestPolicyCheckAttack(t *testing.T) {
	path := shared.Path(t, "attack", "ics-attack-18.1.json")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	items, err := stix.DecodeEnvelope(data)
	if err != nil {
		t.Fatal(err)
	}
	out, _, err := policyCheck(t, "", "--config", demoConfig, "--route", "law-enforcement", "--json", path)
	if err != nil {
		t.Fatal(err)
	}
	lines, sum := parseCheckLines(t, out)
	if len(lines) != len(items) || sum.Objects != len(items) {
		t.Fatalf("%d decisions, summary %d, for %d objects", len(lines), sum.Objects, len(items))
	}
	total := 0
	for i, l := range lines {
		if l.Index != i || l.ID != items[i].ID || l.Decision == "" {
			t.Fatalf("line %d: %+v, want object %s", i, l, items[i].ID)
		}
		if l.Decision == "withhold" && l.Reason == "" || l.Decision == "rejected" && l.Detail == "" {
			t.Errorf("%s: %s without a reason", l.ID, l.Decision)
		}
	}
	for _, n := range sum.Decisions {
		total += n
	}
	if total != len(items) {
		t.Errorf("summary counts %d decisions for %d objects", total, len(items))
	}
	t.Logf("%d objects: %v; reasons %v", sum.Objects, sum.Decisions, sum.Reasons)
}
