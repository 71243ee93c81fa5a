// Package fanout publishes the object versions posted to inbound collections into the published collections of the routes that read them, as each route's policy allows.
package fanout

// How it works. An inbound collection's date_added order is a durable,
// ordered log, written in the same transaction as each object: fan-out uses
// it as its queue. Each (route, source collection, policy version) has a
// checkpoint: the date_added of the last source version it processed. A
// pass reads the source after the checkpoint (added_after is exclusive and
// date_added unique per collection, so it is an exact cursor), evaluates
// each version with policy.Evaluate, and writes what may be published into
// the route's collection and moves the checkpoint in one atomic store write
// (store.Store.AddObjectsCheckpoint). A crash at any point loses nothing
// and, since adds are idempotent, publishes nothing twice.
//
// A new policy version has a checkpoint of its own, so the whole source is
// re-evaluated under it, both ways: widened permissions publish history,
// narrowed ones withdraw the copies the new version would not publish (or
// would publish differently, say redacted where an earlier version
// published in full: the copy is replaced). A version that returns (A, B,
// then A again) starts over too (takeOver).
//
// What a route published can be taken back (withdrawn: removed from the
// route's collection, with a custody entry and a tombstone that consumers
// read at /api/v1/collections/{id}/withdrawn): when its producer deletes the
// source version (fan-out follows the source's tombstones), when a newer
// version from the same producer is withheld (unless the route keeps
// superseded versions), and when the policy changes as above. Expiry at the
// source (retention) is not a retraction and withdraws nothing.
//
// References are decided on the whole picture (gateway.Decider.DecideAll):
// the objects of a batch as one set, and an object the route has not
// decided yet, but its producer submitted, by what the route will decide
// for it. An object that refers to objects its producer has not submitted
// waits for them (parking, below).
//
// Every decision (published, redacted, withheld) is recorded as a custody
// ledger entry in that same write (withdrawals in the write that removes
// the copy), so it is recorded exactly once and
// only if its effect happened: a batch whose write fails records nothing
// and is evaluated again. Marking definitions published with the objects
// that refer to them get a published decision of their own.
//
// Routes that list producers judge each version by the organisation stored
// with it (the submitting user's); a version stored without one is
// withheld by such routes (fail closed).

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-json-experiment/json"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/ctigate/ctigate"
	"github.com/ctigate/ctigate/custody"
	"github.com/ctigate/ctigate/gateway"
	"github.com/ctigate/ctigate/internal/backoff"
	"github.com/ctigate/ctigate/policy"
	"github.com/ctigate/ctigate/stix"
	"github.com/ctigate/ctigate/store"
	"github.com/ctigate/ctigate/telemetry"
)

// Defaults for Options.
const (
	DefaultInterval  = 200 * time.Millisecond
	DefaultBatchSize = 500
	// DefaultBatchBytes bounds the stored bytes of the source versions one
	// batch reads, whatever BatchSize: a batch holds them, their decisions
	// and their copies in memory until it is written.
	DefaultBatchBytes = 32 << 20
	// DefaultLeaseTTL: a worker renews its leases every pass (Interval),
	// so a lease lapses only when its holder died or stalled; another
	// replica then takes the route over within LeaseTTL and a pass.
	DefaultLeaseTTL = 1500 * time.Millisecond
)

// Options configure a Worker.
type Options struct {
	// Store holds the source and published collections.
	Store store.Store
	// Routes are the routes to fill.
	Routes []*policy.Route
	// Current, when set, is the configuration in force, whose routes each
	// pass fills instead of Routes (a replaced snapshot applies from the
	// next pass; a route whose policy changed starts over under its new
	// version, as at a restart).
	Current *gateway.Current
	// Markings knows the marking definitions (the server's registry).
	// Default: TLP only.
	Markings *stix.Markings
	// Logger receives errors and, at debug level, withheld decisions.
	// Default: discard.
	Logger *slog.Logger
	// Clock is the time policies are evaluated at. Default: time.Now.
	Clock func() time.Time
	// Interval is how often Run polls the sources. Default:
	// DefaultInterval.
	Interval time.Duration
	// BatchSize is the number of source versions read and written at a
	// time. Default: DefaultBatchSize.
	BatchSize int
	// BatchBytes bounds a batch by its source versions' stored bytes as
	// well (a version larger than it is a batch of its own). Default:
	// DefaultBatchBytes.
	BatchBytes int64
	// Lease, when set, shares the routes among several workers (gateway
	// replicas over one store): a worker drains a route's source only
	// while it holds the lease of that route and source
	// ("fanout/ROUTE-ID/SOURCE-ID", whatever the policy version), which it
	// takes or renews for LeaseTTL before each batch. Lease reports whether
	// it holds it. A lease its holder stops renewing (it died) passes to
	// another worker after LeaseTTL. Without Lease every worker drains
	// every route, which the store's checkpoint check keeps correct
	// (store.Store.AddObjectsCheckpoint), at the cost of duplicated work.
	Lease func(ctx context.Context, name string, ttl time.Duration) (bool, error)
	// LeaseTTL is the lease's lifetime. Default: DefaultLeaseTTL.
	LeaseTTL time.Duration
	// Release, when set with Lease, gives a lease up (when this worker
	// holds it): ReleaseLeases, at a clean stop, gives up the leases the
	// worker holds, so that another replica takes their routes over at
	// once rather than after LeaseTTL.
	Release func(ctx context.Context, name string) error
	// TracerProvider and MeterProvider receive the spans of each batch
	// and the decision, lag and queue-depth metrics (see package
	// telemetry). Default: no-op.
	TracerProvider trace.TracerProvider
	MeterProvider  metric.MeterProvider
	// OnPublish, when set, is called with a route's collection id after a
	// write that published object versions into it (e.g. to wake the
	// search indexer). It must not block.
	OnPublish func(collection string)
}

// Worker publishes inbound versions into routes. It is safe for
// concurrent use; passes run one at a time.
type Worker struct {
	st       store.Store
	routes   []*policy.Route
	current  *gateway.Current
	markings *stix.Markings
	log      *slog.Logger
	clock    func() time.Time
	interval time.Duration
	batch    int
	bytes    int64 // Options.BatchBytes
	lease    func(ctx context.Context, name string, ttl time.Duration) (bool, error)
	leaseTTL time.Duration
	giveUp   func(ctx context.Context, name string) error // Options.Release
	held     map[string]bool                              // leases taken by this worker (under mu)
	wake     chan struct{}
	publish  func(collection string)

	mu     sync.Mutex      // held by a pass
	warned map[string]bool // checkpoints whose re-evaluation was announced

	released map[string]time.Time // checkpoint name -> the checkpoint when its parked objects were last looked at (under mu)
	narrowed []narrowed           // copies a policy change withdrew in the pass under way (under mu)
	inForce  map[string]bool      // checkpoint names this worker has made the version in force (takeOver; under mu)
	fresh    map[string]bool      // checkpoint names whose route holds no copy an earlier version made (under mu)

	tracer  trace.Tracer
	metrics *telemetry.Metrics
	links   ingestLinks
	running atomic.Bool
	started chan struct{} // closed when Run starts
	once    sync.Once
}

