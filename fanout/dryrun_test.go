package fanout_test

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-json-experiment/json"
	"pgregory.net/rapid"

	"github.com/ctigate/ctigate/auth"
	"github.com/ctigate/ctigate/config"
	"github.com/ctigate/ctigate/custody"
	"github.com/ctigate/ctigate/fanout"
	"github.com/ctigate/ctigate/gateway"
	"github.com/ctigate/ctigate/policy"
	"github.com/ctigate/ctigate/server"
	"github.com/ctigate/ctigate/stix"
	"github.com/ctigate/ctigate/store"
	"github.com/ctigate/ctigate/store/bolt"
)

// drGateway is one gateway of the dry-run tests: an inbound collection
// cert-a writes, a route rc into a published collection, a worker.
type drGateway struct {
	srv    *server.Server
	st     *bolt.Store
	worker *fanout.Worker
	route  *policy.Route
}

func newDRGateway(t interface {
	Fatalf(string, ...any)
	Fatal(...any)
}, path string, rc policy.RouteConfig) *drGateway {
	cfg := config.Default()
	cfg.Discovery = config.Discovery{Title: "dry run", Default: "exchange"}
	cfg.APIRoots = []config.APIRoot{{Name: "exchange", Title: "Exchange", MaxContentLength: 1 << 20, Collections: []config.Collection{
		{ID: nlInbound, Title: "Inbound", Writers: []string{"cert-a"}, Readers: []string{"cert-a"}},
		{ID: nlRouteColls[0], Title: "Out", Readers: []string{"org:Police"}},
	}}}
	cfg.Users = []config.User{
		{Name: "cert-a", Organisation: "CERT-A", Roles: []string{"producer"}, TokenSHA256: []string{auth.TokenDigest("cert-a-token-0123456789abcdef")}},
		{Name: "police", Organisation: "Police", Roles: []string{"consumer"}, TokenSHA256: []string{auth.TokenDigest("police-token-0123456789abcdef")}},
	}
	rc.ID, rc.Sources = nlRouteColls[0], []string{nlInbound}
	cfg.Routes = []policy.RouteConfig{rc}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("config: %v", err)
	}
	routes, err := policy.CompileRoutes(cfg.Routes)
	if err != nil {
		t.Fatal(err)
	}
	var users []auth.User
	for _, u := range cfg.Users {
		users = append(users, auth.User{Name: u.Name, Organisation: u.Organisation, Roles: u.Roles, TokenDigests: u.TokenSHA256})
	}
	authn, err := auth.New(users, auth.Options{})
	if err != nil {
		t.Fatal(err)
	}
	st, err := bolt.Open(path, bolt.Options{NoSync: true, TrimInterval: -1, TrimAfterBytes: -1})
	if err != nil {
		t.Fatal(err)
	}
	markings := stix.NewMarkings()
	clock := func() time.Time { return nlNow }
	return &drGateway{
		srv:    server.New(server.Options{Config: &cfg, Store: st, Auth: authn, Markings: markings, Clock: clock}),
		st:     st,
		worker: fanout.New(fanout.Options{Store: st, Routes: routes, Markings: markings, Clock: clock}),
		route:  routes[0],
	}
}

func (g *drGateway) as(user string) func(*http.Request) {
	return func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+user+"-token-0123456789abcdef") }
}

// post posts objs to the inbound collection and runs fan-out.
func (g *drGateway) post(t interface{ Fatalf(string, ...any) }, objs []string) {
	code, b := serveTAXII(g.srv, http.MethodPost, "/exchange/collections/"+nlInbound+"/objects/", []byte(`{"objects":[`+strings.Join(objs, ",")+`]}`), g.as("cert-a"))
	if code != http.StatusAccepted || strings.Contains(string(b), `"failures"`) {
		t.Fatalf("POST: %d %s", code, b)
	}
	if _, err := g.worker.RunOnce(context.Background()); err != nil {
		t.Fatalf("RunOnce: %v", err)
	}
}

