package redis

import (
	"fmt"
	"slices"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/ctigate/ctigate/store"
)

// TestRecordsOfEarlierBuilds: a collection whose first versions an
// earlier build wrote (records without their date_added, format 1) and
// whose later ones this build wrote reads whole, in date_added order,
// each version with its date_added and hash, page by page across the
// two forms; reads by id and ResolveAdded find both.
func TestRecordsOfEarlierBuilds(t *testing.T) {
	s, c := internalStore(t)
	ctx := store.WithActor(t.Context(), store.Actor{User: "cert-a", Org: "CERT-A"})
	obj := func(i int) store.Object {
		id := fmt.Sprintf("indicator--00000000-0000-4000-8000-%012d", i)
		return store.Object{ID: id, Type: "indicator", SpecVersion: "2.1", Version: time.Date(2026, 1, 1, 0, 0, i, 0, time.UTC),
			Raw: []byte(`{"id":"` + id + `"}`), Hash: [32]byte{byte(i)}, Producer: "CERT-A"}
	}
	// Five versions as an earlier build stored them: format 1 members
	// scored by date_added, their version lists, the clock.
	base := time.Now().Add(-time.Hour).UnixMicro()
	var zs []goredis.Z
	lists := map[string]any{}
	for i := range 5 {
		o := obj(i)
		da := base + int64(i)
		zs = append(zs, goredis.Z{Score: float64(da), Member: encodeRecord(&o)})
		lists[o.ID] = fmt.Sprintf("%d,%s,%s;", da, versionKey(o.Version), listSpec(&o))
	}
	if err := c.ZAdd(ctx, s.collKey("c", "z"), zs...).Err(); err != nil {
		t.Fatal(err)
	}
	if err := c.HSet(ctx, s.collKey("c", "n"), lists).Err(); err != nil {
		t.Fatal(err)
	}
	if err := c.Set(ctx, s.collKey("c", "last"), base+4, 0).Err(); err != nil {
		t.Fatal(err)
	}
	var later []store.Object
	for i := 5; i < 10; i++ {
		later = append(later, obj(i))
	}
	res, err := s.AddObjects(ctx, "c", later)
	if err != nil {
		t.Fatal(err)
	}
	if m, err := c.ZRange(ctx, s.collKey("c", "z"), -1, -1).Result(); err != nil || len(m) != 1 || m[0][0] != recordFormatLeaf {
		t.Fatalf("this build's record: %q, %v; want format %d", m, err, recordFormatLeaf)
	}
	// A version without a hash has no leaf: format 2.
	unhashed := obj(10)
	unhashed.Hash = [32]byte{}
	if _, err := s.AddObjects(ctx, "other", []store.Object{unhashed}); err != nil {
		t.Fatal(err)
	}
	if m, err := c.ZRange(ctx, s.collKey("other", "z"), -1, -1).Result(); err != nil || len(m) != 1 || m[0][0] != recordFormatDA {
		t.Fatalf("a record without a hash: %q, %v; want format %d", m, err, recordFormatDA)
	}
	salter, err := s.DeliverySalter(ctx)
	if err != nil {
		t.Fatal(err)
	}
	leaves := salter.Page("c")
	want := func(i int) time.Time {
		if i < 5 {
			return time.UnixMicro(base + int64(i)).UTC()
		}
		return res[i-5].DateAdded
	}
	for _, limit := range []int{1, 3, 4, 10} {
		for _, withoutRaw := range []bool{false, true} {
			q := store.Query{Limit: limit, WithoutRaw: withoutRaw}
			var got []store.Object
			for {
				p, err := s.Objects(ctx, "c", q)
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, p.Objects...)
				if !p.More {
					break
				}
				q.Next = p.Next
			}
			if len(got) != 10 {
				t.Fatalf("limit %d: %d versions, want 10", limit, len(got))
			}
			for i, o := range got {
				w := obj(i)
				if o.ID != w.ID || !o.DateAdded.Equal(want(i)) || (!withoutRaw && (o.Hash != w.Hash || string(o.Raw) != string(w.Raw))) {
					t.Fatalf("limit %d, version %d: %s added %v hash %x, want %s added %v hash %x", limit, i, o.ID, o.DateAdded, o.Hash[:1], w.ID, want(i), w.Hash[:1])
				}
				// This build's versions carry their delivery leaf, read
				// with their bytes; earlier ones none.
				var leaf [32]byte
				if i >= 5 && !withoutRaw {
					if leaf, err = leaves.Leaf(o.ID, o.Version, o.DateAdded, &o.Hash); err != nil {
						t.Fatal(err)
					}
				}
				if o.Leaf != leaf {
					t.Fatalf("limit %d, version %d: leaf %x, want %x", limit, i, o.Leaf[:4], leaf[:4])
				}
			}
		}
	}
	ids := []string{obj(2).ID, obj(7).ID}
	p, err := s.Objects(ctx, "c", store.Query{IDs: ids})
	if err != nil || len(p.Objects) != 2 || !slices.EqualFunc(p.Objects, ids, func(o store.Object, id string) bool { return o.ID == id }) {
		t.Fatalf("read by id: %v, %v", p.Objects, err)
	}
	rv, err := s.ResolveAdded(ctx, "c", []time.Time{want(2), want(7)})
	if err != nil || !rv[0].Found || rv[0].Hash != obj(2).Hash || !rv[1].Found || rv[1].Hash != obj(7).Hash {
		t.Fatalf("ResolveAdded: %+v, %v", rv, err)
	}
}

