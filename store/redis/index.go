package redis

// The search index on Redis. Key layout, under the prefix P and the
// index generation G (P:ix:gen, 0 when unset; DropIndex moves to a new
// generation, so a drop is one atomic INCR, then deletes the old keys):
//
//	P:ix:classes            set of the classes written
//	P:ix:colls              set of the collections written
//	P:{ix:G:C}:b:<n>        hash: key (class NUL value) -> the key's
//	                        entries in collection C (packIxList), or
//	                        ixSpilled; the keys fall in 256 buckets
//	                        n (ixBucket), so an observable costs Redis a
//	                        field, not a key of its own
//	P:{ix:G:C}:e:<key>      hash: id NUL version -> entry (packIxEntry;
//	                        JSON from earlier builds), for the key in
//	                        collection C: the entries of a key that has
//	                        more than ixSpillAt (its bucket field then
//	                        holds ixSpilled), and those earlier builds
//	                        wrote
//	P:{ix:G:C}:cp           hash: checkpoint name -> time (RFC 3339)
//
// The keys of one collection's index share a hash tag, so a write is on
// one shard, also in a Cluster: keys new to their bucket are created
// (HSETNX), then the others are merged into their fields with the
// checkpoint in one transaction on their buckets (write). A lookup reads
// a key's bucket field and its hash in one round trip. The class and
// collection sets are written first, and are not per generation (a
// lookup reads them with the generation in one round trip): a failed
// write, or one racing a drop, leaves them supersets, which costs a
// lookup a probe at most.

import (
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-json-experiment/json"
	goredis "github.com/redis/go-redis/v9"

	"github.com/ctigate/ctigate"
	"github.com/ctigate/ctigate/store"
)

var _ store.Index = (*Index)(nil)

// Index is a store.Index kept in Redis, beside a Store on the same keys'
// prefix. It is safe for concurrent use.
type Index struct {
	c      goredis.UniversalClient
	prefix string
}

// NewIndex returns the search index under prefix (without the trailing
// ':'; it must not contain '{' or '}').
func NewIndex(c goredis.UniversalClient, prefix string) (*Index, error) {
	if strings.ContainsAny(prefix, "{}") {
		return nil, fmt.Errorf("redis: prefix %q contains a brace", prefix)
	}
	return &Index{c: c, prefix: prefix}, nil
}

// ixEntry is an entry's value. Earlier builds stored it as JSON; it is
// now packed (packIxEntry), which lookups tell by its first byte.
type ixEntry struct {
	Type       string   `json:"t"`
	DateAdded  int64    `json:"d"` // microseconds
	TLP        string   `json:"l"`
	Producer   string   `json:"p,omitempty"`
	Observable string   `json:"o"`
	Labels     []string `json:"b,omitempty"`
}

const ixMaxField = 4096

// ixPacked starts a packed entry (JSON starts with '{').
const (
	ixPacked         = 1
	ixSameObservable = 1 // flag: the observable is the key's value
)

// packIxEntry returns e's stored value: ixPacked, a flags byte
// (ixSameObservable: the observable is the key's value, as it mostly is,
// and is not stored), then type, TLP, producer and observable as
// uvarint(len) and bytes, date_added (µs) as a varint, the number of
// labels and each label.
func packIxEntry(e *store.IndexEntry) []byte {
	obs, flags := e.Observable, byte(0)
	if obs == e.Value {
		obs, flags = "", ixSameObservable
	}
	n := 2 + 4*binary.MaxVarintLen64 + len(e.Type) + len(e.TLP) + len(e.Producer) + len(obs) + binary.MaxVarintLen64 + binary.MaxVarintLen32
	for _, l := range e.Labels {
		n += binary.MaxVarintLen32 + len(l)
	}
	b := make([]byte, 0, n)
	b = append(b, ixPacked, flags)
	for _, f := range []string{e.Type, e.TLP, e.Producer, obs} {
		b = binary.AppendUvarint(b, uint64(len(f)))
		b = append(b, f...)
	}
	b = binary.AppendVarint(b, e.DateAdded.UnixMicro())
	b = binary.AppendUvarint(b, uint64(len(e.Labels)))
	for _, l := range e.Labels {
		b = binary.AppendUvarint(b, uint64(len(l)))
		b = append(b, l...)
	}
	return b
}

var errIxEntry = errors.New("malformed packed entry")

