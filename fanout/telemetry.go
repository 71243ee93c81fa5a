package fanout

// Tracing. Each batch of one route over one source is a span of its own
// trace ("fanout.batch", children "policy.evaluate" and
// "store.add_objects_checkpoint"), linked to the spans of the POSTs whose
// versions it processes. With the embedded store the queue is the
// source's date_added log, which has nowhere to carry trace context, so
// it travels in process: the server hands each POST's span context and
// the date_added range of what it stored to Link, and a batch links the
// recent ones whose range meets its own. (Over Redis, a batch that
// another replica than the POST's makes is not linked: the date_added
// log carries no trace context.)

import (
	"context"
	"errors"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/ctigate/ctigate/policy"
	"github.com/ctigate/ctigate/store"
	"github.com/ctigate/ctigate/telemetry"
)

// Span names.
const (
	spanBatch    = "fanout.batch"
	spanEvaluate = "policy.evaluate"
	spanWrite    = "store.add_objects_checkpoint"
)

const (
	maxIngestLinks = 4096 // POST spans remembered for linking
	maxSpanLinks   = 128  // links on one batch span (the SDK's default limit)
	maxBacklog     = 100_000
)

func (w *Worker) initTelemetry(tp trace.TracerProvider, mp metric.MeterProvider) {
	if tp == nil {
		tp = noop.NewTracerProvider()
	}
	w.tracer = tp.Tracer(telemetry.ScopeName + "/fanout")
	m, err := telemetry.NewMetrics(mp)
	if err != nil {
		w.log.Error("fanout: creating metric instruments failed; fan-out metrics are off", "err", err)
		return
	}
	w.metrics = m
	if mp != nil {
		if _, err := m.ObserveBacklog(w.Backlog); err != nil {
			w.log.Error("fanout: observing the backlog failed", "err", err)
		}
	}
}

// ingestLinks remembers the span contexts of recent POSTs with the
// date_added range each stored in a source collection.
type ingestLinks struct {
	mu      sync.Mutex
	entries []ingestLink // a ring of at most maxIngestLinks
	next    int          // where the next entry goes
}

type ingestLink struct {
	src         string
	first, last time.Time
	sc          trace.SpanContext
}

// Link records that the span in ctx (a POST's) stored the versions of
// source collection src added from first to last, so that the batches
// processing them link to it. It never blocks for long.
func (w *Worker) Link(ctx context.Context, src string, first, last time.Time) {
	sc := trace.SpanContextFromContext(ctx)
	if !sc.IsValid() {
		return
	}
	l := &w.links
	l.mu.Lock()
	defer l.mu.Unlock()
	e := ingestLink{src: src, first: first, last: last, sc: sc}
	if len(l.entries) < maxIngestLinks {
		l.entries = append(l.entries, e)
	} else {
		l.entries[l.next] = e
	}
	l.next = (l.next + 1) % maxIngestLinks
}

// linksFor returns links to the POST spans whose versions of src fall in
// [first, last].
func (l *ingestLinks) linksFor(src string, first, last time.Time) []trace.Link {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []trace.Link
	n := len(l.entries)
	for k := 0; k < n && len(out) < maxSpanLinks; k++ { // newest first
		e := &l.entries[(l.next-1-k+2*n)%n]
		if e.src == src && !e.last.Before(first) && !e.first.After(last) {
			out = append(out, trace.Link{SpanContext: e.sc})
		}
	}
	return out
}

// startBatch starts the span of one batch.
func (w *Worker) startBatch(ctx context.Context, r *policy.Route, src string, objs []store.Object) (context.Context, trace.Span) {
	opts := []trace.SpanStartOption{
		trace.WithNewRoot(),
		trace.WithAttributes(
			attribute.String("ctigate.route", r.Name()),
			attribute.String("ctigate.route.collection", r.ID()),
			attribute.String("ctigate.policy_version", r.Version()),
			attribute.String("ctigate.source", src),
			attribute.Int("ctigate.objects", len(objs)),
		),
	}
	if links := w.links.linksFor(src, objs[0].DateAdded, objs[len(objs)-1].DateAdded); len(links) > 0 {
		opts = append(opts, trace.WithLinks(links...))
	}
	return w.tracer.Start(ctx, spanBatch, opts...)
}

// recordDecisions counts the decisions of a written batch.
// recordDecisions counts a batch's decisions in the metrics (withheld ones
// by the producing organisation too: orgs[i] is ds[i]'s) and on its span.
func (w *Worker) recordDecisions(ctx context.Context, span trace.Span, r *policy.Route, ds []store.Decision, orgs []string) {
	type key struct{ action, reason, org string }
	counts := map[key]int{}
	perAction := map[string]int{}
	for i := range ds {
		k := key{action: ds[i].Action, reason: ds[i].Reason}
		if ds[i].Action == store.ActionWithheld && i < len(orgs) {
			k.org = orgs[i]
		}
		counts[k]++
		perAction[ds[i].Action]++
	}
	for k, n := range counts {
		w.metrics.Decision(ctx, r.Name(), k.action, k.reason, k.org, n)
	}
	for a, n := range perAction {
		span.SetAttributes(attribute.Int("ctigate.decisions."+a, n))
	}
}

func endSpan(span trace.Span, err error) {
	if err != nil && !errors.Is(err, context.Canceled) {
		span.SetStatus(codes.Error, "fan-out batch failed")
	}
	span.End()
}

// Running reports an error unless Run is running: a readiness check.
func (w *Worker) Running(context.Context) error {
	if !w.running.Load() {
		return errors.New("fanout: worker not running")
	}
	return nil
}

// Backlog reports, for each route and source, the age of the oldest
// source version after the route's checkpoint and how many there are
// (counted up to 100,000). It reads the store's index, not the objects.
func (w *Worker) Backlog(ctx context.Context) []telemetry.Backlog {
	now := w.clock()
	var out []telemetry.Backlog
	for _, r := range w.liveRoutes() {
		for _, src := range r.Sources() {
			b := telemetry.Backlog{Route: r.Name(), Source: src}
			cp, err := w.st.Checkpoint(ctx, CheckpointName(r, src))
			if err != nil {
				w.metrics.StoreError(ctx, "checkpoint")
				continue
			}
			q := store.Query{AddedAfter: cp, Versions: []store.VersionMatch{{Kind: store.All}}, Limit: 10000, WithoutRaw: true}
			for b.Depth < maxBacklog {
				p, err := w.st.Objects(ctx, src, q)
				if err != nil {
					w.metrics.StoreError(ctx, "objects")
					break
				}
				if len(p.Objects) > 0 && b.Depth == 0 {
					b.Lag = now.Sub(p.Objects[0].DateAdded)
				}
				b.Depth += int64(len(p.Objects))
				if !p.More {
					break
				}
				q.Next = p.Next
			}
			out = append(out, b)
		}
	}
	return out
}
