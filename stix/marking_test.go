package stix

import (
	"bytes"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/ctigate/ctigate"
)

// markingFile returns the objects of a test data file: the elements of
// "objects" for a bundle or envelope, else the file's one object.
func markingFile(t testing.TB, name string) [][]byte {
	t.Helper()
	data := jcsReadFile(t, filepath.Join("testdata", "markings", name))
	dec := jsontext.NewDecoder(bytes.NewReader(data))
	if _, err := dec.ReadToken(); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	for dec.PeekKind() == '"' {
		n, err := dec.ReadToken()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if n.String() != "objects" {
			if err := dec.SkipValue(); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			continue
		}
		dec.ReadToken() // '['
		var objs [][]byte
		for dec.PeekKind() == '{' {
			v, err := dec.ReadValue()
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			objs = append(objs, bytes.Clone(v))
		}
		return objs
	}
	return [][]byte{data}
}

// markingOne returns the one object of a test data file.
func markingOne(t testing.TB, name string) []byte {
	t.Helper()
	objs := markingFile(t, name)
	if len(objs) != 1 {
		t.Fatalf("%s: %d objects, want 1", name, len(objs))
	}
	return objs[0]
}

func TestTLPLevels(t *testing.T) {
	levels := []TLP{TLPClear, TLPGreen, TLPAmber, TLPAmberStrict, TLPRed}
	names := []string{"TLP:CLEAR", "TLP:GREEN", "TLP:AMBER", "TLP:AMBER+STRICT", "TLP:RED"}
	for i, l := range levels {
		if l.String() != names[i] || !l.Known() {
			t.Errorf("level %d: String %q, Known %v", l, l, l.Known())
		}
		for j, c := range levels {
			if got := l.Within(c); got != (i <= j) {
				t.Errorf("%v.Within(%v) = %v", l, c, got)
			}
		}
		if TLPNone.Within(l) || l.Within(TLPNone) {
			t.Errorf("TLPNone and %v: Within must be false both ways", l)
		}
		back, err := ParseTLP(l.String())
		if err != nil || back != l {
			t.Errorf("ParseTLP(%q) = %v, %v", l, back, err)
		}
		text, err := l.MarshalText()
		var u TLP
		if err != nil || u.UnmarshalText(text) != nil || u != l {
			t.Errorf("%v: text round trip gave %v (%v)", l, u, err)
		}
	}
	if TLPNone.String() != "TLP:none" || TLPNone.Known() || TLP(9).Known() || TLP(9).Within(TLP(9)) {
		t.Errorf("TLPNone %q, TLP(9) %q: want unknown levels", TLPNone, TLP(9))
	}
	var zero TLP
	if zero != TLPNone {
		t.Errorf("the zero TLP is %v, want TLPNone", zero)
	}
	for in, want := range map[string]TLP{
		"TLP:WHITE": TLPClear, "white": TLPClear, "clear": TLPClear, " tlp:Amber+Strict ": TLPAmberStrict,
		"AMBER": TLPAmber, "Red": TLPRed, "none": TLPNone, "TLP:GREEN": TLPGreen,
	} {
		if got, err := ParseTLP(in); err != nil || got != want {
			t.Errorf("ParseTLP(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "TLP:", "amber strict", "TLP:YELLOW", "TLP:AMBER+"} {
		if got, err := ParseTLP(in); err == nil {
			t.Errorf("ParseTLP(%q) = %v, want an error", in, got)
		}
	}
}

func TestStandardTLP(t *testing.T) {
	for id, want := range map[string]TLP{
		TLP1White: TLPClear, TLP1Green: TLPGreen, TLP1Amber: TLPAmber, TLP1Red: TLPRed,
		TLP2Clear: TLPClear, TLP2Green: TLPGreen, TLP2Amber: TLPAmber, TLP2AmberStrict: TLPAmberStrict, TLP2Red: TLPRed,
	} {
		if got, ok := StandardTLP(id); !ok || got != want {
			t.Errorf("StandardTLP(%s) = %v, %v; want %v", id, got, ok, want)
		}
	}
	// RFC 4122 reads UUIDs in either case: TLP:RED in upper case is RED.
	for id, want := range map[string]TLP{
		"marking-definition--5E57C739-391A-4EB3-B6BE-7D15CA92D5ED": TLPRed,
		"marking-definition--E828b379-4e03-4974-9ac4-e53a884c97C1": TLPRed,
		"marking-definition--613F2E26-407D-48C7-9ECA-B8E91DF99DC9": TLPClear,
	} {
		if got, ok := StandardTLP(id); !ok || got != want {
			t.Errorf("StandardTLP(%s) = %v, %v; want %v", id, got, ok, want)
		}
	}
	for _, id := range []string{
		"marking-definition--5e57c739-391a-4eb3-b6be-7d15ca92d5ec", // one digit off TLP 1.0 RED
		"marking-definition--826578e1-40ad-459f-bc73-ede076f81f37", // an OpenCTI id, not an OASIS one
		"MARKING-DEFINITION--5e57c739-391a-4eb3-b6be-7d15ca92d5ed", // the type is case-sensitive
		"marking-definition--5e57c739-391a-4eb3-b6be-7d15ca92d5ed ",
		"", "TLP:RED",
	} {
		if got, ok := StandardTLP(id); ok {
			t.Errorf("StandardTLP(%q) = %v, want not standard", id, got)
		}
	}
}

// TestStandardDefinitionsArePublished checks the built-in definitions
// against the published files: each file's canonical form is the built-in
// one, and posting the file is accepted as the standard definition.
func TestStandardDefinitionsArePublished(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "markings", "marking-definition--*.tlp-*.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 9 {
		t.Fatalf("%d TLP files, want 9", len(files))
	}
	m := NewMarkings()
	for _, f := range files {
		obj := markingOne(t, filepath.Base(f))
		id := strings.SplitN(filepath.Base(f), ".", 2)[0]
		std, ok := m.Lookup(id)
		if !ok || std.Kind != TLPMarking || !std.TLP.Known() {
			t.Fatalf("%s: Lookup = %+v, %v", id, std, ok)
		}
		if got := mustCanonical(t, string(obj)); got != std.Canonical {
			t.Errorf("%s:\npublished %s\nbuilt in  %s", id, got, std.Canonical)
		}
		if err := m.Add(obj); err != nil {
			t.Errorf("%s: Add(published definition) = %v", id, err)
		}
		if level, _ := StandardTLP(id); level != std.TLP {
			t.Errorf("%s: Lookup TLP %v, StandardTLP %v", id, std.TLP, level)
		}
		wantName := "TLP:" + strings.ToUpper(strings.TrimSuffix(strings.SplitN(filepath.Base(f), ".tlp-", 2)[1], ".json"))
		wantName = strings.ReplaceAll(wantName, "-", "+")
		if std.Name != wantName {
			t.Errorf("%s: Name %q, want %q", id, std.Name, wantName)
		}
	}
	// The assembled envelope of all of them, too: every object but the
	// extension definition is accepted as is.
	for _, obj := range markingFile(t, "tlp-all.taxii-envelope.json") {
		err := m.Add(obj)
		isExt := bytes.Contains(obj, []byte(`"type": "extension-definition"`))
		if isExt != (err != nil) {
			t.Errorf("Add(%.60s…) = %v", obj, err)
		}
	}
}

// tlpVariant returns the standard definition id with its canonical JSON
// changed by edit (old → new, which must occur).
func tlpVariant(t *testing.T, id, old, new string) []byte {
	t.Helper()
	std, _ := standardDefinition(id)
	if !strings.Contains(std.Canonical, old) {
		t.Fatalf("%q not in %s", old, std.Canonical)
	}
	return []byte(strings.Replace(std.Canonical, old, new, 1))
}

func TestAddTLPRepostsMustMatch(t *testing.T) {
	std, _ := standardDefinition(TLP2Red)
	for _, c := range []struct {
		name string
		raw  []byte
	}{
		{"as published", markingOne(t, "marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1.tlp-red.json")},
		{"canonical", []byte(std.Canonical)},
		{"other member order and escapes", []byte(`{"type":"marking-definition","id":"marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1",` +
			`"spec_version":"2.1","name":"TLP:\u0052ED","created":"2022-10-01T00:00:00.000Z",` +
			`"extensions":{"extension-definition--60a3c5c5-0d10-413e-aab3-9e08dde9e88d":{"tlp_2_0":"red","extension_type":"property-extension"}}}`)},
		{"created with microseconds", tlpVariant(t, TLP2Red, `"2022-10-01T00:00:00.000Z"`, `"2022-10-01T00:00:00.000000Z"`)},
	} {
		t.Run(c.name, func(t *testing.T) {
			if err := NewMarkings().Add(c.raw); err != nil {
				t.Errorf("Add = %v, want nil", err)
			}
		})
	}

	// Anything else under a standard id is flagged and never trusted.
	for _, c := range []struct {
		name, id string
		raw      []byte
		want     string
	}{
		{"level changed", TLP2Red, tlpVariant(t, TLP2Red, `"tlp_2_0":"red"`, `"tlp_2_0":"clear"`), "extensions is"},
		{"name changed", TLP2Red, tlpVariant(t, TLP2Red, `"name":"TLP:RED"`, `"name":"TLP:CLEAR"`), `name is "\"TLP:CLEAR\""`},
		{"created changed", TLP2Red, tlpVariant(t, TLP2Red, `2022-10-01T00:00:00.000Z`, `2022-10-01T00:00:00.001Z`), "created is"},
		{"property added", TLP2Red, tlpVariant(t, TLP2Red, `"id":`, `"created_by_ref":"identity--f431f809-377b-45e0-aa1c-6a4751cae5ff","id":`), "it adds created_by_ref"},
		{"name missing", TLP1Red, tlpVariant(t, TLP1Red, `"name":"TLP:RED",`, ``), "it lacks name"},
		{"TLP 1.0 content under a TLP 2.0 id", TLP2Red, tlpVariant(t, TLP1Red, TLP1Red, TLP2Red), "differs from the standard TLP:RED"},
		{"WHITE made GREEN", TLP1White, tlpVariant(t, TLP1White, `"tlp":"white"`, `"tlp":"green"`), `definition is "{\"tlp\":\"green\"}"`},
	} {
		t.Run(c.name, func(t *testing.T) {
			m := NewMarkings()
			err := m.Add(c.raw)
			if !errors.Is(err, ErrUntrustedTLP) || ctigate.KindOf(err) != ctigate.Invalid {
				t.Fatalf("Add = %v, want Invalid ErrUntrustedTLP", err)
			}
			if msg := ctigate.MessageOf(err); !strings.HasPrefix(msg, c.id+": ") || !strings.Contains(msg, c.want) {
				t.Errorf("message %q: want it to start with the id and contain %q", msg, c.want)
			}
			want, _ := StandardTLP(c.id)
			r, err := m.Resolve([]byte(`{"object_marking_refs":["` + c.id + `"]}`))
			if err != nil || r.TLP != want {
				t.Errorf("Resolve after the flagged post = %+v, %v; want the standard %v", r, err, want)
			}
		})
	}
}

func TestAddRejectsFakeTLP(t *testing.T) {
	const id = "marking-definition--826578e1-40ad-459f-bc73-ede076f81f37"
	for _, c := range []struct{ name, raw, want string }{
		{"definition_type tlp", `{"type":"marking-definition","spec_version":"2.1","id":"` + id + `","created":"2017-01-20T00:00:00.000Z",` +
			`"definition_type":"tlp","name":"TLP:RED","definition":{"tlp":"red"}}`, `definition_type "tlp"`},
		{"OpenCTI style", `{"type":"marking-definition","spec_version":"2.1","id":"` + id + `","created":"2020-02-25T09:02:29.040Z",` +
			`"definition_type":"TLP","name":"TLP:AMBER","definition":{"TLP":"TLP:AMBER"}}`, `definition_type "TLP"`},
		{"TLP 2.0 extension", `{"type":"marking-definition","spec_version":"2.1","id":"` + id + `","created":"2022-10-01T00:00:00.000Z","name":"amber",` +
			`"extensions":{"` + markingTLP2Extension + `":{"extension_type":"property-extension","tlp_2_0":"amber"}}}`, "the TLP 2.0 extension"},
		{"tlp definition", `{"type":"marking-definition","spec_version":"2.1","id":"` + id + `","created":"2022-10-01T00:00:00.000Z",` +
			`"definition_type":"statement","definition":{"statement":"x","tlp":"red"}}`, `a "tlp" definition`},
		{"statement named TLP", `{"type":"marking-definition","spec_version":"2.1","id":"` + id + `","created":"2022-10-01T00:00:00.000Z",` +
			`"definition_type":"statement","name":"TLP:RED","definition":{"statement":"Do not share."}}`, `name "TLP:RED"`},
	} {
		t.Run(c.name, func(t *testing.T) {
			m := NewMarkings()
			err := m.Add([]byte(c.raw))
			if !errors.Is(err, ErrUntrustedTLP) || ctigate.KindOf(err) != ctigate.Invalid || !strings.Contains(err.Error(), c.want) ||
				!strings.HasPrefix(ctigate.MessageOf(err), id+": claims to be a TLP marking") {
				t.Fatalf("Add = %v, want Invalid ErrUntrustedTLP naming %q", err, c.want)
			}
			if _, ok := m.Lookup(id); ok {
				t.Error("the fake TLP definition was registered")
			}
			r, err := m.Resolve([]byte(`{"object_marking_refs":["` + id + `"]}`))
			if err != nil || r.TLP != TLPNone || !reflect.DeepEqual(r.Unknown, []string{id}) {
				t.Errorf("Resolve = %+v, %v; want TLPNone and the ref unknown", r, err)
			}
		})
	}
}

func TestAddStatements(t *testing.T) {
	m := NewMarkings()
	for _, c := range []struct{ file, id, text string }{
		{"marking-definition--3cd55916-d34b-4747-a8e0-dedec14b711b.statement-mitre.json",
			"marking-definition--3cd55916-d34b-4747-a8e0-dedec14b711b", "Copyright 2020-22 - The MITRE Corporation, Inc."},
		{"marking-definition--62fd3f9b-15f3-4ebc-802c-91fce9536bcf.statement-bsd3.json",
			"marking-definition--62fd3f9b-15f3-4ebc-802c-91fce9536bcf", "This content is subject to open source license terms"},
	} {
		obj := markingOne(t, c.file)
		if err := m.Add(obj); err != nil {
			t.Fatalf("%s: %v", c.file, err)
		}
		d, ok := m.Lookup(c.id)
		if !ok || d.Kind != StatementMarking || d.TLP != TLPNone || !strings.HasPrefix(d.Statement, c.text) ||
			d.Canonical != mustCanonical(t, string(obj)) {
			t.Errorf("Lookup(%s) = %+v, %v", c.id, d, ok)
		}
		if err := m.Add(obj); err != nil {
			t.Errorf("%s posted again: %v", c.file, err)
		}
		// The same id with another statement is refused; the first stays.
		changed := bytes.Replace(obj, []byte(`"statement": "`), []byte(`"statement": "Changed: `), 1)
		err := m.Add(changed)
		if !errors.Is(err, ErrMarkingRedefined) || ctigate.KindOf(err) != ctigate.Conflict ||
			!strings.HasPrefix(ctigate.MessageOf(err), c.id+": ") {
			t.Errorf("%s changed: Add = %v, want Conflict ErrMarkingRedefined", c.file, err)
		}
		if d2, _ := m.Lookup(c.id); d2 != d {
			t.Errorf("%s: the registered definition changed to %+v", c.file, d2)
		}
	}
}

func TestAddRejects(t *testing.T) {
	const id = "marking-definition--a4f1c7e2-0d8b-4c55-9e26-3f1b2c7d9e01"
	statement := func(members string) string {
		return `{"type":"marking-definition","spec_version":"2.1","id":"` + id + `","created":"2024-01-01T00:00:00.000Z"` + members + `}`
	}
	for _, c := range []struct {
		name, raw string
		kind      ctigate.Kind
		want      string
	}{
		{"not JSON", `{"type":`, ctigate.Invalid, "object: invalid JSON"},
		{"not an object", `["marking-definition"]`, ctigate.Invalid, "object: a marking definition must be a JSON object, got a list"},
		{"duplicate member", statement(`,"definition_type":"statement","definition":{"statement":"a","statement":"b"}`), ctigate.Invalid,
			id + `: invalid JSON at byte offset 211 (in "definition.statement"): duplicate member name`},
		{"doubled id", `{"id":"` + id + `","type":"marking-definition","\u0069d":"` + TLP1Red + `"}`, ctigate.Invalid, "duplicate member name"},
		{"wrong type", `{"type":"indicator","id":"` + id + `"}`, ctigate.Invalid, `type: must be "marking-definition", got "indicator"`},
		{"type missing", `{"id":"` + id + `"}`, ctigate.Invalid, "type: required"},
		{"bad id", `{"type":"marking-definition","id":"marking-definition--a4f1c7e2-0d8b-4c55-9e26-3f1b2c7d9e0"}`, ctigate.Invalid, "id: must be"},
		{"id of another type", `{"type":"marking-definition","id":"identity--a4f1c7e2-0d8b-4c55-9e26-3f1b2c7d9e01"}`, ctigate.Invalid, "id: must be"},
		{"no definition_type", statement(`,"extensions":{"extension-definition--3a6f1c1b-8c3e-4a9d-9c1a-2f5b7d6e8a90":{"extension_type":"property-extension","pap":"red"}}`),
			ctigate.Unsupported, "without definition_type (extension-based) are not supported"},
		{"other definition_type", statement(`,"definition_type":"iep","definition":{"x":1}`), ctigate.Unsupported, `definition_type "iep" is not supported`},
		{"definition_type not a string", statement(`,"definition_type":5`), ctigate.Invalid, "definition_type: must be a string, got a number"},
		{"no definition", statement(`,"definition_type":"statement"`), ctigate.Invalid, "definition: required"},
		{"definition a string", statement(`,"definition_type":"statement","definition":"x"`), ctigate.Invalid, "definition: must be an object, got a string"},
		{"no statement", statement(`,"definition_type":"statement","definition":{}`), ctigate.Invalid, "definition.statement: required"},
		{"empty statement", statement(`,"definition_type":"statement","definition":{"statement":" "}`), ctigate.Invalid, "definition.statement: must not be empty"},
		{"name not a string", statement(`,"definition_type":"statement","definition":{"statement":"x"},"name":1`), ctigate.Invalid, "name: must be a string"},
	} {
		t.Run(c.name, func(t *testing.T) {
			m := NewMarkings()
			err := m.Add([]byte(c.raw))
			if err == nil || ctigate.KindOf(err) != c.kind || !strings.Contains(ctigate.MessageOf(err), c.want) {
				t.Fatalf("Add = %v (%v), want %v containing %q", err, ctigate.KindOf(err), c.kind, c.want)
			}
			if _, ok := m.Lookup(id); ok {
				t.Error("registered anyway")
			}
		})
	}
}

// resolveRegistry returns a registry that also holds the MITRE statement.
func resolveRegistry(t testing.TB) *Markings {
	t.Helper()
	m := NewMarkings()
	if err := m.Add(markingOne(t, "marking-definition--3cd55916-d34b-4747-a8e0-dedec14b711b.statement-mitre.json")); err != nil {
		t.Fatal(err)
	}
	return m
}

const (
	mitreStatement = "marking-definition--3cd55916-d34b-4747-a8e0-dedec14b711b"
	unknownMarking = "marking-definition--5e57c739-391a-4eb3-b6be-7d15ca92d5ec"
)

// resolveObject returns an indicator with the given extra members.
func resolveObject(members string) string {
	return `{"type":"indicator","spec_version":"2.1","id":"indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f",` +
		`"created":"2025-03-14T09:26:53.589Z","modified":"2025-03-14T09:26:53.589Z","name":"C2 server",` +
		`"description":"Command and control","labels":["c2","apt"],` +
		`"external_references":[{"source_name":"capec","external_id":"CAPEC-163"}],` +
		`"pattern":"[ipv4-addr:value = '198.51.100.23']","pattern_type":"stix","valid_from":"2025-03-14T09:26:53Z"` +
		members + `}`
}

func refs(ids ...string) string {
	return `,"object_marking_refs":["` + strings.Join(ids, `","`) + `"]`
}

func TestResolve(t *testing.T) {
	m := resolveRegistry(t)
	for _, c := range []struct {
		name string
		obj  string
		want Resolution
	}{
		{"unmarked", resolveObject(""), Resolution{}},
		{"TLP 1.0 GREEN", resolveObject(refs(TLP1Green)), Resolution{TLP: TLPGreen}},
		{"TLP 1.0 WHITE is CLEAR", resolveObject(refs(TLP1White)), Resolution{TLP: TLPClear}},
		{"TLP 2.0 AMBER+STRICT", resolveObject(refs(TLP2AmberStrict)), Resolution{TLP: TLPAmberStrict}},
		{"most restrictive wins", resolveObject(refs(TLP1Amber, TLP2AmberStrict, TLP2Green)), Resolution{TLP: TLPAmberStrict}},
		{"RED over CLEAR, whatever the order", resolveObject(refs(TLP2Red, TLP2Clear)), Resolution{TLP: TLPRed}},
		{"statement only", resolveObject(refs(mitreStatement)), Resolution{Statements: []string{mitreStatement}}},
		{"statement and TLP", resolveObject(refs(mitreStatement, TLP2Amber)), Resolution{TLP: TLPAmber, Statements: []string{mitreStatement}}},
		{"unknown only", resolveObject(refs(unknownMarking)), Resolution{Unknown: []string{unknownMarking}}},
		{"unknown and TLP", resolveObject(refs(TLP2Green, unknownMarking)), Resolution{TLP: TLPGreen, Unknown: []string{unknownMarking}}},
		{"repeats counted once", resolveObject(refs(unknownMarking, mitreStatement, unknownMarking, mitreStatement, TLP1Red, TLP1Red)),
			Resolution{TLP: TLPRed, Unknown: []string{unknownMarking}, Statements: []string{mitreStatement}}},
		{"escaped id", resolveObject(`,"object_marking_refs":["marking-definition--\u0035e57c739-391a-4eb3-b6be-7d15ca92d5ed"]`), Resolution{TLP: TLPRed}},
		{"TLP id in upper case", resolveObject(refs("marking-definition--E828B379-4E03-4974-9AC4-E53A884C97C1")), Resolution{TLP: TLPRed}},
		{"other ids as written", resolveObject(refs("marking-definition--3CD55916-D34B-4747-A8E0-DEDEC14B711B")),
			Resolution{Unknown: []string{"marking-definition--3CD55916-D34B-4747-A8E0-DEDEC14B711B"}}},
		{"escaped member name", resolveObject(`,"object_m\u0061rking_refs":["` + TLP1Red + `"]`), Resolution{TLP: TLPRed}},
		{"whitespace", "\n" + strings.ReplaceAll(resolveObject(refs(TLP2Red)), ",", " ,\n\t") + "\n", Resolution{TLP: TLPRed}},
		{"granular TLP", resolveObject(refs(TLP2Green) + `,"granular_markings":[{"selectors":["description","labels.[1]"],"marking_ref":"` + TLP2Red + `"}]`),
			Resolution{TLP: TLPGreen, Granular: []GranularMarking{{Selectors: []string{"description", "labels.[1]"}, MarkingRef: TLP2Red, Kind: TLPMarking, TLP: TLPRed}}}},
		{"granular lang, statement and unknown", resolveObject(`,"granular_markings":[` +
			`{"lang":"de","selectors":["name"]},` +
			`{"marking_ref":"` + mitreStatement + `","selectors":["external_references.[0].source_name","external_references"]},` +
			`{"marking_ref":"` + unknownMarking + `","selectors":["pattern"]}]`),
			Resolution{Granular: []GranularMarking{
				{Selectors: []string{"name"}, Lang: "de"},
				{Selectors: []string{"external_references.[0].source_name", "external_references"}, MarkingRef: mitreStatement, Kind: StatementMarking},
				{Selectors: []string{"pattern"}, MarkingRef: unknownMarking, Kind: UnknownMarking},
			}}},
		{"granular markings may mark the markings", resolveObject(refs(TLP1Green) + `,"granular_markings":[{"selectors":["object_marking_refs.[0]","granular_markings"],"marking_ref":"` + TLP1Amber + `"}]`),
			Resolution{TLP: TLPGreen, Granular: []GranularMarking{{Selectors: []string{"object_marking_refs.[0]", "granular_markings"}, MarkingRef: TLP1Amber, Kind: TLPMarking, TLP: TLPAmber}}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := m.Resolve([]byte(c.obj))
			if err != nil {
				t.Fatalf("Resolve: %v", err)
			}
			if !reflect.DeepEqual(got, c.want) {
				t.Errorf("Resolve:\n got %+v\nwant %+v", got, c.want)
			}
		})
	}
}

func TestResolveRejects(t *testing.T) {
	const id = "indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f"
	gm := func(entries string) string { return resolveObject(`,"granular_markings":[` + entries + `]`) }
	sel := func(selectors string) string {
		return gm(`{"marking_ref":"` + TLP2Red + `","selectors":[` + selectors + `]}`)
	}
	for _, c := range []struct{ name, obj, want string }{
		{"not JSON", `{"id":"` + id + `",`, id + ": invalid JSON at byte offset"},
		{"not an object", `["` + TLP1Red + `"]`, "object: must be a JSON object, got a list"},
		{"a string", `"x"`, "object: must be a JSON object, got a string"},
		{"doubled object_marking_refs", resolveObject(refs(TLP2Red) + refs(TLP2Clear)), id + `: invalid JSON at byte offset 511 (in "object_marking_refs"): duplicate member name`},
		{"doubled by escaping", resolveObject(refs(TLP2Red) + `,"object_marking_ref\u0073":["` + TLP2Clear + `"]`), `(in "object_marking_refs"): duplicate member name`},
		{"duplicate deep inside", resolveObject(`,"x_custom":{"a":[{"b":1,"b":2}]}`), `(in "x_custom.a[0].b"): duplicate member name`},
		{"invalid UTF-8", resolveObject(`,"x_custom":"` + "\xff" + `"`), "invalid UTF-8"},
		{"number out of range", resolveObject(`,"x_custom":1e400`), "beyond the range of an IEEE 754 double"},
		{"refs not a list", resolveObject(`,"object_marking_refs":"` + TLP2Red + `"`), id + ": object_marking_refs: must be a list of marking-definition identifiers, got a string"},
		{"refs empty", resolveObject(`,"object_marking_refs":[]`), id + ": object_marking_refs: must not be empty"},
		{"ref not a string", resolveObject(`,"object_marking_refs":["` + TLP2Red + `",5]`), id + ": object_marking_refs[1]: must be a marking-definition identifier, got a number"},
		{"ref of another type", resolveObject(refs("identity--f431f809-377b-45e0-aa1c-6a4751cae5ff")), `object_marking_refs[0]: must be a marking-definition identifier, got "identity--f431f809-377b-45e0-aa1c-6a4751cae5ff"`},
		{"ref type in upper case", resolveObject(refs("MARKING-DEFINITION--e828b379-4e03-4974-9ac4-e53a884c97c1")), "object_marking_refs[0]: must be a marking-definition identifier"},
		{"ref with a bad UUID", resolveObject(refs("marking-definition--e828b379-4e03-0974-9ac4-e53a884c97c1")), "object_marking_refs[0]: must be a marking-definition identifier"},
		{"ref a TLP label", resolveObject(refs("TLP:RED")), `object_marking_refs[0]: must be a marking-definition identifier, got "TLP:RED"`},
		{"granular not a list", resolveObject(`,"granular_markings":{}`), id + ": granular_markings: must be a list of granular markings, got an object"},
		{"granular empty", resolveObject(`,"granular_markings":[]`), id + ": granular_markings: must not be empty"},
		{"granular entry not an object", gm(`"description"`), id + ": granular_markings[0]: must be a granular marking (an object), got a string"},
		{"both marking_ref and lang", gm(`{"marking_ref":"` + TLP2Red + `","lang":"en","selectors":["name"]}`), id + ": granular_markings[0]: has both marking_ref and lang"},
		{"neither marking_ref nor lang", gm(`{"selectors":["name"]}`), id + ": granular_markings[0]: must have marking_ref or lang"},
		{"bad marking_ref", gm(`{"marking_ref":"TLP:RED","selectors":["name"]}`), id + `: granular_markings[0].marking_ref: must be a marking-definition identifier, got "TLP:RED"`},
		{"marking_ref not a string", gm(`{"lang":"en","selectors":["name"]},{"marking_ref":null,"selectors":["name"]}`), "granular_markings[1].marking_ref: must be a marking-definition identifier, got null"},
		{"empty lang", gm(`{"lang":"","selectors":["name"]}`), `granular_markings[0].lang: must be a language tag (RFC 5646), got ""`},
		{"no selectors", gm(`{"marking_ref":"` + TLP2Red + `"}`), id + ": granular_markings[0].selectors: required"},
		{"selectors not a list", gm(`{"marking_ref":"` + TLP2Red + `","selectors":"name"}`), "granular_markings[0].selectors: must be a list of selectors, got a string"},
		{"selectors empty", sel(``), "granular_markings[0].selectors: must not be empty"},
		{"selector not a string", sel(`"name",1`), "granular_markings[0].selectors[1]: must be a string, got a number"},
		{"selects nothing", sel(`"name","foo.bar"`), id + `: granular_markings[0].selectors[1]: "foo.bar" selects nothing in the object`},
		{"no such nested property", sel(`"external_references.[0].url"`), `"external_references.[0].url" selects nothing in the object`},
		{"index out of range", sel(`"labels.[2]"`), `"labels.[2]" selects nothing in the object (labels has 2 items)`},
		{"index into a string", sel(`"description.[0]"`), `"description.[0]" selects nothing in the object (description is a string, not a list)`},
		{"property of a list", sel(`"labels.first"`), `"labels.first" selects nothing in the object (labels is a list, not an object)`},
		{"property of a string", sel(`"external_references.[0].source_name.x"`), `(external_references.[0].source_name is a string, not an object)`},
		{"index without a dot", sel(`"labels[0]"`), `"labels[0]" is not a valid selector: "labels[0]" is neither a property name nor a list index`},
		{"index first", sel(`"[0]"`), `"[0]" is not a valid selector: it must begin with a property name`},
		{"empty selector", sel(`""`), `"" is not a selector: it is empty`},
		{"empty component", sel(`"external_references..source_name"`), "has an empty component"},
		{"trailing dot", sel(`"name."`), "has an empty component"},
		{"leading zero", sel(`"labels.[01]"`), `"[01]" is not a list index`},
		{"negative index", sel(`"labels.[-1]"`), `"[-1]" is not a list index`},
		{"huge index", sel(`"labels.[99999999999999999999]"`), `is not a list index`},
		{"selects id", sel(`"id"`), `"id" must not be selected: id and type identify the object`},
		{"selects type", sel(`"type"`), `"type" must not be selected`},
		{"second entry", gm(`{"lang":"en","selectors":["name"]},{"marking_ref":"` + TLP2Red + `","selectors":["nope"]}`), `granular_markings[1].selectors[0]: "nope" selects nothing in the object`},
		{"invalid id", `{"id":"x","object_marking_refs":[]}`, "object: object_marking_refs: must not be empty"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r, err := resolveRegistry(t).Resolve([]byte(c.obj))
			if err == nil {
				t.Fatalf("Resolve = %+v, want an error containing %q", r, c.want)
			}
			if ctigate.KindOf(err) != ctigate.Invalid || !strings.Contains(ctigate.MessageOf(err), c.want) {
				t.Errorf("Resolve error %q (%v), want Invalid containing %q", err, ctigate.KindOf(err), c.want)
			}
			if !reflect.DeepEqual(r, Resolution{}) {
				t.Errorf("Resolve returned %+v with its error", r)
			}
		})
	}
}

