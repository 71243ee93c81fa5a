package bolt

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"

	"go.etcd.io/bbolt"

	"github.com/ctigate/ctigate/custody"
	"github.com/ctigate/ctigate/store"
)

// BenchmarkIndexLedger measures indexing (tree hashes, per-object
// references) 30,000 new entries about random objects, written as ingest
// and fan-out write them (received, then published), into a ledger whose
// first 300,000 entries are indexed already: one op indexes the 30,000,
// taken from the store's feed as serve's checkpointer does (from=feed),
// or read back from the file as after a restart (from=file).
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
	appendAll := func(b *testing.B, s *Store, es []custody.Entry) {
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
	appendAll(b, s, entries(300_000))
	if _, err := store.IndexLedger(ctx, s, 0); err != nil {
		b.Fatal(err)
	}
	s.Close()
	const n = 30_000
	more := entries(n)
	for _, fromFile := range []bool{false, true} {
		name := "from=feed"
		if fromFile {
			name = "from=file"
		}
		b.Run(name, func(b *testing.B) { benchIndexMore(b, dir, base, more, appendAll, fromFile) })
	}
}

// linesOnly is a store whose index reads every entry back from the file.
type linesOnly struct{ *Store }

func (linesOnly) RecentIndexed(_, _ uint64, out []store.IndexedEntry) ([]store.IndexedEntry, bool) {
	return out, false
}

func benchIndexMore(b *testing.B, dir, base string, more []custody.Entry, appendAll func(*testing.B, *Store, []custody.Entry), fromFile bool) {
	ctx := context.Background()
	n := len(more)
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
		appendAll(b, s, more)
		var l store.IndexedLedger = s
		if fromFile {
			l = linesOnly{s}
		}
		b.StartTimer()
		if _, err := store.IndexLedger(ctx, l, 0); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		s.Close()
		b.StartTimer()
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N*n), "µs/entry")
}

// BenchmarkObjectRuns writes the per-object index of two million ledger
// entries in batches of 6,600 (a checkpointer's batch during a push of
// envelopes of 500) and reports the bytes of pages bbolt wrote per pair
// (16 bytes each): merges and the leaves they dirty.
func BenchmarkObjectRuns(b *testing.B) {
	for range b.N {
		b.StopTimer()
		s, err := Open(filepath.Join(b.TempDir(), "runs.db"), Options{NoSync: true})
		if err != nil {
			b.Fatal(err)
		}
		st := s.db.Stats()
		before := st.TxStats.GetPageAlloc()
		seq := uint64(0)
		b.StartTimer()
		for range 300 {
			refs := make([]store.ObjectRef, 6600)
			for i := range refs {
				seq++
				refs[i] = store.ObjectRef{ID: fmt.Sprintf("indicator--%d", seq), Seq: seq}
			}
			err := s.db.Update(func(tx *bbolt.Tx) error {
				return putObjectRun(tx.Bucket(bucketLedgerRuns), objectRun(refs), maxRunPairs)
			})
			if err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		st = s.db.Stats()
		b.ReportMetric(float64(st.TxStats.GetPageAlloc()-before)/float64(seq), "page-B/pair")
		s.Close()
		b.StartTimer()
	}
}
