package redis_test

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ctigate/ctigate/store"
	"github.com/ctigate/ctigate/store/redis"
)

// TestAddReplicasRace: replicas (each its own client) write overlapping
// envelopes, the same versions and new ones, into one collection at once,
// so their transactions keep invalidating each other. Every version is
// stored once, exactly one write reports it new, date_added is unique and
// ascending in write order, and each version list matches the records.
func TestAddReplicasRace(t *testing.T) {
	ss, _ := replicas(t, 4)
	ctx := store.WithActor(t.Context(), store.Actor{User: "cert-a", Org: "CERT-A"})
	// Rounds go on until the replicas' adds have started over 20 times
	// (or 3,000 rounds each): the path under test is the restart.
	const coll, maxRounds, ids, wantRestarts = "race", 3000, 20, 20
	ver := func(k int) time.Time { return time.Date(2026, 1, 1, 0, 0, k, 0, time.UTC) }
	var (
		mu    sync.Mutex
		added = map[string]int{} // "id@version" -> writes that reported it new
		das   = map[int64]string{}
		dups  []string
		wg    sync.WaitGroup
		errs  = make(chan error, len(ss))
	)
	for w, s := range ss {
		wg.Go(func() {
			for r := range maxRounds {
				if r%10 == 0 && restarts(ss) >= wantRestarts {
					return
				}
				var objs []store.Object
				for i := range ids {
					// Every replica writes every id; versions advance every
					// few rounds, so most versions are written by all.
					o := testObj(i)
					o.Version = ver((r + w%2) / 3)
					o.Raw = fmt.Appendf(nil, `{"id":%q,"modified":%q}`, o.ID, o.Version.Format(time.RFC3339))
					o.Hash[0], o.Hash[1] = byte(i), byte(o.Version.Second())
					objs = append(objs, o)
				}
				res, err := s.AddObjects(ctx, coll, objs)
				if err != nil {
					errs <- fmt.Errorf("replica %d: %w", w, err)
					return
				}
				mu.Lock()
				for i, a := range res {
					if !a.Existed {
						k := objs[i].ID + "@" + objs[i].Version.Format(time.RFC3339)
						added[k]++
						if prev, dup := das[a.DateAdded.UnixMicro()]; dup {
							dups = append(dups, fmt.Sprintf("date_added %v given to %s and %s", a.DateAdded, prev, k))
						}
						das[a.DateAdded.UnixMicro()] = k
					}
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if len(dups) > 0 {
		t.Fatalf("%d date_added given twice, first: %s", len(dups), dups[0])
	}
	t.Logf("%d versions, %d restarts", len(added), restarts(ss))
	if restarts(ss) < wantRestarts {
		t.Fatalf("adds started over %d times: the replicas did not race", restarts(ss))
	}
	for k, n := range added {
		if n != 1 {
			t.Errorf("%s reported new by %d writes", k, n)
		}
	}
	// What is stored: each version once, in date_added order, as reported.
	p, err := ss[0].Objects(t.Context(), coll, store.Query{Limit: 100000, Versions: []store.VersionMatch{{Kind: store.All}}})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Objects) != len(added) {
		t.Fatalf("%d versions stored, %d reported new", len(p.Objects), len(added))
	}
	var got []int64
	for _, o := range p.Objects {
		k := o.ID + "@" + o.Version.Format(time.RFC3339)
		if das[o.DateAdded.UnixMicro()] != k {
			t.Fatalf("%s stored at %v, which was reported for %q", k, o.DateAdded, das[o.DateAdded.UnixMicro()])
		}
		got = append(got, o.DateAdded.UnixMicro())
	}
	if !slices.IsSorted(got) {
		t.Fatal("a page is not in date_added order")
	}
	// The version lists agree with the records: reading by id gives each
	// id's versions.
	for i := range ids {
		id := fmt.Sprintf("indicator--00000000-0000-4000-8000-%012d", i)
		q := store.Query{IDs: []string{id}, Versions: []store.VersionMatch{{Kind: store.All}}, Limit: 1000}
		p, err := ss[1].Objects(t.Context(), coll, q)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for k := range added {
			if len(k) > len(id) && k[:len(id)] == id {
				n++
			}
		}
		if len(p.Objects) != n {
			t.Fatalf("%s: %d versions by id, %d stored", id, len(p.Objects), n)
		}
	}
	// The custody ledger holds one received entry per new version.
	if n := len(exportVerify(t, ss[2])); n != len(added) {
		t.Fatalf("%d ledger entries, %d versions", n, len(added))
	}
}

func restarts(ss []*redis.Store) int64 {
	n := int64(0)
	for _, s := range ss {
		n += redis.AddRestarts(s)
	}
	return n
}

// TestAddGroupCommit: many concurrent small adds to one collection from
// one process share turns (one transaction for several adds), and each
// gets its own outcome: every version stored once with a unique
// date_added, reported new to the add that sent it first, and each add's
// received entries in the ledger, which verifies.
func TestAddGroupCommit(t *testing.T) {
	ss, _ := replicas(t, 1)
	s := ss[0]
	ctx := store.WithActor(t.Context(), store.Actor{User: "cert-a", Org: "CERT-A"})
	const writers, each, per = 16, 25, 4
	var (
		mu    sync.Mutex
		news  = map[string]int{}
		das   = map[int64]bool{}
		dups  int
		wg    sync.WaitGroup
		errs  = make(chan error, writers)
		calls int64
	)
	for w := range writers {
		wg.Go(func() {
			for a := range each {
				var objs []store.Object
				for i := range per {
					// Writers share ids pairwise, so merged adds hold the same
					// versions: the first in the turn stores them.
					o := testObj((w/2)*each*per + a*per + i)
					objs = append(objs, o)
				}
				res, err := s.AddObjects(ctx, "group", objs)
				if err != nil {
					errs <- err
					return
				}
				mu.Lock()
				calls++
				for i, r := range res {
					if !r.Existed {
						news[objs[i].ID]++
						if das[r.DateAdded.UnixMicro()] {
							dups++
						}
						das[r.DateAdded.UnixMicro()] = true
					}
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	turns := redis.AddTurns(s)
	t.Logf("%d adds in %d turns, %d versions", calls, turns, len(news))
	if turns >= calls {
		t.Fatalf("%d adds took %d turns: none shared one", calls, turns)
	}
	if dups > 0 {
		t.Fatalf("%d date_added given twice", dups)
	}
	if len(news) != writers/2*each*per {
		t.Fatalf("%d versions reported new, want %d", len(news), writers/2*each*per)
	}
	for id, n := range news {
		if n != 1 {
			t.Fatalf("%s reported new %d times", id, n)
		}
	}
	p, err := s.Objects(t.Context(), "group", store.Query{Limit: 100000, Versions: []store.VersionMatch{{Kind: store.All}}})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Objects) != len(news) {
		t.Fatalf("%d versions stored, %d reported new", len(p.Objects), len(news))
	}
	for i := 1; i < len(p.Objects); i++ {
		if !p.Objects[i].DateAdded.After(p.Objects[i-1].DateAdded) {
			t.Fatal("stored versions not in strictly ascending date_added order")
		}
	}
	if n := len(exportVerify(t, s)); n != len(news) {
		t.Fatalf("%d ledger entries, want one received entry per version (%d)", n, len(news))
	}
}

// TestAddGroupCommitBounded: adds share a turn only up to 5,000 objects
// in all (a transaction holds Redis while it runs): concurrent adds of
// 3,000 objects each run in turns of their own.
func TestAddGroupCommitBounded(t *testing.T) {
	ss, _ := replicas(t, 1)
	s := ss[0]
	const writers, each, per = 3, 2, 3000
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Go(func() {
			for a := range each {
				objs := make([]store.Object, per)
				for i := range objs {
					objs[i] = testObj((w*each+a)*per + i)
				}
				if _, err := s.AddObjects(t.Context(), "bounded", objs); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if turns := redis.AddTurns(s); turns != writers*each {
		t.Fatalf("%d adds of %d objects took %d turns, want one each", writers*each, per, turns)
	}
	p, err := s.Objects(t.Context(), "bounded", store.Query{Limit: 100000})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Objects) != writers*each*per {
		t.Fatalf("%d objects stored, want %d", len(p.Objects), writers*each*per)
	}
}
