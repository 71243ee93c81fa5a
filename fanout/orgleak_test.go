package fanout_test

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"net/http"
	"net/url"
	"path/filepath"
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
	"github.com/ctigate/ctigate/store"
	"github.com/ctigate/ctigate/store/bolt"
)

// The topology of TestNoLeakOrganisations: up to three producing
// organisations, each with an inbound collection of its own, and up to two
// routes reading some of them into published collections.
var (
	olInbound = []string{
		"24f70a31-7be5-4fdd-8353-9784877646c1",
		"5b6b0f0e-3c2a-4c38-9f0e-7a1d2c3b4e5f",
		"6c7d8e9f-0a1b-4c2d-8e3f-4a5b6c7d8e9f",
	}
	olPublished = []string{
		"1dae5e88-4b59-4503-a9cf-2e649dd6544c",
		"17f28d77-a964-471e-ab40-76087911370a",
	}
)

// An SCO with a deterministic id (a UUIDv5 of its value), which several
// organisations may submit: "already stored" would tell one that another
// reported the address.
const (
	olSCO   = `{"type":"ipv4-addr","spec_version":"2.1","id":"ipv4-addr--ff26c055-6336-5bc5-b98d-13d6226742dd","value":"198.51.100.3"}`
	olSCOID = "ipv4-addr--ff26c055-6336-5bc5-b98d-13d6226742dd"
)

type olUser struct {
	name, org string
	roles     []string
}

func (u olUser) token() string { return "tok-" + u.name + "-0123456789abcdef" }

