package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ctigate/ctigate/stix"
)

// benchServe runs `ctigate serve args…` in-process until the benchmark
// ends and returns its scheme://host:port.
func benchServe(b *testing.B, args ...string) string {
	b.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		err := run(ctx, append([]string{"serve"}, args...), opsPort0(func(string) string { return "" }), nil, pw, io.Discard)
		pw.CloseWithError(fmt.Errorf("serve returned: %v", err))
		done <- err
	}()
	base := ""
	sc := bufio.NewScanner(pr)
	for sc.Scan() {
		if _, u, ok := strings.Cut(sc.Text(), "serving TAXII 2.1 at "); ok {
			base = strings.TrimSuffix(u, "/taxii2/")
			break
		}
	}
	if base == "" {
		cancel()
		b.Fatalf("serve did not start: %v", sc.Err())
	}
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	b.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			b.Errorf("serve: %v", err)
		}
	})
	return base
}

// benchDo sends one TAXII request as user (demo password) and returns the
// status and body.
func benchDo(client *http.Client, method, u, user string, body []byte) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, u, rd)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Accept", "application/taxii+json;version=2.1")
	if body != nil {
		req.Header.Set("Content-Type", "application/taxii+json;version=2.1")
	}
	req.SetBasicAuth(user, user+"-demo")
	res, err := client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	return res.StatusCode, b, err
}

// BenchmarkPropagation measures propagation latency at light load: one
// TLP:GREEN indicator per POST to csirt-inbound, sequentially, against an
// in-process `ctigate serve` with the demo configuration; each latency is
// from the POST's 202 to the first GET of the law-enforcement collection
// (match[id], as police) that returns the object. It reports the p50 and
// p99 over b.N posts, and the POST's own p50.
//
//	go test ./cmd/ctigate -run '^$' -bench Propagation -benchtime 200x
func BenchmarkPropagation(b *testing.B) {
	base := benchServe(b, "--config", demoConfig, "--data", b.TempDir(), "--listen", "127.0.0.1:0")
	client := &http.Client{Timeout: 10 * time.Second}
	// Warm up: the first request of each user verifies its argon2 hash.
	for _, u := range []string{"cert-a", "police"} {
		if _, _, err := benchDo(client, "GET", base+"/taxii2/", u, nil); err != nil {
			b.Fatal(err)
		}
	}
	var lat, post []time.Duration
	i := 0
	for b.Loop() {
		id := fmt.Sprintf("indicator--5f0c3a9e-1b7d-4c2e-8a4f-%012d", i)
		body := fmt.Sprintf(`{"objects":[{"type":"indicator","spec_version":"2.1","id":%q,"created":"2026-01-01T00:00:00.000Z","modified":"2026-01-01T00:00:00.000Z",`+
			`"name":"latency %d","pattern":"[ipv4-addr:value = '198.51.100.%d']","pattern_type":"stix","valid_from":"2026-01-01T00:00:00Z","object_marking_refs":[%q]}]}`,
			id, i, i%250, stix.TLP2Green)
		i++
		t0 := time.Now()
		code, rb, err := benchDo(client, "POST", base+inboundPath+"objects/", "cert-a", []byte(body))
		if err != nil || code != http.StatusAccepted || !strings.Contains(string(rb), `"success_count":1`) {
			b.Fatalf("POST: %d %v %s", code, err, rb)
		}
		accepted := time.Now()
		post = append(post, accepted.Sub(t0))
		get := base + lawEnforcementPath + "objects/?" + url.Values{"match[id]": {id}}.Encode()
		deadline := accepted.Add(10 * time.Second)
		for {
			code, rb, err := benchDo(client, "GET", get, "police", nil)
			if err != nil || code != http.StatusOK {
				b.Fatalf("GET: %d %v %s", code, err, rb)
			}
			if bytes.Contains(rb, []byte(id)) {
				lat = append(lat, time.Since(accepted))
				break
			}
			if time.Now().After(deadline) {
				b.Fatalf("%s not published within 10s", id)
			}
		}
	}
	b.ReportMetric(pct(lat, 50), "p50-ms")
	b.ReportMetric(pct(lat, 99), "p99-ms")
	b.ReportMetric(pct(lat, 100), "max-ms")
	b.ReportMetric(pct(post, 50), "post-p50-ms")
}

// pct returns the p-th percentile of ds in milliseconds (nearest rank).
func pct(ds []time.Duration, p float64) float64 {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	k := int(float64(len(s))*p/100+0.5) - 1
	k = min(max(k, 0), len(s)-1)
	return float64(s[k]) / float64(time.Millisecond)
}
