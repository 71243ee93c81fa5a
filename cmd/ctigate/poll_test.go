package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
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

// lockedBuffer is a bytes.Buffer written and read from several goroutines.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestPollFollowAcrossOutage: poll --follow outlives the gateway being
// down for longer than its requests' own retries last. It says so once,
// keeps trying, and when the gateway is back (same port, same data)
// writes what was pushed before and after the outage, each object exactly
// once.
func TestPollFollowAcrossOutage(t *testing.T) {
	data := t.TempDir()
	gw := startServe(t, nil, "--config", demoConfig, "--data", data, "--listen", "127.0.0.1:0")
	listen := strings.TrimPrefix(gw.base, "http://")
	bg := context.Background()
	push := func(base string, from, to int) {
		t.Helper()
		var lines []string
		for i := from; i < to; i++ {
			lines = append(lines, indicatorJSON(i))
		}
		if out, errs, err := ctl(bg, pushEnv, strings.NewReader(strings.Join(lines, "\n")), nil, "push", "--server", base, "--collection", "cert-a-inbound", "--user", "cert-a", "-"); err != nil {
			t.Fatalf("push: %v\n%s%s", err, out, errs)
		}
	}
	push(gw.base, 0, 5)

	dir := t.TempDir()
	out, state := filepath.Join(dir, "out.jsonl"), filepath.Join(dir, "state.json")
	ctx, cancel := context.WithCancel(bg)
	defer cancel()
	var stderr lockedBuffer
	done := make(chan error, 1)
	go func() {
		// Requests retry 6 times, waiting at most 200 ms: about a second
		// of downtime exhausts them.
		done <- run(ctx, []string{"poll", "--server", gw.base, "--collection", "cert-a-inbound", "--user", "cert-a",
			"--follow", "--interval", "100ms", "--retry-max", "200ms", "--out", out, "--state", state, "--limit", "3"},
			func(k string) string { return pushEnv[k] }, nil, io.Discard, &stderr)
	}()
	written := func() map[string]int {
		b, _ := os.ReadFile(out)
		return readJSONLIDs(t, string(b))
	}
	waitFor(t, "poll writes the first objects", 10*time.Second, func() bool { return len(written()) == 5 })

	// Two more just before the gateway stops (poll may or may not see
	// them before), then an outage of about 3 s.
	push(gw.base, 5, 7)
	gw.stop(t)
	running := func() {
		t.Helper()
		select {
		case err := <-done:
			t.Fatalf("poll --follow ended during the outage: %v\n%s", err, stderr.String())
		default:
		}
	}
	const outage = "the gateway cannot be reached"
	waitFor(t, "poll reports the outage", 10*time.Second, func() bool { running(); return strings.Contains(stderr.String(), outage) })
	time.Sleep(2 * time.Second)
	running()

	gw = startServe(t, nil, "--config", demoConfig, "--data", data, "--listen", listen)
	push(gw.base, 7, 12)
	waitFor(t, "poll writes what was pushed around the outage", 20*time.Second, func() bool { return len(written()) == 12 })
	time.Sleep(300 * time.Millisecond) // a few more runs: nothing more may come
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("poll --follow: %v", err)
	}
	for id, n := range written() {
		if n != 1 {
			t.Errorf("%s written %d times", id, n)
		}
	}
	if n := len(written()); n != 12 {
		t.Errorf("%d objects written, want 12", n)
	}
	log := stderr.String()
	if n := strings.Count(log, outage); n != 1 {
		t.Errorf("the outage reported %d times, want once:\n%s", n, log)
	}
	if n := strings.Count(log, "the gateway answers again"); n != 1 {
		t.Errorf("the return reported %d times, want once:\n%s", n, log)
	}
	noSecrets(t, log)
}
