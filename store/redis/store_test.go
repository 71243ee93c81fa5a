package redis_test

import (
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/ctigate/ctigate/store"
	"github.com/ctigate/ctigate/store/redis"
	"github.com/ctigate/ctigate/store/redis/redistest"
	"github.com/ctigate/ctigate/store/storetest"
)

// newStore returns a storetest.NewStore over clients made by newClient,
// each test on its own key prefix.
func newStore(newClient func(t *testing.T) goredis.UniversalClient) storetest.NewStore {
	return func(t *testing.T, clock func() time.Time) (store.Store, func(t *testing.T) store.Store) {
		admin := newClient(t)
		t.Cleanup(func() { admin.Close() })
		prefix := redistest.Prefix(t, admin)
		open := func(t *testing.T) store.Store {
			s, err := redis.New(newClient(t), redis.Options{Prefix: prefix, Clock: clock, CloseClient: true})
			if err != nil {
				t.Fatal(err)
			}
			return s
		}
		return open(t), open
	}
}

func TestStandalone(t *testing.T) {
	url := redistest.URL(t)
	storetest.Run(t, newStore(func(t *testing.T) goredis.UniversalClient {
		c, err := redis.NewClient(redis.Config{URL: url})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}))
}

func TestCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Redis Cluster")
	}
	addrs := redistest.StartCluster(t)
	storetest.Run(t, newStore(func(t *testing.T) goredis.UniversalClient {
		c, err := redis.NewClient(redis.Config{Addrs: addrs})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}))
}

// TestPageOneVersionEach: a page read in date_added order tells that no
// id of the collection has two versions, until one has; reads by id do
// not tell it.
func TestPageOneVersionEach(t *testing.T) {
	ss, _ := replicas(t, 1)
	s, ctx := ss[0], store.WithActor(t.Context(), store.Actor{User: "cert-a", Org: "CERT-A"})
	all := []store.VersionMatch{{Kind: store.All}}
	one := func(q store.Query) bool {
		t.Helper()
		p, err := s.Objects(ctx, "c", q)
		if err != nil {
			t.Fatal(err)
		}
		return p.OneVersionEach
	}
	if _, err := s.AddObjects(ctx, "c", []store.Object{testObj(1), testObj(2), testObj(3)}); err != nil {
		t.Fatal(err)
	}
	if !one(store.Query{Versions: all}) || !one(store.Query{Versions: all, Limit: 1}) {
		t.Fatal("a collection of one version per id: a page does not tell it")
	}
	if one(store.Query{IDs: []string{testObj(1).ID}}) {
		t.Fatal("a read by id tells one version each")
	}
	v2 := testObj(2)
	v2.Version = v2.Version.Add(time.Hour)
	if _, err := s.AddObjects(ctx, "c", []store.Object{v2}); err != nil {
		t.Fatal(err)
	}
	for _, q := range []store.Query{{Versions: all}, {Versions: all, Limit: 1}, {}} {
		if one(q) {
			t.Fatalf("an id has two versions, yet a page (%+v) tells one version each", q)
		}
	}
}
