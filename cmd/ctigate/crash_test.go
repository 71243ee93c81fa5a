package main

import (
	"bufio"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-json-experiment/json"

	"github.com/ctigate/ctigate/stix"
)

// crashN is the number of indicators TestCrashDuringFanOut posts:
// CTIGATE_CRASH_N, default 100,000.
func crashN(t *testing.T) int {
	n := 100_000
	if s := os.Getenv("CTIGATE_CRASH_N"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v < 4000 {
			t.Fatalf("CTIGATE_CRASH_N=%q: want an integer ≥ 4000", s)
		}
		n = v
	}
	return n
}

// crashTLP is the marking of indicator i: CLEAR, GREEN, AMBER, RED in turn.
var crashTLP = [4]string{stix.TLP2Clear, stix.TLP2Green, stix.TLP2Amber, stix.TLP2Red}

func crashID(i int) string {
	return fmt.Sprintf("indicator--c4a5e0f1-7b2d-4e8a-9c3f-%012d", i)
}

func crashIndicator(i int) string {
	return fmt.Sprintf(`{"type":"indicator","spec_version":"2.1","id":%q,"created":"2026-01-01T00:00:00.000Z","modified":"2026-01-01T00:00:00.000Z",`+
		`"name":"crash %d","pattern":"[ipv4-addr:value = '198.51.100.%d']","pattern_type":"stix","valid_from":"2026-01-01T00:00:00Z","object_marking_refs":[%q]}`,
		crashID(i), i, i%250, crashTLP[i%4])
}

// childGateway is `ctigate serve` run as a child process.
type childGateway struct {
	base   string
	cmd    *exec.Cmd
	exited chan struct{}
	log    string
}

func startChild(t *testing.T, exe, data, logPath string) *childGateway {
	t.Helper()
	return startChildEnv(t, exe, data, logPath)
}

// startChildEnv is startChild with extra environment variables (KEY=value).
func startChildEnv(t *testing.T, exe, data, logPath string, env ...string) *childGateway {
	t.Helper()
	cfg, err := filepath.Abs(demoConfig)
	if err != nil {
		t.Fatal(err)
	}
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	cmd := exec.Command(exe, "serve", "--config", cfg, "--data", data, "--listen", "127.0.0.1:0")
	cmd.Env = append(childEnv(), env...)
	cmd.Stderr = logf
	g := &childGateway{cmd: cmd, log: logPath}
	s := startServed(t, cmd, g.logTail)
	g.base, g.exited = s.base, s.exited
	return g
}

// served is a started `ctigate serve` child process: its TAXII base URL,
// and exited, closed once it has ended (err is then what Wait returned).
type served struct {
	base   string
	exited chan struct{}
	err    error
}

// startServed starts cmd, a `ctigate serve` whose standard output it
// reads, and waits up to a minute for it to listen, failing t with
// logTail when it ends or does not listen first. The child is killed at
// cleanup if it still runs.
func startServed(t *testing.T, cmd *exec.Cmd, logTail func() string) *served {
	t.Helper()
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &served{exited: make(chan struct{})}
	urls := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if _, u, ok := strings.Cut(sc.Text(), "serving TAXII 2.1 at "); ok {
				urls <- strings.TrimSuffix(u, "/taxii2/")
			}
		}
		s.err = cmd.Wait()
		close(s.exited)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-s.exited
	})
	select {
	case s.base = <-urls:
	case <-s.exited:
		t.Fatalf("ctigate serve exited before listening: %v\n%s", s.err, logTail())
	case <-time.After(time.Minute):
		t.Fatalf("ctigate serve did not listen within a minute:\n%s", logTail())
	}
	return s
}

// childEnv is this process's environment without CTIGATE_* variables.
func childEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "CTIGATE_") {
			env = append(env, kv)
		}
	}
	return append(env, "CTIGATE_OPS_LISTEN=127.0.0.1:0")
}

// kill sends SIGKILL and waits for the process to exit.
func (g *childGateway) kill() {
	_ = g.cmd.Process.Kill()
	<-g.exited
}

func (g *childGateway) logTail() string {
	b, _ := os.ReadFile(g.log)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > 20 {
		lines = lines[len(lines)-20:]
	}
	return strings.Join(lines, "\n")
}

// manifestPage is one page of a manifest.
type manifestPage struct {
	More    bool   `json:"more"`
	Next    string `json:"next"`
	Objects []struct {
		ID        string `json:"id"`
		DateAdded string `json:"date_added"`
	} `json:"objects"`
}

// getManifest fetches one manifest page of the collection at path.
func getManifest(t *testing.T, client *http.Client, base, path, user string, q url.Values) (manifestPage, error) {
	var p manifestPage
	res, b, err := request(t, client, "GET", base+path+"manifest/?"+q.Encode(), user, nil)
	if err != nil {
		return p, err
	}
	if res.StatusCode != http.StatusOK {
		return p, fmt.Errorf("GET manifest: %s: %s", res.Status, b)
	}
	return p, json.Unmarshal(b, &p)
}

// manifestIDs walks the whole manifest of a collection, every version,
// and counts each id.
func manifestIDs(t *testing.T, client *http.Client, base, path, user string) (map[string]int, error) {
	seen := map[string]int{}
	next := ""
	for {
		q := url.Values{"limit": {"10000"}, "match[version]": {"all"}}
		if next != "" {
			q.Set("next", next)
		}
		p, err := getManifest(t, client, base, path, user, q)
		if err != nil {
			return nil, err
		}
		for _, o := range p.Objects {
			seen[o.ID]++
		}
		if !p.More || p.Next == "" {
			return seen, nil
		}
		next = p.Next
	}
}