// TestResolveRealObjects resolves the real objects of the test data.
func TestResolveRealObjects(t *testing.T) {
	m := resolveRegistry(t)
	r, err := m.Resolve(markingOne(t, "interop-objectmarking-test.json"))
	if want := (Resolution{TLP: TLPRed, Unknown: []string{unknownMarking}}); err != nil || !reflect.DeepEqual(r, want) {
		t.Errorf("interop-objectmarking-test.json: Resolve = %+v, %v; want %+v", r, err, want)
	}
	// The relationship of this upstream example has an invalid created,
	// which is DecodeEnvelope's business: its markings resolve.
	objs := markingFile(t, "using-tlp2.0-green.invalid.json")
	r, err = m.Resolve(objs[2])
	if want := (Resolution{TLP: TLPGreen}); err != nil || !reflect.DeepEqual(r, want) {
		t.Errorf("using-tlp2.0-green relationship: Resolve = %+v, %v; want %+v", r, err, want)
	}
	// Marking definitions are objects too.
	for _, obj := range markingFile(t, "tlp-all.taxii-envelope.json") {
		if r, err := m.Resolve(obj); err != nil || !reflect.DeepEqual(r, Resolution{}) {
			t.Errorf("%.60s: Resolve = %+v, %v", obj, r, err)
		}
	}
}

