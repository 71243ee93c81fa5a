package server_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/go-json-experiment/json"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/ctigate/ctigate/fanout"
	"github.com/ctigate/ctigate/policy"
	"github.com/ctigate/ctigate/server"
	"github.com/ctigate/ctigate/stix"
	"github.com/ctigate/ctigate/store/bolt"
	"github.com/ctigate/ctigate/telemetry"
)

const postRoute = "/:root/collections/:collection/objects/"

// telGateway is the server and a fan-out worker (run by hand) over a
// real bbolt file, with in-memory span and metric exporters.
type telGateway struct {
	*gateway
	spans  *tracetest.InMemoryExporter
	reader *sdkmetric.ManualReader
	prov   *telemetry.Providers
	fan    *fanout.Worker
	logs   *syncBuffer
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func newTelGateway(t *testing.T) *telGateway {
	t.Helper()
	cfg := testConfig(t)
	cfg.Routes = []policy.RouteConfig{{ID: publishedID, Name: "law-enforcement", Sources: []string{inboundID}, Ceiling: "TLP:AMBER"}}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	st, err := bolt.Open(filepath.Join(t.TempDir(), "ctigate.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	a := authOf(t, cfg)
	g := &telGateway{spans: tracetest.NewInMemoryExporter(), reader: sdkmetric.NewManualReader(), logs: &syncBuffer{}}
	g.prov, err = telemetry.New(context.Background(), nil, telemetry.Options{SpanExporter: g.spans, MetricReader: g.reader})
	if err != nil {
		t.Fatal(err)
	}
	routes, err := policy.CompileRoutes(cfg.Routes)
	if err != nil {
		t.Fatal(err)
	}
	markings := stix.NewMarkings()
	g.fan = fanout.New(fanout.Options{Store: st, Routes: routes, Markings: markings,
		TracerProvider: g.prov.TracerProvider, MeterProvider: g.prov.MeterProvider})
	log := slog.New(telemetry.LogHandler(slog.NewJSONHandler(g.logs, nil)))
	srv := server.New(server.Options{Config: cfg, Store: st, Auth: a, Markings: markings, Logger: log,
		OnIngestSpan: g.fan.Link, Ready: g.fan.Running,
		TracerProvider: g.prov.TracerProvider, MeterProvider: g.prov.MeterProvider, Propagator: g.prov.Propagator})
	ts := httptest.NewServer(srv)
	t.Cleanup(func() {
		ts.Close()
		_ = g.prov.Shutdown(context.Background())
		if err := st.Close(); err != nil {
			t.Error(err)
		}
	})
	g.gateway = &gateway{t: t, URL: ts.URL}
	return g
}

func (g *telGateway) runFanout() {
	g.t.Helper()
	if _, err := g.fan.RunOnce(context.Background()); err != nil {
		g.t.Fatal(err)
	}
}

func (g *telGateway) flush() []tracetest.SpanStub {
	g.t.Helper()
	if err := g.prov.ForceFlush(context.Background()); err != nil {
		g.t.Fatal(err)
	}
	return g.spans.GetSpans()
}

func (g *telGateway) post(objs ...string) {
	g.t.Helper()
	body := `{"objects":[` + strings.Join(objs, ",") + `]}`
	r := g.do("POST", "/exchange/collections/"+inboundID+"/objects/", "cert-a", []byte(body))
	if r.Status != 202 {
		g.t.Fatalf("POST: got %d %s, want 202", r.Status, r.Body)
	}
}

func telIndicator(n int, marking string) string {
	return fmt.Sprintf(`{"type":"indicator","spec_version":"2.1","id":"indicator--8e2e2d2b-17d4-4cbf-938f-%012d",`+
		`"created":"2026-01-01T00:00:00.000Z","modified":"2026-01-01T00:00:00.000Z","pattern":"[ipv4-addr:value = '198.51.100.%d']",`+
		`"pattern_type":"stix","valid_from":"2026-01-01T00:00:00Z","object_marking_refs":[%q]}`, n, n, marking)
}

// invalidIndicator has valid_until before valid_from.
func invalidIndicator(n int) string {
	return fmt.Sprintf(`{"type":"indicator","spec_version":"2.1","id":"indicator--8e2e2d2b-17d4-4cbf-938f-%012d",`+
		`"created":"2026-01-01T00:00:00.000Z","modified":"2026-01-01T00:00:00.000Z","pattern":"[ipv4-addr:value = '198.51.100.%d']",`+
		`"pattern_type":"stix","valid_from":"2026-01-02T00:00:00Z","valid_until":"2026-01-01T00:00:00Z"}`, n, n)
}

func spanNamed(t *testing.T, spans []tracetest.SpanStub, name string) tracetest.SpanStub {
	t.Helper()
	var found []tracetest.SpanStub
	for _, s := range spans {
		if s.Name == name {
			found = append(found, s)
		}
	}
	if len(found) != 1 {
		t.Fatalf("got %d spans named %q, want 1", len(found), name)
	}
	return found[0]
}

func attrOf(s tracetest.SpanStub, key string) (attribute.Value, bool) {
	for _, a := range s.Attributes {
		if string(a.Key) == key {
			return a.Value, true
		}
	}
	return attribute.Value{}, false
}

// TestTelemetrySpanTree: one POST of an envelope yields a server span
// named by its route template with the HTTP semantic-convention
// attributes, whose children are decoding, marking resolution and the
// store writes; the fan-out batch that publishes its objects is a trace
// of its own linked to it, with evaluation and the store write as
// children. The access-log line carries the POST's trace and span ids.
func TestTelemetrySpanTree(t *testing.T) {
	g := newTelGateway(t)
	g.post(telIndicator(1, stix.TLP2Green), telIndicator(2, stix.TLP2Green))
	g.runFanout()
	spans := g.flush()

	srv := spanNamed(t, spans, "POST "+postRoute)
	if srv.SpanKind != trace.SpanKindServer {
		t.Errorf("server span kind: got %v, want server", srv.SpanKind)
	}
	for key, want := range map[string]string{
		"http.route":                postRoute,
		"http.request.method":       "POST",
		"http.response.status_code": "202",
		"url.path":                  "/exchange/collections/" + inboundID + "/objects/",
	} {
		if v, ok := attrOf(srv, key); !ok || v.String() != want {
			t.Errorf("server span attribute %s: got %q (present %v), want %q", key, v.String(), ok, want)
		}
	}
	// The embedded store writes the status resource with the objects
	// (store.StatusAdder): no store.put_status span of its own.
	for _, name := range []string{"stix.decode", "stix.resolve_markings", "store.add_objects"} {
		c := spanNamed(t, spans, name)
		if c.Parent.SpanID() != srv.SpanContext.SpanID() || c.SpanContext.TraceID() != srv.SpanContext.TraceID() {
			t.Errorf("%s: parent %s in trace %s, want the server span %s in trace %s",
				name, c.Parent.SpanID(), c.SpanContext.TraceID(), srv.SpanContext.SpanID(), srv.SpanContext.TraceID())
		}
	}
	if v, ok := attrOf(spanNamed(t, spans, "store.add_objects"), "ctigate.status_stored"); !ok || !v.AsBool() {
		t.Errorf("store.add_objects ctigate.status_stored: got %v (present %v), want true", v.AsBool(), ok)
	}
	for _, sp := range spans {
		if sp.Name == "store.put_status" {
			t.Errorf("a store.put_status span, though the status was written with the objects")
		}
	}
	if v, _ := attrOf(spanNamed(t, spans, "stix.decode"), "ctigate.objects"); v.AsInt64() != 2 {
		t.Errorf("stix.decode ctigate.objects: got %d, want 2", v.AsInt64())
	}

	batch := spanNamed(t, spans, "fanout.batch")
	if batch.SpanContext.TraceID() == srv.SpanContext.TraceID() || batch.Parent.IsValid() {
		t.Errorf("fanout.batch should be the root of a trace of its own; parent %v", batch.Parent)
	}
	if len(batch.Links) != 1 || batch.Links[0].SpanContext.TraceID() != srv.SpanContext.TraceID() ||
		batch.Links[0].SpanContext.SpanID() != srv.SpanContext.SpanID() {
		t.Errorf("fanout.batch links: got %+v, want one link to the POST span %s/%s", batch.Links, srv.SpanContext.TraceID(), srv.SpanContext.SpanID())
	}
	if v, _ := attrOf(batch, "ctigate.route"); v.AsString() != "law-enforcement" {
		t.Errorf("fanout.batch route: got %q", v.AsString())
	}
	if v, _ := attrOf(batch, "ctigate.decisions.published"); v.AsInt64() != 2 {
		t.Errorf("fanout.batch ctigate.decisions.published: got %d, want 2", v.AsInt64())
	}
	for _, name := range []string{"policy.evaluate", "store.add_objects_checkpoint"} {
		c := spanNamed(t, spans, name)
		if c.Parent.SpanID() != batch.SpanContext.SpanID() {
			t.Errorf("%s: parent %s, want fanout.batch %s", name, c.Parent.SpanID(), batch.SpanContext.SpanID())
		}
	}

	// The access log line of the POST.
	var line struct{ Route, TraceID, SpanID string }
	found := false
	for l := range strings.Lines(g.logs.String()) {
		var rec map[string]any
		if err := json.Unmarshal([]byte(l), &rec); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		if rec["msg"] == "request" && rec["method"] == "POST" {
			line.Route, _ = rec["route"].(string)
			line.TraceID, _ = rec["trace_id"].(string)
			line.SpanID, _ = rec["span_id"].(string)
			found = true
		}
	}
	if !found {
		t.Fatalf("no access-log line for the POST in:\n%s", g.logs.String())
	}
	if line.Route != postRoute || line.TraceID != srv.SpanContext.TraceID().String() || line.SpanID != srv.SpanContext.SpanID().String() {
		t.Errorf("access log: got route %q trace_id %q span_id %q, want %q %s %s",
			line.Route, line.TraceID, line.SpanID, postRoute, srv.SpanContext.TraceID(), srv.SpanContext.SpanID())
	}
	if strings.Contains(g.logs.String(), "cert-a-pw") || strings.Contains(g.logs.String(), "198.51.100") {
		t.Errorf("the log holds credentials or object content:\n%s", g.logs.String())
	}
}

// TestTelemetryLinksEachPost: a batch that processes the objects of two
// POSTs links to both.
func TestTelemetryLinksEachPost(t *testing.T) {
	g := newTelGateway(t)
	g.post(telIndicator(1, stix.TLP2Green))
	g.post(telIndicator(2, stix.TLP2Green))
	g.runFanout()
	spans := g.flush()
	var posts []trace.SpanContext
	for _, s := range spans {
		if s.Name == "POST "+postRoute {
			posts = append(posts, s.SpanContext)
		}
	}
	batch := spanNamed(t, spans, "fanout.batch")
	if len(posts) != 2 || len(batch.Links) != 2 {
		t.Fatalf("got %d POST spans and %d links, want 2 and 2", len(posts), len(batch.Links))
	}
	for _, p := range posts {
		linked := false
		for _, l := range batch.Links {
			linked = linked || l.SpanContext.SpanID() == p.SpanID() && l.SpanContext.TraceID() == p.TraceID()
		}
		if !linked {
			t.Errorf("the batch does not link POST span %s", p.SpanID())
		}
	}
}

// collect reads the current metrics.
func (g *telGateway) collect() metricdata.ResourceMetrics {
	g.t.Helper()
	var rm metricdata.ResourceMetrics
	if err := g.reader.Collect(context.Background(), &rm); err != nil {
		g.t.Fatal(err)
	}
	return rm
}

// value is the value of the data point of metric name whose attributes
// include attrs (0 when there is none; histograms: the count).
func value(rm metricdata.ResourceMetrics, name string, attrs ...attribute.KeyValue) float64 {
	match := func(set attribute.Set) bool {
		for _, a := range attrs {
			if v, ok := set.Value(a.Key); !ok || v != a.Value {
				return false
			}
		}
		return true
	}
	total := 0.0
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != name {
				continue
			}
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				for _, p := range d.DataPoints {
					if match(p.Attributes) {
						total += float64(p.Value)
					}
				}
			case metricdata.Gauge[int64]:
				for _, p := range d.DataPoints {
					if match(p.Attributes) {
						total += float64(p.Value)
					}
				}
			case metricdata.Gauge[float64]:
				for _, p := range d.DataPoints {
					if match(p.Attributes) {
						total += p.Value
					}
				}
			case metricdata.Histogram[float64]:
				for _, p := range d.DataPoints {
					if match(p.Attributes) {
						total += float64(p.Count)
					}
				}
			}
		}
	}
	return total
}

