package server_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
	goredis "github.com/redis/go-redis/v9"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/ctigate/ctigate/config"
	"github.com/ctigate/ctigate/custody"
	"github.com/ctigate/ctigate/server"
	"github.com/ctigate/ctigate/stix"
	"github.com/ctigate/ctigate/store"
	"github.com/ctigate/ctigate/store/bolt"
)

// deliveryBackend is a store with its ledger and a measure of the bytes
// it holds.
type deliveryBackend struct {
	st interface {
		server.Store
		server.Ledger
	}
	bytes func() int64
}

func boltBackend(t *testing.T) deliveryBackend {
	st, err := bolt.Open(filepath.Join(t.TempDir(), "ctigate.db"), bolt.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return deliveryBackend{st: st, bytes: func() int64 {
		n, err := st.UsedBytes()
		if err != nil {
			t.Fatal(err)
		}
		return n
	}}
}

// redisBackend measures the memory of the test's own keys (MEMORY USAGE
// of each key under its prefix): used_memory is the whole server's, which
// other tests share.
func redisBackend(t *testing.T) deliveryBackend {
	st, admin, prefix := redisStore(t)
	return deliveryBackend{st: st, bytes: func() int64 {
		ctx := context.Background()
		var n int64
		iter := admin.Scan(ctx, 0, prefix+":*", 1000).Iterator()
		for iter.Next(ctx) {
			m, err := admin.MemoryUsage(ctx, iter.Val(), 0).Result()
			if err != nil && err != goredis.Nil {
				t.Fatal(err)
			}
			n += m
		}
		if err := iter.Err(); err != nil {
			t.Fatal(err)
		}
		return n
	}}
}

// deliveryServer serves b with the test configuration, pages up to
// 10,000 objects.
func deliveryServer(t *testing.T, b deliveryBackend) http.Handler {
	cfg := testConfig(t)
	cfg.Paging = config.Paging{DefaultLimit: 1000, MaxLimit: 10000}
	a := authOf(t, cfg)
	return server.New(server.Options{Config: cfg, Store: b.st, Auth: a, Ledger: b.st})
}

// fill stores n indicators in the published collection.
func fill(t *testing.T, st server.Store, n int) {
	ctx := store.WithActor(context.Background(), store.Actor{User: "cert-a", Org: "CERT-A"})
	for start := 0; start < n; start += 1000 {
		var objs []store.Object
		for i := start; i < min(n, start+1000); i++ {
			raw := []byte(indicator(i, "2026-01-02T00:00:00.000Z"))
			h, err := stix.Hash(raw)
			if err != nil {
				t.Fatal(err)
			}
			objs = append(objs, store.Object{ID: "indicator--" + uuidN(i), Type: "indicator", SpecVersion: "2.1",
				Version: time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC), Raw: raw, Hash: h, Producer: "CERT-A"})
		}
		if _, err := st.AddObjects(ctx, publishedID, objs); err != nil {
			t.Fatal(err)
		}
	}
}

