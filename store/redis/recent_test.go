package redis_test

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"github.com/ctigate/ctigate/store"
	"github.com/ctigate/ctigate/store/redis"
)

// recentStores returns two replicas sharing a prefix, a third that keeps
// nothing of its adds (every read goes to Redis: the reference), and an
// admin client.
func recentStores(t *testing.T, recentBytes int64) (a, b, ref *redis.Store) {
	t.Helper()
	ss, admin := replicas(t, 2)
	r, err := redis.New(admin, redis.Options{Prefix: ss[0].Prefix(), RecentBytes: -1})
	if err != nil {
		t.Fatal(err)
	}
	if recentBytes != 0 {
		if ss[0], err = redis.New(ss[0].Client(), redis.Options{Prefix: ss[0].Prefix(), RecentBytes: recentBytes}); err != nil {
			t.Fatal(err)
		}
	}
	return ss[0], ss[1], r
}

func recentObj(i, v int) store.Object {
	o := testObj(i)
	o.Version = time.Date(2026, 1, 1, 0, 0, 0, v*1000, time.UTC)
	o.Raw = fmt.Appendf(nil, `{"id":%q,"v":%d,"pad":%q}`, o.ID, v, make([]byte, i%7*40))
	o.Producer = "CERT-A"
	o.Hash[0], o.Hash[1] = byte(i), byte(v)
	return o
}

// sameRead compares a page read by s with the reference's.
func sameRead(t *testing.T, s, ref *redis.Store, coll string, q store.Query) {
	t.Helper()
	got, err := s.Objects(t.Context(), coll, q)
	if err != nil {
		t.Fatal(err)
	}
	want, err := ref.Objects(t.Context(), coll, q)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("read after %v (limit %d, max bytes %d, without raw %v): %d objects, more %v, next %q; Redis has %d, more %v, next %q",
			q.AddedAfter, q.Limit, q.MaxBytes, q.WithoutRaw, len(got.Objects), got.More, got.Next, len(want.Objects), want.More, want.Next)
	}
}

