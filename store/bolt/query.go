package bolt

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"

	"go.etcd.io/bbolt"

	"github.com/ctigate/ctigate"
	"github.com/ctigate/ctigate/store"
)

// filter is a compiled store.Query.
type filter struct {
	after  int64 // only versions with date_added > after
	limit  int
	ids    []string // unique
	idSet  map[string]struct{}
	types  map[string]struct{}
	specs  map[string]struct{}
	all    bool
	first  bool
	last   bool
	at     []versionKey
	noRaw  bool
	anyIDs bool  // match[id] was given
	maxRaw int64 // Query.MaxBytes: the page's Raw bytes; 0 bounds nothing
}

func compileQuery(q store.Query) (*filter, error) {
	f := &filter{after: math.MinInt64, limit: q.Limit, noRaw: q.WithoutRaw, maxRaw: max(q.MaxBytes, 0)}
	if f.limit <= 0 {
		f.limit = store.DefaultLimit
	}
	if q.Next != "" {
		pos, ok := decodeCursor(q.Next)
		if !ok {
			return nil, fmt.Errorf("malformed next cursor")
		}
		f.after = pos
	}
	if !q.AddedAfter.IsZero() {
		// date_added values are whole microseconds, and UnixMicro rounds
		// down, so date_added > AddedAfter iff date_added > its UnixMicro.
		f.after = max(f.after, q.AddedAfter.UnixMicro())
	}
	if len(q.IDs) > 0 {
		f.anyIDs = true
		f.idSet = make(map[string]struct{}, len(q.IDs))
		for _, id := range q.IDs {
			if _, dup := f.idSet[id]; !dup && id != "" && len(id) <= maxIDLen {
				f.idSet[id] = struct{}{}
				f.ids = append(f.ids, id)
			}
		}
	}
	f.types = stringSet(q.Types)
	f.specs = stringSet(q.SpecVersions)
	if len(q.Versions) == 0 {
		f.last = true
	}
	for _, v := range q.Versions {
		switch v.Kind {
		case store.Last:
			f.last = true
		case store.First:
			f.first = true
		case store.All:
			f.all = true
		case store.At:
			f.at = append(f.at, encodeVersion(v.At))
		default:
			return nil, fmt.Errorf("unknown version selector %d", v.Kind)
		}
	}
	return f, nil
}

func stringSet(ss []string) map[string]struct{} {
	if len(ss) == 0 {
		return nil
	}
	m := make(map[string]struct{}, len(ss))
	for _, s := range ss {
		m[s] = struct{}{}
	}
	return m
}

func (f *filter) typeOK(typ []byte) bool {
	if f.types == nil {
		return true
	}
	_, ok := f.types[string(typ)]
	return ok
}

func (f *filter) specOK(spec []byte) bool {
	if f.specs == nil {
		return true
	}
	_, ok := f.specs[string(spec)]
	return ok
}

func (f *filter) atOK(v versionKey) bool {
	for _, a := range f.at {
		if a == v {
			return true
		}
	}
	return false
}

