package fanout

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ctigate/ctigate/custody"
	"github.com/ctigate/ctigate/gateway"
	"github.com/ctigate/ctigate/policy"
	"github.com/ctigate/ctigate/stix"
	"github.com/ctigate/ctigate/store"
)

// parkEnv is an env with one route (law-enforcement, AMBER, references as
// given) and a clock the test moves.
type parkEnv struct {
	*env
	clock time.Time
}

func newParkEnv(t *testing.T, mod func(*policy.RouteConfig)) *parkEnv {
	e := &parkEnv{env: newOrgEnv(t), clock: now}
	e.routes = []*policy.Route{route(t, lawColl, "law-enforcement", "TLP:AMBER", mod)}
	return e
}

func (e *parkEnv) worker() *Worker {
	return New(Options{Store: e.st, Routes: e.routes, Markings: e.markings, Clock: func() time.Time { return e.clock }})
}

func greenIdentity(n int) store.Object {
	id := strings.Replace(id(n), "indicator--", "identity--", 1)
	raw := `{"type":"identity","spec_version":"2.1","id":"` + id + `","created":"2026-01-01T00:00:00.000Z","modified":"2026-01-01T00:00:00.000Z","name":"CERT-A"` + marked(stix.TLP2Green) + `}`
	o := obj(id, "identity", time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), raw)
	o.Producer = "CERT-A"
	return o
}

func (e *parkEnv) parked() int {
	e.t.Helper()
	p, err := e.st.Objects(context.Background(), gateway.ParkingOf(CheckpointName(e.routes[0], inbound)), store.Query{Versions: []store.VersionMatch{{Kind: store.All}}, WithoutRaw: true})
	if err != nil {
		e.t.Fatal(err)
	}
	return len(p.Objects)
}

// decisions returns the decision entries of the ledger about objectID.
func (e *parkEnv) decisions(objectID string) []custody.Entry {
	e.t.Helper()
	ds, err := e.st.LedgerEntries(context.Background(), store.LedgerQuery{ObjectID: objectID, Actions: store.DecisionActions(), Limit: 100})
	if err != nil {
		e.t.Fatal(err)
	}
	return ds
}

// An indicator whose creator's identity comes in a later envelope waits
// for it (no decision, not published), across a restart, and is published
// with its created_by_ref once the identity arrives.
func TestParkedUntilReferenceArrives(t *testing.T) {
	e := newParkEnv(t, nil)
	who := greenIdentity(900)
	ind := produced("CERT-A", indicator(1, marked(stix.TLP2Green)+`,"created_by_ref":"`+who.ID+`"`))[0]
	e.add(ind)
	e.runOnce(e.worker())
	if n := e.parked(); n != 1 {
		t.Fatalf("%d objects wait; want the indicator", n)
	}
	if ds := e.decisions(ind.ID); len(ds) != 0 || len(e.holds(lawColl, ind.ID)) != 0 {
		t.Fatalf("a waiting indicator was decided (%v) or published", ds)
	}
	e.restart()
	e.runOnce(e.worker()) // nothing arrived: it waits on
	if n := e.parked(); n != 1 {
		t.Fatalf("after a restart %d objects wait; want 1", n)
	}
	e.add(who)
	e.runOnce(e.worker())
	got := e.holds(lawColl, ind.ID)
	if len(got) != 1 || !strings.Contains(string(got[0].Raw), `"created_by_ref":"`+who.ID+`"`) {
		t.Fatalf("once its identity arrived, the indicator is published as %v; want it with its created_by_ref", got)
	}
	if n := e.parked(); n != 0 {
		t.Errorf("%d objects still wait", n)
	}
	if ds := e.decisions(ind.ID); len(ds) != 1 {
		t.Errorf("%d decisions about the indicator; want exactly 1", len(ds))
	}
}

// What never arrives is decided as withheld once reference_wait passes:
// trimmed (created_by_ref), or withheld (a relationship's required refs).
func TestParkedUntilWaitPasses(t *testing.T) {
	e := newParkEnv(t, func(rc *policy.RouteConfig) { rc.ReferenceWait = "2m" })
	who := greenIdentity(900)
	ind := produced("CERT-A", indicator(1, marked(stix.TLP2Green)+`,"created_by_ref":"`+who.ID+`"`))[0]
	e.add(ind)
	w := e.worker()
	e.runOnce(w)
	e.clock = e.clock.Add(119 * time.Second)
	e.runOnce(w)
	if e.parked() != 1 {
		t.Fatal("released before reference_wait passed")
	}
	e.clock = e.clock.Add(2 * time.Second)
	e.runOnce(w)
	got := e.holds(lawColl, ind.ID)
	if len(got) != 1 || strings.Contains(string(got[0].Raw), `"created_by_ref":"`) || e.parked() != 0 {
		t.Fatalf("after reference_wait: %v (parked %d); want it published without created_by_ref", got, e.parked())
	}
	// Arriving later changes nothing already published (a copy is not
	// re-decided), and is published itself.
	e.add(who)
	e.runOnce(w)
	if len(e.holds(lawColl, who.ID)) != 1 {
		t.Error("the late identity was not published")
	}
}

