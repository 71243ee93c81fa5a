package policy

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/ctigate/ctigate/stix"
)

// TestParseTreeRecycled parses objects one after another, each time
// marking every node of the tree removed and adding members to the root
// and to its lists before release, as redaction does: a parser handed out
// again must give the next object a tree of its own (nothing removed,
// nothing added, no member of an earlier object), however large or
// nested the earlier one was.
func TestParseTreeRecycled(t *testing.T) {
	big := `{"type":"x","a":[` + strings.Repeat(`{"k":[1,2,{"z":"v"}]},`, 3000) + `{"k":0}]}`
	objs := []string{
		indicator(marked(stix.TLP2Green)),
		big,
		`{"a":{"b":{"c":[[],{},"s",true,false,null,-1.5e3]}},"d\u0061":"escaped name"}`,
		indicator(marked(stix.TLP2Amber), granular([]string{stix.TLP2Red, "description"})),
		`{}`,
		big,
		`{"only":1}`,
	}
	for round := range 3 {
		for i, raw := range objs {
			root, p, err := parseTree([]byte(raw))
			if err != nil {
				t.Fatalf("round %d, object %d: %v", round, i, err)
			}
			// Names are written unescaped ("d\u0061" as "da"): compare
			// values.
			var got, want any
			out := root.appendTo(nil)
			if err := json.Unmarshal(out, &got); err != nil {
				t.Fatalf("round %d, object %d: the tree writes %.300s: %v", round, i, out, err)
			}
			if err := json.Unmarshal([]byte(raw), &want); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("round %d, object %d: the tree writes\n%.300s\nwant\n%.300s", round, i, out, raw)
			}
			// Add a member or item to every object and list, as redaction
			// adds markings and extensions: no other list may change.
			var all []*node
			var walk func(n *node)
			walk = func(n *node) {
				all = append(all, n)
				for _, k := range n.kids {
					walk(k)
				}
			}
			walk(root)
			before := make([][]*node, len(all))
			for j, n := range all {
				before[j] = slices.Clone(n.kids)
			}
			for _, n := range all {
				switch n.kind {
				case '{':
					n.names = append(n.names, "added")
					n.kids = append(n.kids, &node{kind: '0', raw: []byte("1")})
				case '[':
					n.kids = append(n.kids, &node{kind: '0', raw: []byte("7")})
				}
			}
			for j, n := range all {
				if len(before[j]) > 0 && !slices.Equal(n.kids[:len(before[j])], before[j]) {
					t.Fatalf("round %d, object %d: adding to one list changed another", round, i)
				}
			}
			// Spoil the tree as redaction would, then hand it back.
			for _, n := range all {
				n.gone = true
			}
			p.release()
		}
	}
}

// TestEvaluateOrderAndConcurrency evaluates a mix of objects (published
// unchanged, redacted, trimmed, withheld, refused as invalid) many times,
// in random orders and from several goroutines at once: every decision
// must be the one the object gets evaluated alone, first. Evaluate's
// parsers are recycled; an object's decision must never depend on what
// was parsed before it.
func TestEvaluateOrderAndConcurrency(t *testing.T) {
	green := marked(stix.TLP2Green)
	raws := []string{
		indicator(green),
		indicator(marked(stix.TLP2Red)),
		indicator(green, granular([]string{stix.TLP2Red, "description"}, []string{"lang:en", "name"})),
		indicator(green, member{"labels", `["a","b"]`}, granular([]string{stix.TLP2Red, "labels.[0]"}, []string{stix.TLP2Green, "labels.[1]"})),
		indicator(green, member{"x_a", `{"x_b":[1,{"c_ref":"indicator--33fe3b22-0201-47cf-85d0-97c02164528d"}]}`}, member{"created_by_ref", `"` + identID + `"`}),
		indicator(green, member{"created_by_ref", `"identity--00000000-0000-4000-8000-000000000000"`}),
		object("report", "report--84e4d88f-44ea-4bcd-bbf3-b2c1c320bcb3", green, member{"name", `"r"`},
			member{"published", `"2024-05-08T09:00:00.000Z"`}, member{"object_refs", `["` + indID + `","` + malwareID + `","malware--11111111-1111-4111-8111-111111111111"]`}),
		object("identity", identID, green, member{"name", `"CERT-A"`}, member{"identity_class", `"organization"`}),
		indicator(), // unmarked
	}
	reg := stix.NewMarkings()
	rc := baseConfig()
	rc.Minimise.DropCustomProperties = true
	routes := []*Route{mustCompile(t, baseConfig()), mustCompile(t, rc)}
	var ins []Input
	for _, raw := range raws {
		in := input(t, raw, reg)
		in.Published = func(id string) bool { return id == malwareID || id == identID }
		ins = append(ins, in)
	}
	// Not objects at all, or with a repeated member: withheld as invalid.
	for _, raw := range []string{`{"type":"indicator","id":"x","id":"y"}`, `{"a":[1,2`, `[1]`} {
		ins = append(ins, Input{Raw: []byte(raw), Type: "indicator", ID: indID, SHA256: [32]byte{1}})
	}
	type key struct{ in, route int }
	want := map[key]Decision{}
	for i, in := range ins {
		for k, r := range routes {
			want[key{i, k}] = Evaluate(in, r, testNow)
		}
	}
	// The mix must hold each kind of decision, or the test proves little.
	kinds := map[Action]bool{}
	for _, d := range want {
		kinds[d.Action] = true
	}
	if !kinds[Publish] || !kinds[PublishRedacted] || !kinds[Withhold] {
		t.Fatalf("the mix gave only %v", kinds)
	}
	var wg sync.WaitGroup
	errs := make(chan string, 8)
	for g := range 8 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(g), 1))
			for range 200 {
				i, k := rng.IntN(len(ins)), rng.IntN(len(routes))
				got := Evaluate(ins[i], routes[k], testNow)
				if !reflect.DeepEqual(got, want[key{i, k}]) {
					select {
					case errs <- fmt.Sprintf("object %d, route %d: got %+v\nwant %+v", i, k, got, want[key{i, k}]):
					default:
					}
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}

// TestParserInternsShortNamesOnly: a recycled parser remembers member
// names to give each one string, but not long ones (no STIX property name
// is), so an object with huge names leaves nothing large behind.
func TestParserInternsShortNamesOnly(t *testing.T) {
	long := strings.Repeat("n", maxInternedName+1)
	root, p, err := parseTree([]byte(`{"type":"x","` + long + `":1}`))
	if err != nil {
		t.Fatal(err)
	}
	if root.names[1] != long {
		t.Fatalf("names %q", root.names)
	}
	if _, ok := p.intern["type"]; !ok {
		t.Error("a short name was not interned")
	}
	if _, ok := p.intern[long]; ok {
		t.Errorf("a name of %d bytes was interned", len(long))
	}
	p.release()
}
