package redis

// The search index on Redis. Key layout, under the prefix P and the
// index generation G (P:ix:gen, 0 when unset; DropIndex moves to a new
// generation, so a drop is one atomic INCR, then deletes the old keys):
//
//	P:ix:classes            set of the classes written
//	P:ix:colls              set of the collections written
//	P:{ix:G:C}:e:<key>      hash: id NUL version -> entry (packIxEntry;
//	                        JSON from earlier builds), for the key
//	                        (class NUL value) in collection C
//	P:{ix:G:C}:cp           hash: checkpoint name -> time (RFC 3339)
//
// The keys of one collection's index share a hash tag, so each write of
// entries and checkpoint is one MULTI/EXEC on one shard, also in a
// Cluster. The class and collection sets are written first, outside it,
// and are not per generation (a lookup reads them with the generation in
// one round trip): a failed write, or one racing a drop, leaves them
// supersets, which costs a lookup a probe at most.

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
	fields := map[string][]any{} // entries key -> field, value, …
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
		b := packIxEntry(e)
		k := e.Class + "\x00" + e.Value
		fields[k] = append(fields[k], ixField(e.ID, e.Version), b)
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
	tag := x.collTag(g, collection)
	_, err = x.c.TxPipelined(ctx, func(p goredis.Pipeliner) error {
		for k, fv := range fields {
			p.HSet(ctx, tag+":e:"+k, fv...)
		}
		p.HSet(ctx, tag+":cp", name, at.UTC().Format(time.RFC3339Nano))
		return nil
	})
	if err != nil {
		return ixRedisErr(op, ctx, err)
	}
	return nil
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
		key  store.IndexKey
		coll string
		cmd  *goredis.MapStringStringCmd
	}
	probes := make([]probe, 0, len(keys)*len(colls))
	_, err = x.c.Pipelined(ctx, func(p goredis.Pipeliner) error {
		for _, k := range keys {
			for _, c := range colls {
				probes = append(probes, probe{k, c, p.HGetAll(ctx, x.entriesKey(g, c, k.Class, k.Value))})
			}
		}
		return nil
	})
	if err != nil {
		return nil, ixRedisErr(op, ctx, err)
	}
	var out []store.IndexEntry
	for _, pr := range probes {
		m := pr.cmd.Val()
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
