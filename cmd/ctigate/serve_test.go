package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/ctigate/ctigate/store/bolt"
	"runtime"
	"sync/atomic"
)

const (
	demoConfig  = "../../configs/ctigate.yaml"
	inboundPath = "/exchange/collections/24f70a31-7be5-4fdd-8353-9784877646c1/"
)

// gatewayProc is one `ctigate serve` run in-process.
type gatewayProc struct {
	base   string // scheme://host:port
	ops    string // http://host:port of the operations listener
	cancel context.CancelFunc
	done   chan error
}

// startServe runs `ctigate serve args…` until the test ends or stop is
// called, and returns once it listens.
func startServe(t testing.TB, getenv func(string) string, args ...string) *gatewayProc {
	t.Helper()
	return startServeLog(t, getenv, io.Discard, args...)
}

// startServeLog is startServe with serve's log written to stderr.
func startServeLog(t testing.TB, getenv func(string) string, stderr io.Writer, args ...string) *gatewayProc {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	p := &gatewayProc{cancel: cancel, done: make(chan error, 1)}
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	getenv = opsPort0(getenv)
	go func() {
		err := run(ctx, append([]string{"serve"}, args...), getenv, nil, pw, stderr)
		pw.CloseWithError(fmt.Errorf("serve returned: %v", err))
		p.done <- err
	}()
	sc := bufio.NewScanner(pr)
	for sc.Scan() {
		if _, u, ok := strings.Cut(sc.Text(), "serving operations at "); ok {
			p.ops = strings.TrimSuffix(u, "/")
		}
		if _, u, ok := strings.Cut(sc.Text(), "serving TAXII 2.1 at "); ok {
			p.base = strings.TrimSuffix(u, "/taxii2/")
			break
		}
	}
	if p.base == "" {
		cancel()
		t.Fatalf("serve did not start: %v", sc.Err())
	}
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	t.Cleanup(func() { p.stop(t) })
	return p
}

// opsPort0 puts the operations listener on an ephemeral port unless
// getenv sets CTIGATE_OPS_LISTEN, so that gateways started by tests never
// collide on its default port.
func opsPort0(getenv func(string) string) func(string) string {
	return func(k string) string {
		if v := getenv(k); v != "" || k != "CTIGATE_OPS_LISTEN" {
			return v
		}
		return "127.0.0.1:0"
	}
}

func (p *gatewayProc) stop(t testing.TB) {
	t.Helper()
	if p.cancel == nil {
		return
	}
	p.cancel()
	p.cancel = nil
	if err := <-p.done; err != nil {
		t.Errorf("serve: %v", err)
	}
}

func request(t testing.TB, client *http.Client, method, u, user string, body []byte) (*http.Response, []byte, error) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, u, rd)
	if err != nil {
		return nil, nil, err
	}
	req.Header.Set("Accept", "application/taxii+json;version=2.1")
	if body != nil {
		req.Header.Set("Content-Type", "application/taxii+json;version=2.1")
	}
	req.SetBasicAuth(user, user+"-demo")
	res, err := client.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	return res, b, err
}

func indicatorJSON(n int) string {
	return fmt.Sprintf(`{"type":"indicator","spec_version":"2.1","id":"indicator--6ba7b810-9dad-41d1-80b4-%012d","created":"2026-01-01T00:00:00.000Z","modified":"2026-01-01T00:00:00.000Z","pattern":"[ipv4-addr:value = '203.0.113.%d']","pattern_type":"stix","valid_from":"2026-01-01T00:00:00Z"}`, n, n%250)
}

