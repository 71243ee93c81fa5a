package server_test

import (
	"bytes"
	"encoding/base64"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/ctigate/ctigate/auth"
	"github.com/ctigate/ctigate/config"
	"github.com/ctigate/ctigate/server"
	"github.com/ctigate/ctigate/store/bolt"
)

// Test topology: one API root with an inbound collection (cert-a writes,
// cert-a reads), a published one (police reads, cert-a writes) and a closed
// one nobody in the test may use.
const (
	inboundID   = "24f70a31-7be5-4fdd-8353-9784877646c1"
	publishedID = "1dae5e88-4b59-4503-a9cf-2e649dd6544c"
	closedID    = "0b5e1f5c-3d5c-4d7e-9d44-6a1b2c3d4e5f"
	testToken   = "ctg_test-token-for-police-0123456789"
)

var (
	hashOnce sync.Once
	hashes   map[string]string
)

func passwordHashes(t testing.TB) map[string]string {
	t.Helper()
	hashOnce.Do(func() {
		hashes = map[string]string{}
		for _, u := range []string{"cert-a", "police", "outsider"} {
			h, err := auth.HashPassword(u + "-pw")
			if err != nil {
				panic(err)
			}
			hashes[u] = h
		}
	})
	return hashes
}

func testConfig(t testing.TB) *config.Config {
	t.Helper()
	h := passwordHashes(t)
	c := config.Default()
	c.Paging = config.Paging{DefaultLimit: 100, MaxLimit: 500}
	c.Discovery = config.Discovery{Title: "test gateway", Default: "exchange"}
	c.APIRoots = []config.APIRoot{{
		Name: "exchange", Title: "Exchange", MaxContentLength: 64 << 10,
		Collections: []config.Collection{
			{ID: inboundID, Alias: "csirt-inbound", Title: "Inbound", Writers: []string{"role:producer"}, Readers: []string{"role:producer"}},
			{ID: publishedID, Alias: "law-enforcement", Title: "Law enforcement", Writers: []string{"cert-a"}, Readers: []string{"org:National Police"}},
			{ID: closedID, Title: "Closed", Readers: []string{"nobody"}},
		},
	}}
	c.Users = []config.User{
		{Name: "cert-a", Organisation: "CERT-A", Roles: []string{"producer"}, PasswordHash: h["cert-a"]},
		{Name: "police", Organisation: "National Police", Roles: []string{"consumer"}, PasswordHash: h["police"], TokenSHA256: []string{auth.TokenDigest(testToken)}},
		{Name: "outsider", Organisation: "Elsewhere", Roles: []string{"consumer"}, PasswordHash: h["outsider"]},
		{Name: "nobody", Organisation: "Nowhere", TokenSHA256: []string{auth.TokenDigest("unused-token-unused-token")}},
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	return &c
}

type gateway struct {
	t   *testing.T
	URL string // base URL, no trailing slash
}

// newGateway starts the server over a real bbolt file on a real listener.
// Options adjust the test configuration first.
func newGateway(t *testing.T, options ...func(*config.Config)) *gateway {
	t.Helper()
	cfg := testConfig(t)
	for _, o := range options {
		o(cfg)
	}
	st, err := bolt.Open(filepath.Join(t.TempDir(), "ctigate.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	a := authOf(t, cfg)
	srv := server.New(server.Options{Config: cfg, Store: st, Auth: a})
	ts := httptest.NewServer(srv)
	t.Cleanup(func() {
		ts.Close()
		if err := st.Close(); err != nil {
			t.Error(err)
		}
	})
	return &gateway{t: t, URL: ts.URL}
}

type response struct {
	Status int
	Header http.Header
	Body   []byte
}

// do sends a request as user (password user+"-pw"; "" for none).
func (g *gateway) do(method, path, user string, body []byte, header ...string) response {
	g.t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, g.URL+path, rd)
	if err != nil {
		g.t.Fatal(err)
	}
	req.Header.Set("Accept", "application/taxii+json;version=2.1")
	if body != nil {
		req.Header.Set("Content-Type", "application/taxii+json;version=2.1")
	}
	if user != "" {
		req.SetBasicAuth(user, user+"-pw")
	}
	for i := 0; i+1 < len(header); i += 2 {
		if header[i+1] == "" {
			req.Header.Del(header[i])
		} else {
			req.Header.Set(header[i], header[i+1])
		}
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		g.t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		g.t.Fatal(err)
	}
	return response{Status: res.StatusCode, Header: res.Header, Body: b}
}

func (g *gateway) get(path, user string, header ...string) response {
	g.t.Helper()
	return g.do(http.MethodGet, path, user, nil, header...)
}

func (g *gateway) post(path, user string, body []byte, header ...string) response {
	g.t.Helper()
	return g.do(http.MethodPost, path, user, body, header...)
}

// expect checks the status and the TAXII content type and decodes the body.
func (r response) expect(t *testing.T, status int, v any) {
	t.Helper()
	if r.Status != status {
		t.Fatalf("status: got %d, want %d; body: %.300s", r.Status, status, r.Body)
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/taxii+json;version=2.1" {
		t.Fatalf("Content-Type: got %q, want application/taxii+json;version=2.1", ct)
	}
	if v != nil {
		if err := json.Unmarshal(r.Body, v); err != nil {
			t.Fatalf("decoding %.300s: %v", r.Body, err)
		}
	}
}

// taxiiErr is the TAXII error message resource.
type taxiiErr struct {
	Title       string `json:"title"`
	Description string `json:"description"`
	HTTPStatus  string `json:"http_status"`
}

// expectError checks that r is a TAXII error with status and returns it.
func (r response) expectError(t *testing.T, status int) taxiiErr {
	t.Helper()
	var e taxiiErr
	r.expect(t, status, &e)
	if e.Title == "" || e.HTTPStatus != strconv.Itoa(status) {
		t.Fatalf("error resource: got %+v from %s, want title and http_status %d", e, r.Body, status)
	}
	return e
}

func fmtInt(n int) string { return strconv.Itoa(n) }

type envelope struct {
	More    bool             `json:"more"`
	Next    string           `json:"next"`
	Objects []jsontext.Value `json:"objects"`
}

type status struct {
	ID           string   `json:"id"`
	Status       string   `json:"status"`
	TotalCount   int      `json:"total_count"`
	SuccessCount int      `json:"success_count"`
	FailureCount int      `json:"failure_count"`
	PendingCount int      `json:"pending_count"`
	Successes    []detail `json:"successes"`
	Failures     []detail `json:"failures"`
}

type detail struct {
	ID      string `json:"id"`
	Version string `json:"version"`
	Message string `json:"message"`
}

func basic(user, pw string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pw))
}