// New returns a Worker; start it with Run.
func New(opts Options) *Worker {
	w := &Worker{
		st: opts.Store, routes: opts.Routes, current: opts.Current, markings: opts.Markings, log: opts.Logger,
		clock: opts.Clock, interval: opts.Interval, batch: opts.BatchSize, bytes: opts.BatchBytes,
		lease: opts.Lease, leaseTTL: opts.LeaseTTL, giveUp: opts.Release, held: map[string]bool{}, publish: opts.OnPublish,
		wake: make(chan struct{}, 1), warned: map[string]bool{}, started: make(chan struct{}), released: map[string]time.Time{},
		inForce: map[string]bool{}, fresh: map[string]bool{},
	}
	if w.leaseTTL <= 0 {
		w.leaseTTL = DefaultLeaseTTL
	}
	if w.markings == nil {
		w.markings = stix.NewMarkings()
	}
	if w.log == nil {
		w.log = slog.New(slog.DiscardHandler)
	}
	if w.clock == nil {
		w.clock = time.Now
	}
	if w.interval <= 0 {
		w.interval = DefaultInterval
	}
	if w.batch <= 0 {
		w.batch = DefaultBatchSize
	}
	if w.bytes <= 0 {
		w.bytes = DefaultBatchBytes
	}
	w.initTelemetry(opts.TracerProvider, opts.MeterProvider)
	return w
}

// Notify wakes Run for a pass now, e.g. after an ingest. It never blocks.
func (w *Worker) Notify() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// Started is closed once Run has started (Running is then nil until it
// returns): a server waits for it before it says it serves.
func (w *Worker) Started() <-chan struct{} { return w.started }

// Run makes passes every Interval, and whenever Notify is called, until
// ctx is done; then it returns nil once the pass under way has stopped.
// After a failed pass it waits longer each time (from Interval, doubling,
// up to 30 seconds; a Notify, which means a write succeeded, retries at
// once), and logs the failure once, then once more when a pass succeeds
// again (package backoff).
func (w *Worker) Run(ctx context.Context) error {
	w.running.Store(true)
	defer w.running.Store(false)
	w.once.Do(func() { close(w.started) })
	t := time.NewTicker(w.interval)
	defer t.Stop()
	retry := backoff.Retry{What: "fanout: pass", Log: w.log, Min: w.interval}
	for {
		_, err := w.RunOnce(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if err == nil {
			retry.Succeeded()
			select {
			case <-ctx.Done():
				return nil
			case <-t.C:
			case <-w.wake:
			}
			continue
		}
		wait := time.NewTimer(retry.Failed(err))
		select {
		case <-ctx.Done():
			wait.Stop()
			return nil
		case <-wait.C:
		case <-w.wake:
			wait.Stop()
		}
	}
}

// ReleaseLeases gives up the leases this worker holds (Options.Release),
// after the pass under way if any; call it when the worker will not run
// again (a clean stop, after the last pass). A lease it fails to give up
// lapses after LeaseTTL.
func (w *Worker) ReleaseLeases(ctx context.Context) {
	if w.giveUp == nil {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for name, held := range w.held {
		if !held {
			continue
		}
		if err := w.giveUp(ctx, name); err != nil {
			w.log.Warn("fanout: lease not released; another replica takes it over when it lapses", "lease", name, "err", err)
			continue
		}
		delete(w.held, name)
	}
}

// RunOnce brings every route up to date with its sources and returns the
// number of source versions it evaluated (counting each route apart).
func (w *Worker) RunOnce(ctx context.Context) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	total := 0
	var errs []error
	for _, r := range w.liveRoutes() {
		for _, src := range r.Sources() {
			n, err := w.drain(ctx, r, src)
			total += n
			if err != nil {
				errs = append(errs, fmt.Errorf("route %q, source %s: %w", r.Name(), src, err))
			}
		}
	}
	if len(w.narrowed) > 0 {
		if err := w.reportDeliveries(ctx, w.narrowed); err != nil {
			w.log.Warn("fanout: reading whom withdrawn copies had been delivered to", "err", err)
		}
		w.narrowed = nil
	}
	return total, errors.Join(errs...)
}

// liveRoutes are the routes in force: those of the current snapshot, or
// the fixed ones.
func (w *Worker) liveRoutes() []*policy.Route {
	if w.current != nil {
		return w.current.Load().Routes
	}
	return w.routes
}

// CheckpointName is the name of the checkpoint of route r over source src
// (gateway.CheckpointName).
func CheckpointName(r *policy.Route, src string) string { return gateway.CheckpointName(r, src) }

// DecidedThrough returns the date_added through which every route of
// routes that reads src has decided src's versions (the least of their
// checkpoints in st; the zero time when one has decided none), and false
// when none of them reads src.
func DecidedThrough(ctx context.Context, st interface {
	Checkpoint(ctx context.Context, name string) (time.Time, error)
}, routes []*policy.Route, src string) (time.Time, bool, error) {
	var through time.Time
	read := false
	for _, r := range routes {
		if !slices.Contains(r.Sources(), src) {
			continue
		}
		at, err := st.Checkpoint(ctx, CheckpointName(r, src))
		if err != nil {
			return time.Time{}, false, err
		}
		if !read || at.Before(through) {
			through = at
		}
		read = true
	}
	return through, read, nil
}

// leaseName names the lease of route r over src: one per route and source,
// whatever the policy version, so that two workers on different versions
// (a reload under way) do not drain it at once.
func leaseName(r *policy.Route, src string) string { return "fanout/" + r.ID() + "/" + src }

// inForceName names the checkpoint that records which policy version last
// drained r over src (versionMark).
func inForceName(r *policy.Route, src string) string { return leaseName(r, src) + "/in-force" }

// versionMark encodes a policy version as a checkpoint value (its first 48
// bits, as microseconds: both backends keep those exactly).
func versionMark(version string) time.Time {
	var u int64
	for i := 0; i < 12 && i < len(version); i++ {
		c := version[i]
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		}
		u = u<<4 | int64(c&0xf)
	}
	return time.UnixMicro(u + 1).UTC() // never the zero time
}