// unpackIxEntry decodes a stored entry of the key whose value is value.
func unpackIxEntry(v, value string) (ixEntry, error) {
	var r ixEntry
	if v == "" || v[0] != ixPacked {
		err := json.Unmarshal([]byte(v), &r)
		return r, err
	}
	d := logReader{s: v, i: 1}
	flags := d.byte()
	fields := [4]string{}
	for i := range fields {
		fields[i] = d.take(d.uvarint())
	}
	r.Type, r.TLP, r.Producer, r.Observable = fields[0], fields[1], fields[2], fields[3]
	if flags&ixSameObservable != 0 {
		r.Observable = value
	}
	r.DateAdded = d.varint()
	n := d.uvarint()
	if d.err != nil || n > uint64(len(v)) {
		return r, errIxEntry
	}
	if n > 0 {
		r.Labels = make([]string, n)
		for i := range r.Labels {
			r.Labels[i] = d.take(d.uvarint())
		}
	}
	if d.err != nil || d.i != len(v) {
		return r, errIxEntry
	}
	return r, nil
}

// ixSpillAt is the most entries a key keeps in its bucket field (each write
// of the key rewrites the field); ixAttempts bounds the starts of one
// write while other processes write the same buckets.
const (
	ixSpillAt  = 16
	ixAttempts = 50
)

// Bucket field values: a list of entries, or the mark of a key whose
// entries are in its own hash.
const (
	ixList    = 3
	ixSpilled = "\x04"
)

// ixBucket returns the bucket of the key k (class NUL value): the top
// byte of its FNV-1a digest.
func ixBucket(k string) string { return strconv.FormatUint(objectTag(k)>>(64-8), 10) }

// ixItem is an entry in a bucket field: its field in the key's hash
// (ixField) and its value (packIxEntry).
type ixItem struct{ field, entry string }

// packIxList returns a bucket field holding items: ixList, then each
// item's field and entry as uvarint(len) and bytes.
func packIxList(items []ixItem) string {
	n := 1
	for _, it := range items {
		n += 2*binary.MaxVarintLen32 + len(it.field) + len(it.entry)
	}
	b := make([]byte, 1, n)
	b[0] = ixList
	for _, it := range items {
		b = binary.AppendUvarint(b, uint64(len(it.field)))
		b = append(b, it.field...)
		b = binary.AppendUvarint(b, uint64(len(it.entry)))
		b = append(b, it.entry...)
	}
	return string(b)
}

// unpackIxList returns the items of a bucket field packIxList made.
func unpackIxList(v string) ([]ixItem, error) {
	if v == "" || v[0] != ixList {
		return nil, errIxEntry
	}
	d := logReader{s: v, i: 1}
	var out []ixItem
	for !d.done() {
		f := d.take(d.uvarint())
		e := d.take(d.uvarint())
		out = append(out, ixItem{f, e})
	}
	if d.err != nil {
		return nil, errIxEntry
	}
	return out, nil
}

func (x *Index) genKey() string { return x.prefix + ":ix:gen" }

func (x *Index) gen(ctx context.Context) (string, error) {
	g, err := x.c.Get(ctx, x.genKey()).Result()
	if errors.Is(err, goredis.Nil) {
		return "0", nil
	}
	return g, err
}

func (x *Index) classesKey() string { return x.prefix + ":ix:classes" }
func (x *Index) collsKey() string   { return x.prefix + ":ix:colls" }
func (x *Index) collTag(g, coll string) string {
	return x.prefix + ":{ix:" + g + ":" + coll + "}"
}
func (x *Index) entriesKey(g, coll, class, value string) string {
	return x.collTag(g, coll) + ":e:" + class + "\x00" + value
}

func ixField(id string, v time.Time) string {
	var b [8]byte
	if !v.IsZero() {
		binary.BigEndian.PutUint64(b[:], uint64(v.UnixNano())^(1<<63))
	}
	return id + "\x00" + string(b[:])
}

func ixParseField(f string) (string, time.Time, error) {
	id, vb, ok := strings.Cut(f, "\x00")
	if !ok || len(vb) != 8 {
		return "", time.Time{}, errors.New("corrupt index field")
	}
	u := binary.BigEndian.Uint64([]byte(vb))
	if u == 0 {
		return id, time.Time{}, nil
	}
	return id, time.Unix(0, int64(u^(1<<63))).UTC(), nil
}

func ixRedisErr(op string, ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctigate.E(op, ctigate.Unavailable, ctx.Err(), "request cancelled")
	}
	if isOOM(err) {
		return ctigate.E(op, ctigate.Full, err)
	}
	return ctigate.E(op, ctigate.Unavailable, err, "the store is unavailable")
}

