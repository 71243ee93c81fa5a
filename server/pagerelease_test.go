package server_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/ctigate/ctigate/server"
	"github.com/ctigate/ctigate/store"
	"github.com/ctigate/ctigate/store/bolt"
)

// releaseCounter is the embedded store, counting the pages released.
type releaseCounter struct {
	*bolt.Store
	released atomic.Int32
}

func (s *releaseCounter) Objects(ctx context.Context, coll string, q store.Query) (store.Page, error) {
	p, err := s.Store.Objects(ctx, coll, q)
	inner := p
	return p.WithRelease(func() { s.released.Add(1); inner.Release() }), err
}

// TestPagesReleasedAfterWrite: a page read over HTTP/1.1 is released to
// the store once written, and its response is whole; over HTTP/2, where
// a write cut short may still be in flight after the handler returns, it
// is not.
func TestPagesReleasedAfterWrite(t *testing.T) {
	cfg := testConfig(t)
	bs, err := bolt.Open(filepath.Join(t.TempDir(), "ctigate.db"), bolt.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bs.Close() })
	st := &releaseCounter{Store: bs}
	srv := server.New(server.Options{Config: cfg, Auth: authOf(t, cfg), Store: st, Ledger: bs})
	get := func(protoMajor int) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodGet, inbound+"objects/", nil)
		req.ProtoMajor, req.ProtoMinor = protoMajor, 0
		req.Header.Set("Accept", "application/taxii+json;version=2.1")
		req.SetBasicAuth("cert-a", "cert-a-pw")
		w := httptest.NewRecorder()
		srv.ServeHTTP(w, req)
		return w
	}
	objs := []string{indicator(1, "2026-01-02T00:00:00.000Z"), indicator(2, "2026-01-02T00:00:00.000Z")}
	if w := postInProcess(srv, string(env(objs...))); w.Code != http.StatusAccepted {
		t.Fatalf("POST: %d %s", w.Code, w.Body)
	}
	st.released.Store(0)

	w := get(1)
	if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), `"objects":[`+objs[0]+`,`+objs[1]+`]`) {
		t.Fatalf("GET over HTTP/1.1: %d %s", w.Code, w.Body)
	}
	if n := st.released.Load(); n != 1 {
		t.Errorf("over HTTP/1.1: %d pages released, want 1", n)
	}
	w = get(2)
	if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), objs[1]) {
		t.Fatalf("GET over HTTP/2: %d %s", w.Code, w.Body)
	}
	if n := st.released.Load(); n != 1 {
		t.Errorf("over HTTP/2: %d pages released in all, want the HTTP/1.1 one only", n)
	}
}
