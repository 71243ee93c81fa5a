package main

import (
	"fmt"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-json-experiment/json"
	goredis "github.com/redis/go-redis/v9"

	"github.com/ctigate/ctigate/store/redis/redistest"
)

func faultID(envelope, i int) string {
	return fmt.Sprintf("indicator--fa017e57-0000-4000-8000-%06d%06d", envelope, i)
}

func faultEnvelope(envelope, per int) []byte {
	objs := make([]string, per)
	for i := range objs {
		objs[i] = fmt.Sprintf(`{"type":"indicator","spec_version":"2.1","id":%q,"created":"2026-01-01T00:00:00.000Z","modified":"2026-01-01T00:00:00.000Z",`+
			`"pattern":"[ipv4-addr:value = '198.51.100.%d']","pattern_type":"stix","valid_from":"2026-01-01T00:00:00Z"}`, faultID(envelope, i), i%250)
	}
	return []byte(`{"objects":[` + strings.Join(objs, ",") + `]}`)
}

// waitFor polls cond every 20 ms until it holds, failing after limit.
func waitFor(t *testing.T, what string, limit time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, limit)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func readyz(client *http.Client, base string) int {
	res, err := client.Get(base + "/readyz")
	if err != nil {
		return 0
	}
	res.Body.Close()
	return res.StatusCode
}

// TestRedisRestartMidIngest: Redis (persisting every write) is killed and
// started again while a producer posts. Every POST either succeeds whole
// (202, all objects stored) or fails with a TAXII 503 error; a failed
// envelope is stored whole or not at all, never in part. /readyz reports
// 503 while Redis is down, and the gateway reconnects on its own.
func TestRedisRestartMidIngest(t *testing.T) {
	srv := redistest.StartServer(t, "--appendonly", "yes", "--appendfsync", "always")
	gw := startServe(t, redisEnv(srv.URL(), nil, "faults"), "--config", demoConfig, "--data", t.TempDir(), "--listen", "127.0.0.1:0")
	client := &http.Client{Timeout: 20 * time.Second}
	if code := readyz(client, gw.base); code != http.StatusOK {
		t.Fatalf("readyz before the fault = %d, want 200", code)
	}

	const per = 200
	var (
		mu       sync.Mutex
		outcome  = map[int]string{} // envelope -> "ok", "503" or another failure
		ok, n503 atomic.Int64
		stop     atomic.Bool
		done     = make(chan struct{})
	)
	go func() {
		defer close(done)
		for e := 0; !stop.Load(); e++ {
			res, b, err := request(t, client, "POST", gw.base+inboundPath+"objects/", "cert-a", faultEnvelope(e, per))
			var got string
			switch {
			case err != nil:
				got = "error: " + err.Error()
			case res.StatusCode == http.StatusAccepted && strings.Contains(string(b), fmt.Sprintf(`"success_count":%d`, per)):
				got = "ok"
				ok.Add(1)
			case res.StatusCode == http.StatusServiceUnavailable:
				var te struct {
					Title      string `json:"title"`
					HTTPStatus string `json:"http_status"`
				}
				if json.Unmarshal(b, &te) != nil || te.Title == "" || te.HTTPStatus != "503" {
					got = "503 without a TAXII error: " + string(b)
				} else {
					got = "503"
					n503.Add(1)
				}
			default:
				got = fmt.Sprintf("%d: %s", res.StatusCode, b)
			}
			mu.Lock()
			outcome[e] = got
			mu.Unlock()
		}
	}()
	t.Cleanup(func() { stop.Store(true); <-done })

	waitFor(t, "three envelopes stored", time.Minute, func() bool { return ok.Load() >= 3 })
	srv.Stop()
	waitFor(t, "/readyz 503 while Redis is down", 30*time.Second, func() bool { return readyz(client, gw.base) == http.StatusServiceUnavailable })
	waitFor(t, "a POST failing with 503 while Redis is down", 30*time.Second, func() bool { return n503.Load() > 0 })
	srv.Start()
	waitFor(t, "/readyz 200 after Redis is back", 30*time.Second, func() bool { return readyz(client, gw.base) == http.StatusOK })
	before := ok.Load()
	waitFor(t, "three envelopes stored after the restart", time.Minute, func() bool { return ok.Load() >= before+3 })
	stop.Store(true)
	<-done

	// What is stored: per envelope, all or nothing.
	seen, err := manifestIDs(t, client, gw.base, inboundPath, "cert-a")
	if err != nil {
		t.Fatal(err)
	}
	count := map[int]int{}
	for id := range seen {
		var e, i int
		if _, err := fmt.Sscanf(id[len(id)-12:], "%06d%06d", &e, &i); err != nil {
			t.Fatalf("unexpected id %s", id)
		}
		count[e]++
	}
	mu.Lock()
	defer mu.Unlock()
	var failed, wholeAnyway int
	for e, got := range outcome {
		switch {
		case got == "ok":
			if count[e] != per {
				t.Errorf("envelope %d: POST succeeded but %d of %d objects are stored", e, count[e], per)
			}
		case got == "503" || strings.HasPrefix(got, "error: "):
			failed++
			if count[e] != 0 && count[e] != per {
				t.Errorf("envelope %d: POST failed (%s) and %d of %d objects are stored: half a write", e, got, count[e], per)
			}
			if count[e] == per {
				wholeAnyway++
			}
		default:
			t.Errorf("envelope %d: %s; want 202 or a TAXII 503 error", e, got)
		}
	}
	t.Logf("%d envelopes: %d stored, %d failed during the outage (%d of them stored whole all the same)", len(outcome), ok.Load(), failed, wholeAnyway)
}

