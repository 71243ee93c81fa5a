package load

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/go-json-experiment/json"

	"github.com/ctigate/ctigate/auth"
	"github.com/ctigate/ctigate/server"
	"github.com/ctigate/ctigate/stix"
	"github.com/ctigate/ctigate/store/bolt"
)

// small is the end-to-end workload of the tests.
func small() Config {
	cfg := DefaultConfig()
	cfg.Objects, cfg.Envelope, cfg.Producers, cfg.Consumers, cfg.PageSize = 2000, 100, 2, 2, 250
	cfg.Timeout = 30 * time.Second
	return cfg
}

// startGateway runs the gateway in this process, on the real bbolt store,
// with the configuration bench gives a gateway it starts. It returns the
// gateway's base URL and the bench user's password.
func startGateway(t *testing.T) (url, password string) {
	t.Helper()
	return startGatewayWrapped(t, nil)
}

// startGatewayWrapped is startGateway with the handler wrapped by wrap.
func startGatewayWrapped(t *testing.T, wrap func(http.Handler) http.Handler) (url, password string) {
	t.Helper()
	password = "bench-test-password"
	hash, err := auth.HashPassword(password)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cfg, err := benchConfig(spawnOptions{dataDir: dir, apiRoot: DefaultAPIRoot, collection: DefaultCollection, maxLimit: 1000}, hash)
	if err != nil {
		t.Fatal(err)
	}
	users := []auth.User{{Name: cfg.Users[0].Name, Organisation: cfg.Users[0].Organisation, Roles: cfg.Users[0].Roles, PasswordHash: hash}}
	authn, err := auth.New(users, auth.Options{})
	if err != nil {
		t.Fatal(err)
	}
	st, err := bolt.Open(filepath.Join(dir, "ctigate.db"), bolt.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	var h http.Handler = server.New(server.Options{Config: cfg, Store: st, Auth: authn})
	if wrap != nil {
		h = wrap(h)
	}
	ts := httptest.NewServer(h)
	t.Cleanup(func() {
		ts.Close()
		if err := st.Close(); err != nil {
			t.Error(err)
		}
	})
	return ts.URL, password
}

func TestRunInProcess(t *testing.T) {
	url, password := startGateway(t)
	ctx := context.Background()
	cfg := small()
	cfg.Server, cfg.User, cfg.Password = url, "bench", password

	var out bytes.Buffer
	res, err := Run(ctx, cfg, &out)
	if err != nil {
		t.Fatal(err)
	}
	if res.Push == nil || res.Poll == nil {
		t.Fatalf("got push %v, poll %v; want both phases", res.Push, res.Poll)
	}
	if got, want := res.Push.Objects, 2000; got != want {
		t.Errorf("pushed %d objects, want %d", got, want)
	}
	if got, want := res.Push.Latency.Count, 20; got != want {
		t.Errorf("%d POSTs timed, want %d", got, want)
	}
	if got, want := res.Poll.PerConsumer, 2000; got != want {
		t.Errorf("each consumer saw %d objects, want %d", got, want)
	}
	if got, want := res.Poll.Expected, 2000; got != want {
		t.Errorf("expected count %d, want %d (the collection was empty)", got, want)
	}
	if got, want := res.Poll.Objects, int64(4000); got != want {
		t.Errorf("polled %d objects in all, want %d", got, want)
	}
	if res.Poll.Pages < 2*8 {
		t.Errorf("%d pages, want at least 16 (2 consumers × 2000/250)", res.Poll.Pages)
	}
	if res.Push.ObjectsPerSec <= 0 || res.Poll.ObjectsPerSec <= 0 || res.Poll.Latency.P99ms < res.Poll.Latency.P50ms {
		t.Errorf("implausible figures: %+v %+v", res.Push, res.Poll)
	}
	if res.RSS != nil {
		t.Errorf("RSS reported for a gateway bench did not start: %+v", res.RSS)
	}
	if res.Collection != DefaultCollection {
		t.Errorf("collection %q, want %q", res.Collection, DefaultCollection)
	}
	// The ceiling ran first, with the same workload, and the figures are
	// given as a share of it.
	if c := res.Ceiling; c == nil || c.Push == nil || c.Push.Objects != 2000 || c.Poll == nil || c.Poll.PerConsumer != 2000 ||
		c.PushRatio <= 0 || c.PollRatio <= 0 {
		t.Errorf("ceiling: %+v", res.Ceiling)
	}
	for _, want := range []string{"push", "poll", "2,000", "as expected", "n=2000 b=100 p=2", "c=2 l=250", "ceiling push", "ceiling poll", "% of the ceiling"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
	if strings.Contains(out.String(), password) {
		t.Error("the report shows the password")
	}

	// Poll only, by alias: the consumers agree on what is there.
	cfg.Phase, cfg.Collection, cfg.JSON = PhasePoll, "csirt-inbound", true
	out.Reset()
	res, err = Run(ctx, cfg, &out)
	if err != nil {
		t.Fatal(err)
	}
	if res.Push != nil || res.Poll.PerConsumer != 2000 || res.Poll.Expected != -1 {
		t.Errorf("poll only: got push %v, %d objects per consumer (expected %d); want no push, 2000, -1", res.Push, res.Poll.PerConsumer, res.Poll.Expected)
	}
	var j struct {
		N    int `json:"n"`
		C    int `json:"c"`
		Poll struct {
			PerConsumer int `json:"objects_per_consumer"`
			Latency     struct {
				P50 float64 `json:"p50_ms"`
			} `json:"page_latency"`
		} `json:"poll"`
		GoVersion string `json:"go_version"`
	}
	if err := json.Unmarshal(out.Bytes(), &j); err != nil {
		t.Fatalf("--json output: %v\n%s", err, out.String())
	}
	if j.C != 2 || j.Poll.PerConsumer != 2000 || j.Poll.Latency.P50 <= 0 || j.GoVersion != runtime.Version() {
		t.Errorf("--json output: got %+v", j)
	}

	// Push into a collection that is not empty: counts are checked against
	// each other and against what is known to be there.
	cfg.Phase, cfg.Objects, cfg.JSON = PhaseBoth, 250, false
	res, err = Run(ctx, cfg, &out)
	if err != nil {
		t.Fatal(err)
	}
	// 2,249: the second push's first object, the producer's identity, is
	// the same version as the first push's.
	if res.Poll.PerConsumer != 2249 || res.Poll.Expected != -1 || len(res.Notes) == 0 {
		t.Errorf("second push: %d objects per consumer (expected %d), notes %q; want 2249, -1 and a note", res.Poll.PerConsumer, res.Poll.Expected, res.Notes)
	}
}

func TestRunRejects(t *testing.T) {
	url, password := startGateway(t)
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		change func(*Config)
		want   string
	}{
		{"wrong password", func(c *Config) { c.Password = "wrong" }, "401"},
		{"unknown collection", func(c *Config) { c.Collection = "no-such-collection" }, "404"},
		{"unknown API root", func(c *Config) { c.APIRoot = "elsewhere" }, "404"},
		{"non-loopback server", func(c *Config) { c.Server = "http://192.0.2.1:8080" }, "not a loopback address"},
		{"bad phase", func(c *Config) { c.Phase = "pull" }, "phase"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := small()
			cfg.Server, cfg.User, cfg.Password = url, "bench", password
			tc.change(&cfg)
			_, err := Run(ctx, cfg, &bytes.Buffer{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got error %v, want one mentioning %q", err, tc.want)
			}
			if strings.Contains(err.Error(), password) {
				t.Errorf("the error shows the password: %v", err)
			}
		})
	}
}

func TestRunCancelled(t *testing.T) {
	url, password := startGateway(t)
	cfg := small()
	cfg.Server, cfg.User, cfg.Password = url, "bench", password
	cfg.Objects = 200_000
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := Run(ctx, cfg, &bytes.Buffer{})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v, want the context's error", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("Run took %v to stop after cancellation", d)
	}
}

