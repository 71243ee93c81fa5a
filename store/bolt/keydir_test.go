package bolt

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/ctigate/ctigate"
	"github.com/ctigate/ctigate/store"
)

// dump returns the keydir's contents: per collection, per id, the sorted
// date_added of its versions.
func (k *keys) dump(t *testing.T, ids map[string][]string) map[string]map[string][]int64 {
	t.Helper()
	k.mu.RLock()
	defer k.mu.RUnlock()
	out := make(map[string]map[string][]int64)
	for coll, list := range ids {
		m := make(map[string][]int64)
		for _, id := range list {
			dates, err := k.lookup(coll, id, -1, nil)
			if err != nil {
				t.Fatal(err)
			}
			if len(dates) > 0 {
				slices.Sort(dates)
				m[id] = dates
			}
		}
		out[coll] = m
	}
	return out
}

// TestKeydirModel checks the keydir's table against a map through random
// adds and removes, including removals that shift probe runs back.
func TestKeydirModel(t *testing.T) {
	k := newKeys()
	kd := &keydir{}
	k.colls["c"] = kd
	model := make(map[string][]int64)
	rng := rand.New(rand.NewPCG(5, 6))
	var ids []string
	for i := range 3000 {
		switch i % 5 {
		case 0:
			ids = append(ids, fmt.Sprintf("x-custom-id-%d", i)) // not canonical
		case 1:
			ids = append(ids, "malware--"+uuid4(rng))
		default:
			ids = append(ids, "indicator--"+uuid4(rng))
		}
	}
	ids = append(ids, "indicator--"+strings.ToUpper(uuid4(rng))) // not canonical
	date := int64(0)
	for step := range 60000 {
		id := ids[rng.IntN(len(ids))]
		if rng.IntN(3) > 0 || len(model[id]) == 0 {
			date++
			k.add(kd, id, date)
			model[id] = append(model[id], date)
		} else {
			vs := model[id]
			j := rng.IntN(len(vs))
			k.remove(kd, id, vs[j])
			model[id] = slices.Delete(vs, j, j+1)
		}
		if step%5000 == 0 || step == 59999 {
			n := 0
			for _, id := range ids {
				got := slices.Sorted(slices.Values(lookupAll(t, k, kd, id)))
				if want := model[id]; !slices.Equal(got, want) && len(got)+len(want) > 0 {
					t.Fatalf("step %d: versions of %s: got %v, want %v", step, id, got, want)
				}
				n += len(model[id])
			}
			if kd.versions != n {
				t.Fatalf("step %d: versions = %d, want %d", step, kd.versions, n)
			}
		}
	}
	k.remove(kd, "indicator--"+uuid4(rng), 1) // unknown: no-op
}