// FuzzRecord: a record read from Redis decodes without a panic; what
// encodeRecord and withDateAdded write decodes to the object, its
// date_added and hash.
func FuzzRecord(f *testing.F) {
	o := store.Object{ID: "indicator--a", Type: "indicator", SpecVersion: "2.1", Version: time.Unix(5, 6).UTC(), Raw: []byte("{}"), Hash: [32]byte{9}, Producer: "P"}
	f.Add(string(encodeRecord(&o)), int64(7))
	f.Add(withDateAdded(encodeRecord(&o), 7, nil), int64(-1))
	f.Add(withDateAdded(encodeRecord(&o), 7, &[32]byte{1}), int64(3))
	f.Add("\x02\x00", int64(0))
	f.Add("\x03\x00", int64(0))
	f.Fuzz(func(t *testing.T, b string, da int64) {
		for _, raw := range []bool{false, true} {
			decodeRecord(b, raw)
		}
		if _, ok := recordDateAdded(b); ok != ((len(b) >= 9 && b[0] == recordFormatDA) || (len(b) >= 41 && b[0] == recordFormatLeaf)) {
			t.Fatalf("%q: holds a date_added %v", b, ok)
		}
		recordHash([]byte(b))
		w := o
		w.Raw = []byte(b)
		w.Producer = fmt.Sprint(da)
		rec := encodeRecord(&w)
		leaf := [32]byte{byte(da), 2, 3}
		for k, stored := range []string{string(rec), withDateAdded(rec, da, nil), withDateAdded(rec, da, &leaf)} {
			got, err := decodeRecord(stored, true)
			if err != nil || got.ID != w.ID || got.Producer != w.Producer || string(got.Raw) != b || !got.Version.Equal(w.Version) || recordHash([]byte(stored)) != w.Hash {
				t.Fatalf("%q decodes to %+v, %v", stored, got, err)
			}
			if (k == 2) != (got.Leaf == leaf) {
				t.Fatalf("%q: leaf %x", stored, got.Leaf)
			}
			if k == 0 {
				continue
			}
			if d, ok := recordDateAdded(stored); !ok || d != da {
				t.Fatalf("date_added %d read back as %d, %v", da, d, ok)
			}
		}
		if _, ok := recordDateAdded(string(rec)); ok {
			t.Fatal("a format 1 record holds a date_added")
		}
	})
}
