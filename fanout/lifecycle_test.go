package fanout

import (
	"bytes"
	"context"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/ctigate/ctigate/custody"
	"github.com/ctigate/ctigate/policy"
	"github.com/ctigate/ctigate/retention"
	"github.com/ctigate/ctigate/stix"
	"github.com/ctigate/ctigate/store"
)

// produced returns objs as submitted by org.
func produced(org string, objs ...store.Object) []store.Object {
	out := slices.Clone(objs)
	for i := range out {
		out[i].Producer = org
	}
	return out
}

// newOrgEnv is newEnv whose statement marking is CERT-A's, the producer
// of the objects the test adds.
func newOrgEnv(t *testing.T) *env {
	e := newEnv(t)
	def := produced("CERT-A", statementDef())[0]
	if err := e.markings.Of("CERT-A").Add(def.Raw); err != nil {
		t.Fatal(err)
	}
	if _, err := e.st.DeleteObject(context.Background(), inbound, def.ID, nil, nil); err != nil {
		t.Fatal(err)
	}
	e.add(def)
	return e
}

// versionOf returns o as a later version (modified v) with extra members
// in place of its markings.
func versionOf(o store.Object, v time.Time, markings string) store.Object {
	raw := string(o.Raw)
	if i := strings.Index(raw, `,"object_marking_refs"`); i >= 0 {
		raw = raw[:i] + "}"
	}
	raw = strings.Replace(raw, `"modified":"2026-01-01T00:00:00.000Z"`, `"modified":"`+v.Format("2006-01-02T15:04:05.000Z")+`"`, 1)
	raw = strings.TrimSuffix(raw, "}") + markings + "}"
	n := obj(o.ID, o.Type, v, raw)
	n.Producer = o.Producer
	return n
}

// tombstones returns the reasons of coll's tombstones, by id.
func (e *env) tombstones(coll string) map[string][]string {
	e.t.Helper()
	ts, _, err := e.st.Tombstones(context.Background(), coll, time.Time{}, 10000)
	if err != nil {
		e.t.Fatal(err)
	}
	out := map[string][]string{}
	for _, t := range ts {
		out[t.ID] = append(out[t.ID], t.Kind+":"+t.Reason)
	}
	return out
}

func (e *env) withdrawnEntries(id string) []custody.Entry {
	e.t.Helper()
	es, err := e.st.LedgerEntries(context.Background(), store.LedgerQuery{ObjectID: id, Action: custody.Withdrawn})
	if err != nil {
		e.t.Fatal(err)
	}
	return es
}

func (e *env) holds(coll, id string) []store.Object {
	e.t.Helper()
	var out []store.Object
	for _, o := range e.all(coll) {
		if o.ID == id {
			out = append(out, o)
		}
	}
	return out
}

func TestDeleteAtSourceWithdraws(t *testing.T) {
	e := newOrgEnv(t)
	e.add(produced("CERT-A", samples()...)...)
	w := e.worker(nil)
	e.runOnce(w)
	if len(e.holds(lawColl, id(nGreen))) != 1 || len(e.holds(judiColl, id(nGreen))) != 1 {
		t.Fatal("the GREEN indicator was not published to both routes")
	}
	ctx := store.WithActor(context.Background(), store.Actor{User: "cert-a", Org: "CERT-A"})
	if _, err := e.st.DeleteObject(ctx, inbound, id(nGreen), nil, nil); err != nil {
		t.Fatal(err)
	}
	e.runOnce(w)
	for _, c := range []string{lawColl, judiColl} {
		if got := e.holds(c, id(nGreen)); len(got) != 0 {
			t.Errorf("%s still holds the deleted indicator", c)
		}
		if got := e.tombstones(c)[id(nGreen)]; !slices.Equal(got, []string{"withdrawn:retracted"}) {
			t.Errorf("%s tombstones of the deleted indicator = %v, want one withdrawn:retracted", c, got)
		}
	}
	es := e.withdrawnEntries(id(nGreen))
	if len(es) != 2 {
		t.Fatalf("withdrawn custody entries = %d, want 2 (one per route)", len(es))
	}
	for _, en := range es {
		if en.Reason != ReasonRetracted || en.Source != inbound || en.Route == "" || en.SHA256 == "" {
			t.Errorf("withdrawn entry %+v: want reason retracted, source, route and the copy's hash", en)
		}
	}
	// Another pass, and a new worker over the same store (a restart),
	// withdraw nothing twice; what else was published stays.
	e.runOnce(w)
	e.runOnce(e.worker(nil))
	if n := len(e.withdrawnEntries(id(nGreen))); n != 2 {
		t.Errorf("after more passes: %d withdrawn entries, want still 2", n)
	}
	if got, want := idsOf(e.all(judiColl)), ids(nClear, nWhite, nGreen1, nGranular, nStatement); !slices.Equal(got, want) {
		t.Errorf("judiciary holds %v, want %v", got, want)
	}
	// Submitted again, it is published again.
	e.add(produced("CERT-A", indicator(nGreen, marked(stix.TLP2Green)))...)
	e.runOnce(w)
	if len(e.holds(judiColl, id(nGreen))) != 1 {
		t.Error("resubmitted after its deletion, the indicator was not published again")
	}
}

