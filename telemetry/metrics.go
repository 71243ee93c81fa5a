package telemetry

import (
	"context"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"
)

// Attribute keys of the gateway's metrics. Their values are bounded by
// configuration (organisations, routes, collection ids) or by code
// (actions, reasons): never object ids, addresses or user names.
const (
	AttrOrganisation = attribute.Key("ctigate.organisation")
	AttrRoute        = attribute.Key("ctigate.route")
	AttrSource       = attribute.Key("ctigate.source")
	AttrAction       = attribute.Key("ctigate.action")
	AttrReason       = attribute.Key("ctigate.reason")
	AttrOperation    = attribute.Key("ctigate.operation")
)

// Metrics are the gateway's own instruments. A nil *Metrics records
// nothing.
//
//	ctigate.objects.received   {organisation}          objects in POSTed envelopes
//	ctigate.objects.accepted   {organisation}          stored (new or already stored)
//	ctigate.objects.rejected   {organisation, reason}  listed as failures
//	ctigate.fanout.decisions   {route, action, reason, organisation (withheld: the producer's)} published, redacted, withheld, withdrawn
//	ctigate.fanout.lag         {route, source}         age of the oldest unprocessed source version, s
//	ctigate.fanout.queue.depth {route, source}         source versions after the route's checkpoint
//	ctigate.objects.served     {organisation}          objects returned to consumers
//	ctigate.consumer.last_poll {organisation}          time of the last objects read, Unix s
//	ctigate.store.errors       {operation}             failed store calls
//	ctigate.auth.throttled     {reason}                password logins refused unverified (see auth.Throttle)
type Metrics struct {
	received, accepted, rejected metric.Int64Counter
	decisions                    metric.Int64Counter
	served                       metric.Int64Counter
	storeErrors                  metric.Int64Counter
	throttled                    metric.Int64Counter
	lag                          metric.Float64ObservableGauge
	depth                        metric.Int64ObservableGauge
	lastPoll                     metric.Float64ObservableGauge
	meter                        metric.Meter

	mu    sync.Mutex
	polls map[string]time.Time // organisation → last objects read
}

// Backlog is how far one route is behind one source.
type Backlog struct {
	Route, Source string
	Lag           time.Duration // age of the oldest unprocessed version; 0 when none
	Depth         int64         // unprocessed versions
}

// NewMetrics creates the instruments on mp (a no-op provider when nil).
func NewMetrics(mp metric.MeterProvider) (*Metrics, error) {
	if mp == nil {
		mp = noop.NewMeterProvider()
	}
	m := &Metrics{meter: mp.Meter(ScopeName), polls: map[string]time.Time{}}
	var errs [10]error
	m.received, errs[0] = m.meter.Int64Counter("ctigate.objects.received", metric.WithUnit("{object}"),
		metric.WithDescription("Objects received in POSTed envelopes, by producer organisation."))
	m.accepted, errs[1] = m.meter.Int64Counter("ctigate.objects.accepted", metric.WithUnit("{object}"),
		metric.WithDescription("Objects stored (new or already stored), by producer organisation."))
	m.rejected, errs[2] = m.meter.Int64Counter("ctigate.objects.rejected", metric.WithUnit("{object}"),
		metric.WithDescription("Objects refused at ingest, by producer organisation and reason."))
	m.decisions, errs[3] = m.meter.Int64Counter("ctigate.fanout.decisions", metric.WithUnit("{decision}"),
		metric.WithDescription("Route decisions, by route, action (published, redacted, withheld, withdrawn) and reason."))
	m.served, errs[4] = m.meter.Int64Counter("ctigate.objects.served", metric.WithUnit("{object}"),
		metric.WithDescription("Objects returned to consumers, by organisation."))
	m.storeErrors, errs[5] = m.meter.Int64Counter("ctigate.store.errors", metric.WithUnit("{error}"),
		metric.WithDescription("Failed store calls, by operation."))
	m.lag, errs[6] = m.meter.Float64ObservableGauge("ctigate.fanout.lag", metric.WithUnit("s"),
		metric.WithDescription("Age of the oldest source version a route has not processed yet (0 when caught up)."))
	m.depth, errs[7] = m.meter.Int64ObservableGauge("ctigate.fanout.queue.depth", metric.WithUnit("{version}"),
		metric.WithDescription("Source versions after a route's checkpoint."))
	m.lastPoll, errs[8] = m.meter.Float64ObservableGauge("ctigate.consumer.last_poll", metric.WithUnit("s"),
		metric.WithDescription("When an organisation last read objects, Unix time."))
	m.throttled, errs[9] = m.meter.Int64Counter("ctigate.auth.throttled", metric.WithUnit("{request}"),
		metric.WithDescription("Password logins refused without verifying the password, by reason (user_address, address, queue_full, queue_wait)."))
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	if _, err := m.meter.RegisterCallback(m.observePolls, m.lastPoll); err != nil {
		return nil, err
	}
	return m, nil
}

