package fanout

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/ctigate/ctigate/policy"
	"github.com/ctigate/ctigate/stix"
	"github.com/ctigate/ctigate/store"
	"github.com/ctigate/ctigate/store/bolt"
)

const (
	inbound   = "24f70a31-7be5-4fdd-8353-9784877646c1"
	lawColl   = "1dae5e88-4b59-4503-a9cf-2e649dd6544c"
	judiColl  = "17f28d77-a964-471e-ab40-76087911370a"
	unknownMD = "marking-definition--0b0e7a6c-3f43-4c1e-9d55-1c1f1f0f4a11"
	statement = "marking-definition--6a2c3b1e-8f2d-4e59-a1d6-0c3c6fd2f5a7"
)

var now = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func route(t *testing.T, id, name, ceiling string, mod func(*policy.RouteConfig)) *policy.Route {
	t.Helper()
	rc := policy.RouteConfig{ID: id, Name: name, Sources: []string{inbound}, Ceiling: ceiling}
	if mod != nil {
		mod(&rc)
	}
	r, err := policy.Compile(rc)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// indicator returns an indicator whose UUID ends in n, with extra members.
func indicator(n int, extra string) store.Object {
	id := fmt.Sprintf("indicator--8e2e2d2b-17d4-4cbf-938f-%012d", n)
	raw := fmt.Sprintf(`{"type":"indicator","spec_version":"2.1","id":%q,"created":"2026-01-01T00:00:00.000Z","modified":"2026-01-01T00:00:00.000Z",`+
		`"name":"ind %d","description":"secret detail %d","pattern":"[ipv4-addr:value = '198.51.100.%d']","pattern_type":"stix","valid_from":"2026-01-01T00:00:00Z"%s}`,
		id, n, n, n%250, extra)
	return obj(id, "indicator", time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), raw)
}

func obj(id, typ string, v time.Time, raw string) store.Object {
	h, err := stix.Hash([]byte(raw))
	if err != nil {
		panic(err)
	}
	return store.Object{ID: id, Type: typ, SpecVersion: "2.1", Version: v, Raw: []byte(raw), Hash: h}
}

func marked(refs ...string) string {
	return `,"object_marking_refs":["` + strings.Join(refs, `","`) + `"]`
}

// Ids of the sample objects.
const (
	nClear = iota + 1
	nWhite
	nGreen1
	nGreen
	nAmber1
	nAmber
	nAmberStrict
	nRed1
	nRed
	nUnmarked
	nUnknown
	nGranular
	nStatement
)

func samples() []store.Object {
	return []store.Object{
		indicator(nClear, marked(stix.TLP2Clear)),
		indicator(nWhite, marked(stix.TLP1White)),
		indicator(nGreen1, marked(stix.TLP1Green)),
		indicator(nGreen, marked(stix.TLP2Green)),
		indicator(nAmber1, marked(stix.TLP1Amber)),
		indicator(nAmber, marked(stix.TLP2Amber)),
		indicator(nAmberStrict, marked(stix.TLP2AmberStrict)),
		indicator(nRed1, marked(stix.TLP1Red)),
		indicator(nRed, marked(stix.TLP2Red)),
		indicator(nUnmarked, ""),
		indicator(nUnknown, marked(stix.TLP2Green, unknownMD)),
		indicator(nGranular, marked(stix.TLP2Green)+`,"granular_markings":[{"marking_ref":"`+stix.TLP2Red+`","selectors":["description"]}]`),
		indicator(nStatement, marked(stix.TLP2Green, statement)),
	}
}

func statementDef() store.Object {
	raw := `{"type":"marking-definition","spec_version":"2.1","id":"` + statement + `","created":"2026-01-01T00:00:00.000Z",` +
		`"definition_type":"statement","definition":{"statement":"Copyright CERT-A"}}`
	return obj(statement, "marking-definition", time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), raw)
}

func id(n int) string { return indicator(n, "").ID }

// ids returns the ids a route holds when it published the samples ns: those,
// the statement marking definition, and, with the redacted nGranular, the
// gateway's own objects (its identity and the extension definition the
// redacted copy uses).
func ids(ns ...int) []string {
	out := []string{statement}
	for _, n := range ns {
		out = append(out, id(n))
		if n == nGranular {
			out = append(out, policy.GatewayIdentity, policy.RedactionExtension)
		}
	}
	slices.Sort(out)
	return out
}

type env struct {
	t        *testing.T
	path     string
	st       *bolt.Store
	markings *stix.Markings
	routes   []*policy.Route
}

