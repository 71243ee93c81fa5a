package server_test

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/ctigate/ctigate/custody"
	"github.com/ctigate/ctigate/server"
	"github.com/ctigate/ctigate/store"
	"github.com/ctigate/ctigate/store/bolt"
	"github.com/ctigate/ctigate/store/redis"
)

// testClock is a clock that moves only when a test moves it.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// expiringStore is a backend as serve runs it: the store with its
// custody ledger.
type expiringStore interface {
	store.Store
	server.Ledger
}

// TestStatusExpires: a POST's status is kept for status_retention after
// it is complete, by the gateway's clock, and from then on GET
// …/status/{id}/ is the TAXII 404 of an unknown id and the request's
// feedback is 404 too, before and after the backend removes it (bbolt's
// sweep; Redis's TTL, set to status_retention by the POST). The custody
// ledger keeps its entry for the object the POST refused, which names
// the status. A store that cannot answer is a 503, not a missing status.
func TestStatusExpires(t *testing.T) {
	cfg := testConfig(t)
	cfg.StatusRetention = 48 * time.Hour
	backends := map[string]func(t *testing.T, clock func() time.Time) expiringStore{
		"bolt": func(t *testing.T, clock func() time.Time) expiringStore {
			st, err := bolt.Open(filepath.Join(t.TempDir(), "ctigate.db"), bolt.Options{NoSync: true, Clock: clock})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { st.Close() })
			return st
		},
		"redis": func(t *testing.T, clock func() time.Time) expiringStore {
			st, _, _ := redisStore(t, func(o *redis.Options) { o.Clock = clock })
			return st
		},
	}
	for _, name := range []string{"bolt", "redis"} {
		t.Run(name, func(t *testing.T) {
			clock := &testClock{now: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
			st := backends[name](t, clock.Now)
			ts := httptest.NewServer(server.New(server.Options{Config: cfg, Store: st, Ledger: st, Auth: authOf(t, cfg), Clock: clock.Now}))
			t.Cleanup(ts.Close)
			g := &gateway{t: t, URL: ts.URL}

			var posted status
			g.post(inbound+"objects/", "cert-a", env(indicator(1, "2026-01-01T00:00:00.000Z"), `42`)).expect(t, 202, &posted)
			if posted.SuccessCount != 1 || posted.FailureCount != 1 {
				t.Fatalf("POST: %+v", posted)
			}
			statusPath := root + "status/" + posted.ID + "/"
			feedbackPath := "/api/v1/statuses/" + posted.ID + "/decisions"
			unknown := g.get(root+"status/7d4bdc05-4a26-4c4d-9a39-5c3bd3e8f8e4/", "cert-a")
			unknown.expectError(t, 404)
			unknownFeedback := g.get("/api/v1/statuses/7d4bdc05-4a26-4c4d-9a39-5c3bd3e8f8e4/decisions", "cert-a")
			if unknownFeedback.Status != http.StatusNotFound {
				t.Fatalf("feedback of an unknown status: %d %s", unknownFeedback.Status, unknownFeedback.Body)
			}
			readable := func(what string) {
				t.Helper()
				var got status
				g.get(statusPath, "cert-a").expect(t, 200, &got)
				if got.ID != posted.ID || got.SuccessCount != 1 || got.FailureCount != 1 {
					t.Fatalf("status %s: %+v", what, got)
				}
				if res := g.get(feedbackPath, "cert-a"); res.Status != http.StatusOK {
					t.Fatalf("feedback %s: %d %s", what, res.Status, res.Body)
				}
			}
			gone := func(what string) {
				t.Helper()
				res := g.get(statusPath, "cert-a")
				res.expectError(t, 404)
				if !bytes.Equal(res.Body, unknown.Body) {
					t.Fatalf("status %s: %s; want the response to an unknown id, %s", what, res.Body, unknown.Body)
				}
				res = g.get(feedbackPath, "cert-a")
				if res.Status != http.StatusNotFound || !bytes.Equal(res.Body, unknownFeedback.Body) {
					t.Fatalf("feedback %s: %d %s; want the response to an unknown id, %d %s",
						what, res.Status, res.Body, unknownFeedback.Status, unknownFeedback.Body)
				}
			}

			readable("just after the POST")
			if r, ok := st.(*redis.Store); ok {
				ttl, err := r.Client().PTTL(t.Context(), r.Prefix()+":st:"+posted.ID).Result()
				if err != nil || ttl > cfg.StatusRetention || ttl < cfg.StatusRetention-time.Minute {
					t.Fatalf("TTL of the status key = %v, %v; want about status_retention, %s", ttl, err, cfg.StatusRetention)
				}
			}
			clock.Advance(cfg.StatusRetention - time.Millisecond)
			readable("a millisecond before status_retention has passed")
			clock.Advance(time.Millisecond)
			gone("once status_retention has passed")
			if b, ok := st.(*bolt.Store); ok {
				if n, err := b.SweepStatuses(t.Context(), 0); err != nil || n != 1 {
					t.Fatalf("SweepStatuses = %d, %v; want 1", n, err)
				}
				gone("after the sweep removed it")
			}

			es, err := st.LedgerEntries(t.Context(), store.LedgerQuery{Action: custody.Rejected})
			if err != nil {
				t.Fatal(err)
			}
			if len(es) != 1 || es[0].ObjectID != "objects[1]" || es[0].Detail != "status "+posted.ID {
				t.Fatalf("rejected entries after the status expired: %+v; want the one naming status %s", es, posted.ID)
			}

			// A store that cannot answer is not a missing status: feedback
			// says it is unavailable, as GET …/status/{id}/ does.
			if err := st.Close(); err != nil {
				t.Fatal(err)
			}
			g.get(statusPath, "cert-a").expectError(t, http.StatusServiceUnavailable)
			if res := g.get(feedbackPath, "cert-a"); res.Status != http.StatusServiceUnavailable {
				t.Fatalf("feedback with the store closed: %d %s; want 503", res.Status, res.Body)
			}
		})
	}
}
