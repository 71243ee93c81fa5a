package server_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/ctigate/ctigate/server"
	"github.com/ctigate/ctigate/store"
	"github.com/ctigate/ctigate/store/bolt"
)

// noActor is a store whose writes carry no actor, so that the backend
// writes no received entries: the ingest path without the ledger.
type noActor struct{ *bolt.Store }

func (s noActor) AddObjects(_ context.Context, coll string, objs []store.Object) ([]store.AddResult, error) {
	return s.Store.AddObjects(context.Background(), coll, objs)
}

// BenchmarkIngestLedger measures POST …/objects/ (decode, validate,
// hash, store; 500 indicators with random ids per envelope, 4 producers
// at once) with and
// without the custody ledger's received entries, on a synced and an
// unsynced bbolt file: throughput, and process CPU time per object.
func BenchmarkIngestLedger(b *testing.B) {
	for _, sync := range []bool{true, false} {
		for _, ledger := range []bool{true, false} {
			name := fmt.Sprintf("sync=%v/ledger=%v", sync, ledger)
			b.Run(name, func(b *testing.B) { benchIngest(b, sync, ledger) })
		}
	}
}

func benchIngest(b *testing.B, sync, ledger bool) {
	t := &testing.T{}
	cfg := testConfig(t)
	cfg.APIRoots[0].MaxContentLength = 1 << 20
	st, err := bolt.Open(filepath.Join(b.TempDir(), "ctigate.db"), bolt.Options{NoSync: !sync})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	a := authOf(b, cfg)
	opts := server.Options{Config: cfg, Auth: a, Store: st, Ledger: st}
	if !ledger {
		opts.Store, opts.Ledger = noActor{st}, nil
	}
	srv := server.New(opts)
	const perEnvelope = 500
	post := func(body string) *httptest.ResponseRecorder {
		return postInProcess(srv, body)
	}
	// The first request pays the password hash; later ones hit the cache.
	if w := post(`{"objects":[` + indicator(0, "2026-01-02T00:00:00.000Z") + `]}`); w.Code != http.StatusAccepted {
		b.Fatalf("warm-up POST: %d %s", w.Code, w.Body.String())
	}
	var next atomic.Int64
	b.SetParallelism(2)
	b.ResetTimer()
	cpu0 := cpuTime()
	b.RunParallel(func(pb *testing.PB) {
		objs := make([]string, perEnvelope)
		for pb.Next() {
			n := int(next.Add(1))
			for i := range objs {
				objs[i] = strings.Replace(indicator(n*perEnvelope+i, "2026-01-02T00:00:00.000Z"), "6ba7b810-9dad-41d1-80b4-", fmt.Sprintf("%08x-9dad-41d1-80b4-", rand.Uint32()), 1)
			}
			w := post(`{"objects":[` + strings.Join(objs, ",") + `]}`)
			if w.Code != http.StatusAccepted || !strings.Contains(w.Body.String(), fmt.Sprintf(`"success_count":%d`, perEnvelope)) {
				b.Errorf("POST: %d %.300s", w.Code, w.Body.String())
				return
			}
		}
	})
	b.StopTimer()
	cpu := cpuTime() - cpu0
	b.ReportMetric(float64(b.N*perEnvelope)/b.Elapsed().Seconds(), "objects/s")
	// CPU time per object depends less on what else the machine runs.
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N*perEnvelope), "cpu-µs/object")
	if ledger {
		h, err := st.LedgerHead(context.Background())
		if err != nil || h.Seq != uint64(b.N*perEnvelope+1) {
			b.Fatalf("ledger head %d, %v; want %d received entries", h.Seq, err, b.N*perEnvelope+1)
		}
	}
}

// BenchmarkPollLedger measures GET …/objects/?limit=1000 on 10,000 stored
// indicators, with and without the delivered entry each page records.
func BenchmarkPollLedger(b *testing.B) {
	for _, sync := range []bool{true, false} {
		for _, ledger := range []bool{true, false} {
			b.Run(fmt.Sprintf("sync=%v/ledger=%v", sync, ledger), func(b *testing.B) { benchPoll(b, sync, ledger) })
		}
	}
}

func benchPoll(b *testing.B, sync, ledger bool) {
	t := &testing.T{}
	cfg := testConfig(t)
	cfg.APIRoots[0].MaxContentLength = 1 << 20
	st, err := bolt.Open(filepath.Join(b.TempDir(), "ctigate.db"), bolt.Options{NoSync: !sync})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	a := authOf(b, cfg)
	opts := server.Options{Config: cfg, Auth: a, Store: st, Ledger: st}
	if !ledger {
		opts.Ledger = nil
	}
	srv := server.New(opts)
	do := func(method, path, body string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(method, path, strings.NewReader(body))
		req.Header.Set("Accept", "application/taxii+json;version=2.1")
		req.Header.Set("Content-Type", "application/taxii+json;version=2.1")
		req.SetBasicAuth("cert-a", "cert-a-pw")
		w := httptest.NewRecorder()
		srv.ServeHTTP(w, req)
		return w
	}
	for n := range 100 {
		objs := make([]string, 100)
		for i := range objs {
			objs[i] = indicator(n*100+i, "2026-01-02T00:00:00.000Z")
		}
		if w := do(http.MethodPost, inbound+"objects/", `{"objects":[`+strings.Join(objs, ",")+`]}`); w.Code != http.StatusAccepted {
			b.Fatal(w.Code)
		}
	}
	b.SetParallelism(2)
	b.ResetTimer()
	cpu0 := cpuTime()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if w := do(http.MethodGet, inbound+"objects/?limit=1000", ""); w.Code != http.StatusOK {
				b.Errorf("GET: %d", w.Code)
				return
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(b.N*1000)/b.Elapsed().Seconds(), "objects/s")
	b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(b.N), "cpu-µs/page")
}
