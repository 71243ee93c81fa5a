package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// cancelWriter cancels its context on the first write (after keeping it).
type cancelWriter struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	cancel context.CancelFunc
}

func (w *cancelWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.cancel()
	return w.buf.Write(p)
}

func TestPollInterruptedResumes(t *testing.T) {
	gw := startServe(t, nil, "--config", demoConfig, "--data", t.TempDir(), "--listen", "127.0.0.1:0")
	const n = 25
	var lines []string
	for i := range n {
		lines = append(lines, indicatorJSON(i))
	}
	bg := context.Background()
	if out, errs, err := ctl(bg, pushEnv, strings.NewReader(strings.Join(lines, "\n")), nil, "push", "--server", gw.base, "--collection", "cert-a-inbound", "--user", "cert-a", "-"); err != nil {
		t.Fatalf("push: %v\n%s%s", err, out, errs)
	}
	state := filepath.Join(t.TempDir(), "state.json")
	args := []string{"poll", "--server", gw.base + "/taxii2/", "--collection", "24f70a31-7be5-4fdd-8353-9784877646c1", "--user", "cert-a", "--state", state, "--limit", "10"}

	ctx, cancel := context.WithCancel(bg)
	cw := &cancelWriter{cancel: cancel}
	_, errs, err := ctl(ctx, pushEnv, nil, cw, args...)
	if err == nil {
		t.Fatalf("interrupted poll returned no error:\n%s", errs)
	}
	first := readJSONLIDs(t, cw.buf.String())
	if len(first) != 10 {
		t.Fatalf("interrupted poll wrote %d objects, want the first page (10)", len(first))
	}
	if b, err := os.ReadFile(state); err != nil || !strings.Contains(string(b), "added_after") {
		t.Fatalf("state after interruption: %s %v", b, err)
	}

	out, errs, err := ctl(bg, pushEnv, nil, nil, args...)
	if err != nil {
		t.Fatalf("resumed poll: %v\n%s", err, errs)
	}
	noSecrets(t, out, errs)
	all := readJSONLIDs(t, cw.buf.String()+out)
	if len(all) != n {
		t.Fatalf("got %d distinct objects, want %d", len(all), n)
	}
	for id, c := range all {
		if c != 1 {
			t.Errorf("%s delivered %d times", id, c)
		}
	}

	// Bundle output: one complete bundle of everything when run without state.
	bundle := filepath.Join(t.TempDir(), "out.json")
	if _, errs, err := ctl(bg, pushEnv, nil, nil, "poll", "--server", gw.base, "--collection", "cert-a-inbound", "--user", "cert-a", "--format", "bundle", "--out", bundle, "--limit", "7"); err != nil {
		t.Fatalf("bundle poll: %v\n%s", err, errs)
	}
	b, _ := os.ReadFile(bundle)
	if !bytes.HasPrefix(b, []byte(`{"type":"bundle","id":"bundle--`)) || bytes.Count(b, []byte(`"type":"indicator"`)) != n {
		t.Fatalf("bundle: %.300s", b)
	}
}

func TestPollFollowStopsOnCancel(t *testing.T) {
	gw := startServe(t, nil, "--config", demoConfig, "--data", t.TempDir(), "--listen", "127.0.0.1:0")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	var out bytes.Buffer
	go func() {
		_, _, err := ctl(ctx, pushEnv, nil, &out, "poll", "--server", gw.base, "--collection", "cert-a-inbound", "--user", "cert-a", "--follow", "--interval", "20ms")
		done <- err
	}()
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("follow after cancel: %v", err)
	}
}
