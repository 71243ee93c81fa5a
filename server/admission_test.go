package server

import (
	"context"
	"fmt"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/ctigate/ctigate/config"
	"github.com/ctigate/ctigate/store"
	"github.com/ctigate/ctigate/store/bolt"
	"github.com/ctigate/ctigate/store/redis"
	"github.com/ctigate/ctigate/store/redis/redistest"
)

// shortWait makes admission refuse after d for the rest of the test.
func shortWait(t *testing.T, d time.Duration) {
	old := admissionWait
	admissionWait = d
	t.Cleanup(func() { admissionWait = old })
}

// TestAdmissionBudgets: a user's pages in flight are bounded by
// user_inflight_bytes (429 beyond), everyone's by inflight_bytes (503
// beyond); small pages are admitted from a reserve large ones cannot
// take, at once even while large ones queue; what is given back is
// admitted again, and nothing is left behind.
func TestAdmissionBudgets(t *testing.T) {
	shortWait(t, 100*time.Millisecond)
	const mib = 1 << 20
	a := newAdmission(config.Paging{MaxBytes: 2 * mib, UserInflightBytes: 4 * mib, InflightBytes: 16 * mib})
	// Reserve 2 MiB, of which one user may hold 512 KiB; small pages up to 64 KiB.
	ctx := context.Background()
	must := func(user string, n int64) *permit {
		t.Helper()
		p, err := a.acquire(ctx, user, n)
		if err != nil {
			t.Fatalf("acquire(%s, %d): %v", user, n, err)
		}
		return p
	}
	refusedWith := func(user string, n int64, want error) {
		t.Helper()
		start := time.Now()
		p, err := a.acquire(ctx, user, n)
		if err != want {
			p.release()
			t.Fatalf("acquire(%s, %d): %v, want %v", user, n, err, want)
		}
		if d := time.Since(start); d < admissionWait {
			t.Fatalf("acquire(%s, %d) refused after %v, before the wait of %v", user, n, d, admissionWait)
		}
	}

	// One user: 4 MiB, then 429.
	a1, a2 := must("a", 2*mib), must("a", 2*mib)
	refusedWith("a", mib, errUserPagesBusy)
	refusedWith("a", 1, errUserPagesBusy) // a small page too: the user's own budget is full
	// Others: 14 MiB of large pages in all, then 503.
	b1 := must("b", 4*mib)
	c1 := must("c", 4*mib)
	d1 := must("d", 2*mib)
	refusedWith("e", 2*mib, errPagesBusy)

	// Small pages go on while a large one waits, from the reserve.
	waiting := make(chan error, 1)
	go func() {
		p, err := a.acquire(ctx, "e", 2*mib)
		p.release()
		waiting <- err
	}()
	time.Sleep(10 * time.Millisecond)
	start := time.Now()
	var small []*permit
	for i := range 8 {
		small = append(small, must(fmt.Sprintf("s%d", i), 64<<10))
	}
	if d := time.Since(start); d > 50*time.Millisecond {
		t.Fatalf("8 small pages admitted in %v while a large one waited", d)
	}
	// One user holds a quarter of the reserve at most.
	var u []*permit
	for range 8 {
		u = append(u, must("f", 64<<10))
	}
	refusedWith("f", 64<<10, errUserPagesBusy)
	if err := <-waiting; err != errPagesBusy {
		t.Fatalf("the large page that waited: %v, want %v", err, errPagesBusy)
	}

	// Shrinking gives back: a's 2 MiB page that held 512 KiB leaves room
	// for 1.5 MiB more of a's.
	a1.shrink(512 << 10)
	a3 := must("a", 1536<<10)
	// Growing admits more as a page would be: b's page may grow to the
	// whole user budget, not past it.
	if err := b1.grow(ctx, mib); err != errUserPagesBusy {
		t.Fatalf("growing b's 4 MiB page: %v, want %v", err, errUserPagesBusy)
	}
	b1.shrink(3 * mib)
	if err := b1.grow(ctx, mib); err != nil {
		t.Fatalf("growing b's 3 MiB page by 1 MiB: %v", err)
	}
	// A page larger than every budget takes the whole of each.
	for _, p := range []*permit{a1, a2, a3, b1, c1, d1} {
		p.release()
		p.release() // a second release gives nothing back twice
	}
	huge := must("g", 100*mib)
	refusedWith("h", mib, errPagesBusy)
	huge.release()

	for _, p := range append(small, u...) {
		p.release()
	}
	if len(a.users) != 0 {
		t.Fatalf("users left behind after every permit was released: %d", len(a.users))
	}
	// Everything is back: the whole budget can be taken again.
	must("i", 4*mib).release()
	for i := range 3 {
		defer must(fmt.Sprintf("j%d", i), 4*mib).release()
	}
	must("k", 2*mib).release()
}

