package bolt

import (
	"context"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ctigate/ctigate/custody"
	"github.com/ctigate/ctigate/store"
)

// BenchmarkIndexLedger measures indexing (tree hashes, per-object
// references) 30,000 new entries about random objects, written as ingest
// and fan-out write them (received, then published), into a ledger whose
// first 300,000 entries are indexed already: one op indexes the 30,000.
func BenchmarkIndexLedger(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 2))
	sum := strings.Repeat("ab", 32)
	entries := func(n int) []custody.Entry {
		var out []custody.Entry
		for range n / 2 {
			id := "indicator--" + uuid4(rng)
			out = append(out,
				custody.Entry{Action: custody.Received, User: "cert-a", Org: "CERT-A", Collection: "inbound", ObjectID: id, ObjectVersion: "2026-01-01T00:00:00.000Z", SHA256: sum},
				custody.Entry{Action: custody.Published, Route: "law", Collection: "law", Source: "inbound", ObjectID: id, ObjectVersion: "2026-01-01T00:00:00.000Z", SHA256: sum, PublishedSHA256: sum})
		}
		return out
	}
	ctx := context.Background()
	appendAll := func(s *Store, es []custody.Entry) {
		for j := 0; j < len(es); j += 500 {
			if _, err := s.AppendEntries(ctx, es[j:min(j+500, len(es))]); err != nil {
				b.Fatal(err)
			}
		}
	}
	dir := b.TempDir()
	base := filepath.Join(dir, "base.db")
	s, err := Open(base, Options{NoSync: true})
	if err != nil {
		b.Fatal(err)
	}
	appendAll(s, entries(300_000))
	if _, err := store.IndexLedger(ctx, s, 0); err != nil {
		b.Fatal(err)
	}
	s.Close()
	const n = 30_000
	more := entries(n)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		path := filepath.Join(dir, "ledger.db")
		copyFile(b, base, path)
		s, err := Open(path, Options{NoSync: true})
		if err != nil {
			b.Fatal(err)
		}
		appendAll(s, more)
		b.StartTimer()
		if _, err := store.IndexLedger(ctx, s, 0); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		s.Close()
		b.StartTimer()
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N*n), "µs/entry")
}
