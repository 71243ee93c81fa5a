package bolt

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"time"

	"go.etcd.io/bbolt"

	"github.com/ctigate/ctigate"
	"github.com/ctigate/ctigate/custody"
	"github.com/ctigate/ctigate/store"
)

// DeleteObject removes the versions of id selected by versions (empty means
// all) among those whose spec_version is in specVersions (empty means any).
// First and last are determined among the versions passing specVersions.
// Removing none is ctigate.NotFound.
func (s *Store) DeleteObject(ctx context.Context, collection, id string, versions []store.VersionMatch, specVersions []string) (int, error) {
	const op = "bolt.DeleteObject"
	if err := store.ValidName("collection", collection); err != nil {
		return 0, ctigate.E(op, ctigate.Invalid, err.Error())
	}
	if id == "" || len(id) > maxIDLen {
		return 0, ctigate.E(op, ctigate.Invalid, "bad object id")
	}
	sel := store.Query{Versions: versions, SpecVersions: specVersions}
	if len(versions) == 0 {
		sel.Versions = []store.VersionMatch{{Kind: store.All}}
	}
	f, err := compileQuery(sel)
	if err != nil {
		return 0, ctigate.E(op, ctigate.Invalid, err.Error())
	}
	if err := s.enter(op); err != nil {
		return 0, err
	}
	defer s.leave()
	if err := ctx.Err(); err != nil {
		return 0, ctxErr(op, err)
	}
	actor, _ := store.ActorFrom(ctx)
	if actor.User == "" {
		actor.User = systemUser
	}
	rm := store.RemovalFrom(ctx)
	var n int
	err = s.write(1, 0, func(w *writeTx) error {
		n = 0
		var entries []*custody.Prepared
		cb, ok := openCollection(w.tx, collection)
		if !ok {
			return nil
		}
		s.keys.mu.RLock()
		dates := s.versions(w, collection, id, nil)
		s.keys.mu.RUnlock()
		all, err := readVersions(cb.index, id, dates, nil)
		if err != nil {
			return err
		}
		var kept []storedVersion
		for _, v := range all {
			if f.specOK(v.spec) {
				kept = append(kept, v)
			}
		}
		doomed := make(map[int64]bool)
		for j, v := range kept {
			if f.all || (f.first && j == 0) || (f.last && j == len(kept)-1) || f.atOK(v.version) {
				doomed[v.date] = true
			}
		}
		if len(doomed) == 0 {
			return nil
		}
		// What stays, copied out: the deletes below may change the pages
		// the index values live in.
		var rest []storedVersion
		for _, v := range all {
			if !doomed[v.date] {
				v.spec = bytes.Clone(v.spec)
				rest = append(rest, v)
			}
		}
		var tombs []store.Tombstone
		for _, v := range all {
			if !doomed[v.date] {
				continue
			}
			e := removedEntry(actor, rm, id, v.version.time(), collection)
			e.DateAdded = custody.FormatTime(microsTime(v.date))
			t := store.Tombstone{ID: id, Version: v.version.time(), DateAdded: microsTime(v.date), Kind: rm.Kind, Reason: rm.Reason}
			k := dateKey(v.date)
			h, prod, err := cb.hashProducer(k)
			if err != nil {
				return err
			}
			if len(h) >= len(t.Hash) {
				e.SHA256 = hex.EncodeToString(h[:len(t.Hash)])
				copy(t.Hash[:], h)
			}
			t.Producer = string(prod)
			p, err := custody.Prepare(&e)
			if err != nil {
				return err
			}
			entries = append(entries, p)
			if store.Tombstoned(rm.Kind) {
				tombs = append(tombs, t)
			}
		}
		for d := range doomed {
			k := dateKey(d)
			if err := cb.index.Delete(k); err != nil {
				return err
			}
			if err := cb.del(k); err != nil {
				return err
			}
			w.deleted(collection, id, d)
		}
		if err := relink(cb.index, rest); err != nil {
			return fmt.Errorf("relink: %w", err)
		}
		if err := addCount(cb.coll, -int64(len(doomed))); err != nil {
			return err
		}
		if err := s.bury(cb.coll, tombs); err != nil {
			return err
		}
		n = len(doomed)
		return appendLedger(w, entries, nil, s.clock())
	})
	if err != nil {
		return 0, ctigate.E(op, err)
	}
	if n == 0 {
		return 0, ctigate.E(op, ctigate.NotFound, "no matching object version")
	}
	return n, nil
}