// TestRecentReads: a replica answers reads of what follows a point
// (fan-out's and the indexer's) from its latest adds only when that is
// what Redis holds. Two replicas add (new versions and repeats), delete
// (each other's versions too), and an earlier build's delete that leaves
// the clock alone is played on Redis directly; after every step, reads
// after every date_added and from the start, with several limits and byte
// bounds, equal the same reads from Redis.
func TestRecentReads(t *testing.T) {
	a, b, ref := recentStores(t, 0)
	ctx := store.WithActor(t.Context(), store.Actor{User: "cert-a", Org: "CERT-A"})
	const coll = "recent"
	rng := rand.New(rand.NewPCG(7, 18))
	next := 0
	for step := range 120 {
		op := rng.IntN(10)
		switch {
		case op < 6: // an add by a, or by b
			s := a
			if op >= 4 {
				s = b
			}
			var objs []store.Object
			for range 1 + rng.IntN(6) {
				if next > 0 && rng.IntN(4) == 0 {
					objs = append(objs, recentObj(rng.IntN(next), 0)) // a repeat
				} else {
					objs = append(objs, recentObj(next, rng.IntN(3)))
					next++
				}
			}
			if _, err := s.AddObjects(ctx, coll, objs); err != nil {
				t.Fatal(err)
			}
		case op < 8: // a delete through a replica
			p, err := ref.Objects(ctx, coll, store.Query{Versions: []store.VersionMatch{{Kind: store.All}}, Limit: 1000})
			if err != nil || len(p.Objects) == 0 {
				continue
			}
			o := p.Objects[rng.IntN(len(p.Objects))]
			s := a
			if op == 7 {
				s = b
			}
			if _, err := s.DeleteObject(ctx, coll, o.ID, []store.VersionMatch{{Kind: store.At, At: o.Version}}, nil); err != nil {
				t.Fatal(err)
			}
		default: // an earlier build's delete: the version goes, the clock stays
			p, err := ref.Objects(ctx, coll, store.Query{Versions: []store.VersionMatch{{Kind: store.All}}, Limit: 1000})
			if err != nil || len(p.Objects) == 0 {
				continue
			}
			da := fmt.Sprint(p.Objects[rng.IntN(len(p.Objects))].DateAdded.UnixMicro())
			if err := a.Client().ZRemRangeByScore(ctx, a.Prefix()+":{c:"+coll+"}:z", da, da).Err(); err != nil {
				t.Fatal(err)
			}
		}
		all, err := ref.Objects(ctx, coll, store.Query{Versions: []store.VersionMatch{{Kind: store.All}}, Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		starts := []time.Time{{}}
		if n := len(all.Objects); n > 0 {
			starts = append(starts, all.Objects[n-1].DateAdded)
			for range 6 {
				o := all.Objects[rng.IntN(n)]
				starts = append(starts, o.DateAdded, o.DateAdded.Add(-time.Nanosecond))
			}
		}
		for _, s := range []*redis.Store{a, b} {
			for _, after := range starts {
				for _, q := range []store.Query{
					{Limit: 1}, {Limit: 3}, {Limit: 1000}, {Limit: 4, MaxBytes: 150}, {Limit: 5, WithoutRaw: true},
				} {
					q.AddedAfter, q.Versions = after, []store.VersionMatch{{Kind: store.All}}
					sameRead(t, s, ref, coll, q)
				}
			}
		}
		if step == 119 {
			t.Logf("%d versions stored; reads answered from the latest adds: %d by a, %d by b", len(all.Objects), redis.RecentHits(a), redis.RecentHits(b))
		}
	}
	if redis.RecentHits(a) == 0 || redis.RecentHits(b) == 0 {
		t.Fatalf("reads answered from the latest adds: %d by a, %d by b; the path under test did not run", redis.RecentHits(a), redis.RecentHits(b))
	}
	if redis.RecentHits(ref) != 0 {
		t.Fatalf("a store keeping nothing answered %d reads without Redis", redis.RecentHits(ref))
	}
}

// TestRecentFallsBack: each thing that makes the latest adds no longer
// all there is sends the read to Redis, and reads after it come back to
// the latest adds once they prove complete again.
func TestRecentFallsBack(t *testing.T) {
	a, b, ref := recentStores(t, 0)
	ctx := store.WithActor(t.Context(), store.Actor{User: "cert-a", Org: "CERT-A"})
	const coll = "fallback"
	all := []store.VersionMatch{{Kind: store.All}}
	read := func(s *redis.Store, after time.Time, wantHit bool, what string) store.Page {
		t.Helper()
		h := redis.RecentHits(s)
		sameRead(t, s, ref, coll, store.Query{AddedAfter: after, Versions: all, Limit: 100})
		p, err := s.Objects(ctx, coll, store.Query{AddedAfter: after, Versions: all, Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		if hit := redis.RecentHits(s) > h; hit != wantHit {
			t.Fatalf("%s: answered from the latest adds %v, want %v", what, hit, wantHit)
		}
		return p
	}
	add := func(s *redis.Store, from, n int) []store.AddResult {
		t.Helper()
		var objs []store.Object
		for i := from; i < from+n; i++ {
			objs = append(objs, recentObj(i, 0))
		}
		res, err := s.AddObjects(ctx, coll, objs)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	r1 := add(a, 0, 3)
	read(a, time.Time{}, true, "a's first add, read by a from the start")
	read(b, time.Time{}, false, "read by b, which wrote nothing")
	add(a, 3, 3)
	if p := read(a, r1[0].DateAdded, true, "a's two adds"); len(p.Objects) != 5 {
		t.Fatalf("read %d objects after the first, want 5", len(p.Objects))
	}
	r3 := add(b, 6, 2)
	read(a, r1[2].DateAdded, false, "b added after a's adds")
	read(b, r1[2].DateAdded, false, "b's add is after what a read: b cannot tell what came before it")
	read(b, r3[0].DateAdded, true, "b's add, read by b from within it")
	r4 := add(a, 8, 2)
	read(a, r3[1].DateAdded, true, "a's add after b's: a's chain starts at the clock b left")
	read(a, r1[2].DateAdded, false, "a's chain does not reach back over b's add")
	if _, err := b.DeleteObject(ctx, coll, recentObj(8, 0).ID, all, nil); err != nil {
		t.Fatal(err)
	}
	if p := read(a, r3[1].DateAdded, false, "b deleted one of a's versions"); len(p.Objects) != 1 {
		t.Fatalf("read %d objects after b's delete, want 1", len(p.Objects))
	}
	r5 := add(a, 10, 2)
	read(a, r4[1].DateAdded, false, "a added after the delete, which moved the clock: a cannot tell what came before")
	read(a, r5[0].DateAdded, true, "a's add after the delete, read from within it")
	da := fmt.Sprint(r5[1].DateAdded.UnixMicro())
	if err := a.Client().ZRemRangeByScore(ctx, a.Prefix()+":{c:"+coll+"}:z", da, da).Err(); err != nil {
		t.Fatal(err)
	}
	if p := read(a, r5[0].DateAdded, false, "a version removed without moving the clock"); len(p.Objects) != 0 {
		t.Fatalf("read %d objects after the removal, want none", len(p.Objects))
	}
	add(a, 12, 1)
	read(a, r5[0].DateAdded, false, "a's next add does not join a chain with a version gone")
	read(a, r5[1].DateAdded, true, "it starts one where the removed version was")
}

// TestRecentBounded: the records kept stay within their bound, the oldest
// turns going first, and reads before what is kept go to Redis.
func TestRecentBounded(t *testing.T) {
	a, _, ref := recentStores(t, 4096)
	ctx := store.WithActor(t.Context(), store.Actor{User: "cert-a", Org: "CERT-A"})
	all := []store.VersionMatch{{Kind: store.All}}
	var firsts []time.Time
	for k := range 40 {
		coll := fmt.Sprintf("bounded-%d", k%3)
		var objs []store.Object
		for i := range 5 {
			objs = append(objs, recentObj(100*k+i, 0))
		}
		res, err := a.AddObjects(ctx, coll, objs)
		if err != nil {
			t.Fatal(err)
		}
		firsts = append(firsts, res[0].DateAdded)
		if kept, _ := redis.RecentKept(a); kept > 4096 {
			t.Fatalf("after %d adds, %d bytes of records kept, bound 4096", k+1, kept)
		}
	}
	h := redis.RecentHits(a)
	sameRead(t, a, ref, "bounded-0", store.Query{Versions: all, Limit: 1000})
	if redis.RecentHits(a) != h {
		t.Fatal("a read from the start answered from the latest adds, whose oldest were dropped")
	}
	sameRead(t, a, ref, "bounded-0", store.Query{AddedAfter: firsts[39], Versions: all, Limit: 1000})
	if redis.RecentHits(a) != h+1 {
		t.Fatal("a read within the last add did not use what was kept")
	}
	if _, turns := redis.RecentKept(a); turns == 0 || turns >= 40 {
		t.Fatalf("%d turns kept of 40", turns)
	}
}

// TestRecentExpires: the records of an add are dropped once older than
// the age kept, at the next read, and the read goes to Redis.
func TestRecentExpires(t *testing.T) {
	a, _, ref := recentStores(t, 0)
	redis.SetRecentAge(a, 50*time.Millisecond)
	ctx := store.WithActor(t.Context(), store.Actor{User: "cert-a", Org: "CERT-A"})
	all := []store.VersionMatch{{Kind: store.All}}
	if _, err := a.AddObjects(ctx, "expires", []store.Object{recentObj(1, 0), recentObj(2, 0)}); err != nil {
		t.Fatal(err)
	}
	sameRead(t, a, ref, "expires", store.Query{Versions: all})
	if redis.RecentHits(a) != 1 {
		t.Fatal("a read just after the add did not use what was kept")
	}
	time.Sleep(100 * time.Millisecond)
	sameRead(t, a, ref, "expires", store.Query{Versions: all})
	if bytes, turns := redis.RecentKept(a); redis.RecentHits(a) != 1 || bytes != 0 || turns != 0 {
		t.Fatalf("after the age kept: %d reads answered without Redis, %d bytes and %d turns kept", redis.RecentHits(a), bytes, turns)
	}
}
