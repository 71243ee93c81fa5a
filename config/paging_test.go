package config

import (
	"strings"
	"testing"
	"time"
)

// TestPagingBytes: the byte bounds of pages and the page write timeout
// have their defaults, are read from the file, zero in a configuration
// built in code means the default, and values that could not work are
// refused naming their keys.
func TestPagingBytes(t *testing.T) {
	base := minimalYAML
	c, err := Parse([]byte(base), nil)
	if err != nil {
		t.Fatal(err)
	}
	want := Paging{DefaultLimit: 1000, MaxLimit: 10000, MaxBytes: 8 << 20, InflightBytes: 64 << 20, UserInflightBytes: 16 << 20, WriteTimeout: time.Minute}
	if c.Paging != want {
		t.Errorf("defaults: %+v, want %+v", c.Paging, want)
	}
	if got := (Paging{DefaultLimit: 1, MaxLimit: 2}).WithDefaults(); got != (Paging{DefaultLimit: 1, MaxLimit: 2, MaxBytes: 8 << 20,
		InflightBytes: 64 << 20, UserInflightBytes: 16 << 20, WriteTimeout: time.Minute}) {
		t.Errorf("zero bounds with defaults: %+v", got)
	}
	c, err = Parse([]byte(base+"paging:\n  max_bytes: 1048576\n  user_inflight_bytes: 2097152\n  inflight_bytes: 4194304\n  write_timeout: 5s\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if p := c.Paging; p.MaxBytes != 1<<20 || p.UserInflightBytes != 2<<20 || p.InflightBytes != 4<<20 || p.WriteTimeout != 5*time.Second {
		t.Errorf("read as %+v", p)
	}
	for extra, want := range map[string]string{
		"paging:\n  max_bytes: -1\n":                                 "paging.max_bytes: must not be negative",
		"paging:\n  inflight_bytes: -1\n":                            "paging.inflight_bytes: must not be negative",
		"paging:\n  max_bytes: 33554432\n":                           "paging.max_bytes: must be at most paging.user_inflight_bytes (16777216)",
		"paging:\n  user_inflight_bytes: 134217728\n":                "paging.user_inflight_bytes: must be at most paging.inflight_bytes (67108864)",
		"paging:\n  write_timeout: 10ms\n":                           "paging.write_timeout: must be at least 1s",
		"paging:\n  max_bytez: 1\n":                                  "paging.max_bytez",
		"paging:\n  max_bytes: 1048576\n  inflight_bytes: 1048576\n": "paging.user_inflight_bytes: must be at most paging.inflight_bytes (1048576)",
	} {
		_, err := Parse([]byte(base+extra), nil)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: got %v, want an error with %q", extra, err, want)
		}
	}
}