// TestResolveSharedData resolves every object of the shared test data,
// MITRE ATT&CK's statement marking registered first from its bundle.
func TestResolveSharedData(t *testing.T) {
	objs := sharedObjects(t)
	if len(objs) == 0 {
		t.Fatal("the shared test data holds no objects")
	}
	m := NewMarkings()
	for _, obj := range objs {
		if bytes.Contains(obj, []byte(`"definition_type": "statement"`)) && bytes.HasPrefix(bytes.TrimSpace(obj), []byte("{")) {
			if err := m.Add(obj); err != nil && !errors.Is(err, ErrMarkingRedefined) && !bytes.Contains(obj, []byte(`"objects"`)) {
				t.Errorf("Add(%.80s): %v", obj, err)
			}
		}
	}
	const attackStatement = "marking-definition--fa42a846-8d90-4e51-bc29-71d5b4802168"
	if d, ok := m.Lookup(attackStatement); ok && !strings.Contains(d.Statement, "MITRE") {
		t.Errorf("ATT&CK statement: %+v", d)
	}
	counts := map[string]int{}
	for _, obj := range objs {
		if jsontext.Value(obj).Kind() != '{' || bytes.Contains(obj[:min(len(obj), 200)], []byte(`"objects"`)) {
			continue // whole files
		}
		r, err := m.Resolve(obj)
		_, cerr := Canonical(obj)
		if (err == nil) != (cerr == nil) {
			t.Errorf("%.80s: Resolve %v, Canonical %v", obj, err, cerr)
			continue
		}
		if err != nil {
			continue
		}
		counts[r.TLP.String()]++
		for _, s := range r.Statements {
			counts[s]++
		}
		counts["unknown"] += len(r.Unknown)
		counts["objects"]++
	}
	t.Logf("resolved: %v", counts)
	if _, ok := m.Lookup(attackStatement); ok && counts[attackStatement] < 1000 {
		t.Errorf("only %d objects carry the ATT&CK statement", counts[attackStatement])
	}
}

