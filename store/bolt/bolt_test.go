package bolt

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/ctigate/ctigate/store"
	"github.com/ctigate/ctigate/store/storetest"
)

// openTest opens a store file in dir for a test and closes it at the end.
func openTest(t *testing.T, path string, opts Options) *Store {
	t.Helper()
	s, err := Open(path, opts)
	if err != nil {
		t.Fatalf("Open(%s): %v", path, err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

func newStore(t *testing.T, clock func() time.Time) (store.Store, func(*testing.T) store.Store) {
	path := filepath.Join(t.TempDir(), "ctigate.db")
	opts := Options{Clock: clock, NoSync: true}
	reopen := func(t *testing.T) store.Store { return openTest(t, path, opts) }
	return reopen(t), reopen
}

func TestConformance(t *testing.T) {
	storetest.Run(t, newStore)
}

// TestConformanceLegacyLayout runs the suite on collections that keep
// their versions in raw, hash and producer buckets, as files written by
// earlier builds do (body.go).
func TestConformanceLegacyLayout(t *testing.T) {
	storetest.Run(t, func(t *testing.T, clock func() time.Time) (store.Store, func(*testing.T) store.Store) {
		path := filepath.Join(t.TempDir(), "ctigate.db")
		opts := Options{Clock: clock, NoSync: true, legacyLayout: true}
		reopen := func(t *testing.T) store.Store { return openTest(t, path, opts) }
		return reopen(t), reopen
	})
}

// TestConformanceScan runs the suite with match[id] answered by scanning the
// collection rather than by the ids' versions.
func TestConformanceScan(t *testing.T) {
	storetest.Run(t, func(t *testing.T, clock func() time.Time) (store.Store, func(*testing.T) store.Store) {
		path := filepath.Join(t.TempDir(), "ctigate.db")
		opts := Options{Clock: clock, NoSync: true}
		reopen := func(t *testing.T) store.Store {
			s := openTest(t, path, opts)
			s.idLookupMax = 0
			return s
		}
		return reopen(t), reopen
	})
}

// TestConformanceSync runs the suite with fsync on, as in production.
func TestConformanceSync(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	storetest.Run(t, func(t *testing.T, clock func() time.Time) (store.Store, func(*testing.T) store.Store) {
		path := filepath.Join(t.TempDir(), "ctigate.db")
		reopen := func(t *testing.T) store.Store { return openTest(t, path, Options{Clock: clock}) }
		return reopen(t), reopen
	})
}
