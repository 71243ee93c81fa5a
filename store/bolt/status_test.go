package bolt

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"reflect"
	"sync"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/ctigate/ctigate/store"
)

// envelopeStatus is the status of an envelope of n indicators, as the
// server writes it.
func envelopeStatus(n int) store.Status {
	rng := rand.New(rand.NewPCG(1, 1))
	st := store.Status{
		ID: "2d086da7-4bdc-4f91-900e-d77486753710", APIRoot: "exchange", Collection: "csirt-inbound",
		Owner: "cert-a", Status: "complete", RequestTimestamp: time.Date(2026, 3, 1, 12, 0, 0, 123456789, time.UTC),
		TotalCount: n,
	}
	for i := range n {
		msg := "added"
		if i%50 == 7 {
			msg = "this version was already in the collection"
		}
		st.Successes = append(st.Successes, store.StatusDetail{
			ID:      "indicator--" + uuid4(rng),
			Version: time.Date(2026, 3, 1, 12, 0, 0, i*1e6, time.UTC).Format("2006-01-02T15:04:05.000Z"),
			Message: msg,
		})
	}
	return st
}

func TestStatusEncoding(t *testing.T) {
	big := envelopeStatus(500)
	odd := store.Status{
		ID: "x", RequestTimestamp: time.Date(1, 1, 1, 0, 0, 0, 1, time.UTC), TotalCount: -1,
		Failures: []store.StatusDetail{
			{ID: "objects[3]", Message: "no id"},
			{ID: "indicator--3ADE5BFF-B17B-4BE5-BB26-71B00BD81ECC", Version: "2026-03-01T12:00:00.1Z"},
			{ID: "malware--3ade5bff-b17b-4be5-bb26-71b00bd81ecc", Version: "2026-03-01T12:00:00.123456789Z", Message: "ü"},
			{ID: "malware--3ade5bff-b17b-4be5-bb26-71b00bd81ecc", Version: "2026-03-01T12:00:00Z"},
			{ID: "indicator--3ade5bff-b17b-4be5-bb26-71b00bd81ecc", Version: "2026-03-01T12:00:00.000+00:00"},
			{ID: "indicator--", Version: "2026-02-30T12:00:00Z"},
			{ID: "", Version: "1969-12-31T23:59:59.999999Z"},
			{ID: "a--3ade5bff-b17b-4be5-bb26-71b00bd81ecc", Version: "0001-01-01T00:00:00Z"},
		},
		Pendings: []store.StatusDetail{{ID: "p"}},
	}
	expiring := envelopeStatus(3)
	expiring.Expires = time.Date(2026, 3, 8, 12, 0, 0, 123456789, time.UTC)
	for _, st := range []store.Status{big, odd, {ID: "empty"}, expiring} {
		b := encodeStatus(&st)
		got, err := decodeStatus(b)
		if err != nil {
			t.Fatalf("decodeStatus(encodeStatus(%s)): %v", st.ID, err)
		}
		if !reflect.DeepEqual(got, st) {
			t.Fatalf("round trip of %s:\n got %+v\nwant %+v", st.ID, got, st)
		}
		for n := range len(b) {
			if _, err := decodeStatus(b[:n]); err == nil {
				t.Fatalf("decodeStatus of %d of %d bytes of %s: got no error", n, len(b), st.ID)
			}
		}
	}
	j, _ := json.Marshal(big)
	b := encodeStatus(&big)
	t.Logf("status of 500 objects: %d bytes (JSON %d)", len(b), len(j))
	if len(b) > 16<<10 {
		t.Fatalf("status of 500 objects takes %d bytes, want at most 16 KiB", len(b))
	}
}

func FuzzDecodeStatus(f *testing.F) {
	st := envelopeStatus(3)
	f.Add(encodeStatus(&st))
	st.Expires = time.Date(2026, 3, 8, 12, 0, 0, 1, time.UTC)
	f.Add(encodeStatus(&st))
	f.Fuzz(func(t *testing.T, b []byte) {
		st, err := decodeStatus(b)
		if err != nil {
			return
		}
		again, err := decodeStatus(encodeStatus(&st))
		if err != nil || !reflect.DeepEqual(again, st) {
			t.Fatalf("re-encoding %x: %v", b, err)
		}
	})
}