func newEnv(t *testing.T) *env {
	e := &env{t: t, path: filepath.Join(t.TempDir(), "ctigate.db"), markings: stix.NewMarkings()}
	e.open()
	e.routes = []*policy.Route{
		route(t, lawColl, "law-enforcement", "TLP:AMBER", nil),
		route(t, judiColl, "judiciary", "TLP:GREEN", nil),
	}
	def := statementDef()
	if err := e.markings.Add(def.Raw); err != nil {
		t.Fatal(err)
	}
	e.add(def)
	return e
}

func (e *env) open() {
	st, err := bolt.Open(e.path, bolt.Options{NoSync: true, TrimInterval: -1, TrimAfterBytes: -1})
	if err != nil {
		e.t.Fatal(err)
	}
	e.st = st
	e.t.Cleanup(func() { st.Close() })
}

func (e *env) restart() {
	if err := e.st.Close(); err != nil {
		e.t.Fatal(err)
	}
	e.open()
}

func (e *env) add(objs ...store.Object) {
	e.t.Helper()
	if _, err := e.st.AddObjects(context.Background(), inbound, objs); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) worker(s store.Store) *Worker {
	if s == nil {
		s = e.st
	}
	return New(Options{Store: s, Routes: e.routes, Markings: e.markings, Clock: func() time.Time { return now }})
}

func (e *env) runOnce(w *Worker) int {
	e.t.Helper()
	n, err := w.RunOnce(context.Background())
	if err != nil {
		e.t.Fatalf("RunOnce: %v", err)
	}
	return n
}

// all returns every version in coll.
func (e *env) all(coll string) []store.Object {
	e.t.Helper()
	p, err := e.st.Objects(context.Background(), coll, store.Query{Versions: []store.VersionMatch{{Kind: store.All}}, Limit: 10000})
	if err != nil {
		e.t.Fatal(err)
	}
	return p.Objects
}

func idsOf(objs []store.Object) []string {
	var out []string
	for _, o := range objs {
		out = append(out, o.ID)
	}
	slices.Sort(out)
	return out
}

var (
	lawWant  = []int{nClear, nWhite, nGreen1, nGreen, nAmber1, nAmber, nGranular, nStatement}
	judiWant = []int{nClear, nWhite, nGreen1, nGreen, nGranular, nStatement}
)

func (e *env) check(what string) {
	e.t.Helper()
	for _, c := range []struct {
		coll string
		want []string
	}{{lawColl, ids(lawWant...)}, {judiColl, ids(judiWant...)}} {
		got := e.all(c.coll)
		if g := idsOf(got); !slices.Equal(g, c.want) {
			e.t.Fatalf("%s: collection %s holds\n%v\nwant\n%v", what, c.coll, g, c.want)
		}
		for _, o := range got {
			if o.ID == id(nRed) || o.ID == id(nRed1) {
				e.t.Fatalf("%s: TLP:RED object %s published in %s", what, o.ID, c.coll)
			}
			if o.ID == id(nGranular) {
				if strings.Contains(string(o.Raw), "secret detail") || !strings.Contains(string(o.Raw), policy.RedactionExtension) {
					e.t.Fatalf("%s: granular RED description not redacted in %s: %s", what, c.coll, o.Raw)
				}
				h, err := stix.Hash(o.Raw)
				if err != nil || h != o.Hash {
					e.t.Fatalf("%s: redacted object stored with hash %x, want its PublishedSHA256 %x (%v)", what, o.Hash, h, err)
				}
			}
		}
	}
}

func TestPublishesWhatRoutesAllow(t *testing.T) {
	e := newEnv(t)
	e.add(samples()...)
	w := e.worker(nil)
	if n := e.runOnce(w); n != 2*(len(samples())+1) {
		t.Fatalf("RunOnce evaluated %d versions, want %d", n, 2*(len(samples())+1))
	}
	e.check("after the first pass")

	// Idempotent: nothing new, nothing evaluated again.
	if n := e.runOnce(w); n != 0 {
		t.Fatalf("second RunOnce evaluated %d versions, want 0", n)
	}
	e.check("after the second pass")
}

// failing fails AddObjectsCheckpoint the first fail times.
type failing struct {
	store.Store
	fail atomic.Int32
}

func (f *failing) AddObjectsCheckpoint(ctx context.Context, coll string, objs []store.Object, ds []store.Decision, name string, from, at time.Time) ([]store.AddResult, error) {
	if f.fail.Add(-1) >= 0 {
		return nil, errors.New("injected failure")
	}
	return f.Store.AddObjectsCheckpoint(ctx, coll, objs, ds, name, from, at)
}

