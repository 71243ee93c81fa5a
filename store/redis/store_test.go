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
