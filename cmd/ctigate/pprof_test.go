package main

import (
	"log/slog"
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
	// A loopback listener on a free port starts.
	if err := startPprof(t.Context(), "127.0.0.1:0", log); err != nil {
		t.Fatal(err)
	}
}
