package config

import (
	"strings"
	"testing"
)

// TestObjectCostLimits: the pattern size and per-object index limits have
// their defaults, are read from the file, and out-of-range values are
// refused naming their keys.
func TestObjectCostLimits(t *testing.T) {
	base := minimalYAML
	c, err := Parse([]byte(base), nil)
	if err != nil {
		t.Fatal(err)
	}
	// The defaults docs/configuration.md gives.
	if c.Ingest.MaxPatternBytes != 65536 || c.Search.MaxObservablesPerObject != 1000 {
		t.Errorf("defaults: ingest %+v, search %+v", c.Ingest, c.Search)
	}
	c, err = Parse([]byte(base+"ingest:\n  max_pattern_bytes: 1024\nsearch:\n  max_observables_per_object: 1\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Ingest.MaxPatternBytes != 1024 || c.Search.MaxObservablesPerObject != 1 {
		t.Errorf("read as ingest %+v, search %+v", c.Ingest, c.Search)
	}
	for extra, want := range map[string]string{
		"ingest:\n  max_pattern_bytes: 1023\n":         "ingest.max_pattern_bytes: must be at least 1024 bytes",
		"ingest:\n  max_pattern_bytes: 0\n":            "ingest.max_pattern_bytes: must be at least 1024 bytes",
		"search:\n  max_observables_per_object: 0\n":   "search.max_observables_per_object: must be at least 1",
		"search:\n  max_observables_per_object: -5\n":  "search.max_observables_per_object: must be at least 1",
		"ingest:\n  max_pattern_bytez: 100000\n":       "ingest.max_pattern_bytez",
		"search:\n  max_observables_per_objects: 10\n": "search.max_observables_per_objects",
	} {
		_, err := Parse([]byte(base+extra), nil)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: got %v, want an error with %q", extra, err, want)
		}
	}
}
