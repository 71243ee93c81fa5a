package server_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-json-experiment/json"

	"github.com/ctigate/ctigate/auth"
	"github.com/ctigate/ctigate/config"
	"github.com/ctigate/ctigate/search"
	"github.com/ctigate/ctigate/server"
	"github.com/ctigate/ctigate/store"
	"github.com/ctigate/ctigate/store/bolt"
)

const analystToken = "ctg_test-token-for-analyst-0123456789"

// searchGateway is the test topology with an analyst who may read the
// published collection, the same indicator stored in the inbound and the
// published collections, and the index built.
func searchGateway(t testing.TB, withSearch bool) http.Handler {
	t.Helper()
	cfg := testConfig(t)
	cfg.APIRoots[0].Collections[1].Readers = append(cfg.APIRoots[0].Collections[1].Readers, "role:analyst")
	cfg.Users = append(cfg.Users, config.User{Name: "analyst", Organisation: "CERT-A", Roles: []string{"analyst"}, TokenSHA256: []string{auth.TokenDigest(analystToken)}})
	st, err := bolt.Open(filepath.Join(t.TempDir(), "ctigate.db"), bolt.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	ix, err := bolt.OpenIndex(filepath.Join(t.TempDir(), "search.db"), bolt.IndexOptions{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ix.Close() })
	sst := search.Join(st, ix)
	raw := `{"type":"indicator","spec_version":"2.1","id":"indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f","created":"2026-01-01T00:00:00.000Z","modified":"2026-01-01T00:00:00.000Z",` +
		`"pattern":"[ipv4-addr:value = '198.51.100.0/24'] OR [domain-name:value = 'x.example']","pattern_type":"stix","valid_from":"2026-01-01T00:00:00Z"}`
	for _, c := range []string{inboundID, publishedID, closedID} {
		if _, err := st.AddObjects(t.Context(), c, []store.Object{{ID: "indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f", Type: "indicator", SpecVersion: "2.1", Raw: []byte(raw)}}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := search.NewIndexer(search.IndexerOptions{Store: sst, Collections: []string{inboundID, publishedID, closedID}}).RunOnce(t.Context()); err != nil {
		t.Fatal(err)
	}
	a := authOf(t, cfg)
	opts := server.Options{Config: cfg, Store: st, Auth: a}
	if withSearch {
		opts.Search = search.NewSearcher(sst)
	}
	return server.New(opts)
}

func searchAs(h http.Handler, token, rawQuery string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodGet, "/api/v1/search", nil)
	req.URL.RawQuery = rawQuery
	req.Header.Set("Authorization", "Bearer "+token)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	return w
}

type searchBody struct {
	Hits []struct {
		ID         string `json:"id"`
		Collection struct {
			ID string `json:"id"`
		} `json:"collection"`
	} `json:"hits"`
}

func TestSearchReadableOnly(t *testing.T) {
	h := searchGateway(t, true)
	for _, q := range []string{"value=198.51.100.9", "value=x.example", "value=198.51.0.0/16"} {
		w := searchAs(h, analystToken, q)
		var b searchBody
		if w.Code != http.StatusOK || json.Unmarshal(w.Body.Bytes(), &b) != nil {
			t.Fatalf("?%s: %d %s", q, w.Code, w.Body)
		}
		want := 1
		if q == "value=198.51.0.0/16" {
			want = 0 // a network holding the pattern's is not held by it
		}
		if len(b.Hits) != want || (want == 1 && b.Hits[0].Collection.ID != publishedID) {
			t.Errorf("?%s: hits %+v, want %d in %s only", q, b.Hits, want, publishedID)
		}
	}
	// A consumer who may read the published collection is no analyst.
	if w := searchAs(h, testToken, "value=x.example"); w.Code != http.StatusForbidden {
		t.Errorf("police: %d %s", w.Code, w.Body)
	}
	if w := searchAs(searchGateway(t, false), analystToken, "value=x.example"); w.Code != http.StatusServiceUnavailable || !strings.Contains(w.Body.String(), `"title"`) {
		t.Errorf("without a searcher: %d %s", w.Code, w.Body)
	}
}

// FuzzSearchQuery: hostile query strings get 200 or a 400 TAXII error,
// never a server error, and never a hit outside what the analyst may read.
func FuzzSearchQuery(f *testing.F) {
	for _, s := range []string{"value=198.51.100.9", "value=x.example&type=indicator,malware&tlp=none", "value=%00", "value=::ffff:198.51.100.1",
		"value=1.2.3.4&limit=999999999999999999999", "value=x&next=eA", "value=a@b&added_after=2026-01-01T00:00:00Z&label=x&producer=y"} {
		f.Add(s)
	}
	h := searchGateway(f, true)
	f.Fuzz(func(t *testing.T, raw string) {
		if _, err := url.ParseQuery(raw); err != nil {
			return
		}
		w := searchAs(h, analystToken, raw)
		switch w.Code {
		case http.StatusOK:
			var b searchBody
			if err := json.Unmarshal(w.Body.Bytes(), &b); err != nil {
				t.Fatalf("200 with %v: %s", err, w.Body)
			}
			for _, hit := range b.Hits {
				if hit.Collection.ID != publishedID {
					t.Fatalf("hit in %s", hit.Collection.ID)
				}
			}
		case http.StatusBadRequest, http.StatusRequestEntityTooLarge:
			if !strings.Contains(w.Body.String(), `"http_status"`) {
				t.Fatalf("%d without a TAXII error: %s", w.Code, w.Body)
			}
		default:
			t.Fatalf("?%s: %d %s", raw, w.Code, w.Body)
		}
	})
}