func TestResolveHashIsResolveAndHash(t *testing.T) {
	m := resolveRegistry(t)
	for _, obj := range []string{
		resolveObject(""),
		resolveObject(refs(TLP2Red, mitreStatement, unknownMarking) + `,"granular_markings":[{"lang":"de","selectors":["name"]}]`),
		string(benchIndicator),
		resolveObject(`,"object_marking_refs":[]`),
		`[1]`,
	} {
		r1, err1 := m.Resolve([]byte(obj))
		h1, herr := Hash([]byte(obj))
		r2, h2, err2 := m.ResolveHash([]byte(obj))
		if fmt.Sprint(err1) != fmt.Sprint(err2) || !reflect.DeepEqual(r1, r2) {
			t.Errorf("%.60s: Resolve = %+v, %v; ResolveHash = %+v, %v", obj, r1, err1, r2, err2)
		}
		if err2 == nil && (herr != nil || h1 != h2) {
			t.Errorf("%.60s: Hash = %x, %v; ResolveHash hash %x", obj, h1, herr, h2)
		}
	}
}

// TestMarkingsConcurrent adds and resolves at once (run with -race).
func TestMarkingsConcurrent(t *testing.T) {
	m := NewMarkings()
	obj := []byte(resolveObject(refs(TLP2Amber, "marking-definition--00000000-0000-4000-8000-000000000007")))
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 50 {
				id := fmt.Sprintf("marking-definition--00000000-0000-4000-8000-%012d", g*100+i)
				def := `{"type":"marking-definition","spec_version":"2.1","id":"` + id + `","created":"2024-01-01T00:00:00.000Z",` +
					`"definition_type":"statement","definition":{"statement":"s"}}`
				if err := m.Add([]byte(def)); err != nil {
					t.Error(err)
				}
				if r, err := m.Resolve(obj); err != nil || r.TLP != TLPAmber {
					t.Errorf("Resolve = %+v, %v", r, err)
				}
			}
		}()
	}
	wg.Wait()
	r, err := m.Resolve(obj)
	if err != nil || len(r.Statements) != 1 || len(r.Unknown) != 0 {
		t.Errorf("after the adds: Resolve = %+v, %v", r, err)
	}
}