// takeOver starts r's policy version over src from the beginning when
// another version drained it last: a policy that returns to an earlier
// version (A, then B, then A again) must re-evaluate the history B
// changed, not resume where A stopped. The version's checkpoints go back to
// the start first, then the marker records it: a crash in between starts it
// over again, which changes nothing more.
func (w *Worker) takeOver(ctx context.Context, r *policy.Route, src string) error {
	mark, err := w.st.Checkpoint(ctx, inForceName(r, src))
	if err != nil {
		return err
	}
	want := versionMark(r.Version())
	if mark.Equal(want) {
		return nil
	}
	if !mark.IsZero() {
		for _, name := range []string{CheckpointName(r, src), CheckpointName(r, src) + "/tombstones"} {
			cp, err := w.st.Checkpoint(ctx, name)
			if err != nil {
				return err
			}
			if cp.IsZero() {
				continue
			}
			if _, err := w.st.AddObjectsCheckpoint(ctx, r.ID(), nil, nil, name, cp, time.Time{}); err != nil {
				return err
			}
		}
		delete(w.warned, CheckpointName(r, src))
		delete(w.fresh, CheckpointName(r, src))
	}
	_, err = w.st.AddObjectsCheckpoint(ctx, r.ID(), nil, nil, inForceName(r, src), mark, want)
	return err
}

// drain processes batches of src for r until it has caught up.
func (w *Worker) drain(ctx context.Context, r *policy.Route, src string) (int, error) {
	name := CheckpointName(r, src)
	total := 0
	for first := true; ; first = false {
		if err := ctx.Err(); err != nil {
			return total, err
		}
		if w.lease != nil {
			held, err := w.lease(ctx, leaseName(r, src), w.leaseTTL)
			if err != nil {
				return total, err
			}
			w.held[leaseName(r, src)] = held
			if !held {
				delete(w.inForce, name) // another worker drains it, maybe under another version
				delete(w.fresh, name)
				return total, nil
			}
		}
		if first && !w.inForce[name] {
			if err := w.takeOver(ctx, r, src); err != nil {
				return total, err
			}
			w.inForce[name] = true
		}
		cp, err := w.st.Checkpoint(ctx, name)
		if err != nil {
			w.metrics.StoreError(ctx, "checkpoint")
			return total, err
		}
		if cp.IsZero() && !w.warned[name] {
			w.announce(ctx, r, src)
			w.warned[name] = true
		}
		if _, ok := w.fresh[name]; !ok {
			// Whether the route's collection may hold copies this version
			// did not make (an earlier version's, to replace): unknown
			// until this worker has caught up once, unless the version
			// starts on an empty collection.
			w.fresh[name] = false
			if cp.IsZero() {
				p, err := w.st.Objects(ctx, r.ID(), store.Query{Limit: 1, WithoutRaw: true})
				if err != nil {
					return total, err
				}
				w.fresh[name] = len(p.Objects) == 0
			}
		}
		page, err := w.st.Objects(ctx, src, store.Query{
			AddedAfter: cp, Versions: []store.VersionMatch{{Kind: store.All}}, Limit: w.batch, MaxBytes: w.bytes,
		})
		if err != nil {
			w.metrics.StoreError(ctx, "objects")
			return total, err
		}
		if len(page.Objects) == 0 {
			w.fresh[name] = true // caught up: every source version was decided under this version
			return total, errors.Join(w.retract(ctx, r, src), w.release(ctx, r, src, name))
		}
		if err := w.process(ctx, r, src, name, cp, page); err != nil {
			if ctigate.KindOf(err) == ctigate.Conflict {
				// Another worker (replica) wrote this batch first; its
				// decisions stand. Go on from the checkpoint it set.
				continue
			}
			return total, err
		}
		total += len(page.Objects)
		if !page.More {
			w.fresh[name] = true
			return total, errors.Join(w.retract(ctx, r, src), w.release(ctx, r, src, name))
		}
	}
}

// announce tells the operator that a policy version starts over a route
// that already published objects, from a source that holds some: history
// is re-evaluated, and what was published before stays published.
func (w *Worker) announce(ctx context.Context, r *policy.Route, src string) {
	p, err := w.st.Objects(ctx, r.ID(), store.Query{Limit: 1, WithoutRaw: true})
	if err != nil || len(p.Objects) == 0 {
		return
	}
	// A source that holds nothing has no history to re-evaluate: its
	// checkpoint stays zero, and it would be announced at every start.
	p, err = w.st.Objects(ctx, src, store.Query{Limit: 1, WithoutRaw: true, Versions: []store.VersionMatch{{Kind: store.All}}})
	if err != nil || len(p.Objects) == 0 {
		return
	}
	w.log.Warn("fanout: new policy version for a route that already published objects: re-evaluating the source's history under it; "+
		"objects published under earlier versions remain published (GET /api/v1/decisions?route=NAME lists every decision with its policy version)",
		"route", r.Name(), "policy_version", r.Version(), "source", src)
}

// batch is what one batch of one route publishes.
type batch struct {
	w       *Worker
	ctx     context.Context
	route   *policy.Route
	src     string
	out     []store.Object
	ds      []store.Decision // the decisions of the batch, in order
	orgs    []string         // orgs[i]: the producing organisation of ds[i]'s object
	now     time.Time
	decider *gateway.Decider
	// fresh: the route holds no copy of these versions that another policy
	// version made, so a published decision replaces nothing.
	fresh bool
}

func (b *batch) publish(o store.Object) {
	b.out = append(b.out, o)
	b.decider.Mark(o.ID)
}

// decide adds the record of a decision about o, the source version.
func (b *batch) decide(o *store.Object, d store.Decision) {
	d.Route, d.Collection, d.PolicyVersion = b.route.Name(), b.route.ID(), b.route.Version()
	d.ObjectID, d.ObjectVersion, d.Source = o.ID, o.Version, b.src
	b.ds = append(b.ds, d)
	b.orgs = append(b.orgs, o.Producer)
}

// record turns a policy decision into its record.
func record(d *policy.Decision) store.Decision {
	r := store.Decision{
		Action: d.Action.String(), Reason: string(d.Reason), Detail: d.Detail,
		OriginalSHA256: d.OriginalSHA256, PublishedSHA256: d.PublishedSHA256,
	}
	for _, rm := range d.Removed {
		r.Removed = append(r.Removed, rm.Path)
	}
	return r
}

