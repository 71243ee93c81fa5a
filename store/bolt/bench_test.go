package bolt

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ctigate/ctigate/store"
)

// benchT0 is the fixtures' clock: frozen, so the i-th object added gets
// date_added benchT0 + i µs.
var benchT0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// uuid4 returns a random version 4 UUID.
func uuid4(rng *rand.Rand) string {
	var u [16]byte
	binary.LittleEndian.PutUint64(u[:8], rng.Uint64())
	binary.LittleEndian.PutUint64(u[8:], rng.Uint64())
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	var out [36]byte
	hex.Encode(out[0:8], u[0:4])
	out[8] = '-'
	hex.Encode(out[9:13], u[4:6])
	out[13] = '-'
	hex.Encode(out[14:18], u[6:8])
	out[18] = '-'
	hex.Encode(out[19:23], u[8:10])
	out[23] = '-'
	hex.Encode(out[24:], u[10:])
	return string(out[:])
}

// indicator returns a STIX indicator of about 450 bytes.
func indicator(rng *rand.Rand, id string, version time.Time) store.Object {
	ts := version.Format("2006-01-02T15:04:05.000Z")
	ip := fmt.Sprintf("198.51.%d.%d", rng.IntN(256), rng.IntN(256))
	raw := fmt.Appendf(nil, `{"type":"indicator","spec_version":"2.1","id":%q,"created":%q,"modified":%q,`+
		`"name":"Malicious IP %s","description":"C2 server observed in phishing campaign","indicator_types":["malicious-activity"],`+
		`"pattern":"[ipv4-addr:value = '%s']","pattern_type":"stix","valid_from":%q,`+
		`"object_marking_refs":["marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb"]}`,
		id, ts, ts, ip, ip, ts)
	return store.Object{ID: id, Type: "indicator", SpecVersion: "2.1", Version: version, Raw: raw}
}

// BenchmarkAddObjects measures durable ingest (fsync on) of envelopes of 500
// indicators of about 450 bytes with fresh random ids, from 1 and 4
// concurrent producers, into an empty collection and into one already
// holding 1,000,000 versions. One op is one envelope. Besides objects/s it
// reports the process's CPU time per object, which depends less on other
// load on the machine.
func BenchmarkAddObjects(b *testing.B) {
	for _, prefill := range []int{0, 1_000_000} {
		b.Run(fmt.Sprintf("prefilled=%d", prefill), func(b *testing.B) {
			var path string
			if prefill > 0 {
				path, _ = buildFixture(b, prefill)
			}
			for _, producers := range []int{1, 4} {
				b.Run(fmt.Sprintf("producers=%d", producers), func(b *testing.B) {
					p := path
					if p == "" {
						p = filepath.Join(b.TempDir(), "bench.db")
					}
					benchAdd(b, p, producers)
				})
			}
		})
	}
}

func benchAdd(b *testing.B, path string, producers int) {
	const envelope = 500
	s, err := Open(path, Options{NoSync: os.Getenv("CTIGATE_BENCH_NOSYNC") != ""})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	ctx := b.Context()
	// Object bodies are made up front; ids are fresh for every op.
	rng := rand.New(rand.NewPCG(1, 2))
	bodies := make([]store.Object, 4*envelope)
	for i := range bodies {
		bodies[i] = indicator(rng, "indicator--"+uuid4(rng), benchT0)
	}
	debug.FreeOSMemory()
	var next atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	start, cpu0 := time.Now(), cpuTime()
	for p := range producers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(p), uint64(time.Now().UnixNano())))
			objs := make([]store.Object, envelope)
			for next.Add(1) <= int64(b.N) {
				for i := range objs {
					objs[i] = bodies[rng.IntN(len(bodies))]
					objs[i].ID = "indicator--" + uuid4(rng)
				}
				if _, err := s.AddObjects(ctx, "c", objs); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	elapsed, cpu := time.Since(start), cpuTime()-cpu0
	b.ReportMetric(float64(b.N*envelope)/elapsed.Seconds(), "objects/s")
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N*envelope), "cpu-µs/object")
}

