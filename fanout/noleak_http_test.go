package fanout_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
	"pgregory.net/rapid"

	"github.com/ctigate/ctigate/auth"
	"github.com/ctigate/ctigate/config"
	"github.com/ctigate/ctigate/fanout"
	"github.com/ctigate/ctigate/policy"
	"github.com/ctigate/ctigate/search"
	"github.com/ctigate/ctigate/server"
	"github.com/ctigate/ctigate/stix"
	"github.com/ctigate/ctigate/store/bolt"
)

// The topology of TestNoLeakHTTP: one inbound collection the producer
// writes, and up to three published collections, each filled by a
// generated route and read by one consumer.
const (
	nlInbound   = "24f70a31-7be5-4fdd-8353-9784877646c1"
	nlUnknownMD = "marking-definition--0b0e7a6c-3f43-4c1e-9d55-1c1f1f0f4a11"
	nlStatement = "marking-definition--6a2c3b1e-8f2d-4e59-a1d6-0c3c6fd2f5a7"
)

var (
	nlRouteColls = []string{
		"1dae5e88-4b59-4503-a9cf-2e649dd6544c",
		"17f28d77-a964-471e-ab40-76087911370a",
		"3c1f0a2b-4d5e-4f60-8a7b-9c0d1e2f3a4b",
	}
	nlNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

	// nlMarkings are the object and granular marking refs drawn from: the
	// nine standard TLP ids, upper-case spellings, an unknown marking and
	// a statement marking (posted in the envelope).
	nlMarkings = []string{
		stix.TLP1White, stix.TLP1Green, stix.TLP1Amber, stix.TLP1Red,
		stix.TLP2Clear, stix.TLP2Green, stix.TLP2Amber, stix.TLP2AmberStrict, stix.TLP2Red,
		"marking-definition--" + strings.ToUpper(stix.TLP1Red[20:]),
		"marking-definition--" + strings.ToUpper(stix.TLP2Red[20:]),
		"marking-definition--" + strings.ToUpper(stix.TLP2Amber[20:]),
		"marking-definition--" + strings.ToUpper(stix.TLP2Green[20:]),
		nlUnknownMD, nlStatement,
	}
)

// nlObj is one generated object with the bookkeeping the oracle needs.
type nlObj struct {
	id, typ  string
	raw      string
	markings []string
	granular []nlGranular
	tokens   []string            // every token the object holds
	at       map[string][]string // selector → tokens below it
	expired  bool
	indiv    bool
	custom   []string // tokens in x_ properties
}

type nlGranular struct {
	ref       string // "" for a language entry
	selectors []string
}

// nlGen builds objects whose every string value holds a unique token
// ("tk-<n>-q"), so that a leak is a substring of a response. The hyphens
// and the letters t, k, q keep tokens out of hexadecimal digests, UUIDs and
// standard base64 (entry nonces, salts): a random value in a response must
// not look like a leaked token.
type nlGen struct{ n int }

func (g *nlGen) token() string { g.n++; return "tk-" + strconv.Itoa(g.n) + "-q" }

type member struct {
	name string
	val  string   // a JSON value
	toks []string // tokens in it, for selectors
	sub  map[string][]string
}