// process evaluates objs (the source's versions after the checkpoint, in
// date_added order) for r, withdraws the copies the decisions take back,
// and writes the results with the new checkpoint.
func (w *Worker) process(ctx context.Context, r *policy.Route, src, name string, from time.Time, page store.Page) (err error) {
	objs := page.Objects
	ctx, span := w.startBatch(ctx, r, src, objs)
	defer func() { endSpan(span, err) }()
	now := w.clock()
	holds := gateway.NewHolds(ctx, w.st, r.ID(), "")
	b := &batch{w: w, ctx: ctx, route: r, src: src, now: now, fresh: w.fresh[name], decider: &gateway.Decider{
		Markings: w.markings, Route: r, Now: now, Holds: holds.Holds,
		Lookahead: gateway.SourceLookahead(ctx, w.st, r, src, objs[len(objs)-1].DateAdded),
	}}
	_, eval := w.tracer.Start(ctx, spanEvaluate)
	defer eval.End() // ended below on success; ending twice is harmless
	// Which of the batch's objects the route holds a version of (earlier
	// versions it may withdraw, copies it may replace): one read for a
	// batch of some size, rather than one per object.
	if len(objs) >= 8 {
		ids := make([]string, len(objs))
		for i := range objs {
			ids[i] = objs[i].ID
		}
		if err := holds.Prefetch(ids); err != nil {
			return err
		}
	}
	gs := make([]gateway.Object, len(objs))
	for i := range objs {
		o := &objs[i]
		// Producer is "" for versions stored before producers were
		// recorded: routes with producers withhold them.
		gs[i] = gateway.StoredObject(o)
	}
	var newer []gateway.Object
	if !page.OneVersionEach { // else no version of these ids but theirs is stored
		if newer, err = w.newerVersions(ctx, src, objs); err != nil {
			return err
		}
	}
	judged, err := b.decider.DecideAll(gs, newer...)
	if err != nil {
		return err
	}
	for i := range objs {
		if j := &judged[i]; j.Invalid != nil {
			j.Decision = policy.Decision{Action: policy.Withhold, Reason: policy.ReasonInvalid, Detail: j.Invalid.Error(), OriginalSHA256: objs[i].Hash}
		}
	}
	parked, err := w.park(ctx, r, name, objs, judged, now)
	if err != nil {
		return err
	}
	for i := range objs {
		if parked[i] {
			// Not decided yet; but a copy of this version that an earlier
			// policy published, and this one would not publish as it is,
			// goes now (narrowing does not wait).
			if err := b.withdrawFor(&objs[i], &judged[i].Decision, true); err != nil {
				return err
			}
			continue
		}
		if err := b.apply(&objs[i], judged[i].Decision); err != nil {
			return err
		}
	}
	eval.End()
	wctx, write := w.tracer.Start(ctx, spanWrite)
	res, err := w.st.AddObjectsCheckpoint(wctx, r.ID(), b.out, b.ds, name, from, objs[len(objs)-1].DateAdded)
	endSpan(write, err)
	if err != nil {
		w.metrics.StoreError(ctx, "add_objects_checkpoint")
		return err
	}
	w.recordDecisions(ctx, span, r, b.ds, b.orgs)
	if len(b.out) > 0 && w.publish != nil {
		w.publish(r.ID())
	}
	for i, a := range res {
		if a.Existed && a.Hash != b.out[i].Hash && a.Hash != ([32]byte{}) {
			// Published from another source first (another submitter's
			// copy of the same version), or by another worker meanwhile:
			// the first copy stays.
			w.log.Info("fanout: a different copy of this version is published and stays",
				"route", r.Name(), "id", b.out[i].ID, "version", b.out[i].Version)
		}
	}
	return nil
}

// newerVersions returns, for the objects of a batch, the newest version
// of each that src holds when it is newer than every version of it in the
// batch and from the same producer: an older version arriving after a
// newer one is decided with it, so that it is superseded when the route
// withholds the newer (as it would have been had they arrived in order).
func (w *Worker) newerVersions(ctx context.Context, src string, objs []store.Object) ([]gateway.Object, error) {
	newest := map[string]store.Object{} // id -> the batch's newest version
	ids := make([]string, 0, len(objs))
	for _, o := range objs {
		if n, ok := newest[o.ID]; !ok || o.Version.After(n.Version) {
			if !ok {
				ids = append(ids, o.ID)
			}
			newest[o.ID] = o
		}
	}
	p, err := w.st.Objects(ctx, src, store.Query{IDs: ids, Limit: len(ids) + 1, WithoutRaw: true}) // the last version of each
	if err != nil {
		return nil, err
	}
	var out []gateway.Object
	for _, v := range p.Objects {
		n := newest[v.ID]
		if !v.Version.After(n.Version) {
			continue
		}
		q, err := w.st.Objects(ctx, src, store.Query{IDs: []string{v.ID}, Versions: []store.VersionMatch{{Kind: store.At, At: v.Version}}})
		if err != nil {
			return nil, err
		}
		for _, o := range q.Objects {
			if o.Producer == n.Producer {
				out = append(out, gateway.StoredObject(&o))
			}
		}
	}
	return out, nil
}

// apply carries out the decision d about source version o in the batch:
// withdrawals it implies, its record, and the published copy with the
// marking definitions it needs.
func (b *batch) apply(o *store.Object, d policy.Decision) error {
	if err := b.withdrawFor(o, &d, false); err != nil {
		return err
	}
	if d.Action == policy.Withhold {
		b.w.log.Debug("fanout: withheld", "route", b.route.Name(), "policy_version", b.route.Version(), "id", o.ID,
			"version", o.Version, "reason", d.Reason, "detail", d.Detail)
		b.decide(o, record(&d))
		return nil
	}
	// Marking definitions the published object refers to go first, so a
	// reader meets a definition before its use; so does the gateway's
	// extension definition (and its creator) for a copy that uses it.
	if err := b.definitions(o.ID, d.Object); err != nil {
		return err
	}
	if bytes.Contains(d.Object, []byte(policy.RedactionExtension)) {
		if err := b.gatewayObjects(o.ID); err != nil {
			return err
		}
	}
	b.decide(o, record(&d))
	b.publish(store.Object{
		ID: o.ID, Type: o.Type, SpecVersion: o.SpecVersion, Version: o.Version,
		Raw: d.Object, Hash: d.PublishedSHA256, Producer: o.Producer,
	})
	return nil
}

// Reasons a route withdraws a copy it published, besides the policy's
// withholding reasons (Tombstone.Reason, the custody entry's reason).
const (
	ReasonRetracted = "retracted" // the producer deleted the source version
	ReasonReplaced  = "replaced"  // the route now publishes a different copy of the same version
)

