package main

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/go-json-experiment/json"
)

// limitedChild is `ctigate serve` run as a child process under
// prlimit --fsize: no file it writes may grow past the limit (EFBIG), as
// on a full disk. Its log goes to a pipe, which the limit does not cover.
type limitedChild struct {
	base   string
	cmd    *exec.Cmd
	exited chan struct{}
	log    *lockedBuffer
}

func startLimited(t *testing.T, exe, data string, fsize int64) *limitedChild {
	t.Helper()
	cfg, err := filepath.Abs(demoConfig)
	if err != nil {
		t.Fatal(err)
	}
	// The soft limit only: the test lifts it later (prlimit --pid), which
	// needs no privilege.
	cmd := exec.Command("prlimit", "--fsize="+strconv.FormatInt(fsize, 10)+":unlimited", "--",
		exe, "serve", "--config", cfg, "--data", data, "--listen", "127.0.0.1:0")
	cmd.Env = childEnv()
	g := &limitedChild{cmd: cmd, log: &lockedBuffer{}}
	cmd.Stderr = g.log
	s := startServed(t, cmd, g.log.String)
	g.base, g.exited = s.base, s.exited
	return g
}

func (g *limitedChild) running() bool {
	select {
	case <-g.exited:
		return false
	default:
		return true
	}
}

// fullIndicator is indicator i of envelope e, padded so that the file
// fills in a few dozen envelopes.
func fullIndicator(e, i int) string {
	return fmt.Sprintf(`{"type":"indicator","spec_version":"2.1","id":"indicator--f0110000-0000-4000-8000-%06d%06d",`+
		`"created":"2026-01-01T00:00:00.000Z","modified":"2026-01-01T00:00:00.000Z","name":"full %d/%d","description":%q,`+
		`"pattern":"[ipv4-addr:value = '198.51.100.%d']","pattern_type":"stix","valid_from":"2026-01-01T00:00:00Z",`+
		`"object_marking_refs":["marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da"]}`,
		e, i, e, i, strings.Repeat("padding ", 60), i%250)
}

