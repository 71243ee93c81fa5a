package search_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/ctigate/ctigate/search"
	"github.com/ctigate/ctigate/store"
	"github.com/ctigate/ctigate/store/bolt"
)

// benchObservable is the observable of generated indicator i: a quarter
// each of /24 networks, single addresses, domains (from URL patterns) and
// SHA-256 hashes.
func benchObservable(i int) (pattern string, obs []search.Observable) {
	switch i % 4 {
	case 0:
		p := fmt.Sprintf("10.%d.%d.0/24", (i/4)>>8&0xff, (i/4)&0xff)
		o, _ := search.IP(p)
		return "[ipv4-addr:value = '" + p + "']", []search.Observable{o}
	case 1:
		a := fmt.Sprintf("172.%d.%d.%d", 16+(i>>16)&0xf, (i>>8)&0xff, i&0xff)
		o, _ := search.IP(a)
		return "[ipv4-addr:value = '" + a + "']", []search.Observable{o}
	case 2:
		u := fmt.Sprintf("https://host%d.example/x", i)
		return "[url:value = '" + u + "']", search.URL(u)
	default:
		h := benchHash(i)
		o, _ := search.Hash("SHA-256", h)
		return "[file:hashes.'SHA-256' = '" + h + "']", []search.Observable{o}
	}
}

func benchHash(i int) string {
	s := sha256.Sum256([]byte(fmt.Sprint(i)))
	return hex.EncodeToString(s[:])
}

// benchQuery is a lookup that finds indicator i.
func benchQuery(i int) string {
	switch i % 4 {
	case 0:
		return fmt.Sprintf("10.%d.%d.77", (i/4)>>8&0xff, (i/4)&0xff) // inside the /24
	case 1:
		return fmt.Sprintf("172.%d.%d.%d", 16+(i>>16)&0xf, (i>>8)&0xff, i&0xff)
	case 2:
		return fmt.Sprintf("host%d.example", i)
	default:
		return benchHash(i)
	}
}

func benchID(i int) string { return fmt.Sprintf("indicator--00000000-0000-4000-8000-%012d", i) }

const benchColl = "bench"

// benchStore returns a store of n indicators and its index, cached under
// os.TempDir() between runs (building 1,000,000 takes a while).
func benchStore(b *testing.B, n int) (*bolt.Store, *bolt.Index) {
	b.Helper()
	path := filepath.Join(os.TempDir(), fmt.Sprintf("ctigate-search-bench-%d-v4.db", n))
	ixPath := path + ".search"
	ctx := context.Background()
	if st, err := bolt.Open(path, bolt.Options{}); err == nil {
		ix, err := bolt.OpenIndex(ixPath, bolt.IndexOptions{})
		if err == nil {
			if cp, err := ix.IndexCheckpoint(ctx, benchColl, "bench/complete"); err == nil && !cp.IsZero() {
				return st, ix
			}
			ix.Close()
		}
		st.Close()
	}
	os.Remove(path)
	os.Remove(ixPath)
	st, err := bolt.Open(path, bolt.Options{NoSync: true})
	if err != nil {
		b.Fatal(err)
	}
	ix, err := bolt.OpenIndex(ixPath, bolt.IndexOptions{NoSync: true})
	if err != nil {
		b.Fatal(err)
	}
	v := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	const batch = 10000
	var indexTime time.Duration
	entries := 0
	for lo := 0; lo < n; lo += batch {
		objs := make([]store.Object, 0, batch)
		var obs [][]search.Observable
		for i := lo; i < min(lo+batch, n); i++ {
			pat, o := benchObservable(i)
			raw := fmt.Sprintf(`{"type":"indicator","id":%q,"pattern":%q}`, benchID(i), pat)
			objs = append(objs, store.Object{ID: benchID(i), Type: "indicator", SpecVersion: "2.1", Version: v, Raw: []byte(raw), Producer: "CERT-A"})
			obs = append(obs, o)
		}
		res, err := st.AddObjects(ctx, benchColl, objs)
		if err != nil {
			b.Fatal(err)
		}
		var es []store.IndexEntry
		for j, o := range objs {
			for _, ob := range obs[j] {
				es = append(es, store.IndexEntry{Class: ob.Class, Value: ob.Value, Collection: benchColl, ID: o.ID, Type: "indicator",
					Version: v, DateAdded: res[j].DateAdded, TLP: "TLP:GREEN", Producer: "CERT-A", Labels: []string{"malicious-activity"}, Observable: ob.Given})
			}
		}
		start := time.Now()
		if err := ix.AddIndexEntries(ctx, benchColl, es, search.CheckpointName(benchColl), res[len(res)-1].DateAdded); err != nil {
			b.Fatal(err)
		}
		indexTime += time.Since(start)
		entries += len(es)
	}
	if err := ix.AddIndexEntries(ctx, benchColl, nil, "bench/complete", v); err != nil {
		b.Fatal(err)
	}
	b.Logf("built %d indicators, %d index entries; index writes %.0f entries/s", n, entries, float64(entries)/indexTime.Seconds())
	st.Close()
	ix.Close()
	if st, err = bolt.Open(path, bolt.Options{}); err != nil {
		b.Fatal(err)
	}
	if ix, err = bolt.OpenIndex(ixPath, bolt.IndexOptions{}); err != nil {
		b.Fatal(err)
	}
	return st, ix
}