func readPageOf(t *testing.T, h http.Handler, path string) int {
	req := httptest.NewRequest(http.MethodGet, path, nil)
	req.Header.Set("Accept", "application/taxii+json;version=2.1")
	req.Header.Set("Authorization", "Bearer "+testToken)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	if w.Code != http.StatusOK {
		t.Fatalf("GET %s: %d %.300s", path, w.Code, w.Body.String())
	}
	var env struct {
		Objects []jsontext.Value `json:"objects"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &env); err != nil {
		t.Fatal(err)
	}
	return len(env.Objects)
}

// TestRereadsCostBytes: 50 re-reads of a 10,000-object page grow the
// store by at most 50 kB in all (each is one delivered entry naming the
// page by reference; its manifest is stored once), on both backends. The
// first read costs a few bytes per version (the manifest).
func TestRereadsCostBytes(t *testing.T) {
	if testing.Short() {
		t.Skip("stores 10,000 objects")
	}
	for name, mk := range map[string]func(*testing.T) deliveryBackend{"bolt": boltBackend, "redis": redisBackend} {
		t.Run(name, func(t *testing.T) {
			b := mk(t)
			h := deliveryServer(t, b)
			fill(t, b.st, 10000)
			path := "/exchange/collections/" + publishedID + "/objects/?limit=10000"
			if _, err := store.IndexLedger(context.Background(), b.st, 0); err != nil {
				t.Fatal(err)
			}
			before := b.bytes()
			if n := readPageOf(t, h, path); n != 10000 {
				t.Fatalf("page of %d objects, want 10000", n)
			}
			// The index (Merkle tree, object and range indexes) is counted
			// too: it is built behind the chain, here at once.
			index := func() {
				if _, err := store.IndexLedger(context.Background(), b.st, 0); err != nil {
					t.Fatal(err)
				}
			}
			index()
			first := b.bytes()
			for range 50 {
				readPageOf(t, h, path)
			}
			index()
			after := b.bytes()
			t.Logf("%s: first delivery of 10,000 versions +%d bytes; 50 re-reads +%d bytes", name, first-before, after-first)
			if after-first > 50_000 {
				t.Errorf("50 re-reads grew the store by %d bytes, want at most 50,000", after-first)
			}
			if first-before > 8*10000 {
				t.Errorf("the first delivery of 10,000 versions grew the store by %d bytes, want at most 8 a version", first-before)
			}
			// Each read is a delivery of its own, of the same page.
			es, err := b.st.LedgerEntries(context.Background(), store.LedgerQuery{Action: custody.Delivered, Limit: 100})
			if err != nil || len(es) != 51 {
				t.Fatalf("%d delivered entries, %v; want 51", len(es), err)
			}
			for _, e := range es {
				if e.Count != 10000 || e.ItemsRoot != es[0].ItemsRoot || e.Org != "National Police" {
					t.Fatalf("delivered entry %+v", e)
				}
			}
		})
	}
}

// heldRecords is a ledger whose delivery records wait, once they have
// been asked for, until release is closed.
type heldRecords struct {
	server.Ledger
	entered chan struct{}
	release chan struct{}
}

func (l *heldRecords) RecordDelivery(ctx context.Context, e custody.Entry, manifest []byte) (custody.Entry, error) {
	l.entered <- struct{}{}
	<-l.release
	return l.Ledger.RecordDelivery(ctx, e, manifest)
}

// TestDeliveryWriteOutsideTurn: on one processor large pages are read
// and hashed one at a time (admission.go), but the durable write of a
// page's delivered entry is waited for outside that turn, so another
// page is read meanwhile and the two records can share a commit. Both
// reads reach their record before either record is written.
func TestDeliveryWriteOutsideTurn(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1)) // one turn for large pages
	b := boltBackend(t)
	fill(t, b.st, 2000)
	l := &heldRecords{Ledger: b.st, entered: make(chan struct{}, 2), release: make(chan struct{})}
	cfg := testConfig(t)
	cfg.Paging = config.Paging{DefaultLimit: 1000, MaxLimit: 1000}
	h := server.New(server.Options{Config: cfg, Store: b.st, Auth: authOf(t, cfg), Ledger: l})
	codes := make(chan int, 2)
	for _, after := range []string{"", "&added_after=2000-01-01T00:00:00.000000Z"} {
		go func() {
			req := httptest.NewRequest(http.MethodGet, "/exchange/collections/"+publishedID+"/objects/?limit=1000"+after, nil)
			req.Header.Set("Accept", "application/taxii+json;version=2.1")
			req.Header.Set("Authorization", "Bearer "+testToken)
			w := httptest.NewRecorder()
			h.ServeHTTP(w, req)
			codes <- w.Code
		}()
	}
	for i := range 2 {
		select {
		case <-l.entered:
		case <-time.After(10 * time.Second):
			close(l.release)
			t.Fatalf("%d of 2 large page reads reached their delivery record while the other's was being written", i)
		}
	}
	close(l.release)
	for range 2 {
		if code := <-codes; code != http.StatusOK {
			t.Errorf("page read: %d", code)
		}
	}
}

// TestDeliveredRootFromStoredLeaves: on both backends the versions a
// store writes carry their delivery leaf, and the delivered entry of a
// page read with them has the items_root the salter gives when each
// item's leaf is computed afresh from the version (as evidence does).
func TestDeliveredRootFromStoredLeaves(t *testing.T) {
	for name, mk := range map[string]func(*testing.T) deliveryBackend{"bolt": boltBackend, "redis": redisBackend} {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			b := mk(t)
			h := deliveryServer(t, b)
			fill(t, b.st, 300)
			if n := readPageOf(t, h, "/exchange/collections/"+publishedID+"/objects/?limit=300"); n != 300 {
				t.Fatalf("page of %d objects, want 300", n)
			}
			page, err := b.st.Objects(ctx, publishedID, store.Query{Limit: 300})
			if err != nil || len(page.Objects) != 300 {
				t.Fatalf("%d objects, %v", len(page.Objects), err)
			}
			salter, err := b.st.DeliverySalter(ctx)
			if err != nil {
				t.Fatal(err)
			}
			pl := salter.Page(publishedID)
			leaves := make([]tlog.Hash, len(page.Objects))
			for i, o := range page.Objects {
				if o.Leaf == ([32]byte{}) {
					t.Fatalf("%s: the store kept no leaf", o.ID)
				}
				if leaves[i], err = pl.Leaf(o.ID, o.Version, o.DateAdded, &o.Hash); err != nil {
					t.Fatal(err)
				}
			}
			es, err := b.st.LedgerEntries(ctx, store.LedgerQuery{Action: custody.Delivered, Limit: 10})
			if err != nil || len(es) != 1 {
				t.Fatalf("%d delivered entries, %v; want 1", len(es), err)
			}
			if want := custody.HexRoot(custody.TreeRoot(leaves)); es[0].ItemsRoot != want {
				t.Errorf("items_root %s, the versions' leaves give %s", es[0].ItemsRoot, want)
			}
		})
	}
}
