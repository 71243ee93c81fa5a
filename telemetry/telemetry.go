// Package telemetry builds the gateway's OpenTelemetry tracer and meter providers from the standard OTEL_* environment variables, serves metrics in the Prometheus text format, and defines the gateway's metric instruments and a log handler that stamps trace ids.
package telemetry

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/contrib/exporters/autoexport"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/ctigate/ctigate"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// ScopeName is the instrumentation scope of the gateway's own spans and
// metrics.
const ScopeName = "github.com/ctigate/ctigate"

// Providers are the tracer and meter providers of one process, the
// propagator of trace context, and the handler serving /metrics.
type Providers struct {
	TracerProvider trace.TracerProvider
	MeterProvider  metric.MeterProvider
	Propagator     propagation.TextMapPropagator
	// Metrics serves the current metric values in the Prometheus text
	// format.
	Metrics http.Handler
	// Tracing reports whether spans are exported anywhere (false: the
	// tracer provider is a no-op).
	Tracing bool

	shutdown []func(context.Context) error
}

// Options configure New.
type Options struct {
	ServiceName    string // service.name; default "ctigate"
	ServiceVersion string // service.version
	// SpanExporter, when set, receives every span (sampling 100%) instead
	// of the exporter the environment names. For tests and benchmarks.
	SpanExporter sdktrace.SpanExporter
	// MetricReader, when set, is added beside the Prometheus one. For
	// tests.
	MetricReader sdkmetric.Reader
}

// New builds the providers from the standard OpenTelemetry environment
// variables, read through getenv (exporters read their own OTEL_EXPORTER_*
// settings from the process environment):
//
//   - OTEL_SDK_DISABLED=true: no tracing, and metrics only on /metrics.
//   - OTEL_TRACES_EXPORTER: "otlp" (OTLP; OTEL_EXPORTER_OTLP_PROTOCOL
//     http/protobuf, the default, or grpc), "console", or "none". Unset, it
//     is "none" unless an OTLP endpoint (OTEL_EXPORTER_OTLP_ENDPOINT or
//     OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) is set, then "otlp": the gateway
//     sends nothing anywhere unless told to. Sampling follows
//     OTEL_TRACES_SAMPLER (default parentbased_always_on).
//   - OTEL_METRICS_EXPORTER: metrics are always served on /metrics
//     (Prometheus text); "otlp" or "console" also pushes them there.
//   - OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES: the resource.
//
// Shutdown flushes and stops what New started.
func New(ctx context.Context, getenv func(string) string, opts Options) (*Providers, error) {
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	name := opts.ServiceName
	if name == "" {
		name = "ctigate"
	}
	attrs := []attribute.KeyValue{attribute.String("service.name", name)}
	if opts.ServiceVersion != "" {
		attrs = append(attrs, attribute.String("service.version", opts.ServiceVersion))
	}
	// Environment last, so OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES
	// override the defaults.
	res, err := resource.New(ctx, resource.WithAttributes(attrs...), resource.WithFromEnv(), resource.WithTelemetrySDK())
	if err != nil && !errors.Is(err, resource.ErrPartialResource) {
		return nil, fmt.Errorf("telemetry: resource: %w", err)
	}
	p := &Providers{
		TracerProvider: noop.NewTracerProvider(),
		Propagator:     propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}),
	}
	disabled := strings.EqualFold(strings.TrimSpace(getenv("OTEL_SDK_DISABLED")), "true")

	// Traces.
	var exp sdktrace.SpanExporter
	switch {
	case opts.SpanExporter != nil:
		exp = opts.SpanExporter
	case disabled:
	default:
		switch tracesExporter(getenv) {
		case "", "none":
		default:
			exp, err = autoexport.NewSpanExporter(ctx)
			if err != nil {
				return nil, fmt.Errorf("telemetry: OTEL_TRACES_EXPORTER: %w", err)
			}
		}
	}
	if exp != nil {
		topts := []sdktrace.TracerProviderOption{sdktrace.WithBatcher(exp), sdktrace.WithResource(res)}
		if opts.SpanExporter != nil {
			topts = append(topts, sdktrace.WithSampler(sdktrace.AlwaysSample()))
		}
		tp := sdktrace.NewTracerProvider(topts...)
		p.TracerProvider, p.Tracing = tp, true
		p.shutdown = append(p.shutdown, tp.Shutdown)
	}

	// Metrics: a registry of our own (no process-global state), served
	// on /metrics.
	reg := prometheus.NewRegistry()
	promExp, err := otelprom.New(otelprom.WithRegisterer(reg))
	if err != nil {
		return nil, fmt.Errorf("telemetry: prometheus exporter: %w", err)
	}
	mopts := []sdkmetric.Option{sdkmetric.WithResource(res), sdkmetric.WithReader(promExp)}
	if opts.MetricReader != nil {
		mopts = append(mopts, sdkmetric.WithReader(opts.MetricReader))
	}
	if !disabled {
		switch v := strings.ToLower(strings.TrimSpace(getenv("OTEL_METRICS_EXPORTER"))); v {
		case "", "none", "prometheus": // prometheus: already served on /metrics
		default:
			r, err := autoexport.NewMetricReader(ctx)
			if err != nil {
				return nil, fmt.Errorf("telemetry: OTEL_METRICS_EXPORTER: %w", err)
			}
			mopts = append(mopts, sdkmetric.WithReader(r))
		}
	}
	mp := sdkmetric.NewMeterProvider(mopts...)
	p.MeterProvider = mp
	p.shutdown = append(p.shutdown, mp.Shutdown)
	p.Metrics = promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
	return p, nil
}

// tracesExporter is the exporter OTEL_TRACES_EXPORTER names, "otlp" when
// it is unset and an OTLP endpoint is configured, else "".
func tracesExporter(getenv func(string) string) string {
	v := strings.ToLower(strings.TrimSpace(getenv("OTEL_TRACES_EXPORTER")))
	if v == "" && (getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != "") {
		return "otlp"
	}
	return v
}

// Shutdown flushes pending spans and metrics and stops the exporters.
// Calling it again does nothing.
func (p *Providers) Shutdown(ctx context.Context) error {
	fs := p.shutdown
	p.shutdown = nil
	var errs []error
	for _, f := range fs {
		if err := f(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// ForceFlush exports the spans ended so far.
func (p *Providers) ForceFlush(ctx context.Context) error {
	if tp, ok := p.TracerProvider.(*sdktrace.TracerProvider); ok {
		return tp.ForceFlush(ctx)
	}
	return nil
}

// EndSpan ends span, marking it failed with the kind of err when err is
// not nil (never the error's message, which may quote content).
func EndSpan(span trace.Span, err error) {
	if err != nil {
		span.SetStatus(codes.Error, ctigate.KindOf(err).String())
	}
	span.End()
}