// TestNoLeakOrganisations is the organisation-wide no-leak property. Each
// check draws producing organisations (their producer, analyst, auditor
// and policy admin), consumer organisations, inbound collections (one per
// producing organisation, readers and writers drawn from every principal
// form, bare roles and "*" included), routes with published collections
// read by drawn principals, and objects (nlGen's, plus an address SCO with
// a deterministic id that several organisations may submit). Each producer
// posts to its inbound collection; fan-out and the indexer run. Then every
// user sends every GET request the route table (server.Routes) has, with
// every collection, object, status and search value filled in, and tries
// to DELETE every object everywhere. Up to two more rounds follow, each
// after a history step: each organisation posts new versions (new values,
// new markings) of what it still holds, the routes' policies may change,
// fan-out (withdrawing what deletes, newer versions and narrower policies
// take back) and the indexer run. The property, for every user and round:
//
//   - no byte of any response holds an id or value of an object submitted
//     only by other organisations, unless a route published it into a
//     collection whose readers name the user or the user's organisation
//     (by user, org:ORG or role:ROLE@ORG) and the value is in what is
//     published there now (or, for an id, was: the withdrawn list names
//     what was withdrawn);
//   - no other organisation's object version is removed by the user;
//   - every receipt says "added" for every object the organisation
//     submits for the first time, whoever else submitted it.
//
// A GET route the test does not know how to fill in fails it, so a new
// endpoint cannot escape the property.
//
//	go test ./fanout -run TestNoLeakOrganisations -rapid.checks=1000
func TestNoLeakOrganisations(t *testing.T) {
	// Each check sends a few thousand requests: unless -rapid.checks is
	// given, run 25 (`make test` runs it again with 200).
	if !olFlagSet("rapid.checks") {
		if err := flag.Set("rapid.checks", "25"); err != nil {
			t.Fatal(err)
		}
		defer func() { _ = flag.Set("rapid.checks", "100") }()
	}
	dir := t.TempDir()
	var iter atomic.Int64
	rapid.Check(t, func(rt *rapid.T) {
		nProd := rapid.IntRange(2, 3).Draw(rt, "producers")
		var users []olUser
		for i := range nProd {
			org := "CERT-" + strconv.Itoa(i)
			for _, role := range []string{"producer", "analyst", "auditor", "policy-admin"} {
				users = append(users, olUser{name: role + "-" + strconv.Itoa(i), org: org, roles: []string{role}})
			}
		}
		for j := range 2 {
			org := "Police-" + strconv.Itoa(j)
			users = append(users, olUser{name: "consumer-" + strconv.Itoa(j), org: org, roles: []string{"consumer", "analyst"}},
				olUser{name: "auditor-p" + strconv.Itoa(j), org: org, roles: []string{"auditor", "policy-admin"}})
		}
		var cfgUsers []config.User
		var authUsers []auth.User
		for _, u := range users {
			cfgUsers = append(cfgUsers, config.User{Name: u.name, Organisation: u.org, Roles: u.roles, TokenSHA256: []string{auth.TokenDigest(u.token())}})
			authUsers = append(authUsers, auth.User{Name: u.name, Organisation: u.org, Roles: u.roles, TokenDigests: []string{auth.TokenDigest(u.token())}})
		}

		var colls []config.Collection
		for i := range nProd {
			org, n := "CERT-"+strconv.Itoa(i), strconv.Itoa(i)
			writer := rapid.SampledFrom([]string{"role:producer@" + org, "producer-" + n, "org:" + org}).Draw(rt, "writers")
			readers := rapid.SliceOfNDistinct(rapid.SampledFrom([]string{
				"role:producer@" + org, "role:analyst@" + org, "org:" + org, "producer-" + n,
				"role:producer", "role:analyst", "role:consumer", "role:auditor", "*",
			}), 1, 4, rapid.ID[string]).Draw(rt, "readers")
			colls = append(colls, config.Collection{ID: olInbound[i], Title: "Inbound " + org, Writers: []string{writer}, Readers: readers})
		}
		var rcs []policy.RouteConfig
		for j := range rapid.IntRange(1, 2).Draw(rt, "routes") {
			var sources []string
			for i := range nProd {
				if rapid.Bool().Draw(rt, "source") {
					sources = append(sources, olInbound[i])
				}
			}
			if len(sources) == 0 {
				sources = []string{olInbound[0]}
			}
			ceiling := rapid.SampledFrom([]stix.TLP{stix.TLPGreen, stix.TLPAmber, stix.TLPAmberStrict}).Draw(rt, "ceiling")
			rc := policy.RouteConfig{ID: olPublished[j], Name: "route-" + strconv.Itoa(j), Sources: sources, Ceiling: ceiling.String()}
			if rapid.Bool().Draw(rt, "unmarked_level") {
				rc.Unmarked = stix.TLPGreen.String()
			}
			rc.References = rapid.SampledFrom([]string{policy.ReferencesTrim, policy.ReferencesAllowDangling}).Draw(rt, "references")
			rcs = append(rcs, rc)
			readers := rapid.SliceOfNDistinct(rapid.SampledFrom([]string{
				"org:Police-0", "org:Police-1", "consumer-0", "role:consumer@Police-1",
				"role:analyst", "role:consumer", "role:auditor", "*",
			}), 1, 3, rapid.ID[string]).Draw(rt, "published_readers")
			colls = append(colls, config.Collection{ID: rc.ID, Title: rc.Name, Readers: readers})
		}
		cfg := config.Default()
		cfg.Discovery = config.Discovery{Title: "organisations", Default: "exchange"}
		cfg.APIRoots = []config.APIRoot{{Name: "exchange", Title: "Exchange", MaxContentLength: 1 << 20, Collections: colls}}
		cfg.Users = cfgUsers
		cfg.Routes = rcs

		// A collection several organisations could write to is refused.
		shared := cfg
		shared.APIRoots = slices.Clone(cfg.APIRoots)
		shared.APIRoots[0].Collections = slices.Clone(colls)
		shared.APIRoots[0].Collections[0].Writers = rapid.SampledFrom([][]string{{"role:producer"}, {"*"}, {"producer-0", "org:CERT-1"}}).Draw(rt, "shared_writers")
		if err := shared.Validate(); err == nil || !strings.Contains(err.Error(), "collections[0].writers: users of several organisations") {
			rt.Fatalf("a collection written by several organisations was not refused: %v", err)
		}
		if err := cfg.Validate(); err != nil {
			rt.Fatalf("config: %v", err)
		}
		routes, err := policy.CompileRoutes(cfg.Routes)
		if err != nil {
			rt.Fatal(err)
		}

		// Objects: each organisation's own, and maybe the shared SCO.
		g := &nlGen{}
		submitted := map[string]map[string]bool{} // id -> organisations
		tokens := map[string][]string{}           // id -> its values
		envelopes := make([]string, nProd)
		var allIDs, searchValues []string
		latest := make([][]*nlObj, nProd) // each organisation's objects, newest versions
		for i := range nProd {
			org := "CERT-" + strconv.Itoa(i)
			var ids, raws []string
			for k := range rapid.IntRange(1, 3).Draw(rt, "objects") {
				o := g.object(rt, i*100+k, ids)
				latest[i] = append(latest[i], o)
				ids = append(ids, o.id)
				raws = append(raws, o.raw)
				tokens[o.id] = o.tokens
				submitted[o.id] = map[string]bool{org: true}
				if o.typ == "indicator" {
					searchValues = append(searchValues, o.at["pattern"][0]+".example")
				}
			}
			if rapid.Bool().Draw(rt, "sco") {
				raws = append(raws, olSCO)
				if submitted[olSCOID] == nil {
					submitted[olSCOID] = map[string]bool{}
				}
				submitted[olSCOID][org] = true
				ids = append(ids, olSCOID)
			}
			envelopes[i] = `{"objects":[` + strings.Join(raws, ",") + `]}`
			allIDs = append(allIDs, ids...)
		}
		allIDs = slices.Compact(slices.Sorted(slices.Values(allIDs)))
		tokens[olSCOID] = []string{"198.51.100.3"}
		searchValues = append(searchValues, "198.51.100.3")

		// Gateway, fan-out, indexer.
		n := iter.Add(1)
		st, err := bolt.Open(filepath.Join(dir, fmt.Sprintf("ol-%d.db", n)), bolt.Options{NoSync: true, TrimInterval: -1, TrimAfterBytes: -1})
		if err != nil {
			rt.Fatal(err)
		}
		defer st.Close()
		six, err := bolt.OpenIndex(filepath.Join(dir, fmt.Sprintf("ol-%d.search.db", n)), bolt.IndexOptions{NoSync: true})
		if err != nil {
			rt.Fatal(err)
		}
		defer six.Close()
		sst := search.Join(st, six)
		authn, err := auth.New(authUsers, auth.Options{})
		if err != nil {
			rt.Fatal(err)
		}
		markings := stix.NewMarkings()
		srv := server.New(server.Options{Config: &cfg, Store: st, Auth: authn, Markings: markings, Ledger: st, Search: search.NewSearcher(sst)})
		do := func(method, path string, u olUser, body []byte) (int, []byte) {
			return serveTAXII(srv, method, path, body, func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+u.token()) })
		}
		user := func(name string) olUser {
			for _, u := range users {
				if u.name == name {
					return u
				}
			}
			rt.Fatalf("no user %s", name)
			return olUser{}
		}
		var statuses []string
		for i := range nProd {
			p := user("producer-" + strconv.Itoa(i))
			// Into another organisation's inbound collection: refused.
			other := olInbound[(i+1)%nProd]
			if code, b := do(http.MethodPost, "/exchange/collections/"+other+"/objects/", p, []byte(envelopes[i])); code != http.StatusNotFound && code != http.StatusForbidden {
				rt.Fatalf("%s wrote into %s: %d %s", p.name, other, code, b)
			}
			code, b := do(http.MethodPost, "/exchange/collections/"+olInbound[i]+"/objects/", p, []byte(envelopes[i]))
			var status struct {
				ID        string `json:"id"`
				Successes []struct {
					ID      string `json:"id"`
					Message string `json:"message"`
				} `json:"successes"`
				Failures []jsontext.Value `json:"failures"`
			}
			if code != http.StatusAccepted || json.Unmarshal(b, &status) != nil || len(status.Failures) > 0 {
				rt.Fatalf("%s POST: %d %s", p.name, code, b)
			}
			for _, s := range status.Successes {
				if !strings.HasPrefix(s.Message, "added;") {
					rt.Fatalf("%s's receipt for %s, which its organisation submits for the first time: %q", p.name, s.ID, s.Message)
				}
			}
			statuses = append(statuses, status.ID)
		}
		w := fanout.New(fanout.Options{Store: st, Routes: routes, Markings: markings, Clock: func() time.Time { return nlNow }})
		if _, err := w.RunOnce(context.Background()); err != nil {
			rt.Fatalf("RunOnce: %v", err)
		}
		var collIDs []string
		for _, c := range colls {
			collIDs = append(collIDs, c.ID)
		}
		ix := search.NewIndexer(search.IndexerOptions{Store: sst, Collections: collIDs, Markings: markings})
		if _, err := ix.RunOnce(context.Background()); err != nil {
			rt.Fatalf("indexing: %v", err)
		}
		versions := func() map[string]int { // id@collection -> versions stored
			out := map[string]int{}
			for _, c := range collIDs {
				p, err := st.Objects(context.Background(), c, store.Query{Versions: []store.VersionMatch{{Kind: store.All}}, Limit: 10000})
				if err != nil {
					rt.Fatal(err)
				}
				for _, o := range p.Objects {
					out[o.ID+"@"+c]++
				}
			}
			return out
		}
		stored := versions()

		// Every GET of the route table, filled in.
		fill := map[string]func() []string{
			"/healthz":             func() []string { return []string{"/healthz"} },
			"/readyz":              func() []string { return []string{"/readyz"} },
			"/api/v1/openapi.json": func() []string { return []string{"/api/v1/openapi.json"} },
			"/taxii2/":             func() []string { return []string{"/taxii2/"} },
			"/:root/":              func() []string { return []string{"/exchange/"} },
			"/:root/collections/":  func() []string { return []string{"/exchange/collections/"} },
			"/:root/status/:status/": func() []string {
				return olEach(statuses, func(s string) string { return "/exchange/status/" + s + "/" })
			},
			"/:root/collections/:collection/": func() []string {
				return olEach(collIDs, func(c string) string { return "/exchange/collections/" + c + "/" })
			},
			"/:root/collections/:collection/manifest/": func() []string {
				return olEach(collIDs, func(c string) string { return "/exchange/collections/" + c + "/manifest/?match[version]=all" })
			},
			"/:root/collections/:collection/objects/": func() []string {
				return olEach(collIDs, func(c string) string { return "/exchange/collections/" + c + "/objects/?match[version]=all" })
			},
			"/:root/collections/:collection/objects/:object/": func() []string {
				return olCross(collIDs, allIDs, "/exchange/collections/%s/objects/%s/")
			},
			"/:root/collections/:collection/objects/:object/versions/": func() []string {
				return olCross(collIDs, allIDs, "/exchange/collections/%s/objects/%s/versions/")
			},
			"/api/v1/decisions": func() []string {
				return append([]string{"/api/v1/decisions?limit=1000"}, olEach(allIDs, func(id string) string { return "/api/v1/decisions?object=" + id })...)
			},
			"/api/v1/audit/entries": func() []string {
				return append([]string{"/api/v1/audit/entries?limit=10000"}, olEach(allIDs, func(id string) string { return "/api/v1/audit/entries?object=" + id })...)
			},
			"/api/v1/audit/export": func() []string { return []string{"/api/v1/audit/export"} },
			"/api/v1/statuses/:status/decisions": func() []string {
				return olEach(statuses, func(s string) string { return "/api/v1/statuses/" + s + "/decisions" })
			},
			"/api/v1/collections/:collection/withdrawn": func() []string {
				return olEach(collIDs, func(c string) string { return "/api/v1/collections/" + c + "/withdrawn" })
			},
			"/api/v1/audit/evidence/:object": func() []string {
				return olEach(allIDs, func(id string) string { return "/api/v1/audit/evidence/" + id })
			},
			"/api/v1/search": func() []string {
				return olEach(searchValues, func(v string) string { return "/api/v1/search?value=" + url.QueryEscape(v) })
			},
		}
		// Rounds: the first as posted; each later one after a history
		// step (new versions from each organisation of what it still
		// holds, maybe a policy change, fan-out and indexing).
		rounds := rapid.IntRange(1, 3).Draw(rt, "rounds")
		for round := range rounds {
			if round > 0 {
				for i := range nProd {
					var raws []string
					for k, o := range latest[i] {
						p, err := st.Objects(context.Background(), olInbound[i], store.Query{IDs: []string{o.id}, WithoutRaw: true})
						if err != nil {
							rt.Fatal(err)
						}
						if len(p.Objects) == 0 || !rapid.Bool().Draw(rt, "new_version") {
							continue // deleted by its organisation, or left as it is
						}
						n := g.nlNewVersion(rt, o, round)
						latest[i][k] = n
						tokens[n.id] = append(tokens[n.id], n.tokens...)
						raws = append(raws, n.raw)
						if n.typ == "indicator" {
							searchValues = append(searchValues, n.at["pattern"][0]+".example")
						}
					}
					if len(raws) == 0 {
						continue
					}
					p := user("producer-" + strconv.Itoa(i))
					if code, b := do(http.MethodPost, "/exchange/collections/"+olInbound[i]+"/objects/", p, []byte(`{"objects":[`+strings.Join(raws, ",")+`]}`)); code != http.StatusAccepted || strings.Contains(string(b), `"failures"`) {
						rt.Fatalf("%s POST of new versions: %d %s", p.name, code, b)
					}
				}
				if rapid.Bool().Draw(rt, "policy_change") {
					for j := range rcs {
						rcs[j].Ceiling = rapid.SampledFrom([]stix.TLP{stix.TLPGreen, stix.TLPAmber, stix.TLPAmberStrict}).Draw(rt, "ceiling").String()
						rcs[j].Unmarked = rapid.SampledFrom([]string{"", stix.TLPGreen.String()}).Draw(rt, "unmarked")
					}
					if routes, err = policy.CompileRoutes(rcs); err != nil {
						rt.Fatal(err)
					}
					w = fanout.New(fanout.Options{Store: st, Routes: routes, Markings: markings, Clock: func() time.Time { return nlNow }})
				}
				if _, err := w.RunOnce(context.Background()); err != nil {
					rt.Fatalf("RunOnce: %v", err)
				}
				if _, err := ix.RunOnce(context.Background()); err != nil {
					rt.Fatalf("indexing: %v", err)
				}
				stored = versions()
			}
			var gets []string
			for _, r := range srv.Routes() {
				switch r.Method {
				case http.MethodGet:
					f := fill[r.Path]
					if f == nil {
						rt.Fatalf("GET %s is not covered by this property: add it to fill", r.Path)
					}
					gets = append(gets, f()...)
				case http.MethodPost, http.MethodDelete:
					// POST is the producers' above, DELETE every user's below.
				default:
					if r.Method != "echo_route_not_found" {
						rt.Fatalf("%s %s is not covered by this property", r.Method, r.Path)
					}
				}
			}

			for _, u := range users {
				// What routes published into collections naming u's
				// organisation u may receive, and its organisation's own.
				var allowed bytes.Buffer
				for i, c := range colls {
					if i < nProd || !olNames(u, c.Readers, users) {
						continue
					}
					p, err := st.Objects(context.Background(), c.ID, store.Query{Versions: []store.VersionMatch{{Kind: store.All}}, Limit: 10000})
					if err != nil {
						rt.Fatal(err)
					}
					// What it withdrew was published to it: the id (and
					// version) of each, which the withdrawn list gives.
					ts, _, err := st.Tombstones(context.Background(), c.ID, time.Time{}, 10000)
					if err != nil {
						rt.Fatal(err)
					}
					for _, t := range ts {
						allowed.WriteString(t.ID + "\n")
					}
					for _, o := range p.Objects {
						allowed.Write(o.Raw)
						allowed.WriteString(o.ID + "\n")
					}
				}
				var received bytes.Buffer
				for _, path := range gets {
					_, b := do(http.MethodGet, path, u, nil)
					if strings.HasPrefix(path, "/api/v1/search") {
						// Only the hits: the response repeats the value asked for.
						var res struct {
							Hits jsontext.Value `json:"hits"`
						}
						_ = json.Unmarshal(b, &res)
						b = res.Hits
					}
					received.Write(b)
					received.WriteByte('\n')
				}
				for _, id := range allIDs {
					for _, c := range collIDs {
						_, b := do(http.MethodDelete, "/exchange/collections/"+c+"/objects/"+id+"/", u, nil)
						received.Write(b)
					}
				}
				got := received.String()
				for id, orgs := range submitted {
					if orgs[u.org] {
						continue // its organisation submitted it too
					}
					for _, v := range append([]string{id}, tokens[id]...) {
						if strings.Contains(got, v) && !bytes.Contains(allowed.Bytes(), []byte(v)) {
							i := strings.Index(got, v)
							rt.Fatalf("%s (%s) received %q of %s, submitted by %v only, not published to a collection naming it:\n…%s…",
								u.name, u.org, v, id, slices.Sorted(olKeys(orgs)), got[max(0, i-300):min(len(got), i+200)])
						}
					}
				}
				// Deletes: only versions its own organisation submitted may go
				// (re-read after each user, then restored by nothing: a user
				// who deleted its own organisation's objects changes what the
				// next users see, which the property allows).
				after := versions()
				for k, n := range stored {
					id, coll, _ := strings.Cut(k, "@")
					if after[k] < n && !olOwnDelete(u, coll, id, submitted, colls, nProd) {
						rt.Fatalf("%s (%s) deleted %s from %s", u.name, u.org, id, coll)
					}
				}
				stored = after
			}
		}
	})
}

