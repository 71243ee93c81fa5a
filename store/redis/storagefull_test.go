package redis_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ctigate/ctigate"
	"github.com/ctigate/ctigate/stix"
	"github.com/ctigate/ctigate/store"
	"github.com/ctigate/ctigate/store/redis"
	"github.com/ctigate/ctigate/store/redis/redistest"
)

// TestStorageFullOOM: a Redis at its maxmemory (noeviction) refuses the
// gateway's writes with "OOM command not allowed"; the store reports them
// as Full, and a refused AddObjects stored none of its objects, while
// every batch it accepted before is readable whole. (A private
// redis-server: maxmemory is the whole server's.)
func TestStorageFullOOM(t *testing.T) {
	srv := redistest.StartServer(t, "--maxmemory-policy", "noeviction")
	c, err := redis.NewClient(redis.Config{URL: srv.URL()})
	if err != nil {
		t.Fatal(err)
	}
	st, err := redis.New(c, redis.Options{Prefix: "full", CloseClient: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := store.WithActor(context.Background(), store.Actor{User: "cert-a", Org: "CERT-A"})
	used := func() int64 {
		info, err := c.Info(ctx, "memory").Result()
		if err != nil {
			t.Fatal(err)
		}
		for line := range strings.SplitSeq(info, "\r\n") {
			if v, ok := strings.CutPrefix(line, "used_memory:"); ok {
				n, err := strconv.ParseInt(v, 10, 64)
				if err != nil {
					t.Fatal(err)
				}
				return n
			}
		}
		t.Fatalf("no used_memory in %q", info)
		return 0
	}
	if err := c.ConfigSet(ctx, "maxmemory", strconv.FormatInt(used()+4<<20, 10)).Err(); err != nil {
		t.Fatal(err)
	}

	const coll, per = "c", 50
	batch := func(b int) []store.Object {
		objs := make([]store.Object, per)
		for i := range objs {
			id := fmt.Sprintf("indicator--00000000-0000-4000-8000-%012d", b*per+i)
			raw := fmt.Appendf(nil, `{"type":"indicator","spec_version":"2.1","id":%q,"created":"2026-01-01T00:00:00.000Z",`+
				`"modified":"2026-01-01T00:00:00.000Z","pattern":"[file:name = '%s']","pattern_type":"stix","valid_from":"2026-01-01T00:00:00Z"}`,
				id, strings.Repeat("x", 2000))
			h, err := stix.Hash(raw)
			if err != nil {
				t.Fatal(err)
			}
			objs[i] = store.Object{ID: id, Type: "indicator", SpecVersion: "2.1", Version: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), Raw: raw, Hash: h}
		}
		return objs
	}
	ids := func(objs []store.Object) []string {
		var out []string
		for _, o := range objs {
			out = append(out, o.ID)
		}
		return out
	}
	stored := 0
	var refused []store.Object
	for b := 0; refused == nil; b++ {
		if b > 1000 {
			t.Fatal("Redis never refused a write")
		}
		objs := batch(b)
		_, err := st.AddObjects(ctx, coll, objs)
		switch {
		case err == nil:
			stored += len(objs)
		case ctigate.KindOf(err) == ctigate.Full:
			refused = objs
		default:
			t.Fatalf("batch %d: %v (kind %v), want a Full error", b, err, ctigate.KindOf(err))
		}
	}
	if stored == 0 {
		t.Fatal("the first batch was refused: maxmemory too low to test anything")
	}
	p, err := st.Objects(ctx, coll, store.Query{IDs: ids(refused), Versions: []store.VersionMatch{{Kind: store.All}}, Limit: 1000})
	if err != nil {
		t.Fatalf("reading at maxmemory: %v", err)
	}
	if len(p.Objects) != 0 {
		t.Fatalf("%d objects of the refused batch are stored", len(p.Objects))
	}
	p, err = st.Objects(ctx, coll, store.Query{Versions: []store.VersionMatch{{Kind: store.All}}, WithoutRaw: true, Limit: 10000})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Objects) != stored {
		t.Fatalf("%d objects readable, want the %d of the accepted batches", len(p.Objects), stored)
	}
	// Far over maxmemory, every write is refused: a status too.
	if err := c.ConfigSet(ctx, "maxmemory", "1").Err(); err != nil {
		t.Fatal(err)
	}
	if err := st.PutStatus(ctx, store.Status{ID: "5f0e0a8e-0000-4000-8000-000000000001", APIRoot: "r", Collection: coll, Status: "complete",
		RequestTimestamp: time.Now().UTC()}); ctigate.KindOf(err) != ctigate.Full {
		t.Errorf("PutStatus at maxmemory: %v (kind %v), want Full", err, ctigate.KindOf(err))
	}

	// Space freed: the refused batch goes in.
	if err := c.ConfigSet(ctx, "maxmemory", "0").Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := st.AddObjects(ctx, coll, refused); err != nil {
		t.Fatalf("after maxmemory was lifted: %v", err)
	}
}
