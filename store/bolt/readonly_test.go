package bolt

import (
	"context"
	"crypto/sha256"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/ctigate/ctigate/custody"
	"github.com/ctigate/ctigate/store"
)

// dirSums returns the SHA-256 of each file in dir by name.
func dirSums(t *testing.T, dir string) map[string][32]byte {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	sums := map[string][32]byte{}
	for _, e := range es {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		sums[e.Name()] = sha256.Sum256(b)
	}
	return sums
}

// TestOpenReadOnly: a read-only store reads a file of the earlier format
// as it is, shares the file with other read-only opens, keeps a writer
// out, fails every write, and leaves the file and its directory exactly
// as they were; a file missing what a writable Open adds is refused,
// unchanged.
func TestOpenReadOnly(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "s.db")
	s, err := Open(path, Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	fillStore(t, s, "c", 300, 50)
	treeEntries(t, s, 0, 10)
	root, err := store.TreeRoot(ctx, s, 10)
	if err != nil {
		t.Fatal(err)
	}
	// As a format 3 build left it: a writable Open would mark it format 4.
	if err := s.db.Update(func(tx *bbolt.Tx) error { return tx.Bucket(bucketMeta).Put(keyFormat, []byte{upgradableFormat}) }); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	before := dirSums(t, dir)

	r1, err := Open(path, Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	r2, err := Open(path, Options{ReadOnly: true})
	if err != nil {
		t.Fatalf("a second read-only open: %v", err)
	}
	p, err := r1.Objects(ctx, "c", store.Query{Limit: 1000})
	if err != nil || len(p.Objects) != 300 || !strings.Contains(string(p.Objects[299].Raw), `"pad":"xxx`) {
		t.Fatalf("read-only Objects: %d objects, %v", len(p.Objects), err)
	}
	if got, err := store.TreeRoot(ctx, r2, 10); err != nil || got != root {
		t.Fatalf("read-only TreeRoot: %s, %v; want %s", got, err, root)
	}
	if _, err := r1.AddObjects(ctx, "c", []store.Object{testObject(1000)}); err == nil {
		t.Error("AddObjects on a read-only store succeeded")
	}
	if _, err := r2.AppendEntries(ctx, []custody.Entry{{Action: custody.Received, User: "u", Collection: "c"}}); err == nil {
		t.Error("AppendEntries on a read-only store succeeded")
	}
	if w, err := Open(path, Options{OpenTimeout: 100 * time.Millisecond}); err == nil {
		w.Close()
		t.Error("a writable Open succeeded while read-only stores had the file")
	}
	if err := r1.Close(); err != nil {
		t.Fatal(err)
	}
	if err := r2.Close(); err != nil {
		t.Fatal(err)
	}
	if after := dirSums(t, dir); !maps.Equal(before, after) {
		t.Errorf("the directory changed under read-only stores: %d files before, %d after, or their bytes", len(before), len(after))
	}

	// A file without a bucket this build adds is refused as it is.
	s = openTest(t, path, Options{NoSync: true})
	if err := s.db.Update(func(tx *bbolt.Tx) error { return tx.DeleteBucket(bucketStatusExpiry) }); err != nil {
		t.Fatal(err)
	}
	s.Close()
	before = dirSums(t, dir)
	if r, err := Open(path, Options{ReadOnly: true}); err == nil || !strings.Contains(err.Error(), "open a copy") {
		if r != nil {
			r.Close()
		}
		t.Errorf("read-only Open of a file lacking a bucket: %v, want a refusal naming what to do", err)
	}
	if after := dirSums(t, dir); !maps.Equal(before, after) {
		t.Error("a refused read-only Open changed the directory")
	}
}
