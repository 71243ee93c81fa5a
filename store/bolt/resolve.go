package bolt

import (
	"context"
	"time"

	"go.etcd.io/bbolt"

	"github.com/ctigate/ctigate"
	"github.com/ctigate/ctigate/store"
)

// bucketTombAdded is the collection sub-bucket that indexes its tombstones
// by the removed version's date_added:
//
//	tombstones-by-added  dateKey(date_added) -> the tombstone's key in
//	                     bucketTomb (the dateKey of its removal time)
//
// bury writes both in the same transaction. A date_added is assigned once
// and its version removed at most once, so each key is written once.
// Tombstones written before this index existed are not in it: they record
// versions removed before any delivery that ResolveAdded serves was made.
var bucketTombAdded = []byte("tombstones-by-added")

// ResolveAdded returns, for each date_added in das, the version added to
// collection at that instant: the one stored (index and hash buckets), or
// the one removed since (its tombstone, found through bucketTombAdded).
// Everything is read in one transaction, so a version removed meanwhile
// is seen either stored or removed, never neither.
func (s *Store) ResolveAdded(ctx context.Context, collection string, das []time.Time) ([]store.AddedVersion, error) {
	const op = "bolt.ResolveAdded"
	if err := store.ValidName("collection", collection); err != nil {
		return nil, ctigate.E(op, ctigate.Invalid, err.Error())
	}
	if err := s.enter(op); err != nil {
		return nil, err
	}
	defer s.leave()
	if err := ctx.Err(); err != nil {
		return nil, ctxErr(op, err)
	}
	out := make([]store.AddedVersion, len(das))
	if len(das) == 0 {
		return out, nil
	}
	var read int64
	err := s.db.View(func(tx *bbolt.Tx) error {
		read = 0
		cb, ok := openCollection(tx, collection)
		if !ok {
			return nil
		}
		tombs := cb.coll.Bucket(bucketTomb)
		byAdded := cb.coll.Bucket(bucketTombAdded)
		// The das of a page ascend, mostly close together: the cursors
		// then step rather than search (seqCursor).
		var idxCur, hashCur seqCursor
		hashes := cb.hash
		if cb.body != nil {
			hashes = cb.body
		}
		var k [dateKeyLen]byte
		for i, da := range das {
			if i%ctxCheckEvery == ctxCheckEvery-1 {
				if err := ctx.Err(); err != nil {
					return err
				}
			}
			if da.Nanosecond()%1000 != 0 {
				continue // not a date_added: those are whole microseconds
			}
			putDateKey(k[:], da.UnixMicro())
			if v := idxCur.at(cb.index, k[:]); v != nil {
				h, err := decodeHeader(v)
				if err != nil {
					return err
				}
				read += int64(len(v))
				a := store.AddedVersion{Found: true, ID: string(h.id), Version: h.version.time()}
				if hashes != nil {
					hv := hashCur.at(hashes, k[:])
					if cb.body != nil {
						if hv, _, _, err = decodeBody(hv); err != nil {
							return err
						}
					}
					copy(a.Hash[:], hv)
				}
				out[i] = a
				continue
			}
			if byAdded == nil || tombs == nil {
				continue
			}
			tk := byAdded.Get(k[:])
			if len(tk) != dateKeyLen {
				continue
			}
			v := tombs.Get(tk)
			if v == nil {
				return errCorrupt
			}
			read += int64(len(v))
			t, err := store.DecodeTombstone(v, microsTime(dateMicros(tk)))
			if err != nil {
				return err
			}
			out[i] = store.AddedVersion{Found: true, Removed: true, ID: t.ID, Version: t.Version, Hash: t.Hash}
		}
		return nil
	})
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctxErr(op, err)
		}
		return nil, ctigate.E(op, err)
	}
	s.noteRead(read)
	return out, nil
}
