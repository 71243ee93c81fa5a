package redis

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/ctigate/ctigate"
	"github.com/ctigate/ctigate/store"
)

// Tombstones. The keys of a collection X that record what left it:
//
//	P:{c:X}:t   sorted set: one member per tombstone, "<removed> <tombstone
//	            JSON>" (store.EncodeTombstone), scored by its removal time
//	            <removed> on X's date_added clock (µs)
//	P:{c:X}:ta  sorted set: the same tombstones by the removed version's
//	            date_added: member <removed>, scored by that date_added (µs)
//
// deleteScript writes both, with the removal itself. Tombstones written
// before ta existed are not in it: they record versions removed before
// any delivery that ResolveAdded serves was made.

// ResolveAdded reads at most resolveChunk distinct date_added values per
// round of pipelines, and membersAt splits them into windows of
// resolveWindow values, each read as one range when that range holds few
// more members than the window asks for (a delivered page is mostly a
// range of its collection), else value by value.
const (
	resolveChunk  = 1000
	resolveWindow = 64
)

// ResolveAdded returns, for each date_added in das, the version added to
// collection at that instant: the one stored (its record in z), or the
// one removed since (its tombstone in t, through ta). It reads each
// distinct value once, in ascending order, by chunks: the records in z
// (membersAt), then, for the values not stored, their removal times in ta
// and their tombstones in t (membersAt likewise): two to six pipelined
// round trips per chunk. The reads are not one snapshot, but a version
// removed between them is still found: its tombstone is written with the
// removal and never deleted.
func (s *Store) ResolveAdded(ctx context.Context, collection string, das []time.Time) ([]store.AddedVersion, error) {
	const op = "redis.ResolveAdded"
	if err := store.ValidName("collection", collection); err != nil {
		return nil, ctigate.E(op, ctigate.Invalid, err.Error())
	}
	if err := ctx.Err(); err != nil {
		return nil, ctxErr(op, err)
	}
	out := make([]store.AddedVersion, len(das))
	// The values to read, ascending, each with where it goes in out.
	type want struct {
		us int64
		at int
	}
	ws := make([]want, 0, len(das))
	for i, da := range das {
		if da.Nanosecond()%1000 == 0 { // a date_added is a whole microsecond
			ws = append(ws, want{da.UnixMicro(), i})
		}
	}
	slices.SortFunc(ws, func(a, b want) int { return cmp.Compare(a.us, b.us) })
	uniq := make([]int64, 0, len(ws))
	for i, w := range ws {
		if i == 0 || w.us != ws[i-1].us {
			uniq = append(uniq, w.us)
		}
	}
	res := make([]store.AddedVersion, len(uniq))
	for start := 0; start < len(uniq); start += resolveChunk {
		end := min(start+resolveChunk, len(uniq))
		if err := s.resolveChunk(ctx, collection, uniq[start:end], res[start:end]); err != nil {
			if ce := (*ctigate.Error)(nil); errors.As(err, &ce) {
				return nil, err
			}
			return nil, s.fail(op, err)
		}
	}
	k := -1
	for i, w := range ws {
		if i == 0 || w.us != ws[i-1].us {
			k++
		}
		out[w.at] = res[k]
	}
	return out, nil
}

// resolveChunk resolves the ascending, distinct date_added values us into
// res.
func (s *Store) resolveChunk(ctx context.Context, collection string, us []int64, res []store.AddedVersion) error {
	const op = "redis.ResolveAdded"
	recs, err := s.membersAt(ctx, s.collKey(collection, "z"), us)
	if err != nil {
		return err
	}
	var missed []int64 // the values not stored, ascending
	var at []int       // the index of each in us
	for i, rec := range recs {
		if rec == "" {
			missed, at = append(missed, us[i]), append(at, i)
			continue
		}
		o, err := decodeRecord(rec, false)
		if err != nil {
			return ctigate.E(op, ctigate.Internal, fmt.Errorf("record %d: %w", us[i], err))
		}
		res[i] = store.AddedVersion{Found: true, ID: o.ID, Version: o.Version, Hash: recordHash([]byte(rec))}
	}
	if len(missed) == 0 {
		return nil
	}
	// Their removal times, then, in the order of those, their tombstones.
	removed, err := s.membersAt(ctx, s.collKey(collection, "ta"), missed)
	if err != nil {
		return err
	}
	type gone struct {
		removed int64
		at      int // index in us
	}
	var gs []gone
	for j, m := range removed {
		if m == "" {
			continue // never added, or released
		}
		r, err := strconv.ParseInt(m, 10, 64)
		if err != nil {
			return ctigate.E(op, ctigate.Internal, fmt.Sprintf("date_added %d: malformed removal time %q", missed[j], m))
		}
		gs = append(gs, gone{r, at[j]})
	}
	if len(gs) == 0 {
		return nil
	}
	slices.SortFunc(gs, func(a, b gone) int { return cmp.Compare(a.removed, b.removed) })
	rs := make([]int64, len(gs))
	for k, g := range gs {
		rs[k] = g.removed
	}
	tombs, err := s.membersAt(ctx, s.collKey(collection, "t"), rs)
	if err != nil {
		return err
	}
	for k, g := range gs {
		if tombs[k] == "" {
			return ctigate.E(op, ctigate.Internal, fmt.Sprintf("date_added %d: indexed tombstone missing", us[g.at]))
		}
		a, err := removedAs(tombs[k])
		if err != nil {
			return ctigate.E(op, ctigate.Internal, fmt.Errorf("date_added %d: %w", us[g.at], err))
		}
		res[g.at] = a
	}
	return nil
}

