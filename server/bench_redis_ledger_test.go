package server_test

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/ctigate/ctigate/server"
)

// BenchmarkRedisLedger is BenchmarkIngestLedger and BenchmarkPollLedger
// on Redis, with the custody ledger: POST envelopes of 500 indicators with
// random ids (2 producers at once), and GET pages of 1,000 of 10,000
// stored indicators (2 consumers at once), each page's delivery recorded.
// Needs CTIGATE_TEST_REDIS_URL (or Redis on 127.0.0.1:6379).
func BenchmarkRedisLedger(b *testing.B) {
	for _, op := range []string{"ingest", "poll"} {
		b.Run(op, func(b *testing.B) {
			st, _, _ := redisStore(b)
			t := &testing.T{}
			cfg := testConfig(t)
			cfg.APIRoots[0].MaxContentLength = 1 << 20
			a := authOf(b, cfg)
			srv := server.New(server.Options{Config: cfg, Auth: a, Store: st, Ledger: st})
			do := func(method, path, body string) *httptest.ResponseRecorder {
				req := httptest.NewRequest(method, path, strings.NewReader(body))
				req.Header.Set("Accept", "application/taxii+json;version=2.1")
				req.Header.Set("Content-Type", "application/taxii+json;version=2.1")
				req.SetBasicAuth("cert-a", "cert-a-pw")
				w := httptest.NewRecorder()
				srv.ServeHTTP(w, req)
				return w
			}
			envelope := func(n, size int) string {
				objs := make([]string, size)
				for i := range objs {
					objs[i] = strings.Replace(indicator(n*size+i, "2026-01-02T00:00:00.000Z"), "6ba7b810-9dad-41d1-80b4-", fmt.Sprintf("%08x-9dad-41d1-80b4-", rand.Uint32()), 1)
				}
				return `{"objects":[` + strings.Join(objs, ",") + `]}`
			}
			perOp := 500
			if op == "poll" {
				perOp = 1000
				for n := range 20 {
					if w := do(http.MethodPost, inbound+"objects/", envelope(n, 500)); w.Code != http.StatusAccepted {
						b.Fatal(w.Code)
					}
				}
			} else if w := do(http.MethodPost, inbound+"objects/", envelope(1<<20, 1)); w.Code != http.StatusAccepted {
				b.Fatal(w.Code) // the password hash, once
			}
			var next atomic.Int64
			b.SetParallelism(1) // 2 goroutines on 2 cores
			b.ResetTimer()
			cpu0 := cpuTime()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					var w *httptest.ResponseRecorder
					if op == "poll" {
						w = do(http.MethodGet, inbound+"objects/?limit=1000", "")
					} else {
						w = do(http.MethodPost, inbound+"objects/", envelope(int(next.Add(1)), 500))
					}
					if w.Code != http.StatusOK && w.Code != http.StatusAccepted {
						b.Errorf("%s: %d %.200s", op, w.Code, w.Body.String())
						return
					}
				}
			})
			b.StopTimer()
			b.ReportMetric(float64(b.N*perOp)/b.Elapsed().Seconds(), "objects/s")
			b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(b.N*perOp), "cpu-µs/object")
		})
	}
}