// Objects returns one page of versions matching q in ascending date_added
// order.
func (s *Store) Objects(ctx context.Context, collection string, q store.Query) (store.Page, error) {
	const op = "bolt.Objects"
	f, err := compileQuery(q)
	if err != nil {
		return store.Page{}, ctigate.E(op, ctigate.Invalid, err.Error())
	}
	if err := store.ValidName("collection", collection); err != nil {
		return store.Page{}, ctigate.E(op, ctigate.Invalid, err.Error())
	}
	if err := s.enter(op); err != nil {
		return store.Page{}, err
	}
	defer s.leave()
	if err := ctx.Err(); err != nil {
		return store.Page{}, ctxErr(op, err)
	}
	if f.anyIDs && len(f.ids) == 0 {
		return store.Page{}, nil
	}
	// A read that finds its snapshot older than a delete the keydir has
	// already applied starts again on a newer snapshot (see keys).
	var r *pageReader
	for attempt := 0; ; attempt++ {
		r = &pageReader{f: f, keys: s.keys, coll: collection, note: s.noteRead}
		err = s.db.View(func(tx *bbolt.Tx) error {
			cb, ok := openCollection(tx, collection)
			if !ok {
				return nil
			}
			r.cb, r.txid = cb, tx.ID()
			if f.anyIDs && len(f.ids) <= s.idLookupMax {
				return r.byIDs(ctx)
			}
			if !f.anyIDs && len(f.types) > 0 {
				// match[type] of a type few ids have (the marking
				// definitions serve loads at start, among millions of
				// indicators): the versions of those ids, listed by the
				// keydir once it holds the snapshot, not a scan of every
				// version.
				r.keys.await(r.txid)
				r.awaited = true
				if ids, ok := r.keys.idsOfTypes(collection, slices.Collect(maps.Keys(f.types)), s.idLookupMax); ok {
					byType := *f
					byType.ids = ids
					r.f = &byType
					return r.byIDs(ctx)
				}
			}
			return r.scan(ctx)
		})
		if !errors.Is(err, errStaleSnapshot) || attempt == maxStaleRetries {
			break
		}
	}
	if err != nil {
		if ctx.Err() != nil {
			return store.Page{}, ctxErr(op, err)
		}
		if errors.Is(err, errStaleSnapshot) {
			return store.Page{}, ctigate.E(op, ctigate.Unavailable, err, "collection is being deleted from; retry")
		}
		return store.Page{}, ctigate.E(op, err)
	}
	s.noteRead(r.bytes)
	page := store.Page{Objects: r.objs, More: r.more}
	if r.more {
		page.Next = encodeCursor(r.lastDate)
	}
	if r.objs != nil {
		page = page.WithJoined(r.joined()).WithRelease(r.release)
	}
	return page, nil
}

// maxStaleRetries bounds how often a read starts again because versions
// were deleted after its snapshot was taken.
const maxStaleRetries = 100

// ctxCheckEvery is how many index entries a scan visits between checks of
// its context.
const ctxCheckEvery = 4096

// pageReader collects one page inside a read transaction.
type pageReader struct {
	f        *filter
	cb       collectionBuckets
	keys     *keys
	coll     string
	txid     int  // the snapshot: the read transaction's ID
	awaited  bool // the keydir has caught up with the snapshot
	objs     []store.Object
	more     bool
	lastDate int64
	bytes    int64         // bytes visited and not yet noted, for the trimmer
	note     func(n int64) // tells the trimmer, during a long scan
	rawBytes int64         // bytes of Raw in objs, against f.maxRaw

	rawCur     seqCursor // over body, or raw in the earlier layout
	hashCur    seqCursor
	prodCur    seqCursor
	producer   string // the last producer returned, reused while it repeats
	arena      []byte
	chunks     [][]byte // the arena's chunks, for release (pagepool.go)
	typ, spec  string   // the last type and spec_version strings, reused
	dates      []int64
	vs         []storedVersion
	candidates []int64
}

// versionsOf returns the versions of id in the reader's snapshot, ascending.
// The keydir lists every version the snapshot holds once it has applied
// the snapshot's transaction, and possibly later ones, which the snapshot's
// index does not hold and readVersions skips; so the result is exactly the
// snapshot's, and first and last are computed from it.
func (r *pageReader) versionsOf(id string) ([]storedVersion, error) {
	if !r.awaited {
		r.keys.await(r.txid)
		r.awaited = true
	}
	r.keys.mu.RLock()
	dates, err := r.keys.lookup(r.coll, id, r.txid, r.dates[:0])
	r.keys.mu.RUnlock()
	if err != nil {
		return nil, err
	}
	r.dates = dates
	r.vs, err = readVersions(r.cb.index, id, dates, r.vs[:0])
	return r.vs, err
}

// full reports whether the page is complete; called before adding a match,
// it records that one more match exists.
func (r *pageReader) full() bool {
	if len(r.objs) < r.f.limit {
		return false
	}
	r.more = true
	return true
}