// TestAdmissionEstimate: a read is admitted, and bounded in the store,
// by twice its collection's average object size per object it may get
// (its limit, or fewer for ids without match[version]=all), between
// minPageBytes and paging.max_bytes; a manifest read by its count.
func TestAdmissionEstimate(t *testing.T) {
	a := newAdmission(config.Paging{MaxBytes: 8 << 20})
	if got := a.objectBytes("c"); got != defaultObjectBytes {
		t.Fatalf("before any read: %d bytes an object, want %d", got, defaultObjectBytes)
	}
	objs := make([]store.Object, 10)
	for i := range objs {
		objs[i].Raw = make([]byte, 1000)
	}
	a.noteObjectBytes("c", objs)
	for i := range objs {
		objs[i].Raw = make([]byte, 5000)
	}
	a.noteObjectBytes("c", objs)
	if got := a.objectBytes("c"); got != 2000 {
		t.Fatalf("after pages of 1000 then 5000 bytes an object: %d, want 2000", got)
	}
	if got := a.objectBytes("other"); got != defaultObjectBytes {
		t.Fatalf("another collection: %d, want %d", got, defaultObjectBytes)
	}

	all := []store.VersionMatch{{Kind: store.All}}
	for _, tc := range []struct {
		q         store.Query
		raw, cost int64
	}{
		{store.Query{Limit: 1}, 64 << 10, 64<<10 + pageObjectCost},                                                    // at least minPageBytes
		{store.Query{Limit: 100}, 100 * 2 * 2000, 100*2*2000 + 100*pageObjectCost},                                    // twice the average
		{store.Query{Limit: 10000}, 8 << 20, 8<<20 + 10000*pageObjectCost},                                            // at most max_bytes
		{store.Query{}, store.DefaultLimit * 2 * 2000, store.DefaultLimit*2*2000 + store.DefaultLimit*pageObjectCost}, // the store's default limit
		{store.Query{Limit: 10000, WithoutRaw: true}, 0, 10000 * pageObjectCost},                                      // a manifest: its count
		{store.Query{Limit: 1000, IDs: []string{"x"}}, 64 << 10, 64<<10 + pageObjectCost},                             // one object's last version
		{store.Query{Limit: 1000, IDs: []string{"x", "y"}, Versions: []store.VersionMatch{{Kind: store.First}, {Kind: store.Last}}}, 64 << 10, 64<<10 + 4*pageObjectCost},
		{store.Query{Limit: 100, IDs: []string{"x"}, Versions: all}, 100 * 2 * 2000, 100*2*2000 + 100*pageObjectCost}, // every version: the limit
	} {
		raw, cost := a.estimate("c", &tc.q)
		if raw != tc.raw || cost != tc.cost {
			t.Errorf("estimate(%+v) = %d, %d; want %d, %d", tc.q, raw, cost, tc.raw, tc.cost)
		}
	}
}

// TestPageObjectCost: what a page holds per object beyond its raw bytes
// (store.Object, id, slice capacity) and what its delivery record adds
// while it is made (a leaf and a date_added an object) stay within
// pageObjectCost, the figure admission counts, for pages with and without
// raw bytes, on both backends.
func TestPageObjectCost(t *testing.T) {
	t.Run("bolt", func(t *testing.T) {
		st, err := bolt.Open(filepath.Join(t.TempDir(), "ctigate.db"), bolt.Options{NoSync: true})
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		testPageObjectCost(t, st)
	})
	t.Run("redis", func(t *testing.T) {
		c, err := redis.NewClient(redis.Config{URL: redistest.URL(t)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() }) // after the test's keys are deleted
		st, err := redis.New(c, redis.Options{Prefix: redistest.Prefix(t, c)})
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		testPageObjectCost(t, st)
	})
}

func testPageObjectCost(t *testing.T, st store.Store) {
	const n = 10000
	ctx := context.Background()
	for start := 0; start < n; start += 2000 {
		var objs []store.Object
		for i := start; i < start+2000; i++ {
			id := fmt.Sprintf("indicator--6ba7b810-9dad-41d1-80b4-%012d", i)
			raw := `{"type":"indicator","id":"` + id + `","x":"` + strings.Repeat("x", 300) + `"}`
			objs = append(objs, store.Object{ID: id, Type: "indicator", SpecVersion: "2.1",
				Version: time.Date(2026, 1, 1, 0, 0, i, 0, time.UTC), Raw: []byte(raw), Producer: "CERT-A"})
		}
		if _, err := st.AddObjects(ctx, "c", objs); err != nil {
			t.Fatal(err)
		}
	}
	for _, withoutRaw := range []bool{true, false} {
		heap := func() uint64 {
			runtime.GC()
			var m runtime.MemStats
			runtime.ReadMemStats(&m)
			return m.HeapAlloc
		}
		before := heap()
		p, err := st.Objects(ctx, "c", store.Query{Limit: n, WithoutRaw: withoutRaw})
		if err != nil || len(p.Objects) != n {
			t.Fatalf("page of %d objects, %v", len(p.Objects), err)
		}
		var raw int64
		for i := range p.Objects {
			raw += int64(len(p.Objects[i].Raw))
		}
		held := int64(heap()) - int64(before)
		runtime.KeepAlive(p)
		// The delivery record's leaves and date_added, while it is made.
		const record = 32 + 24
		per := (held-raw)/n + record
		t.Logf("without raw %v: the page holds %d bytes, %d of them raw: %d bytes an object besides, with the delivery record's", withoutRaw, held, raw, per)
		if per > pageObjectCost {
			t.Errorf("a page holds %d bytes an object besides its raw bytes; admission counts %d", per, pageObjectCost)
		}
	}
}
