package bolt

import (
	"bytes"
	"context"
	"fmt"

	"go.etcd.io/bbolt"

	"github.com/ctigate/ctigate"
	"github.com/ctigate/ctigate/store"
)

// DeleteObject removes the versions of id selected by versions (empty means
// all) among those whose spec_version is in specVersions (empty means any).
// First and last are determined among the versions passing specVersions.
// Removing none is ctigate.NotFound.
func (s *Store) DeleteObject(ctx context.Context, collection, id string, versions []store.VersionMatch, specVersions []string) (int, error) {
	const op = "bolt.DeleteObject"
	if err := validCollection(collection); err != nil {
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
	var n int
	err = s.update(1, func(tx *bbolt.Tx) error {
		n = 0
		cb, ok := openCollection(tx, collection)
		if !ok {
			return nil
		}
		prefix := appendIDPrefix(nil, id)
		var kept []storedVersion
		for _, v := range versionsOf(cb.versions.Cursor(), prefix, nil) {
			if f.specOK(v.spec) {
				kept = append(kept, v)
			}
		}
		var doomed []storedVersion
		for j, v := range kept {
			if f.all || (f.first && j == 0) || (f.last && j == len(kept)-1) || f.atOK(v.version) {
				// Copy: the values alias pages the deletes below may change.
				v.date = bytes.Clone(v.date)
				doomed = append(doomed, v)
			}
		}
		for _, v := range doomed {
			vk := append(bytes.Clone(prefix), v.version[:]...)
			for _, del := range []struct {
				b *bbolt.Bucket
				k []byte
			}{{cb.versions, vk}, {cb.index, v.date}, {cb.raw, v.date}} {
				if err := del.b.Delete(del.k); err != nil {
					return err
				}
			}
		}
		if len(doomed) > 0 {
			if err := relink(cb, prefix); err != nil {
				return fmt.Errorf("relink: %w", err)
			}
		}
		n = len(doomed)
		return nil
	})
	if err != nil {
		return 0, ctigate.E(op, err)
	}
	if n == 0 {
		return 0, ctigate.E(op, ctigate.NotFound, "no matching object version")
	}
	return n, nil
}

// relink recomputes the header flags of every remaining version of the id
// with idPrefix prefix.
func relink(cb collectionBuckets, prefix []byte) error {
	vs := versionsOf(cb.versions.Cursor(), prefix, nil)
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
		if err := setFlags(cb.index, v.date, want, all); err != nil {
			return err
		}
	}
	return nil
}