// TestPagingUnderWritesAcrossRestart: a consumer paging while producers
// post sees every object exactly once, even though the server is stopped
// and started again (on another port) in the middle, with the consumer's
// cursor carried across.
func TestPagingUnderWritesAcrossRestart(t *testing.T) {
	data := t.TempDir()
	args := []string{"--config", demoConfig, "--data", data, "--listen", "127.0.0.1:0"}
	var (
		mu   sync.Mutex
		base string
		gw   = startServe(t, nil, args...)
	)
	base = gw.base
	currentBase := func() string { mu.Lock(); defer mu.Unlock(); return base }
	client := &http.Client{Timeout: 10 * time.Second}

	const producers, envelopes, perEnvelope = 3, 12, 40
	total := producers * envelopes * perEnvelope
	var posted sync.WaitGroup
	var halfway sync.WaitGroup
	halfway.Add(producers)
	for p := range producers {
		posted.Add(1)
		go func() {
			defer posted.Done()
			for e := range envelopes {
				if e == envelopes/2 {
					halfway.Done()
				}
				objs := make([]string, perEnvelope)
				for i := range objs {
					objs[i] = indicatorJSON((p*envelopes+e)*perEnvelope + i)
				}
				body := []byte(`{"objects":[` + strings.Join(objs, ",") + `]}`)
				// Retry through the restart: re-posting is idempotent.
				for attempt := 0; ; attempt++ {
					res, b, err := request(t, client, "POST", currentBase()+inboundPath+"objects/", "cert-a", body)
					if err == nil && res.StatusCode == 202 && bytes.Contains(b, []byte(fmt.Sprintf(`"success_count":%d`, perEnvelope))) {
						break
					}
					if attempt > 200 {
						t.Errorf("producer %d envelope %d: giving up: %v %s", p, e, err, b)
						return
					}
					time.Sleep(25 * time.Millisecond)
				}
			}
		}()
	}

	seen := map[string]int{}
	next, addedAfter := "", ""
	restarted := false
	producersDone := make(chan struct{})
	go func() { posted.Wait(); close(producersDone) }()
	halfwayC := make(chan struct{})
	go func() { halfway.Wait(); close(halfwayC) }()
	deadline := time.Now().Add(60 * time.Second)
	for len(seen) < total && time.Now().Before(deadline) {
		if !restarted {
			select {
			case <-halfwayC:
				gw.stop(t)
				gw = startServe(t, nil, args...)
				mu.Lock()
				base = gw.base
				mu.Unlock()
				restarted = true
			default:
			}
		}
		q := url.Values{"limit": {"37"}}
		if next != "" {
			q.Set("next", next)
		} else if addedAfter != "" {
			q.Set("added_after", addedAfter)
		}
		res, b, err := request(t, client, "GET", currentBase()+inboundPath+"objects/?"+q.Encode(), "cert-a", nil)
		if err != nil || res.StatusCode != 200 {
			time.Sleep(20 * time.Millisecond) // the server is restarting
			continue
		}
		var page struct {
			More    bool             `json:"more"`
			Next    string           `json:"next"`
			Objects []jsontext.Value `json:"objects"`
		}
		if err := json.Unmarshal(b, &page); err != nil {
			t.Fatal(err)
		}
		for _, o := range page.Objects {
			var x struct {
				ID string `json:"id"`
			}
			if err := json.Unmarshal(o, &x); err != nil {
				t.Fatal(err)
			}
			seen[x.ID]++
			if seen[x.ID] > 1 {
				t.Fatalf("%s seen twice", x.ID)
			}
		}
		if last := res.Header.Get("X-TAXII-Date-Added-Last"); last != "" {
			addedAfter = last
		}
		next = ""
		if page.More {
			next = page.Next
		} else {
			select {
			case <-producersDone:
			default:
				time.Sleep(5 * time.Millisecond)
			}
		}
	}
	posted.Wait()
	if !restarted {
		t.Error("the server was never restarted")
	}
	if len(seen) != total {
		t.Errorf("consumer saw %d distinct objects, want %d", len(seen), total)
	}
}

