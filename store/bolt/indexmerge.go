package bolt

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"log/slog"

	"go.etcd.io/bbolt"
	bberrors "go.etcd.io/bbolt/errors"

	"github.com/ctigate/ctigate"
)

// Segment merging.
//
// A lookup seeks each key in every segment, so its cost grows with their
// number: 500 segments of 25,000 entries at ten million versions. A
// background merger therefore merges segments as a tiered log-structured
// tree does: a segment written by AddIndexEntries is of level 0; when
// fanIn segments of the same level follow one another (the current
// segment, still being written, aside), they are merged into one segment
// of the next level. Levels never increase from older to newer segments,
// so at most fanIn−1 segments of each level remain: with the defaults, 22
// segments or fewer up to 12.8 million entries, each entry rewritten
// three times on the way.
//
// A merged segment takes the id of the newest segment it replaces, so the
// segments' order (newest wins when an entry was written again) holds;
// where merged segments hold the same key, the newest segment's entry is
// kept. The merged segment is built under search/merging, out of lookups'
// sight, in transactions of mergeChunk entries (a merge of millions of
// entries in one transaction would hold its dirty pages in memory until
// the commit), interleaved with the indexer's writes. The last one deletes
// the merged segments and moves the new one in their place: lookups see
// either the segments or their merge. A merge under way when the index is
// dropped is abandoned (DropIndex moves the generation on), and one left
// by a stopped process is deleted when the index is opened again.
//
//	search/segmeta      segment (8 bytes) -> level (1 byte), entries (uvarint);
//	                    none for a segment of level 0
//	search/merging      segment (8 bytes) -> the merge being built
var (
	bucketSearchSegMeta = []byte("segmeta")
	bucketSearchMerging = []byte("merging")
)

// DefaultMergeFanIn is the default of IndexOptions.MergeFanIn.
const DefaultMergeFanIn = 8

// mergeChunk is the number of entries one merge transaction copies.
var mergeChunk = 20_000

// errMergeAbandoned reports a merge whose segments changed under it (the
// index was dropped).
var errMergeAbandoned = errors.New("index merge abandoned: the index was dropped")

// mergePlan is a run of segments to merge, oldest first.
type mergePlan struct {
	ids   [][]byte // segment keys, oldest first
	level byte     // their level
	gen   uint64   // the index generation the run was found in
}

// dropLeftoverMerge deletes a merge a stopped process left unfinished.
func dropLeftoverMerge(db *bbolt.DB) error {
	return db.Update(func(tx *bbolt.Tx) error {
		root := tx.Bucket(bucketSearch)
		if root == nil || root.Bucket(bucketSearchMerging) == nil {
			return nil
		}
		return root.DeleteBucket(bucketSearchMerging)
	})
}

// segmentLevel returns a segment's level and number of entries (0 when
// not recorded: a segment of level 0).
func segmentLevel(meta *bbolt.Bucket, id []byte) (level byte, entries uint64) {
	if meta == nil {
		return 0, 0
	}
	v := meta.Get(id)
	if len(v) < 2 {
		return 0, 0
	}
	n, k := binary.Uvarint(v[1:])
	if k <= 0 {
		return v[0], 0
	}
	return v[0], n
}

// planMerge finds the oldest run of fanIn consecutive segments of one
// level, the current segment excluded; ok is false when there is none.
func (s *Index) planMerge() (plan mergePlan, ok bool, err error) {
	err = s.viewIndex(context.Background(), "bolt.Index.planMerge", func(root *bbolt.Bucket) error {
		plan.gen = s.gen.Load()
		segs := root.Bucket(bucketSearchSegments)
		if segs == nil {
			return nil
		}
		var current []byte
		if v := root.Bucket(bucketSearchCurrent).Get(keySearchSeg); len(v) == 16 {
			current = v[:8]
		}
		meta := root.Bucket(bucketSearchSegMeta)
		var run [][]byte
		var runLevel byte
		c := segs.Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			if v != nil || bytes.Equal(k, current) {
				continue
			}
			level, _ := segmentLevel(meta, k)
			if len(run) == 0 || level != runLevel {
				run, runLevel = run[:0], level
			}
			run = append(run, bytes.Clone(k))
			if len(run) == s.fanIn {
				plan.ids, plan.level, ok = run, runLevel, true
				return nil
			}
		}
		return nil
	})
	return plan, ok, err
}

// MergeSegments merges segments until no fanIn consecutive segments of one
// level remain, as the background merger does after each new segment. It
// returns the number of merges made.
func (s *Index) MergeSegments(ctx context.Context) (int, error) {
	if s.fanIn < 2 {
		return 0, nil
	}
	s.mergeMu.Lock()
	defer s.mergeMu.Unlock()
	merges := 0
	for {
		if err := ctx.Err(); err != nil {
			return merges, err
		}
		plan, ok, err := s.planMerge()
		if err != nil || !ok {
			return merges, err
		}
		err = s.merge(ctx, plan)
		if errors.Is(err, errMergeAbandoned) {
			continue
		}
		if err != nil {
			return merges, err
		}
		merges++
	}
}