// redisReplicas builds the binary into a temporary directory dir and
// returns, with it, the environment of gateway replicas sharing the test
// Redis under a key prefix of their own.
func redisReplicas(t *testing.T) (dir, exe string, env []string) {
	t.Helper()
	url := redistest.URL(t)
	opts, _ := goredis.ParseURL(url)
	admin := goredis.NewClient(opts)
	t.Cleanup(func() { admin.Close() })
	prefix := redistest.Prefix(t, admin)
	dir = t.TempDir()
	exe = filepath.Join(dir, "ctigate")
	if out, err := exec.Command("go", "build", "-o", exe, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return dir, exe, []string{"CTIGATE_STORE=redis", "CTIGATE_REDIS_URL=" + url, "CTIGATE_REDIS_PREFIX=" + prefix}
}

// TestRedisReplicaKilledMidFanOut: two gateway processes share Redis; one
// is killed with SIGKILL while fan-out is under way. The other finishes
// the work: each route's collection holds exactly what its ceiling allows,
// and every (route, object version) has exactly one decision.
func TestRedisReplicaKilledMidFanOut(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	dir, exe, env := redisReplicas(t)
	a := startChildEnv(t, exe, filepath.Join(dir, "a"), filepath.Join(dir, "a.log"), env...)
	b := startChildEnv(t, exe, filepath.Join(dir, "b"), filepath.Join(dir, "b.log"), env...)
	client := &http.Client{Timeout: 30 * time.Second}

	const n, perEnvelope = 20_000, 1000
	wantLaw, wantJudi := map[string]bool{}, map[string]bool{}
	for i := range n {
		if i%4 <= 2 {
			wantLaw[crashID(i)] = true
		}
		if i%4 <= 1 {
			wantJudi[crashID(i)] = true
		}
	}
	post := func(base string, e int) {
		t.Helper()
		objs := make([]string, 0, perEnvelope)
		for i := e * perEnvelope; i < (e+1)*perEnvelope; i++ {
			objs = append(objs, crashIndicator(i))
		}
		res, body, err := request(t, client, "POST", base+inboundPath+"objects/", "cert-a", []byte(`{"objects":[`+strings.Join(objs, ",")+`]}`))
		if err != nil || res.StatusCode != http.StatusAccepted || !strings.Contains(string(body), fmt.Sprintf(`"success_count":%d`, perEnvelope)) {
			t.Fatalf("POST envelope %d: %v %v %.300s", e, res, err, body)
		}
	}
	// Half the envelopes to a; kill a once its fan-out has published
	// something; the rest to b.
	e := 0
	for ; e < n/perEnvelope/2; e++ {
		post(a.base, e)
	}
	waitFor(t, "fan-out under way", time.Minute, func() bool {
		p, err := getManifest(t, client, a.base, lawEnforcementPath, "police", nil)
		return err == nil && len(p.Objects) > 0
	})
	a.kill()
	for ; e < n/perEnvelope; e++ {
		post(b.base, e)
	}
	for _, c := range []struct {
		user, path string
		want       map[string]bool
	}{
		{"police", lawEnforcementPath, wantLaw},
		{"prosecutor", judiciaryPath, wantJudi},
	} {
		var seen map[string]int
		waitFor(t, c.path+" complete on the surviving replica", 3*time.Minute, func() bool {
			var err error
			seen, err = manifestIDs(t, client, b.base, c.path, c.user)
			if err != nil {
				t.Fatalf("%s: %v", c.path, err)
			}
			return len(seen) >= len(c.want)
		})
		for id, k := range seen {
			if !c.want[id] || k != 1 {
				t.Fatalf("%s holds %s %d times; want it once, and only what its ceiling allows", c.path, id, k)
			}
		}
	}
	// Stop b, then read the decisions on a fresh replica.
	b.kill()
	c := startChildEnv(t, exe, filepath.Join(dir, "c"), filepath.Join(dir, "c.log"), env...)
	got := allDecisions(t, client, c.base)
	if len(got) != 2*n {
		t.Fatalf("%d distinct (route, object version) decisions, want %d", len(got), 2*n)
	}
	for k, m := range got {
		if m != 1 {
			t.Fatalf("decision %s recorded %d times, want once", k, m)
		}
	}
}