// relink recomputes the header flags of the remaining versions vs
// (ascending) of an id.
func relink(index *bbolt.Bucket, vs []storedVersion) error {
	var mixed byte
	for _, v := range vs {
		if !bytes.Equal(v.spec, vs[0].spec) {
			mixed = flagMixedSpec
		}
	}
	const all = flagNotFirst | flagNotLast | flagMixedSpec
	for i, v := range vs {
		want := mixed
		if i > 0 {
			want |= flagNotFirst
		}
		if i < len(vs)-1 {
			want |= flagNotLast
		}
		if err := setFlags(index, v.date, want, all); err != nil {
			return err
		}
	}
	return nil
}

// removedEntry is the custody entry of one version DeleteObject removes:
// withdrawn for a route's copy, deleted otherwise (reason "expired" for
// retention's).
func removedEntry(actor store.Actor, rm store.Removal, id string, version time.Time, collection string) custody.Entry {
	e := custody.Entry{
		Action: custody.Deleted, User: actor.User, Org: actor.Org, ObjectID: id,
		ObjectVersion: custody.FormatVersion(version), Collection: collection,
	}
	switch rm.Kind {
	case store.RemovalWithdrawn:
		e.Action, e.Route, e.PolicyVersion, e.Source, e.Reason, e.Detail = custody.Withdrawn, rm.Route, rm.PolicyVersion, rm.Source, rm.Reason, rm.Detail
	case store.RemovalExpired, store.RemovalReleased:
		e.Reason = rm.Kind
	}
	return e
}

// bury writes tombstones into the collection coll, each at the next time
// of the collection's date_added clock, and indexes each by the removed
// version's date_added (bucketTombAdded, resolve.go).
func (s *Store) bury(coll *bbolt.Bucket, tombs []store.Tombstone) error {
	if len(tombs) == 0 {
		return nil
	}
	b, err := coll.CreateBucketIfNotExists(bucketTomb)
	if err != nil {
		return err
	}
	b.FillPercent = 1
	byAdded, err := coll.CreateBucketIfNotExists(bucketTombAdded)
	if err != nil {
		return err
	}
	last := int64(math.MinInt64)
	if v := coll.Get(keySeq); len(v) == dateKeyLen {
		last = dateMicros(v)
	}
	now := s.clock().UnixMicro()
	for i := range tombs {
		if last == math.MaxInt64-1 {
			return errors.New("date_added space exhausted")
		}
		d := max(now, last+1)
		last = d
		k := dateKey(d)
		if err := b.Put(k, store.EncodeTombstone(&tombs[i])); err != nil {
			return err
		}
		if err := byAdded.Put(dateKey(tombs[i].DateAdded.UnixMicro()), k); err != nil {
			return err
		}
	}
	return coll.Put(keySeq, dateKey(last))
}

// Tombstones returns the collection's tombstones removed after after.
func (s *Store) Tombstones(ctx context.Context, collection string, after time.Time, limit int) ([]store.Tombstone, bool, error) {
	const op = "bolt.Tombstones"
	if err := store.ValidName("collection", collection); err != nil {
		return nil, false, ctigate.E(op, ctigate.Invalid, err.Error())
	}
	if limit <= 0 {
		limit = store.DefaultLimit
	}
	if err := s.enter(op); err != nil {
		return nil, false, err
	}
	defer s.leave()
	if err := ctx.Err(); err != nil {
		return nil, false, ctxErr(op, err)
	}
	var out []store.Tombstone
	more := false
	err := s.db.View(func(tx *bbolt.Tx) error {
		coll := tx.Bucket(bucketCollections).Bucket([]byte(collection))
		if coll == nil {
			return nil
		}
		b := coll.Bucket(bucketTomb)
		if b == nil {
			return nil
		}
		c := b.Cursor()
		start := int64(math.MinInt64)
		if !after.IsZero() {
			start = after.UnixMicro() + 1
		}
		for k, v := c.Seek(dateKey(start)); k != nil; k, v = c.Next() {
			if len(out) == limit {
				more = true
				return nil
			}
			t, err := store.DecodeTombstone(v, microsTime(dateMicros(k)))
			if err != nil {
				return err
			}
			out = append(out, t)
		}
		return nil
	})
	if err != nil {
		return nil, false, ctigate.E(op, err)
	}
	return out, more, nil
}
