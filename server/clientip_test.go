package server_test

import (
	"bytes"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-json-experiment/json"

	gw "github.com/ctigate/ctigate/gateway"
	"github.com/ctigate/ctigate/server"
	"github.com/ctigate/ctigate/store/bolt"
)

// logServer is a server logging JSON into logs, with the configuration in
// force in current.
type logServer struct {
	srv     *server.Server
	current *gw.Current
	logs    *bytes.Buffer
}

func newLogServer(t *testing.T, trusted ...string) *logServer {
	t.Helper()
	cfg := testConfig(t)
	cfg.TrustedProxies = trusted
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	st, err := bolt.Open(filepath.Join(t.TempDir(), "ctigate.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	cur, err := gw.NewCurrent(cfg)
	if err != nil {
		t.Fatal(err)
	}
	l := &logServer{current: cur, logs: &bytes.Buffer{}}
	l.srv = server.New(server.Options{Current: cur, Store: st, Auth: authOf(t, cfg), Logger: slog.New(slog.NewJSONHandler(l.logs, nil))})
	return l
}

// client sends GET /taxii2/ as police from peer (host:port) with the
// X-Forwarded-For headers xff, and returns the client address of its
// access-log line.
func (l *logServer) client(t *testing.T, peer string, xff ...string) string {
	t.Helper()
	l.logs.Reset()
	req := httptest.NewRequest(http.MethodGet, "/taxii2/", nil)
	req.RemoteAddr = peer
	req.Header.Set("Accept", "application/taxii+json;version=2.1")
	req.SetBasicAuth("police", "police-pw")
	for _, h := range xff {
		req.Header.Add("X-Forwarded-For", h)
	}
	rec := httptest.NewRecorder()
	l.srv.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		t.Fatalf("GET /taxii2/: %d %s", rec.Code, rec.Body)
	}
	var lines []map[string]any
	for line := range strings.Lines(l.logs.String()) {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if rec["msg"] == "request" {
			lines = append(lines, rec)
		}
	}
	if len(lines) != 1 {
		t.Fatalf("%d access-log lines in:\n%s", len(lines), l.logs)
	}
	if lines[0]["user"] != "police" || lines[0]["route"] != "/taxii2/" {
		t.Errorf("access log line %v", lines[0])
	}
	c, ok := lines[0]["client"].(string)
	if !ok {
		t.Fatalf("the access-log line has no client: %v", lines[0])
	}
	return c
}

// TestAccessLogClient: the access log names the client's address: the
// direct peer's, whatever X-Forwarded-For says, unless the peer is a
// trusted proxy; then the right-most forwarded address that is not a
// trusted proxy. Only the configured ranges are trusted (not loopback or
// private addresses as such), and a reload changes them.
func TestAccessLogClient(t *testing.T) {
	cases := []struct {
		name    string
		trusted []string
		peer    string
		xff     []string
		want    string
	}{
		{"peer", nil, "203.0.113.9:40000", nil, "203.0.113.9"},
		{"IPv6 peer", nil, "[2001:db8::9]:40000", nil, "2001:db8::9"},
		{"no trusted proxies: a forged header is ignored", nil, "203.0.113.9:40000", []string{"192.0.2.1"}, "203.0.113.9"},
		{"loopback is not trusted unless listed", nil, "127.0.0.1:40000", []string{"192.0.2.1"}, "127.0.0.1"},
		{"private is not trusted unless listed", []string{"10.0.0.0/8"}, "192.168.0.1:40000", []string{"192.0.2.1"}, "192.168.0.1"},
		{"untrusted peer: a forged header is ignored", []string{"10.0.0.0/8"}, "203.0.113.9:40000", []string{"10.1.1.1"}, "203.0.113.9"},
		{"trusted proxy", []string{"10.0.0.0/8"}, "10.0.0.2:40000", []string{"192.0.2.1"}, "192.0.2.1"},
		{"trusted proxy, single address", []string{"10.0.0.2"}, "10.0.0.2:40000", []string{"192.0.2.1"}, "192.0.2.1"},
		{"right-most untrusted address", []string{"10.0.0.0/8"}, "10.0.0.2:40000", []string{"198.18.0.66, 192.0.2.1, 10.0.0.3"}, "192.0.2.1"},
		{"several headers", []string{"10.0.0.0/8"}, "10.0.0.2:40000", []string{"198.18.0.66", "192.0.2.1"}, "192.0.2.1"},
		{"a client's forged entry left of the proxy's", []string{"10.0.0.0/8"}, "10.0.0.2:40000", []string{"10.9.9.9, 192.0.2.1"}, "192.0.2.1"},
		{"unreadable entry: the proxy", []string{"10.0.0.0/8"}, "10.0.0.2:40000", []string{"192.0.2.1, not-an-address"}, "10.0.0.2"},
		{"trusted proxy without the header", []string{"10.0.0.0/8"}, "10.0.0.2:40000", nil, "10.0.0.2"},
		{"IPv6 proxy", []string{"2001:db8::/32"}, "[2001:db8::1]:40000", []string{"2001:db9::5"}, "2001:db9::5"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			l := newLogServer(t, c.trusted...)
			if got := l.client(t, c.peer, c.xff...); got != c.want {
				t.Errorf("client %q, want %q", got, c.want)
			}
		})
	}

	// A reload puts new trusted proxies in force from the next request.
	l := newLogServer(t)
	if got := l.client(t, "10.0.0.2:40000", "192.0.2.1"); got != "10.0.0.2" {
		t.Fatalf("before the reload: client %q, want the peer", got)
	}
	cfg := *l.current.Load().Config
	cfg.TrustedProxies = []string{"10.0.0.0/8"}
	if _, err := l.current.Replace(&cfg); err != nil {
		t.Fatal(err)
	}
	if got := l.client(t, "10.0.0.2:40000", "192.0.2.1"); got != "192.0.2.1" {
		t.Errorf("after the reload: client %q, want the forwarded address", got)
	}
}