// withdrawFor withdraws, before the batch is written, what the decision d
// about source version o takes back from the route's collection: when o is
// withheld, the route's copy of o's version (the policy no longer
// publishes it: narrowing) and, unless the route keeps superseded
// versions, its copies of o's earlier versions from the same producer;
// when o publishes, a different copy of o's version published before
// (say, in full under a wider policy), which the new copy replaces. Only
// copies from o's producer are touched. With sameVersion, only the copy of
// o's version is (d is provisional: o waits for references).
func (b *batch) withdrawFor(o *store.Object, d *policy.Decision, sameVersion bool) error {
	if d.Reason == policy.ReasonMarkingDefinition {
		return nil // published with the objects that use it, never on its own
	}
	if d.Action != policy.Withhold && b.fresh {
		return nil // nothing to replace, and publishing withdraws nothing
	}
	held, err := b.decider.Holds(o.ID)
	if err != nil || !held {
		return err
	}
	p, err := b.w.st.Objects(b.ctx, b.route.ID(), store.Query{IDs: []string{o.ID}, Versions: []store.VersionMatch{{Kind: store.All}}})
	if err != nil {
		return err
	}
	for _, c := range p.Objects {
		if c.Producer != o.Producer {
			continue
		}
		var reason, detail string
		switch {
		case d.Action == policy.Withhold && c.Version.Equal(o.Version):
			reason, detail = string(d.Reason), "policy "+b.route.Version()+" withholds this version: "+d.Detail
		case d.Action == policy.Withhold && c.Version.Before(o.Version) && !b.route.KeepsSuperseded() && !sameVersion:
			reason, detail = string(policy.ReasonSuperseded), fmt.Sprintf("the newer version %s is withheld (%s)", o.Version.Format(time.RFC3339Nano), d.Reason)
		case d.Action != policy.Withhold && c.Version.Equal(o.Version) && c.Hash != d.PublishedSHA256 && c.Hash != ([32]byte{}):
			reason, detail = ReasonReplaced, "policy "+b.route.Version()+" publishes a different copy of this version"
		default:
			continue
		}
		if err := b.w.withdraw(b.ctx, b.route, b.src, c, reason, detail); err != nil {
			return err
		}
	}
	return nil
}

// narrowed is a copy a policy change withdrew.
type narrowed struct {
	route       *policy.Route
	id, version string
	dateAdded   time.Time // the copy's date_added in the route's collection
}

// reportDeliveries tells the operator, for each copy a policy change
// withdrew, whether it had already been delivered, and to whom (from the
// custody ledger's delivered entries for the route's collection): one
// warning per copy delivered, naming the organisations and users and how
// many times. What was delivered cannot be taken back; the consumers'
// withdrawn list tells their tools.
func (w *Worker) reportDeliveries(ctx context.Context, copies []narrowed) error {
	led, ok := w.st.(gateway.DeliveryLedger)
	if !ok {
		return nil
	}
	type key struct{ coll, id, version string }
	want := map[key]*narrowed{}
	to := map[key]map[string]int{} // copy -> "organisation (user)" -> deliveries
	for i := range copies {
		c := &copies[i]
		k := key{c.route.ID(), c.id, c.version}
		want[k] = c
		es, err := gateway.DeliveriesOf(ctx, led, c.route.ID(), c.dateAdded, 0)
		if err != nil {
			return err
		}
		for _, e := range es {
			if to[k] == nil {
				to[k] = map[string]int{}
			}
			to[k][e.Org+" ("+e.User+")"]++
		}
	}
	for k, who := range to {
		c := want[k]
		var list []string
		for _, name := range slices.Sorted(maps.Keys(who)) {
			list = append(list, fmt.Sprintf("%s ×%d", name, who[name]))
		}
		w.log.Warn("fanout: the route's new policy withdrew a copy that had already been delivered; consumers learn of it from the collection's withdrawn list",
			"route", c.route.Name(), "policy_version", c.route.Version(), "id", c.id, "version", c.version, "delivered_to", strings.Join(list, ", "))
	}
	return nil
}

// withdraw removes the route's copy c, recording a withdrawn custody entry
// and a tombstone (store.RemovalWithdrawn). A copy already gone is no
// error: withdrawing is idempotent, so a batch done again after a crash
// does it once.
func (w *Worker) withdraw(ctx context.Context, r *policy.Route, src string, c store.Object, reason, detail string) error {
	rctx := store.WithRemoval(ctx, store.Removal{
		Kind: store.RemovalWithdrawn, Route: r.Name(), PolicyVersion: r.Version(), Source: src, Reason: reason, Detail: detail,
	})
	_, err := w.st.DeleteObject(rctx, r.ID(), c.ID, []store.VersionMatch{{Kind: store.At, At: c.Version}}, []string{c.SpecVersion})
	if err != nil && ctigate.KindOf(err) != ctigate.NotFound {
		w.metrics.StoreError(ctx, "withdraw")
		return err
	}
	if err == nil {
		if reason != ReasonRetracted && reason != string(policy.ReasonSuperseded) {
			w.narrowed = append(w.narrowed, narrowed{route: r, id: c.ID, version: custody.FormatVersion(c.Version), dateAdded: c.DateAdded})
		}
		w.metrics.Decision(ctx, r.Name(), store.RemovalWithdrawn, reason, "", 1)
		w.log.Info("fanout: withdrew a published copy", "route", r.Name(), "id", c.ID, "version", c.Version, "reason", reason,
			"detail", detail, "deliveries", "GET /api/v1/audit/entries?object_id="+c.ID)
	}
	return nil
}

// Waiting for references. An object whose references name objects its
// producer has not submitted yet is parked: it is not decided, the
// route's checkpoint moves on without it, and an entry in a collection of
// the fan-out's own (gateway.ParkingOf the checkpoint's name, never served)
// records it. Each pass releases the entries whose references have
// arrived or whose route's reference_wait has passed: they are decided
// then (unarrived references as unpublished). Entries are written before
// the checkpoint moves and removed after their decisions are written, so
// a crash loses none (one released twice has its decision recorded
// twice, and its copy stored once). A producer has at most the route's
// parked_limit entries per source; beyond it objects are decided at once.

// parkEntry is what a parking entry's bytes hold.
type parkEntry struct {
	DateAdded int64    `json:"date_added"` // the source version's, µs
	Since     int64    `json:"since"`      // when it was parked, µs
	Awaiting  []string `json:"awaiting"`
}

// awaits reports whether decision d may change when the references it
// awaits arrive: it was published with references trimmed, or withheld
// for its references (not for its markings, type or the like).
func awaits(d *policy.Decision) bool {
	if d.Action != policy.Withhold {
		return true
	}
	return d.Reason == policy.ReasonReference || d.Reason == policy.ReasonRequiredRedacted
}

