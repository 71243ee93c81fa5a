package server

import (
	"context"
	"net"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/ctigate/ctigate/store"
	"github.com/ctigate/ctigate/telemetry"
)

// Span names (children of the HTTP server span).
const (
	spanStoreRead = "store.objects" // a page read (objects, manifest, versions)
	scopeServer   = telemetry.ScopeName + "/server"
)

// initTelemetry sets up the tracer, the instruments and the otelhttp
// handler the traceRequests middleware runs requests through.
func (s *Server) initTelemetry(listen string, tp trace.TracerProvider, mp metric.MeterProvider, prop propagation.TextMapPropagator) {
	if tp == nil {
		tp = noop.NewTracerProvider()
	}
	if prop == nil {
		prop = propagation.TraceContext{}
	}
	s.tracer = tp.Tracer(scopeServer)
	m, err := telemetry.NewMetrics(mp)
	if err != nil {
		s.log.Error("telemetry: creating metric instruments failed; metrics of the gateway are off", "err", err)
	}
	s.metrics = m
	opts := []otelhttp.Option{
		otelhttp.WithTracerProvider(tp),
		otelhttp.WithPropagators(prop),
		// server.address from configuration, not from the client's Host
		// header (which would be an unbounded metric label).
		otelhttp.WithServerName(serverName(listen)),
		// Network input is untrusted: a client's traceparent becomes a
		// link, not the parent, so it cannot choose our trace ids or
		// sampling.
		otelhttp.WithPublicEndpointFn(func(*http.Request) bool { return true }),
		// Health probes would drown the traces.
		otelhttp.WithFilter(func(r *http.Request) bool { return r.URL.Path != "/healthz" && r.URL.Path != "/readyz" }),
	}
	if mp != nil {
		opts = append(opts, otelhttp.WithMeterProvider(mp))
	}
	s.otelHandler = otelhttp.NewHandler(http.HandlerFunc(serveTraced), "ctigate", opts...)
}

// serverName is the host of the listen address ("ctigate" when it has
// none, e.g. ":8443").
func serverName(listen string) string {
	if h, _, err := net.SplitHostPort(listen); err == nil && h != "" {
		return h
	}
	return "ctigate"
}

type tracedCall struct {
	c    echo.Context
	next echo.HandlerFunc
	err  error
}

type tracedCallKey struct{}

// traceRequests runs each routed request through otelhttp: a server span
// named by the route template ("POST /:root/collections/:collection/objects/")
// with the current HTTP semantic-convention attributes, and the
// http.server.request.duration histogram by route. The route template
// reaches otelhttp as the request's Pattern, as from http.ServeMux.
func (s *Server) traceRequests(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if s.otelHandler == nil {
			return next(c) // a Server not made by New (route-table tests)
		}
		req := c.Request()
		if req.Pattern == "" && c.Path() != "" {
			r := *req
			r.Pattern = c.Path()
			req = &r
		}
		call := &tracedCall{c: c, next: next}
		res := c.Response()
		w := res.Writer
		defer func() { res.Writer = w }()
		s.otelHandler.ServeHTTP(w, req.WithContext(context.WithValue(req.Context(), tracedCallKey{}, call)))
		return call.err
	}
}

// serveTraced is the handler otelhttp wraps: it continues the echo chain
// with the traced request and response writer.
func serveTraced(w http.ResponseWriter, r *http.Request) {
	call := r.Context().Value(tracedCallKey{}).(*tracedCall)
	call.c.SetRequest(r)
	call.c.Response().Writer = w
	call.err = call.next(call.c)
}

// served records the objects a consumer read.
func (s *Server) served(c echo.Context, n int) {
	if u := userOf(c); u != nil {
		s.metrics.Served(c.Request().Context(), u.Organisation, n, s.now())
	}
}

// ingestSpan hands the request's span and the date_added range of the new
// versions in res to OnIngestSpan.
func (s *Server) ingestSpan(ctx context.Context, collection string, res []store.AddResult) {
	if s.onIngestSpan == nil || !trace.SpanContextFromContext(ctx).IsValid() {
		return
	}
	var first, last time.Time
	for _, r := range res {
		if r.Existed {
			continue
		}
		if first.IsZero() || r.DateAdded.Before(first) {
			first = r.DateAdded
		}
		if r.DateAdded.After(last) {
			last = r.DateAdded
		}
	}
	if !first.IsZero() {
		s.onIngestSpan(ctx, collection, first, last)
	}
}