func (g *nlGen) object(t *rapid.T, i int, ids []string) *nlObj {
	typ := rapid.SampledFrom([]string{"indicator", "indicator", "report", "note", "identity", "relationship"}).Draw(t, "type")
	o := &nlObj{typ: typ, id: fmt.Sprintf("%s--0c0ffee0-0000-4000-8000-%012d", typ, i), at: map[string][]string{}}
	var ms []member
	str := func(name, prefix string) {
		tok := g.token()
		ms = append(ms, member{name: name, val: strconv.Quote(prefix + tok), toks: []string{tok}})
	}
	list := func(name string, vals []string, toks []string) {
		q := make([]string, len(vals))
		sub := map[string][]string{}
		for j, v := range vals {
			q[j] = strconv.Quote(v)
			sub[name+".["+strconv.Itoa(j)+"]"] = nil
			if toks != nil {
				sub[name+".["+strconv.Itoa(j)+"]"] = []string{toks[j]}
			}
		}
		ms = append(ms, member{name: name, val: "[" + strings.Join(q, ",") + "]", toks: toks, sub: sub})
	}
	refs := func(label string, min int) []string {
		pool := append(slices.Clone(ids), "indicator--0c0ffee0-0000-4000-8000-999999999999") // never posted
		return rapid.SliceOfNDistinct(rapid.SampledFrom(pool), min, 3, rapid.ID[string]).Draw(t, label)
	}
	switch typ {
	case "indicator":
		str("name", "n ")
		tok := g.token()
		ms = append(ms, member{name: "pattern", val: strconv.Quote("[domain-name:value = '" + tok + ".example']"), toks: []string{tok}},
			member{name: "pattern_type", val: `"stix"`}, member{name: "valid_from", val: `"2024-05-08T09:00:00Z"`})
		if rapid.Bool().Draw(t, "valid_until") {
			o.expired = rapid.Bool().Draw(t, "expired")
			until := "2027-01-01T00:00:00Z"
			if o.expired {
				until = "2025-01-01T00:00:00Z"
			}
			ms = append(ms, member{name: "valid_until", val: strconv.Quote(until)})
		}
	case "report", "note":
		if typ == "report" {
			str("name", "n ")
			ms = append(ms, member{name: "published", val: `"2024-05-08T09:00:00Z"`})
		} else {
			str("content", "c ")
		}
		if len(ids) == 0 {
			ids = []string{o.id}
		}
		list("object_refs", refs("object_refs", 1), nil)
	case "identity":
		str("name", "n ")
		o.indiv = rapid.Bool().Draw(t, "individual")
		class := "organization"
		if o.indiv {
			class = "individual"
		}
		ms = append(ms, member{name: "identity_class", val: strconv.Quote(class)})
	case "relationship":
		// Relationships join SDOs and SCOs, not other relationships.
		pool := slices.DeleteFunc(slices.Clone(ids), func(id string) bool { return strings.HasPrefix(id, "relationship--") })
		pool = append(pool, "malware--0c0ffee0-0000-4000-8000-999999999998")
		ms = append(ms, member{name: "relationship_type", val: `"related-to"`},
			member{name: "source_ref", val: strconv.Quote(rapid.SampledFrom(pool).Draw(t, "source"))},
			member{name: "target_ref", val: strconv.Quote(rapid.SampledFrom(pool).Draw(t, "target"))})
	}
	if rapid.Bool().Draw(t, "description") {
		str("description", "d ")
	}
	if rapid.Bool().Draw(t, "labels") {
		n := rapid.IntRange(1, 3).Draw(t, "labels_n")
		vals, toks := make([]string, n), make([]string, n)
		for j := range vals {
			toks[j] = g.token()
			vals[j] = "l " + toks[j]
		}
		list("labels", vals, toks)
	}
	if rapid.Bool().Draw(t, "external_references") {
		a, b := g.token(), g.token()
		ms = append(ms, member{name: "external_references", val: `[{"source_name":"s ` + a + `","external_id":"e ` + b + `"}]`,
			toks: []string{a, b}, sub: map[string][]string{
				"external_references.[0]":             {a, b},
				"external_references.[0].source_name": {a},
				"external_references.[0].external_id": {b},
			}})
	}
	if rapid.Bool().Draw(t, "custom") {
		tok := g.token()
		ms = append(ms, member{name: "x_acme_note", val: strconv.Quote("x " + tok), toks: []string{tok}})
		o.custom = append(o.custom, tok)
	}

	var b strings.Builder
	b.WriteString(`{"type":"` + typ + `","spec_version":"2.1","id":"` + o.id + `","created":"2024-05-08T09:00:00.000Z","modified":"2024-05-08T09:00:00.000Z"`)
	var selectable []string
	for _, m := range ms {
		b.WriteString("," + strconv.Quote(m.name) + ":" + m.val)
		o.at[m.name] = m.toks
		o.tokens = append(o.tokens, m.toks...)
		selectable = append(selectable, m.name)
		for s, toks := range m.sub {
			o.at[s] = toks
			selectable = append(selectable, s)
		}
	}
	slices.Sort(selectable[len(ms):]) // map order: keep draws deterministic
	if refs := rapid.SliceOfN(rapid.SampledFrom(nlMarkings), 0, 3).Draw(t, "object_marking_refs"); len(refs) > 0 {
		o.markings = refs
		b.WriteString(`,"object_marking_refs":["` + strings.Join(refs, `","`) + `"]`)
		selectable = append(selectable, "object_marking_refs")
	}
	if n := rapid.IntRange(0, 2).Draw(t, "granular"); n > 0 {
		var entries []string
		for range n {
			var gm nlGranular
			head := `"lang":"de"`
			if rapid.IntRange(0, 4).Draw(t, "lang") != 0 {
				gm.ref = rapid.SampledFrom(nlMarkings).Draw(t, "marking_ref")
				head = `"marking_ref":"` + gm.ref + `"`
			}
			gm.selectors = rapid.SliceOfNDistinct(rapid.SampledFrom(selectable), 1, 2, rapid.ID[string]).Draw(t, "selectors")
			entries = append(entries, `{`+head+`,"selectors":["`+strings.Join(gm.selectors, `","`)+`"]}`)
			o.granular = append(o.granular, gm)
		}
		b.WriteString(`,"granular_markings":[` + strings.Join(entries, ",") + `]`)
	}
	b.WriteString("}")
	o.raw = b.String()
	return o
}

