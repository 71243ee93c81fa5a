package server_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/ctigate/ctigate/auth"
	"github.com/ctigate/ctigate/config"
	"github.com/ctigate/ctigate/fanout"
	"github.com/ctigate/ctigate/policy"
	"github.com/ctigate/ctigate/server"
	"github.com/ctigate/ctigate/stix"
	"github.com/ctigate/ctigate/store/bolt"
	"github.com/ctigate/ctigate/telemetry"
)

// BenchmarkIngestTelemetry measures ingest over HTTP (POST of envelopes
// of 10 or 500 TLP:GREEN indicators into a real bbolt file: decoding,
// validation, marking resolution, canonical hash, store write, status)
// with telemetry off (no-op providers) and on (every request sampled,
// spans through the batch processor into a discarding exporter, metrics
// collected by the Prometheus exporter and a manual reader). It reports
// objects/s (wall time) and the process's CPU time per object.
//
//	go test -run '^$' -bench 'BenchmarkIngestTelemetry$' -benchtime 2s -count 5 ./server
func BenchmarkIngestTelemetry(b *testing.B) {
	// Small envelopes show the per-request cost (spans, request metrics),
	// large ones the usual producer traffic.
	for _, n := range []int{10, 500} {
		for _, on := range []bool{false, true} {
			name := fmt.Sprintf("envelope=%d/telemetry=%s", n, map[bool]string{false: "off", true: "on"}[on])
			b.Run(name, func(b *testing.B) {
				post := ingestServer(b, on)
				envs := envelopes(b.N, n)
				cpu0 := cpuTime()
				b.ResetTimer()
				for i := range envs {
					post(envs[i])
				}
				b.StopTimer()
				b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "objects/s")
				if cpu := cpuTime() - cpu0; cpu > 0 {
					b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N*n), "cpu-ns/object")
				}
			})
		}
	}
}

// BenchmarkIngestTelemetryPaired posts each envelope alternately to a
// gateway with telemetry off and one with it on, so that the load of a
// shared machine falls on both alike, and reports both throughputs and
// the overhead.
//
//	go test -run '^$' -bench 'BenchmarkIngestTelemetryPaired' -benchtime 300x ./server
func BenchmarkIngestTelemetryPaired(b *testing.B) {
	for _, n := range []int{10, 500} {
		b.Run(fmt.Sprintf("envelope=%d", n), func(b *testing.B) {
			off, on := ingestServer(b, false), ingestServer(b, true)
			envs := envelopes(2*b.N, n)
			var tOff, tOn time.Duration
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				// Alternate which goes first.
				first, second := off, on
				tf, ts := &tOff, &tOn
				if i%2 == 1 {
					first, second, tf, ts = on, off, &tOn, &tOff
				}
				t0 := time.Now()
				first(envs[2*i])
				t1 := time.Now()
				second(envs[2*i+1])
				*tf += t1.Sub(t0)
				*ts += time.Since(t1)
			}
			b.StopTimer()
			offRate := float64(b.N*n) / tOff.Seconds()
			onRate := float64(b.N*n) / tOn.Seconds()
			b.ReportMetric(offRate, "off-objects/s")
			b.ReportMetric(onRate, "on-objects/s")
			b.ReportMetric(100*(offRate-onRate)/offRate, "overhead-%")
		})
	}
}

// envelopes returns n envelopes of per TLP:GREEN indicators, all distinct.
func envelopes(n, per int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		objs := make([]string, per)
		for j := range objs {
			k := i*per + j
			objs[j] = fmt.Sprintf(`{"type":"indicator","spec_version":"2.1","id":"indicator--6ba7b810-9dad-41d1-80b4-%012d",`+
				`"created":"2026-01-01T00:00:00.000Z","modified":"2026-01-01T00:00:00.000Z","name":"C2 %d",`+
				`"pattern":"[ipv4-addr:value = '203.0.113.%d']","pattern_type":"stix","valid_from":"2026-01-01T00:00:00Z",`+
				`"object_marking_refs":["%s"]}`, k, k, k%250, stix.TLP2Green)
		}
		out[i] = []byte(`{"objects":[` + strings.Join(objs, ",") + `]}`)
	}
	return out
}

