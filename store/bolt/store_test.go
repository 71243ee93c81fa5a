package bolt

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/ctigate/ctigate"
	"github.com/ctigate/ctigate/store"
)

func testObject(i int) store.Object {
	id := fmt.Sprintf("indicator--00000000-0000-4000-8000-%012d", i)
	return store.Object{
		ID: id, Type: "indicator", SpecVersion: "2.1",
		Version: time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC),
		Raw:     fmt.Appendf(nil, `{"type":"indicator","id":%q}`, id),
	}
}

func TestClose(t *testing.T) {
	ctx := t.Context()
	s, err := Open(filepath.Join(t.TempDir(), "s.db"), Options{NoSync: true})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	if _, err := s.AddObjects(ctx, "c", []store.Object{testObject(1)}); err != nil {
		t.Fatalf("AddObjects: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	_, err = s.AddObjects(ctx, "c", []store.Object{testObject(2)})
	if ctigate.KindOf(err) != ctigate.Unavailable {
		t.Fatalf("AddObjects after Close: got %v, want Unavailable", err)
	}
	if _, err := s.Objects(ctx, "c", store.Query{}); ctigate.KindOf(err) != ctigate.Unavailable {
		t.Fatalf("Objects after Close: got %v, want Unavailable", err)
	}
	if err := s.Ping(ctx); ctigate.KindOf(err) != ctigate.Unavailable {
		t.Fatalf("Ping after Close: got %v, want Unavailable", err)
	}
}

// TestCloseWaits checks that Close waits for a write under way and that the
// write is durable.
func TestCloseWaits(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.db")
	s, err := Open(path, Options{NoSync: true})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	started, release := make(chan struct{}), make(chan struct{})
	done := make(chan error, 1)
	go func() {
		if err := s.enter("test"); err != nil {
			done <- err
			return
		}
		defer s.leave()
		done <- s.update(1, func(tx *bbolt.Tx) error {
			close(started)
			<-release
			return tx.Bucket(bucketStatuses).Put([]byte("k"), []byte("v"))
		})
	}()
	<-started
	closed := make(chan error, 1)
	go func() { closed <- s.Close() }()
	select {
	case err := <-closed:
		t.Fatalf("Close returned (%v) while a write was under way", err)
	case <-time.After(50 * time.Millisecond):
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatalf("write: %v", err)
	}
	if err := <-closed; err != nil {
		t.Fatalf("Close: %v", err)
	}
	s = openTest(t, path, Options{})
	err = s.db.View(func(tx *bbolt.Tx) error {
		if tx.Bucket(bucketStatuses).Get([]byte("k")) == nil {
			return errors.New("write lost")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestOpenLocked(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.db")
	openTest(t, path, Options{NoSync: true})
	_, err := Open(path, Options{OpenTimeout: 100 * time.Millisecond})
	if ctigate.KindOf(err) != ctigate.Unavailable {
		t.Fatalf("Open of a locked file: got %v, want Unavailable", err)
	}
}

func TestOpenWrongFormat(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.db")
	db, err := bbolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bbolt.Tx) error {
		b, err := tx.CreateBucket(bucketMeta)
		if err != nil {
			return err
		}
		return b.Put(keyFormat, []byte{99})
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	if s, err := Open(path, Options{}); err == nil {
		s.Close()
		t.Fatal("Open of a file of an unknown format: got no error")
	}
}

// TestOpenUpgradesFormat3: a format 3 file (one tree hash to a
// ledger-tree value) opens, is marked format 4 so that a format 3 build
// refuses it, and keeps its tree hashes readable.
func TestOpenUpgradesFormat3(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.db")
	s := openTest(t, path, Options{NoSync: true})
	treeEntries(t, s, 0, 10)
	root, err := store.TreeRoot(context.Background(), s, 10)
	if err != nil {
		t.Fatal(err)
	}
	format := func() []byte {
		var f []byte
		if err := s.db.View(func(tx *bbolt.Tx) error { f = bytes.Clone(tx.Bucket(bucketMeta).Get(keyFormat)); return nil }); err != nil {
			t.Fatal(err)
		}
		return f
	}
	if f := format(); !bytes.Equal(f, []byte{fileFormat}) {
		t.Fatalf("new file: format %x", f)
	}
	// As a format 3 build left it: one hash to a value.
	err = s.db.Update(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketLedgerTree)
		var hs [][]byte
		if err := b.ForEach(func(k, v []byte) error {
			for i := 0; i < len(v); i += 32 {
				hs = append(hs, bytes.Clone(v[i:i+32]))
			}
			return nil
		}); err != nil {
			return err
		}
		if err := tx.DeleteBucket(bucketLedgerTree); err != nil {
			return err
		}
		if b, err = tx.CreateBucket(bucketLedgerTree); err != nil {
			return err
		}
		for i, h := range hs {
			if err := b.Put(seqKey(uint64(i)), h); err != nil {
				return err
			}
		}
		return tx.Bucket(bucketMeta).Put(keyFormat, []byte{3})
	})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = openTest(t, path, Options{NoSync: true})
	if f := format(); !bytes.Equal(f, []byte{fileFormat}) {
		t.Fatalf("format 3 file after Open: format %x, want %d", f, fileFormat)
	}
	wantTree(t, s)
	if got, err := store.TreeRoot(context.Background(), s, 10); err != nil || got != root {
		t.Fatalf("TreeRoot after the upgrade: %s, %v; want %s", got, err, root)
	}
}

// TestGroupCommitIsolation checks that writes grouped into one transaction
// do not share a failure.
func TestGroupCommitIsolation(t *testing.T) {
	s := openTest(t, filepath.Join(t.TempDir(), "s.db"), Options{NoSync: true})
	started, release := make(chan struct{}), make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		// The leader holds the write lock until the others are queued.
		s.update(1, func(tx *bbolt.Tx) error {
			close(started)
			<-release
			return nil
		})
	})
	<-started
	errBoom := errors.New("boom")
	var runs sync.Map
	errs := make([]error, 4)
	for i := range errs {
		wg.Go(func() {
			errs[i] = s.update(1, func(tx *bbolt.Tx) error {
				n, _ := runs.LoadOrStore(i, new(int))
				*n.(*int)++
				if i == 2 {
					return errBoom
				}
				return tx.Bucket(bucketStatuses).Put(fmt.Appendf(nil, "k%d", i), []byte("v"))
			})
		})
	}
	// Wait until all four are queued behind the leader.
	for {
		s.w.mu.Lock()
		n := len(s.w.queue)
		s.w.mu.Unlock()
		if n == 4 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	close(release)
	wg.Wait()
	for i, err := range errs {
		if want := i == 2; (err != nil) != want || (want && !errors.Is(err, errBoom)) {
			t.Fatalf("write %d: got error %v", i, err)
		}
	}
	err := s.db.View(func(tx *bbolt.Tx) error {
		for i := range errs {
			got := tx.Bucket(bucketStatuses).Get(fmt.Appendf(nil, "k%d", i)) != nil
			if got != (i != 2) {
				return fmt.Errorf("key k%d stored = %v", i, got)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := runs.Load(2); *n.(*int) != 2 {
		t.Fatalf("the failing write ran %d times, want 2 (grouped, then alone)", *n.(*int))
	}
}

// TestGroupCommitBatches checks that concurrent writers share transactions.
func TestGroupCommitBatches(t *testing.T) {
	s := openTest(t, filepath.Join(t.TempDir(), "s.db"), Options{})
	ctx := context.Background()
	before := s.commits.Load()
	const writers, calls = 8, 20
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for c := range calls {
				objs := []store.Object{testObject(w*1000 + c)}
				if _, err := s.AddObjects(ctx, "c", objs); err != nil {
					t.Errorf("AddObjects: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
	commits := s.commits.Load() - before
	p, err := s.Objects(ctx, "c", store.Query{Limit: 1000})
	if err != nil || len(p.Objects) != writers*calls {
		t.Fatalf("Objects: %d objects, %v; want %d", len(p.Objects), err, writers*calls)
	}
	if commits >= writers*calls {
		t.Fatalf("%d concurrent writes took %d transactions, want fewer", writers*calls, commits)
	}
	t.Logf("%d concurrent writes took %d transactions", writers*calls, commits)
}

// TestWritePanic checks that a panicking write fails its callers without
// wedging later writes.
func TestWritePanic(t *testing.T) {
	s := openTest(t, filepath.Join(t.TempDir(), "s.db"), Options{NoSync: true})
	err := s.update(1, func(tx *bbolt.Tx) error { panic("boom") })
	if err == nil {
		t.Fatal("panicking write: got no error")
	}
	if _, err := s.AddObjects(t.Context(), "c", []store.Object{testObject(1)}); err != nil {
		t.Fatalf("AddObjects after a panicking write: %v", err)
	}
}
