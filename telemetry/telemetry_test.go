package telemetry_test

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"strings"
	"testing"

	"github.com/go-json-experiment/json"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/ctigate/ctigate/telemetry"
)

// TestExporterSelection: no exporter unless the environment names one;
// OTLP (HTTP or gRPC) when it does or an OTLP endpoint is set; an
// unknown exporter is an error naming the variable.
func TestExporterSelection(t *testing.T) {
	for _, c := range []struct {
		name    string
		env     map[string]string
		tracing bool
		err     string
	}{
		{"default", nil, false, ""},
		{"none", map[string]string{"OTEL_TRACES_EXPORTER": "none"}, false, ""},
		{"otlp http", map[string]string{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"}, true, ""},
		{"otlp grpc", map[string]string{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, true, ""},
		{"endpoint only", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1"}, true, ""},
		{"disabled", map[string]string{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_SDK_DISABLED": "true"}, false, ""},
		{"console", map[string]string{"OTEL_TRACES_EXPORTER": "console"}, true, ""},
		{"unknown", map[string]string{"OTEL_TRACES_EXPORTER": "carrier-pigeon"}, false, "OTEL_TRACES_EXPORTER"},
		{"otlp metrics", map[string]string{"OTEL_METRICS_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1"}, true, ""},
		{"unknown metrics", map[string]string{"OTEL_METRICS_EXPORTER": "carrier-pigeon"}, false, "OTEL_METRICS_EXPORTER"},
	} {
		t.Run(c.name, func(t *testing.T) {
			for _, k := range []string{"OTEL_TRACES_EXPORTER", "OTEL_METRICS_EXPORTER", "OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_SDK_DISABLED"} {
				t.Setenv(k, c.env[k]) // the exporters read the process environment
			}
			p, err := telemetry.New(context.Background(), os.Getenv, telemetry.Options{})
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("got %v, want an error naming %s", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer p.Shutdown(context.Background())
			if p.Tracing != c.tracing {
				t.Errorf("tracing: got %v, want %v", p.Tracing, c.tracing)
			}
			if p.Metrics == nil || p.MeterProvider == nil {
				t.Error("no metrics")
			}
		})
	}
}

// TestLogHandler: records logged with a span's context carry its ids;
// others do not.
func TestLogHandler(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	ctx, span := tp.Tracer("test").Start(context.Background(), "op")
	var buf bytes.Buffer
	log := slog.New(telemetry.LogHandler(slog.NewJSONHandler(&buf, nil))).With("component", "test")
	log.InfoContext(ctx, "with span")
	log.Info("without span")
	span.End()
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("got %d lines", len(lines))
	}
	var with, without map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &with); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(lines[1]), &without); err != nil {
		t.Fatal(err)
	}
	sc := span.SpanContext()
	if with["trace_id"] != sc.TraceID().String() || with["span_id"] != sc.SpanID().String() || with["component"] != "test" {
		t.Errorf("got %v, want trace_id %s span_id %s", with, sc.TraceID(), sc.SpanID())
	}
	if _, ok := without["trace_id"]; ok {
		t.Errorf("a record without a span has a trace_id: %v", without)
	}
}