// park parks the objects whose decisions await references (up to the
// route's parked_limit for the source) and returns which it parked.
func (w *Worker) park(ctx context.Context, r *policy.Route, name string, objs []store.Object, judged []gateway.Judged, now time.Time) (map[int]bool, error) {
	if r.ReferenceWait() <= 0 {
		return nil, nil
	}
	var want []int
	for i := range judged {
		if len(judged[i].Awaiting) > 0 && judged[i].Invalid == nil && awaits(&judged[i].Decision) {
			want = append(want, i)
		}
	}
	if len(want) == 0 {
		return nil, nil
	}
	waiting, err := w.parkedEntries(ctx, gateway.ParkingOf(name))
	if err != nil {
		return nil, err
	}
	count := map[string]int{}
	for _, e := range waiting {
		count[e.Producer]++
	}
	parked := map[int]bool{}
	var entries []store.Object
	for _, i := range want {
		o := &objs[i]
		if count[o.Producer] >= r.ParkedLimit() {
			d := &judged[i].Decision
			d.Detail = strings.TrimPrefix(d.Detail+"; ", "; ") + fmt.Sprintf("decided without waiting for %s: %d objects of %s already wait for references on this route (parked_limit %d)",
				strings.Join(judged[i].Awaiting, ", "), count[o.Producer], o.Producer, r.ParkedLimit())
			w.log.Warn("fanout: parked_limit reached; deciding without waiting for references", "route", r.Name(), "producer", o.Producer, "limit", r.ParkedLimit(), "id", o.ID)
			continue
		}
		count[o.Producer]++
		raw, err := json.Marshal(parkEntry{DateAdded: o.DateAdded.UnixMicro(), Since: now.UnixMicro(), Awaiting: judged[i].Awaiting})
		if err != nil {
			return nil, err
		}
		entries = append(entries, store.Object{ID: o.ID, Type: o.Type, SpecVersion: o.SpecVersion, Version: o.Version, Raw: raw, Producer: o.Producer})
		parked[i] = true
	}
	if len(entries) > 0 {
		if _, err := w.st.AddObjects(ctx, gateway.ParkingOf(name), entries); err != nil {
			w.metrics.StoreError(ctx, "park")
			return nil, err
		}
		w.log.Debug("fanout: parked objects waiting for references", "route", r.Name(), "n", len(entries))
	}
	return parked, nil
}

// parkedEntries reads every entry of a parking collection (with bytes).
func (w *Worker) parkedEntries(ctx context.Context, coll string) ([]store.Object, error) {
	var out []store.Object
	q := store.Query{Versions: []store.VersionMatch{{Kind: store.All}}}
	for {
		p, err := w.st.Objects(ctx, coll, q)
		if err != nil {
			if ctigate.KindOf(err) == ctigate.NotFound {
				return out, nil
			}
			return nil, err
		}
		out = append(out, p.Objects...)
		if !p.More {
			return out, nil
		}
		q.Next = p.Next
	}
}

// release decides the parked objects of r over src whose references
// arrived or whose wait is over.
func (w *Worker) release(ctx context.Context, r *policy.Route, src, name string) error {
	coll := gateway.ParkingOf(name)
	if p, err := w.st.Objects(ctx, coll, store.Query{Limit: 1, WithoutRaw: true}); err != nil || len(p.Objects) == 0 {
		if ctigate.KindOf(err) == ctigate.NotFound {
			return nil
		}
		return err
	}
	entries, err := w.parkedEntries(ctx, coll)
	if err != nil {
		return err
	}
	now := w.clock()
	cp, err := w.st.Checkpoint(ctx, name)
	if err != nil {
		return err
	}
	// Whether a reference arrived is worth asking only when the source
	// grew since the last time.
	grew := !w.released[name].Equal(cp)
	b := &batch{w: w, ctx: ctx, route: r, src: src, now: now, decider: &gateway.Decider{
		Markings: w.markings, Route: r, Now: now, Holds: gateway.StoreHolds(ctx, w.st, r.ID(), ""),
		Lookahead: gateway.SourceLookahead(ctx, w.st, r, src, cp),
	}}
	var due []store.Object // parking entries
	expired := map[string]bool{}
	for _, e := range entries {
		var pe parkEntry
		if err := json.Unmarshal(e.Raw, &pe); err != nil {
			due, expired[e.ID+e.Version.String()] = append(due, e), true // unreadable: decide it now
			continue
		}
		if now.Sub(time.UnixMicro(pe.Since)) >= r.ReferenceWait() {
			due, expired[e.ID+e.Version.String()] = append(due, e), true
			continue
		}
		if grew && w.arrived(b, pe.Awaiting, e.Producer) {
			due = append(due, e)
		}
	}
	w.released[name] = cp
	if len(due) == 0 {
		return nil
	}
	held, err := w.sourceVersions(ctx, src, due)
	if err != nil {
		return err
	}
	var objs []store.Object
	var gone []store.Object // entries whose source version no longer exists
	for _, e := range due {
		o, ok := held[sourceKey{e.ID, e.Version.UnixNano()}]
		if !ok {
			gone = append(gone, e)
			continue
		}
		objs = append(objs, o)
	}
	var decided []store.Object
	if len(objs) > 0 {
		gs := make([]gateway.Object, len(objs))
		for i, o := range objs {
			gs[i] = gateway.StoredObject(&o)
		}
		judged, err := b.decider.DecideAll(gs)
		if err != nil {
			return err
		}
		for i := range objs {
			j := &judged[i]
			o := &objs[i]
			if j.Invalid != nil {
				j.Decision = policy.Decision{Action: policy.Withhold, Reason: policy.ReasonInvalid, Detail: j.Invalid.Error(), OriginalSHA256: o.Hash}
			}
			if !expired[o.ID+o.Version.String()] && len(j.Awaiting) > 0 && awaits(&j.Decision) {
				continue // some references arrived, not all: it waits on
			}
			if err := b.apply(o, j.Decision); err != nil {
				return err
			}
			decided = append(decided, *o)
		}
	}
	if len(decided) > 0 {
		from, err := w.st.Checkpoint(ctx, name+"/released")
		if err != nil {
			return err
		}
		if _, err := w.st.AddObjectsCheckpoint(ctx, r.ID(), b.out, b.ds, name+"/released", from, now); err != nil {
			if ctigate.KindOf(err) == ctigate.Conflict {
				return nil // another worker released them
			}
			return err
		}
		w.recordDecisions(ctx, trace.SpanFromContext(ctx), r, b.ds, b.orgs)
		if len(b.out) > 0 && w.publish != nil {
			w.publish(r.ID())
		}
	}
	return w.unpark(store.WithRemoval(ctx, store.Removal{Kind: store.RemovalReleased}), coll, append(gone, decided...))
}