// A producer cannot park without bound: beyond parked_limit objects are
// decided at once, and the decision names the limit.
func TestParkedLimit(t *testing.T) {
	e := newParkEnv(t, func(rc *policy.RouteConfig) { rc.ParkedLimit = 2 })
	var objs []store.Object
	for i := range 3 {
		objs = append(objs, produced("CERT-A", indicator(10+i, marked(stix.TLP2Green)+`,"created_by_ref":"identity--0c0ffee0-0000-4000-8000-00000000000`+string(rune('1'+i))+`"`))...)
	}
	e.add(objs...)
	e.runOnce(e.worker())
	if n := e.parked(); n != 2 {
		t.Fatalf("%d objects wait; want parked_limit 2", n)
	}
	ds := e.decisions(objs[2].ID)
	if len(ds) != 1 || !strings.Contains(ds[0].Detail, "parked_limit 2") {
		t.Fatalf("the third object's decision = %+v; want one naming parked_limit 2", ds)
	}
}

// A waiting object deleted at its source is never published.
func TestParkedThenDeleted(t *testing.T) {
	e := newParkEnv(t, nil)
	who := greenIdentity(900)
	ind := produced("CERT-A", indicator(1, marked(stix.TLP2Green)+`,"created_by_ref":"`+who.ID+`"`))[0]
	e.add(ind)
	w := e.worker()
	e.runOnce(w)
	if _, err := e.st.DeleteObject(context.Background(), inbound, ind.ID, nil, nil); err != nil {
		t.Fatal(err)
	}
	e.add(who)
	e.runOnce(w)
	if len(e.holds(lawColl, ind.ID)) != 0 || e.parked() != 0 {
		t.Fatalf("a waiting object deleted at its source: published %d, parked %d", len(e.holds(lawColl, ind.ID)), e.parked())
	}
}

func TestParkedRelationshipWithhold(t *testing.T) {
	e := newParkEnv(t, func(rc *policy.RouteConfig) { rc.References = "withhold"; rc.Unmarked = "TLP:GREEN" })
	a, b := greenIdentity(901), greenIdentity(902)
	rel := obj("relationship--00000004-0000-4000-8000-000000000004", "relationship", time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
		`{"type":"relationship","spec_version":"2.1","id":"relationship--00000004-0000-4000-8000-000000000004","created":"2026-01-01T00:00:00.000Z","modified":"2026-01-01T00:00:00.000Z","relationship_type":"related-to","source_ref":"`+a.ID+`","target_ref":"`+b.ID+`"}`)
	rel.Producer = "CERT-A"
	w := New(Options{Store: e.st, Routes: e.routes, Markings: e.markings, Clock: func() time.Time { return e.clock }, BatchSize: 1})
	e.add(b)
	e.runOnce(w)
	e.add(rel)
	e.runOnce(w)
	if ds := e.decisions(rel.ID); len(ds) != 0 {
		t.Fatalf("decided at once: %+v", ds)
	}
	e.add(a)
	e.runOnce(w)
	if len(e.holds(lawColl, rel.ID)) != 1 {
		t.Fatalf("relationship not published: %+v", e.decisions(rel.ID))
	}
}

// Many objects waiting for one reference are all released when it
// arrives: each published once with its reference, each parking entry
// removed with one custody record of it, none left behind (the removals
// run several at a time).
func TestParkedManyReleased(t *testing.T) {
	e := newParkEnv(t, nil)
	who := greenIdentity(903)
	const n = 3*unparkParallel + 5
	var inds []store.Object
	for i := range n {
		inds = append(inds, produced("CERT-A", indicator(100+i, marked(stix.TLP2Green)+`,"created_by_ref":"`+who.ID+`"`))[0])
	}
	e.add(inds...)
	e.runOnce(e.worker())
	if got := e.parked(); got != n {
		t.Fatalf("%d objects wait; want %d", got, n)
	}
	e.add(who)
	e.runOnce(e.worker())
	if got := e.parked(); got != 0 {
		t.Fatalf("%d objects still wait", got)
	}
	coll := gateway.ParkingOf(CheckpointName(e.routes[0], inbound))
	for _, o := range inds {
		if got := e.holds(lawColl, o.ID); len(got) != 1 || !strings.Contains(string(got[0].Raw), who.ID) {
			t.Fatalf("%s published as %v; want once, with its created_by_ref", o.ID, got)
		}
		if ds := e.decisions(o.ID); len(ds) != 1 || ds[0].Action != custody.Published {
			t.Fatalf("%s: decisions %+v; want one published", o.ID, ds)
		}
		rm, err := e.st.LedgerEntries(context.Background(), store.LedgerQuery{ObjectID: o.ID, Actions: []string{custody.Deleted}, Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		if len(rm) != 1 || rm[0].Collection != coll || rm[0].Reason != string(store.RemovalReleased) {
			t.Fatalf("%s: removals recorded %+v; want its parking entry's, once", o.ID, rm)
		}
	}
}