func FuzzResolve(f *testing.F) {
	for _, s := range []string{
		``, `{}`, `[]`, `{"object_marking_refs":[]}`, `{"object_marking_refs":["` + TLP2Red + `"]}`,
		resolveObject(refs(TLP1Green, mitreStatement, unknownMarking)),
		resolveObject(`,"granular_markings":[{"selectors":["labels.[1]","external_references.[0].source_name"],"marking_ref":"` + TLP2Red + `"},{"lang":"fr","selectors":["name"]}]`),
		resolveObject(`,"granular_markings":[{"selectors":["a..b","[0]","labels[0]","id"],"marking_ref":"x","lang":1}]`),
		`{"object_marking_refs":["` + TLP2Red + `"],"object_marking_ref\u0073":[]}`,
		string(benchIndicator),
	} {
		f.Add([]byte(s))
	}
	for _, name := range []string{"interop-objectmarking-test.json", "tlp-all.taxii-envelope.json"} {
		f.Add(jcsReadFile(f, filepath.Join("testdata", "markings", name)))
	}
	m := resolveRegistry(f)
	f.Fuzz(func(t *testing.T, in []byte) {
		orig := bytes.Clone(in)
		r, err := m.Resolve(in)
		if !bytes.Equal(in, orig) {
			t.Fatal("Resolve modified its input")
		}
		r2, h, err2 := m.ResolveHash(in)
		if fmt.Sprint(err) != fmt.Sprint(err2) || !reflect.DeepEqual(r, r2) {
			t.Fatalf("Resolve = %+v, %v; ResolveHash = %+v, %v", r, err, r2, err2)
		}
		checkResolveMembers(t, m, in, r, err)
		checkTLPOfValue(t, m, in, r, err)
		if err != nil {
			if ctigate.KindOf(err) != ctigate.Invalid || ctigate.MessageOf(err) == "" {
				t.Fatalf("error %#v is not Invalid with a message", err)
			}
			if !reflect.DeepEqual(r, Resolution{}) {
				t.Fatalf("Resolution %+v returned with an error", r)
			}
			return
		}
		// A resolvable object is canonicalisable, and hashes the same.
		if h2, err := Hash(in); err != nil || h2 != h {
			t.Fatalf("Resolve succeeded but Hash = %x, %v (ResolveHash %x)", h2, err, h)
		}
		if r.TLP > TLPRed {
			t.Fatalf("TLP %d", r.TLP)
		}
		for _, id := range append(append([]string(nil), r.Unknown...), r.Statements...) {
			if !markingRefOK([]byte(id)) {
				t.Fatalf("ref %q is not a marking-definition id", id)
			}
			if _, std := StandardTLP(id); std {
				t.Fatalf("standard TLP %s reported as unknown or statement", id)
			}
		}
		for _, g := range r.Granular {
			if (g.MarkingRef == "") == (g.Lang == "") || len(g.Selectors) == 0 {
				t.Fatalf("granular marking %+v", g)
			}
			if g.Lang != "" && (g.Kind != UnknownMarking || g.TLP != TLPNone) {
				t.Fatalf("language entry %+v has a marking", g)
			}
		}
	})
}