// dryRun asks the server what the route would do with objs.
func (g *drGateway) dryRun(t interface{ Fatalf(string, ...any) }, objs []string) []gateway.Result {
	code, b := serveTAXII(g.srv, http.MethodPost, "/api/v1/routes/"+g.route.Name()+"/dry-run", []byte(`{"objects":[`+strings.Join(objs, ",")+`]}`), g.as("cert-a"))
	var resp struct {
		Results []gateway.Result `json:"results"`
		Summary gateway.Summary  `json:"summary"`
	}
	if code != http.StatusOK || json.Unmarshal(b, &resp) != nil || resp.Summary.State != "live" {
		t.Fatalf("dry run: %d %s", code, b)
	}
	return resp.Results
}

// decisions returns fan-out's decisions recorded in the custody ledger
// after seq, by "id version", leaving out marking definitions published
// along with objects, and the seq of the last.
func (g *drGateway) decisions(t interface{ Fatalf(string, ...any) }, after uint64) (map[string]custody.Entry, uint64) {
	ds, err := g.st.LedgerEntries(context.Background(), store.LedgerQuery{After: after, Actions: store.DecisionActions(), Limit: store.MaxLedgerLimit})
	if err != nil {
		t.Fatalf("decisions: %v", err)
	}
	out := map[string]custody.Entry{}
	for _, d := range ds {
		after = d.Seq
		if strings.HasPrefix(d.Detail, "marking definition published with ") {
			continue
		}
		out[d.ObjectID+" "+d.ObjectVersion] = d
	}
	return out, after
}

var drActions = map[string]string{
	gateway.DecisionPublish:         store.ActionPublished,
	gateway.DecisionPublishRedacted: store.ActionRedacted,
	gateway.DecisionWithhold:        store.ActionWithheld,
}

// TestDryRunAgreesWithFanOut: for generated routes, a prior state (a
// bundle posted and fanned out), and a second bundle (new objects that
// refer to the first ones, and new versions of them, some revoked), the
// server-side dry run of the second bundle gives, for every object, the
// decision, reason and removed properties that fan-out then records when
// the bundle is posted.
//
//	go test ./fanout -run TestDryRunAgreesWithFanOut -rapid.checks=1000
func TestDryRunAgreesWithFanOut(t *testing.T) {
	dir := t.TempDir()
	var n atomic.Int64
	rapid.Check(t, func(rt *rapid.T) {
		rc := nlRoute(rt)
		rc.Name = "route"
		g := newDRGateway(rt, filepath.Join(dir, fmt.Sprintf("dr-%d.db", n.Add(1))), rc)
		defer g.st.Close()

		// Prior state.
		gen := &nlGen{}
		def := `{"type":"marking-definition","spec_version":"2.1","id":"` + nlStatement + `","created":"2024-01-01T00:00:00.000Z",` +
			`"definition_type":"statement","definition":{"statement":"Copyright ` + gen.token() + `"}}`
		first := []string{def}
		var ids []string
		for i := range rapid.IntRange(1, 5).Draw(rt, "first") {
			o := gen.object(rt, i, ids)
			ids = append(ids, o.id)
			first = append(first, o.raw)
		}
		g.post(rt, first)
		_, seq := g.decisions(rt, 0)

		// The second bundle: new versions of earlier objects (some
		// revoked), and new objects referring to earlier ones.
		var second []string
		for i, raw := range first[1:] {
			if !rapid.Bool().Draw(rt, "new_version") {
				continue
			}
			v2 := strings.Replace(raw, `"modified":"2024-05-08T09:00:00.000Z"`, `"modified":"2024-06-0`+strconv.Itoa(1+i%9)+`T00:00:00.000Z"`, 1)
			if rapid.Bool().Draw(rt, "revoked") {
				v2 = strings.TrimSuffix(v2, "}") + `,"revoked":true}`
			}
			second = append(second, v2)
		}
		for i := range rapid.IntRange(0, 4).Draw(rt, "second") {
			o := gen.object(rt, 100+i, ids)
			second = append(second, o.raw)
		}
		if len(second) == 0 {
			return
		}
		results := g.dryRun(rt, second)
		g.post(rt, second)
		recorded, _ := g.decisions(rt, seq)
		if len(results) != len(second) {
			rt.Fatalf("dry run gave %d results for %d objects", len(results), len(second))
		}
		for _, r := range results {
			d, ok := recorded[r.ID+" "+r.Version]
			switch {
			case r.Decision == gateway.DecisionRejected:
				rt.Fatalf("the dry run rejects %s, which ingest stored: %s", r.ID, r.Detail)
			case len(r.Awaiting) > 0:
				// Fan-out waits for what the object refers to and the
				// producer has not submitted: no decision yet.
				if ok {
					rt.Fatalf("the dry run says %s waits for %v, yet fan-out decided it: %+v", r.ID, r.Awaiting, d)
				}
				continue
			case !ok:
				rt.Fatalf("fan-out recorded no decision about %s %s", r.ID, r.Version)
			case drActions[r.Decision] != d.Action || r.Reason != d.Reason && d.Action == store.ActionWithheld:
				rt.Fatalf("%s %s: dry run %s (%s: %s), fan-out %s (%s: %s)", r.ID, r.Version, r.Decision, r.Reason, r.Detail, d.Action, d.Reason, d.Detail)
			}
			var removed []string
			for _, x := range r.Removed {
				removed = append(removed, x.Path)
			}
			if strings.Join(removed, " ") != strings.Join(d.Removed, " ") || r.SHA256 != d.SHA256 {
				rt.Fatalf("%s: dry run removes %v (sha256 %s), fan-out %v (%s)", r.ID, removed, r.SHA256, d.Removed, d.SHA256)
			}
		}
	})
}

