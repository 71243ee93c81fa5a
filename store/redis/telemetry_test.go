package redis_test

import (
	"testing"
	"time"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/ctigate/ctigate/store"
	"github.com/ctigate/ctigate/store/redis"
	"github.com/ctigate/ctigate/store/redis/redistest"
)

// TestClientTelemetry: with the providers in Options, each Redis command
// of a write is a client span under the caller's span, without the
// command's arguments (they hold object content), and the client's
// metrics reach the meter provider; after Close they are unregistered.
func TestClientTelemetry(t *testing.T) {
	spans := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(spans))
	defer tp.Shutdown(t.Context())
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer mp.Shutdown(t.Context())

	url := redistest.URL(t)
	c, err := redis.NewClient(redis.Config{URL: url})
	if err != nil {
		t.Fatal(err)
	}
	admin, err := redis.NewClient(redis.Config{URL: url})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Close() })
	s, err := redis.New(c, redis.Options{Prefix: redistest.Prefix(t, admin), CloseClient: true,
		TracerProvider: tp, MeterProvider: mp})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	ctx, parent := tp.Tracer("test").Start(t.Context(), "POST objects")
	o := testObj(1)
	o.Raw = []byte(`{"id":"` + o.ID + `","secret":"do-not-trace-me"}`)
	if _, err := s.AddObjects(store.WithActor(ctx, store.Actor{User: "cert-a"}), "coll", []store.Object{o}); err != nil {
		t.Fatal(err)
	}
	parent.End()

	var children int
	for _, sp := range spans.GetSpans() {
		if sp.Parent.SpanID() != parent.SpanContext().SpanID() {
			continue
		}
		children++
		if sp.SpanKind.String() != "client" {
			t.Errorf("span %s kind %s, want client", sp.Name, sp.SpanKind)
		}
		for _, a := range sp.Attributes {
			if a.Key == "db.statement" || a.Key == "db.query.text" {
				t.Errorf("span %s records the command: %s", sp.Name, a.Value.String())
			}
		}
	}
	if children == 0 {
		t.Fatalf("no Redis span under the caller's span; spans: %v", spans.GetSpans().Snapshots())
	}

	names := func() map[string]bool {
		var rm metricdata.ResourceMetrics
		if err := reader.Collect(t.Context(), &rm); err != nil {
			t.Fatal(err)
		}
		out := map[string]bool{}
		for _, sm := range rm.ScopeMetrics {
			for _, m := range sm.Metrics {
				out[m.Name] = true
			}
		}
		return out
	}
	got := names()
	for _, want := range []string{"db.client.connections.use_time", "db.client.connections.usage"} {
		if !got[want] {
			t.Errorf("metric %s missing; have %v", want, got)
		}
	}
	s.Close()
	for range 100 { // the unregistering runs on its own goroutine
		if !names()["db.client.connections.usage"] {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("the pool metrics are still observed after Close")
}
