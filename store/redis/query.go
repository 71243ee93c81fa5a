package redis

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/ctigate/ctigate"
	"github.com/ctigate/ctigate/store"
)

// selector decides which versions of an id a query's match[version] and
// match[spec_version] select.
type selector struct {
	versions []store.VersionMatch
	specs    []string
	all      bool // every version passing the spec filter
}

func newSelector(versions []store.VersionMatch, specs []string, dflt store.VersionKind) (selector, error) {
	if len(versions) == 0 {
		versions = []store.VersionMatch{{Kind: dflt}}
	}
	sel := selector{versions: versions, specs: specs}
	for _, v := range versions {
		switch v.Kind {
		case store.All:
			sel.all = true
		case store.First, store.Last, store.At:
		default:
			return sel, fmt.Errorf("unknown version selector %d", v.Kind)
		}
	}
	return sel, nil
}

func (sel *selector) specOK(spec string) bool {
	return len(sel.specs) == 0 || slices.Contains(sel.specs, spec)
}

// selected returns the date_added of the versions in es that sel selects.
func (sel *selector) selected(es []versionEntry) map[int64]bool {
	out := make(map[int64]bool)
	var vs []versionEntry
	for _, e := range es {
		if sel.specOK(e.spec) {
			vs = append(vs, e)
		}
	}
	if len(vs) == 0 {
		return out
	}
	first, last := 0, 0
	for i, e := range vs {
		if e.version < vs[first].version {
			first = i
		}
		if e.version > vs[last].version {
			last = i
		}
	}
	for _, vm := range sel.versions {
		switch vm.Kind {
		case store.All:
			for _, e := range vs {
				out[e.da] = true
			}
		case store.First:
			out[vs[first].da] = true
		case store.Last:
			out[vs[last].da] = true
		case store.At:
			k := versionKey(vm.At)
			for _, e := range vs {
				if e.version == k {
					out[e.da] = true
				}
			}
		}
	}
	return out
}

// Objects returns one page of versions matching q in date_added order.
func (s *Store) Objects(ctx context.Context, collection string, q store.Query) (store.Page, error) {
	const op = "redis.Objects"
	sel, err := newSelector(q.Versions, q.SpecVersions, store.Last)
	if err != nil {
		return store.Page{}, ctigate.E(op, ctigate.Invalid, err.Error())
	}
	start := int64(math.MinInt64)
	if !q.AddedAfter.IsZero() {
		// added_after is exclusive; a time between two microseconds
		// excludes the earlier one.
		start = q.AddedAfter.UnixMicro()
		if q.AddedAfter.Before(microTime(start)) {
			start--
		}
	}
	if q.Next != "" {
		c, ok := decodeCursor(q.Next)
		if !ok {
			return store.Page{}, ctigate.E(op, ctigate.Invalid, "malformed next cursor")
		}
		start = max(start, c)
	}
	limit := q.Limit
	if limit <= 0 {
		limit = store.DefaultLimit
	}
	if err := ctx.Err(); err != nil {
		return store.Page{}, ctxErr(op, err)
	}
	var objs []store.Object
	var das []int64
	b := &rawBudget{max: q.MaxBytes}
	if q.WithoutRaw {
		b.max = 0
	}
	var p store.Page
	if len(q.IDs) > 0 {
		objs, das, err = s.byIDs(ctx, collection, q, &sel, start, limit+1, b)
	} else {
		objs, das, p.OneVersionEach, err = s.scan(ctx, collection, q, &sel, start, limit+1, b)
	}
	if err != nil {
		return store.Page{}, s.fail(op, err)
	}
	n := len(objs)
	if n > limit {
		n, p.More = limit, true
	}
	if k := store.FitBytes(objs[:n], b.max); k < n {
		n, p.More = k, true
	}
	if p.More {
		objs, das = objs[:n], das[:n]
		p.Next = encodeCursor(das[n-1])
	}
	p.Objects = objs
	return p, nil
}