func TestRunCancelledDuringPoll(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	url, password := startGatewayWrapped(t, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodGet && r.URL.Query().Get("next") != "" {
				cancel() // the consumers are under way
			}
			h.ServeHTTP(w, r)
		})
	})
	cfg := small()
	cfg.Server, cfg.User, cfg.Password = url, "bench", password
	cfg.PageSize = 10
	start := time.Now()
	res, err := Run(ctx, cfg, &bytes.Buffer{})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
	if res.Push == nil || res.Push.Objects != 2000 {
		t.Errorf("the push before the cancellation: got %+v", res.Push)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("Run took %v to stop after cancellation", d)
	}
}

// TestRunStartsGateway builds ctigate and lets bench start it: a push run
// that keeps its data, then a poll run on that data.
func TestRunStartsGateway(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the ctigate binary")
	}
	bin := filepath.Join(t.TempDir(), "ctigate")
	build := exec.Command("go", "build", "-o", bin, "github.com/ctigate/ctigate/cmd/ctigate")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	data := t.TempDir()
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp) // where bench writes the gateway's configuration
	ctx := context.Background()

	cfg := small()
	cfg.Executable, cfg.DataDir, cfg.Phase = bin, data, PhasePush
	cfg.Password = "must-not-be-used"
	var pushOut bytes.Buffer
	res, err := Run(ctx, cfg, &pushOut)
	if err != nil {
		t.Fatal(err)
	}
	// The gateway's CPU over the push and its publication: 2,000 objects
	// take tens of milliseconds at least (/proc counts in steps of 10).
	if runtime.GOOS == "linux" {
		if c := res.CPU; c == nil || c.PushSeconds < 0.01 || c.PushMicrosPerObject != 1e6*c.PushSeconds/2000 || c.PollSeconds != 0 {
			t.Errorf("push run: CPU %+v, want the push's", c)
		}
		if !strings.Contains(pushOut.String(), "server CPU     ") {
			t.Errorf("report lacks the CPU line:\n%s", pushOut.String())
		}
	}
	if res.Push == nil || res.Push.Objects != 2000 || res.Poll != nil {
		t.Fatalf("push run: got push %+v, poll %+v", res.Push, res.Poll)
	}
	// The started gateway has a route: it publishes all but TLP:RED.
	p := res.Propagation
	if p == nil || p.Published < 1500 || p.Published >= 2000 || res.Collection != PublishedCollection {
		t.Fatalf("push run: propagation %+v, collection %s", p, res.Collection)
	}
	if !res.Server.Started || !strings.HasPrefix(res.Server.URL, "http://127.0.0.1:") {
		t.Errorf("server %+v, want one started on 127.0.0.1", res.Server)
	}
	if _, err := os.Stat(filepath.Join(data, "ctigate.db")); err != nil {
		t.Errorf("the data was not kept: %v", err)
	}
	checkRSS(t, res.RSS)

	cfg.Phase = PhasePoll
	var out bytes.Buffer
	res, err = Run(ctx, cfg, &out)
	if err != nil {
		t.Fatal(err)
	}
	if res.Poll == nil || res.Poll.PerConsumer != p.Published || res.Poll.Objects != 2*int64(p.Published) {
		t.Fatalf("poll run: got %+v, want the %d published objects for each of 2 consumers", res.Poll, p.Published)
	}
	// The poll began once the gateway it started had settled, and says so.
	if st := res.Settle; st == nil || !st.Settled || st.Seconds < settleWindow.Seconds() || st.MicrosPerObject != 0 {
		t.Errorf("poll run: settle %+v, want settled after at least %v, without push figures", st, settleWindow)
	}
	if !strings.Contains(out.String(), "settled        the gateway went idle") {
		t.Errorf("report lacks the settle line:\n%s", out.String())
	}
	checkRSS(t, res.RSS)
	if !strings.Contains(out.String(), "server RSS     peak") {
		t.Errorf("report lacks the RSS line:\n%s", out.String())
	}
	for _, n := range res.Notes {
		if strings.Contains(n, "exited with") || strings.Contains(n, "stopping") {
			t.Errorf("the gateway did not stop cleanly: %s", n)
		}
	}
	if left, _ := os.ReadDir(tmp); len(left) > 0 {
		t.Errorf("temporary files left behind: %v", left)
	}
}