func BenchmarkResolve(b *testing.B) {
	m := NewMarkings()
	r, err := m.Resolve(benchIndicator)
	if err != nil || r.TLP != TLPAmber {
		b.Fatalf("Resolve = %+v, %v", r, err)
	}
	b.SetBytes(int64(len(benchIndicator)))
	b.ReportAllocs()
	cpu := startCPU(b)
	for b.Loop() {
		if _, err := m.Resolve(benchIndicator); err != nil {
			b.Fatal(err)
		}
	}
	cpu.report(b, 1)
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "objects/s")
}

// BenchmarkHashThenResolve is the two calls the ingest path makes.
func BenchmarkHashThenResolve(b *testing.B) {
	m := NewMarkings()
	b.SetBytes(int64(len(benchIndicator)))
	b.ReportAllocs()
	cpu := startCPU(b)
	for b.Loop() {
		if _, err := Hash(benchIndicator); err != nil {
			b.Fatal(err)
		}
		if _, err := m.Resolve(benchIndicator); err != nil {
			b.Fatal(err)
		}
	}
	cpu.report(b, 1)
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "objects/s")
}

// BenchmarkResolveHash is the same in one pass.
func BenchmarkResolveHash(b *testing.B) {
	m := NewMarkings()
	b.SetBytes(int64(len(benchIndicator)))
	b.ReportAllocs()
	cpu := startCPU(b)
	for b.Loop() {
		if _, _, err := m.ResolveHash(benchIndicator); err != nil {
			b.Fatal(err)
		}
	}
	cpu.report(b, 1)
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "objects/s")
}