func TestServeBrokenConfigNamesKey(t *testing.T) {
	dir := t.TempDir()
	good, err := os.ReadFile(demoConfig)
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string]struct{ from, to, want string }{
		"collection id": {"id: 1dae5e88-4b59-4503-a9cf-2e649dd6544c", "id: not-a-uuid", "api_roots[0].collections[2].id"},
		"unknown key":   {"max_content_length: 10485760", "max_content_lenght: 10485760", "max_content_lenght"},
		"reader":        {`readers: ["org:National Police"]`, `readers: [polise]`, "api_roots[0].collections[2].readers[0]"},
		"scoped role":   {`writers: [role:producer@CERT-B]`, `writers: [role:producer@CERT-C]`, "api_roots[0].collections[1].writers[0]"},
		"shared writer": {`writers: [role:producer@CERT-B]`, `writers: [role:producer]`, "api_roots[0].collections[1].writers: users of several organisations (CERT-A, CERT-B)"},
		"hash":          {"password_hash: $argon2id$v=19$m=19456,t=2,p=1$a1Ax", "password_hash: plain$argon2id$v=19$m=19456,t=2,p=1$a1Ax", "users[2].password_hash"},
		"public plain":  {"listen: 127.0.0.1:8080", "listen: 0.0.0.0:8080", "listen"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			if !bytes.Contains(good, []byte(c.from)) {
				t.Fatalf("demo config lacks %q", c.from)
			}
			path := filepath.Join(dir, strings.ReplaceAll(name, " ", "_")+".yaml")
			if err := os.WriteFile(path, bytes.Replace(good, []byte(c.from), []byte(c.to), 1), 0o600); err != nil {
				t.Fatal(err)
			}
			err := run(context.Background(), []string{"serve", "--config", path, "--data", t.TempDir()}, func(string) string { return "" }, nil, io.Discard, io.Discard)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("got %v, want an error naming %s", err, c.want)
			}
		})
	}
	// Environment overrides are validated too.
	err = run(context.Background(), []string{"serve", "--config", demoConfig, "--data", t.TempDir()},
		func(k string) string {
			if k == "CTIGATE_LOG_LEVEL" {
				return "loud"
			}
			return ""
		}, nil, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "log.level") {
		t.Errorf("bad CTIGATE_LOG_LEVEL: got %v", err)
	}
}

// selfSigned writes a certificate and key for 127.0.0.1 and returns their
// paths and a pool trusting the certificate.
func selfSigned(t *testing.T) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "ctigate test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

func TestServeTLS(t *testing.T) {
	certFile, keyFile, pool := selfSigned(t)
	env := func(k string) string {
		switch k {
		case "CTIGATE_TLS_CERT_FILE":
			return certFile
		case "CTIGATE_TLS_KEY_FILE":
			return keyFile
		}
		return ""
	}
	gw := startServe(t, env, "--config", demoConfig, "--data", t.TempDir(), "--listen", "127.0.0.1:0")
	if !strings.HasPrefix(gw.base, "https://") {
		t.Fatalf("base %s is not https", gw.base)
	}
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	res, _, err := request(t, client, "GET", gw.base+"/taxii2/", "police", nil)
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("discovery over TLS: %v %v", res, err)
	}
	old := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MaxVersion: tls.VersionTLS11}}}
	if _, _, err := request(t, old, "GET", gw.base+"/taxii2/", "police", nil); err == nil {
		t.Error("a TLS 1.1 client was served")
	}

	// With TLS the gateway may listen on every interface, but not with the
	// demo credentials.
	err = run(context.Background(), []string{"serve", "--config", demoConfig, "--data", t.TempDir(), "--listen", "0.0.0.0:0"}, env, nil, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "demo credentials") {
		t.Errorf("demo credentials on 0.0.0.0: got %v", err)
	}
}

func TestHealthAndReadiness(t *testing.T) {
	gw := startServe(t, nil, "--config", demoConfig, "--data", t.TempDir(), "--listen", "127.0.0.1:0")
	for _, p := range []string{"/healthz", "/readyz"} {
		res, err := http.Get(gw.base + p)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != 200 {
			t.Errorf("%s: %d", p, res.StatusCode)
		}
	}
	var out bytes.Buffer
	if err := run(context.Background(), []string{"health", "--url", gw.base + "/readyz"}, nil, nil, &out, io.Discard); err != nil || !strings.Contains(out.String(), "ready") {
		t.Errorf("ctigate health: %v %q", err, out.String())
	}
	if err := run(context.Background(), []string{"health", "--url", gw.base + "/nope"}, nil, nil, io.Discard, io.Discard); err == nil {
		t.Error("ctigate health succeeded on a 404")
	}
	if err := run(context.Background(), []string{"health", "--url", "https://192.0.2.1/healthz", "--insecure"}, nil, nil, io.Discard, io.Discard); err == nil {
		t.Error("--insecure accepted for a non-loopback address")
	}
}

