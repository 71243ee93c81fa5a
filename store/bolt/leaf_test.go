package bolt

import (
	"crypto/sha256"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/ctigate/ctigate/store"
)

// TestDeliveryLeaves: a version written with its hash is read back with
// the delivery leaf its page commits to, computed under the file's
// delivery key; a version without a hash, a read without bytes, and a
// version an earlier build wrote (the hash alone) have none, and their
// readers compute it. The key, and so the leaves, survive a reopen, and a
// removal still records the hash.
// It runs on both layouts of a collection (body.go); a hash alone is of
// the earlier one.
func TestDeliveryLeaves(t *testing.T) {
	t.Run("body", func(t *testing.T) { testDeliveryLeaves(t, false) })
	t.Run("raw-hash-producer", func(t *testing.T) { testDeliveryLeaves(t, true) })
}

func testDeliveryLeaves(t *testing.T, legacy bool) {
	path := filepath.Join(t.TempDir(), "ctigate.db")
	const coll = "c1"
	base := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	var objs []store.Object
	for i := range 4 {
		raw := fmt.Appendf(nil, `{"type":"indicator","spec_version":"2.1","id":"indicator--00000000-0000-4000-8000-%012d","created":"2026-12-07T10:00:00.000Z","modified":"2026-12-07T10:00:00.000Z"}`, i)
		o := store.Object{ID: fmt.Sprintf("indicator--00000000-0000-4000-8000-%012d", i), Type: "indicator", SpecVersion: "2.1", Version: base, Raw: raw}
		if i != 3 { // the last one comes without a hash
			o.Hash = sha256.Sum256(raw)
		}
		objs = append(objs, o)
	}

	s, err := Open(path, Options{NoSync: true, legacyLayout: legacy})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.AddObjects(t.Context(), coll, objs); err != nil {
		t.Fatal(err)
	}
	check := func(s *Store, earlier map[string]bool) []store.Object {
		t.Helper()
		salter, err := s.DeliverySalter(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		pl := salter.Page(coll)
		page, err := s.Objects(t.Context(), coll, store.Query{Versions: []store.VersionMatch{{Kind: store.All}}, Limit: 10})
		if err != nil || len(page.Objects) != len(objs) {
			t.Fatalf("page: %d objects, %v", len(page.Objects), err)
		}
		for _, o := range page.Objects {
			switch {
			case o.Hash == ([32]byte{}) || earlier[o.ID]:
				if o.Leaf != ([32]byte{}) {
					t.Errorf("%s (no hash, or written by an earlier build) has a leaf", o.ID)
				}
			default:
				want, err := pl.Leaf(o.ID, o.Version, o.DateAdded, &o.Hash)
				if err != nil {
					t.Fatal(err)
				}
				if o.Leaf != want {
					t.Errorf("%s: stored leaf %x, the salter gives %x", o.ID, o.Leaf, want)
				}
			}
			if i := objIndex(objs, o.ID); (o.Hash != objs[i].Hash) || string(o.Raw) != string(objs[i].Raw) {
				t.Errorf("%s: hash or bytes changed", o.ID)
			}
		}
		manifest, err := s.Objects(t.Context(), coll, store.Query{Versions: []store.VersionMatch{{Kind: store.All}}, Limit: 10, WithoutRaw: true})
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range manifest.Objects {
			if o.Leaf != ([32]byte{}) {
				t.Errorf("%s: a read without bytes returned a leaf", o.ID)
			}
		}
		return page.Objects
	}
	before := check(s, nil)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	// The first version as an earlier build wrote it: its hash alone.
	db, err := bbolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	earlier := map[string]bool{before[0].ID: true}
	err = db.Update(func(tx *bbolt.Tx) error {
		if !legacy {
			earlier = nil
			if tx.Bucket(bucketCollections).Bucket([]byte(coll)).Bucket(bucketRaw) != nil {
				return fmt.Errorf("a new collection has a raw bucket")
			}
			return nil
		}
		h := tx.Bucket(bucketCollections).Bucket([]byte(coll)).Bucket(bucketHash)
		k := dateKey(before[0].DateAdded.UnixMicro())
		v := h.Get(k)
		if len(v) != hashValueLen {
			return fmt.Errorf("hash value of %d bytes, want %d", len(v), hashValueLen)
		}
		return h.Put(k, append([]byte(nil), v[:32]...))
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	s = openTest(t, path, Options{NoSync: true})
	after := check(s, earlier)
	for i := 1; i < 3; i++ {
		if after[i].Leaf != before[i].Leaf {
			t.Errorf("%s: leaf changed across a reopen", after[i].ID)
		}
	}

	// Removals record the hash of either form.
	ctx := store.WithRemoval(t.Context(), store.Removal{Kind: store.RemovalExpired})
	for _, o := range after[:2] {
		if n, err := s.DeleteObject(ctx, coll, o.ID, nil, nil); err != nil || n != 1 {
			t.Fatalf("delete %s: %d, %v", o.ID, n, err)
		}
	}
	tombs, _, err := s.Tombstones(t.Context(), coll, time.Time{}, 10)
	if err != nil || len(tombs) != 2 {
		t.Fatalf("tombstones: %d, %v", len(tombs), err)
	}
	for _, tb := range tombs {
		if tb.Hash != objs[objIndex(objs, tb.ID)].Hash {
			t.Errorf("tombstone of %s: hash %x, want the version's", tb.ID, tb.Hash)
		}
	}
}

func objIndex(objs []store.Object, id string) int {
	for i := range objs {
		if objs[i].ID == id {
			return i
		}
	}
	panic("no object " + id)
}