// merge builds the merge of plan's segments chunk by chunk and puts it in
// their place.
func (s *Index) merge(ctx context.Context, plan mergePlan) error {
	const op = "bolt.Index.merge"
	newID := plan.ids[len(plan.ids)-1]
	var after []byte // the last key copied; nil before the first chunk
	var entries uint64
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := s.enter(op); err != nil {
			return err
		}
		var done bool
		var written, read int64
		err := s.db.Update(func(tx *bbolt.Tx) error {
			root := tx.Bucket(bucketSearch)
			if root == nil || s.gen.Load() != plan.gen {
				return errMergeAbandoned
			}
			segs := root.Bucket(bucketSearchSegments)
			if segs == nil {
				return errMergeAbandoned
			}
			srcs := make([]*bbolt.Cursor, len(plan.ids))
			for i, id := range plan.ids {
				b := segs.Bucket(id)
				if b == nil {
					return errMergeAbandoned
				}
				srcs[i] = b.Cursor()
			}
			mb, err := root.CreateBucketIfNotExists(bucketSearchMerging)
			if err != nil {
				return err
			}
			var dst *bbolt.Bucket
			if after == nil {
				if err := mb.DeleteBucket(newID); err != nil && !errors.Is(err, bberrors.ErrBucketNotFound) {
					return err
				}
				if dst, err = mb.CreateBucket(newID); err != nil {
					return err
				}
			} else if dst = mb.Bucket(newID); dst == nil {
				return errMergeAbandoned
			}
			dst.FillPercent = 1 // keys arrive in order
			// The next key of each segment.
			type head struct{ k, v []byte }
			heads := make([]head, len(srcs))
			for i, c := range srcs {
				var k, v []byte
				if after == nil {
					k, v = c.First()
				} else if k, v = c.Seek(after); k != nil && bytes.Equal(k, after) {
					k, v = c.Next()
				}
				heads[i] = head{k, v}
			}
			copied := 0
			var last []byte
			for copied < mergeChunk {
				// The smallest key; on a tie, the newest segment's entry.
				m := -1
				for i := range heads {
					if heads[i].k == nil {
						continue
					}
					if m < 0 || bytes.Compare(heads[i].k, heads[m].k) <= 0 {
						m = i
					}
				}
				if m < 0 {
					done = true
					break
				}
				k, v := heads[m].k, heads[m].v
				if err := dst.Put(k, v); err != nil {
					return err
				}
				written += int64(len(k) + len(v))
				last = k
				copied++
				for i := range heads {
					if heads[i].k != nil && bytes.Equal(heads[i].k, k) {
						read += int64(len(heads[i].k) + len(heads[i].v))
						heads[i].k, heads[i].v = srcs[i].Next()
					}
				}
			}
			entries += uint64(copied)
			after = bytes.Clone(last)
			return nil
		})
		s.leave()
		s.noteWrite(written)
		s.noteRead(read)
		if err != nil {
			if errors.Is(err, errMergeAbandoned) {
				return err
			}
			return ctigate.E(op, err)
		}
		if done {
			return s.replaceSegments(plan, entries)
		}
	}
}

// replaceSegments puts the merge of plan's segments, complete, in their
// place. It is a transaction of its own: bbolt's MoveBucket moves a
// bucket as last committed, without what the moving transaction wrote
// into it.
func (s *Index) replaceSegments(plan mergePlan, entries uint64) error {
	const op = "bolt.Index.merge"
	if err := s.enter(op); err != nil {
		return err
	}
	defer s.leave()
	newID := plan.ids[len(plan.ids)-1]
	err := s.db.Update(func(tx *bbolt.Tx) error {
		root := tx.Bucket(bucketSearch)
		if root == nil || s.gen.Load() != plan.gen {
			return errMergeAbandoned
		}
		segs, mb := root.Bucket(bucketSearchSegments), root.Bucket(bucketSearchMerging)
		if segs == nil || mb == nil {
			return errMergeAbandoned
		}
		meta, err := root.CreateBucketIfNotExists(bucketSearchSegMeta)
		if err != nil {
			return err
		}
		for _, id := range plan.ids {
			if err := segs.DeleteBucket(id); err != nil {
				if errors.Is(err, bberrors.ErrBucketNotFound) {
					return errMergeAbandoned
				}
				return err
			}
			if err := meta.Delete(id); err != nil {
				return err
			}
		}
		if err := tx.MoveBucket(newID, mb, segs); err != nil {
			return err
		}
		return meta.Put(newID, binary.AppendUvarint([]byte{plan.level + 1}, entries))
	})
	if err != nil && !errors.Is(err, errMergeAbandoned) {
		return ctigate.E(op, err)
	}
	return err
}

// runMerger merges segments whenever a new one is started, until Close.
func (s *Index) runMerger(log *slog.Logger) {
	defer close(s.mergerDone)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-s.stopMerger
		cancel()
	}()
	for {
		select {
		case <-s.stopMerger:
			return
		case <-s.mergeWake:
		}
		if _, err := s.MergeSegments(ctx); err != nil && ctx.Err() == nil && ctigate.KindOf(err) != ctigate.Unavailable {
			log.Error("search index: merging segments failed", "err", err)
		}
	}
}

// wakeMerger tells the merger that a segment was started.
func (s *Index) wakeMerger() {
	select {
	case s.mergeWake <- struct{}{}:
	default:
	}
}

// Segments returns the number of segments the index holds now.
func (s *Index) Segments() int {
	n := 0
	_ = s.viewIndex(context.Background(), "bolt.Index.Segments", func(root *bbolt.Bucket) error {
		if segs := root.Bucket(bucketSearchSegments); segs != nil {
			return segs.ForEachBucket(func([]byte) error { n++; return nil })
		}
		return nil
	})
	return n
}
