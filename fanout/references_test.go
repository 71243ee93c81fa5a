package fanout

import (
	"context"
	"fmt"
	"maps"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/ctigate/ctigate/gateway"
	"github.com/ctigate/ctigate/policy"
	"github.com/ctigate/ctigate/stix"
	"github.com/ctigate/ctigate/store"
	"github.com/ctigate/ctigate/store/bolt"
)

// refGen generates a set of valid STIX objects from one producer that
// refer to each other (created_by_ref, relationships, reports), each with
// a random TLP marking or none.
type refGen struct {
	ids   []string
	types []string
}

func (g *refGen) id(typ string, n int) string {
	return fmt.Sprintf("%s--%08d-0000-4000-8000-%012d", typ, n, n)
}

func (g *refGen) objects(t *rapid.T) []store.Object {
	n := rapid.IntRange(2, 12).Draw(t, "n")
	kinds := []string{"identity", "indicator", "malware", "relationship", "report"}
	for i := range n {
		typ := rapid.SampledFrom(kinds).Draw(t, "type")
		g.ids = append(g.ids, g.id(typ, i))
		g.types = append(g.types, typ)
	}
	pick := func(label string, want ...string) (string, bool) {
		var pool []string
		for i, id := range g.ids {
			if len(want) == 0 || slices.Contains(want, g.types[i]) {
				pool = append(pool, id)
			}
		}
		if len(pool) == 0 {
			return "", false
		}
		return rapid.SampledFrom(pool).Draw(t, label), true
	}
	tlps := []string{"", stix.TLP2Clear, stix.TLP2Green, stix.TLP2Amber, stix.TLP2Red}
	var out []store.Object
	for i, id := range g.ids {
		typ := g.types[i]
		var b strings.Builder
		fmt.Fprintf(&b, `{"type":%q,"spec_version":"2.1","id":%q,"created":"2026-01-01T00:00:00.000Z","modified":"2026-01-01T00:00:00.000Z"`, typ, id)
		switch typ {
		case "identity":
			fmt.Fprintf(&b, `,"name":"org %d","identity_class":"organization"`, i)
		case "indicator":
			fmt.Fprintf(&b, `,"name":"ind %d","pattern":"[ipv4-addr:value = '198.51.100.%d']","pattern_type":"stix","valid_from":"2026-01-01T00:00:00Z"`, i, i)
		case "malware":
			fmt.Fprintf(&b, `,"name":"mal %d","is_family":false`, i)
		case "relationship":
			src, _ := pick("source", "indicator", "malware", "identity")
			dst, _ := pick("target", "indicator", "malware", "identity")
			if src == "" {
				src = id
			}
			if dst == "" {
				dst = id
			}
			fmt.Fprintf(&b, `,"relationship_type":"related-to","source_ref":%q,"target_ref":%q`, src, dst)
		case "report":
			refs := rapid.SliceOfNDistinct(rapid.SampledFrom(g.ids), 1, 4, rapid.ID[string]).Draw(t, "object_refs")
			fmt.Fprintf(&b, `,"name":"report %d","published":"2026-01-01T00:00:00Z","object_refs":["%s"]`, i, strings.Join(refs, `","`))
		}
		if rapid.Bool().Draw(t, "attributed") {
			if by, ok := pick("created_by_ref", "identity"); ok {
				fmt.Fprintf(&b, `,"created_by_ref":%q`, by)
			}
		}
		if m := rapid.SampledFrom(tlps).Draw(t, "tlp"); m != "" {
			b.WriteString(marked(m))
		}
		b.WriteString("}")
		o := obj(id, typ, time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), b.String())
		o.Producer = "CERT-A"
		out = append(out, o)
	}
	return out
}

