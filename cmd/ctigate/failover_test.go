package main

import (
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestRedisFailover: two gateway processes share Redis. The replica
// holding the routes' leases is killed with SIGKILL, then (a third
// started) the next holder is stopped with SIGTERM; each time an object
// posted to the survivor right after must be published by it. The
// figures it logs (how long after the kill or stop the route published)
// are the fan-out failover times of docs/redis.md: a killed holder's
// leases lapse after fanout.DefaultLeaseTTL, a stopped one gives them up.
func TestRedisFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	dir, exe, env := redisReplicas(t)
	client := &http.Client{Timeout: 30 * time.Second}
	post := func(base string, i int) {
		t.Helper()
		res, body, err := request(t, client, "POST", base+inboundPath+"objects/", "cert-a", []byte(`{"objects":[`+crashIndicator(i)+`]}`))
		if err != nil || res.StatusCode != http.StatusAccepted || !strings.Contains(string(body), `"success_count":1`) {
			t.Fatalf("POST %d: %v %v %.300s", i, res, err, body)
		}
	}
	// published waits for object i in the law-enforcement route, read
	// from base, and returns when it was first seen.
	published := func(base string, i int) time.Time {
		t.Helper()
		var at time.Time
		waitFor(t, fmt.Sprintf("object %d published", i), 30*time.Second, func() bool {
			ids, err := manifestIDs(t, client, base, lawEnforcementPath, "police")
			at = time.Now()
			return err == nil && ids[crashID(i)] > 0
		})
		return at
	}
	a := startChildEnv(t, exe, filepath.Join(dir, "a"), filepath.Join(dir, "a.log"), env...)
	post(a.base, 0) // TLP index 0: CLEAR, published by law-enforcement
	published(a.base, 0)
	b := startChildEnv(t, exe, filepath.Join(dir, "b"), filepath.Join(dir, "b.log"), env...)
	post(b.base, 4)
	published(b.base, 4) // by a, the holder, and seen through b

	killed := time.Now()
	a.kill()
	post(b.base, 8)
	afterKill := published(b.base, 8).Sub(killed)

	c := startChildEnv(t, exe, filepath.Join(dir, "c"), filepath.Join(dir, "c.log"), env...)
	post(c.base, 12)
	published(c.base, 12)
	stopped := time.Now()
	_ = b.cmd.Process.Signal(syscall.SIGTERM)
	<-b.exited
	stopTook := time.Since(stopped)
	post(c.base, 16)
	afterStop := published(c.base, 16).Sub(stopped)
	t.Logf("publication resumed on another replica %v after SIGKILL of the lease holder, %v after SIGTERM (the stop itself took %v)",
		afterKill.Round(time.Millisecond), afterStop.Round(time.Millisecond), stopTook.Round(time.Millisecond))
}