// AddIndexEntries writes entries of collection and moves its checkpoint
// name to at, atomically.
func (x *Index) AddIndexEntries(ctx context.Context, collection string, entries []store.IndexEntry, name string, at time.Time) error {
	const op = "redis.AddIndexEntries"
	switch {
	case name == "" || len(name) > 1024:
		return ctigate.E(op, ctigate.Invalid, "checkpoint name must be 1 to 1024 bytes")
	case collection == "" || len(collection) > 1024 || strings.ContainsAny(collection, "{}"):
		return ctigate.E(op, ctigate.Invalid, "collection must be 1 to 1024 bytes without braces")
	}
	classes := map[string]bool{}
	fields := map[string][]ixItem{} // key -> its new entries
	for i := range entries {
		e := &entries[i]
		switch {
		case e.Class == "", e.Value == "", e.ID == "":
			return ctigate.E(op, ctigate.Invalid, fmt.Sprintf("entries[%d]: index entry without class, value or id", i))
		case e.Collection != collection:
			return ctigate.E(op, ctigate.Invalid, fmt.Sprintf("entries[%d]: collection %q in a write to %q", i, e.Collection, collection))
		case len(e.Class) > ixMaxField, len(e.Value) > ixMaxField, len(e.ID) > 1024:
			return ctigate.E(op, ctigate.Invalid, fmt.Sprintf("entries[%d]: index entry field too long", i))
		}
		k := e.Class + "\x00" + e.Value
		fields[k] = append(fields[k], ixItem{ixField(e.ID, e.Version), string(packIxEntry(e))})
		classes[e.Class] = true
	}
	g, err := x.gen(ctx)
	if err != nil {
		return ixRedisErr(op, ctx, err)
	}
	if len(classes) > 0 {
		members := make([]any, 0, len(classes))
		for c := range classes {
			members = append(members, c)
		}
		if err := x.c.SAdd(ctx, x.classesKey(), members...).Err(); err != nil {
			return ixRedisErr(op, ctx, err)
		}
	}
	if err := x.c.SAdd(ctx, x.collsKey(), collection).Err(); err != nil {
		return ixRedisErr(op, ctx, err)
	}
	if err := x.write(ctx, x.collTag(g, collection), fields, name, at); err != nil {
		return ixRedisErr(op, ctx, err)
	}
	return nil
}

// write adds fields to their buckets under tag, then moves the
// checkpoint name to at. A key new to its bucket, with no more entries
// than a field keeps, is created in one pipeline (HSETNX: a field is
// created only where none is); the rest are merged into their fields
// with the checkpoint in one transaction that WATCHes their buckets and
// starts over while other processes (other replicas' indexers) write
// those first. Entries written before a checkpoint moves are harmless
// (the objects are stored) and writing them again replaces them, so a
// crash between the two loses nothing.
func (x *Index) write(ctx context.Context, tag string, fields map[string][]ixItem, name string, at time.Time) error {
	keys := make([]string, 0, len(fields))
	for k := range fields {
		keys = append(keys, k)
	}
	bucketOf := func(k string) string { return tag + ":b:" + ixBucket(k) }
	created := make([]*goredis.BoolCmd, len(keys)) // nil: merged (more than a field keeps)
	if len(keys) > 0 {
		if _, err := x.c.Pipelined(ctx, func(p goredis.Pipeliner) error {
			for i, k := range keys {
				if len(fields[k]) <= ixSpillAt {
					created[i] = p.HSetNX(ctx, bucketOf(k), k, packIxList(fields[k]))
				}
			}
			return nil
		}); err != nil {
			return err
		}
	}
	buckets := map[string][]string{} // bucket key -> its keys to merge
	var bkeys []string
	for i, k := range keys {
		if created[i] != nil && created[i].Val() {
			continue
		}
		b := bucketOf(k)
		if buckets[b] == nil {
			bkeys = append(bkeys, b)
		}
		buckets[b] = append(buckets[b], k)
	}
	slices.Sort(bkeys)
	watch := append(bkeys, tag+":cp") // a Cluster watches a key at least
	attempt := func(tx *goredis.Tx) error {
		reads := make([]*goredis.SliceCmd, len(bkeys))
		if len(bkeys) > 0 {
			if _, err := tx.Pipelined(ctx, func(p goredis.Pipeliner) error {
				for i, b := range bkeys {
					reads[i] = p.HMGet(ctx, b, buckets[b]...)
				}
				return nil
			}); err != nil {
				return err
			}
		}
		cmds, err := tx.TxPipelined(ctx, func(p goredis.Pipeliner) error {
			for i, b := range bkeys {
				keys, had := buckets[b], reads[i].Val()
				fv := make([]any, 0, 2*len(keys))
				for j, k := range keys {
					old, _ := had[j].(string)
					v, spill, err := mergeIxField(old, fields[k])
					if err != nil {
						return fmt.Errorf("corrupt index bucket field: %w", err)
					}
					if len(spill) > 0 {
						sv := make([]any, 0, 2*len(spill))
						for _, it := range spill {
							sv = append(sv, it.field, it.entry)
						}
						p.HSet(ctx, tag+":e:"+k, sv...)
					}
					if v != old {
						fv = append(fv, k, v)
					}
				}
				if len(fv) > 0 {
					p.HSet(ctx, b, fv...)
				}
			}
			p.HSet(ctx, tag+":cp", name, at.UTC().Format(time.RFC3339Nano))
			return nil
		})
		return execErr(cmds, err)
	}
	var err error
	for range ixAttempts {
		if err = x.c.Watch(ctx, attempt, watch...); !errors.Is(err, goredis.TxFailedErr) {
			return err
		}
	}
	return err
}