// rawBudget follows the Raw bytes a read collects against
// Query.MaxBytes, so that it reads no more records than the page can
// hold: records are fetched in chunks sized by the bytes left at the
// average size seen so far, and the read stops once the page is known
// to be cut (store.FitBytes).
type rawBudget struct {
	max int64 // Query.MaxBytes; 0 bounds nothing
	raw int64 // Raw bytes collected
	n   int64 // objects collected
}

// firstChunk is how many records a read bounded by bytes fetches before
// it knows their size.
const firstChunk = 16

func (b *rawBudget) add(objs []store.Object) {
	for i := range objs {
		b.raw += int64(len(objs[i].Raw))
	}
	b.n += int64(len(objs))
}

// full reports that the objects collected already fill the page: at
// least two, past max, so that FitBytes leaves the last one out.
func (b *rawBudget) full() bool { return b.max > 0 && b.n >= 2 && b.raw > b.max }

// chunk returns how many records to fetch next, at most want.
func (b *rawBudget) chunk(want int) int {
	if b.max <= 0 {
		return want
	}
	if b.n == 0 {
		return min(want, firstChunk)
	}
	avg := max(b.raw/b.n, 1)
	left := max(b.max-b.raw, 0)
	return int(min(int64(want), left/avg+2))
}

func typeOK(q *store.Query, typ string) bool {
	return len(q.Types) == 0 || slices.Contains(q.Types, typ)
}

// byIDs reads the versions of q.IDs: their lists give the candidates.
func (s *Store) byIDs(ctx context.Context, coll string, q store.Query, sel *selector, start int64, want int, b *rawBudget) ([]store.Object, []int64, error) {
	ids := slices.Compact(slices.Sorted(slices.Values(q.IDs)))
	lists, err := s.c.HMGet(ctx, s.collKey(coll, "n"), ids...).Result()
	if err != nil {
		return nil, nil, err
	}
	var cands []int64
	// Without the bytes, the lists are the answer: id, type (the id's
	// prefix), spec_version, version and date_added, read in one
	// snapshot. Versions whose type is not their id's prefix are read
	// from their records.
	var listed []store.Object
	for i, l := range lists {
		str, ok := l.(string)
		if !ok {
			continue
		}
		es := parseVersions(str)
		chosen := sel.selected(es)
		for _, e := range es {
			if !chosen[e.da] || e.da <= start {
				continue
			}
			if !q.WithoutRaw || e.mistyped {
				cands = append(cands, e.da)
				continue
			}
			typ := idType(ids[i])
			if !typeOK(&q, typ) || (len(q.SpecVersions) > 0 && !slices.Contains(q.SpecVersions, e.spec)) {
				continue
			}
			k, err := hex.DecodeString(e.version)
			if err != nil || len(k) != 12 {
				return nil, nil, fmt.Errorf("version list of %q: malformed version %q", ids[i], e.version)
			}
			listed = append(listed, store.Object{ID: ids[i], Type: typ, SpecVersion: e.spec, Version: versionTime(k), DateAdded: microTime(e.da)})
		}
	}
	if len(listed) > 0 && len(cands) == 0 {
		slices.SortFunc(listed, func(a, b store.Object) int { return a.DateAdded.Compare(b.DateAdded) })
		listed = listed[:min(len(listed), want)]
		das := make([]int64, len(listed))
		for i := range listed {
			das[i] = listed[i].DateAdded.UnixMicro()
		}
		return listed, das, nil
	}
	for _, o := range listed { // read with the others, in date_added order
		cands = append(cands, o.DateAdded.UnixMicro())
	}
	slices.Sort(cands)
	var objs []store.Object
	var das []int64
	for len(cands) > 0 && len(objs) < want && !b.full() {
		n := min(len(cands), b.chunk(max(want-len(objs), 64)))
		chunk := cands[:n]
		cands = cands[n:]
		got, gotDAs, err := s.fetch(ctx, coll, chunk, &q)
		if err != nil {
			return nil, nil, err
		}
		b.add(got)
		objs = append(objs, got...)
		das = append(das, gotDAs...)
	}
	if len(objs) > want {
		objs, das = objs[:want], das[:want]
	}
	return objs, das, nil
}