// BenchmarkResolveGranular resolves an indicator with granular markings,
// the slower path that decodes the object to check the selectors.
func BenchmarkResolveGranular(b *testing.B) {
	m := NewMarkings()
	obj := []byte(resolveObject(refs(TLP2Green) + `,"granular_markings":[{"selectors":["description","labels.[1]"],"marking_ref":"` + TLP2Red + `"}]`))
	b.SetBytes(int64(len(obj)))
	b.ReportAllocs()
	cpu := startCPU(b)
	for b.Loop() {
		if _, err := m.Resolve(obj); err != nil {
			b.Fatal(err)
		}
	}
	cpu.report(b, 1)
}

// TestLargeInputs guards against quadratic work on hostile objects: many
// members, many marking refs, long selectors. Each takes well under a
// second; quadratic code would take minutes.
func TestLargeInputs(t *testing.T) {
	const n = 100_000
	var b strings.Builder
	b.WriteString(`{"id":"indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f","object_marking_refs":[`)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `"marking-definition--00000000-0000-4000-8000-%012d"`, (i*7919)%n)
	}
	b.WriteString(`],"granular_markings":[{"lang":"en","selectors":["` + strings.Repeat("x_deep.", 5000) + `x"]}]`)
	b.WriteString(`,"x_deep":` + strings.Repeat(`{"x_deep":`, 4999) + `{}` + strings.Repeat(`}`, 4999))
	for i := range n {
		fmt.Fprintf(&b, `,"x_%d":%d`, (i*104729)%n, i)
	}
	b.WriteString(`}`)
	obj := []byte(b.String())

	start := time.Now()
	if _, err := Canonical(obj); err != nil {
		t.Fatal(err)
	}
	_, err := NewMarkings().Resolve(obj)
	if err == nil || !strings.HasSuffix(err.Error(), `"… selects nothing in the object`) {
		t.Fatalf("Resolve: %.200v", err)
	}
	obj = bytes.Replace(obj, []byte(`"granular_markings":[{"lang":"en","selectors":["`+strings.Repeat("x_deep.", 5000)+`x"]}],`), nil, 1)
	r, err := NewMarkings().Resolve(obj)
	if err != nil || len(r.Unknown) != n || r.Unknown[1] != "marking-definition--00000000-0000-4000-8000-000000007919" {
		t.Fatalf("Resolve: %d unknown, %v", len(r.Unknown), err)
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("took %v", d)
	}
}