func TestRetentionIsNotRetraction(t *testing.T) {
	e := newOrgEnv(t)
	e.add(produced("CERT-A", samples()...)...)
	w := e.worker(nil)
	e.runOnce(w)
	// Retention, keeping the inbound collection's versions for an hour,
	// sweeps a day later: everything at the source expires.
	sw := retention.Sweeper{Store: e.st, Retention: map[string]time.Duration{inbound: time.Hour}, Clock: func() time.Time { return time.Now().Add(24 * time.Hour) }}
	if n, err := sw.Sweep(context.Background()); err != nil || n != len(samples())+1 {
		t.Fatalf("Sweep = %d, %v; want every source version", n, err)
	}
	e.runOnce(w)
	e.runOnce(e.worker(nil))
	e.check("after retention emptied the source") // the routes hold all they published
	// Expiry leaves a tombstone of its own kind, which retraction passes
	// over (the routes still hold their copies, checked above).
	if ts := e.tombstones(inbound)[id(nGreen)]; !slices.Equal(ts, []string{store.RemovalExpired + ":"}) {
		t.Errorf("expiry left tombstones %v, want one of kind expired", ts)
	}
	for _, c := range []string{lawColl, judiColl} {
		if ts := e.tombstones(c); len(ts) != 0 {
			t.Errorf("%s: tombstones %v after the source expired; want none (nothing withdrawn)", c, ts)
		}
	}
}

func TestRaisedToRedWithdrawsEarlierVersions(t *testing.T) {
	v2 := time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)
	green := produced("CERT-A", indicator(nGreen, marked(stix.TLP2Green)))[0]
	red := versionOf(green, v2, marked(stix.TLP2Red))
	t.Run("later batch", func(t *testing.T) {
		e := newOrgEnv(t)
		e.add(green)
		w := e.worker(nil)
		e.runOnce(w)
		e.add(red)
		e.runOnce(w)
		for _, c := range []string{lawColl, judiColl} {
			if got := e.holds(c, green.ID); len(got) != 0 {
				t.Errorf("%s still holds %d versions of an object whose newer version is TLP:RED", c, len(got))
			}
			if got := e.tombstones(c)[green.ID]; !slices.Equal(got, []string{"withdrawn:superseded"}) {
				t.Errorf("%s tombstones = %v, want withdrawn:superseded", c, got)
			}
		}
	})
	for _, order := range [][]store.Object{{green, red}, {red, green}} {
		t.Run("same batch, "+order[0].Version.Format("Jan"), func(t *testing.T) {
			e := newOrgEnv(t)
			e.add(order...)
			e.runOnce(e.worker(nil))
			if got := e.holds(lawColl, green.ID); len(got) != 0 {
				t.Errorf("law-enforcement holds %d versions; want none (the newest is RED)", len(got))
			}
		})
	}
	t.Run("superseded: keep", func(t *testing.T) {
		e := newOrgEnv(t)
		e.routes = []*policy.Route{route(t, lawColl, "law-enforcement", "TLP:AMBER", func(rc *policy.RouteConfig) { rc.Superseded = "keep" })}
		e.add(green)
		w := e.worker(nil)
		e.runOnce(w)
		e.add(red)
		e.runOnce(w)
		if got := e.holds(lawColl, green.ID); len(got) != 1 || !got[0].Version.Equal(green.Version) {
			t.Errorf("a route that keeps superseded versions holds %v", got)
		}
	})
	t.Run("another producer's newer version", func(t *testing.T) {
		e := newOrgEnv(t)
		e.add(green)
		w := e.worker(nil)
		e.runOnce(w)
		other := red
		other.Producer = "CERT-B"
		e.add(other)
		e.runOnce(w)
		if got := e.holds(lawColl, green.ID); len(got) != 1 {
			t.Errorf("another organisation's RED version withdrew CERT-A's copy: route holds %d versions", len(got))
		}
	})
}

