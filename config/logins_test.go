package config

import (
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/ctigate/ctigate/auth"
)

func TestAuthLimits(t *testing.T) {
	c, err := Load("../configs/ctigate.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Auth != DefaultAuth() {
		t.Errorf("auth section of the demo config %+v, want the defaults", c.Auth)
	}
	want := auth.ThrottleLimits{FailuresPerMinute: 10, AddressFailuresPerMinute: 60, MaxHashes: runtime.NumCPU(),
		MaxQueued: 16, QueueWait: time.Second, MaxTracked: 20000}
	if got := c.Auth.Limits().WithDefaults(); got != want {
		t.Errorf("default limits %+v, want %+v", got, want)
	}
	// A Config not made from Default (zero auth section) takes the
	// defaults too.
	if got := (Auth{}).Limits().WithDefaults(); got != want {
		t.Errorf("zero auth section: limits %+v, want %+v", got, want)
	}

	text := `
auth:
  max_failures_per_minute: 5
  max_address_failures_per_minute: 50
  max_concurrent_hashes: 3
  max_queued_hashes: 8
  hash_queue_wait: 250ms
  max_tracked_clients: 1000
`
	base := demoYAML(t)
	c, err = Parse([]byte(base+text), nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := c.Auth, (Auth{5, 50, 3, 8, 250 * time.Millisecond, 1000}); got != want {
		t.Errorf("parsed %+v, want %+v", got, want)
	}
}

func TestAuthLimitsValidated(t *testing.T) {
	for _, tc := range []struct {
		set  func(a *Auth)
		want string
	}{
		{func(a *Auth) { a.MaxFailuresPerMinute = -1 }, "auth.max_failures_per_minute: must be from 1 to 10000"},
		{func(a *Auth) { a.MaxFailuresPerMinute = 20; a.MaxAddressFailuresPerMinute = 10 }, "auth.max_address_failures_per_minute: must be at least auth.max_failures_per_minute (20)"},
		{func(a *Auth) { a.MaxAddressFailuresPerMinute = 1_000_000 }, "auth.max_address_failures_per_minute: must be from 1 to 100000"},
		{func(a *Auth) { a.MaxConcurrentHashes = -2 }, "auth.max_concurrent_hashes: must be from 0 (the number of CPUs) to 1024"},
		{func(a *Auth) { a.MaxQueuedHashes = -1 }, "auth.max_queued_hashes: must be from 1 to 100000"},
		{func(a *Auth) { a.HashQueueWait = time.Millisecond }, "auth.hash_queue_wait: must be from 10ms to 1m"},
		{func(a *Auth) { a.MaxTrackedClients = 10 }, "auth.max_tracked_clients: must be from 100 to 10000000"},
	} {
		c, err := Load("../configs/ctigate.yaml", nil)
		if err != nil {
			t.Fatal(err)
		}
		tc.set(&c.Auth)
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("got %v, want %q", err, tc.want)
		}
	}
}

// demoYAML is the text of the demo configuration, ending in a newline.
func demoYAML(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("../configs/ctigate.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimRight(string(b), "\n") + "\n"
}
