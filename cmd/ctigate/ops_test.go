package main

import (
	"net/http"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// scrape reads the operations listener's /metrics and parses it with the
// Prometheus text parser.
func scrape(t *testing.T, ops string) map[string]*dto.MetricFamily {
	t.Helper()
	res, err := http.Get(ops + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != 200 || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/plain") {
		t.Fatalf("/metrics: %d %s", res.StatusCode, res.Header.Get("Content-Type"))
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(res.Body)
	if err != nil {
		t.Fatalf("/metrics is not the Prometheus text format: %v", err)
	}
	return fams
}

// sample is the value of the series of family name whose labels include
// labels (summed over the others; histograms: the count); -1 when the
// family is missing.
func sample(fams map[string]*dto.MetricFamily, name string, labels map[string]string) float64 {
	f, ok := fams[name]
	if !ok {
		return -1
	}
	total := 0.0
outer:
	for _, m := range f.GetMetric() {
		for k, v := range labels {
			found := false
			for _, l := range m.GetLabel() {
				if l.GetName() == k && l.GetValue() == v {
					found = true
				}
			}
			if !found {
				continue outer
			}
		}
		switch {
		case m.Counter != nil:
			total += m.GetCounter().GetValue()
		case m.Gauge != nil:
			total += m.GetGauge().GetValue()
		case m.Histogram != nil:
			total += float64(m.GetHistogram().GetSampleCount())
		}
	}
	return total
}

// TestOpsListener: the operations listener serves /healthz, /readyz and
// /metrics in the Prometheus text format, with the gateway's counters
// after a POST (3 accepted, 1 rejected) and its publication, request
// latency by route, and the routes' backlog back to 0.
func TestOpsListener(t *testing.T) {
	gw := startServe(t, nil, "--config", demoConfig, "--data", t.TempDir(), "--listen", "127.0.0.1:0")
	if gw.ops == "" {
		t.Fatal("serve did not print the operations listener")
	}
	for _, p := range []string{"/healthz", "/readyz"} {
		res, err := http.Get(gw.ops + p)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != 200 {
			t.Errorf("ops %s: %d", p, res.StatusCode)
		}
	}
	client := &http.Client{Timeout: 10 * time.Second}
	body := `{"objects":[` + strings.Join([]string{
		markedIndicator("green", "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb"),
		markedIndicator("amber", "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421"),
		markedIndicator("red", "marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1"),
		`{"type":"indicator","spec_version":"2.1","id":"indicator--2b0b8f4e-1c7a-4d55-9f3e-000000000009"}`,
	}, ",") + `]}`
	res, b, err := request(t, client, "POST", gw.base+inboundPath+"objects/", "cert-a", []byte(body))
	if err != nil || res.StatusCode != http.StatusAccepted || !strings.Contains(string(b), `"success_count":3`) {
		t.Fatalf("POST: %v %v %s", res, err, b)
	}

	// Publication is asynchronous: wait until both routes have decided
	// on all three.
	route := func(name string) map[string]string { return map[string]string{"ctigate_route": name} }
	var fams map[string]*dto.MetricFamily
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		fams = scrape(t, gw.ops)
		if sample(fams, "ctigate_fanout_decisions_total", route("law-enforcement")) == 3 &&
			sample(fams, "ctigate_fanout_decisions_total", route("judiciary")) == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the routes did not decide on 3 objects each: %v", fams["ctigate_fanout_decisions_total"])
		}
	}
	if res, b, err := request(t, client, "GET", gw.base+lawEnforcementPath+"objects/", "police", nil); err != nil || res.StatusCode != 200 {
		t.Fatalf("GET: %v %v %s", res, err, b)
	}
	// A client-chosen Host header must not become a label.
	req, _ := http.NewRequest("GET", gw.base+"/taxii2/", nil)
	req.Host = "attacker-chosen.example"
	if res, err := client.Do(req); err == nil {
		res.Body.Close()
	}
	// Nor may an unrouted path or an unknown method.
	for _, m := range []string{"GET", "PATCH", "BREW"} {
		req, _ := http.NewRequest(m, gw.base+"/attacker-chosen-path/a/b/c/", nil)
		if res, err := client.Do(req); err == nil {
			res.Body.Close()
		}
	}
	fams = scrape(t, gw.ops)

	certA := map[string]string{"ctigate_organisation": "CERT-A"}
	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"ctigate_objects_received_total", certA, 4},
		{"ctigate_objects_accepted_total", certA, 3},
		{"ctigate_objects_rejected_total", map[string]string{"ctigate_organisation": "CERT-A", "ctigate_reason": "invalid"}, 1},
		{"ctigate_fanout_decisions_total", map[string]string{"ctigate_route": "law-enforcement", "ctigate_action": "published"}, 2},
		{"ctigate_fanout_decisions_total", map[string]string{"ctigate_route": "law-enforcement", "ctigate_action": "withheld", "ctigate_reason": "tlp_red"}, 1},
		{"ctigate_fanout_decisions_total", map[string]string{"ctigate_route": "judiciary", "ctigate_action": "withheld", "ctigate_reason": "above_ceiling"}, 1},
		{"ctigate_objects_served_total", map[string]string{"ctigate_organisation": "National Police"}, 2},
		{"ctigate_fanout_queue_depth", route("law-enforcement"), 0},
		{"ctigate_fanout_lag_seconds", route("law-enforcement"), 0},
		{"http_server_request_duration_seconds", map[string]string{"http_route": "/:root/collections/:collection/objects/", "http_request_method": "POST"}, 1},
	} {
		if got := sample(fams, c.name, c.labels); got != c.want {
			t.Errorf("%s%v: got %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	if got := sample(fams, "ctigate_consumer_last_poll_seconds", map[string]string{"ctigate_organisation": "National Police"}); got < float64(time.Now().Add(-time.Hour).Unix()) {
		t.Errorf("last poll of National Police: got %v", got)
	}
	// Low cardinality: no object ids, client-chosen values or user names
	// in labels.
	for name, f := range fams {
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if v := l.GetValue(); strings.Contains(v, "--") || strings.Contains(v, "attacker-chosen") || v == "BREW" || v == "police" || v == "cert-a" {
					t.Errorf("%s has label %s=%q", name, l.GetName(), v)
				}
			}
		}
	}
}
