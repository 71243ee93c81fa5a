package redis_test

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/ctigate/ctigate/store"
	"github.com/ctigate/ctigate/store/redis"
	"github.com/ctigate/ctigate/store/redis/redistest"
)

func benchStore(b *testing.B) *redis.Store {
	s, _ := benchStoreClient(b)
	return s
}

func benchStoreClient(b *testing.B) (*redis.Store, goredis.UniversalClient) {
	c, err := redis.NewClient(redis.Config{URL: redistest.URL(b)})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	s, err := redis.New(c, redis.Options{Prefix: redistest.Prefix(b, c)})
	if err != nil {
		b.Fatal(err)
	}
	return s, c
}

// redisCPU returns the Redis server's CPU time (INFO cpu: user and
// system), which the benchmarks report per object: what one Redis, shared
// by every replica, spends on each.
func redisCPU(b *testing.B, c goredis.UniversalClient) time.Duration {
	info, err := c.Info(b.Context(), "cpu").Result()
	if err != nil {
		b.Fatal(err)
	}
	var sum float64
	for line := range strings.Lines(info) {
		k, v, _ := strings.Cut(strings.TrimSpace(line), ":")
		if k == "used_cpu_user" || k == "used_cpu_sys" {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				b.Fatal(err)
			}
			sum += f
		}
	}
	return time.Duration(sum * float64(time.Second))
}

func benchObjects(from, n int) []store.Object {
	objs := make([]store.Object, n)
	for i := range objs {
		id := fmt.Sprintf("indicator--6ba7b810-9dad-41d1-80b4-%012d", from+i)
		raw := fmt.Sprintf(`{"type":"indicator","spec_version":"2.1","id":%q,"created":"2026-01-01T00:00:00.000Z","modified":"2026-01-01T00:00:00.000Z","name":"bench indicator %d with some text to reach a realistic size of about five hundred bytes","description":"Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt ut labore et dolore magna aliqua.","pattern":"[ipv4-addr:value = '203.0.113.%d']","pattern_type":"stix","valid_from":"2026-01-01T00:00:00Z"}`, id, i, i%250)
		objs[i] = store.Object{ID: id, Type: "indicator", SpecVersion: "2.1", Version: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), Raw: []byte(raw), Producer: "CERT-A"}
		objs[i].Hash[0] = byte(i)
	}
	return objs
}

// BenchmarkAddObjects: envelopes of 500 indicators.
func BenchmarkAddObjects(b *testing.B) {
	s := benchStore(b)
	n := 0
	for b.Loop() {
		if _, err := s.AddObjects(b.Context(), "bench", benchObjects(n, 500)); err != nil {
			b.Fatal(err)
		}
		n += 500
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "objects/s")
}

// BenchmarkAddObjectsLedger: the same, written for a producer, so each
// new version also gets its received ledger entry, chained.
func BenchmarkAddObjectsLedger(b *testing.B) {
	s, c := benchStoreClient(b)
	ctx := store.WithActor(b.Context(), store.Actor{User: "cert-a", Org: "CERT-A"})
	n := 0
	cpu := redisCPU(b, c)
	for b.Loop() {
		if _, err := s.AddObjects(ctx, "bench", benchObjects(n, 500)); err != nil {
			b.Fatal(err)
		}
		n += 500
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "objects/s")
	b.ReportMetric(float64((redisCPU(b, c)-cpu).Nanoseconds())/1e3/float64(n), "redis-µs/object")
}

// BenchmarkObjects: pages of 1000 (match[version] last, the default) over
// 20,000 indicators.
func BenchmarkObjects(b *testing.B) {
	s, c := benchStoreClient(b)
	for i := 0; i < 20000; i += 500 {
		if _, err := s.AddObjects(b.Context(), "bench", benchObjects(i, 500)); err != nil {
			b.Fatal(err)
		}
	}
	q := store.Query{Limit: 1000}
	n := 0
	cpu := redisCPU(b, c)
	for b.Loop() {
		p, err := s.Objects(b.Context(), "bench", q)
		if err != nil {
			b.Fatal(err)
		}
		n += len(p.Objects)
		q.Next = p.Next
		if !p.More {
			q.Next = ""
		}
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "objects/s")
	b.ReportMetric(float64((redisCPU(b, c)-cpu).Nanoseconds())/1e3/float64(n), "redis-µs/object")
}
