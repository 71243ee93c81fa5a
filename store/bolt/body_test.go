package bolt

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/ctigate/ctigate/store"
)

// TestDecodeBody: body values round-trip with and without a hash and a
// producer, and a value that is not one fails with errCorrupt.
func TestDecodeBody(t *testing.T) {
	hash := bytes.Repeat([]byte{7}, 32)
	raw := []byte(`{"type":"indicator"}`)
	for _, hs := range [][]byte{nil, hash} {
		for _, prod := range []string{"", "CERT-A", string(bytes.Repeat([]byte{'p'}, 300))} {
			buf := []byte("prefix")
			buf, body, hv := appendBody(buf, hs, prod, raw)
			if !bytes.HasPrefix(buf, []byte("prefix")) || !bytes.HasSuffix(buf, body) {
				t.Fatalf("appendBody did not append")
			}
			if (hv == nil) != (hs == nil) || (hv != nil && (len(hv) != hashValueLen || !bytes.Equal(hv[:32], hash) || &hv[0] != &body[1])) {
				t.Fatalf("hash value %x within %x", hv, body)
			}
			ghv, gp, graw, err := decodeBody(body)
			if err != nil || !bytes.Equal(ghv, hv) || string(gp) != prod || !bytes.Equal(graw, raw) {
				t.Fatalf("decodeBody(%x) = %x, %q, %q, %v", body, ghv, gp, graw, err)
			}
		}
	}
	for name, v := range map[string][]byte{
		"empty":             nil,
		"unknown flag":      {4, '{', '}'},
		"no bytes":          {0},
		"short hash":        append([]byte{bodyHash}, make([]byte, hashValueLen-1)...),
		"hash, no bytes":    append([]byte{bodyHash}, make([]byte, hashValueLen)...),
		"bad length":        {bodyProducer, 0x80},
		"empty producer":    {bodyProducer, 0, '{', '}'},
		"long producer":     {bodyProducer, 9, 'C', '{', '}'},
		"producer no bytes": {bodyProducer, 1, 'C'},
	} {
		if _, _, _, err := decodeBody(v); !errors.Is(err, errCorrupt) {
			t.Errorf("%s: decodeBody(%x): %v, want errCorrupt", name, v, err)
		}
	}
}

// FuzzDecodeBody: decodeBody never panics, and what it accepts reads the
// same once appendBody has written its parts again (a length may be
// spelt in more bytes than appendBody uses).
func FuzzDecodeBody(f *testing.F) {
	_, b, _ := appendBody(nil, bytes.Repeat([]byte{1}, 32), "CERT-A", []byte("{}"))
	f.Add(b)
	f.Add([]byte{0, '{'})
	f.Add([]byte{bodyProducer, 2, 'A'})
	f.Fuzz(func(t *testing.T, v []byte) {
		hv, p, raw, err := decodeBody(v)
		if err != nil {
			return
		}
		_, again, _ := appendBody(nil, hv, string(p), raw)
		hv2, p2, raw2, err := decodeBody(again)
		if err != nil || !bytes.Equal(hv2, hv) || !bytes.Equal(p2, p) || !bytes.Equal(raw2, raw) || len(again) > len(v) {
			t.Fatalf("decodeBody(%x) = %x %q %q; written again %x reads %x %q %q, %v", v, hv, p, raw, again, hv2, p2, raw2, err)
		}
	})
}