// TestStatusFormatWithoutExpiry: a status without Expires is written in
// the form earlier versions wrote, byte for byte, so a status they stored
// reads back as one that does not expire; one with Expires carries it
// after the format byte.
func TestStatusFormatWithoutExpiry(t *testing.T) {
	st := store.Status{ID: "s", APIRoot: "r", Collection: "c", Owner: "o", Status: "complete",
		RequestTimestamp: time.Unix(1772366400, 5).UTC(), TotalCount: 2,
		Failures: []store.StatusDetail{{ID: "x", Message: "m"}}}
	// statusFormat, five strings, request_timestamp, total_count, then
	// no successes, one failure (common message "m"; a detail whose id
	// and version are strings), no pendings.
	old := []byte{1, 1, 's', 1, 'r', 1, 'c', 1, 'o', 8, 'c', 'o', 'm', 'p', 'l', 'e', 't', 'e'}
	old = binary.AppendVarint(old, 1772366400)
	old = binary.AppendUvarint(old, 5)
	old = binary.AppendVarint(old, 2)
	old = append(old, 0, 1, 1, 'm', detailCommonMsg|detailVersionEmpty<<detailVersionShift, 1, 'x', 0)
	if got := encodeStatus(&st); !bytes.Equal(got, old) {
		t.Fatalf("status without Expires encodes as %x, want the earlier form %x", got, old)
	}
	got, err := decodeStatus(old)
	if err != nil || !reflect.DeepEqual(got, st) {
		t.Fatalf("decoding the earlier form: %+v, %v; want %+v", got, err, st)
	}
	if _, ok := storedExpiry(old); ok {
		t.Fatal("the earlier form has an expiry")
	}
	st.Expires = time.Unix(1772971200, 7).UTC()
	b := encodeStatus(&st)
	if b[0] != statusFormatExpires {
		t.Fatalf("status with Expires has format %d, want %d", b[0], statusFormatExpires)
	}
	if exp, ok := storedExpiry(b); !ok || !exp.Equal(st.Expires) {
		t.Fatalf("storedExpiry = %s, %v; want %s", exp, ok, st.Expires)
	}
}

