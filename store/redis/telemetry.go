package redis

import (
	"fmt"

	"github.com/redis/go-redis/extra/redisotel/v9"
	goredis "github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
)

// instrument adds OpenTelemetry hooks to c: a client span per command or
// pipeline under the caller's span (without the command's text: it holds
// object content), and the command-duration and connection-pool metrics.
// The metrics are unregistered when done is closed. Cluster nodes are
// instrumented as the client discovers them, so it runs before the first
// command.
func instrument(c goredis.UniversalClient, tp trace.TracerProvider, mp metric.MeterProvider, done chan struct{}) error {
	if tp != nil {
		if err := redisotel.InstrumentTracing(c, redisotel.WithTracerProvider(tp),
			redisotel.WithDBStatement(false), redisotel.WithCallerEnabled(false)); err != nil {
			return fmt.Errorf("redis: tracing: %w", err)
		}
	}
	if mp != nil {
		if err := redisotel.InstrumentMetrics(c, redisotel.WithMeterProvider(mp), redisotel.WithCloseChan(done)); err != nil {
			return fmt.Errorf("redis: metrics: %w", err)
		}
	}
	return nil
}
