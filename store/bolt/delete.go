package bolt

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"

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
		for _, v := range all {
			if !doomed[v.date] {
				continue
			}
			e := custody.Entry{
				Action: custody.Deleted, User: actor.User, Org: actor.Org, ObjectID: id,
				ObjectVersion: custody.FormatVersion(v.version.time()), Collection: collection,
			}
			if cb.hash != nil {
				e.SHA256 = hex.EncodeToString(cb.hash.Get(dateKey(v.date)))
			}
			p, err := custody.Prepare(&e)
			if err != nil {
				return err
			}
			entries = append(entries, p)
		}
		for d := range doomed {
			k := dateKey(d)
			if err := cb.index.Delete(k); err != nil {
				return err
			}
			if err := cb.raw.Delete(k); err != nil {
				return err
			}
			if cb.hash != nil {
				if err := cb.hash.Delete(k); err != nil {
					return err
				}
			}
			if cb.producer != nil {
				if err := cb.producer.Delete(k); err != nil {
					return err
				}
			}
			w.deleted(collection, id, d)
		}
		if err := relink(cb.index, rest); err != nil {
			return fmt.Errorf("relink: %w", err)
		}
		if err := addCount(cb.coll, -int64(len(doomed))); err != nil {
			return err
		}
		n = len(doomed)
		return appendLedger(w.tx, entries, nil, s.clock())
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