func TestCrashBetweenEvaluationAndWrite(t *testing.T) {
	e := newEnv(t)
	e.add(samples()...)
	f := &failing{Store: e.st}
	f.fail.Store(1)
	w := e.worker(f)
	if _, err := w.RunOnce(context.Background()); err == nil {
		t.Fatal("RunOnce with a failing write: got no error")
	}
	// The failed route wrote nothing; the other one may have finished.
	if got := e.all(lawColl); len(got) != 0 {
		t.Fatalf("after a failed write: %d objects in the route, want 0", len(got))
	}
	e.runOnce(w)
	e.check("after the retry")
	if n := e.runOnce(e.worker(nil)); n != 0 {
		t.Fatalf("a new worker evaluated %d versions, want 0", n)
	}
}

func TestRestart(t *testing.T) {
	e := newEnv(t)
	e.add(samples()[:6]...)
	e.runOnce(e.worker(nil))
	e.restart()
	e.add(samples()[6:]...)
	w := e.worker(nil)
	if n, want := e.runOnce(w), 2*len(samples()[6:]); n != want {
		t.Fatalf("after restart RunOnce evaluated %d versions, want only the %d new ones", n, want)
	}
	e.check("after restart")
	for _, c := range []string{lawColl, judiColl} {
		seen := map[string]bool{}
		for _, o := range e.all(c) {
			k := o.ID + "@" + o.Version.String()
			if seen[k] {
				t.Fatalf("%s published twice in %s", k, c)
			}
			seen[k] = true
		}
	}
}

func TestPolicyChangeReevaluatesHistory(t *testing.T) {
	e := newEnv(t)
	e.add(samples()...)
	e.runOnce(e.worker(nil))
	// The judiciary route is widened to AMBER: history now flows to it.
	e.routes[1] = route(t, judiColl, "judiciary", "TLP:AMBER", nil)
	w := e.worker(nil)
	if n, want := e.runOnce(w), len(samples())+1; n != want {
		t.Fatalf("after a policy change RunOnce evaluated %d versions, want %d (the judiciary route's history)", n, want)
	}
	if got, want := idsOf(e.all(judiColl)), ids(lawWant...); !slices.Equal(got, want) {
		t.Fatalf("widened route holds\n%v\nwant\n%v", got, want)
	}
}

func TestRevokedReachesReceivingRoute(t *testing.T) {
	e := newEnv(t)
	e.routes = e.routes[:1]
	e.add(indicator(100, marked(stix.TLP2Green)))
	e.runOnce(e.worker(nil))
	// A revoked version of what the route received is delivered.
	rev := indicator(100, marked(stix.TLP2Green)+`,"revoked":true`)
	rev.Raw = []byte(strings.Replace(string(rev.Raw), `"modified":"2026-01-01T00:00:00.000Z"`, `"modified":"2026-02-01T00:00:00.000Z"`, 1))
	rev.Version = time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)
	rev.Hash, _ = stix.Hash(rev.Raw)
	e.add(rev)
	e.runOnce(e.worker(nil))
	if got := e.all(lawColl); len(got) != 2 || !strings.Contains(string(got[1].Raw), `"revoked":true`) {
		t.Fatalf("route holds %d versions, want the object and its revocation", len(got))
	}
}