// scan walks the collection in date_added order from the start position.
func (r *pageReader) scan(ctx context.Context) error {
	f := r.f
	if f.after == math.MaxInt64 {
		return nil
	}
	c := r.cb.index.Cursor()
	n := 0
	for k, v := c.Seek(dateKey(f.after + 1)); k != nil; k, v = c.Next() {
		if n++; n%ctxCheckEvery == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		// A scan that matches little may visit the whole collection in
		// one call (the marking definitions loaded at start): the
		// trimmer hears of it as it goes.
		if r.bytes += int64(len(v)); r.bytes >= 1<<20 && r.note != nil {
			r.note(r.bytes)
			r.bytes = 0
		}
		if len(k) != dateKeyLen {
			return errCorrupt
		}
		h, err := decodeHeader(v)
		if err != nil {
			return err
		}
		if !f.typeOK(h.typ) || !f.specOK(h.spec) {
			continue
		}
		if f.idSet != nil {
			if _, ok := f.idSet[string(h.id)]; !ok {
				continue
			}
		}
		if ok, err := r.versionOK(&h); err != nil || !ok {
			if err != nil {
				return err
			}
			continue
		}
		if r.full() {
			return nil
		}
		if done, err := r.add(k, &h); err != nil || done {
			return err
		}
	}
	return nil
}

// versionOK applies match[version] to an entry that passed the spec_version
// filter.
func (r *pageReader) versionOK(h *header) (bool, error) {
	f := r.f
	if f.all || (f.at != nil && f.atOK(h.version)) {
		return true, nil
	}
	if !f.first && !f.last {
		return false, nil
	}
	if f.specs == nil || h.flags&flagMixedSpec == 0 {
		// Every version of this id passes the spec_version filter, so the
		// flags kept at write time answer.
		return (f.first && h.flags&flagNotFirst == 0) || (f.last && h.flags&flagNotLast == 0), nil
	}
	// The id has versions of several spec_versions and only some of them
	// are selected: find the first and last among those.
	vs, err := r.versionsOf(string(h.id))
	if err != nil {
		return false, err
	}
	var first, last *storedVersion
	for i := range vs {
		if f.specOK(vs[i].spec) {
			if first == nil {
				first = &vs[i]
			}
			last = &vs[i]
		}
	}
	return first != nil && ((f.first && first.version == h.version) || (f.last && last.version == h.version)), nil
}

// byIDs answers a query with match[id] from the versions of those ids,
// without scanning the collection.
func (r *pageReader) byIDs(ctx context.Context) error {
	f := r.f
	for i, id := range f.ids {
		if i%ctxCheckEvery == ctxCheckEvery-1 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		vs, err := r.versionsOf(id)
		if err != nil {
			return err
		}
		// vs is ascending; keep those passing spec_version, then select.
		kept := vs[:0]
		for _, v := range vs {
			if f.specOK(v.spec) {
				kept = append(kept, v)
			}
		}
		for j, v := range kept {
			if f.all || (f.first && j == 0) || (f.last && j == len(kept)-1) || f.atOK(v.version) {
				if v.date > f.after {
					r.candidates = append(r.candidates, v.date)
				}
			}
		}
	}
	slices.Sort(r.candidates)
	for _, d := range r.candidates {
		k := dateKey(d)
		v := r.cb.index.Get(k)
		if v == nil {
			return errCorrupt
		}
		r.bytes += int64(len(v))
		h, err := decodeHeader(v)
		if err != nil {
			return err
		}
		if !f.typeOK(h.typ) {
			continue
		}
		if r.full() {
			return nil
		}
		if done, err := r.add(k, &h); err != nil || done {
			return err
		}
	}
	return nil
}