// BenchmarkLookup1M: observable lookups (an address inside a /24 pattern,
// an address, a domain from a URL pattern, a SHA-256) through
// Searcher.Search, existence checks included, with 1,000,000 indicators
// indexed (1,250,000 entries), the index's segments merged. Reports p50
// and p99 latency and the number of segments.
//
//	go test ./search -run '^$' -bench Lookup1M -benchtime 20000x
func BenchmarkLookup1M(b *testing.B) { benchLookup(b, 1_000_000) }

// BenchmarkLookup10M is BenchmarkLookup1M with 10,000,000 indicators
// (12,500,000 entries; building them takes minutes and 8 GB of disk under
// os.TempDir(), kept for the next run).
//
//	go test ./search -run '^$' -bench Lookup10M -benchtime 20000x -timeout 60m
func BenchmarkLookup10M(b *testing.B) { benchLookup(b, 10_000_000) }

func benchLookup(b *testing.B, n int) {
	st, ix := benchStore(b, n)
	defer st.Close()
	defer ix.Close()
	ctx := context.Background()
	start := time.Now()
	merges, err := ix.MergeSegments(ctx)
	if err != nil {
		b.Fatal(err)
	}
	if merges > 0 {
		b.Logf("%d merges in %v", merges, time.Since(start).Round(time.Millisecond))
	}
	s := search.NewSearcher(search.Join(st, ix))
	rnd := rand.New(rand.NewPCG(1, 2))
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for b.Loop() {
		i := rnd.IntN(n)
		start := time.Now()
		r, err := s.Search(ctx, search.Query{Value: benchQuery(i), Collections: []string{benchColl}})
		lat = append(lat, time.Since(start))
		if err != nil {
			b.Fatal(err)
		}
		if len(r.Hits) == 0 || !slices.ContainsFunc(r.Hits, func(h search.Hit) bool { return h.ID == benchID(i) }) {
			b.Fatalf("lookup of %s did not find %s: %+v", benchQuery(i), benchID(i), r.Hits)
		}
	}
	b.StopTimer()
	slices.Sort(lat)
	q := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))].Microseconds()) / 1000 }
	b.ReportMetric(q(0.5), "p50-ms")
	b.ReportMetric(q(0.99), "p99-ms")
	b.ReportMetric(q(0.999), "p99.9-ms")
	b.ReportMetric(q(1), "max-ms")
	b.ReportMetric(float64(ix.Segments()), "segments")
}

// BenchmarkIndexBuild: the indexer reading stored indicators (with real
// STIX patterns), extracting their observables and writing the index, as
// `ctigate index rebuild` does. Reports versions/s and entries/s.
//
//	go test ./search -run '^$' -bench IndexBuild -benchtime 3x
func BenchmarkIndexBuild(b *testing.B) {
	const n = 100_000
	ctx := context.Background()
	st, err := bolt.Open(filepath.Join(b.TempDir(), "build.db"), bolt.Options{NoSync: true})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	ix, err := bolt.OpenIndex(filepath.Join(b.TempDir(), "search.db"), bolt.IndexOptions{NoSync: true})
	if err != nil {
		b.Fatal(err)
	}
	defer ix.Close()
	v := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for lo := 0; lo < n; lo += 10000 {
		var objs []store.Object
		for i := lo; i < lo+10000; i++ {
			pat, _ := benchObservable(i)
			o := indicator(i, pat, tlpGreen, v)
			objs = append(objs, o)
		}
		if _, err := st.AddObjects(ctx, benchColl, objs); err != nil {
			b.Fatal(err)
		}
	}
	x := search.NewIndexer(search.IndexerOptions{Store: search.Join(st, ix), Collections: []string{benchColl}, BatchSize: 5000})
	var total search.Stats
	var elapsed time.Duration
	for b.Loop() {
		if err := ix.DropIndex(ctx); err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		s, err := x.RunOnce(ctx)
		elapsed += time.Since(start)
		if err != nil {
			b.Fatal(err)
		}
		if s.Versions != n {
			b.Fatalf("indexed %d versions, want %d", s.Versions, n)
		}
		total.Versions += s.Versions
		total.Entries += s.Entries
	}
	b.ReportMetric(float64(total.Versions)/elapsed.Seconds(), "versions/s")
	b.ReportMetric(float64(total.Entries)/elapsed.Seconds(), "entries/s")
}