func TestNarrowingWithdrawsExactly(t *testing.T) {
	e := newOrgEnv(t)
	e.add(produced("CERT-A", samples()...)...)
	e.runOnce(e.worker(nil))
	before := e.all(lawColl)
	// The police received the TLP:AMBER indicator (one page, twice).
	amber := e.holds(lawColl, id(nAmber))[0]
	salter, err := e.st.DeliverySalter(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	item := custody.Item{ID: amber.ID, Version: custody.FormatVersion(amber.Version), SHA256: custody.HexHash(amber.Hash), Salt: salter.Salt(lawColl, amber.DateAdded)}
	leaf, err := item.Leaf()
	if err != nil {
		t.Fatal(err)
	}
	page := custody.Entry{Action: custody.Delivered, User: "police", Org: "National Police", Collection: lawColl, Count: 1,
		FirstAdded: custody.FormatTime(amber.DateAdded), LastAdded: custody.FormatTime(amber.DateAdded), ItemsRoot: custody.HexRoot(custody.TreeRoot([]tlog.Hash{leaf}))}
	for range 2 {
		if _, err := e.st.RecordDelivery(context.Background(), page, custody.EncodeManifest([]time.Time{amber.DateAdded})); err != nil {
			t.Fatal(err)
		}
	}
	// The law-enforcement ceiling is lowered from AMBER to GREEN.
	e.routes[0] = route(t, lawColl, "law-enforcement", "TLP:GREEN", nil)
	var logs bytes.Buffer
	w := New(Options{Store: e.st, Routes: e.routes, Markings: e.markings, Clock: func() time.Time { return now },
		Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	e.runOnce(w)
	// The operator is told what had been delivered, and to whom.
	if !strings.Contains(logs.String(), "id="+amber.ID) || !strings.Contains(logs.String(), `delivered_to="National Police (police) ×2"`) {
		t.Errorf("the operator was not told that %s had been delivered to the police:\n%s", amber.ID, logs.String())
	}
	if strings.Count(logs.String(), "already been delivered") != 1 {
		t.Errorf("want one warning (only the AMBER indicator had been delivered):\n%s", logs.String())
	}
	if got, want := idsOf(e.all(lawColl)), ids(judiWant...); !slices.Equal(got, want) {
		t.Fatalf("narrowed route holds\n%v\nwant\n%v", got, want)
	}
	ts := e.tombstones(lawColl)
	if len(ts) != 2 || ts[id(nAmber)] == nil || ts[id(nAmber1)] == nil {
		t.Fatalf("narrowing withdrew %v; want exactly the two AMBER indicators", ts)
	}
	if got := ts[id(nAmber)]; !slices.Equal(got, []string{"withdrawn:" + string(policy.ReasonAboveCeiling)}) {
		t.Errorf("AMBER indicator withdrawn with %v, want above_ceiling", got)
	}
	// Untouched copies keep their date_added: nothing else was republished.
	kept := map[string]time.Time{}
	for _, o := range e.all(lawColl) {
		kept[o.ID] = o.DateAdded
	}
	for _, o := range before {
		if d, ok := kept[o.ID]; ok && !d.Equal(o.DateAdded) {
			t.Errorf("%s was republished (date_added %v, was %v)", o.ID, d, o.DateAdded)
		}
	}
	// Narrowing by redaction: the copies published in full are replaced.
	e.routes[0] = route(t, lawColl, "law-enforcement", "TLP:GREEN", func(rc *policy.RouteConfig) { rc.Minimise.DropProperties = []string{"description"} })
	e.runOnce(e.worker(nil))
	for _, o := range e.all(lawColl) {
		if o.Type == "indicator" && strings.Contains(string(o.Raw), "secret detail") {
			t.Errorf("%s still published with the description the route now drops", o.ID)
		}
	}
	if got := e.tombstones(lawColl)[id(nGreen)]; !slices.Equal(got, []string{"withdrawn:" + ReasonReplaced}) {
		t.Errorf("replaced copy tombstones = %v, want withdrawn:replaced", got)
	}
}

// A policy that returns to an earlier version (AMBER, GREEN, AMBER again)
// re-evaluates history under it: what the GREEN version withdrew is
// published again, and a return to GREEN withdraws it again.
func TestPolicyReturnsToEarlierVersion(t *testing.T) {
	e := newOrgEnv(t)
	e.add(produced("CERT-A", samples()...)...)
	amber := route(t, lawColl, "law-enforcement", "TLP:AMBER", nil)
	green := route(t, lawColl, "law-enforcement", "TLP:GREEN", nil)
	for i, r := range []*policy.Route{amber, green, amber, green} {
		e.routes = []*policy.Route{r}
		e.runOnce(e.worker(nil))
		want := ids(lawWant...)
		if r == green {
			want = ids(judiWant...)
		}
		if got := idsOf(e.all(lawColl)); !slices.Equal(got, want) {
			t.Fatalf("step %d (%s): route holds\n%v\nwant\n%v", i, r.Ceiling(), got, want)
		}
	}
}

// An older version arriving after a newer one the route withheld is not
// published either: it is superseded as it would have been in order.
func TestOlderVersionAfterWithheldNewer(t *testing.T) {
	v2 := time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)
	green := produced("CERT-A", indicator(nGreen, marked(stix.TLP2Green)))[0]
	red := versionOf(green, v2, marked(stix.TLP2Red))
	e := newOrgEnv(t)
	w := e.worker(nil)
	e.add(red)
	e.runOnce(w)
	e.add(green)
	e.runOnce(w)
	if got := e.holds(lawColl, green.ID); len(got) != 0 {
		t.Fatalf("the older GREEN version, arriving after the RED one, was published: %d versions", len(got))
	}
	ds, err := e.st.LedgerEntries(context.Background(), store.LedgerQuery{ObjectID: green.ID, Route: "law-enforcement", Actions: store.DecisionActions(), Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != 2 || ds[1].Reason != string(policy.ReasonSuperseded) {
		t.Errorf("decisions %+v; want the GREEN version withheld as superseded", ds)
	}
}

// Deleted and submitted again before fan-out ran: the same bytes stay
// published (nothing withdrawn); other bytes under the same version replace
// the copy (what was deleted does not stay published).
func TestDeletedThenResubmitted(t *testing.T) {
	green := produced("CERT-A", indicator(nGreen, marked(stix.TLP2Green)))[0]
	for _, same := range []bool{true, false} {
		e := newOrgEnv(t)
		w := e.worker(nil)
		e.add(green)
		e.runOnce(w)
		if _, err := e.st.DeleteObject(context.Background(), inbound, green.ID, nil, nil); err != nil {
			t.Fatal(err)
		}
		again := green
		if !same {
			again = obj(green.ID, green.Type, green.Version, strings.Replace(string(green.Raw), "secret detail", "corrected detail", 1))
			again.Producer = green.Producer
		}
		e.add(again)
		e.runOnce(w)
		got := e.holds(lawColl, green.ID)
		if len(got) != 1 || string(got[0].Raw) != string(again.Raw) {
			t.Fatalf("same bytes %v: the route holds %v; want the resubmitted version", same, got)
		}
		if n := len(e.withdrawnEntries(green.ID)); (n == 0) != same {
			t.Errorf("same bytes %v: %d withdrawn entries", same, n)
		}
	}
}

// Two organisations submitted the same version through two sources of a
// route; the one whose copy the route published deletes it: the other's
// version still publishes the object, now as the other's.
func TestRetractedButAnotherSubmitterHoldsIt(t *testing.T) {
	e := newOrgEnv(t)
	const second = "5b6b0f0e-3c2a-4c38-9f0e-7a1d2c3b4e5f"
	e.routes = []*policy.Route{route(t, lawColl, "law-enforcement", "TLP:AMBER", func(rc *policy.RouteConfig) { rc.Sources = []string{inbound, second} })}
	a := produced("CERT-A", indicator(nGreen, marked(stix.TLP2Green)))[0]
	b := a
	b.Producer = "CERT-B"
	e.add(a)
	if _, err := e.st.AddObjects(context.Background(), second, []store.Object{b}); err != nil {
		t.Fatal(err)
	}
	w := e.worker(nil)
	e.runOnce(w)
	if got := e.holds(lawColl, a.ID); len(got) != 1 || got[0].Producer != "CERT-A" {
		t.Fatalf("route holds %+v; want CERT-A's copy", got)
	}
	if _, err := e.st.DeleteObject(context.Background(), inbound, a.ID, nil, nil); err != nil {
		t.Fatal(err)
	}
	e.runOnce(w)
	if got := e.holds(lawColl, a.ID); len(got) != 1 || got[0].Producer != "CERT-B" {
		t.Fatalf("after CERT-A's delete the route holds %+v; want CERT-B's copy", got)
	}
	// CERT-B deletes too: nothing publishes it any more.
	if _, err := e.st.DeleteObject(context.Background(), second, a.ID, nil, nil); err != nil {
		t.Fatal(err)
	}
	e.runOnce(w)
	if got := e.holds(lawColl, a.ID); len(got) != 0 {
		t.Fatalf("after both deletes the route holds %+v", got)
	}
}

// TestChainedRouteFollowsWithdrawals: a route fed by another route's
// collection takes back what the first route withdraws, whether the
// producer deleted the object or a newer version may not go.
func TestChainedRouteFollowsWithdrawals(t *testing.T) {
	const chainColl = "0c0ffee0-0000-4000-8000-00000000c4a1"
	e := newOrgEnv(t)
	e.routes = append(e.routes, route(t, chainColl, "chained", "TLP:GREEN", func(rc *policy.RouteConfig) {
		rc.Sources = []string{lawColl}
	}))
	e.add(produced("CERT-A", samples()...)...)
	w := e.worker(nil)
	e.runOnce(w)
	e.runOnce(w) // the chained route reads what the first pass published
	if len(e.holds(chainColl, id(nGreen))) != 1 || len(e.holds(chainColl, id(nGreen1))) != 1 {
		t.Fatal("the chained route did not publish the GREEN indicators")
	}
	ctx := store.WithActor(context.Background(), store.Actor{User: "cert-a", Org: "CERT-A"})
	// Deleted by its producer: withdrawn from the first route's
	// collection, then from the chained one.
	if _, err := e.st.DeleteObject(ctx, inbound, id(nGreen), nil, nil); err != nil {
		t.Fatal(err)
	}
	// Raised to RED: the first route withdraws its earlier version.
	red := versionOf(produced("CERT-A", indicator(nGreen1, marked(stix.TLP2Green)))[0], now.Add(-time.Hour), `,"object_marking_refs":["`+stix.TLP2Red+`"]`)
	e.add(red)
	e.runOnce(w)
	e.runOnce(w)
	for _, n := range []int{nGreen, nGreen1} {
		if got := e.holds(lawColl, id(n)); len(got) != 0 {
			t.Errorf("law-enforcement still holds %s", id(n))
		}
		if got := e.holds(chainColl, id(n)); len(got) != 0 {
			t.Errorf("the chained route still holds %s, which the route it reads withdrew", id(n))
		}
		if got := e.tombstones(chainColl)[id(n)]; len(got) != 1 || !strings.HasPrefix(got[0], "withdrawn:") {
			t.Errorf("chained tombstones of %s = %v, want one withdrawal", id(n), got)
		}
	}
	// What the first route still holds, the chained one still holds.
	if got, want := idsOf(e.all(chainColl)), idsOf(e.all(judiColl)); !slices.Equal(got, want) {
		t.Errorf("chained holds %v, judiciary (same ceiling, same objects) %v", got, want)
	}
}