// membersAt returns the member of the sorted set z scored by each of the
// ascending, distinct scores us ("" where there is none; each score of
// the sets it reads has one member at most), reading each window of
// resolveWindow scores as one range when that range holds at most twice
// as many members, else score by score: two pipelined round trips.
func (s *Store) membersAt(ctx context.Context, z string, us []int64) ([]string, error) {
	type window struct {
		lo, hi int // us[lo:hi]
		count  *goredis.IntCmd
		rng    *goredis.ZSliceCmd
		points []*goredis.StringSliceCmd
	}
	var wins []window
	pipe := s.c.Pipeline()
	for lo := 0; lo < len(us); lo += resolveWindow {
		w := window{lo: lo, hi: min(lo+resolveWindow, len(us))}
		if w.hi-w.lo > 8 {
			w.count = pipe.ZCount(ctx, z, strconv.FormatInt(us[w.lo], 10), strconv.FormatInt(us[w.hi-1], 10))
		}
		wins = append(wins, w)
	}
	if pipe.Len() > 0 {
		if _, err := pipe.Exec(ctx); err != nil {
			return nil, err
		}
	}
	pipe = s.c.Pipeline()
	for i := range wins {
		w := &wins[i]
		if w.count != nil && w.count.Val() <= int64(2*(w.hi-w.lo)) {
			w.rng = pipe.ZRangeArgsWithScores(ctx, goredis.ZRangeArgs{Key: z,
				Start: strconv.FormatInt(us[w.lo], 10), Stop: strconv.FormatInt(us[w.hi-1], 10), ByScore: true})
			continue
		}
		for _, u := range us[w.lo:w.hi] {
			w.points = append(w.points, pointRange(ctx, pipe, z, u))
		}
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, err
	}
	out := make([]string, len(us))
	for _, w := range wins {
		if w.rng != nil {
			// Both ascend: merge.
			ms, j := w.rng.Val(), 0
			for i := w.lo; i < w.hi; i++ {
				for j < len(ms) && int64(ms[j].Score) < us[i] {
					j++
				}
				if j < len(ms) && int64(ms[j].Score) == us[i] {
					out[i], _ = ms[j].Member.(string)
				}
			}
			continue
		}
		for k, c := range w.points {
			if v := c.Val(); len(v) > 0 {
				out[w.lo+k] = v[0]
			}
		}
	}
	return out, nil
}

// pointRange queues the read of the member of z scored us.
func pointRange(ctx context.Context, pipe goredis.Pipeliner, z string, us int64) *goredis.StringSliceCmd {
	score := strconv.FormatInt(us, 10)
	return pipe.ZRangeArgs(ctx, goredis.ZRangeArgs{Key: z, Start: score, Stop: score, ByScore: true, Count: 1})
}

// removedAs is what ResolveAdded tells of the version the tombstone
// member m (of t) records.
func removedAs(m string) (store.AddedVersion, error) {
	at, rest, ok := strings.Cut(m, " ")
	us, err := strconv.ParseInt(at, 10, 64)
	if !ok || err != nil {
		return store.AddedVersion{}, errors.New("malformed tombstone")
	}
	t, err := store.DecodeTombstone([]byte(rest), time.UnixMicro(us))
	if err != nil {
		return store.AddedVersion{}, err
	}
	return store.AddedVersion{Found: true, Removed: true, ID: t.ID, Version: t.Version, Hash: t.Hash}, nil
}