// Paths.
const (
	root      = "/exchange/"
	inbound   = root + "collections/" + inboundID + "/"
	published = root + "collections/" + publishedID + "/"
)

// indicator returns a valid indicator with the given uuid suffix and
// modified time.
func indicator(n int, modified string) string {
	return `{"type":"indicator","spec_version":"2.1","id":"indicator--` + uuidN(n) + `",` +
		`"created":"2026-01-01T00:00:00.000Z","modified":"` + modified + `",` +
		`"pattern":"[ipv4-addr:value = '198.51.100.` + fmtInt(n%250) + `']","pattern_type":"stix","valid_from":"2026-01-01T00:00:00Z"}`
}

func uuidN(n int) string {
	s := fmtInt(n)
	return "6ba7b810-9dad-41d1-80b4-" + strings.Repeat("0", 12-len(s)) + s
}

func env(objs ...string) []byte {
	return []byte(`{"objects":[` + strings.Join(objs, ",") + `]}`)
}

// postInProcess posts body to the inbound collection as cert-a, through
// h without a network, and returns the response.
func postInProcess(h http.Handler, body string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodPost, inbound+"objects/", strings.NewReader(body))
	req.Header.Set("Accept", "application/taxii+json;version=2.1")
	req.Header.Set("Content-Type", "application/taxii+json;version=2.1")
	req.SetBasicAuth("cert-a", "cert-a-pw")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	return w
}