func TestRunNotify(t *testing.T) {
	e := newEnv(t)
	w := New(Options{Store: e.st, Routes: e.routes, Markings: e.markings, Interval: time.Hour})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	e.add(samples()...)
	w.Notify()
	deadline := time.Now().Add(10 * time.Second)
	for len(e.all(judiColl)) < len(judiWant) {
		if time.Now().After(deadline) {
			t.Fatal("Notify did not lead to a pass")
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
}

// TestProducerRule: a route that lists producers publishes the versions
// their organisations submitted, judged by the organisation stored with
// each version, and withholds the rest (also versions stored without one).
func TestProducerRule(t *testing.T) {
	e := newEnv(t)
	e.routes = []*policy.Route{route(t, lawColl, "law-enforcement", "TLP:AMBER", func(rc *policy.RouteConfig) {
		rc.Producers = []string{"CERT-A"}
	})}
	green := marked(stix.TLP2Green)
	a, b, unknown := indicator(201, green), indicator(202, green), indicator(203, green)
	a.Producer, b.Producer = "CERT-A", "CERT-B"
	e.add(a, b, unknown)
	e.runOnce(e.worker(nil))
	got := e.all(lawColl)
	if ids := idsOf(got); !slices.Equal(ids, []string{a.ID}) {
		t.Fatalf("route holds %v, want only CERT-A's %s", ids, a.ID)
	}
	if got[0].Producer != "CERT-A" {
		t.Errorf("published copy's producer %q, want CERT-A", got[0].Producer)
	}
}

// TestIngestLinksRing: the worker remembers the last maxIngestLinks POST
// spans and links a batch to those whose range meets its own, newest
// first.
func TestIngestLinksRing(t *testing.T) {
	w := &Worker{}
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	sc := func(i int) trace.SpanContext {
		var tid trace.TraceID
		var sid trace.SpanID
		binary.BigEndian.PutUint64(tid[8:], uint64(i+1))
		binary.BigEndian.PutUint64(sid[:], uint64(i+1))
		return trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid})
	}
	total := maxIngestLinks + 10
	for i := range total {
		at := base.Add(time.Duration(i) * time.Second)
		w.Link(trace.ContextWithSpanContext(context.Background(), sc(i)), inbound, at, at)
	}
	w.Link(context.Background(), inbound, base, base) // no span: nothing to remember
	l := &w.links
	if len(l.entries) != maxIngestLinks {
		t.Fatalf("remembered %d, want %d", len(l.entries), maxIngestLinks)
	}
	// The oldest 10 are forgotten.
	if got := l.linksFor(inbound, base, base.Add(9*time.Second)); len(got) != 0 {
		t.Errorf("forgotten POSTs linked: %d", len(got))
	}
	got := l.linksFor(inbound, base.Add(10*time.Second), base.Add(12*time.Second))
	if len(got) != 3 || got[0].SpanContext.SpanID() != sc(12).SpanID() || got[2].SpanContext.SpanID() != sc(10).SpanID() {
		t.Errorf("got %v, want POSTs 12, 11, 10", got)
	}
	if got := l.linksFor("other", base, base.Add(time.Duration(total)*time.Second)); len(got) != 0 {
		t.Errorf("another source's POSTs linked: %d", len(got))
	}
	if got := l.linksFor(inbound, base, base.Add(time.Duration(total)*time.Second)); len(got) != maxSpanLinks || got[0].SpanContext.SpanID() != sc(total-1).SpanID() {
		t.Errorf("got %d links starting at %v, want %d starting with the newest", len(got), got[0].SpanContext.SpanID(), maxSpanLinks)
	}
}

// TestNewVersionAnnouncedOnce: a new policy version over a route that
// published objects is announced for the source with history to
// re-evaluate, and not at each start for a source that holds nothing.
func TestNewVersionAnnouncedOnce(t *testing.T) {
	e := newEnv(t)
	const empty = "0c6f1c8e-5a8e-4d0b-9f5e-3b7a2e1d4c00" // a source collection that holds nothing
	e.routes = []*policy.Route{route(t, lawColl, "law-enforcement", "TLP:AMBER", func(rc *policy.RouteConfig) {
		rc.Sources = []string{inbound, empty}
	})}
	e.add(samples()...)
	run := func(rs []*policy.Route) string {
		var logs bytes.Buffer
		w := New(Options{Store: e.st, Routes: rs, Markings: e.markings, Clock: func() time.Time { return now },
			Logger: slog.New(slog.NewTextHandler(&logs, nil))})
		e.runOnce(w)
		return logs.String()
	}
	run(e.routes)
	for i := range 2 {
		e.restart()
		if l := run(e.routes); strings.Contains(l, "new policy version") {
			t.Fatalf("start %d announced a new policy version though none is:\n%s", i+2, l)
		}
	}
	// A narrower version: announced for the inbound source only.
	narrower := []*policy.Route{route(t, lawColl, "law-enforcement", "TLP:GREEN", func(rc *policy.RouteConfig) {
		rc.Sources = []string{inbound, empty}
	})}
	l := run(narrower)
	if !strings.Contains(l, "new policy version") || !strings.Contains(l, "source="+inbound) || strings.Contains(l, "source="+empty) {
		t.Errorf("a new version over the route is announced for %s only:\n%s", inbound, l)
	}
}

// batchReads records the source pages fan-out's batches read and the
// batches it writes.
type batchReads struct {
	store.Store
	pages  [][]int // per page read from inbound with the objects' bytes: each object's size
	writes atomic.Int32
}

func (b *batchReads) Objects(ctx context.Context, coll string, q store.Query) (store.Page, error) {
	p, err := b.Store.Objects(ctx, coll, q)
	if err == nil && coll == inbound && !q.WithoutRaw && len(q.IDs) == 0 && len(p.Objects) > 0 {
		var sizes []int
		for _, o := range p.Objects {
			sizes = append(sizes, len(o.Raw))
		}
		b.pages = append(b.pages, sizes)
	}
	return p, err
}

