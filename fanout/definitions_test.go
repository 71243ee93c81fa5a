package fanout

import (
	"strings"
	"testing"

	"github.com/ctigate/ctigate/internal/shared"
	"github.com/ctigate/ctigate/stix"
)

// onlyTLP reports whether the ids markingRefs finds in raw could name no
// stored marking definition but a standard TLP one (what definitions
// passes over): each is a standard TLP id or does not have a definition's
// prefix (a stored definition's id always has it: ingest checks ids).
func onlyTLP(raw []byte) bool {
	ids, ok := markingRefs(raw)
	if !ok {
		return true
	}
	for _, id := range ids {
		if _, tlp := stix.StandardTLP(id); !tlp && strings.HasPrefix(id, string(definitionPrefix)) {
			return false
		}
	}
	return true
}

var definitionCases = []struct {
	raw  string
	want bool // mayNameDefinitions
}{
	{`{"type":"indicator","object_marking_refs":["` + stix.TLP2Green + `"]}`, false},
	{`{"type":"indicator","object_marking_refs":["` + stix.TLP1Amber + `","` + strings.ToUpper(stix.TLP2Red[20:]) + `"]}`, false},
	{`{"type":"indicator","object_marking_refs":["marking-definition--` + strings.ToUpper(stix.TLP2Red[20:]) + `"]}`, false},
	{`{"type":"indicator"}`, false},
	{`{"type":"indicator","object_marking_refs":["` + stix.TLP2Green + `","marking-definition--3cd55916-d34b-4747-a8e0-dedec14b711b"]}`, true},
	{`{"type":"indicator","granular_markings":[{"marking_ref":"marking-definition--3cd55916-d34b-4747-a8e0-dedec14b711b","selectors":["name"]}]}`, true},
	{`{"type":"indicator","object_marking_refs":["marking\u002ddefinition--3cd55916-d34b-4747-a8e0-dedec14b711b"]}`, true},
	{`{"type":"indicator","object_marking_refs":["` + stix.TLP2Green + `x"]}`, true},
	{`{"type":"indicator","description":"see marking-definition--","object_marking_refs":["` + stix.TLP2Green + `"]}`, true},
	{`{"type":"indicator","object_marking_refs":["` + stix.TLP2Green[:40] + `"]}`, true},
}

// TestMayNameDefinitions: objects answered without decoding are those
// whose references could name no definition but TLP ones, on crafted
// cases and on every object of the shared test data.
func TestMayNameDefinitions(t *testing.T) {
	for _, c := range definitionCases {
		if got := mayNameDefinitions([]byte(c.raw)); got != c.want {
			t.Errorf("mayNameDefinitions(%s) = %v, want %v", c.raw, got, c.want)
		}
		if !c.want && !onlyTLP([]byte(c.raw)) {
			t.Errorf("%s names a definition: the case is wrong", c.raw)
		}
	}
	passed, named := 0, 0
	for _, raw := range shared.Objects(t) {
		if mayNameDefinitions(raw) {
			named++
			continue
		}
		passed++
		if !onlyTLP(raw) {
			t.Fatalf("answered without decoding, but it names a definition: %.300s", raw)
		}
	}
	if passed < 100 || named < 100 {
		t.Fatalf("%d objects of the shared data answered at once, %d decoded: the test proves little", passed, named)
	}
	t.Logf("%d objects of the shared data answered at once, %d decoded", passed, named)
}

func FuzzMayNameDefinitions(f *testing.F) {
	for _, c := range definitionCases {
		f.Add([]byte(c.raw))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		if !mayNameDefinitions(raw) && !onlyTLP(raw) {
			t.Fatalf("answered without decoding, but it names a definition: %q", raw)
		}
	})
}