// scan walks the collection's index from start.
// single reports whether every chunk read found no id of the collection
// with two versions (store.Page.OneVersionEach).
func (s *Store) scan(ctx context.Context, coll string, q store.Query, sel *selector, start int64, want int, b *rawBudget) (objs []store.Object, das []int64, single bool, err error) {
	// The first chunk is what the page needs; filters (types,
	// spec_versions, a version selector over ids with several versions)
	// may keep fewer, and the next chunk asks for what is missing, scaled
	// by the share kept so far. (Asking twice the page ahead read every
	// record twice when nothing was filtered out: the next page starts
	// after the last one returned, not after the last one read.)
	chunk := want
	read, kept := 0, 0
	keys := []string{s.collKey(coll, "z"), s.collKey(coll, "mv")}
	chunks, multiSeen := 0, false
	for len(objs) < want && !b.full() {
		n := b.chunk(chunk)
		lo := "-inf"
		if start != math.MinInt64 {
			lo = "(" + strconv.FormatInt(start, 10)
		}
		rng := goredis.ZRangeArgs{Key: keys[0], Start: lo, Stop: "+inf", ByScore: true, Count: int64(n)}
		multi, cands, recs, err := s.readChunk(ctx, coll, keys[1], rng, start)
		if err != nil {
			return nil, nil, false, err
		}
		chunks, multiSeen = chunks+1, multiSeen || multi != ""
		if len(recs) == 0 {
			break
		}
		var check func([]store.Object, []int64) (map[int64]bool, error)
		switch {
		case sel.all && len(q.SpecVersions) == 0:
		case multi == "":
			// No id of the collection has ever had two versions: each
			// version is its id's first and last.
			check = func(got []store.Object, das []int64) (map[int64]bool, error) {
				out := make(map[int64]bool, len(got))
				for i, o := range got {
					out[das[i]] = sel.selected([]versionEntry{{da: das[i], version: versionKey(o.Version), spec: o.SpecVersion}})[das[i]]
				}
				return out, nil
			}
		default:
			check = func(got []store.Object, _ []int64) (map[int64]bool, error) {
				return s.selectedOf(ctx, coll, got, sel)
			}
		}
		got, gotDAs, err := decodeFiltered(cands, recs, &q, check)
		if err != nil {
			return nil, nil, false, err
		}
		b.add(got)
		objs = append(objs, got...)
		das = append(das, gotDAs...)
		start = cands[len(cands)-1]
		if len(recs) < n {
			break
		}
		read, kept = read+len(recs), kept+len(got)
		chunk = min(max((want-len(objs))*read/max(kept, 1), 64), 5000)
	}
	if len(objs) > want {
		objs, das = objs[:want], das[:want]
	}
	return objs, das, chunks > 0 && !multiSeen, nil
}