// TestDryRunRevokedReceived is the case that drifted: a revoked later
// version of an object the route already received is always delivered
// (even when it has expired since), which fan-out did and the dry run did
// not. The server-side dry run, seeing the route's state, now says publish,
// as fan-out does; the offline check cannot see the state and says so.
func TestDryRunRevokedReceived(t *testing.T) {
	g := newDRGateway(t, filepath.Join(t.TempDir(), "db"), policy.RouteConfig{Name: "route", Ceiling: "TLP:AMBER"})
	defer g.st.Close()
	const id = "indicator--0c0ffee0-0000-4000-8000-0000000000ff"
	v := func(modified, until, extra string) string {
		return `{"type":"indicator","spec_version":"2.1","id":"` + id + `","created":"2024-05-08T09:00:00.000Z","modified":"` + modified + `",` +
			`"pattern":"[domain-name:value = 'revoked.example']","pattern_type":"stix","valid_from":"2024-05-08T09:00:00Z",` +
			`"valid_until":"` + until + `","object_marking_refs":["` + stix.TLP2Green + `"]` + extra + `}`
	}
	g.post(t, []string{v("2024-05-08T09:00:00.000Z", "2027-01-01T00:00:00Z", "")})
	_, seq := g.decisions(t, 0)
	v2 := v("2024-06-01T00:00:00.000Z", "2025-01-01T00:00:00Z", `,"revoked":true`) // expired by nlNow

	items, err := stix.DecodeEnvelope([]byte(`{"objects":[` + v2 + `]}`))
	if err != nil {
		t.Fatal(err)
	}
	offline, sum, err := gateway.DryRun(items, gateway.Decider{Markings: stix.NewMarkings(), Route: g.route, Now: nlNow}, "CERT-A")
	if err != nil || sum.State != "offline" || offline[0].Decision != gateway.DecisionWithhold || offline[0].Reason != string(policy.ReasonExpired) {
		t.Fatalf("offline: %+v %+v %v", offline, sum, err)
	}
	live := g.dryRun(t, []string{v2})
	if live[0].Decision != gateway.DecisionPublish {
		t.Errorf("server-side dry run: %+v, want publish", live[0])
	}
	g.post(t, []string{v2})
	recorded, _ := g.decisions(t, seq)
	if d := recorded[id+" 2024-06-01T00:00:00.000Z"]; d.Action != store.ActionPublished {
		t.Errorf("fan-out: %+v, want published", d)
	}
}
