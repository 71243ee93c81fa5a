package bolt

import (
	"path/filepath"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/ctigate/ctigate/store"
	"github.com/ctigate/ctigate/store/storetest"
)

// earlierFile creates an empty bbolt file at path with pages of 4 KiB, as
// builds before filePageSize created them.
func earlierFile(t *testing.T, path string) {
	t.Helper()
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{PageSize: 4096})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestPageSize: the store and the search index create their files with
// pages of filePageSize; a file created with other pages keeps them.
func TestPageSize(t *testing.T) {
	dir := t.TempDir()
	fresh := openTest(t, filepath.Join(dir, "new.db"), Options{NoSync: true})
	if got := fresh.db.Info().PageSize; got != filePageSize {
		t.Errorf("a new store file has pages of %d bytes, want %d", got, filePageSize)
	}
	ix, err := OpenIndex(filepath.Join(dir, "search.db"), IndexOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := ix.db.Info().PageSize; got != filePageSize {
		t.Errorf("a new index file has pages of %d bytes, want %d", got, filePageSize)
	}
	if err := ix.Close(); err != nil {
		t.Fatal(err)
	}

	path := filepath.Join(dir, "earlier.db")
	earlierFile(t, path)
	for range 2 { // a first Open initialises the file, a second reads it
		s, err := Open(path, Options{NoSync: true})
		if err != nil {
			t.Fatal(err)
		}
		if got := s.db.Info().PageSize; got != 4096 {
			t.Errorf("an earlier store file has pages of %d bytes after Open, want its own 4096", got)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestConformanceEarlierPageSize runs the suite on a store file created
// with pages of 4 KiB, as earlier builds created them.
func TestConformanceEarlierPageSize(t *testing.T) {
	storetest.Run(t, func(t *testing.T, clock func() time.Time) (store.Store, func(*testing.T) store.Store) {
		path := filepath.Join(t.TempDir(), "ctigate.db")
		earlierFile(t, path)
		opts := Options{Clock: clock, NoSync: true}
		reopen := func(t *testing.T) store.Store {
			s := openTest(t, path, opts)
			if got := s.db.Info().PageSize; got != 4096 {
				t.Fatalf("pages of %d bytes, want 4096", got)
			}
			return s
		}
		return reopen(t), reopen
	})
}