func TestRunGatewayFails(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("uses a shell script")
	}
	bin := filepath.Join(t.TempDir(), "ctigate")
	script := "#!/bin/sh\necho 'config: something is wrong' >&2\nexit 3\n"
	if err := os.WriteFile(bin, []byte(script), 0o700); err != nil {
		t.Fatal(err)
	}
	cfg := small()
	cfg.Executable = bin
	_, err := Run(context.Background(), cfg, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "exited before listening") || !strings.Contains(err.Error(), "something is wrong") {
		t.Fatalf("got %v, want the gateway's exit and its log", err)
	}
}

func TestConfigString(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Password = "s3cret-pw"
	for _, s := range []string{cfg.String(), fmt.Sprint(cfg), fmt.Sprintf("%+v", cfg), fmt.Sprintf("%v", &cfg)} {
		if strings.Contains(s, "s3cret-pw") || !strings.Contains(s, "password=set") {
			t.Errorf("got %s", s)
		}
	}
}

func checkRSS(t *testing.T, m *RSSResult) {
	t.Helper()
	if runtime.GOOS != "linux" {
		return
	}
	if m == nil {
		t.Fatal("no RSS figures for a gateway bench started")
	}
	if m.Samples < 2 || m.PeakBytes < 1<<20 || m.HWMBytes < m.PeakBytes || m.PeakAnon > m.PeakBytes {
		t.Errorf("implausible RSS figures: %+v", m)
	}
}

