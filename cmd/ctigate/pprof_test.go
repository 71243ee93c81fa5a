package main

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"testing"
)

func TestPprofListener(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	if err := startPprof(t.Context(), "", log); err != nil {
		t.Fatalf("unset: %v", err)
	}
	for _, addr := range []string{"0.0.0.0:0", "192.0.2.1:6060", ":6060", "nonsense"} {
		if err := startPprof(t.Context(), addr, log); err == nil {
			t.Errorf("startPprof(%q) = nil, want an error (loopback only)", addr)
		}
	}
	// A loopback listener on a free port starts and serves CPU profiles,
	// heap profiles and execution traces.
	var logged bytes.Buffer
	if err := startPprof(t.Context(), "127.0.0.1:0", slog.New(slog.NewJSONHandler(&logged, nil))); err != nil {
		t.Fatal(err)
	}
	var rec struct{ Addr string }
	if err := json.Unmarshal(logged.Bytes(), &rec); err != nil || rec.Addr == "" {
		t.Fatalf("the listener's address is not logged: %v %q", err, logged.String())
	}
	for path, prefix := range map[string]string{
		"/debug/pprof/trace?seconds=0.05": "go 1.",
		"/debug/pprof/heap":               "\x1f\x8b", // gzipped protobuf
	} {
		res, err := http.Get("http://" + rec.Addr + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusOK || !bytes.HasPrefix(b, []byte(prefix)) {
			t.Errorf("GET %s: %d, %q…", path, res.StatusCode, b[:min(len(b), 16)])
		}
	}
}