var (
	nlTokenRE    = regexp.MustCompile(`tk-[0-9]+-q`)
	nlModifiedRE = regexp.MustCompile(`"modified":"[^"]*"`)
)

// nlNewVersion returns a later version of o (modified on day step of June
// 2024) with fresh tokens in place of every one of o's, and object-level
// markings drawn anew (at least one when o had some: a granular marking
// may select them).
func (g *nlGen) nlNewVersion(t *rapid.T, o *nlObj, step int) *nlObj {
	fresh := map[string]string{}
	raw := nlTokenRE.ReplaceAllStringFunc(o.raw, func(tok string) string {
		if n, ok := fresh[tok]; ok {
			return n
		}
		fresh[tok] = g.token()
		return fresh[tok]
	})
	swap := func(toks []string) []string {
		out := make([]string, len(toks))
		for i, tk := range toks {
			out[i] = fresh[tk]
		}
		return out
	}
	n := &nlObj{id: o.id, typ: o.typ, granular: o.granular, expired: o.expired, indiv: o.indiv,
		tokens: swap(o.tokens), custom: swap(o.custom), at: map[string][]string{}}
	for k, v := range o.at {
		n.at[k] = swap(v)
	}
	raw = nlModifiedRE.ReplaceAllString(raw, fmt.Sprintf(`"modified":"2024-06-%02dT00:00:00.000Z"`, step))
	min := 0
	if len(o.markings) > 0 {
		min = 1
	}
	n.markings = rapid.SliceOfN(rapid.SampledFrom(nlMarkings), min, 3).Draw(t, "new_markings")
	refs := ""
	if len(n.markings) > 0 {
		refs = `,"object_marking_refs":["` + strings.Join(n.markings, `","`) + `"]`
	}
	if i := strings.Index(raw, `,"object_marking_refs":[`); i >= 0 {
		j := i + strings.Index(raw[i:], "]") + 1
		raw = raw[:i] + refs + raw[j:]
	} else {
		raw = strings.TrimSuffix(raw, "}") + refs + "}"
	}
	n.raw = raw
	return n
}

// nlLevel is the oracle's object-level reading of refs: the highest TLP
// level, and whether a marking the gateway does not know is among them.
func nlLevel(refs []string) (stix.TLP, bool) {
	level, unknown := stix.TLPNone, false
	for _, r := range refs {
		if l, ok := stix.StandardTLP(r); ok {
			level = max(level, l)
		} else if r != nlStatement {
			unknown = true
		}
	}
	return level, unknown
}

// nlHidden reports whether an object at level/unknown may not go to a
// route with ceiling and unmarked level (TLPNone: withhold).
func nlHidden(level stix.TLP, unknown bool, ceiling, unmarked stix.TLP) bool {
	if level == stix.TLPRed {
		return true
	}
	if level == stix.TLPNone || unknown {
		if unmarked == stix.TLPNone {
			return true
		}
		level = max(level, unmarked)
	}
	return !level.Within(ceiling)
}

type nlUser struct{ name, org string }

var nlUsers = []nlUser{{"producer", "CERT-A"}, {"consumer-0", "Org 0"}, {"consumer-1", "Org 1"}, {"consumer-2", "Org 2"}}