// statusBuckets returns the ids in the statuses bucket and the keys of
// the expiry index.
func statusBuckets(t *testing.T, s *Store) (ids []string, index [][]byte) {
	t.Helper()
	err := s.db.View(func(tx *bbolt.Tx) error {
		if err := tx.Bucket(bucketStatuses).ForEach(func(k, _ []byte) error {
			ids = append(ids, string(k))
			return nil
		}); err != nil {
			return err
		}
		return tx.Bucket(bucketStatusExpiry).ForEach(func(k, _ []byte) error {
			index = append(index, bytes.Clone(k))
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return ids, index
}

// TestSweepStatuses: the expiry index holds one key per status that
// expires, also after replacements; the sweep removes expired statuses
// in batches of its limit, the earliest first, with their index keys,
// and leaves statuses without Expires (those stored before statuses
// expired among them) alone.
func TestSweepStatuses(t *testing.T) {
	ctx := t.Context()
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	s := openTest(t, filepath.Join(t.TempDir(), "s.db"), Options{NoSync: true, Clock: func() time.Time { return now }})
	id := func(i int) string { return fmt.Sprintf("5f6a3c1e-0000-4000-8000-%012d", i) }
	for i := range 25 {
		st := store.Status{ID: id(i), Status: "complete", Expires: now.Add(time.Duration(25-i) * time.Minute)}
		if err := s.PutStatus(ctx, st); err != nil {
			t.Fatal(err)
		}
		// Replaced: the index keeps only the replacement's expiry.
		st.Expires = st.Expires.Add(time.Hour)
		if err := s.PutStatus(ctx, st); err != nil {
			t.Fatal(err)
		}
	}
	legacy := store.Status{ID: "legacy", Status: "complete", RequestTimestamp: now.Add(-365 * 24 * time.Hour)}
	if err := s.update(1, func(tx *bbolt.Tx) error {
		return tx.Bucket(bucketStatuses).Put([]byte(legacy.ID), encodeStatus(&legacy))
	}); err != nil {
		t.Fatal(err)
	}
	if ids, index := statusBuckets(t, s); len(ids) != 26 || len(index) != 25 {
		t.Fatalf("%d statuses and %d index keys, want 26 and 25", len(ids), len(index))
	}
	if n, err := s.SweepStatuses(ctx, 10); err != nil || n != 0 {
		t.Fatalf("SweepStatuses before any expiry = %d, %v; want 0", n, err)
	}

	// 80 minutes on, the 20 statuses that expire 61 to 80 minutes after
	// the start have expired (i = 5 to 24), the latest ids first.
	now = now.Add(80 * time.Minute)
	for _, want := range []int{10, 10, 0} {
		n, err := s.SweepStatuses(ctx, 10)
		if err != nil || n != want {
			t.Fatalf("SweepStatuses(10) = %d, %v; want %d", n, err, want)
		}
	}
	ids, index := statusBuckets(t, s)
	if len(ids) != 6 || len(index) != 5 {
		t.Fatalf("after the sweeps: statuses %v and %d index keys, want 6 and 5", ids, len(index))
	}
	for i := range 25 {
		_, err := s.Status(ctx, id(i))
		if want := i < 5; (err == nil) != want {
			t.Fatalf("status %d after the sweeps: %v; want it kept: %v", i, err, want)
		}
	}
	now = now.Add(365 * 24 * time.Hour)
	if n, err := s.SweepStatuses(ctx, 0); err != nil || n != 5 {
		t.Fatalf("SweepStatuses a year on = %d, %v; want 5", n, err)
	}
	if got, err := s.Status(ctx, legacy.ID); err != nil || !reflect.DeepEqual(got, legacy) {
		t.Fatalf("status stored without expiry, a year on: %+v, %v", got, err)
	}
	if ids, index := statusBuckets(t, s); len(ids) != 1 || len(index) != 0 {
		t.Fatalf("at the end: statuses %v and %d index keys, want only %s", ids, len(index), legacy.ID)
	}
}

// TestAddObjectsStatus writes envelopes and their status resources in
// one write each, concurrently, with one whose status cannot be stored:
// that write fails whole (its objects are not stored either), the shared
// transaction it joined is retried without it, and every other status is
// the one built from its own final results.
func TestAddObjectsStatus(t *testing.T) {
	ctx := t.Context()
	s := openTest(t, filepath.Join(t.TempDir(), "s.db"), Options{NoSync: true})
	const writers = 8
	errs := make([]error, writers)
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			objs := []store.Object{testObject(10*w + 1), testObject(10*w + 2)}
			id := fmt.Sprintf("status-%d", w)
			if w == 3 {
				id = "" // refused inside the write
			}
			_, errs[w] = s.AddObjectsStatus(ctx, "c", objs, func(res []store.AddResult) store.Status {
				st := store.Status{ID: id, Status: "complete", TotalCount: len(objs)}
				for i, r := range res {
					if !r.Existed {
						st.Successes = append(st.Successes, store.StatusDetail{ID: objs[i].ID, Message: "added"})
					}
				}
				return st
			})
		})
	}
	wg.Wait()
	for w := range writers {
		if w == 3 {
			if errs[w] == nil {
				t.Errorf("writer 3: a status without an id was stored")
			}
			p, err := s.Objects(ctx, "c", store.Query{IDs: []string{testObject(31).ID}})
			if err != nil || len(p.Objects) != 0 {
				t.Errorf("writer 3's objects are stored (%d, %v) though its status was refused", len(p.Objects), err)
			}
			continue
		}
		if errs[w] != nil {
			t.Fatalf("writer %d: %v", w, errs[w])
		}
		st, err := s.Status(ctx, fmt.Sprintf("status-%d", w))
		if err != nil {
			t.Fatalf("writer %d: status: %v", w, err)
		}
		if len(st.Successes) != 2 || st.Successes[0].ID != testObject(10*w+1).ID {
			t.Errorf("writer %d: status successes %+v, want its two objects", w, st.Successes)
		}
	}
	// Again: the objects exist now, and the status says so.
	objs := []store.Object{testObject(1), testObject(2)}
	_, err := s.AddObjectsStatus(ctx, "c", objs, func(res []store.AddResult) store.Status {
		st := store.Status{ID: "again", Status: "complete", TotalCount: 2}
		for i, r := range res {
			if r.Existed {
				st.Failures = append(st.Failures, store.StatusDetail{ID: objs[i].ID, Message: "already stored"})
			}
		}
		return st
	})
	if err != nil {
		t.Fatal(err)
	}
	if st, err := s.Status(ctx, "again"); err != nil || len(st.Failures) != 2 {
		t.Errorf("status again: %+v, %v; want both objects already stored", st, err)
	}
}
