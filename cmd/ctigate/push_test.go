package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-json-experiment/json"

	"github.com/ctigate/ctigate/internal/shared"
)

const demoPassword = "cert-a-demo"

// smallConfig writes the demo configuration with another
// max_content_length and returns its path.
func smallConfig(t *testing.T, maxContent int) string {
	t.Helper()
	b, err := os.ReadFile(demoConfig)
	if err != nil {
		t.Fatal(err)
	}
	s := strings.Replace(string(b), "max_content_length: 10485760", "max_content_length: "+strconv.Itoa(maxContent), 1)
	if s == string(b) {
		t.Fatal("demo config has no max_content_length: 10485760")
	}
	p := filepath.Join(t.TempDir(), "ctigate.yaml")
	if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// ctl runs one ctigate command in-process.
func ctl(ctx context.Context, env map[string]string, stdin io.Reader, stdout io.Writer, args ...string) (string, string, error) {
	var out, errb bytes.Buffer
	if stdout == nil {
		stdout = &out
	}
	if stdin == nil {
		stdin = strings.NewReader("")
	}
	err := run(ctx, args, func(k string) string { return env[k] }, stdin, stdout, &errb)
	return out.String(), errb.String(), err
}

var pushEnv = map[string]string{"CTIGATE_PASSWORD": demoPassword}

func noSecrets(t *testing.T, texts ...string) {
	t.Helper()
	for _, s := range texts {
		if strings.Contains(s, "-demo") || strings.Contains(s, "s3cret-token") {
			t.Errorf("output contains a credential:\n%s", s)
		}
	}
}

func readJSONLIDs(t *testing.T, data string) map[string]int {
	t.Helper()
	ids := map[string]int{}
	re := regexp.MustCompile(`"id":"([^"]+)"`)
	for _, line := range strings.Split(strings.TrimSpace(data), "\n") {
		if line == "" {
			continue
		}
		m := re.FindStringSubmatch(line)
		if m == nil {
			t.Fatalf("line without id: %.100s", line)
		}
		ids[m[1]]++
	}
	return ids
}

func TestPushPollAttackRoundTrip(t *testing.T) {
	file := shared.Path(t, "attack", "ics-attack-18.1.json")
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var bundle struct {
		Objects []struct {
			ID string `json:"id"`
		} `json:"objects"`
	}
	if err := json.Unmarshal(raw, &bundle); err != nil {
		t.Fatal(err)
	}
	want := map[string]int{}
	for _, o := range bundle.Objects {
		want[o.ID]++
	}
	cfg := smallConfig(t, 256<<10)
	gw := startServe(t, nil, "--config", cfg, "--data", t.TempDir(), "--listen", "127.0.0.1:0")
	ctx := context.Background()

	start := time.Now()
	out, errs, err := ctl(ctx, pushEnv, nil, nil, "push", "--server", gw.base, "--collection", "cert-a-inbound", "--user", "cert-a", file)
	t.Logf("push took %s:\n%s", time.Since(start), out)
	if err != nil {
		t.Fatalf("push: %v\n%s", err, errs)
	}
	noSecrets(t, out, errs)
	m := regexp.MustCompile(`sent (\d+) objects in (\d+) envelopes`).FindStringSubmatch(out)
	if m == nil || m[2] == "1" {
		t.Fatalf("expected a split into many envelopes:\n%s", out)
	}
	if !strings.Contains(out, "accepted "+m[1]+", rejected 0, failed 0, not sent 0") {
		t.Fatalf("unexpected summary:\n%s", out)
	}

	dir := t.TempDir()
	netrc := filepath.Join(dir, "netrc")
	os.WriteFile(netrc, []byte("machine 127.0.0.1\n  login cert-a\n  password "+demoPassword+"\n"), 0o600)
	state, jsonl := filepath.Join(dir, "state.json"), filepath.Join(dir, "out.jsonl")
	pollArgs := []string{"poll", "--server", gw.base, "--collection", "cert-a-inbound", "--netrc", netrc, "--state", state, "--out", jsonl, "--limit", "300"}
	_, errs, err = ctl(ctx, nil, nil, nil, pollArgs...)
	if err != nil {
		t.Fatalf("poll: %v\n%s", err, errs)
	}
	noSecrets(t, errs)
	// A second run finds nothing new.
	_, errs, err = ctl(ctx, nil, nil, nil, pollArgs...)
	if err != nil || !strings.Contains(errs, "poll: 0 objects") {
		t.Fatalf("second poll: %v\n%s", err, errs)
	}
	b, _ := os.ReadFile(jsonl)
	got := readJSONLIDs(t, string(b))
	if len(got) != len(want) || len(want) == 0 {
		t.Fatalf("polled %d distinct ids, pushed %d", len(got), len(want))
	}
	for id, n := range got {
		if n != 1 || want[id] != 1 {
			t.Errorf("%s: polled %d times, in file %d times", id, n, want[id])
		}
	}
}

func TestPushRejections(t *testing.T) {
	gw := startServe(t, nil, "--config", smallConfig(t, 64<<10), "--data", t.TempDir(), "--listen", "127.0.0.1:0")
	var lines []string
	for i := range 5 {
		lines = append(lines, indicatorJSON(i))
	}
	bad1 := `{"type":"indicator","spec_version":"2.1","id":"indicator--6ba7b810-9dad-41d1-80b4-999999999991","created":"2026-01-01T00:00:00.000Z","modified":"2026-01-01T00:00:00.000Z","pattern":"[ipv4-addr:value = '203.0.113.1']","pattern_type":"stix","valid_from":"2026-01-02T00:00:00Z","valid_until":"2026-01-01T00:00:00Z"}`
	bad2 := `{"type":"indicator","spec_version":"2.1","id":"indicator--6ba7b810-9dad-41d1-80b4-999999999992","created":"2026-01-01T00:00:00.000Z","modified":"2026-01-01T00:00:00.000Z","pattern_type":"stix","valid_from":"2026-01-01T00:00:00Z"}`
	big := fmt.Sprintf(`{"type":"note","spec_version":"2.1","id":"note--6ba7b810-9dad-41d1-80b4-999999999993","created":"2026-01-01T00:00:00.000Z","modified":"2026-01-01T00:00:00.000Z","content":%q,"object_refs":["indicator--6ba7b810-9dad-41d1-80b4-000000000001"]}`, strings.Repeat("x", 70<<10))
	lines = append(lines, bad1, bad2, big)
	stdin := strings.NewReader(strings.Join(lines, "\n") + "\n")
	out, errs, err := ctl(context.Background(), pushEnv, stdin, nil, "push", "--server", gw.base, "--collection", "cert-a-inbound", "--user", "cert-a", "-")
	if err == nil {
		t.Fatalf("push with invalid objects succeeded:\n%s", out)
	}
	noSecrets(t, out, errs, err.Error())
	for _, want := range []string{
		"accepted 5, rejected 3",
		"rejected indicator--6ba7b810-9dad-41d1-80b4-999999999991: ",
		"valid_until",
		"rejected indicator--6ba7b810-9dad-41d1-80b4-999999999992: ",
		"rejected note--6ba7b810-9dad-41d1-80b4-999999999993: object is",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("summary lacks %q:\n%s", want, out)
		}
	}
}

