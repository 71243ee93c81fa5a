package main

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/go-json-experiment/json"

	"github.com/ctigate/ctigate/store/redis/redistest"
)

var (
	soakDuration = flag.Duration("soak.duration", 0, "how long TestSoak loads the gateway (0 skips it; make soak: 10m)")
	soakStore    = flag.String("soak.store", "bolt", "TestSoak's store: bolt or redis")
	soakRate     = flag.Int("soak.rate", 250, "indicators per second each TestSoak producer offers (0: as fast as the gateway takes them)")
)

const certBInboundPath = "/exchange/collections/5b6b0f0e-3c2a-4c38-9f0e-7a1d2c3b4e5f/"

// soakID is producer p's n-th indicator; its TLP is soakTLP(n).
func soakID(p, n int) string { return fmt.Sprintf("indicator--50a50a50-%04x-4e8a-9c3f-%012d", p, n) }

func soakIndicator(p, n int) string {
	return fmt.Sprintf(`{"type":"indicator","spec_version":"2.1","id":%q,"created":"2026-01-01T00:00:00.000Z","modified":"2026-01-01T00:00:00.000Z",`+
		`"name":"soak %d","pattern":"[ipv4-addr:value = '198.51.100.%d']","pattern_type":"stix","valid_from":"2026-01-01T00:00:00Z","object_marking_refs":[%q]}`,
		soakID(p, n), n, n%250, crashTLP[n%4])
}

