package server_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/go-json-experiment/json"

	"github.com/ctigate/ctigate/server"
	"github.com/ctigate/ctigate/store"
	"github.com/ctigate/ctigate/store/bolt"
)

// TestWithdrawnSkipsExpired: the withdrawn list of a collection names the
// versions deleted or withdrawn from it, not those that expired (their
// tombstones retract nothing), and its paging moves past the expired ones,
// also when a whole page of the store holds nothing else.
func TestWithdrawnSkipsExpired(t *testing.T) {
	cfg := testConfig(t)
	st, err := bolt.Open(filepath.Join(t.TempDir(), "ctigate.db"), bolt.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	a := authOf(t, cfg)
	ts := httptest.NewServer(server.New(server.Options{Config: cfg, Store: st, Auth: a}))
	t.Cleanup(ts.Close)

	ctx := context.Background()
	v := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var objs []store.Object
	for i := range 30 {
		raw := indicator(i, "2026-01-01T00:00:00.000Z")
		objs = append(objs, store.Object{ID: "indicator--" + uuidN(i), Type: "indicator", SpecVersion: "2.1", Version: v, Raw: []byte(raw)})
	}
	if _, err := st.AddObjects(ctx, publishedID, objs); err != nil {
		t.Fatal(err)
	}
	// Twenty expired in a row, more than the list reads from the store
	// for one page of one; then a deletion, an expiry, a withdrawal.
	kinds := make([]string, 0, 23)
	for range 20 {
		kinds = append(kinds, store.RemovalExpired)
	}
	kinds = append(kinds, store.RemovalDeleted, store.RemovalExpired, store.RemovalWithdrawn)
	var want []string
	for i, k := range kinds {
		rctx := store.WithRemoval(ctx, store.Removal{Kind: k, Reason: "tlp_red"})
		if _, err := st.DeleteObject(rctx, publishedID, objs[i].ID, nil, nil); err != nil {
			t.Fatal(err)
		}
		switch k {
		case store.RemovalDeleted:
			want = append(want, objs[i].ID+" retracted")
		case store.RemovalWithdrawn:
			want = append(want, objs[i].ID+" withdrawn")
		}
	}

	get := func(after string, limit int) (items []string, more bool, next string) {
		t.Helper()
		q := url.Values{"limit": {fmt.Sprint(limit)}}
		if after != "" {
			q.Set("added_after", after)
		}
		req, _ := http.NewRequest(http.MethodGet, ts.URL+"/api/v1/collections/law-enforcement/withdrawn?"+q.Encode(), nil)
		req.SetBasicAuth("police", "police-pw")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		if res.StatusCode != http.StatusOK {
			t.Fatalf("GET withdrawn: %d %s", res.StatusCode, b)
		}
		var p struct {
			Withdrawn []struct {
				ID     string `json:"id"`
				Reason string `json:"reason"`
			} `json:"withdrawn"`
			More bool   `json:"more"`
			Next string `json:"next"`
		}
		if err := json.Unmarshal(b, &p); err != nil {
			t.Fatalf("decoding %s: %v", b, err)
		}
		if p.Withdrawn == nil {
			t.Fatalf("withdrawn list is null, want an array: %s", b)
		}
		for _, w := range p.Withdrawn {
			items = append(items, w.ID+" "+w.Reason)
		}
		return items, p.More, p.Next
	}

	if got, more, _ := get("", 1000); !slices.Equal(got, want) || more {
		t.Fatalf("withdrawn = %v, more %v; want %v and no more", got, more, want)
	}
	// One at a time: the first page passes over expired versions only.
	var got []string
	after := ""
	for pages := 0; ; pages++ {
		if pages > len(kinds) {
			t.Fatalf("more than %d pages", len(kinds))
		}
		items, more, next := get(after, 1)
		got = append(got, items...)
		if !more {
			break
		}
		if next == "" || next == after {
			t.Fatalf("page %d: more, but next %q after %q", pages, next, after)
		}
		after = next
	}
	if !slices.Equal(got, want) {
		t.Fatalf("withdrawn, one at a time = %v; want %v", got, want)
	}
}
