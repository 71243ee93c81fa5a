package server_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-json-experiment/json"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/ctigate/ctigate/auth"
	"github.com/ctigate/ctigate/config"
	"github.com/ctigate/ctigate/server"
	"github.com/ctigate/ctigate/store/bolt"
)

// loginGateway is the server over a real bbolt file on a real listener,
// with its log, its metrics and a clock the test moves.
type loginGateway struct {
	t      testing.TB
	URL    string
	logs   *syncBuffer
	reader *sdkmetric.ManualReader

	mu  sync.Mutex
	now time.Time
}

func newLoginGateway(t testing.TB, authOpts auth.Options, options ...func(*config.Config)) *loginGateway {
	t.Helper()
	cfg := testConfig(t)
	for _, o := range options {
		o(cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	st, err := bolt.Open(filepath.Join(t.TempDir(), "ctigate.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var users []auth.User
	for _, u := range cfg.Users {
		users = append(users, auth.User{Name: u.Name, Organisation: u.Organisation, Roles: u.Roles, PasswordHash: u.PasswordHash, TokenDigests: u.TokenSHA256})
	}
	a, err := auth.New(users, authOpts)
	if err != nil {
		t.Fatal(err)
	}
	g := &loginGateway{t: t, logs: &syncBuffer{}, reader: sdkmetric.NewManualReader(), now: time.Now()}
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(g.reader))
	srv := server.New(server.Options{Config: cfg, Store: st, Auth: a, MeterProvider: mp, Clock: g.clock,
		Logger: slog.New(slog.NewJSONHandler(g.logs, nil))})
	ts := httptest.NewServer(srv)
	t.Cleanup(func() {
		ts.Close()
		_ = mp.Shutdown(context.Background())
		if err := st.Close(); err != nil {
			t.Error(err)
		}
	})
	g.URL = ts.URL
	return g
}

func (g *loginGateway) clock() time.Time { g.mu.Lock(); defer g.mu.Unlock(); return g.now }

func (g *loginGateway) advance(d time.Duration) { g.mu.Lock(); g.now = g.now.Add(d); g.mu.Unlock() }

// from returns a client whose connections come from the loopback
// address ip (any of 127.0.0.0/8).
func from(ip string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	return &http.Client{Transport: &http.Transport{DialContext: d.DialContext, MaxIdleConnsPerHost: 4}}
}

// login asks for the discovery resource as user with password.
func (g *loginGateway) login(c *http.Client, user, password string) response {
	g.t.Helper()
	r, err := tryLogin(c, g.URL, user, password)
	if err != nil {
		g.t.Fatal(err)
	}
	return r
}

func tryLogin(c *http.Client, url, user, password string) (response, error) {
	req, err := http.NewRequest("GET", url+"/taxii2/", nil)
	if err != nil {
		return response{}, err
	}
	req.Header.Set("Accept", "application/taxii+json;version=2.1")
	req.SetBasicAuth(user, password)
	res, err := c.Do(req)
	if err != nil {
		return response{}, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	return response{Status: res.StatusCode, Header: res.Header, Body: b}, err
}

func (g *loginGateway) throttledCount(reason string) float64 {
	g.t.Helper()
	var rm metricdata.ResourceMetrics
	if err := g.reader.Collect(context.Background(), &rm); err != nil {
		g.t.Fatal(err)
	}
	return value(rm, "ctigate.auth.throttled", attribute.String("ctigate.reason", reason))
}

// throttleLines returns the "login throttled" log lines.
func (g *loginGateway) throttleLines() []map[string]any {
	g.t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(g.logs.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			g.t.Fatalf("log line %q: %v", line, err)
		}
		if m["msg"] == "login throttled" {
			out = append(out, m)
		}
	}
	return out
}

// checkThrottled checks a refusal: status, Retry-After and a TAXII error
// message.
func checkThrottled(t *testing.T, r response, status int, retryAfter string) {
	t.Helper()
	if r.Status != status {
		t.Fatalf("got %d %s, want %d", r.Status, r.Body, status)
	}
	if got := r.Header.Get("Retry-After"); got != retryAfter {
		t.Errorf("Retry-After %q, want %q", got, retryAfter)
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/taxii+json") {
		t.Errorf("Content-Type %q", ct)
	}
	var e struct {
		Title       string `json:"title"`
		Description string `json:"description"`
		HTTPStatus  string `json:"http_status"`
	}
	if err := json.Unmarshal(r.Body, &e); err != nil || e.Title != http.StatusText(status) || e.HTTPStatus != fmt.Sprint(status) || e.Description == "" {
		t.Errorf("body %s (%v): want a TAXII error message for %d", r.Body, err, status)
	}
}

func TestLoginThrottledPerUserAndAddress(t *testing.T) {
	g := newLoginGateway(t, auth.Options{}, func(c *config.Config) {
		c.Auth.MaxFailuresPerMinute = 3
		c.Auth.MaxAddressFailuresPerMinute = 100
	})
	attacker, elsewhere := from("127.0.0.2"), from("127.0.0.3")
	for i := range 3 {
		if r := g.login(attacker, "police", "guess"); r.Status != 401 {
			t.Fatalf("failure %d: got %d, want 401", i+1, r.Status)
		}
	}
	// Over the limit: refused, without looking at the password (the right
	// one, cached or not, is refused too), for 60/3 s.
	checkThrottled(t, g.login(attacker, "police", "guess"), 429, "20")
	checkThrottled(t, g.login(attacker, "police", "police-pw"), 429, "20")
	// Not locked out from everywhere: the user's own address, or another
	// user at the attacker's, log in.
	if r := g.login(elsewhere, "police", "police-pw"); r.Status != 200 {
		t.Errorf("police from another address: %d %s", r.Status, r.Body)
	}
	if r := g.login(attacker, "cert-a", "cert-a-pw"); r.Status != 200 {
		t.Errorf("cert-a from the attacker's address: %d %s", r.Status, r.Body)
	}
	// Every refusal counted; logged once, naming the address and the user.
	if n := g.throttledCount(auth.ReasonUserAddress); n != 2 {
		t.Errorf("ctigate.auth.throttled{reason=user_address} = %v, want 2", n)
	}
	lines := g.throttleLines()
	if len(lines) != 1 || lines[0]["address"] != "127.0.0.2" || lines[0]["user"] != "police" || lines[0]["reason"] != auth.ReasonUserAddress {
		t.Errorf("throttle log lines %v, want one for 127.0.0.2 and police", lines)
	}

	// One failure comes back after 20 s; a success resets the pair.
	g.advance(20 * time.Second)
	if r := g.login(attacker, "police", "police-pw"); r.Status != 200 {
		t.Fatalf("after 20s: %d %s", r.Status, r.Body)
	}
	for i := range 3 {
		if r := g.login(attacker, "police", "guess"); r.Status != 401 {
			t.Fatalf("failure %d after the success: got %d, want 401 (the counter was not reset)", i+1, r.Status)
		}
	}
	checkThrottled(t, g.login(attacker, "police", "guess"), 429, "20")
}

func TestLoginThrottleEscapesUserInLog(t *testing.T) {
	g := newLoginGateway(t, auth.Options{}, func(c *config.Config) {
		c.Auth.MaxFailuresPerMinute = 1
	})
	c := from("127.0.0.6")
	name := "evil\n\"name\"\x00é" + strings.Repeat("x", 200)
	for range 2 {
		g.login(c, name, "guess")
	}
	lines := g.throttleLines()
	if len(lines) != 1 {
		t.Fatalf("throttle log lines %v, want 1", lines)
	}
	got := lines[0]["user"].(string)
	want := `evil\n\"name\"\x00\u00e9` + strings.Repeat("x", 64-len("evil\n\"name\"\x00é")) + "..."
	if got != want {
		t.Errorf("logged user %q, want %q", got, want)
	}
}

func TestLoginThrottleCountsUnknownUsersAgainstAddress(t *testing.T) {
	g := newLoginGateway(t, auth.Options{}, func(c *config.Config) {
		c.Auth.MaxFailuresPerMinute = 3
		c.Auth.MaxAddressFailuresPerMinute = 5
	})
	scanner, neighbour := from("127.0.0.4"), from("127.0.0.5")
	// Names that do not exist fail like those that do (each verified
	// against a dummy hash), and count against the address.
	for i := range 5 {
		if r := g.login(scanner, fmt.Sprintf("ghost-%d", i), "guess"); r.Status != 401 {
			t.Fatalf("unknown user %d: got %d, want 401", i, r.Status)
		}
	}
	// Any name from that address is refused now, for 60/5 s…
	checkThrottled(t, g.login(scanner, "cert-a", "cert-a-pw"), 429, "12")
	checkThrottled(t, g.login(scanner, "ghost-9", "guess"), 429, "12")
	// …and nothing changes for another address.
	if r := g.login(neighbour, "cert-a", "cert-a-pw"); r.Status != 200 {
		t.Errorf("another address: %d %s", r.Status, r.Body)
	}
	if n := g.throttledCount(auth.ReasonAddress); n != 2 {
		t.Errorf("ctigate.auth.throttled{reason=address} = %v, want 2", n)
	}
	lines := g.throttleLines()
	if len(lines) != 1 || lines[0]["address"] != "127.0.0.4" || lines[0]["reason"] != auth.ReasonAddress {
		t.Errorf("throttle log lines %v, want one for 127.0.0.4", lines)
	}
}

// The login flood: floodWorkers concurrent clients, from floodAddresses
// addresses, guess the password of police (ignoring Retry-After) while
// police logs in floodLogins times from its own address, verifying its
// password each time (the success cache is off). The flood lasts until
// police's last login, or floodLimit at most.
const (
	floodAddresses = 100
	floodWorkers   = 200
	floodLogins    = 100
	floodLimit     = 60 * time.Second
)

// loginFlood is what the flood did.
type loginFlood struct {
	durations []time.Duration // police's logins, ascending
	counts    map[int]int64   // the flood's answers by status; -1: the request failed
	answered  int64           // the flood's requests answered
	flooding  int64           // flooders still under way at police's last login
}

// percentile returns police's login time at q (0–1).
func (f *loginFlood) percentile(q float64) time.Duration {
	return f.durations[int(q*float64(len(f.durations)-1)+0.5)]
}

// flood runs the login flood on g; police's logins must all succeed.
func (g *loginGateway) flood() loginFlood {
	g.t.Helper()
	const perWorker = 400 // the flood stops by itself…
	user := from("127.0.0.2")
	var (
		statuses sync.Map // status → *atomic.Int64
		answered atomic.Int64
		stop     = make(chan struct{})
		stopped  atomic.Int64 // flooders that ended before stop
		wg       sync.WaitGroup
	)
	deadline := time.Now().Add(floodLimit) // …or after a minute at most
	for i := range floodWorkers {
		c := from(fmt.Sprintf("127.0.1.%d", 1+i%floodAddresses))
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range perWorker {
				select {
				case <-stop:
					return
				default:
				}
				if time.Now().After(deadline) {
					break
				}
				r, err := tryLogin(c, g.URL, "police", fmt.Sprintf("guess-%d", i))
				status := r.Status
				if err != nil {
					status = -1
				}
				n, _ := statuses.LoadOrStore(status, new(atomic.Int64))
				n.(*atomic.Int64).Add(1)
				answered.Add(1)
			}
			stopped.Add(1)
		}()
	}
	for answered.Load() < floodWorkers { // every flooder under way
		time.Sleep(10 * time.Millisecond)
	}
	f := loginFlood{durations: make([]time.Duration, 0, floodLogins), counts: map[int]int64{}}
	for range floodLogins {
		start := time.Now()
		r := g.login(user, "police", "police-pw")
		f.durations = append(f.durations, time.Since(start))
		if r.Status != 200 {
			g.t.Fatalf("police's login during the flood: %d %s", r.Status, r.Body)
		}
	}
	f.flooding = floodWorkers - stopped.Load()
	close(stop)
	wg.Wait()
	slices.Sort(f.durations)
	statuses.Range(func(k, v any) bool { f.counts[k.(int)] = v.(*atomic.Int64).Load(); return true })
	f.answered = answered.Load()
	return f
}

// TestLoginFloodKeepsUserIn is the acceptance of login throttling: during
// the flood police's logins all succeed, all within the flood's minute
// (every flooder still under way at the last), the flood is refused and
// none of its guesses succeeds, and the log says so once per address or
// pair a minute. How fast police's logins are then is measured by
// BenchmarkLoginFlood.
func TestLoginFloodKeepsUserIn(t *testing.T) {
	if testing.Short() {
		t.Skip("floods the gateway for seconds")
	}
	if raceDetector {
		t.Skip("the race detector slows password hashing tenfold: police's logins would not fit in the flood's minute")
	}
	g := newLoginGateway(t, auth.Options{CacheTTL: -1})
	f := g.flood()
	t.Logf("police's %d logins during the flood: p50 %v, p99 %v, max %v", floodLogins, f.percentile(0.5), f.percentile(0.99), f.durations[len(f.durations)-1])
	t.Logf("flood: %d requests, by status %v", f.answered, f.counts)
	if f.counts[200] > 0 || f.counts[-1] > 0 {
		t.Errorf("flood: %d logins succeeded, %d requests failed", f.counts[200], f.counts[-1])
	}
	if f.flooding != floodWorkers {
		t.Errorf("%d of %d flooders ended before police's last login", floodWorkers-f.flooding, floodWorkers)
	}
	if f.counts[429]+f.counts[503] == 0 {
		t.Error("flood: nothing refused")
	}
	// One log line per flooding pair or address a minute, not one per
	// refusal.
	if n, most := len(g.throttleLines()), 2*floodAddresses; n == 0 || n > most {
		t.Errorf("%d throttle log lines, want 1 to %d", n, most)
	}
}

// BenchmarkLoginFlood measures police's logins during the flood (p50 and
// p99, in ms) and, for comparison, a login without it (quiet-ms, the
// median of 10). Each iteration is a whole flood of seconds: run it with
// -benchtime 1x.
func BenchmarkLoginFlood(b *testing.B) {
	for b.Loop() {
		g := newLoginGateway(b, auth.Options{CacheTTL: -1})
		var quiet []time.Duration
		for range 10 {
			start := time.Now()
			if r := g.login(from("127.0.0.3"), "cert-a", "cert-a-pw"); r.Status != 200 {
				b.Fatalf("login without the flood: %d %s", r.Status, r.Body)
			}
			quiet = append(quiet, time.Since(start))
		}
		slices.Sort(quiet)
		f := g.flood()
		b.ReportMetric(millis(quiet[len(quiet)/2]), "quiet-ms")
		b.ReportMetric(millis(f.percentile(0.5)), "p50-ms")
		b.ReportMetric(millis(f.percentile(0.99)), "p99-ms")
		b.ReportMetric(float64(f.answered), "flood-requests")
	}
}