func genRefRoute(t *rapid.T) *policy.Route {
	r, err := policy.Compile(policy.RouteConfig{
		ID: lawColl, Name: "law-enforcement", Sources: []string{inbound},
		Ceiling:    rapid.SampledFrom([]string{"TLP:GREEN", "TLP:AMBER"}).Draw(t, "ceiling"),
		Unmarked:   rapid.SampledFrom([]string{"withhold", "TLP:GREEN"}).Draw(t, "unmarked"),
		References: rapid.SampledFrom([]string{"trim", "withhold"}).Draw(t, "references"),
	})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// publishRun adds objs in envelopes of envelope objects each, then lets
// fan-out (batches of batch) publish them — after each envelope too when
// between is set — and returns what the route holds: id -> published
// bytes.
func publishRun(t *rapid.T, dir string, r *policy.Route, objs []store.Object, envelope, batch int, between bool) map[string]string {
	st, err := bolt.Open(filepath.Join(dir, fmt.Sprintf("run-%d.db", time.Now().UnixNano())), bolt.Options{NoSync: true, TrimInterval: -1, TrimAfterBytes: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	w := New(Options{Store: st, Routes: []*policy.Route{r}, Markings: stix.NewMarkings(), Clock: func() time.Time { return now }, BatchSize: batch})
	for i := 0; i < len(objs); i += envelope {
		if _, err := st.AddObjects(ctx, inbound, objs[i:min(i+envelope, len(objs))]); err != nil {
			t.Fatal(err)
		}
		if between {
			if _, err := w.RunOnce(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	if _, err := w.RunOnce(ctx); err != nil {
		t.Fatal(err)
	}
	if p, err := st.Objects(ctx, gateway.ParkingOf(CheckpointName(r, inbound)), store.Query{WithoutRaw: true}); err == nil && len(p.Objects) > 0 {
		t.Fatalf("%d objects still wait for references that have all arrived", len(p.Objects))
	}
	p, err := st.Objects(ctx, lawColl, store.Query{Versions: []store.VersionMatch{{Kind: store.All}}, Limit: 10000})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, o := range p.Objects {
		out[o.ID] = string(o.Raw)
	}
	return out
}

var stixID = regexp.MustCompile(`"([a-z][a-z0-9-]+--[0-9a-f-]{36})"`)

// TestReferencesOrderIndependent is the property that what a route
// publishes does not depend on the order in which a producer's objects
// arrive, nor on how they are split into envelopes and fan-out batches:
// every permutation, every envelope size, every batch size, with fan-out
// running after each envelope or only at the end (objects wait for the
// references that have not arrived yet), publishes the same objects with
// the same bytes (so the same references) as one envelope decided in one
// batch, once everything has arrived within the route's reference_wait.
// And every reference a published object keeps is to an object the route
// published.
//
//	go test ./fanout -run TestReferencesOrderIndependent -rapid.checks=1000
func TestReferencesOrderIndependent(t *testing.T) {
	dir := t.TempDir()
	kept, trimmed := 0, 0
	defer func() { t.Logf("references kept %d; objects published with references trimmed %d", kept, trimmed) }()
	rapid.Check(t, func(t *rapid.T) {
		g := &refGen{}
		objs := g.objects(t)
		r := genRefRoute(t)
		want := publishRun(t, dir, r, objs, len(objs), len(objs), false)
		for id, raw := range want {
			for _, m := range stixID.FindAllStringSubmatch(raw, -1) {
				ref := m[1]
				if ref == id || strings.HasPrefix(ref, "marking-definition--") || strings.HasPrefix(ref, "extension-definition--") {
					continue
				}
				if _, ok := want[ref]; !ok {
					t.Fatalf("%s keeps a reference to %s, which the route did not publish:\n%s", id, ref, raw)
				}
				kept++
			}
			if strings.Contains(raw, policy.RedactionExtension) {
				trimmed++
			}
		}
		perm := rapid.Permutation(objs).Draw(t, "order")
		envelope := rapid.IntRange(1, len(objs)).Draw(t, "envelope")
		batch := rapid.IntRange(1, len(objs)).Draw(t, "batch")
		between := rapid.Bool().Draw(t, "fan-out between envelopes")
		got := publishRun(t, dir, r, perm, envelope, batch, between)
		if !maps.Equal(got, want) {
			var diff []string
			for _, id := range slices.Sorted(maps.Keys(want)) {
				if got[id] != want[id] {
					diff = append(diff, fmt.Sprintf("%s:\n  one batch: %s\n  this order: %s", id, want[id], got[id]))
				}
			}
			for id := range got {
				if _, ok := want[id]; !ok {
					diff = append(diff, fmt.Sprintf("%s published only in this order: %s", id, got[id]))
				}
			}
			t.Fatalf("envelopes of %d, batches of %d, fan-out between envelopes %v: the route publishes differently:\n%s", envelope, batch, between, strings.Join(diff, "\n"))
		}
	})
}