// buildFixture writes a store file with n object versions in collection "c"
// quickly (no fsync, large transactions): 90% first versions of new
// indicators, 10% newer versions of recent ones. The i-th version added has
// date_added benchT0 + i µs. It returns the file's path and a few of its ids.
func buildFixture(b *testing.B, n int) (string, []string) {
	b.Helper()
	start := time.Now()
	path := filepath.Join(b.TempDir(), "fixture.db")
	s, err := Open(path, Options{NoSync: true, Clock: func() time.Time { return benchT0 }})
	if err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(7, 8))
	bodies := make([]store.Object, 1000)
	for i := range bodies {
		bodies[i] = indicator(rng, "indicator--"+uuid4(rng), benchT0)
	}
	recent := make([]string, 0, 1000)
	const batch = 100_000
	objs := make([]store.Object, 0, batch)
	for i := range n {
		o := bodies[rng.IntN(len(bodies))]
		if len(recent) == cap(recent) && rng.IntN(10) == 0 {
			o.ID = recent[rng.IntN(len(recent))]
			o.Version = benchT0.Add(time.Duration(i) * time.Millisecond)
		} else {
			o.ID = "indicator--" + uuid4(rng)
			o.Version = benchT0.Add(-time.Hour)
			if len(recent) < cap(recent) {
				recent = append(recent, o.ID)
			} else {
				recent[rng.IntN(len(recent))] = o.ID
			}
		}
		objs = append(objs, o)
		if len(objs) == batch || i == n-1 {
			if _, err := s.AddObjects(b.Context(), "c", objs); err != nil {
				b.Fatal(err)
			}
			objs = objs[:0]
		}
	}
	if err := s.Close(); err != nil {
		b.Fatal(err)
	}
	b.Logf("fixture: %d versions in %v", n, time.Since(start).Round(time.Millisecond))
	return path, recent
}

// BenchmarkPage measures reading one page of 1,000 objects at a random
// position in collections of 10,000 and 1,000,000 versions. One op is one
// page.
func BenchmarkPage(b *testing.B) {
	for _, n := range []int{10_000, 1_000_000} {
		b.Run(fmt.Sprintf("n=%d", n), func(b *testing.B) {
			path, ids := buildFixture(b, n)
			debug.FreeOSMemory()
			start := time.Now()
			s, err := Open(path, Options{})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			b.Logf("opened %d versions in %v", n, time.Since(start).Round(time.Millisecond))
			ctx := b.Context()
			for _, bc := range []struct {
				name string
				q    store.Query
			}{
				{"last", store.Query{}},
				{"all", store.Query{Versions: []store.VersionMatch{{Kind: store.All}}}},
				{"manifest", store.Query{WithoutRaw: true}},
				{"type-miss", store.Query{Types: []string{"malware"}, Limit: 1000}},
				{"id", store.Query{IDs: ids[:1], Versions: []store.VersionMatch{{Kind: store.All}}}},
			} {
				b.Run(bc.name, func(b *testing.B) {
					rng := rand.New(rand.NewPCG(1, 1))
					objects := 0
					for b.Loop() {
						q := bc.q
						if bc.name != "type-miss" && bc.name != "id" {
							q.AddedAfter = benchT0.Add(time.Duration(rng.IntN(max(1, n-1000))) * time.Microsecond)
						}
						p, err := s.Objects(ctx, "c", q)
						if err != nil {
							b.Fatal(err)
						}
						objects += len(p.Objects)
					}
					b.ReportMetric(float64(objects)/b.Elapsed().Seconds(), "objects/s")
				})
			}
			b.Run("scan-all", func(b *testing.B) {
				// Pages through everything as a consumer would, with the
				// trimmer running, and reports the largest RSS seen and
				// the part of it that is the mapped file.
				debug.FreeOSMemory()
				var peak, peakFile int64
				objects := 0
				for b.Loop() {
					q := store.Query{}
					for pages := 0; ; pages++ {
						p, err := s.Objects(ctx, "c", q)
						if err != nil {
							b.Fatal(err)
						}
						objects += len(p.Objects)
						if pages%5 == 0 {
							peak = max(peak, procStatus("VmRSS"))
							peakFile = max(peakFile, procStatus("RssFile"))
						}
						if !p.More {
							break
						}
						q.Next = p.Next
					}
				}
				b.ReportMetric(float64(objects)/b.Elapsed().Seconds(), "objects/s")
				if peak > 0 {
					b.ReportMetric(float64(peak)/(1<<20), "peak-RSS-MB")
					b.ReportMetric(float64(peakFile)/(1<<20), "peak-RssFile-MB")
				}
			})
		})
	}
}

// procStatus returns a size field of /proc/self/status ("VmRSS",
// "RssFile") in bytes, or 0 where it is unknown.
func procStatus(field string) int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for line := range strings.Lines(string(b)) {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// BenchmarkOpen measures Open on a file of 1,000,000 versions, which
// rebuilds the keydir by scanning the index, and reports the heap the
// keydir takes. One op is one Open and Close.
func BenchmarkOpen(b *testing.B) {
	const n = 1_000_000
	path, _ := buildFixture(b, n)
	var heap int64
	for b.Loop() {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		s, err := Open(path, Options{TrimInterval: -1})
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		runtime.GC()
		runtime.ReadMemStats(&after)
		heap = int64(after.HeapAlloc) - int64(before.HeapAlloc)
		if v := s.keys.colls["c"].versions; v != n {
			b.Fatalf("keydir holds %d versions, want %d", v, n)
		}
		s.Close()
		b.StartTimer()
	}
	b.ReportMetric(float64(heap)/1e6, "keydir-MB")
}