func TestGenerate(t *testing.T) {
	envs, err := generate(context.Background(), 1050, 100, 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(envs) != 11 || envs[10].objects != 50 {
		t.Fatalf("got %d envelopes, the last of %d objects; want 11, the last of 50", len(envs), envs[len(envs)-1].objects)
	}
	ids := map[string]bool{}
	for i, e := range envs {
		items, err := stix.DecodeEnvelope(e.body)
		if err != nil {
			t.Fatalf("envelope %d: %v", i, err)
		}
		if len(items) != e.objects {
			t.Fatalf("envelope %d: %d objects, want %d", i, len(items), e.objects)
		}
		for _, it := range items {
			if it.Err != nil {
				t.Fatalf("envelope %d: %s is invalid: %v\n%s", i, it.ID, it.Err, it.Raw)
			}
			if ids[it.ID] {
				t.Fatalf("id %s generated twice", it.ID)
			}
			ids[it.ID] = true
			var ind struct {
				Type        string   `json:"type"`
				Name        string   `json:"name"`
				Pattern     string   `json:"pattern"`
				PatternType string   `json:"pattern_type"`
				ValidFrom   string   `json:"valid_from"`
				Labels      []string `json:"labels"`
				CreatedBy   string   `json:"created_by_ref"`
				Markings    []string `json:"object_marking_refs"`
			}
			if err := json.Unmarshal(it.Raw, &ind); err != nil {
				t.Fatal(err)
			}
			if first := len(ids) == 1; first || ind.Type == "identity" {
				// The producer's identity, first of all and only there.
				if !first || it.ID != string(benchIdentity) || len(ind.Markings) != 1 {
					t.Fatalf("object %d of envelope %d: %s; want the producer's identity first, and only there", it.Index, i, it.Raw)
				}
				continue
			}
			if ind.Type != "indicator" || ind.Name == "" || !strings.HasPrefix(ind.Pattern, "[") || ind.PatternType != "stix" ||
				ind.ValidFrom == "" || len(ind.Labels) == 0 || ind.CreatedBy != string(benchIdentity) || len(ind.Markings) != 1 {
				t.Fatalf("incomplete indicator: %s", it.Raw)
			}
		}
	}
	g := summarise(envs, 0)
	if g.Objects != 1050 || g.AvgObjectBytes < 400 || g.AvgObjectBytes > 600 {
		t.Errorf("got %d objects of %.0f bytes on average, want 1050 of 400–600", g.Objects, g.AvgObjectBytes)
	}
}

func TestCountEnvelope(t *testing.T) {
	for _, tc := range []struct {
		body    string
		objects int
		more    bool
		next    string
		err     bool
	}{
		{body: `{"more":false}`},
		{body: `{}`},
		{body: `{"more":true,"next":"a\"b","objects":[{},{"x":[1,{"y":"]},{"}]},{"z":null}]}`, objects: 3, more: true, next: `a"b`},
		{body: ` { "objects" : [ { "id" : "x" } ] , "more" : false } `, objects: 1},
		{body: `{"objects":[{"id":"a","id":"b"}]}`, objects: 1}, // objects are only delimited
		{body: `{"objects":[{"a":"\xff"}]}`, objects: 1},
		{body: `{"objects":[1]}`, err: true},
		{body: `{"objects":{}}`, err: true},
		{body: `{"more":"yes"}`, err: true},
		{body: `{"more":false,"more":true}`, err: true},
		{body: `{"objects":[{}`, err: true},
		{body: `[]`, err: true},
		{body: ``, err: true},
		{body: `{"objects":[{"a":"\\"},{"b":"\\\"}"},{"c":"[{"}],"more":true,"next":"x\u0041"}`, objects: 3, more: true, next: "xA"},
		{body: `{"objects":[{"a":"\\\"}]}`, err: true}, // the string never ends
		{body: `{"objects":[{}],"x":[1,2,{"y":[]}],"z":-1.5e3,"w":null}`, objects: 1},
		{body: `{"objects":[{}]}x`, err: true},
		{body: `{"objects":[{} {}]}`, err: true},
		{body: `{"more":tru}`, err: true},
		{body: `{"next":1}`, err: true},
		{body: `{"objects":[{}],}`, err: true},
	} {
		p, err := countEnvelope([]byte(tc.body))
		if (err != nil) != tc.err {
			t.Errorf("%s: got error %v, want error: %v", tc.body, err, tc.err)
			continue
		}
		if err == nil && (p.objects != tc.objects || p.more != tc.more || p.next != tc.next) {
			t.Errorf("%s: got %+v, want %d objects, more %v, next %q", tc.body, p, tc.objects, tc.more, tc.next)
		}
	}
}

func TestBaseURL(t *testing.T) {
	for in, want := range map[string]string{
		"http://127.0.0.1:8080":          "http://127.0.0.1:8080",
		"http://127.0.0.1:8080/":         "http://127.0.0.1:8080",
		"http://localhost:8080/taxii2/":  "http://localhost:8080",
		"https://[::1]:8443/taxii2":      "https://[::1]:8443",
		"http://127.0.0.2:1/gw/taxii2/":  "http://127.0.0.2:1/gw",
		"http://192.0.2.1:8080":          "",
		"http://example.com":             "",
		"http://0.0.0.0:8080":            "",
		"ftp://127.0.0.1/":               "",
		"http://u:p@127.0.0.1:8080":      "",
		"http://127.0.0.1:8080/?x=1":     "",
		"127.0.0.1:8080":                 "",
		"http://127.0.0.1.example.com:1": "",
	} {
		got, err := baseURL(in)
		if want == "" {
			if err == nil {
				t.Errorf("baseURL(%q) = %q, want an error", in, got)
			}
			continue
		}
		if err != nil || got != want {
			t.Errorf("baseURL(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for addr, ok := range map[string]bool{"127.0.0.1:80": true, "[::1]:80": true, "10.0.0.1:80": false, "[2001:db8::1]:80": false} {
		if err := loopbackOnly("tcp", addr, nil); (err == nil) != ok {
			t.Errorf("loopbackOnly(%s) = %v, want allowed: %v", addr, err, ok)
		}
	}
}

func TestValidate(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Objects, cfg.Envelope, cfg.Producers, cfg.Consumers, cfg.PageSize = 0, 0, 0, MaxWorkers+1, -1
	err := cfg.Validate()
	for _, want := range []string{"n:", "b:", "p:", "c:", "l:"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("got %v, want an error naming %s", err, want)
		}
	}
	cfg = DefaultConfig()
	cfg.Phase, cfg.Objects = PhasePoll, 0 // n is not used by a poll
	if err := cfg.Validate(); err != nil {
		t.Errorf("poll with n=0: %v", err)
	}
	cfg.Collection = "../status"
	if err := cfg.Validate(); err == nil {
		t.Error("a collection with a path in it was accepted")
	}
}

func TestLatency(t *testing.T) {
	var ds []time.Duration
	for i := 100; i >= 1; i-- {
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	l := latencyOf(ds[:50], ds[50:])
	if l.Count != 100 || l.P50ms != 50 || l.P99ms != 99 || l.Maxms != 100 || l.Meanms != 50.5 {
		t.Errorf("got %+v", l)
	}
	if l := latencyOf(); l.Count != 0 {
		t.Errorf("no samples: got %+v", l)
	}
}

func TestLineWatcher(t *testing.T) {
	found := make(chan string, 1)
	w := &lineWatcher{prefix: servingPrefix, found: found}
	for _, chunk := range []string{"noise\nctigate: serv", "ing TAXII 2.1 at http://127.0.0.1:4", "1234/taxii2/\r\nmore\n"} {
		if _, err := w.Write([]byte(chunk)); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case u := <-found:
		if u != "http://127.0.0.1:41234/taxii2/" {
			t.Errorf("got %q", u)
		}
	default:
		t.Error("the serving line was not found")
	}
}

func TestChildEnv(t *testing.T) {
	got := childEnv([]string{"PATH=/bin", "CTIGATE_BENCH_PASSWORD=secret", "CTIGATE_LISTEN=0.0.0.0:1", "HOME=/root"})
	if strings.Join(got, " ") != "PATH=/bin HOME=/root" {
		t.Errorf("got %q", got)
	}
}