// olNames reports whether a principal of readers names u's organisation:
// org:ORG or role:ROLE@ORG of it, or a user of it.
func olNames(u olUser, readers []string, users []olUser) bool {
	for _, s := range readers {
		p, err := auth.ParsePrincipal(s)
		if err != nil || !p.Named() {
			continue
		}
		if p.Org == u.org {
			return true
		}
		for _, v := range users {
			if p.User == v.name && v.org == u.org {
				return true
			}
		}
	}
	return false
}

// olOwnDelete reports whether u's deleting id from coll is a delete of its
// own organisation's: an inbound collection of u's organisation.
func olOwnDelete(u olUser, coll, id string, submitted map[string]map[string]bool, colls []config.Collection, nProd int) bool {
	for i := range nProd {
		if colls[i].ID == coll {
			return "CERT-"+strconv.Itoa(i) == u.org && submitted[id][u.org]
		}
	}
	return false
}

func olFlagSet(name string) (set bool) {
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

func olEach(xs []string, f func(string) string) []string {
	out := make([]string, len(xs))
	for i, x := range xs {
		out[i] = f(x)
	}
	return out
}

func olCross(colls, ids []string, format string) []string {
	var out []string
	for _, c := range colls {
		for _, id := range ids {
			out = append(out, fmt.Sprintf(format, c, id))
		}
	}
	return out
}

func olKeys(m map[string]bool) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}