// TestSoak (make soak) runs the gateway as a child process for
// -soak.duration under mixed load: two producers (CERT-A, CERT-B) posting
// indicators of every TLP, two consumers polling their routes, a
// wrong-password flood and junk envelopes, while the gateway is stopped
// (SIGTERM) or killed (SIGKILL) and started again, and, on Redis (started
// with --appendonly yes --appendfsync always), Redis is killed and
// started again. At the end: every acknowledged object is stored, no
// route holds what its ceiling forbids, the ledger verifies, and the
// gateway's peak RSS is reported.
func TestSoak(t *testing.T) {
	if *soakDuration == 0 {
		t.Skip("set -soak.duration (make soak runs 10m on bbolt and on Redis)")
	}
	dir := t.TempDir()
	exe := filepath.Join(dir, "ctigate")
	if out, err := exec.Command("go", "build", "-o", exe, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	data, logPath := filepath.Join(dir, "data"), filepath.Join(dir, "serve.log")
	var env []string
	var rs *redistest.Server
	switch *soakStore {
	case "bolt":
	case "redis":
		rs = redistest.StartServer(t, "--appendonly", "yes", "--appendfsync", "always")
		env = []string{"CTIGATE_STORE=redis", "CTIGATE_REDIS_URL=" + rs.URL()}
	default:
		t.Fatalf("-soak.store %q: want bolt or redis", *soakStore)
	}
	var (
		gmu sync.Mutex
		g   = startChildEnv(t, exe, data, logPath, env...)
	)
	current := func() string { gmu.Lock(); defer gmu.Unlock(); return g.base }
	client := &http.Client{Timeout: 30 * time.Second}
	ctx, cancel := context.WithTimeout(context.Background(), *soakDuration)
	defer cancel()

	var (
		wg       sync.WaitGroup
		amu      sync.Mutex
		acked    = map[string]bool{} // ids a 202 reported stored
		posts    atomic.Int64
		refused  atomic.Int64 // POSTs not acknowledged (gateway down, 5xx)
		reads    atomic.Int64
		floods   atomic.Int64
		restarts atomic.Int64
		peakRSS  atomic.Int64 // KiB
		peakAnon atomic.Int64 // KiB: the heap and stacks, without mapped files
	)
	// Producers.
	for p, path := range []string{inboundPath, certBInboundPath} {
		user := []string{"cert-a", "cert-b"}[p]
		wg.Go(func() {
			next := time.Now()
			for n := 0; ctx.Err() == nil; n += 50 {
				if *soakRate > 0 {
					// Paced: a steady offer, not a backlog to catch up.
					next = next.Add(50 * time.Second / time.Duration(*soakRate))
					if floor := time.Now().Add(-time.Second); next.Before(floor) {
						next = floor
					}
					time.Sleep(time.Until(next))
				}
				objs := make([]string, 50)
				for i := range objs {
					objs[i] = soakIndicator(p, n+i)
				}
				posts.Add(1)
				res, b, err := request(t, client, "POST", current()+path+"objects/", user, []byte(`{"objects":[`+strings.Join(objs, ",")+`]}`))
				if err != nil || res.StatusCode != http.StatusAccepted {
					refused.Add(1)
					n -= 50 // send them again
					time.Sleep(200 * time.Millisecond)
					continue
				}
				var st struct {
					Successes []struct {
						ID string `json:"id"`
					} `json:"successes"`
				}
				if err := json.Unmarshal(b, &st); err != nil {
					t.Errorf("producer %d: status %v", p, err)
					return
				}
				amu.Lock()
				for _, s := range st.Successes {
					acked[s.ID] = true
				}
				amu.Unlock()
			}
		})
	}
	// Consumers.
	for _, c := range []struct{ user, path string }{{"police", lawEnforcementPath}, {"prosecutor", judiciaryPath}} {
		wg.Go(func() {
			for ctx.Err() == nil {
				if _, err := getManifest(t, client, current(), c.path, c.user, nil); err == nil {
					reads.Add(1)
				}
				time.Sleep(50 * time.Millisecond)
			}
		})
	}
	// Floods: wrong passwords for a real user, from another address, and
	// junk envelopes.
	flood := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DialContext: (&net.Dialer{
		LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)},
	}).DialContext}}
	wg.Go(func() {
		junk := []byte(`{"objects":[` + strings.Repeat("{},", 999) + `{}]}`)
		for i := 0; ctx.Err() == nil; i++ {
			req, _ := http.NewRequest("GET", current()+"/taxii2/", nil)
			req.SetBasicAuth("cert-a", "wrong-"+strconv.Itoa(i))
			if res, err := flood.Do(req); err == nil {
				res.Body.Close()
			}
			if i%20 == 0 {
				_, _, _ = request(t, flood, "POST", current()+inboundPath+"objects/", "cert-a", junk)
			}
			floods.Add(1)
			time.Sleep(20 * time.Millisecond)
		}
	})
	// RSS of the gateway.
	wg.Go(func() {
		for ctx.Err() == nil {
			gmu.Lock()
			pid := g.cmd.Process.Pid
			gmu.Unlock()
			rss, anon := vmRSS(pid)
			if rss > peakRSS.Load() {
				peakRSS.Store(rss)
			}
			if anon > peakAnon.Load() {
				peakAnon.Store(anon)
			}
			time.Sleep(250 * time.Millisecond)
		}
	})
	// Chaos: stop, kill, and (Redis) kill Redis, every 20–40 s.
	wg.Go(func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Duration(20+rand.IntN(20)) * time.Second):
			}
			gmu.Lock()
			switch k := rand.IntN(3); {
			case k == 0:
				_ = g.cmd.Process.Signal(syscall.SIGTERM)
				<-g.exited
			case k == 1 || rs == nil:
				g.kill()
			default:
				rs.Stop() // SIGKILL; the gateway sees Redis vanish
				time.Sleep(time.Second)
				rs.Start()
				g.kill()
			}
			g = startChildEnv(t, exe, data, logPath, env...)
			gmu.Unlock()
			restarts.Add(1)
		}
	})
	wg.Wait()

	// Let fan-out finish what was acknowledged, then check.
	amu.Lock()
	defer amu.Unlock()
	var mineA, mineB []string
	for id := range acked {
		if strings.Contains(id, "-0000-4e8a-") {
			mineA = append(mineA, id)
		} else {
			mineB = append(mineB, id)
		}
	}
	inA, err := manifestIDs(t, client, current(), inboundPath, "cert-a")
	if err != nil {
		t.Fatal(err)
	}
	inB, err := manifestIDs(t, client, current(), certBInboundPath, "cert-b")
	if err != nil {
		t.Fatal(err)
	}
	lost := 0
	for _, id := range mineA {
		if inA[id] == 0 {
			lost++
		}
	}
	for _, id := range mineB {
		if inB[id] == 0 {
			lost++
		}
	}
	if lost > 0 {
		t.Errorf("%d acknowledged objects are not stored", lost)
	}
	// No route holds what its ceiling forbids (law-enforcement AMBER,
	// judiciary GREEN): an id's TLP is its number mod 4 (CLEAR, GREEN,
	// AMBER, RED).
	waitFor(t, "fan-out to settle", 3*time.Minute, func() bool {
		a, err1 := manifestIDs(t, client, current(), lawEnforcementPath, "police")
		time.Sleep(3 * time.Second)
		b, err2 := manifestIDs(t, client, current(), lawEnforcementPath, "police")
		return err1 == nil && err2 == nil && len(a) == len(b) && len(b) > 0
	})
	leaks := 0
	for _, c := range []struct {
		user, path string
		max        int
	}{{"police", lawEnforcementPath, 2}, {"prosecutor", judiciaryPath, 1}} {
		held, err := manifestIDs(t, client, current(), c.path, c.user)
		if err != nil {
			t.Fatal(err)
		}
		for id := range held {
			if !strings.HasPrefix(id, "indicator--50a50a50-") {
				continue
			}
			n, _ := strconv.Atoi(id[len(id)-12:])
			if n%4 > c.max {
				leaks++
				t.Errorf("%s holds %s (TLP index %d, ceiling %d)", c.path, id, n%4, c.max)
			}
		}
	}
	// The ledger verifies, after a clean stop.
	gmu.Lock()
	_ = g.cmd.Process.Signal(syscall.SIGTERM)
	<-g.exited
	gmu.Unlock()
	args := []string{"audit", "verify", "--config", demoConfig, "--data", data}
	vcmd := exec.Command(exe, args...)
	vcmd.Env = append(childEnv(), env...)
	began := time.Now()
	out, err := vcmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "OK:") {
		t.Errorf("ledger: %v\n%s", err, out)
	}
	verifyTook := time.Since(began)
	// Bounded: the heap does not grow with what was stored (the data
	// file's mapping, which the kernel reclaims, is not counted).
	if anon := peakAnon.Load(); anon > 400<<10 {
		t.Errorf("gateway peak anonymous RSS %.1f MiB, bound 400 MiB", float64(anon)/1024)
	}
	t.Logf("%s, %v: %d POSTs (%d not acknowledged), %d objects acknowledged, %d lost, %d leaks; %d reads; %d flood requests; %d restarts; gateway peak RSS %.1f MiB (anonymous %.1f MiB; the rest is mapped files: the binary, and the data file on bbolt)",
		*soakStore, *soakDuration, posts.Load(), refused.Load(), len(acked), lost, leaks, reads.Load(), floods.Load(), restarts.Load(), float64(peakRSS.Load())/1024, float64(peakAnon.Load())/1024)
	t.Logf("ledger (audit verify --data, %v): %s", verifyTook.Round(time.Second), strings.TrimSpace(string(out)))
}

// vmRSS returns the resident set size of process pid and its anonymous
// part, in KiB (0 when unknown).
func vmRSS(pid int) (rss, anon int64) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0
	}
	kib := func(v string) int64 {
		n, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
		return n
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			rss = kib(v)
		} else if v, ok := strings.CutPrefix(line, "RssAnon:"); ok {
			anon = kib(v)
		}
	}
	return rss, anon
}
