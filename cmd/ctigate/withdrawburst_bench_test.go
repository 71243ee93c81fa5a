package main

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/ctigate/ctigate/stix"
)

// BenchmarkWithdrawalBurst measures what a consumer's page reads cost
// while a producer takes many objects back. In the demo topology, cert-a
// pushes 20,000 TLP:GREEN indicators, which both routes publish; the
// police then page through their collection (pages of 1,000) 30 times
// while nothing else happens, and again while cert-a deletes 5,000 of the
// indicators (4 clients, one DELETE each) and fan-out withdraws their
// copies from both routes (10,000 withdrawals). Reports the page latency
// p50/p99 of each phase and the burst's withdrawals per second.
//
//	go test ./cmd/ctigate -run '^$' -bench WithdrawalBurst -benchtime 1x
func BenchmarkWithdrawalBurst(b *testing.B) {
	const (
		objects = 20000
		deletes = 5000
		page    = 1000
	)
	for b.Loop() {
		gw := startServe(b, nil, "--config", demoConfig, "--data", b.TempDir(), "--listen", "127.0.0.1:0")
		client := &http.Client{Timeout: 60 * time.Second}
		id := func(i int) string { return fmt.Sprintf("indicator--0b0b0b0b-0000-4000-8000-%012d", i) }
		for lo := 0; lo < objects; lo += 500 {
			var objs []string
			for i := lo; i < lo+500; i++ {
				objs = append(objs, isoIndicator(id(i), fmt.Sprintf("w%d.example", i), stix.TLP2Green))
			}
			res, body, err := request(b, client, "POST", gw.base+inboundPath+"objects/", "cert-a", []byte(`{"objects":[`+strings.Join(objs, ",")+`]}`))
			if err != nil || res.StatusCode != http.StatusAccepted {
				b.Fatalf("POST: %v %v %.200s", res, err, body)
			}
		}
		// pass pages through the police's collection once and returns the
		// objects seen; each page's latency goes to lat.
		pass := func(lat *[]time.Duration) int {
			seen, after := 0, ""
			for {
				u := gw.base + lawEnforcementPath + "objects/?limit=" + fmt.Sprint(page)
				if after != "" {
					u += "&added_after=" + after
				}
				start := time.Now()
				res, body, err := request(b, client, "GET", u, "police", nil)
				*lat = append(*lat, time.Since(start))
				if err != nil || res.StatusCode != http.StatusOK {
					b.Fatalf("GET: %v %v %.200s", res, err, body)
				}
				var env struct {
					More    bool             `json:"more"`
					Objects []jsontext.Value `json:"objects"`
				}
				if err := json.Unmarshal(body, &env); err != nil {
					b.Fatal(err)
				}
				seen += len(env.Objects)
				if !env.More || len(env.Objects) == 0 {
					return seen
				}
				after = res.Header.Get("X-TAXII-Date-Added-Last")
			}
		}
		var quiet []time.Duration
		for deadline := time.Now().Add(60 * time.Second); ; {
			quiet = quiet[:0]
			if pass(&quiet) == objects {
				break
			}
			if time.Now().After(deadline) {
				b.Fatal("the routes did not publish every object within 60 s")
			}
			time.Sleep(100 * time.Millisecond)
		}
		for range 30 {
			pass(&quiet)
		}
		// The burst: 4 clients delete; the police keep reading until the
		// copies are withdrawn.
		var next atomic.Int64
		var wg sync.WaitGroup
		start := time.Now()
		for range 4 {
			wg.Go(func() {
				for i := int(next.Add(1)) - 1; i < deletes; i = int(next.Add(1)) - 1 {
					res, body, err := request(b, client, "DELETE", gw.base+inboundPath+"objects/"+id(i)+"/", "cert-a", nil)
					if err != nil || res.StatusCode != http.StatusOK {
						b.Errorf("DELETE: %v %v %.200s", res, err, body)
						return
					}
				}
			})
		}
		var burst []time.Duration
		var withdrawn time.Duration
		for {
			if pass(&burst) == objects-deletes {
				withdrawn = time.Since(start)
				break
			}
			if time.Since(start) > 120*time.Second {
				b.Fatal("the copies were not withdrawn within 120 s")
			}
		}
		wg.Wait()
		b.ReportMetric(pct(quiet, 50), "quiet-p50-ms")
		b.ReportMetric(pct(quiet, 99), "quiet-p99-ms")
		b.ReportMetric(pct(burst, 50), "burst-p50-ms")
		b.ReportMetric(pct(burst, 99), "burst-p99-ms")
		b.ReportMetric(float64(len(burst)), "burst-pages")
		b.ReportMetric(2*deletes/withdrawn.Seconds(), "withdrawals/s")
		gw.stop(b)
	}
}