func TestPasswd(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), []string{"passwd"}, nil, strings.NewReader("correct horse\n"), &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out.String(), "$argon2id$v=19$") {
		t.Errorf("passwd: %q", out.String())
	}
	out.Reset()
	if err := run(context.Background(), []string{"passwd", "--token"}, nil, nil, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "token_sha256: ") {
		t.Errorf("passwd --token: %q", out.String())
	}
	if err := run(context.Background(), []string{"passwd"}, nil, strings.NewReader("short\n"), io.Discard, io.Discard); err == nil {
		t.Error("a 5-character password was hashed")
	}
}

// TestServeHeapLimitLeavesRoomForKeydir: with GOMEMLIMIT unset, serve's
// soft limit on the Go runtime's memory leaves room in memoryBudget for
// the id index's slot tables (outside the heap), and follows them as they
// grow and as the store closes.
func TestServeHeapLimitLeavesRoomForKeydir(t *testing.T) {
	for _, c := range []struct{ slots, want int64 }{
		{0, defaultMemoryLimit},
		{32 << 20, defaultMemoryLimit},
		{64 << 20, memoryBudget - 64<<20},
		{1 << 30, defaultMemoryLimit / 2},
	} {
		if got := heapLimit(c.slots); got != c.want {
			t.Errorf("heapLimit(%d MiB) = %d MiB, want %d MiB", c.slots>>20, got>>20, c.want>>20)
		}
	}
	// With no headroom in the budget, each table the test makes moves
	// the limit.
	defer func(b int64) { memoryBudget = b }(memoryBudget)
	memoryBudget = defaultMemoryLimit
	limit := func() int64 { return debug.SetMemoryLimit(-1) }
	defer debug.SetMemoryLimit(limit())
	// serve turns the collector's target off under a limit: restored
	// with the limit, or the tests after this one would run with neither.
	defer debug.SetGCPercent(debug.SetGCPercent(100))

	gw := startServe(t, nil, "--config", demoConfig, "--data", t.TempDir(), "--listen", "127.0.0.1:0")
	before := bolt.OffHeapBytes()
	if got, want := limit(), heapLimit(before); got != want {
		t.Errorf("at start the limit is %d, want %d (slot tables %d)", got, want, before)
	}
	var env strings.Builder
	env.WriteString(`{"objects":[`)
	for i := range 2000 {
		if i > 0 {
			env.WriteString(",")
		}
		env.WriteString(indicatorJSON(i))
	}
	env.WriteString(`]}`)
	res, body, err := request(t, http.DefaultClient, "POST", gw.base+inboundPath+"objects/", "cert-a", []byte(env.String()))
	if err != nil || res.StatusCode != http.StatusAccepted {
		t.Fatalf("POST: %v %v %s", err, res, body)
	}
	// 2,000 ids need a table of 4,096 slots in the inbound collection at least.
	for deadline := time.Now().Add(10 * time.Second); bolt.OffHeapBytes() < before+4096*4; {
		if time.Now().After(deadline) {
			t.Fatalf("the slot tables hold %d bytes after the push, %d before", bolt.OffHeapBytes(), before)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if got, want := limit(), heapLimit(bolt.OffHeapBytes()); got != want || got >= heapLimit(before) {
		t.Errorf("after the push the limit is %d, want %d, below %d", got, want, heapLimit(before))
	}
	gw.stop(t)
	if got, want := limit(), heapLimit(bolt.OffHeapBytes()); got != want || got <= heapLimit(before+4096*4) {
		t.Errorf("after stopping the limit is %d, want %d", got, want)
	}
}

// Under a memory limit serve leaves collecting to the limit (GOGC=off);
// without one (GOMEMLIMIT=off) it keeps a target relative to the live
// heap, which bounds it. GOGC in the environment wins either way.
func TestServeGCPercent(t *testing.T) {
	for _, c := range []struct {
		limit int64
		want  int
	}{
		{math.MaxInt64, defaultGCPercent},
		{0, defaultGCPercent},
		{defaultMemoryLimit, -1},
		{defaultMemoryLimit / 2, -1},
	} {
		if got := gcPercent(c.limit); got != c.want {
			t.Errorf("gcPercent(%d) = %d, want %d", c.limit, got, c.want)
		}
	}
	percent := func() int { p := debug.SetGCPercent(100); debug.SetGCPercent(p); return p }
	defer debug.SetGCPercent(percent())
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(-1))

	for _, c := range []struct {
		name  string
		env   map[string]string
		limit int64 // the process's limit before serve starts
		want  int
	}{
		{"default", nil, math.MaxInt64, -1},
		{"GOMEMLIMIT=off", map[string]string{"GOMEMLIMIT": "off"}, math.MaxInt64, defaultGCPercent},
		{"GOMEMLIMIT set", map[string]string{"GOMEMLIMIT": "300MiB"}, 300 << 20, -1},
		{"GOGC set", map[string]string{"GOGC": "150"}, math.MaxInt64, 77},
	} {
		t.Run(c.name, func(t *testing.T) {
			debug.SetMemoryLimit(c.limit)
			debug.SetGCPercent(77)
			getenv := func(k string) string { return c.env[k] }
			gw := startServe(t, getenv, "--config", demoConfig, "--data", t.TempDir(), "--listen", "127.0.0.1:0")
			if got := percent(); got != c.want {
				t.Errorf("GOGC while serving = %d, want %d", got, c.want)
			}
			gw.stop(t)
		})
	}
}

// sink keeps the test's garbage from being optimised away.
var sink [][]byte

// With the collector left to the limit, serve collects and returns the
// garbage once the process allocates little; with GOGC set it leaves
// collecting to the runtime.
func TestServeReclaimsWhenIdle(t *testing.T) {
	prev := heapSample{allocs: 1 << 30, objects: 100 << 20, live: 20 << 20}
	for _, c := range []struct {
		name string
		cur  heapSample
		want bool
	}{
		{"idle with garbage", heapSample{allocs: prev.allocs + 1<<20, objects: 100 << 20, live: 20 << 20}, true},
		{"busy", heapSample{allocs: prev.allocs + 64<<20, objects: 100 << 20, live: 20 << 20}, false},
		{"idle, little garbage", heapSample{allocs: prev.allocs + 1<<20, objects: 40 << 20, live: 20 << 20}, false},
	} {
		if got := shouldReclaim(prev, c.cur); got != c.want {
			t.Errorf("%s: shouldReclaim = %v, want %v", c.name, got, c.want)
		}
	}

	defer func(d time.Duration, f func()) { reclaimEvery, onReclaim = d, f }(reclaimEvery, onReclaim)
	reclaimEvery = 50 * time.Millisecond
	var reclaims atomic.Int32
	onReclaim = func() { reclaims.Add(1) }
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(-1))

	garbage := func() {
		for range 64 {
			sink = append(sink, make([]byte, 1<<20))
		}
		sink = nil
	}
	t.Run("GOGC=off", func(t *testing.T) {
		gw := startServe(t, nil, "--config", demoConfig, "--data", t.TempDir(), "--listen", "127.0.0.1:0")
		defer gw.stop(t)
		runtime.GC() // what startup left
		before := reclaims.Load()
		garbage()
		if h := readHeap(); h.objects < h.live+reclaimGarbage {
			t.Fatalf("the heap holds %d bytes with %d live after 64 MiB of garbage: collected without the reclaimer", h.objects, h.live)
		}
		for deadline := time.Now().Add(10 * time.Second); reclaims.Load() == before; {
			if time.Now().After(deadline) {
				t.Fatal("no reclaim within 10 s of idling with 64 MiB of garbage")
			}
			time.Sleep(10 * time.Millisecond)
		}
		if h := readHeap(); h.objects >= h.live+reclaimGarbage {
			t.Errorf("after the reclaim the heap holds %d bytes with %d live", h.objects, h.live)
		}
	})
	t.Run("GOGC set", func(t *testing.T) {
		getenv := func(k string) string { return map[string]string{"GOGC": "100"}[k] }
		gw := startServe(t, getenv, "--config", demoConfig, "--data", t.TempDir(), "--listen", "127.0.0.1:0")
		before := reclaims.Load()
		garbage()
		time.Sleep(300 * time.Millisecond)
		gw.stop(t)
		if n := reclaims.Load() - before; n != 0 {
			t.Errorf("%d reclaims with GOGC set", n)
		}
	})
}
