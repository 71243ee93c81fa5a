package server

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
)

// TestOpenAPIDescribesEveryRoute: the OpenAPI document parses, is OpenAPI
// 3, and describes every /api/v1 route of the route table with its method,
// and nothing the route table does not serve; authenticated operations
// describe the login throttle's answers.
func TestOpenAPIDescribesEveryRoute(t *testing.T) {
	var doc struct {
		OpenAPI string                               `json:"openapi"`
		Paths   map[string]map[string]jsontext.Value `json:"paths"`
	}
	if err := json.Unmarshal(openAPI, &doc); err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.") {
		t.Errorf("openapi = %q, want 3.x", doc.OpenAPI)
	}
	e := (&Server{log: slog.New(slog.DiscardHandler), now: time.Now}).routeTable()
	served := map[string]bool{}
	for _, r := range e.Routes() {
		if !strings.HasPrefix(r.Path, "/api/v1/") {
			continue
		}
		path := openAPIPath(r.Path)
		served[strings.ToLower(r.Method)+" "+path] = true
		if _, ok := doc.Paths[path][strings.ToLower(r.Method)]; !ok {
			t.Errorf("route %s %s is not described in openapi.json", r.Method, r.Path)
		}
	}
	if len(served) == 0 {
		t.Fatal("no /api/v1 routes found")
	}
	for p, ops := range doc.Paths {
		for m := range ops {
			if !served[m+" "+p] {
				t.Errorf("openapi.json describes %s %s, which is not served", m, p)
			}
		}
	}
	// An operation that authenticates says that logins are throttled
	// (429) and may find no hash slot (503).
	for p, ops := range doc.Paths {
		for m, raw := range ops {
			var op struct {
				Responses map[string]jsontext.Value `json:"responses"`
			}
			if err := json.Unmarshal(raw, &op); err != nil {
				t.Fatalf("%s %s: %v", m, p, err)
			}
			if _, ok := op.Responses["401"]; !ok {
				continue
			}
			for _, code := range []string{"429", "503"} {
				if _, ok := op.Responses[code]; !ok {
					t.Errorf("%s %s answers 401 but does not describe %s", m, p, code)
				}
			}
		}
	}
	// Served as JSON without credentials.
	rec := httptest.NewRecorder()
	e.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/api/v1/openapi.json", nil))
	if rec.Code != http.StatusOK || !strings.HasPrefix(rec.Header().Get("Content-Type"), "application/json") || rec.Body.Len() != len(openAPI) {
		t.Errorf("GET /api/v1/openapi.json: %d %q, %d bytes", rec.Code, rec.Header().Get("Content-Type"), rec.Body.Len())
	}
}

// openAPIPath writes echo's path parameters (":object") as OpenAPI's
// ("{object}").
func openAPIPath(p string) string {
	parts := strings.Split(p, "/")
	for i, s := range parts {
		if name, ok := strings.CutPrefix(s, ":"); ok {
			parts[i] = "{" + name + "}"
		}
	}
	return strings.Join(parts, "/")
}