// TestTelemetryMetricsScenario: a producer posts 4 objects, 1 invalid (3
// accepted, 1 rejected); the route publishes the 2 TLP:GREEN ones and
// withholds the TLP:RED one; a consumer reads the 2. Every metric moves by
// exactly that.
func TestTelemetryMetricsScenario(t *testing.T) {
	g := newTelGateway(t)
	org := telemetry.AttrOrganisation.String("CERT-A")
	route := telemetry.AttrRoute.String("law-enforcement")
	src := telemetry.AttrSource.String(inboundID)
	police := telemetry.AttrOrganisation.String("National Police")

	// A first round, so that the scenario is measured as deltas.
	g.post(telIndicator(100, stix.TLP2Green))
	g.runFanout()
	before := g.collect()

	g.post(telIndicator(1, stix.TLP2Green), telIndicator(2, stix.TLP2Green), telIndicator(3, stix.TLP2Red), invalidIndicator(4))
	queued := g.collect()
	if got := value(queued, "ctigate.fanout.queue.depth", route, src); got != 3 {
		t.Errorf("queue depth before fan-out: got %v, want 3", got)
	}
	if got := value(queued, "ctigate.fanout.lag", route, src); got <= 0 {
		t.Errorf("lag before fan-out: got %v, want > 0", got)
	}
	g.runFanout()
	r := g.do("GET", "/exchange/collections/"+publishedID+"/objects/?added_after="+"2000-01-01T00:00:00Z", "police", nil)
	if r.Status != 200 {
		t.Fatalf("GET: %d %s", r.Status, r.Body)
	}
	after := g.collect()

	for _, c := range []struct {
		name  string
		attrs []attribute.KeyValue
		delta float64
	}{
		{"ctigate.objects.received", []attribute.KeyValue{org}, 4},
		{"ctigate.objects.accepted", []attribute.KeyValue{org}, 3},
		{"ctigate.objects.rejected", []attribute.KeyValue{org, telemetry.AttrReason.String("invalid")}, 1},
		{"ctigate.objects.rejected", []attribute.KeyValue{org}, 1},
		{"ctigate.fanout.decisions", []attribute.KeyValue{route, telemetry.AttrAction.String("published")}, 2},
		{"ctigate.fanout.decisions", []attribute.KeyValue{route, telemetry.AttrAction.String("withheld"), telemetry.AttrReason.String("tlp_red")}, 1},
		{"ctigate.fanout.decisions", []attribute.KeyValue{route, telemetry.AttrAction.String("withheld"), org}, 1}, // by producing organisation
		{"ctigate.fanout.decisions", []attribute.KeyValue{route}, 3},
		{"ctigate.objects.served", []attribute.KeyValue{police}, 3}, // the first round's object too
		{"http.server.request.duration", []attribute.KeyValue{attribute.String("http.route", postRoute), attribute.String("http.request.method", "POST")}, 1},
		{"ctigate.store.errors", nil, 0},
	} {
		if got := value(after, c.name, c.attrs...) - value(before, c.name, c.attrs...); got != c.delta {
			t.Errorf("%s %v: changed by %v, want %v", c.name, c.attrs, got, c.delta)
		}
	}
	if got := value(after, "ctigate.fanout.queue.depth", route, src); got != 0 {
		t.Errorf("queue depth after fan-out: got %v, want 0", got)
	}
	if got := value(after, "ctigate.fanout.lag", route, src); got != 0 {
		t.Errorf("lag after fan-out: got %v, want 0", got)
	}
	if got := value(after, "ctigate.consumer.last_poll", police); got <= 0 {
		t.Errorf("last poll of National Police: got %v, want a time", got)
	}
	// No high-cardinality attributes.
	for _, sm := range after.ScopeMetrics {
		for _, m := range sm.Metrics {
			if strings.Contains(fmt.Sprintf("%+v", m.Data), "indicator--") {
				t.Errorf("metric %s carries an object id", m.Name)
			}
		}
	}
}