// TestBodyLayoutMixed: a collection an earlier build created keeps its
// raw, hash and producer buckets when this build writes to it, while a
// new collection of the same file gets a body bucket alone; both read
// back every version whole (bytes, hash, leaf, producer), and removing a
// version of either leaves nothing of it behind.
func TestBodyLayoutMixed(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.db")
	base := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	objs := func(from, n int, prod string) []store.Object {
		var out []store.Object
		for i := from; i < from+n; i++ {
			id := fmt.Sprintf("indicator--00000000-0000-4000-8000-%012d", i)
			raw := fmt.Appendf(nil, `{"type":"indicator","spec_version":"2.1","id":%q,"created":"2026-12-07T10:00:00.000Z","modified":"2026-12-07T10:00:00.000Z"}`, id)
			o := store.Object{ID: id, Type: "indicator", SpecVersion: "2.1", Version: base, Raw: raw, Producer: prod}
			if i%3 != 0 {
				o.Hash = sha256.Sum256(raw)
			}
			out = append(out, o)
		}
		return out
	}
	ctx := t.Context()
	s, err := Open(path, Options{NoSync: true, legacyLayout: true})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]store.Object{}
	add := func(s *Store, coll string, os []store.Object) {
		t.Helper()
		if _, err := s.AddObjects(ctx, coll, os); err != nil {
			t.Fatal(err)
		}
		for _, o := range os {
			want[coll+" "+o.ID] = o
		}
	}
	add(s, "old", objs(0, 10, "CERT-A"))
	s.Close()

	s = openTest(t, path, Options{NoSync: true})
	add(s, "old", objs(10, 10, "CERT-B"))
	add(s, "new", objs(0, 10, ""))
	add(s, "new", objs(10, 10, "CERT-B"))
	buckets := func(coll string) (names []string) {
		t.Helper()
		err := s.db.View(func(tx *bbolt.Tx) error {
			return tx.Bucket(bucketCollections).Bucket([]byte(coll)).ForEachBucket(func(k []byte) error {
				names = append(names, string(k))
				return nil
			})
		})
		if err != nil {
			t.Fatal(err)
		}
		return names
	}
	if got := fmt.Sprint(buckets("old")); got != "[hash index producer raw]" {
		t.Errorf("the earlier build's collection has buckets %s", got)
	}
	if got := fmt.Sprint(buckets("new")); got != "[body index]" {
		t.Errorf("a new collection has buckets %s", got)
	}
	salter, err := s.DeliverySalter(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, coll := range []string{"old", "new"} {
		page, err := s.Objects(ctx, coll, store.Query{Versions: []store.VersionMatch{{Kind: store.All}}, Limit: 100})
		if err != nil || len(page.Objects) != 20 {
			t.Fatalf("%s: %d objects, %v", coll, len(page.Objects), err)
		}
		pl := salter.Page(coll)
		for _, o := range page.Objects {
			w := want[coll+" "+o.ID]
			if !bytes.Equal(o.Raw, w.Raw) || o.Hash != w.Hash || o.Producer != w.Producer {
				t.Errorf("%s %s: read %q %x %q, wrote %q %x %q", coll, o.ID, o.Raw, o.Hash, o.Producer, w.Raw, w.Hash, w.Producer)
			}
			var leaf [32]byte
			if w.Hash != ([32]byte{}) {
				if leaf, err = pl.Leaf(o.ID, o.Version, o.DateAdded, &o.Hash); err != nil {
					t.Fatal(err)
				}
			}
			if o.Leaf != leaf {
				t.Errorf("%s %s: leaf %x, want %x", coll, o.ID, o.Leaf, leaf)
			}
		}
		// Writing a version again reports the stored one's hash.
		again := objs(1, 1, "CERT-A")
		res, err := s.AddObjects(ctx, coll, again)
		if err != nil || !res[0].Existed || res[0].Hash != again[0].Hash {
			t.Fatalf("%s: the same version again: %+v, %v", coll, res, err)
		}
		// Removal records the hash and producer and leaves no value.
		rctx := store.WithRemoval(ctx, store.Removal{Kind: store.RemovalExpired})
		if n, err := s.DeleteObject(rctx, coll, again[0].ID, nil, nil); err != nil || n != 1 {
			t.Fatalf("%s: delete: %d, %v", coll, n, err)
		}
		tombs, _, err := s.Tombstones(ctx, coll, time.Time{}, 10)
		if err != nil || len(tombs) != 1 || tombs[0].Hash != again[0].Hash || tombs[0].Producer != want[coll+" "+again[0].ID].Producer {
			t.Fatalf("%s: tombstones %+v, %v", coll, tombs, err)
		}
		err = s.db.View(func(tx *bbolt.Tx) error {
			cb, _ := openCollection(tx, coll)
			k := dateKey(tombs[0].DateAdded.UnixMicro())
			for _, b := range []*bbolt.Bucket{cb.index, cb.body, cb.raw, cb.hash, cb.producer} {
				if b != nil && b.Get(k) != nil {
					return fmt.Errorf("%s: a value of the removed version is left", coll)
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

// TestBodyCorrupt: a body value that is not one fails the page that
// reads it, and the lookups of hashes, with an error.
func TestBodyCorrupt(t *testing.T) {
	s := openTest(t, filepath.Join(t.TempDir(), "s.db"), Options{NoSync: true})
	ctx := t.Context()
	raw := []byte(`{"type":"indicator","spec_version":"2.1","id":"indicator--00000000-0000-4000-8000-000000000001","created":"2026-12-07T10:00:00.000Z","modified":"2026-12-07T10:00:00.000Z"}`)
	o := store.Object{ID: "indicator--00000000-0000-4000-8000-000000000001", Type: "indicator", SpecVersion: "2.1",
		Version: time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC), Raw: raw, Hash: sha256.Sum256(raw)}
	res, err := s.AddObjects(ctx, "c", []store.Object{o})
	if err != nil {
		t.Fatal(err)
	}
	err = s.db.Update(func(tx *bbolt.Tx) error {
		return tx.Bucket(bucketCollections).Bucket([]byte("c")).Bucket(bucketBody).Put(dateKey(res[0].DateAdded.UnixMicro()), []byte{bodyHash, 1, 2})
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Objects(ctx, "c", store.Query{Limit: 10}); err == nil {
		t.Error("a page over a corrupt body value: no error")
	}
	if _, err := s.AddObjects(ctx, "c", []store.Object{o}); err == nil {
		t.Error("the same version again, over a corrupt body value: no error")
	}
	if _, err := s.ResolveAdded(ctx, "c", []time.Time{res[0].DateAdded}); err == nil {
		t.Error("resolving the date_added of a corrupt body value: no error")
	}
}