// add appends the version at date key k to the page, copying what it needs
// out of the transaction exactly once. It reports done, adding nothing,
// when the version's bytes would take the page past the filter's maxRaw:
// this match is then the proof that more follow, and the cursor stays at
// the last version added.
func (r *pageReader) add(k []byte, h *header) (done bool, err error) {
	if r.objs == nil {
		r.objs = newObjs(r.f.limit)
	}
	d := dateMicros(k)
	if string(h.typ) != r.typ {
		r.typ = string(h.typ)
	}
	if string(h.spec) != r.spec {
		r.spec = string(h.spec)
	}
	o := store.Object{
		ID:          string(h.id),
		Type:        r.typ,
		SpecVersion: r.spec,
		Version:     h.version.time(),
		DateAdded:   microsTime(d),
	}
	if !r.f.noRaw {
		raw, hv, p, err := r.versionAt(k)
		if err != nil {
			return false, err
		}
		r.bytes += int64(len(raw))
		if r.f.maxRaw > 0 && len(r.objs) > 0 && r.rawBytes+int64(len(raw)) > r.f.maxRaw {
			r.more = true
			return true, nil
		}
		r.rawBytes += int64(len(raw))
		o.Raw = r.copyRaw(raw)
		copy(o.Hash[:], hv)
		if len(hv) == hashValueLen {
			copy(o.Leaf[:], hv[len(o.Hash):])
		}
		if p != nil {
			o.Producer = r.internProducer(p)
		}
	}
	r.objs = append(r.objs, o)
	r.lastDate = d
	return false, nil
}

// versionAt returns the bytes, hash value and producer stored under k
// (the last two nil when none was kept), aliasing the transaction: one
// body value, or the raw, hash and producer buckets of the earlier layout.
func (r *pageReader) versionAt(k []byte) (raw, hv, producer []byte, err error) {
	if r.cb.body != nil {
		v := r.rawCur.at(r.cb.body, k)
		if v == nil {
			return nil, nil, nil, errCorrupt
		}
		hv, producer, raw, err = decodeBody(v)
		return raw, hv, producer, err
	}
	raw = r.rawCur.at(r.cb.raw, k)
	if raw == nil {
		return nil, nil, nil, errCorrupt
	}
	if r.cb.hash != nil {
		hv = r.hashCur.at(r.cb.hash, k)
	}
	if r.cb.producer != nil {
		producer = r.prodCur.at(r.cb.producer, k)
	}
	return raw, hv, producer, nil
}

// internProducer returns p as a string, reusing the previous one when it
// is the same (a page usually comes from a few organisations).
func (r *pageReader) internProducer(p []byte) string {
	if string(p) != r.producer {
		r.producer = string(p)
	}
	return r.producer
}

// seqCursor reads values of one date-keyed bucket for keys that mostly
// come in ascending order, as a page's do: the cursor's next entry is
// usually the one wanted, so most reads cost a step, not a search.
type seqCursor struct {
	cur *bbolt.Cursor
	set bool
}

// at returns the value under k, or nil when b holds none.
func (c *seqCursor) at(b *bbolt.Bucket, k []byte) []byte {
	if c.cur == nil {
		c.cur = b.Cursor()
	}
	var ck, cv []byte
	if c.set {
		ck, cv = c.cur.Next()
	}
	if !bytes.Equal(ck, k) {
		ck, cv = c.cur.Seek(k)
	}
	c.set = ck != nil
	if !bytes.Equal(ck, k) {
		return nil
	}
	return cv
}

// copyRaw copies b into a page-wide arena, so that a page costs a few
// allocations rather than one per object. Chunks double from 8 KiB to
// 256 KiB, so small pages stay small, unless a released page left one of
// 256 KiB to reuse (pagepool.go). A comma follows each copy, so that the
// chunks hold the page's JSON array elements ready to write (joined).
func (r *pageReader) copyRaw(b []byte) []byte {
	n := len(b)
	if cap(r.arena)-len(r.arena) < n+1 {
		r.arena = newChunk(n+1, cap(r.arena))
		r.chunks = append(r.chunks, r.arena)
	}
	start := len(r.arena)
	r.arena = append(r.arena, b...)
	r.arena = append(r.arena, ',')
	r.chunks[len(r.chunks)-1] = r.arena
	return r.arena[start : start+n : start+n]
}

// joined returns the arena's chunks as the page's objects joined by
// commas (store.Page.Joined): without the last comma.
func (r *pageReader) joined() [][]byte {
	if len(r.chunks) == 0 {
		return nil
	}
	segs := make([][]byte, len(r.chunks))
	copy(segs, r.chunks)
	last := segs[len(segs)-1]
	segs[len(segs)-1] = last[:len(last)-1]
	return segs
}