// TestNoLeakHTTP is the no-leak property over the whole pipeline: HTTP
// ingest, fan-out and every TAXII read endpoint. Each check draws 1–3
// routes (ceilings TLP:CLEAR..TLP:AMBER+STRICT, unmarked rule, reference
// handling, expiry, data minimisation) and a small envelope (a statement
// marking definition, itself maybe marked TLP:RED, then objects with TLP
// 1.0/2.0 markings in any case, unknown and statement markings, granular
// markings with random selectors and language entries, references between
// them and to objects never posted). The producer posts it, the worker
// runs, and each consumer reads everything it can: GET objects,
// object-by-id and versions for every posted id, and the manifest. Then a
// generated history follows — deletes at the source, new versions with
// new markings (raised to RED, lowered, made unknown), route policy changes
// (narrowing or widening) — with fan-out and the same reads after each
// step. Each time, for every version ever posted:
//
//   - no version whose object-level TLP (read here from its refs) is above
//     the ceiling, RED, unmarked or unknown-marked under the withhold rule,
//     expired (unless expiry is ignored) or minimised away under the route
//     as it now stands, none deleted at the source, and none older than a
//     version that is withheld for one of those reasons, is readable: none
//     of its values appears in any byte the consumer receives;
//   - no value a granular marking above the ceiling (or unknown, under the
//     withhold rule) selects appears in any byte, nor an x_ value under
//     drop_custom_properties;
//   - every *_ref / *_refs in what the consumer receives names an object
//     the consumer can read (or could before: withdrawing an object does
//     not rewrite what refers to it), unless the route allows dangling
//     references;
//   - object-by-id, versions and manifest agree with GET objects.
//
// The default check count keeps `go test` fast; run it broadly with
//
//	go test ./fanout -run TestNoLeakHTTP -rapid.checks=2000
func TestNoLeakHTTP(t *testing.T) {
	var users []auth.User
	var cfgUsers []config.User
	for _, u := range nlUsers {
		h, err := auth.HashPassword(u.name + "-pw")
		if err != nil {
			t.Fatal(err)
		}
		roles := []string{"consumer", "analyst"}
		if u.name == "producer" {
			roles = []string{"producer"}
		}
		users = append(users, auth.User{Name: u.name, Organisation: u.org, Roles: roles, PasswordHash: h})
		cfgUsers = append(cfgUsers, config.User{Name: u.name, Organisation: u.org, Roles: roles, PasswordHash: h})
	}
	authn, err := auth.New(users, auth.Options{})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	var iter atomic.Int64
	stats := map[string]int{}
	defer func() { t.Logf("objects readable/withheld per route: %v", stats) }()

	rapid.Check(t, func(rt *rapid.T) {
		// Routes.
		nRoutes := rapid.IntRange(1, 3).Draw(rt, "routes")
		var rcs []policy.RouteConfig
		colls := []config.Collection{{ID: nlInbound, Alias: "inbound", Title: "Inbound", Writers: []string{"role:producer"}, Readers: []string{"role:producer"}}}
		for i := range nRoutes {
			rc := nlRoute(rt)
			rc.ID, rc.Name, rc.Sources = nlRouteColls[i], "route-"+strconv.Itoa(i), []string{nlInbound}
			rcs = append(rcs, rc)
			colls = append(colls, config.Collection{ID: rc.ID, Title: rc.Name, Readers: []string{nlUsers[i+1].name}})
		}
		cfg := config.Default()
		cfg.Discovery = config.Discovery{Title: "no-leak", Default: "exchange"}
		cfg.APIRoots = []config.APIRoot{{Name: "exchange", Title: "Exchange", MaxContentLength: 1 << 20, Collections: colls}}
		cfg.Users = cfgUsers
		cfg.Routes = rcs
		if err := cfg.Validate(); err != nil {
			rt.Fatalf("config: %v", err)
		}
		routes, err := policy.CompileRoutes(cfg.Routes)
		if err != nil {
			rt.Fatal(err)
		}

		// Envelope: the statement definition first (maybe marked RED, its
		// statement then a RED secret), then the objects.
		g := &nlGen{}
		defToken := g.token()
		defRed := rapid.Bool().Draw(rt, "statement_red")
		def := `{"type":"marking-definition","spec_version":"2.1","id":"` + nlStatement + `","created":"2024-01-01T00:00:00.000Z",` +
			`"definition_type":"statement","definition":{"statement":"Copyright ` + defToken + `"}`
		if defRed {
			def += `,"object_marking_refs":["` + stix.TLP2Red + `"]`
		}
		def += "}"
		n := rapid.IntRange(1, 6).Draw(rt, "objects")
		var objs []*nlObj
		var ids []string
		for i := range n {
			o := g.object(rt, i, ids)
			objs = append(objs, o)
			ids = append(ids, o.id)
		}
		raws := []string{def}
		for _, o := range objs {
			raws = append(raws, o.raw)
		}

		// Gateway and worker.
		st, err := bolt.Open(filepath.Join(dir, fmt.Sprintf("nl-%d.db", iter.Add(1))), bolt.Options{NoSync: true, TrimInterval: -1, TrimAfterBytes: -1})
		if err != nil {
			rt.Fatal(err)
		}
		defer st.Close()
		six, err := bolt.OpenIndex(filepath.Join(dir, fmt.Sprintf("nl-%d.search.db", iter.Load())), bolt.IndexOptions{NoSync: true})
		if err != nil {
			rt.Fatal(err)
		}
		defer six.Close()
		sst := search.Join(st, six)
		markings := stix.NewMarkings()
		srv := server.New(server.Options{Config: &cfg, Store: st, Auth: authn, Markings: markings, Search: search.NewSearcher(sst)})
		do := func(method, path, user string, body []byte) (int, []byte) {
			return serveTAXII(srv, method, path, body, func(r *http.Request) { r.SetBasicAuth(user, user+"-pw") })
		}
		post := func(raws []string) {
			code, body := do(http.MethodPost, "/exchange/collections/"+nlInbound+"/objects/", "producer",
				[]byte(`{"objects":[`+strings.Join(raws, ",")+`]}`))
			var status struct {
				SuccessCount int `json:"success_count"`
				Failures     []struct {
					ID      string `json:"id"`
					Message string `json:"message"`
				} `json:"failures"`
			}
			if code != http.StatusAccepted || json.Unmarshal(body, &status) != nil {
				rt.Fatalf("POST: %d %s", code, body)
			}
			if len(status.Failures) > 0 {
				rt.Fatalf("the gateway refused generated objects: %s\nenvelope: %s", body, raws)
			}
		}
		post(raws)
		var indexed []string
		for _, c := range colls {
			indexed = append(indexed, c.ID)
		}
		ix := search.NewIndexer(search.IndexerOptions{Store: sst, Collections: indexed, Markings: markings})
		w := fanout.New(fanout.Options{Store: st, Routes: routes, Markings: markings, Clock: func() time.Time { return nlNow }})
		run := func() {
			if _, err := w.RunOnce(context.Background()); err != nil {
				rt.Fatalf("RunOnce: %v", err)
			}
			if _, err := ix.RunOnce(context.Background()); err != nil {
				rt.Fatalf("indexing: %v", err)
			}
		}

		// The history: every version posted (one per id at first), and
		// whether it was deleted at the source since.
		type nlVer struct {
			o       *nlObj
			step    int
			deleted bool
		}
		var hist []*nlVer
		for _, o := range objs {
			hist = append(hist, &nlVer{o: o})
		}
		seen := make([]map[string]bool, len(nlRouteColls)) // ids each consumer has read so far
		for i := range seen {
			seen[i] = map[string]bool{}
		}

		check := func(phase string) {
			for i, r := range routes {
				user := nlUsers[i+1].name
				base := "/exchange/collections/" + r.ID() + "/"
				rc := r.Config()
				unmarked := stix.TLPNone
				if rc.Unmarked != "" && rc.Unmarked != policy.UnmarkedWithhold {
					unmarked, _ = stix.ParseTLP(rc.Unmarked)
				}
				ceiling := r.Ceiling()
				hidden := func(o *nlObj) string {
					level, unknown := nlLevel(o.markings)
					switch {
					case nlHidden(level, unknown, ceiling, unmarked):
						return fmt.Sprintf("%s has markings %q", o.id, o.markings)
					case o.expired && rc.Expiry != policy.ExpiryIgnore:
						return o.id + " expired"
					case o.indiv && slices.Contains(rc.Minimise.DropTypes, "identity:individual"):
						return o.id + " is an individual"
					}
					return ""
				}

				// Read everything.
				var received [][]byte
				get := func(path string) (int, []byte) {
					code, b := do(http.MethodGet, path, user, nil)
					received = append(received, b)
					return code, b
				}
				code, b := get(base + "objects/?match[version]=all")
				if code != http.StatusOK {
					rt.Fatalf("%s: %s: GET objects: %d %s", phase, r.Name(), code, b)
				}
				readable, versions := nlDecode(rt, b), nlVersions(rt, b)
				code, b = get(base + "manifest/?match[version]=all")
				var man struct {
					Objects []struct {
						ID string `json:"id"`
					} `json:"objects"`
				}
				if code != http.StatusOK || json.Unmarshal(b, &man) != nil {
					rt.Fatalf("%s: %s: manifest: %d %s", phase, r.Name(), code, b)
				}
				var manIDs []string
				for _, e := range man.Objects {
					manIDs = append(manIDs, e.ID)
				}
				slices.Sort(manIDs)
				manIDs = slices.Compact(manIDs)
				if got := slices.Sorted(nlKeys(readable)); !slices.Equal(manIDs, got) {
					rt.Fatalf("%s: %s: manifest lists %v, objects %v", phase, r.Name(), manIDs, got)
				}
				for _, id := range append(slices.Clone(ids), nlStatement) {
					c1, b1 := get(base + "objects/" + id + "/?match[version]=all")
					c2, _ := get(base + "objects/" + id + "/versions/")
					_, ok := readable[id]
					switch {
					case ok && (c1 != http.StatusOK || c2 != http.StatusOK):
						rt.Fatalf("%s: %s: %s is in GET objects, yet by id %d, versions %d", phase, r.Name(), id, c1, c2)
					case !ok && (c1 != http.StatusNotFound || c2 != http.StatusNotFound):
						rt.Fatalf("%s: %s: %s is not in GET objects, yet by id %d, versions %d: %s", phase, r.Name(), id, c1, c2, b1)
					case ok:
						if one := nlVersions(rt, b1); !slices.EqualFunc(one[id], versions[id], bytes.Equal) {
							rt.Fatalf("%s: %s: %s by id differs: %s", phase, r.Name(), id, b1)
						}
					}
				}
				// Search (the consumers are analysts too): every indicator
				// version's domain, across what the user may read. Only the
				// hits count as received (the response repeats the value).
				for _, v := range hist {
					o := v.o
					if o.typ != "indicator" {
						continue
					}
					tok := o.at["pattern"][0]
					code, b := do(http.MethodGet, "/api/v1/search?value="+tok+".example", user, nil)
					var res struct {
						Hits []struct {
							ID         string `json:"id"`
							TLP        string `json:"tlp"`
							Collection struct {
								ID string `json:"id"`
							} `json:"collection"`
						} `json:"hits"`
					}
					if code != http.StatusOK || json.Unmarshal(b, &res) != nil {
						rt.Fatalf("%s: %s: search: %d %s", phase, r.Name(), code, b)
					}
					for _, h := range res.Hits {
						if _, ok := readable[h.ID]; !ok || h.Collection.ID != r.ID() || h.TLP == stix.TLPRed.String() {
							rt.Fatalf("%s: %s: search for %s returned %+v, which %s cannot read", phase, r.Name(), o.id, h, user)
						}
					}
					if slices.ContainsFunc(versions[o.id], func(raw []byte) bool { return bytes.Contains(raw, []byte(tok)) }) && len(res.Hits) != 1 {
						rt.Fatalf("%s: %s: a readable version of %s holds %s, yet search returned %s", phase, r.Name(), o.id, tok, b)
					}
					hits, _ := json.Marshal(res.Hits)
					received = append(received, hits)
				}
				all := string(bytes.Join(received, []byte("\n")))

				// The oracle.
				forbid := func(tok, why string) {
					if strings.Contains(all, tok) {
						rt.Fatalf("%s: %s (ceiling %s, unmarked %s, refs %q): %s, yet %q reached %s:\n%s",
							phase, r.Name(), ceiling, unmarked, rc.References, why, tok, user, all)
					}
				}
				if defRed {
					forbid(defToken, "the statement marking definition is TLP:RED")
				}
				mayRead := map[string]bool{} // ids with a version the consumer may read
				for _, v := range hist {
					o := v.o
					why := ""
					switch {
					case v.deleted:
						why = o.id + " was deleted at the source"
					case hidden(o) != "":
						why = hidden(o)
					default:
						for _, u := range hist {
							if u.o.id == o.id && u.step > v.step && !u.deleted && hidden(u.o) != "" {
								why = fmt.Sprintf("%s: a newer version is withheld (%s)", o.id, hidden(u.o))
							}
						}
					}
					if why != "" {
						stats["withheld"]++
						for _, tok := range o.tokens {
							forbid(tok, why)
						}
						continue
					}
					mayRead[o.id] = true
					if _, ok := readable[o.id]; ok {
						stats["readable"]++
					}
					for _, gm := range o.granular {
						if gm.ref == "" {
							continue
						}
						l, known := stix.StandardTLP(gm.ref)
						hidden := known && !l.Within(ceiling) ||
							!known && gm.ref != nlStatement && unmarked == stix.TLPNone
						if !hidden {
							continue
						}
						for _, sel := range gm.selectors {
							for _, tok := range o.at[sel] {
								forbid(tok, fmt.Sprintf("%s: granular %s selects %s", o.id, gm.ref, sel))
							}
						}
					}
					if rc.Minimise.DropCustomProperties {
						for _, tok := range o.custom {
							forbid(tok, o.id+": x_ properties are dropped")
						}
					}
				}
				for id, raw := range readable {
					if !mayRead[id] && id != nlStatement && id != policy.GatewayIdentity && id != policy.RedactionExtension {
						rt.Fatalf("%s: %s: no version of %s may be read, yet %s can read %s", phase, r.Name(), id, user, raw)
					}
				}
				// References in what is received name what the consumer can
				// read, or read before (a reference to an object withdrawn
				// since reveals nothing new).
				if rc.References != policy.ReferencesAllowDangling {
					for id, raws := range versions {
						for _, raw := range raws {
							for _, ref := range nlRefs(rt, raw) {
								if _, ok := readable[ref]; !ok && !seen[i][ref] {
									rt.Fatalf("%s: %s: %s refers to %s, which %s cannot read and never could: %s", phase, r.Name(), id, ref, user, raw)
								}
							}
						}
					}
				}
				for id := range readable {
					seen[i][id] = true
				}
			}
		}
		run()
		check("the first envelope")

		// Then a history: deletes at the source, new versions (whose
		// markings may rise to RED, or fall), and route policy changes
		// (narrowing or widening), each followed by fan-out and the checks.
		steps := rapid.IntRange(0, 3).Draw(rt, "history")
		for step := 1; step <= steps; step++ {
			latest := map[string]*nlVer{}
			for _, v := range hist {
				if !v.deleted && (latest[v.o.id] == nil || v.step > latest[v.o.id].step) {
					latest[v.o.id] = v
				}
			}
			var newer []string
			for _, id := range ids {
				v := latest[id]
				if v == nil {
					continue
				}
				switch rapid.IntRange(0, 3).Draw(rt, "op") {
				case 0:
					if code, b := do(http.MethodDelete, "/exchange/collections/"+nlInbound+"/objects/"+id+"/", "producer", nil); code != http.StatusOK {
						rt.Fatalf("DELETE %s: %d %s", id, code, b)
					}
					for _, u := range hist {
						if u.o.id == id {
							u.deleted = true
						}
					}
				case 1:
					n := g.nlNewVersion(rt, v.o, step)
					hist = append(hist, &nlVer{o: n, step: step})
					newer = append(newer, n.raw)
				}
			}
			if len(newer) > 0 {
				post(newer)
			}
			if rapid.Bool().Draw(rt, "policy_change") {
				for i := range rcs {
					rc := nlRoute(rt)
					rc.ID, rc.Name, rc.Sources = rcs[i].ID, rcs[i].Name, rcs[i].Sources
					rcs[i] = rc
				}
				if routes, err = policy.CompileRoutes(rcs); err != nil {
					rt.Fatal(err)
				}
				w = fanout.New(fanout.Options{Store: st, Routes: routes, Markings: markings, Clock: func() time.Time { return nlNow }})
			}
			run()
			check(fmt.Sprintf("after history step %d", step))
		}
	})
}

