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
// collected by the Prometheus exporter and a manual reader).
//
//	go test -run '^$' -bench BenchmarkIngestTelemetry -benchtime 2s -count 5 ./server
func BenchmarkIngestTelemetry(b *testing.B) {
	// Small envelopes show the per-request cost (spans, request metrics),
	// large ones the usual producer traffic.
	for _, n := range []int{10, 500} {
		for _, on := range []bool{false, true} {
			name := fmt.Sprintf("envelope=%d/telemetry=%s", n, map[bool]string{false: "off", true: "on"}[on])
			b.Run(name, func(b *testing.B) { benchIngest(b, n, on) })
		}
	}
}

func benchIngest(b *testing.B, perEnvelope int, on bool) {
	hash, err := auth.HashPassword("cert-a-pw")
	if err != nil {
		b.Fatal(err)
	}
	h := map[string]string{"cert-a": hash}
	cfg := config.Default()
	cfg.APIRoots = []config.APIRoot{{Name: "exchange", Title: "Exchange", MaxContentLength: 10 << 20, Collections: []config.Collection{
		{ID: inboundID, Title: "Inbound", Writers: []string{"role:producer"}, Readers: []string{"role:producer"}},
		{ID: publishedID, Title: "Published", Readers: []string{"role:consumer"}},
	}}}
	cfg.Users = []config.User{{Name: "cert-a", Organisation: "CERT-A", Roles: []string{"producer"}, PasswordHash: h["cert-a"]}}
	cfg.Routes = []policy.RouteConfig{{ID: publishedID, Name: "law-enforcement", Sources: []string{inboundID}, Ceiling: "TLP:AMBER"}}
	if err := cfg.Validate(); err != nil {
		b.Fatal(err)
	}
	st, err := bolt.Open(filepath.Join(b.TempDir(), "ctigate.db"), bolt.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	a, err := auth.New([]auth.User{{Name: "cert-a", Organisation: "CERT-A", Roles: []string{"producer"}, PasswordHash: h["cert-a"]}}, auth.Options{})
	if err != nil {
		b.Fatal(err)
	}
	routes, err := policy.CompileRoutes(cfg.Routes)
	if err != nil {
		b.Fatal(err)
	}
	opts := server.Options{Config: &cfg, Store: st, Auth: a}
	fo := fanout.Options{Store: st, Routes: routes}
	if on {
		prov, err := telemetry.New(context.Background(), nil, telemetry.Options{
			SpanExporter: tracetest.NewNoopExporter(), MetricReader: sdkmetric.NewManualReader()})
		if err != nil {
			b.Fatal(err)
		}
		defer prov.Shutdown(context.Background())
		opts.TracerProvider, opts.MeterProvider, opts.Propagator = prov.TracerProvider, prov.MeterProvider, prov.Propagator
		fo.TracerProvider, fo.MeterProvider = prov.TracerProvider, prov.MeterProvider
	}
	fan := fanout.New(fo) // not run: only ingest is measured; it receives the POSTs' span contexts
	opts.OnIngestSpan = fan.Link
	opts.Markings = stix.NewMarkings()
	ts := httptest.NewServer(server.New(opts))
	defer ts.Close()

	envelopes := make([][]byte, b.N)
	for i := range envelopes {
		objs := make([]string, perEnvelope)
		for j := range objs {
			n := i*perEnvelope + j
			objs[j] = fmt.Sprintf(`{"type":"indicator","spec_version":"2.1","id":"indicator--6ba7b810-9dad-41d1-80b4-%012d",`+
				`"created":"2026-01-01T00:00:00.000Z","modified":"2026-01-01T00:00:00.000Z","name":"C2 %d",`+
				`"pattern":"[ipv4-addr:value = '203.0.113.%d']","pattern_type":"stix","valid_from":"2026-01-01T00:00:00Z",`+
				`"object_marking_refs":["%s"]}`, n, n, n%250, stix.TLP2Green)
		}
		envelopes[i] = []byte(`{"objects":[` + strings.Join(objs, ",") + `]}`)
	}
	client := ts.Client()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		req, _ := http.NewRequest("POST", ts.URL+"/exchange/collections/"+inboundID+"/objects/", bytes.NewReader(envelopes[i]))
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
		if res.StatusCode != 202 || !bytes.Contains(body.Bytes(), []byte(fmt.Sprintf(`"success_count":%d`, perEnvelope))) {
			b.Fatalf("POST: %d %s", res.StatusCode, body.Bytes()[:min(body.Len(), 500)])
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N*perEnvelope)/b.Elapsed().Seconds(), "objects/s")
}