// ingestServer starts a gateway over a fresh bbolt file, with telemetry
// on or off, and returns a function that POSTs one envelope to it and
// checks that every object was stored.
func ingestServer(b *testing.B, on bool) func(envelope []byte) {
	b.Helper()
	hash, err := auth.HashPassword("cert-a-pw")
	if err != nil {
		b.Fatal(err)
	}
	cfg := config.Default()
	cfg.APIRoots = []config.APIRoot{{Name: "exchange", Title: "Exchange", MaxContentLength: 10 << 20, Collections: []config.Collection{
		{ID: inboundID, Title: "Inbound", Writers: []string{"role:producer"}, Readers: []string{"role:producer"}},
		{ID: publishedID, Title: "Published", Readers: []string{"role:consumer"}},
	}}}
	cfg.Users = []config.User{{Name: "cert-a", Organisation: "CERT-A", Roles: []string{"producer"}, PasswordHash: hash}}
	cfg.Routes = []policy.RouteConfig{{ID: publishedID, Name: "law-enforcement", Sources: []string{inboundID}, Ceiling: "TLP:AMBER"}}
	if err := cfg.Validate(); err != nil {
		b.Fatal(err)
	}
	st, err := bolt.Open(filepath.Join(b.TempDir(), "ctigate.db"), bolt.Options{})
	if err != nil {
		b.Fatal(err)
	}
	a, err := auth.New([]auth.User{{Name: "cert-a", Organisation: "CERT-A", Roles: []string{"producer"}, PasswordHash: hash}}, auth.Options{})
	if err != nil {
		b.Fatal(err)
	}
	routes, err := policy.CompileRoutes(cfg.Routes)
	if err != nil {
		b.Fatal(err)
	}
	opts := server.Options{Config: &cfg, Store: st, Auth: a, Markings: stix.NewMarkings()}
	fo := fanout.Options{Store: st, Routes: routes}
	var prov *telemetry.Providers
	if on {
		prov, err = telemetry.New(context.Background(), nil, telemetry.Options{
			SpanExporter: tracetest.NewNoopExporter(), MetricReader: sdkmetric.NewManualReader()})
		if err != nil {
			b.Fatal(err)
		}
		opts.TracerProvider, opts.MeterProvider, opts.Propagator = prov.TracerProvider, prov.MeterProvider, prov.Propagator
		fo.TracerProvider, fo.MeterProvider = prov.TracerProvider, prov.MeterProvider
	}
	fan := fanout.New(fo) // not run: only ingest is measured; it receives the POSTs' span contexts
	opts.OnIngestSpan = fan.Link
	ts := httptest.NewServer(server.New(opts))
	b.Cleanup(func() {
		ts.Close()
		if prov != nil {
			_ = prov.Shutdown(context.Background())
		}
		_ = st.Close()
	})
	client := ts.Client()
	return func(envelope []byte) {
		req, _ := http.NewRequest("POST", ts.URL+"/exchange/collections/"+inboundID+"/objects/", bytes.NewReader(envelope))
		req.Header.Set("Accept", "application/taxii+json;version=2.1")
		req.Header.Set("Content-Type", "application/taxii+json;version=2.1")
		req.SetBasicAuth("cert-a", "cert-a-pw")
		res, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		var body bytes.Buffer
		_, _ = body.ReadFrom(res.Body)
		res.Body.Close()
		if res.StatusCode != 202 || bytes.Contains(body.Bytes(), []byte(`"failure_count":`)) && !bytes.Contains(body.Bytes(), []byte(`"failure_count":0`)) {
			b.Fatalf("POST: %d %s", res.StatusCode, body.Bytes()[:min(body.Len(), 500)])
		}
	}
}
