package bolt

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/ctigate/ctigate/custody"
	"github.com/ctigate/ctigate/stix"
	"github.com/ctigate/ctigate/store"
)

func stixObject(t *testing.T, i int) store.Object {
	t.Helper()
	id := fmt.Sprintf("indicator--00000000-0000-4000-8000-%012d", i)
	raw := fmt.Appendf(nil, `{"type":"indicator","spec_version":"2.1","id":%q,"created":"2026-01-01T00:00:00.000Z","modified":"2026-01-01T00:00:00.000Z","name":"n%d"}`, id, i)
	h, err := stix.Hash(raw)
	if err != nil {
		t.Fatal(err)
	}
	return store.Object{ID: id, Type: "indicator", SpecVersion: "2.1", Version: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), Raw: raw, Hash: h}
}

// verifyFile verifies the ledger of the store file at path as `ctigate
// audit verify --data` does: the chain from its export, then each stored
// version against its entry.
func verifyFile(t *testing.T, path string) error {
	t.Helper()
	s, err := Open(path, Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	v := custody.NewVerifier(custody.VerifyOptions{})
	oc := custody.NewObjectChecker()
	err = s.LedgerLines(ctx, 0, 0, func(_ uint64, line []byte) error {
		e, err := v.Add(line)
		if err != nil {
			return err
		}
		oc.Add(e)
		return nil
	})
	if err != nil {
		return err
	}
	_, err = oc.Check(func(coll string, fn func(id, version string, raw []byte) error) error {
		return store.EachVersion(ctx, s, coll, func(o store.Object) error {
			return fn(o.ID, custody.FormatVersion(o.Version), o.Raw)
		})
	})
	return err
}

// TestLedgerTamper alters, removes, reorders and inserts ledger entries,
// and alters a stored object's bytes, directly in the bbolt file: each
// time verification fails and names the entry.
func TestLedgerTamper(t *testing.T) {
	dir := t.TempDir()
	orig := filepath.Join(dir, "orig.db")
	s, err := Open(orig, Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	ctx := store.WithActor(context.Background(), store.Actor{User: "cert-a", Org: "CERT-A"})
	objs := []store.Object{stixObject(t, 1), stixObject(t, 2), stixObject(t, 3)}
	if _, err := s.AddObjects(ctx, "inbound", objs); err != nil { // entries 1–3
		t.Fatal(err)
	}
	if _, err := s.AppendEntries(ctx, []custody.Entry{{Action: custody.Delivered, User: "police", Collection: "inbound", Count: 1,
		FirstAdded: custody.FormatTime(time.Unix(1, 0)), LastAdded: custody.FormatTime(time.Unix(1, 0)), ItemsRoot: strings.Repeat("ab", 32)}}); err != nil { // 4
		t.Fatal(err)
	}
	if _, err := s.DeleteObject(ctx, "inbound", objs[2].ID, nil, nil); err != nil { // 5
		t.Fatal(err)
	}
	if _, err := s.AppendEntries(ctx, []custody.Entry{{Action: custody.Rejected, User: "cert-a", ObjectID: "x"}}); err != nil { // 6
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := verifyFile(t, orig); err != nil {
		t.Fatalf("the untouched ledger does not verify: %v", err)
	}

	tamper := func(name string, wantSeq uint64, fn func(tx *bbolt.Tx) error) {
		t.Helper()
		path := filepath.Join(dir, name+".db")
		copyFile(t, orig, path)
		db, err := bbolt.Open(path, 0o600, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := db.Update(fn); err != nil {
			t.Fatal(err)
		}
		db.Close()
		err = verifyFile(t, path)
		var ve *custody.Error
		if !errors.As(err, &ve) || ve.Seq != wantSeq {
			t.Errorf("%s: got %v, want entry %d named", name, err, wantSeq)
		}
	}
	get := func(tx *bbolt.Tx, seq uint64) []byte { return bytes.Clone(tx.Bucket(bucketLedger).Get(seqKey(seq))) }
	put := func(tx *bbolt.Tx, seq uint64, v []byte) error { return tx.Bucket(bucketLedger).Put(seqKey(seq), v) }
	tamper("alter", 2, func(tx *bbolt.Tx) error {
		return put(tx, 2, bytes.Replace(get(tx, 2), []byte(`"cert-a"`), []byte(`"cert-b"`), 1))
	})
	tamper("remove", 4, func(tx *bbolt.Tx) error { return tx.Bucket(bucketLedger).Delete(seqKey(3)) })
	// Entry 4 now sits where 3 was: it is the first that does not follow.
	tamper("reorder", 4, func(tx *bbolt.Tx) error {
		a, b := get(tx, 3), get(tx, 4)
		if err := put(tx, 3, b); err != nil {
			return err
		}
		return put(tx, 4, a)
	})
	tamper("insert", 4, func(tx *bbolt.Tx) error {
		// Shift 4… up by one and put a forged entry, sealed to follow
		// entry 3, in place 4: entry 5 (the old 4) no longer follows it.
		for seq := uint64(6); seq >= 4; seq-- {
			if err := put(tx, seq+1, get(tx, seq)); err != nil {
				return err
			}
		}
		var prev custody.Entry
		if err := jsonUnmarshal(get(tx, 3), &prev); err != nil {
			return err
		}
		forged := custody.Entry{Action: custody.Deleted, ObjectID: "indicator--forged", Time: prev.Time}
		line, err := custody.SealJSON(&forged, custody.Head{Seq: 3, Hash: prev.Hash})
		if err != nil {
			return err
		}
		return put(tx, 4, line)
	})
	tamper("object bytes", 1, func(tx *bbolt.Tx) error {
		body := tx.Bucket(bucketCollections).Bucket([]byte("inbound")).Bucket(bucketBody)
		k, v := body.Cursor().First()
		if !bytes.Contains(v, []byte(`"n1"`)) {
			return fmt.Errorf("first body value %q", v)
		}
		return body.Put(bytes.Clone(k), bytes.Replace(v, []byte(`"n1"`), []byte(`"n9"`), 1))
	})
	tamper("object removed", 2, func(tx *bbolt.Tx) error {
		raw := tx.Bucket(bucketCollections).Bucket([]byte("inbound")).Bucket(bucketIndex)
		c := raw.Cursor()
		c.First()
		k, _ := c.Next()
		return raw.Delete(bytes.Clone(k))
	})
}

func copyFile(t testing.TB, from, to string) {
	t.Helper()
	src, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := os.Create(to)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		t.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
}
