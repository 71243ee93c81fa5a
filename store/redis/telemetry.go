package redis

import (
	"context"

	"go.opentelemetry.io/otel/trace"

	"github.com/ctigate/ctigate/telemetry"
)

// traceFields returns the W3C trace context (traceparent, tracestate) of
// the span ctx carries, which the events of a write carry; nil when ctx
// has no span.
func traceFields(ctx context.Context) map[string]string {
	if !trace.SpanContextFromContext(ctx).IsValid() {
		return nil
	}
	return telemetry.Inject(ctx)
}