func (b *batchReads) AddObjectsCheckpoint(ctx context.Context, coll string, objs []store.Object, ds []store.Decision, name string, from, at time.Time) ([]store.AddResult, error) {
	b.writes.Add(1)
	return b.Store.AddObjectsCheckpoint(ctx, coll, objs, ds, name, from, at)
}

// TestBatchBytes: a batch reads at most BatchBytes of source versions (one
// larger version makes a batch of its own), and batches cut by bytes
// publish what one batch would.
func TestBatchBytes(t *testing.T) {
	for _, o := range samples() {
		if len(o.Raw) < 300 || len(o.Raw) > 600 {
			t.Fatalf("sample %s has %d bytes; the bounds below expect 300 to 600", o.ID, len(o.Raw))
		}
	}
	for _, limit := range []int64{1, 900, 2000, 0} {
		t.Run(fmt.Sprint(limit), func(t *testing.T) {
			e := newEnv(t)
			e.add(samples()...)
			br := &batchReads{Store: e.st}
			w := New(Options{Store: br, Routes: e.routes, Markings: e.markings, Clock: func() time.Time { return now }, BatchBytes: limit})
			if n := e.runOnce(w); n != 2*(len(samples())+1) {
				t.Fatalf("RunOnce evaluated %d versions, want %d", n, 2*(len(samples())+1))
			}
			e.check("batches bounded by bytes")
			bound := limit
			if bound == 0 {
				bound = DefaultBatchBytes
			}
			for _, sizes := range br.pages {
				sum := 0
				for _, n := range sizes {
					sum += n
				}
				if len(sizes) > 1 && int64(sum) > bound {
					t.Fatalf("a batch read %d versions of %d bytes together, bound %d", len(sizes), sum, bound)
				}
			}
			most := 0 // the most versions one batch read
			for _, sizes := range br.pages {
				most = max(most, len(sizes))
			}
			switch {
			case limit == 1 && most != 1:
				t.Fatalf("a batch read %d versions with a bound of 1 byte, want 1 each", most)
			case limit == 900 && most != 2: // versions of 400-odd bytes
				t.Fatalf("a batch read at most %d versions with a bound of 900 bytes, want 2", most)
			case limit == 0 && most != len(samples())+1:
				t.Fatalf("a batch read at most %d versions with the default bound, want all %d", most, len(samples())+1)
			}
			if limit != 0 && br.writes.Load() <= 4 {
				t.Fatalf("%d batches written with a bound of %d bytes: not cut", br.writes.Load(), limit)
			}
		})
	}
}

// TestDecidedThrough: the date_added through which every route reading a
// source has decided it is the least of their checkpoints (zero while one
// has decided nothing); a source no route reads is not followed.
func TestDecidedThrough(t *testing.T) {
	const certB = "5c8e1d4a-2b7f-4e3a-9c1d-8f6e5a4b3c2d"
	ctx := t.Context()
	st, err := bolt.Open(filepath.Join(t.TempDir(), "ctigate.db"), bolt.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	law := route(t, lawColl, "law", "TLP:AMBER", nil)
	judi := route(t, judiColl, "judi", "TLP:GREEN", nil)
	other := route(t, "5b6b0f0e-3c2a-4c38-9f0e-7a1d2c3b4e5f", "other", "TLP:GREEN", func(rc *policy.RouteConfig) {
		rc.Sources = []string{certB}
	})
	routes := []*policy.Route{law, judi, other}
	check := func(src string, want time.Time, wantOK bool) {
		t.Helper()
		got, ok, err := DecidedThrough(ctx, st, routes, src)
		if err != nil || ok != wantOK || !got.Equal(want) {
			t.Fatalf("%s: %v %v %v, want %v %v", src, got, ok, err, want, wantOK)
		}
	}
	set := func(r *policy.Route, src string, from, at time.Time) {
		t.Helper()
		if _, err := st.AddObjectsCheckpoint(ctx, r.ID(), nil, nil, CheckpointName(r, src), from, at); err != nil {
			t.Fatal(err)
		}
	}
	check("nobody-reads-this", time.Time{}, false)
	check(inbound, time.Time{}, true)
	t1, t2 := now, now.Add(time.Minute)
	set(law, inbound, time.Time{}, t2)
	check(inbound, time.Time{}, true) // judi has decided nothing
	set(judi, inbound, time.Time{}, t1)
	check(inbound, t1, true)
	set(judi, inbound, t1, t2.Add(time.Second))
	check(inbound, t2, true)
	set(other, certB, time.Time{}, t1)
	check(certB, t1, true)
}