// readChunk reads, in one round trip, the collection's multi-version flag
// (key mv) and the chunk rng of its records with their date_added (the
// records hold it; those earlier builds wrote do not, and need the
// members' scores, which Redis formats as text: read the chunk again with
// them). Once this process has met earlier builds' records in coll, it
// reads with the scores at once below the first record of this build it
// has seen there (earlier builds were stopped before this one started,
// so theirs all lie before it).
func (s *Store) readChunk(ctx context.Context, coll, mv string, rng goredis.ZRangeArgs, start int64) (string, []int64, []any, error) {
	bound, _ := s.earlierBelow.Load(coll)
	withScores := bound != nil && start < bound.(int64)
	pipe := s.c.Pipeline()
	mvCmd := pipe.Get(ctx, mv)
	var zCmd *goredis.StringSliceCmd
	var zsCmd *goredis.ZSliceCmd
	if withScores {
		zsCmd = pipe.ZRangeArgsWithScores(ctx, rng)
	} else {
		zCmd = pipe.ZRangeArgs(ctx, rng)
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, goredis.Nil) {
		return "", nil, nil, err
	}
	if !withScores {
		members := zCmd.Val()
		cands, recs := make([]int64, len(members)), make([]any, len(members))
		earlier := false
		for i, m := range members {
			da, ok := recordDateAdded(m)
			cands[i], recs[i], earlier = da, m, earlier || !ok
		}
		if !earlier {
			return mvCmd.Val(), cands, recs, nil
		}
		if zsCmd = s.c.ZRangeArgsWithScores(ctx, rng); zsCmd.Err() != nil {
			return "", nil, nil, zsCmd.Err()
		}
	}
	zs := zsCmd.Val()
	cands, recs := make([]int64, len(zs)), make([]any, len(zs))
	newFrom := int64(math.MaxInt64) // the first record of this build's format
	for i, m := range zs {
		cands[i], recs[i] = int64(m.Score), m.Member
		str, _ := m.Member.(string)
		if _, ok := recordDateAdded(str); ok && newFrom == math.MaxInt64 {
			newFrom = cands[i]
		}
	}
	if b, loaded := s.earlierBelow.LoadOrStore(coll, newFrom); loaded && newFrom < b.(int64) {
		s.earlierBelow.Store(coll, newFrom)
	}
	return mvCmd.Val(), cands, recs, nil
}

// selectedOf returns the date_added of the versions of objs' ids that sel
// selects.
func (s *Store) selectedOf(ctx context.Context, coll string, objs []store.Object, sel *selector) (map[int64]bool, error) {
	ids := make([]string, 0, len(objs))
	for _, o := range objs {
		ids = append(ids, o.ID)
	}
	ids = slices.Compact(slices.Sorted(slices.Values(ids)))
	if len(ids) == 0 {
		return nil, nil
	}
	lists, err := s.c.HMGet(ctx, s.collKey(coll, "n"), ids...).Result()
	if err != nil {
		return nil, err
	}
	out := make(map[int64]bool)
	for _, l := range lists {
		if str, ok := l.(string); ok {
			for da := range sel.selected(parseVersions(str)) {
				out[da] = true
			}
		}
	}
	return out, nil
}

// fetch reads the records of das (ascending) and keeps those passing q's
// filters.
func (s *Store) fetch(ctx context.Context, coll string, das []int64, q *store.Query) ([]store.Object, []int64, error) {
	fields := make([]string, len(das))
	for i, da := range das {
		fields[i] = strconv.FormatInt(da, 10)
	}
	recs, err := s.records(ctx, coll, fields)
	if err != nil {
		return nil, nil, err
	}
	return decodeFiltered(das, recs, q, nil)
}

// records returns the records of the versions whose date_added are das
// (decimal), nil for those not stored, in one round trip.
func (s *Store) records(ctx context.Context, coll string, das []string) ([]any, error) {
	pipe := s.c.Pipeline()
	cmds := make([]*goredis.StringSliceCmd, len(das))
	z := s.collKey(coll, "z")
	for i, da := range das {
		cmds[i] = pipe.ZRangeArgs(ctx, goredis.ZRangeArgs{Key: z, Start: da, Stop: da, ByScore: true})
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, err
	}
	out := make([]any, len(das))
	for i, c := range cmds {
		if v := c.Val(); len(v) > 0 {
			out[i] = v[0]
		}
	}
	return out, nil
}