// TestStorageFullServe: `ctigate serve` whose files cannot grow past a
// small limit (prlimit --fsize, as a full disk) answers honestly. Every
// POST is a 202 whose objects are all stored, or a TAXII 507 error that
// says the storage is full and whose objects are not stored (checked
// after a restart without the limit); the process stays up (SIGXFSZ does
// not kill it) and keeps answering; reads are served or refused with a
// TAXII 507 that says why; once the limit is lifted, POSTs succeed again;
// and the background workers log their failure once per change of state,
// not at every retry.
func TestStorageFullServe(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and fills its files")
	}
	if runtime.GOOS != "linux" {
		t.Skip("prlimit is Linux's")
	}
	if _, err := exec.LookPath("prlimit"); err != nil {
		t.Skip("prlimit not found")
	}
	dir := t.TempDir()
	exe := filepath.Join(dir, "ctigate")
	if out, err := exec.Command("go", "build", "-o", exe, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	data := filepath.Join(dir, "data")
	const fsize = 3 << 20 // the store's file stops at 2 MiB (bbolt grows it by doubling)
	gw := startLimited(t, exe, data, fsize)
	client := &http.Client{Timeout: 30 * time.Second}

	type taxiiError struct {
		Title       string `json:"title"`
		Description string `json:"description"`
		HTTPStatus  string `json:"http_status"`
	}
	checkFull := func(what string, res *http.Response, b []byte, want string) {
		t.Helper()
		var e taxiiError
		if err := json.Unmarshal(b, &e); err != nil || e.HTTPStatus != "507" || !strings.Contains(e.Description, want) {
			t.Fatalf("%s: %s %s: want a TAXII 507 error saying %q", what, res.Status, b, want)
		}
		if ct := res.Header.Get("Content-Type"); ct != "application/taxii+json;version=2.1" {
			t.Errorf("%s: Content-Type %q", what, ct)
		}
		if res.Header.Get("Retry-After") == "" {
			t.Errorf("%s: no Retry-After", what)
		}
	}

	// The first envelope takes about half the file: what the routes
	// publish of it (a copy for each of the two routes, and their
	// decisions) cannot fit beside it, so fan-out fails whatever the
	// timing. Then smaller envelopes, until one is refused.
	const first, per = 600, 50
	accepted, refused, sizes := map[int]bool{}, map[int]bool{}, map[int]int{}
	post := func(e int) {
		n := per
		if e == 0 {
			n = first
		}
		sizes[e] = n
		objs := make([]string, n)
		for i := range objs {
			objs[i] = fullIndicator(e, i)
		}
		res, b, err := request(t, client, "POST", gw.base+inboundPath+"objects/", "cert-a", []byte(`{"objects":[`+strings.Join(objs, ",")+`]}`))
		if err != nil {
			t.Fatalf("envelope %d: %v\n%s", e, err, gw.log)
		}
		switch res.StatusCode {
		case http.StatusAccepted:
			if !strings.Contains(string(b), fmt.Sprintf(`"success_count":%d`, n)) {
				t.Fatalf("envelope %d: 202 without %d successes: %.400s", e, n, b)
			}
			accepted[e] = true
		default:
			checkFull(fmt.Sprintf("envelope %d", e), res, b, "nothing of this request was stored")
			refused[e] = true
		}
	}
	e := 0
	for ; len(refused) == 0; e++ {
		if e > 500 {
			t.Fatal("no POST refused: the limit did not bite")
		}
		post(e)
	}
	if !accepted[0] {
		t.Fatalf("the first envelope (%d objects) was refused: the limit is too small for the test", first)
	}
	t.Logf("first refusal at envelope %d, %d accepted", e-1, len(accepted))
	// Full: more POSTs, reads, and time for the workers to retry.
	for range 10 {
		post(e)
		e++
	}
	for range 5 {
		res, b, err := request(t, client, "GET", gw.base+inboundPath+"manifest/?limit=10", "cert-a", nil)
		if err != nil {
			t.Fatal(err)
		}
		if res.StatusCode != http.StatusOK {
			checkFull("GET manifest", res, b, "could not be recorded in the custody ledger")
		}
	}
	deadline := time.Now().Add(15 * time.Second)
	for !strings.Contains(gw.log.String(), `msg="fanout: pass failed; retrying with backoff`) {
		if time.Now().After(deadline) {
			t.Fatalf("fan-out did not fail while the storage was full:\n%s", gw.log)
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(3 * time.Second) // ~15 fan-out polls
	if !gw.running() {
		t.Fatalf("the gateway exited:\n%s", gw.log)
	}
	if res, b, err := request(t, client, "GET", gw.base+"/healthz", "cert-a", nil); err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("healthz while full: %v %s", err, b)
	}

	// Space freed: the same process takes POSTs again, and fan-out, woken
	// by them, says once that it recovered.
	if out, err := exec.Command("prlimit", "--pid", strconv.Itoa(gw.cmd.Process.Pid), "--fsize=unlimited").CombinedOutput(); err != nil {
		t.Fatalf("lifting the limit: %v %s", err, out)
	}
	post(e)
	if !accepted[e] {
		t.Fatalf("envelope %d refused after the limit was lifted", e)
	}
	e++
	failing := func(w string) bool {
		log := gw.log.String()
		return strings.Count(log, `msg="`+w+` failed; retrying with backoff`) > strings.Count(log, `msg="`+w+` recovered"`)
	}
	deadline = time.Now().Add(40 * time.Second)
	for failing("fanout: pass") {
		if time.Now().After(deadline) {
			t.Fatalf("fan-out did not recover once the limit was lifted:\n%s", gw.log)
		}
		time.Sleep(50 * time.Millisecond)
	}

	log := gw.log.String()
	// One line for the whole outage, which took several retries.
	if m := regexp.MustCompile(`msg="fanout: pass recovered" failures=(\d+)`).FindStringSubmatch(log); m == nil || m[1] == "1" {
		t.Errorf("fan-out's recovery does not count several failures: %q", m)
	}
	for _, w := range []string{"fanout: pass", "search: indexing pass", "custody: checkpointing", "retention: sweep"} {
		failed := strings.Count(log, `msg="`+w+` failed; retrying with backoff`)
		recovered := strings.Count(log, `msg="`+w+` recovered"`)
		t.Logf("%s: %d failures logged, %d recoveries", w, failed, recovered)
		if failed != recovered && failed != recovered+1 {
			t.Errorf("%s: %d failures logged for %d recoveries: not once per change of state:\n%s", w, failed, recovered, log)
		}
	}

	// Stopped, and started again without the limit: what was accepted is
	// there, whole; nothing of what was refused is.
	_ = gw.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-gw.exited:
	case <-time.After(time.Minute):
		t.Fatalf("the gateway did not stop on SIGTERM:\n%s", gw.log)
	}
	g2 := startChild(t, exe, data, filepath.Join(dir, "serve.log"))
	seen, err := manifestIDs(t, client, g2.base, inboundPath, "cert-a")
	if err != nil {
		t.Fatal(err)
	}
	for env := range e {
		n := 0
		for i := range sizes[env] {
			n += seen[fmt.Sprintf("indicator--f0110000-0000-4000-8000-%06d%06d", env, i)]
		}
		switch {
		case accepted[env] && n != sizes[env]:
			t.Errorf("envelope %d was accepted; %d of its %d objects are stored", env, n, sizes[env])
		case refused[env] && n != 0:
			t.Errorf("envelope %d was refused; %d of its objects are stored", env, n)
		}
	}
	if t.Failed() {
		b, _ := os.ReadFile(filepath.Join(dir, "serve.log"))
		t.Logf("log under the limit:\n%s\nafter:\n%s", gw.log, b)
	}
}