func TestPushRetriesOn503(t *testing.T) {
	gw := startServe(t, nil, "--config", demoConfig, "--data", t.TempDir(), "--listen", "127.0.0.1:0")
	target, _ := url.Parse(gw.base)
	proxy := httputil.NewSingleHostReverseProxy(target)
	var posts atomic.Int32
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && posts.Add(1) <= 2 {
			w.Header().Set("Retry-After", "0")
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	defer front.Close()
	stdin := strings.NewReader(indicatorJSON(1) + "\n" + indicatorJSON(2) + "\n")
	env := map[string]string{"CTIGATE_TOKEN": "s3cret-token", "CTIGATE_PASSWORD": demoPassword}
	out, errs, err := ctl(context.Background(), env, stdin, nil, "push", "--server", front.URL, "--collection", "cert-a-inbound", "--user", "cert-a", "-")
	if err != nil {
		t.Fatalf("push: %v\n%s%s", err, out, errs)
	}
	noSecrets(t, out, errs)
	if !strings.Contains(out, "accepted 2, rejected 0") || !strings.Contains(out, "retried requests 2") || posts.Load() != 3 {
		t.Fatalf("posts %d, summary:\n%s", posts.Load(), out)
	}
}

func TestPushHelpAndErrorsHideCredentials(t *testing.T) {
	env := map[string]string{"CTIGATE_TOKEN": "s3cret-token", "CTIGATE_PASSWORD": demoPassword}
	for _, args := range [][]string{
		{"push", "-h"},
		{"poll", "-h"},
		{"push", "--server", "http://127.0.0.1:1", "--collection", "x", "--attempts", "1", "-"},
		{"poll", "--server", "http://127.0.0.1:1", "--collection", "x", "--attempts", "1"},
		{"poll", "--server", "http://cert-a:cert-a-demo@127.0.0.1:1", "--collection", "x"},
	} {
		out, errs, err := ctl(context.Background(), env, strings.NewReader(indicatorJSON(1)), nil, args...)
		msg := ""
		if err != nil {
			msg = err.Error()
		}
		noSecrets(t, out, errs, msg)
	}
}

func TestParseNetrc(t *testing.T) {
	text := "# comment\nmachine other login x password y\nmachine h.example\n login u\n password p\ndefault login d password dp\n"
	if l, p, _ := parseNetrc(text, "h.example"); l != "u" || p != "p" {
		t.Errorf("host entry: %q %q", l, p)
	}
	if l, p, _ := parseNetrc(text, "unknown"); l != "d" || p != "dp" {
		t.Errorf("default entry: %q %q", l, p)
	}
}

// TestPushManyRejections: when an envelope's status lists only the
// first failures, push still counts and names every refused object and
// says where the full record is.
func TestPushManyRejections(t *testing.T) {
	gw := startServe(t, nil, "--config", smallConfig(t, 1<<20), "--data", t.TempDir(), "--listen", "127.0.0.1:0")
	var lines []string
	for i := range 1500 {
		// An indicator without a pattern: invalid, with an id.
		lines = append(lines, fmt.Sprintf(`{"type":"indicator","spec_version":"2.1","id":"indicator--6ba7b810-9dad-41d1-80b4-%012d","created":"2026-01-01T00:00:00.000Z","modified":"2026-01-01T00:00:00.000Z","pattern_type":"stix","valid_from":"2026-01-01T00:00:00Z"}`, i))
	}
	stdin := strings.NewReader(strings.Join(lines, "\n") + "\n")
	out, _, err := ctl(context.Background(), pushEnv, stdin, nil, "push", "--server", gw.base, "--collection", "cert-a-inbound", "--user", "cert-a", "-")
	if err == nil || !strings.Contains(err.Error(), "1500 rejected") {
		t.Fatalf("push: %v\n%.500s", err, out)
	}
	if !strings.Contains(out, "accepted 0, rejected 1500") || !strings.Contains(out, fmt.Sprintf("rejected indicator--6ba7b810-9dad-41d1-80b4-%012d: refused; the status", 1499)) ||
		!strings.Contains(out, "the custody ledger records every refusal of the envelope") {
		t.Fatalf("push output:\n%.2000s", out)
	}
}
