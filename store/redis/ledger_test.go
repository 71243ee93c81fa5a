package redis_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	goredis "github.com/redis/go-redis/v9"

	"github.com/ctigate/ctigate/custody"
	"github.com/ctigate/ctigate/store"
	"github.com/ctigate/ctigate/store/redis"
	"github.com/ctigate/ctigate/store/redis/redistest"
)

// replicas opens n stores (own clients) on one prefix of the test Redis.
func replicas(t *testing.T, n int) ([]*redis.Store, goredis.UniversalClient) {
	t.Helper()
	url := redistest.URL(t)
	admin, err := redis.NewClient(redis.Config{URL: url})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Close() })
	prefix := redistest.Prefix(t, admin)
	var out []*redis.Store
	for range n {
		c, err := redis.NewClient(redis.Config{URL: url})
		if err != nil {
			t.Fatal(err)
		}
		s, err := redis.New(c, redis.Options{Prefix: prefix, CloseClient: true})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		out = append(out, s)
	}
	return out, admin
}

// exportVerify exports s's whole ledger and verifies it.
func exportVerify(t *testing.T, s *redis.Store) []custody.Entry {
	t.Helper()
	var b bytes.Buffer
	var all []custody.Entry
	err := s.LedgerLines(t.Context(), 0, 0, func(_ uint64, line []byte) error {
		b.Write(line)
		b.WriteByte('\n')
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	v := custody.NewVerifier(custody.VerifyOptions{})
	for line := range bytes.Lines(b.Bytes()) {
		e, err := v.Add(bytes.TrimSuffix(line, []byte("\n")))
		if err != nil {
			t.Fatalf("the ledger does not verify: %v", err)
		}
		all = append(all, *e)
	}
	return all
}

// TestLedgerReplicas: replicas write to shared and own collections and
// append entries concurrently; the chain has every entry once, gap-free,
// and exactly one received entry per new version.
func TestLedgerReplicas(t *testing.T) {
	ss, _ := replicas(t, 3)
	const writers, each = 6, 20
	var wg sync.WaitGroup
	errs := make(chan error, writers*each)
	for w := range writers {
		s := ss[w%len(ss)]
		wg.Go(func() {
			ctx := store.WithActor(t.Context(), store.Actor{User: fmt.Sprintf("u%d", w)})
			for i := range each {
				coll := "shared"
				if i%3 == 1 {
					coll = fmt.Sprintf("own-%d", w)
				}
				var err error
				if i%4 == 3 {
					_, err = s.AppendEntries(ctx, []custody.Entry{{Action: custody.Rejected, Reason: "r"}})
				} else {
					o := testObj(w*1000 + i)
					// Every writer also re-adds an object the first writer
					// adds: stored once, received once.
					objs := []store.Object{o, testObj(i)}
					_, err = s.AddObjects(ctx, coll, objs)
				}
				if err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	all := exportVerify(t, ss[1])
	received := map[string]int{}
	for _, e := range all {
		if e.Action == custody.Received {
			received[e.Collection+" "+e.ObjectID+" "+e.ObjectVersion]++
		}
	}
	var versions int
	for _, coll := range append([]string{"shared"}, "own-0", "own-1", "own-2", "own-3", "own-4", "own-5") {
		p, err := ss[2].Objects(t.Context(), coll, store.Query{Versions: []store.VersionMatch{{Kind: store.All}}, Limit: 10000})
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range p.Objects {
			k := coll + " " + o.ID + " " + custody.FormatVersion(o.Version)
			if received[k] != 1 {
				t.Errorf("%s: %d received entries, want 1", k, received[k])
			}
			versions++
		}
	}
	if versions != len(received) {
		t.Fatalf("%d versions stored, %d received entries", versions, len(received))
	}
	h, err := ss[0].LedgerHead(t.Context())
	if err != nil || h.Seq != uint64(len(all)) || h.Hash != all[len(all)-1].Hash {
		t.Fatalf("head %+v, %v; want the last of %d entries", h, err, len(all))
	}
}

// TestLedgerPendingAfterCrash: a batch left pending by a writer that
// stopped before chaining it is chained by the next reader, and a batch
// chained but still listed (a stop before its removal) is not chained
// again.
func TestLedgerPendingAfterCrash(t *testing.T) {
	ss, admin := replicas(t, 2)
	ctx := store.WithActor(t.Context(), store.Actor{User: "cert-a"})
	if _, err := ss[0].AddObjects(ctx, "in", []store.Object{testObj(1)}); err != nil {
		t.Fatal(err)
	}
	pl := ss[0].Prefix() + ":{c:in}:pl"
	pln := ss[0].Prefix() + ":{c:in}:pln"
	// Chained, but listed again as if its removal had not happened.
	line := `{"action":"received","collection":"in","object_id":"indicator--x","prev":"","seq":0,"time":"","user":"cert-a"}`
	if err := admin.RPush(t.Context(), pl, "1:0\n"+line).Err(); err != nil {
		t.Fatal(err)
	}
	// Written, never chained: the writer stopped after its script.
	if err := admin.Incr(t.Context(), pln).Err(); err != nil {
		t.Fatal(err)
	}
	if err := admin.RPush(t.Context(), pl, "2:0\n"+strings.Replace(line, "indicator--x", "indicator--y", 1)).Err(); err != nil {
		t.Fatal(err)
	}
	all := exportVerify(t, ss[1])
	var got []string
	for _, e := range all {
		got = append(got, e.ObjectID)
	}
	if fmt.Sprint(got) != fmt.Sprint([]string{testObj(1).ID, "indicator--y"}) {
		t.Fatalf("entries about %v, want %s then indicator--y", got, testObj(1).ID)
	}
	// The next pass removes what the last one chained.
	if _, err := ss[1].LedgerHead(t.Context()); err != nil {
		t.Fatal(err)
	}
	if n, err := admin.LLen(t.Context(), pl).Result(); err != nil || n != 0 {
		t.Fatalf("pending list holds %d batches (%v) after chaining, want 0", n, err)
	}
	// The writer's process, with its stale view, still appends after them.
	if _, err := ss[0].AddObjects(ctx, "in", []store.Object{testObj(2)}); err != nil {
		t.Fatal(err)
	}
	if all := exportVerify(t, ss[0]); len(all) != 3 || all[2].ObjectID != testObj(2).ID {
		t.Fatalf("after another write: %d entries", len(all))
	}
}

// TestLedgerPendingTrim: writes remove the batches already chained from
// the head of the pending list, and never one that is not: a batch left
// unchained by a stopped writer, between two of another writer's, stays
// listed until it is chained, and is chained exactly once.
func TestLedgerPendingTrim(t *testing.T) {
	ss, admin := replicas(t, 2)
	ctx := store.WithActor(t.Context(), store.Actor{User: "cert-a"})
	pl := ss[0].Prefix() + ":{c:in}:pl"
	pln := ss[0].Prefix() + ":{c:in}:pln"
	listed := func(when string, want ...string) {
		t.Helper()
		vals, err := admin.LRange(t.Context(), pl, 0, -1).Result()
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, v := range vals {
			n, _, _ := strings.Cut(v, ":")
			got = append(got, n)
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("%s: pending batches %v, want %v", when, got, want)
		}
	}
	for i := range 3 {
		if _, err := ss[0].AddObjects(ctx, "in", []store.Object{testObj(i)}); err != nil {
			t.Fatal(err)
		}
	}
	// Each write removes the batches chained before it, not its own.
	listed("after three writes", "3")
	// Written by a writer that stopped before chaining it.
	if err := admin.Incr(t.Context(), pln).Err(); err != nil {
		t.Fatal(err)
	}
	line := `{"action":"received","collection":"in","object_id":"indicator--y","prev":"","seq":0,"time":"","user":"cert-a"}`
	if err := admin.RPush(t.Context(), pl, "4:0\n"+line).Err(); err != nil {
		t.Fatal(err)
	}
	// The next write removes batch 3, keeps 4 (not chained when its
	// script ran) and chains 4 and its own.
	if _, err := ss[0].AddObjects(ctx, "in", []store.Object{testObj(10)}); err != nil {
		t.Fatal(err)
	}
	listed("after a stopped writer's batch and another write", "4", "5")
	if _, err := ss[1].AddObjects(ctx, "in", []store.Object{testObj(11)}); err != nil {
		t.Fatal(err)
	}
	listed("after the other replica's write", "6")
	var got []string
	for _, e := range exportVerify(t, ss[1]) {
		got = append(got, e.ObjectID)
	}
	want := []string{testObj(0).ID, testObj(1).ID, testObj(2).ID, "indicator--y", testObj(10).ID, testObj(11).ID}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("entries about %v, want %v", got, want)
	}
}

// TestCheckpointRaceReplicas: two replicas sign one chain. The first
// reads the head, then its tree takes long; meanwhile entries are added
// and the second signs a later head. The first's checkpoint, which would
// sign an earlier entry than the one already in the chain, is not
// appended (verifiers refuse a checkpoint signing an earlier entry than
// the one before it), its Sign reports no error, and the chain verifies.
func TestCheckpointRaceReplicas(t *testing.T) {
	ss, _ := replicas(t, 2)
	ctx := store.WithActor(t.Context(), store.Actor{User: "cert-a", Org: "CERT-A"})
	add := func(s *redis.Store, from, n int) {
		t.Helper()
		var objs []store.Object
		for i := range n {
			objs = append(objs, testObj(from+i))
		}
		if _, err := s.AddObjects(ctx, "race", objs); err != nil {
			t.Fatal(err)
		}
	}
	add(ss[0], 0, 5)
	slow := make(chan struct{})
	reading := make(chan struct{})
	signer := func(seed byte) *custody.Signer {
		return custody.NewSigner(ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seed}, 32)))
	}
	first := &custody.Checkpointer{Chain: ss[0], Signer: signer(1), Root: func(ctx context.Context, size uint64) (string, error) {
		close(reading)
		<-slow
		return store.TreeRoot(ctx, ss[0], size)
	}}
	second := &custody.Checkpointer{Chain: ss[1], Signer: signer(2), Root: func(ctx context.Context, size uint64) (string, error) {
		return store.TreeRoot(ctx, ss[1], size)
	}}
	done := make(chan error, 1)
	go func() {
		_, err := first.Sign(t.Context())
		done <- err
	}()
	<-reading // the first has read head 5
	add(ss[1], 5, 3)
	h, err := second.Sign(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if h.Seq != 9 {
		t.Fatalf("the second signed and stands at seq %d, want 9 (8 entries and its checkpoint)", h.Seq)
	}
	close(slow)
	if err := <-done; err != nil {
		t.Fatalf("the first replica's late checkpoint: %v, want no error (a later one covers it)", err)
	}
	all := exportVerify(t, ss[0])
	cps := 0
	for _, e := range all {
		if e.Action == custody.Checkpoint {
			cps++
		}
	}
	if len(all) != 9 || cps != 1 {
		t.Fatalf("%d entries, %d checkpoints; want 9 and 1: the late checkpoint was appended", len(all), cps)
	}
	// Appended directly, the late checkpoint is refused as stale.
	_, err = ss[0].AppendEntries(t.Context(), []custody.Entry{signer(1).Checkpoint(custody.Head{Seq: 5, Hash: all[4].Hash}, "00")})
	if !errors.Is(err, custody.ErrStaleCheckpoint) {
		t.Fatalf("a checkpoint of seq 5 after one of seq 8: %v, want ErrStaleCheckpoint", err)
	}
	// So is a second checkpoint of the same head (two replicas stopping
	// at once both sign it): it would add an entry no checkpoint signs.
	_, err = ss[0].AppendEntries(t.Context(), []custody.Entry{signer(1).Checkpoint(custody.Head{Seq: 8, Hash: all[7].Hash}, "00")})
	if !errors.Is(err, custody.ErrStaleCheckpoint) {
		t.Fatalf("a second checkpoint of seq 8: %v, want ErrStaleCheckpoint", err)
	}
}
