package policy_test

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/ctigate/ctigate/gateway"
	"github.com/ctigate/ctigate/policy"
	"github.com/ctigate/ctigate/stix"
)

var update = flag.Bool("update", false, "rewrite the want sections of testdata/policy/*.txt")

// casesNow is the time the cases are decided at (valid_until is compared
// with it).
var casesNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// TestCases runs the readable policy suite: each testdata/policy/*.txt
// holds a comment saying what the case shows, then sections
//
//	-- route --      the route, as in the configuration's routes[] (YAML)
//	-- producer --   the submitting organisation (optional; default CERT-A)
//	-- published --  ids the route's collection holds already (optional)
//	-- object --     one STIX object
//	-- want --       decision, then reason and removed properties
//
// and the object is decided exactly as fan-out decides (gateway.Decider).
// `go test ./policy -run TestCases -update` rewrites the want sections;
// review the diff: it is the policy's behaviour.
func TestCases(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "policy", "*.txt"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no cases: %v", err)
	}
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".txt"), func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			comment, sections, order := parseCase(t, data)
			for _, need := range []string{"route", "object", "want"} {
				if _, ok := sections[need]; !ok {
					t.Fatalf("no -- %s -- section", need)
				}
			}
			var rc policy.RouteConfig
			if err := yaml.Unmarshal([]byte(sections["route"]), &rc); err != nil {
				t.Fatalf("route: %v", err)
			}
			if rc.Name == "" {
				rc.Name = "case"
			}
			if rc.ID == "" {
				rc.ID = "1dae5e88-4b59-4503-a9cf-2e649dd6544c"
			}
			if len(rc.Sources) == 0 {
				rc.Sources = []string{"24f70a31-7be5-4fdd-8353-9784877646c1"}
			}
			route, err := policy.Compile(rc)
			if err != nil {
				t.Fatalf("route: %v", err)
			}
			producer := strings.TrimSpace(sections["producer"])
			if producer == "" {
				producer = "CERT-A"
			}
			held := map[string]bool{}
			for _, id := range strings.Fields(sections["published"]) {
				held[id] = true
			}
			items, err := stix.DecodeEnvelope([]byte(`{"objects":[` + strings.TrimSpace(sections["object"]) + `]}`))
			if err != nil {
				t.Fatalf("object: %v", err)
			}
			results, _, err := gateway.DryRun(items, gateway.Decider{
				Markings: stix.NewMarkings(), Route: route, Now: casesNow,
				Holds: func(id string) (bool, error) { return held[id], nil },
			}, producer)
			if err != nil {
				t.Fatal(err)
			}
			got := describe(results[0])
			if *update {
				sections["want"] = got
				if err := os.WriteFile(f, formatCase(comment, sections, order), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			if want := strings.TrimSpace(sections["want"]); got != want {
				t.Errorf("%s\ngot:\n%s\nwant:\n%s\n(run with -update to accept, and review the diff)", strings.TrimSpace(comment), got, want)
			}
		})
	}
}

// describe writes a result as a case's want section.
func describe(r gateway.Result) string {
	lines := []string{"decision " + r.Decision}
	if r.Reason != "" {
		lines = append(lines, "reason "+r.Reason)
	}
	for _, x := range r.Removed {
		lines = append(lines, fmt.Sprintf("removed %s (%s)", x.Path, x.Reason))
	}
	if r.Decision == gateway.DecisionRejected || r.Decision == gateway.DecisionPublish && r.Detail != "" {
		lines = append(lines, "detail "+r.Detail) // why rejected; what publishing adds (an assumed marking)
	}
	return strings.Join(lines, "\n")
}

// parseCase splits a case into its leading comment and its sections.
func parseCase(t *testing.T, data []byte) (string, map[string]string, []string) {
	t.Helper()
	sections := map[string]string{}
	var order []string
	var comment strings.Builder
	name := ""
	for _, line := range strings.SplitAfter(string(data), "\n") {
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "-- ") && strings.HasSuffix(trimmed, " --") && len(trimmed) > 6 {
			name = strings.TrimSpace(trimmed[3 : len(trimmed)-3])
			if _, dup := sections[name]; dup {
				t.Fatalf("two -- %s -- sections", name)
			}
			sections[name] = ""
			order = append(order, name)
			continue
		}
		if name == "" {
			comment.WriteString(line)
			continue
		}
		sections[name] += line
	}
	return comment.String(), sections, order
}

func formatCase(comment string, sections map[string]string, order []string) []byte {
	var b bytes.Buffer
	b.WriteString(comment)
	for _, n := range order {
		fmt.Fprintf(&b, "-- %s --\n%s", n, strings.TrimRight(sections[n], "\n")+"\n")
	}
	return b.Bytes()
}
