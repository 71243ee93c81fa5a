package bolt

import (
	"path/filepath"
	"testing"

	"github.com/ctigate/ctigate/store"
	"github.com/ctigate/ctigate/store/storetest"
)

func TestIndexConformance(t *testing.T) {
	storetest.RunIndex(t, func(t *testing.T) (store.Index, store.Store, func(*testing.T) store.Index) {
		dir := t.TempDir()
		st := openTest(t, filepath.Join(dir, "ctigate.db"), Options{NoSync: true})
		var last *Index
		open := func(t *testing.T) store.Index {
			if last != nil {
				if err := last.Close(); err != nil {
					t.Fatal(err)
				}
			}
			ix, err := OpenIndex(filepath.Join(dir, "search.db"), IndexOptions{NoSync: true})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { ix.Close() })
			last = ix
			return ix
		}
		return open(t), st, open
	})
}