// sourceKey names one version of an object (sourceVersions).
type sourceKey struct {
	id      string
	version int64 // UnixNano
}

// sourceIDs is how many ids sourceVersions asks for in one query.
const sourceIDs = 256

// sourceVersions returns the versions of src that the parking entries es
// stand for (each entry's id at its version), those src still holds: a
// query for a few hundred ids at a time, where one query an entry made a
// read transaction each.
func (w *Worker) sourceVersions(ctx context.Context, src string, es []store.Object) (map[sourceKey]store.Object, error) {
	want := make(map[sourceKey]bool, len(es))
	ids := make([]string, 0, len(es))
	for _, e := range es {
		want[sourceKey{e.ID, e.Version.UnixNano()}] = true
		ids = append(ids, e.ID)
	}
	slices.Sort(ids)
	ids = slices.Compact(ids)
	out := make(map[sourceKey]store.Object, len(es))
	for len(ids) > 0 {
		chunk := ids[:min(len(ids), sourceIDs)]
		ids = ids[len(chunk):]
		q := store.Query{IDs: chunk, Versions: []store.VersionMatch{{Kind: store.All}}}
		for {
			p, err := w.st.Objects(ctx, src, q)
			if err != nil {
				return nil, err
			}
			for _, o := range p.Objects {
				if k := (sourceKey{o.ID, o.Version.UnixNano()}); want[k] {
					out[k] = o
				}
			}
			if !p.More {
				break
			}
			q.Next = p.Next
		}
	}
	return out, nil
}

// unparkParallel is how many parking entries unpark removes at a time.
const unparkParallel = 64

