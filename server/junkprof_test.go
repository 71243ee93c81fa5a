package server_test

import (
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ctigate/ctigate/server"
	"github.com/ctigate/ctigate/store/bolt"
)

func BenchmarkJunkEnvelopeTmp(b *testing.B) {
	cfg := testConfig(b)
	cfg.APIRoots[0].MaxContentLength = 1 << 20
	st, err := bolt.Open(filepath.Join(b.TempDir(), "ctigate.db"), bolt.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	srv := server.New(server.Options{Config: cfg, Store: st, Auth: authOf(b, cfg), Ledger: st})
	junk := `{"objects":[` + strings.Repeat("{},", 99_999) + `{}]}`
	b.ReportAllocs()
	for b.Loop() {
		req := httptest.NewRequest(http.MethodPost, inbound+"objects/", strings.NewReader(junk))
		req.Header.Set("Accept", "application/taxii+json;version=2.1")
		req.Header.Set("Content-Type", "application/taxii+json;version=2.1")
		req.SetBasicAuth("cert-a", "cert-a-pw")
		w := httptest.NewRecorder()
		srv.ServeHTTP(w, req)
		if w.Code != http.StatusAccepted {
			b.Fatal(w.Code)
		}
	}
}