// nlVersions decodes an envelope's objects: id -> every version's bytes,
// in the order given.
func nlVersions(t *rapid.T, b []byte) map[string][][]byte {
	var env struct {
		Objects []jsontext.Value `json:"objects"`
	}
	if err := json.Unmarshal(b, &env); err != nil {
		t.Fatalf("decoding %s: %v", b, err)
	}
	out := map[string][][]byte{}
	for _, o := range env.Objects {
		var x struct {
			ID string `json:"id"`
		}
		if err := json.Unmarshal(o, &x); err != nil {
			t.Fatal(err)
		}
		out[x.ID] = append(out[x.ID], o)
	}
	return out
}

// serveTAXII sends one request to h in-process, as a TAXII client would
// (Accept and, with a body, Content-Type), authenticated by auth.
func serveTAXII(h http.Handler, method, path string, body []byte, auth func(*http.Request)) (int, []byte) {
	req := httptest.NewRequest(method, path, bytes.NewReader(body))
	req.Header.Set("Accept", "application/taxii+json;version=2.1")
	if body != nil {
		req.Header.Set("Content-Type", "application/taxii+json;version=2.1")
	}
	auth(req)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	return w.Code, w.Body.Bytes()
}

// nlRoute draws a route's policy: a ceiling from TLP:CLEAR to
// TLP:AMBER+STRICT, an unmarked rule, reference handling, expiry and data
// minimisation (id, name and sources are the caller's).
func nlRoute(rt *rapid.T) policy.RouteConfig {
	ceiling := rapid.SampledFrom([]stix.TLP{stix.TLPClear, stix.TLPGreen, stix.TLPAmber, stix.TLPAmberStrict}).Draw(rt, "ceiling")
	rc := policy.RouteConfig{Ceiling: ceiling.String()}
	if rapid.Bool().Draw(rt, "unmarked_level") {
		rc.Unmarked = stix.TLP(rapid.IntRange(int(stix.TLPClear), int(ceiling)).Draw(rt, "unmarked")).String()
	}
	rc.References = rapid.SampledFrom([]string{"", policy.ReferencesTrim, policy.ReferencesWithhold, policy.ReferencesAllowDangling}).Draw(rt, "references")
	rc.Expiry = rapid.SampledFrom([]string{"", policy.ExpiryWithhold, policy.ExpiryIgnore}).Draw(rt, "expiry")
	if rapid.Bool().Draw(rt, "minimise") {
		rc.Minimise.DropTypes = []string{"identity:individual"}
		rc.Minimise.DropCustomProperties = true
	}
	return rc
}