// decodeFiltered decodes the records recs of das and keeps those passing
// q's type, spec_version and id filters and, when check is set, the
// versions it selects.
func decodeFiltered(das []int64, recs []any, q *store.Query, check func([]store.Object, []int64) (map[int64]bool, error)) ([]store.Object, []int64, error) {
	objs := make([]store.Object, 0, len(das))
	outDAs := make([]int64, 0, len(das))
	for i, r := range recs {
		str, ok := r.(string)
		if !ok {
			continue // deleted meanwhile
		}
		o, err := decodeRecord(str, !q.WithoutRaw)
		if err != nil {
			return nil, nil, fmt.Errorf("record %d: %w", das[i], err)
		}
		if !typeOK(q, o.Type) || (len(q.SpecVersions) > 0 && !slices.Contains(q.SpecVersions, o.SpecVersion)) {
			continue
		}
		if len(q.IDs) > 0 && !slices.Contains(q.IDs, o.ID) {
			continue
		}
		o.DateAdded = microTime(das[i])
		objs = append(objs, o)
		outDAs = append(outDAs, das[i])
	}
	if check != nil && len(objs) > 0 {
		chosen, err := check(objs, outDAs)
		if err != nil {
			return nil, nil, err
		}
		k := 0
		for i := range objs {
			if chosen[outDAs[i]] {
				objs[k], outDAs[k] = objs[i], outDAs[i]
				k++
			}
		}
		objs, outDAs = objs[:k], outDAs[:k]
	}
	return objs, outDAs, nil
}

// deleteScript removes versions of one id if its version list is still
// what the caller read.
//
// KEYS: 1 z, 2 unused, 3 n, 4 pl, 5 pln, 6 last, 7 t, 8 ta. ARGV: 1 id,
// 2 the list read, 3 the new list ("" to remove the id), 4 the clock (µs),
// 5 the deleted ledger entries (lines), 6 the tombstones ("" for none,
// else one line per version removed, in the order of what follows), then
// the date_added of each version removed. Each tombstone goes into the
// sorted set t scored by the next time of the collection's date_added
// clock (last), its member that time, a space and the tombstone; and into
// the sorted set ta (resolve.go), scored by the removed version's
// date_added, its member that same time. Returns {versions removed,
// pending ledger batch}, or {-1, 0} when the list changed.
var deleteScript = goredis.NewScript(`
local cur = redis.call('HGET', KEYS[3], ARGV[1]) or ''
if cur ~= ARGV[2] then return {-1, 0} end
for i = 7, #ARGV do
  redis.call('ZREMRANGEBYSCORE', KEYS[1], ARGV[i], ARGV[i])
end
if ARGV[3] == '' then redis.call('HDEL', KEYS[3], ARGV[1]) else redis.call('HSET', KEYS[3], ARGV[1], ARGV[3]) end
if ARGV[6] ~= '' then
  local now = tonumber(ARGV[4])
  local last = redis.call('GET', KEYS[6])
  if last then last = tonumber(last) else last = now - 1 end
  local i = 7
  for line in string.gmatch(ARGV[6], '[^\n]+') do
    local d = now
    if d <= last then d = last + 1 end
    last = d
    local ds = string.format('%.0f', d)
    redis.call('ZADD', KEYS[7], ds, ds .. ' ' .. line)
    redis.call('ZADD', KEYS[8], ARGV[i], ds)
    i = i + 1
  end
  redis.call('SET', KEYS[6], string.format('%.0f', last))
end
local lb = 0
if ARGV[5] ~= '' then
  lb = redis.call('INCR', KEYS[5])
  redis.call('RPUSH', KEYS[4], lb .. ':' .. ARGV[4] .. '\n' .. ARGV[5])
end
return {#ARGV - 6, lb}
`)

