package redis_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"slices"
	"sync"
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

// BenchmarkIndexLookup: IndexLookup of one domain (its bucket field and
// its own hash in each collection, pipelined) with 200,000 entries in two collections, on the
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

// TestIndexBuckets: a key's entries live in its bucket's field until
// they are more than the field keeps, then in a hash of their own,
// across writes, an entry written again replacing its value; entries an
// earlier build wrote in a key's own hash are found with the bucket's;
// two writers merging into the same buckets at once lose nothing.
func TestIndexBuckets(t *testing.T) {
	c := indexTestClient(t)
	prefix := indexTestPrefix(t, c)
	ctx := t.Context()
	open := func() *redis.Index {
		ix, err := redis.NewIndex(c, prefix)
		if err != nil {
			t.Fatal(err)
		}
		return ix
	}
	ix := open()
	entry := func(value string, i int, tlp string) store.IndexEntry {
		return store.IndexEntry{Class: "domain", Value: value, Collection: "c1", ID: fmt.Sprintf("indicator--%d", i), Type: "indicator",
			DateAdded: time.UnixMicro(int64(1e15 + i)).UTC(), TLP: tlp, Producer: "identity--p", Observable: value}
	}
	lookup := func(value string) map[string]string {
		t.Helper()
		es, err := ix.IndexLookup(ctx, []store.IndexKey{{Class: "domain", Value: value}})
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]string{}
		for _, e := range es {
			if _, dup := out[e.ID]; dup {
				t.Fatalf("%s: %s found twice", value, e.ID)
			}
			out[e.ID] = e.TLP
		}
		return out
	}
	own := prefix + ":{ix:0:c1}:e:domain\x00hot.example"
	for w := range 5 {
		var es []store.IndexEntry
		for i := range 8 {
			es = append(es, entry("hot.example", w*8+i, "TLP:GREEN"))
		}
		if w == 4 {
			es = append(es, entry("hot.example", 3, "TLP:AMBER")) // written again
		}
		if err := ix.AddIndexEntries(ctx, "c1", es, "cp", time.Now()); err != nil {
			t.Fatal(err)
		}
		got := lookup("hot.example")
		if len(got) != (w+1)*8 {
			t.Fatalf("after write %d: %d entries, want %d", w, len(got), (w+1)*8)
		}
		n, err := c.Exists(ctx, own).Result()
		if err != nil || (n == 1) != (w >= 2) {
			t.Fatalf("after write %d (%d entries): own hash exists %d, %v", w, len(got), n, err)
		}
		if w == 4 && got["indicator--3"] != "TLP:AMBER" {
			t.Fatalf("an entry written again has %s, want its new value", got["indicator--3"])
		}
	}
	// A new key with more entries in one write than a field keeps: in
	// its own hash at once.
	var many []store.IndexEntry
	for i := range 20 {
		many = append(many, entry("wide.example", 500+i, "TLP:GREEN"))
	}
	if err := ix.AddIndexEntries(ctx, "c1", many, "cp", time.Now()); err != nil {
		t.Fatal(err)
	}
	if n, err := c.HLen(ctx, prefix+":{ix:0:c1}:e:domain\x00wide.example").Result(); err != nil || n != 20 || len(lookup("wide.example")) != 20 {
		t.Fatalf("a new key's 20 entries: %d in its own hash (%v), %d found", n, err, len(lookup("wide.example")))
	}
	// An earlier build's entry (JSON, in the key's own hash) and the same
	// entry written again by this one.
	old := prefix + ":{ix:0:c1}:e:domain\x00old.example"
	zero := "\x00" + string(make([]byte, 8))
	if err := c.HSet(ctx, old, "indicator--100"+zero, `{"t":"indicator","d":1,"l":"TLP:GREEN","o":"old.example"}`,
		"indicator--101"+zero, `{"t":"indicator","d":2,"l":"TLP:GREEN","o":"old.example"}`).Err(); err != nil {
		t.Fatal(err)
	}
	e101 := entry("old.example", 101, "TLP:AMBER")
	e101.Version = time.Time{}
	if err := ix.AddIndexEntries(ctx, "c1", []store.IndexEntry{entry("old.example", 102, "TLP:GREEN"), e101}, "cp", time.Now()); err != nil {
		t.Fatal(err)
	}
	if got := lookup("old.example"); len(got) != 3 || got["indicator--100"] != "TLP:GREEN" || got["indicator--101"] != "TLP:AMBER" {
		t.Fatalf("earlier build's entries with this one's: %v", got)
	}
	// Two writers, 50 keys, each writer its own entries of every key, at
	// once: every entry is found.
	var wg sync.WaitGroup
	for w := range 2 {
		wg.Go(func() {
			x := open()
			for round := range 10 {
				var es []store.IndexEntry
				for k := range 50 {
					es = append(es, entry(fmt.Sprintf("k%d.example", k), 1000*w+round, "TLP:GREEN"))
				}
				if err := x.AddIndexEntries(ctx, "c1", es, "cp", time.Now()); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	for k := range 50 {
		if got := lookup(fmt.Sprintf("k%d.example", k)); len(got) != 20 {
			t.Fatalf("k%d.example: %d entries of two writers' 20", k, len(got))
		}
	}
	// Keys: buckets, the spilled keys' hashes, the earlier build's hash
	// and the checkpoints, not one per key.
	keys, err := c.Keys(ctx, prefix+":{ix:0:c1}:*").Result()
	if err != nil || len(keys) > 256+4 {
		t.Fatalf("%d keys for 54 index keys (%v)", len(keys), err)
	}
}