func TestResolveLongRefListsKeepOrder(t *testing.T) {
	m := resolveRegistry(t)
	var ids, want []string
	for i := range 40 {
		id := fmt.Sprintf("marking-definition--00000000-0000-4000-8000-%012d", i%25)
		ids = append(ids, id, mitreStatement, TLP1Green)
		if i < 25 {
			want = append(want, id)
		}
	}
	r, err := m.Resolve([]byte(resolveObject(refs(ids...))))
	if err != nil || r.TLP != TLPGreen || !reflect.DeepEqual(r.Unknown, want) || !reflect.DeepEqual(r.Statements, []string{mitreStatement}) {
		t.Errorf("Resolve = %+v, %v", r, err)
	}
}

func TestZeroMarkingsIsUsable(t *testing.T) {
	var m Markings
	if err := m.Add(markingOne(t, "marking-definition--62fd3f9b-15f3-4ebc-802c-91fce9536bcf.statement-bsd3.json")); err != nil {
		t.Fatal(err)
	}
	r, err := m.Resolve([]byte(`{"object_marking_refs":["` + TLP1Amber + `","marking-definition--62fd3f9b-15f3-4ebc-802c-91fce9536bcf"]}`))
	if err != nil || r.TLP != TLPAmber || len(r.Statements) != 1 {
		t.Errorf("Resolve = %+v, %v", r, err)
	}
}

// A standard TLP definition posted under an upper-case spelling of its id
// is not the standard definition: it is flagged, and objects that use
// that spelling still get the standard level.
func TestAddTLPUpperCaseID(t *testing.T) {
	upper := "marking-definition--E828B379-4E03-4974-9AC4-E53A884C97C1"
	m := NewMarkings()
	err := m.Add(tlpVariant(t, TLP2Red, TLP2Red, upper))
	if !errors.Is(err, ErrUntrustedTLP) {
		t.Fatalf("Add = %v, want ErrUntrustedTLP", err)
	}
	if _, ok := m.Lookup(upper); ok {
		t.Error("registered")
	}
	if r, err := m.Resolve([]byte(`{"object_marking_refs":["` + upper + `"]}`)); err != nil || r.TLP != TLPRed {
		t.Errorf("Resolve = %+v, %v", r, err)
	}
}

// membersAsked are the top-level members the tests ask ResolveMembers for.
var membersAsked = []string{"type", "pattern", "labels", "object_marking_refs", "revoked", "id", "hashes", "x"}

// checkResolveMembers: ResolveMembers gives Resolve's result and error,
// and, where it succeeds, the values of the members asked for as a
// decoder reads them (nil for those absent).
func checkResolveMembers(t *testing.T, m *Markings, in []byte, r Resolution, err error) {
	t.Helper()
	r2, vals, err2 := m.ResolveMembers(in, membersAsked)
	if fmt.Sprint(err) != fmt.Sprint(err2) || !reflect.DeepEqual(r, r2) {
		t.Fatalf("Resolve = %+v, %v; ResolveMembers = %+v, %v", r, err, r2, err2)
	}
	if err != nil {
		if vals != nil {
			t.Fatalf("values %q with an error", vals)
		}
		return
	}
	want := make([][]byte, len(membersAsked))
	dec := jsontext.NewDecoder(bytes.NewReader(in))
	if _, err := dec.ReadToken(); err != nil {
		t.Fatal(err)
	}
	for dec.PeekKind() == '"' {
		tok, err := dec.ReadToken()
		if err != nil {
			t.Fatal(err)
		}
		name := tok.String()
		v, err := dec.ReadValue()
		if err != nil {
			t.Fatal(err)
		}
		if j := slices.Index(membersAsked, name); j >= 0 {
			want[j] = bytes.Clone(v)
		}
	}
	for j := range want {
		if !bytes.Equal(vals[j], want[j]) || (vals[j] == nil) != (want[j] == nil) {
			t.Fatalf("member %q: ResolveMembers %q, decoder %q", membersAsked[j], vals[j], want[j])
		}
	}
}

// checkTLPOfValue: the TLP level Resolve finds, and whether it fails,
// depend on the object alone, not on the statement definitions a
// registry holds (the search index keeps the TLP of an object by its
// hash, for every registry).
func checkTLPOfValue(t *testing.T, m *Markings, in []byte, r Resolution, err error) {
	t.Helper()
	for _, other := range []*Markings{NewMarkings(), m.Of("another organisation")} {
		r2, err2 := other.Resolve(in)
		if (err == nil) != (err2 == nil) || r.TLP != r2.TLP {
			t.Fatalf("with statements registered: TLP %v, error %v; without: TLP %v, error %v", r.TLP, err, r2.TLP, err2)
		}
	}
}

// TestResolveMembersSharedData runs the checks of FuzzResolve on every
// object of the shared test data.
func TestResolveMembersSharedData(t *testing.T) {
	m := resolveRegistry(t)
	n, marked := 0, 0
	for _, o := range sharedObjects(t) {
		r, err := m.Resolve(o)
		checkResolveMembers(t, m, o, r, err)
		checkTLPOfValue(t, m, o, r, err)
		if err == nil {
			n++
			if r.TLP != TLPNone || len(r.Statements)+len(r.Unknown) > 0 {
				marked++
			}
		}
	}
	if n < 1000 || marked < 10 {
		t.Fatalf("%d objects resolved, %d marked: the test proves little", n, marked)
	}
	t.Logf("%d objects resolved, %d marked", n, marked)
}