// DeleteObject removes the selected versions of id.
func (s *Store) DeleteObject(ctx context.Context, collection, id string, versions []store.VersionMatch, specVersions []string) (int, error) {
	const op = "redis.DeleteObject"
	sel, err := newSelector(versions, specVersions, store.All)
	if err != nil {
		return 0, ctigate.E(op, ctigate.Invalid, err.Error())
	}
	if err := ctx.Err(); err != nil {
		return 0, ctxErr(op, err)
	}
	for range 100 {
		cur, err := s.c.HGet(ctx, s.collKey(collection, "n"), id).Result()
		if err != nil && err != goredis.Nil {
			return 0, s.fail(op, err)
		}
		es := parseVersions(cur)
		chosen := sel.selected(es)
		if len(chosen) == 0 {
			return 0, ctigate.E(op, ctigate.NotFound, "no such object version")
		}
		var keep []versionEntry
		now := s.clock().UnixMicro()
		args := []any{id, cur, "", now, "", ""}
		var doomed []versionEntry
		for _, e := range es {
			if chosen[e.da] {
				args = append(args, strconv.FormatInt(e.da, 10))
				doomed = append(doomed, e)
			} else {
				keep = append(keep, e)
			}
		}
		args[2] = formatVersions(keep)
		lines, tombs, ins, err := s.deletedLines(ctx, collection, id, doomed)
		if err != nil {
			return 0, s.fail(op, err)
		}
		args[4] = strings.Join(lines, "\n")
		args[5] = strings.Join(tombs, "\n")
		if err := s.registerSource(ctx, collection); err != nil {
			return 0, s.fail(op, err)
		}
		keys := []string{s.collKey(collection, "z"), s.collKey(collection, "o"), s.collKey(collection, "n"),
			s.collKey(collection, "pl"), s.collKey(collection, "pln"), s.collKey(collection, "last"), s.collKey(collection, "t"), s.collKey(collection, "ta")}
		s.ledgerBegin(collection)
		r, err := deleteScript.Run(ctx, s.c, keys, args...).Int64Slice()
		var lb uint64
		if err == nil && len(r) == 2 && r[0] >= 0 && r[1] > 0 {
			lb = uint64(r[1])
		}
		if err := s.ledgerEnd(ctx, collection, lb, now, ins); err != nil {
			s.log.Warn("redis: chaining custody ledger entries", "collection", collection, "err", err)
		}
		if err != nil {
			return 0, s.fail(op, err)
		}
		if len(r) != 2 {
			return 0, ctigate.E(op, ctigate.Internal, fmt.Errorf("delete script returned %v", r))
		}
		if r[0] >= 0 {
			return int(r[0]), nil
		}
	}
	return 0, ctigate.E(op, ctigate.Unavailable, "object changing too fast to delete")
}

// Tombstones returns the collection's tombstones removed after after.
func (s *Store) Tombstones(ctx context.Context, collection string, after time.Time, limit int) ([]store.Tombstone, bool, error) {
	const op = "redis.Tombstones"
	if err := store.ValidName("collection", collection); err != nil {
		return nil, false, ctigate.E(op, ctigate.Invalid, err.Error())
	}
	if limit <= 0 {
		limit = store.DefaultLimit
	}
	min := "-inf"
	if !after.IsZero() {
		min = "(" + strconv.FormatInt(after.UnixMicro(), 10)
	}
	ms, err := s.c.ZRangeArgs(ctx, goredis.ZRangeArgs{
		Key: s.collKey(collection, "t"), Start: min, Stop: "+inf", ByScore: true, Count: int64(limit) + 1,
	}).Result()
	if err != nil {
		return nil, false, s.fail(op, err)
	}
	more := len(ms) > limit
	if more {
		ms = ms[:limit]
	}
	out := make([]store.Tombstone, 0, len(ms))
	for _, m := range ms {
		at, rest, ok := strings.Cut(m, " ")
		us, err := strconv.ParseInt(at, 10, 64)
		if !ok || err != nil {
			return nil, false, ctigate.E(op, ctigate.Internal, "malformed tombstone")
		}
		t, err := store.DecodeTombstone([]byte(rest), time.UnixMicro(us))
		if err != nil {
			return nil, false, ctigate.E(op, ctigate.Internal, err)
		}
		out = append(out, t)
	}
	return out, more, nil
}