// TestReadyzChecksWorkers: /readyz is 503 while the fan-out worker does
// not run, 200 once it does; /healthz is 200 throughout.
func TestReadyzChecksWorkers(t *testing.T) {
	g := newTelGateway(t)
	if r := g.do("GET", "/readyz", "", nil); r.Status != 503 || !strings.Contains(string(r.Body), "workers") {
		t.Errorf("/readyz without the worker: got %d %s, want 503 naming the workers", r.Status, r.Body)
	}
	if r := g.do("GET", "/healthz", "", nil); r.Status != 200 {
		t.Errorf("/healthz: got %d", r.Status)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- g.fan.Run(ctx) }()
	for g.fan.Running(ctx) != nil {
		runtime.Gosched()
	}
	if r := g.do("GET", "/readyz", "", nil); r.Status != 200 {
		t.Errorf("/readyz with the worker running: got %d %s", r.Status, r.Body)
	}
	cancel()
	<-done
	if r := g.do("GET", "/readyz", "", nil); r.Status != 503 {
		t.Errorf("/readyz after the worker stopped: got %d %s", r.Status, r.Body)
	}
}

// TestTelemetryClientTraceparentIsALink: a client's traceparent does not
// make the server span its child (clients must not pick trace ids or
// sampling); it is kept as a link.
func TestTelemetryClientTraceparentIsALink(t *testing.T) {
	g := newTelGateway(t)
	const clientTrace = "4bf92f3577b34da6a3ce929d0e0e4736"
	r := g.do("GET", "/taxii2/", "police", nil, "traceparent", "00-"+clientTrace+"-00f067aa0ba902b7-00")
	if r.Status != 200 {
		t.Fatalf("GET: %d", r.Status)
	}
	srv := spanNamed(t, g.flush(), "GET /taxii2/")
	if srv.SpanContext.TraceID().String() == clientTrace || srv.Parent.IsValid() {
		t.Errorf("the server span continues the client's trace: parent %v", srv.Parent)
	}
	if len(srv.Links) != 1 || srv.Links[0].SpanContext.TraceID().String() != clientTrace {
		t.Errorf("links: got %+v, want the client's span", srv.Links)
	}
}