// unpark removes the parking entries es from coll, several at a time:
// concurrent writes share a durable commit (bbolt's group commit; Redis
// pipelines them over its connections), where removing one at a time took
// a commit each, and a bundle whose references arrive in a later envelope
// can release thousands at once. Each removal is recorded (custody
// "deleted", reason released) as before; entries already gone are passed
// over. It returns the first error, once every removal under way is done.
func (w *Worker) unpark(ctx context.Context, coll string, es []store.Object) error {
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
	)
	sem := make(chan struct{}, unparkParallel)
	for _, e := range es {
		if ctx.Err() != nil {
			break
		}
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			_, err := w.st.DeleteObject(ctx, coll, e.ID, []store.VersionMatch{{Kind: store.At, At: e.Version}}, nil)
			if err != nil && ctigate.KindOf(err) != ctigate.NotFound {
				mu.Lock()
				if first == nil {
					first = err
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if first == nil {
		first = ctx.Err()
	}
	return first
}

// arrived reports whether any of ids is now published by the route or
// submitted by producer.
func (w *Worker) arrived(b *batch, ids []string, producer string) bool {
	for _, id := range ids {
		if held, err := b.decider.Holds(id); err == nil && held {
			return true
		}
		if _, pending, known, err := b.decider.Lookahead(id, producer); err == nil && (pending || known) {
			return true
		}
	}
	return false
}

// retract withdraws the copies r published from versions taken back from
// src (the source's tombstones that retract, store.Retracts, followed with
// a checkpoint of their own): deleted by their producer, or withdrawn by
// the route that publishes into src when src is another route's
// collection (a chain of routes follows a deletion or a withdrawal to its
// end). A copy stays when a source of r holds the same version from the
// same producer again (another source, re-added, or republished by the
// upstream route) and r publishes it as it is; when r would publish it
// differently now, the copy is replaced. An expired version's tombstone
// is passed over, the checkpoint moving past it: retention is not
// retraction.
func (w *Worker) retract(ctx context.Context, r *policy.Route, src string) error {
	name := CheckpointName(r, src) + "/tombstones"
	for {
		cp, err := w.st.Checkpoint(ctx, name)
		if err != nil {
			return err
		}
		ts, more, err := w.st.Tombstones(ctx, src, cp, w.batch)
		if err != nil {
			w.metrics.StoreError(ctx, "tombstones")
			return err
		}
		if len(ts) == 0 {
			return nil
		}
		now := w.clock()
		b := &batch{w: w, ctx: ctx, route: r, src: src, now: now, decider: &gateway.Decider{
			Markings: w.markings, Route: r, Now: now, Holds: gateway.StoreHolds(ctx, w.st, r.ID(), ""),
		}}
		for _, t := range ts {
			if !store.Retracts(t.Kind) {
				continue // expired: retention, not retraction
			}
			if err := b.retractOne(t); err != nil {
				return err
			}
		}
		_, err = w.st.AddObjectsCheckpoint(ctx, r.ID(), b.out, b.ds, name, cp, ts[len(ts)-1].Removed)
		if err != nil && ctigate.KindOf(err) != ctigate.Conflict {
			return err
		}
		if err == nil {
			w.recordDecisions(ctx, trace.SpanFromContext(ctx), r, b.ds, b.orgs)
			if len(b.out) > 0 && w.publish != nil {
				w.publish(r.ID())
			}
			if !more {
				return nil
			}
		}
	}
}

// retractOne withdraws the route's copy of the version tombstone t
// records, unless a source holds that version again (see retract).
func (b *batch) retractOne(t store.Tombstone) error {
	w, r := b.w, b.route
	p, err := w.st.Objects(b.ctx, r.ID(), store.Query{IDs: []string{t.ID}, Versions: []store.VersionMatch{{Kind: store.At, At: t.Version}}})
	if err != nil {
		return err
	}
	for _, c := range p.Objects {
		if c.Producer != t.Producer {
			continue // another organisation's copy of the same version
		}
		o, from, dec, held, err := b.heldAgain(c)
		if err != nil {
			return err
		}
		if held && dec.Action != policy.Withhold && dec.PublishedSHA256 == c.Hash && o.Producer == c.Producer {
			continue // submitted again: still published as it is
		}
		by := t.Producer
		if by == "" {
			by = "its producer"
		}
		detail := "deleted from source collection " + b.src + " by " + by
		if t.Kind == store.RemovalWithdrawn {
			detail = "withdrawn from source collection " + b.src + " by the route publishing there (" + t.Reason + ")"
		}
		if err := w.withdraw(b.ctx, r, b.src, c, ReasonRetracted, detail); err != nil {
			return err
		}
		if held && dec.Action != policy.Withhold {
			// Published anew from the source that holds it now, with its
			// decision recorded against that source.
			src := b.src
			b.src = from
			err := b.apply(&o, dec)
			b.src = src
			if err != nil {
				return err
			}
		}
	}
	return nil
}

// heldAgain looks for c's version in the route's sources that the route
// publishes now: c's producer's (submitted again) first, else another
// submitter's; it returns that version, its source and the route's
// decision about it (held false when there is none).
func (b *batch) heldAgain(c store.Object) (store.Object, string, policy.Decision, bool, error) {
	w, r := b.w, b.route
	var found []store.Object
	var from []string
	for _, s := range r.Sources() {
		p, err := w.st.Objects(b.ctx, s, store.Query{IDs: []string{c.ID}, Versions: []store.VersionMatch{{Kind: store.At, At: c.Version}}})
		if err != nil {
			return store.Object{}, "", policy.Decision{}, false, err
		}
		for _, o := range p.Objects {
			if o.Producer == c.Producer {
				found, from = append([]store.Object{o}, found...), append([]string{s}, from...)
			} else {
				found, from = append(found, o), append(from, s)
			}
		}
	}
	// The first the route publishes: the producer's own, else another's.
	for i, o := range found {
		j, err := b.decider.DecideAll([]gateway.Object{gateway.StoredObject(&o)})
		if err != nil {
			return store.Object{}, "", policy.Decision{}, false, err
		}
		if j[0].Invalid == nil && j[0].Decision.Action != policy.Withhold {
			return o, from[i], j[0].Decision, true, nil
		}
	}
	return store.Object{}, "", policy.Decision{}, false, nil
}

// definitions publishes the non-TLP marking definitions raw refers to
// (object_marking_refs and granular marking_ref) that the route has not
// published yet and the source collection holds, with a published
// decision each naming referrer, the id of the object that refers to it.
func (b *batch) definitions(referrer string, raw []byte) error {
	if !mayNameDefinitions(raw) {
		return nil
	}
	ids, ok := markingRefs(raw)
	if !ok {
		return nil // Evaluate accepted it; nothing to follow
	}
	for _, id := range ids {
		if _, tlp := stix.StandardTLP(id); tlp {
			continue
		}
		held, err := b.decider.Holds(id)
		if err != nil {
			return err
		}
		if held || b.decider.Published(id) {
			continue
		}
		p, err := b.w.st.Objects(b.ctx, b.src, store.Query{IDs: []string{id}, Types: []string{"marking-definition"}})
		if err != nil {
			return err
		}
		for i := range p.Objects {
			d := &p.Objects[i]
			if b.definitionAllowed(*d) {
				b.publish(*d)
				b.decide(d, store.Decision{
					Action: store.ActionPublished, Detail: "marking definition published with " + referrer,
					OriginalSHA256: d.Hash, PublishedSHA256: d.Hash,
				})
			}
		}
	}
	return nil
}

// markingRefs returns the marking definition ids raw refers to:
// object_marking_refs, then each granular marking's marking_ref; false
// when raw does not decode.
func markingRefs(raw []byte) ([]string, bool) {
	var refs struct {
		Object   []string `json:"object_marking_refs"`
		Granular []struct {
			Ref string `json:"marking_ref"`
		} `json:"granular_markings"`
	}
	if err := json.Unmarshal(raw, &refs); err != nil {
		return nil, false
	}
	ids := refs.Object
	for _, g := range refs.Granular {
		if g.Ref != "" {
			ids = append(ids, g.Ref)
		}
	}
	return ids, true
}

// definitionPrefix begins every marking definition's id.
var definitionPrefix = []byte("marking-definition--")

// mayNameDefinitions is false only where raw can refer to no marking
// definition but the standard TLP ones, which definitions passes over:
// every "marking-definition--" written in raw begins a standard TLP id
// followed by its closing quote, and raw has no \u escape (which could
// spell another). A stored definition's id is that prefix and a UUID
// (ingest checks ids against their type), so a reference to one is
// written so unless escaped. Most published objects carry only a TLP
// marking; they are answered without decoding them.
func mayNameDefinitions(raw []byte) bool {
	if bytes.Contains(raw, []byte(`\u`)) {
		return true
	}
	for i := 0; ; {
		j := bytes.Index(raw[i:], definitionPrefix)
		if j < 0 {
			return false
		}
		start := i + j
		end := start + len(stix.TLP2Red)
		if end >= len(raw) || raw[end] != '"' {
			return true
		}
		if _, ok := stix.StandardTLP(string(raw[start:end])); !ok {
			return true
		}
		i = end
	}
}

// gatewayObjects publishes the gateway's own objects (policy.GatewayObjects:
// its identity and the extension definition that marks modified copies)
// that the route has not published yet, each with a published decision
// naming referrer.
func (b *batch) gatewayObjects(referrer string) error {
	for _, raw := range policy.GatewayObjects() {
		var head struct {
			ID       string `json:"id"`
			Type     string `json:"type"`
			Modified string `json:"modified"`
		}
		if err := json.Unmarshal(raw, &head); err != nil {
			return err
		}
		held, err := b.decider.Holds(head.ID)
		if err != nil {
			return err
		}
		if held || b.decider.Published(head.ID) {
			continue
		}
		v, err := stix.ParseTimestamp(head.Modified)
		if err != nil {
			return err
		}
		h, err := stix.Hash(raw)
		if err != nil {
			return err
		}
		o := store.Object{ID: head.ID, Type: head.Type, SpecVersion: "2.1", Version: v, Raw: raw, Hash: h, Producer: custody.GatewayOrg}
		b.publish(o)
		b.decide(&o, store.Decision{
			Action: store.ActionPublished, Detail: "the gateway's own object, published with " + referrer,
			OriginalSHA256: h, PublishedSHA256: h,
		})
	}
	return nil
}

// definitionAllowed reports whether a marking definition may go out with
// the objects that refer to it. Evaluate does not judge marking
// definitions, but one can itself be marked, and its statement is content:
// it goes out only when it carries no granular markings, no marking the
// gateway does not know, and either no TLP or one within the route's
// ceiling (never TLP:RED). Otherwise the referring objects keep a
// reference the consumer cannot resolve, which reveals only an id.
func (b *batch) definitionAllowed(d store.Object) bool {
	if b.route.ProtectsSource() {
		// A statement ("Copyright CERT-A") may name the producer.
		b.w.log.Debug("fanout: marking definition withheld: the route protects its sources", "route", b.route.Name(), "id", d.ID)
		return false
	}
	res, err := b.w.markings.Of(d.Producer).Resolve(d.Raw)
	switch {
	case err != nil, len(res.Unknown) > 0, len(res.Granular) > 0, res.TLP == stix.TLPRed:
	case res.TLP == stix.TLPNone || res.TLP.Within(b.route.Ceiling()):
		return true
	}
	b.w.log.Debug("fanout: marking definition withheld", "route", b.route.Name(), "id", d.ID, "tlp", res.TLP.String())
	return false
}