func lookupAll(t *testing.T, k *keys, kd *keydir, id string) []int64 {
	out, err := k.lookup("c", id, -1, nil)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// keydirFixture adds, to s, versions of canonical and non-canonical ids in
// two collections, with several versions and spec_versions per id, and
// deletes some. It returns the ids used per collection.
func keydirFixture(t *testing.T, s *Store) map[string][]string {
	t.Helper()
	ctx := t.Context()
	rng := rand.New(rand.NewPCG(9, 9))
	ids := map[string][]string{}
	t0 := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	for _, coll := range []string{"c1", "c2"} {
		var list []string
		for i := range 60 {
			switch i % 6 {
			case 0:
				list = append(list, fmt.Sprintf("x-odd--%d", i))
			case 1:
				list = append(list, "indicator--"+strings.ToUpper(uuid4(rng)))
			default:
				list = append(list, "indicator--"+uuid4(rng))
			}
		}
		ids[coll] = list
		for round := range 4 {
			var objs []store.Object
			for j, id := range list {
				if (j+round)%3 == 0 {
					continue
				}
				o := testObject(0)
				o.ID, o.Type = id, id[:strings.Index(id, "-")]
				o.Version = t0.Add(time.Duration(round*7%5) * time.Hour)
				if j%4 == 0 && round%2 == 1 {
					o.SpecVersion = "2.0"
				}
				objs = append(objs, o)
			}
			if _, err := s.AddObjects(ctx, coll, objs); err != nil {
				t.Fatal(err)
			}
		}
		for j := 0; j < len(list); j += 5 {
			vm := []store.VersionMatch{{Kind: store.VersionKind(j % 3)}} // last, first, all
			if _, err := s.DeleteObject(ctx, coll, list[j], vm, nil); err != nil && ctigate.KindOf(err) != ctigate.NotFound {
				t.Fatal(err)
			}
		}
	}
	return ids
}

// keydirQueries runs queries that depend on the keydir and returns their
// results.
// withoutRelease returns p without what reflect.DeepEqual cannot compare
// (the func Release calls).
func withoutRelease(p store.Page) store.Page {
	return store.Page{Objects: p.Objects, More: p.More, Next: p.Next, OneVersionEach: p.OneVersionEach}
}

func keydirQueries(t *testing.T, s *Store, ids map[string][]string) []store.Page {
	t.Helper()
	var out []store.Page
	for _, coll := range slices.Sorted(maps.Keys(ids)) {
		list := ids[coll]
		for _, versions := range [][]store.VersionMatch{nil, {{Kind: store.First}}, {{Kind: store.All}}, {{Kind: store.First}, {Kind: store.Last}}} {
			for _, specs := range [][]string{nil, {"2.0"}, {"2.1"}} {
				q := store.Query{IDs: list, Versions: versions, SpecVersions: specs, Limit: 10000}
				for _, lookupMax := range []int{10000, 0} { // by ids, and by scanning
					s.idLookupMax = lookupMax
					p, err := s.Objects(t.Context(), coll, q)
					if err != nil {
						t.Fatal(err)
					}
					out = append(out, withoutRelease(p))
				}
				q.IDs = nil
				p, err := s.Objects(t.Context(), coll, q)
				if err != nil {
					t.Fatal(err)
				}
				out = append(out, withoutRelease(p))
			}
		}
	}
	s.idLookupMax = 10000
	return out
}

// TestKeydirRebuild checks that the keydir rebuilt at Open is the one the
// writes built, and that queries give the same results after a reopen.
func TestKeydirRebuild(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.db")
	s, err := Open(path, Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	ids := keydirFixture(t, s)
	before := s.keys.dump(t, ids)
	results := keydirQueries(t, s, ids)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openTest(t, path, Options{NoSync: true})
	if after := s.keys.dump(t, ids); !reflect.DeepEqual(after, before) {
		t.Fatalf("keydir after reopen differs:\n got %v\nwant %v", after, before)
	}
	again := keydirQueries(t, s, ids)
	for i := range again {
		if !reflect.DeepEqual(again[i], results[i]) {
			t.Fatalf("query %d: results differ after reopen:\n got %v\nwant %v", i, again[i], results[i])
		}
	}
	n := 0
	for _, m := range before {
		for _, ds := range m {
			n += len(ds)
		}
	}
	if n == 0 {
		t.Fatal("fixture stored nothing")
	}
}

// TestKeydirFailedWrite checks that a write transaction that fails, alone or
// inside a shared batch that is then retried write by write, leaves the
// keydir as the committed data says.
func TestKeydirFailedWrite(t *testing.T) {
	s := openTest(t, filepath.Join(t.TempDir(), "s.db"), Options{NoSync: true})
	ctx := t.Context()
	ids := map[string][]string{"c": nil}
	for i := range 10 {
		ids["c"] = append(ids["c"], testObject(i).ID)
	}
	if _, err := s.AddObjects(ctx, "c", []store.Object{testObject(0), testObject(1)}); err != nil {
		t.Fatal(err)
	}
	errBoom := errors.New("boom")
	// failing adds objects (and so records keydir changes), then fails.
	failing := func(objs ...store.Object) func(*writeTx) error {
		return func(w *writeTx) error {
			ps := make([]pending, len(objs))
			for i := range objs {
				o := &objs[i]
				ps[i] = pending{obj: o, version: encodeVersion(o.Version), dk: make([]byte, dateKeyLen)}
				ps[i].header = appendHeader(nil, 0, ps[i].version, o.ID, o.Type, o.SpecVersion)
			}
			if err := s.add(w, "c", ps, make([]store.AddResult, len(objs))); err != nil {
				return err
			}
			return errBoom
		}
	}

	before := s.keys.dump(t, ids)
	v2 := testObject(1)
	v2.Version = v2.Version.Add(time.Hour)
	if err := s.write(2, 0, failing(testObject(5), v2)); !errors.Is(err, errBoom) {
		t.Fatalf("failing write: got %v, want %v", err, errBoom)
	}
	if got := s.keys.dump(t, ids); !reflect.DeepEqual(got, before) {
		t.Fatalf("keydir changed by a failed write: got %v, want %v", got, before)
	}

	// A batch: a leader holds the committer until the others are queued;
	// then a good AddObjects, the failing write and another good one share
	// a transaction, which fails, and are retried alone.
	started, release := make(chan struct{}), make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		s.update(1, func(tx *bbolt.Tx) error {
			close(started)
			<-release
			return nil
		})
	})
	<-started
	queued := func(n int) {
		for {
			s.w.mu.Lock()
			q := len(s.w.queue)
			s.w.mu.Unlock()
			if q == n {
				return
			}
			time.Sleep(time.Millisecond)
		}
	}
	var errGood1, errGood2, errBad error
	wg.Go(func() { _, errGood1 = s.AddObjects(ctx, "c", []store.Object{testObject(2), v2}) })
	queued(1)
	wg.Go(func() { errBad = s.write(2, 0, failing(testObject(3), testObject(6))) })
	queued(2)
	wg.Go(func() { _, errGood2 = s.AddObjects(ctx, "c", []store.Object{testObject(4), testObject(6)}) })
	queued(3)
	commits := s.commits.Load()
	close(release)
	wg.Wait()
	if errGood1 != nil || errGood2 != nil || !errors.Is(errBad, errBoom) {
		t.Fatalf("batch: got errors %v, %v, %v; want nil, nil, %v", errGood1, errBad, errGood2, errBoom)
	}
	if n := s.commits.Load() - commits; n != 1 {
		t.Fatalf("the batch took %d commit groups, want 1 (the test did not batch)", n)
	}
	// The keydir holds exactly what the index holds.
	want := make(map[string][]int64)
	err := s.db.View(func(tx *bbolt.Tx) error {
		cb, _ := openCollection(tx, "c")
		return cb.index.ForEach(func(k, v []byte) error {
			h, err := decodeHeader(v)
			if err != nil {
				return err
			}
			want[string(h.id)] = append(want[string(h.id)], dateMicros(k))
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	got := s.keys.dump(t, ids)["c"]
	if !maps.EqualFunc(got, want, slices.Equal) {
		t.Fatalf("keydir after the batch: got %v, want %v", got, want)
	}
	for _, i := range []int{3, 5} {
		if _, ok := got[testObject(i).ID]; ok {
			t.Fatalf("keydir holds %s, written only by failed writes", testObject(i).ID)
		}
	}
	if len(got[testObject(1).ID]) != 2 || len(got[testObject(6).ID]) != 1 {
		t.Fatalf("keydir after the batch: %v", got)
	}

	// A panicking write leaves it untouched too.
	before = s.keys.dump(t, ids)
	err = s.write(1, 0, func(w *writeTx) error {
		failing(testObject(7))(w)
		panic("boom")
	})
	if err == nil {
		t.Fatal("panicking write: got no error")
	}
	if got := s.keys.dump(t, ids); !reflect.DeepEqual(got, before) {
		t.Fatalf("keydir changed by a panicking write: got %v, want %v", got, before)
	}
}

// TestKeydirConcurrent adds versions, deletes old ones and queries by id,
// concurrently, and checks that every read shows a state the writes went
// through: for each id, a contiguous run of its versions, the newest being
// the one match[version]=last returns.
func TestKeydirConcurrent(t *testing.T) {
	s := openTest(t, filepath.Join(t.TempDir(), "s.db"), Options{NoSync: true})
	ctx := t.Context()
	const (
		nIDs     = 20
		versions = 40
	)
	t0 := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	ver := func(i int) time.Time { return t0.Add(time.Duration(i) * time.Minute) }
	ids := make([]string, nIDs)
	for i := range ids {
		ids[i] = testObject(i).ID
	}
	object := func(id string, v int) store.Object {
		o := testObject(0)
		o.ID, o.Version = id, ver(v)
		if v%2 == 1 {
			o.SpecVersion = "2.0"
		}
		return o
	}
	var done atomic.Bool
	var writers, readers sync.WaitGroup
	for w := range 2 {
		writers.Go(func() {
			for v := range versions {
				var objs []store.Object
				for i := w; i < nIDs; i += 2 {
					objs = append(objs, object(ids[i], v))
				}
				if _, err := s.AddObjects(ctx, "c", objs); err != nil {
					t.Errorf("AddObjects: %v", err)
					return
				}
			}
		})
	}
	writers.Go(func() {
		// Deletes the oldest version of an id now and then.
		for n := 0; n < 60; n++ {
			_, err := s.DeleteObject(ctx, "c", ids[n%nIDs], []store.VersionMatch{{Kind: store.First}}, nil)
			if err != nil && ctigate.KindOf(err) != ctigate.NotFound {
				t.Errorf("DeleteObject: %v", err)
				return
			}
			time.Sleep(200 * time.Microsecond)
		}
	})
	check := func(q store.Query, what string) {
		p, err := s.Objects(ctx, "c", q)
		if err != nil {
			t.Errorf("%s: %v", what, err)
			return
		}
		byID := make(map[string][]int)
		for _, o := range p.Objects {
			byID[o.ID] = append(byID[o.ID], int(o.Version.Sub(t0)/time.Minute))
		}
		for id, vs := range byID {
			slices.Sort(vs)
			switch what {
			case "all":
				for i := 1; i < len(vs); i++ {
					if vs[i] != vs[i-1]+1 {
						t.Errorf("%s: versions of %s not a contiguous run: %v", what, id, vs)
					}
				}
			case "last", "last-2.1", "first-last":
				if len(vs) > 2 || (what != "first-last" && len(vs) != 1) {
					t.Errorf("%s: versions of %s: %v", what, id, vs)
				}
			}
		}
	}
	for range 2 {
		readers.Go(func() {
			for !done.Load() {
				check(store.Query{IDs: ids, Versions: []store.VersionMatch{{Kind: store.All}}}, "all")
				check(store.Query{IDs: ids}, "last")
				check(store.Query{IDs: ids, SpecVersions: []string{"2.1"}}, "last-2.1")
				check(store.Query{SpecVersions: []string{"2.1"}, Limit: 10000}, "last-2.1") // scan
				check(store.Query{IDs: ids, Versions: []store.VersionMatch{{Kind: store.First}, {Kind: store.Last}}}, "first-last")
			}
		})
	}
	writers.Wait()
	done.Store(true)
	readers.Wait()
	// Finally every id's last version is the newest written.
	p, err := s.Objects(ctx, "c", store.Query{IDs: ids})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Objects) != nIDs {
		t.Fatalf("last versions: got %d objects, want %d", len(p.Objects), nIDs)
	}
	for _, o := range p.Objects {
		if !o.Version.Equal(ver(versions - 1)) {
			t.Fatalf("last version of %s: got %v, want %v", o.ID, o.Version, ver(versions-1))
		}
	}
}

// TestKeydirStaleSnapshot checks that a read whose snapshot predates a
// delete the keydir has applied is refused with errStaleSnapshot (and that
// Objects retries it).
func TestKeydirStaleSnapshot(t *testing.T) {
	s := openTest(t, filepath.Join(t.TempDir(), "s.db"), Options{NoSync: true})
	ctx := t.Context()
	a, b := testObject(1), testObject(1)
	b.Version = b.Version.Add(time.Hour)
	if _, err := s.AddObjects(ctx, "c", []store.Object{a, b}); err != nil {
		t.Fatal(err)
	}
	tx, err := s.db.Begin(false)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if _, err := s.DeleteObject(ctx, "c", a.ID, []store.VersionMatch{{Kind: store.Last}}, nil); err != nil {
		t.Fatal(err)
	}
	cb, _ := openCollection(tx, "c")
	r := &pageReader{f: &filter{}, keys: s.keys, coll: "c", cb: cb, txid: tx.ID()}
	if _, err := r.versionsOf(a.ID); !errors.Is(err, errStaleSnapshot) {
		t.Fatalf("lookup on a snapshot older than a delete: got %v, want errStaleSnapshot", err)
	}
	p, err := s.Objects(ctx, "c", store.Query{IDs: []string{a.ID}})
	if err != nil || len(p.Objects) != 1 || !p.Objects[0].Version.Equal(a.Version) {
		t.Fatalf("Objects after the delete: %v, %v", p.Objects, err)
	}
}

// TestKeydirMemory reports the heap the keydir of 1,000,000 versions takes
// (90% first versions, 10% further versions of recent ids, as the
// benchmark fixture) and fails above 40 MB.
func TestKeydirMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	const n = 1_000_000
	rng := rand.New(rand.NewPCG(7, 8))
	ids := make([]string, 0, n)
	recent := make([]string, 0, 1000)
	for range n {
		var id string
		if len(recent) == cap(recent) && rng.IntN(10) == 0 {
			id = recent[rng.IntN(len(recent))]
		} else {
			id = "indicator--" + uuid4(rng)
			if len(recent) < cap(recent) {
				recent = append(recent, id)
			} else {
				recent[rng.IntN(len(recent))] = id
			}
		}
		ids = append(ids, id)
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	start := time.Now()
	k := newKeys()
	kd := &keydir{}
	k.mu.Lock()
	for i, id := range ids {
		k.add(kd, id, int64(i))
	}
	k.mu.Unlock()
	elapsed := time.Since(start)
	runtime.GC()
	runtime.ReadMemStats(&after)
	heap := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	t.Logf("keydir of %d versions (%d ids): %.1f MB heap (%.1f bytes/version), built in %v",
		kd.versions, kd.ids, float64(heap)/1e6, float64(heap)/n, elapsed.Round(time.Millisecond))
	if heap > 40e6 {
		t.Errorf("keydir of 1M versions takes %.1f MB, want at most 40 MB", float64(heap)/1e6)
	}
	runtime.KeepAlive(kd)
	runtime.KeepAlive(ids)
}

// TestTypeQueryFromKeydir: a query by type alone of a type few ids have
// reads those ids' versions (the keydir lists them), not every version's
// header, and returns what a scan returns, non-canonical ids included.
func TestTypeQueryFromKeydir(t *testing.T) {
	ctx := t.Context()
	s := openTest(t, filepath.Join(t.TempDir(), "s.db"), Options{NoSync: true, TrimInterval: -1, TrimAfterBytes: 1 << 40})
	fillStore(t, s, "c", 20000, 100)
	var defs []store.Object
	for i, id := range []string{
		"marking-definition--00000000-0000-4000-8000-000000000001",
		"marking-definition--00000000-0000-4000-8000-000000000002",
		"marking-definition--NOT-CANONICAL",
	} {
		defs = append(defs, store.Object{ID: id, Type: "marking-definition", SpecVersion: "2.1",
			Version: time.Date(2026, 3, 1, 0, 0, i, 0, time.UTC), Raw: fmt.Appendf(nil, `{"type":"marking-definition","id":%q}`, id)})
	}
	if _, err := s.AddObjects(ctx, "c", defs); err != nil {
		t.Fatal(err)
	}
	q := store.Query{Types: []string{"marking-definition"}, Versions: []store.VersionMatch{{Kind: store.All}}, Limit: 2}
	before := s.touched.Load()
	var got []string
	for {
		p, err := s.Objects(ctx, "c", q)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range p.Objects {
			got = append(got, o.ID)
		}
		if !p.More {
			break
		}
		q.Next = p.Next
	}
	read := s.touched.Load() - before
	if want := []string{defs[0].ID, defs[1].ID, defs[2].ID}; !slices.Equal(got, want) {
		t.Errorf("marking definitions %v, want %v", got, want)
	}
	if read > 64<<10 {
		t.Errorf("the query read %d bytes of headers, as a scan of the 20,000 indicators would", read)
	}
	// More ids of the type than the keydir lists: the scan, same answer.
	s.idLookupMax = 1
	p, err := s.Objects(ctx, "c", store.Query{Types: []string{"marking-definition"}})
	if err != nil || len(p.Objects) != 3 {
		t.Errorf("scanned: %d objects, %v", len(p.Objects), err)
	}
}

// fillStore adds n objects of about size bytes to collection c.
func fillStore(t *testing.T, s *Store, c string, n, size int) {
	t.Helper()
	pad := bytes.Repeat([]byte("x"), size)
	for start := 0; start < n; start += 2000 {
		var objs []store.Object
		for i := start; i < min(n, start+2000); i++ {
			o := testObject(i)
			o.Raw = fmt.Appendf(nil, `{"id":%q,"pad":"%s"}`, o.ID, pad)
			objs = append(objs, o)
		}
		if _, err := s.AddObjects(t.Context(), c, objs); err != nil {
			t.Fatalf("AddObjects: %v", err)
		}
	}
}