// TestCrashDuringFanOut: ctigate serve, a child process, is killed with
// SIGKILL while fan-out publishes CTIGATE_CRASH_N (default 100,000)
// indicators; started again on the same data, it converges: each route's
// collection holds exactly what its ceiling allows, each id once.
func TestCrashDuringFanOut(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and posts 100,000 objects")
	}
	n := crashN(t)
	const perEnvelope = 1000
	start := time.Now()
	dir := t.TempDir()
	exe := filepath.Join(dir, "ctigate")
	if out, err := exec.Command("go", "build", "-o", exe, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	t.Logf("built in %v", time.Since(start).Round(time.Millisecond))
	data, logPath := filepath.Join(dir, "data"), filepath.Join(dir, "serve.log")

	var mu sync.Mutex
	gw := startChild(t, exe, data, logPath)
	current := func() string { mu.Lock(); defer mu.Unlock(); return gw.base }
	client := &http.Client{Timeout: 30 * time.Second}

	wantLaw, wantJudi := map[string]bool{}, map[string]bool{}
	for i := range n {
		if i%4 <= 2 {
			wantLaw[crashID(i)] = true
		}
		if i%4 <= 1 {
			wantJudi[crashID(i)] = true
		}
	}

	// One producer posts the envelopes in turn, retrying each through the
	// crash (a re-post is idempotent).
	var posted atomic.Int64
	postErr := make(chan error, 1)
	go func() {
		for e := 0; e*perEnvelope < n; e++ {
			objs := make([]string, 0, perEnvelope)
			for i := e * perEnvelope; i < min(n, (e+1)*perEnvelope); i++ {
				objs = append(objs, crashIndicator(i))
			}
			body := []byte(`{"objects":[` + strings.Join(objs, ",") + `]}`)
			want := fmt.Sprintf(`"success_count":%d`, len(objs))
			for attempt := 0; ; attempt++ {
				res, b, err := request(t, client, "POST", current()+inboundPath+"objects/", "cert-a", body)
				if err == nil && res.StatusCode == http.StatusAccepted && strings.Contains(string(b), want) {
					break
				}
				if attempt > 600 {
					postErr <- fmt.Errorf("envelope %d: giving up: %v %s", e, err, b)
					return
				}
				time.Sleep(50 * time.Millisecond)
			}
			posted.Add(int64(len(objs)))
		}
		postErr <- nil
	}()

	// Follow the law-enforcement collection with an added_after cursor and
	// kill the gateway once it holds a quarter, but not all, of its set.
	var (
		got        int
		addedAfter string
		killedAt   int
	)
	deadline := time.Now().Add(3 * time.Minute)
	for killedAt == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no kill point: law-enforcement holds %d of %d", got, len(wantLaw))
		}
		q := url.Values{"limit": {"10000"}}
		if addedAfter != "" {
			q.Set("added_after", addedAfter)
		}
		p, err := getManifest(t, client, current(), lawEnforcementPath, "police", q)
		if err != nil {
			t.Fatalf("following law-enforcement: %v", err)
		}
		got += len(p.Objects)
		if len(p.Objects) > 0 {
			addedAfter = p.Objects[len(p.Objects)-1].DateAdded
		}
		switch {
		case got >= len(wantLaw):
			t.Fatalf("fan-out finished (%d objects) before the kill point; lower the threshold", got)
		case got >= len(wantLaw)/4:
			gw.kill()
			killedAt = got
		default:
			time.Sleep(5 * time.Millisecond)
		}
	}
	t.Logf("SIGKILL at %v: law-enforcement held %d of %d; %d of %d posted", time.Since(start).Round(time.Millisecond), killedAt, len(wantLaw), posted.Load(), n)

	g2 := startChild(t, exe, data, logPath)
	mu.Lock()
	gw = g2
	mu.Unlock()
	if err := <-postErr; err != nil {
		t.Fatal(err)
	}
	t.Logf("all posted at %v", time.Since(start).Round(time.Millisecond))

	// Convergence: each route holds exactly its set, each id once.
	for _, c := range []struct {
		user, path string
		want       map[string]bool
	}{
		{"police", lawEnforcementPath, wantLaw},
		{"prosecutor", judiciaryPath, wantJudi},
	} {
		deadline := time.Now().Add(2 * time.Minute)
		for {
			seen, err := manifestIDs(t, client, current(), c.path, c.user)
			if err != nil {
				t.Fatalf("%s: %v", c.path, err)
			}
			for id, k := range seen {
				if !c.want[id] {
					t.Fatalf("%s holds %s, which it must not", c.path, id)
				}
				if k != 1 {
					t.Fatalf("%s holds %s %d times", c.path, id, k)
				}
			}
			if len(seen) == len(c.want) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s holds %d of %d after 2 minutes:\n%s", c.path, len(seen), len(c.want), g2.logTail())
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	t.Logf("converged at %v", time.Since(start).Round(time.Millisecond))

	// The inbound collection lost nothing and holds nothing twice.
	seen, err := manifestIDs(t, client, current(), inboundPath, "cert-a")
	if err != nil {
		t.Fatal(err)
	}
	for id, k := range seen {
		if k != 1 {
			t.Errorf("csirt-inbound holds %s %d times", id, k)
		}
	}
	if len(seen) != n {
		t.Errorf("csirt-inbound holds %d ids, want %d", len(seen), n)
	}
}