// mergeIxField returns a key's bucket field old with items added (an
// item replaces one of the same field) and, when the key's entries are
// or now become more than ixSpillAt, the entries to write to its own
// hash instead (the field then holds ixSpilled).
func mergeIxField(old string, items []ixItem) (string, []ixItem, error) {
	if old == ixSpilled {
		return old, items, nil
	}
	var have []ixItem
	if old != "" {
		var err error
		if have, err = unpackIxList(old); err != nil {
			return "", nil, err
		}
	}
	for _, it := range items {
		if i := slices.IndexFunc(have, func(h ixItem) bool { return h.field == it.field }); i >= 0 {
			have[i] = it
		} else {
			have = append(have, it)
		}
	}
	if len(have) > ixSpillAt {
		return ixSpilled, have, nil
	}
	return packIxList(have), nil, nil
}

// IndexCheckpoint returns the checkpoint name of collection, zero when none.
func (x *Index) IndexCheckpoint(ctx context.Context, collection, name string) (time.Time, error) {
	const op = "redis.IndexCheckpoint"
	if name == "" || strings.ContainsAny(collection, "{}") {
		return time.Time{}, ctigate.E(op, ctigate.Invalid, "invalid collection or checkpoint name")
	}
	g, err := x.gen(ctx)
	if err != nil {
		return time.Time{}, ixRedisErr(op, ctx, err)
	}
	v, err := x.c.HGet(ctx, x.collTag(g, collection)+":cp", name).Result()
	if errors.Is(err, goredis.Nil) {
		return time.Time{}, nil
	}
	if err != nil {
		return time.Time{}, ixRedisErr(op, ctx, err)
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return time.Time{}, ctigate.E(op, fmt.Errorf("corrupt index checkpoint %q: %w", name, err))
	}
	return t.UTC(), nil
}

// IndexClasses returns the classes written since the last drop.
func (x *Index) IndexClasses(ctx context.Context) ([]string, error) {
	const op = "redis.IndexClasses"
	cs, err := x.c.SMembers(ctx, x.classesKey()).Result()
	if err != nil {
		return nil, ixRedisErr(op, ctx, err)
	}
	slices.Sort(cs)
	return cs, nil
}

