package redis_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"slices"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/ctigate/ctigate/store"
	"github.com/ctigate/ctigate/store/redis"
	"github.com/ctigate/ctigate/store/storetest"
)

// indexTestClient connects to the test Redis (CTIGATE_TEST_REDIS_URL,
// default redis://127.0.0.1:6379/15), skipping the test when it does not
// answer unless CTIGATE_REQUIRE_REDIS=1.
func indexTestClient(t *testing.T) *goredis.Client {
	t.Helper()
	u := os.Getenv("CTIGATE_TEST_REDIS_URL")
	if u == "" {
		u = "redis://127.0.0.1:6379/15"
	}
	opts, err := goredis.ParseURL(u)
	if err != nil {
		t.Fatalf("CTIGATE_TEST_REDIS_URL %q: %v", u, err)
	}
	c := goredis.NewClient(opts)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := c.Ping(ctx).Err(); err != nil {
		c.Close()
		if os.Getenv("CTIGATE_REQUIRE_REDIS") == "1" {
			t.Fatalf("Redis at %s unreachable: %v", u, err)
		}
		t.Skipf("Redis at %s unreachable: %v", u, err)
	}
	return c
}

// indexTestPrefix is a fresh key prefix whose keys go when the test ends.
func indexTestPrefix(t *testing.T, c *goredis.Client) string {
	var b [6]byte
	rand.Read(b[:])
	p := "ctigate-test-" + hex.EncodeToString(b[:])
	t.Cleanup(func() {
		ctx := context.Background()
		it := c.Scan(ctx, 0, p+":*", 1000).Iterator()
		for it.Next(ctx) {
			c.Del(ctx, it.Val())
		}
		c.Close()
	})
	return p
}

func TestIndexStandalone(t *testing.T) {
	storetest.RunIndex(t, func(t *testing.T) (store.Index, store.Store, func(*testing.T) store.Index) {
		admin := indexTestClient(t)
		prefix := indexTestPrefix(t, admin)
		open := func(t *testing.T) store.Index {
			c := indexTestClient(t)
			t.Cleanup(func() { c.Close() })
			ix, err := redis.NewIndex(c, prefix)
			if err != nil {
				t.Fatal(err)
			}
			return ix
		}
		return open(t), nil, open
	})
}

// TestIndexDropReclaims: dropping the index deletes the old generation's
// keys.
func TestIndexDropReclaims(t *testing.T) {
	c := indexTestClient(t)
	prefix := indexTestPrefix(t, c)
	ix, err := redis.NewIndex(c, prefix)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	e := store.IndexEntry{Class: "domain", Value: "x.example", Collection: "c1", ID: "indicator--1", DateAdded: time.Now(), TLP: "TLP:GREEN"}
	if err := ix.AddIndexEntries(ctx, "c1", []store.IndexEntry{e}, "cp", time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := ix.DropIndex(ctx); err != nil {
		t.Fatal(err)
	}
	keys, err := c.Keys(ctx, prefix+":*").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 1 || keys[0] != prefix+":ix:gen" {
		t.Errorf("keys after DropIndex: %q, want only the generation", keys)
	}
	if _, err := redis.NewIndex(c, "a{b"); err == nil {
		t.Error("NewIndex accepted a prefix with a brace")
	}
}

// BenchmarkIndexLookup: IndexLookup of one domain (one HGETALL per
// collection, pipelined) with 200,000 entries in two collections, on the
// test Redis. Reports p50 and p99 latency and the write rate.
//
//	go test ./store/redis -run '^$' -bench IndexLookup -benchtime 20000x
func BenchmarkIndexLookup(b *testing.B) {
	const n, batch = 100_000, 5000
	u := os.Getenv("CTIGATE_TEST_REDIS_URL")
	if u == "" {
		u = "redis://127.0.0.1:6379/15"
	}
	opts, err := goredis.ParseURL(u)
	if err != nil {
		b.Fatal(err)
	}
	c := goredis.NewClient(opts)
	defer c.Close()
	ctx := context.Background()
	if err := c.Ping(ctx).Err(); err != nil {
		b.Skipf("Redis unreachable: %v", err)
	}
	var rb [6]byte
	rand.Read(rb[:])
	prefix := "ctigate-bench-" + hex.EncodeToString(rb[:])
	ix, err := redis.NewIndex(c, prefix)
	if err != nil {
		b.Fatal(err)
	}
	defer func() {
		if err := ix.DropIndex(ctx); err != nil {
			b.Error(err)
		}
		c.Del(ctx, prefix+":ix:gen")
	}()
	start, cpu := time.Now(), redisCPU(b, c)
	for _, coll := range []string{"c1", "c2"} {
		for lo := 0; lo < n; lo += batch {
			es := make([]store.IndexEntry, 0, batch)
			for i := lo; i < lo+batch; i++ {
				d := fmt.Sprintf("host%d.example", i)
				es = append(es, store.IndexEntry{Class: "domain", Value: d, Collection: coll, ID: fmt.Sprintf("indicator--%d", i),
					Type: "indicator", DateAdded: time.Now(), TLP: "TLP:GREEN", Producer: "CERT-A", Observable: d})
			}
			if err := ix.AddIndexEntries(ctx, coll, es, "bench", time.Now()); err != nil {
				b.Fatal(err)
			}
		}
	}
	writeRate := float64(2*n) / time.Since(start).Seconds()
	writeCPU := float64((redisCPU(b, c) - cpu).Nanoseconds()) / 1e3 / float64(2*n)
	lat := make([]time.Duration, 0, b.N)
	i := 0
	for b.Loop() {
		i = (i + 7919) % n
		s := time.Now()
		es, err := ix.IndexLookup(ctx, []store.IndexKey{{Class: "domain", Value: fmt.Sprintf("host%d.example", i)}})
		lat = append(lat, time.Since(s))
		if err != nil || len(es) != 2 {
			b.Fatalf("lookup %d: %d entries, %v", i, len(es), err)
		}
	}
	slices.Sort(lat)
	q := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))].Microseconds()) / 1000 }
	b.ReportMetric(q(0.5), "p50-ms")
	b.ReportMetric(q(0.99), "p99-ms")
	b.ReportMetric(writeRate, "writes/s")
	b.ReportMetric(writeCPU, "redis-µs/write")
}