// nlDecode decodes an envelope's objects by id (the last version wins;
// versions are one per id here).
func nlDecode(t *rapid.T, b []byte) map[string][]byte {
	var env struct {
		Objects []jsontext.Value `json:"objects"`
	}
	if err := json.Unmarshal(b, &env); err != nil {
		t.Fatalf("decoding %s: %v", b, err)
	}
	out := map[string][]byte{}
	for _, o := range env.Objects {
		var x struct {
			ID string `json:"id"`
		}
		if err := json.Unmarshal(o, &x); err != nil {
			t.Fatal(err)
		}
		out[x.ID] = o
	}
	return out
}

func nlKeys(m map[string][]byte) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// nlRefs returns the identifier references (*_ref, *_refs at any depth)
// in raw, marking references excepted.
func nlRefs(t *rapid.T, raw []byte) []string {
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatal(err)
	}
	var out []string
	var walk func(name string, v any)
	walk = func(name string, v any) {
		isRef := (strings.HasSuffix(name, "_ref") || strings.HasSuffix(name, "_refs")) &&
			name != "object_marking_refs" && name != "marking_ref"
		switch v := v.(type) {
		case string:
			if isRef {
				out = append(out, v)
			}
		case []any:
			for _, x := range v {
				walk(name, x)
			}
		case map[string]any:
			for k, x := range v {
				walk(k, x)
			}
		}
	}
	walk("", v)
	return out
}