// IndexLookup returns the entries under keys: one pipelined HGETALL per
// (collection, key).
func (x *Index) IndexLookup(ctx context.Context, keys []store.IndexKey) ([]store.IndexEntry, error) {
	const op = "redis.IndexLookup"
	var genCmd *goredis.StringCmd
	var collsCmd *goredis.StringSliceCmd
	_, err := x.c.Pipelined(ctx, func(p goredis.Pipeliner) error {
		genCmd = p.Get(ctx, x.genKey())
		collsCmd = p.SMembers(ctx, x.collsKey())
		return nil
	})
	if err != nil && !errors.Is(err, goredis.Nil) {
		return nil, ixRedisErr(op, ctx, err)
	}
	g := genCmd.Val()
	if g == "" {
		g = "0"
	}
	colls := collsCmd.Val()
	if len(colls) == 0 || len(keys) == 0 {
		return nil, nil
	}
	slices.Sort(colls)
	type probe struct {
		key   store.IndexKey
		coll  string
		own   *goredis.MapStringStringCmd // the key's hash
		field *goredis.StringCmd          // its bucket field
	}
	probes := make([]probe, 0, len(keys)*len(colls))
	_, err = x.c.Pipelined(ctx, func(p goredis.Pipeliner) error {
		for _, k := range keys {
			for _, c := range colls {
				key := k.Class + "\x00" + k.Value
				probes = append(probes, probe{k, c, p.HGetAll(ctx, x.entriesKey(g, c, k.Class, k.Value)),
					p.HGet(ctx, x.collTag(g, c)+":b:"+ixBucket(key), key)})
			}
		}
		return nil
	})
	if err != nil && !errors.Is(err, goredis.Nil) {
		return nil, ixRedisErr(op, ctx, err)
	}
	var out []store.IndexEntry
	for _, pr := range probes {
		if err := cmp.Or(pr.own.Err(), pr.field.Err()); err != nil && !errors.Is(err, goredis.Nil) {
			return nil, ixRedisErr(op, ctx, err)
		}
		m := pr.own.Val()
		if v := pr.field.Val(); v != "" && v != ixSpilled {
			items, err := unpackIxList(v)
			if err != nil {
				return nil, ctigate.E(op, fmt.Errorf("corrupt index bucket field: %w", err))
			}
			if len(m) == 0 {
				m = make(map[string]string, len(items))
			}
			for _, it := range items {
				m[it.field] = it.entry
			}
		}
		if len(out)+len(m) > store.MaxIndexLookup {
			return nil, ctigate.E(op, ctigate.TooLarge, fmt.Sprintf("more than %d index entries match", store.MaxIndexLookup))
		}
		start := len(out)
		for f, v := range m {
			id, ver, err := ixParseField(f)
			if err != nil {
				return nil, ctigate.E(op, err)
			}
			r, err := unpackIxEntry(v, pr.key.Value)
			if err != nil {
				return nil, ctigate.E(op, fmt.Errorf("corrupt index entry: %w", err))
			}
			out = append(out, store.IndexEntry{
				Class: pr.key.Class, Value: pr.key.Value, Collection: pr.coll, ID: id, Type: r.Type, Version: ver,
				DateAdded: time.UnixMicro(r.DateAdded).UTC(), TLP: r.TLP, Producer: r.Producer, Labels: r.Labels, Observable: r.Observable,
			})
		}
		slices.SortFunc(out[start:], func(a, b store.IndexEntry) int {
			return cmp.Or(strings.Compare(a.ID, b.ID), a.Version.Compare(b.Version))
		})
	}
	return out, nil
}

// DropIndex moves to a new index generation, then deletes the keys of
// the old one.
func (x *Index) DropIndex(ctx context.Context) error {
	const op = "redis.DropIndex"
	n, err := x.c.Incr(ctx, x.genKey()).Result()
	if err != nil {
		return ixRedisErr(op, ctx, err)
	}
	for _, k := range []string{x.classesKey(), x.collsKey()} { // apart: they may lie in different slots
		if err := x.c.Del(ctx, k).Err(); err != nil {
			return ixRedisErr(op, ctx, err)
		}
	}
	old := strconv.FormatInt(n-1, 10)
	patterns := []string{x.prefix + ":{ix:" + old + ":*"}
	del := func(ctx context.Context, c *goredis.Client) error {
		for _, pat := range patterns {
			// Escape the glob's special characters in the prefix.
			pat = strings.NewReplacer("[", `\[`, "?", `\?`).Replace(pat)
			it := c.Scan(ctx, 0, pat, 1000).Iterator()
			var batch []string
			for it.Next(ctx) {
				batch = append(batch, it.Val())
				if len(batch) == 500 {
					if err := ixUnlink(ctx, c, batch); err != nil {
						return err
					}
					batch = batch[:0]
				}
			}
			if err := it.Err(); err != nil {
				return err
			}
			if err := ixUnlink(ctx, c, batch); err != nil {
				return err
			}
		}
		return nil
	}
	switch c := x.c.(type) {
	case *goredis.ClusterClient:
		err = c.ForEachMaster(ctx, del)
	case *goredis.Client:
		err = del(ctx, c)
	default:
		err = nil // e.g. a ring: the old generation is unreachable, only not reclaimed
	}
	if err != nil {
		return ixRedisErr(op, ctx, err)
	}
	return nil
}

// ixUnlink deletes keys one by one (they may lie in different slots).
func ixUnlink(ctx context.Context, c *goredis.Client, keys []string) error {
	if len(keys) == 0 {
		return nil
	}
	_, err := c.Pipelined(ctx, func(p goredis.Pipeliner) error {
		for _, k := range keys {
			p.Unlink(ctx, k)
		}
		return nil
	})
	return err
}
