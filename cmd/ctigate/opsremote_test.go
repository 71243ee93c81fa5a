package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestServeOpsRemote: serve refuses to put the unauthenticated operations
// listener on every interface unless ops.allow_remote says so, naming the
// setting, and serves it there when it does.
func TestServeOpsRemote(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	env := func(k string) string {
		if k == "CTIGATE_OPS_LISTEN" {
			return "0.0.0.0:0"
		}
		return ""
	}
	err := run(ctx, []string{"serve", "--config", demoConfig, "--data", t.TempDir(), "--listen", "127.0.0.1:0"}, env, nil, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), `ops.listen: "0.0.0.0:0" is not a loopback address`) || !strings.Contains(err.Error(), "ops.allow_remote: true") {
		t.Fatalf("serve with ops on 0.0.0.0: got %v, want a refusal naming ops.allow_remote", err)
	}

	demo, err := os.ReadFile(demoConfig)
	if err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(t.TempDir(), "ctigate.yaml")
	if err := os.WriteFile(cfg, append(demo, "\nops:\n  allow_remote: true\n"...), 0o600); err != nil {
		t.Fatal(err)
	}
	gw := startServe(t, env, "--config", cfg, "--data", t.TempDir(), "--listen", "127.0.0.1:0")
	u, err := url.Parse(gw.ops)
	if err != nil {
		t.Fatal(err)
	}
	if ip := net.ParseIP(u.Hostname()); ip == nil || !ip.IsUnspecified() {
		t.Fatalf("operations listener at %s, want every interface", gw.ops)
	}
	res, err := http.Get("http://127.0.0.1:" + u.Port() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Errorf("/healthz: %d", res.StatusCode)
	}
}