// TestRedMarkingDefinitionNotPublished: a marking definition that is
// itself marked TLP:RED must not reach a consumer because a published
// object refers to it (a regression test: fan-out once published every
// referenced definition without looking at its own markings).
func TestRedMarkingDefinitionNotPublished(t *testing.T) {
	const secret = "RED-ONLY statement e2b1c"
	h, err := auth.HashPassword("x-pw")
	if err != nil {
		t.Fatal(err)
	}
	authn, err := auth.New([]auth.User{
		{Name: "producer", Organisation: "CERT-A", Roles: []string{"producer"}, PasswordHash: h},
		{Name: "consumer", Organisation: "Org", Roles: []string{"consumer"}, PasswordHash: h},
	}, auth.Options{})
	if err != nil {
		t.Fatal(err)
	}
	cfg := config.Default()
	cfg.Discovery = config.Discovery{Title: "t", Default: "exchange"}
	cfg.APIRoots = []config.APIRoot{{Name: "exchange", Title: "Exchange", MaxContentLength: 1 << 20, Collections: []config.Collection{
		{ID: nlInbound, Title: "Inbound", Writers: []string{"role:producer"}, Readers: []string{"role:producer"}},
		{ID: nlRouteColls[0], Title: "Out", Readers: []string{"consumer"}},
	}}}
	cfg.Users = []config.User{
		{Name: "producer", Organisation: "CERT-A", Roles: []string{"producer"}, PasswordHash: h},
		{Name: "consumer", Organisation: "Org", Roles: []string{"consumer"}, PasswordHash: h},
	}
	cfg.Routes = []policy.RouteConfig{{ID: nlRouteColls[0], Name: "out", Sources: []string{nlInbound}, Ceiling: "TLP:GREEN"}}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	routes, err := policy.CompileRoutes(cfg.Routes)
	if err != nil {
		t.Fatal(err)
	}
	st, err := bolt.Open(filepath.Join(t.TempDir(), "db"), bolt.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	markings := stix.NewMarkings()
	srv := server.New(server.Options{Config: &cfg, Store: st, Auth: authn, Markings: markings})
	do := func(method, path, user string, body []byte) (int, []byte) {
		return serveTAXII(srv, method, path, body, func(r *http.Request) { r.SetBasicAuth(user, "x-pw") })
	}
	env := `{"objects":[` +
		`{"type":"marking-definition","spec_version":"2.1","id":"` + nlStatement + `","created":"2024-01-01T00:00:00.000Z",` +
		`"definition_type":"statement","definition":{"statement":"` + secret + `"},"object_marking_refs":["` + stix.TLP2Red + `"]},` +
		`{"type":"indicator","spec_version":"2.1","id":"indicator--0c0ffee0-0000-4000-8000-000000000001","created":"2024-05-08T09:00:00.000Z",` +
		`"modified":"2024-05-08T09:00:00.000Z","pattern":"[domain-name:value = 'green.example']","pattern_type":"stix",` +
		`"valid_from":"2024-05-08T09:00:00Z","object_marking_refs":["` + stix.TLP2Green + `","` + nlStatement + `"]}]}`
	if code, b := do(http.MethodPost, "/exchange/collections/"+nlInbound+"/objects/", "producer", []byte(env)); code != http.StatusAccepted || !bytes.Contains(b, []byte(`"success_count":2`)) {
		t.Fatalf("POST: %d %s", code, b)
	}
	w := fanout.New(fanout.Options{Store: st, Routes: routes, Markings: markings, Clock: func() time.Time { return nlNow }})
	if _, err := w.RunOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	base := "/exchange/collections/" + nlRouteColls[0] + "/"
	for _, p := range []string{"objects/", "manifest/", "objects/" + nlStatement + "/", "objects/" + nlStatement + "/versions/"} {
		if _, b := do(http.MethodGet, base+p, "consumer", nil); bytes.Contains(b, []byte(secret)) {
			t.Errorf("GET %s: TLP:RED statement reached a TLP:GREEN consumer:\n%s", p, b)
		}
	}
}