func (m *Metrics) observePolls(_ context.Context, o metric.Observer) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for org, t := range m.polls {
		o.ObserveFloat64(m.lastPoll, float64(t.UnixNano())/1e9, metric.WithAttributes(AttrOrganisation.String(org)))
	}
	return nil
}

// Ingest records one POSTed envelope of a producer organisation: its
// objects received, accepted, and rejected by reason (a bounded code,
// such as an error kind).
func (m *Metrics) Ingest(ctx context.Context, org string, received, accepted int, rejected map[string]int) {
	if m == nil {
		return
	}
	o := metric.WithAttributes(AttrOrganisation.String(org))
	m.received.Add(ctx, int64(received), o)
	m.accepted.Add(ctx, int64(accepted), o)
	for reason, n := range rejected {
		m.rejected.Add(ctx, int64(n), metric.WithAttributes(AttrOrganisation.String(org), AttrReason.String(reason)))
	}
}

// Decision records n decisions of a route with one action and reason
// ("" for publications), about objects of the producing organisation org
// ("" when not recorded: withheld decisions carry it, so producers' and
// operators' dashboards can see why each organisation's objects do not go
// out).
func (m *Metrics) Decision(ctx context.Context, route, action, reason, org string, n int) {
	if m == nil || n == 0 {
		return
	}
	attrs := []attribute.KeyValue{AttrRoute.String(route), AttrAction.String(action)}
	if reason != "" {
		attrs = append(attrs, AttrReason.String(reason))
	}
	if org != "" {
		attrs = append(attrs, AttrOrganisation.String(org))
	}
	m.decisions.Add(ctx, int64(n), metric.WithAttributes(attrs...))
}

// Served records n objects returned to a consumer organisation at t.
func (m *Metrics) Served(ctx context.Context, org string, n int, t time.Time) {
	if m == nil {
		return
	}
	m.served.Add(ctx, int64(n), metric.WithAttributes(AttrOrganisation.String(org)))
	m.mu.Lock()
	m.polls[org] = t
	m.mu.Unlock()
}

// StoreError records a failed store call.
func (m *Metrics) StoreError(ctx context.Context, op string) {
	if m == nil {
		return
	}
	m.storeErrors.Add(ctx, 1, metric.WithAttributes(AttrOperation.String(op)))
}

// Throttled records a password login refused unverified, for reason (an
// auth.Reason… constant).
func (m *Metrics) Throttled(ctx context.Context, reason string) {
	if m == nil {
		return
	}
	m.throttled.Add(ctx, 1, metric.WithAttributes(AttrReason.String(reason)))
}

// ObserveBacklog makes f the source of the fan-out lag and queue depth
// gauges, called at each collection; the returned function stops it.
func (m *Metrics) ObserveBacklog(f func(ctx context.Context) []Backlog) (unregister func() error, err error) {
	if m == nil {
		return func() error { return nil }, nil
	}
	reg, err := m.meter.RegisterCallback(func(ctx context.Context, o metric.Observer) error {
		for _, b := range f(ctx) {
			attrs := metric.WithAttributes(AttrRoute.String(b.Route), AttrSource.String(b.Source))
			o.ObserveFloat64(m.lag, max(b.Lag.Seconds(), 0), attrs)
			o.ObserveInt64(m.depth, b.Depth, attrs)
		}
		return nil
	}, m.lag, m.depth)
	if err != nil {
		return nil, err
	}
	return reg.Unregister, nil
}
