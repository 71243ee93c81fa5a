package redis

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math/bits"
	"slices"
	"strconv"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/ctigate/ctigate"
	"github.com/ctigate/ctigate/custody"
	"github.com/ctigate/ctigate/store"
)

var (
	_ store.LedgerIndex = (*Store)(nil)
	_ store.Deliveries  = (*Store)(nil)
)

// The ledger's index (store.LedgerIndex), built behind the chain, in the
// ledger's slot {l}:
//
//	P:{l}:ix          the seq it is built through
//	P:{l}:tr:<c>      tree hashes 65536·c … 65536·c+65535 (storage
//	                  indexes), 32 bytes each at offset 32·(index mod 65536)
//	P:{l}:o:<id>      the seqs (8 bytes each, big-endian) of the entries
//	                  about the object id, ascending
//	P:{l}:dr:<coll>:<k>  sorted set of the delivered entries of collection
//	                  coll whose range spans k bits of microseconds (the
//	                  bit length of last-first), scored by their last
//	                  date_added (µs), member "seq:first": every range of
//	                  class k holding an instant d ends in [d, d+2^k)
//
// Deliveries (store.Deliveries):
//
//	P:{l}:m:<coll>    hash: items root (hex) -> custody.EncodeManifest
//	P:{l}:dk          the secret of item salts (32 bytes)
//	P:{l}:memo:<name> a memo (store.Memos)
const treeChunk = 1 << 16

func spanClass(first, last time.Time) int {
	return bits.Len64(uint64(last.UnixMicro() - first.UnixMicro()))
}

func (s *Store) rangeKey(coll string, class int) string {
	return s.ledKey("dr:" + coll + ":" + strconv.Itoa(class))
}

// IndexedThrough returns the seq the index is built through.
func (s *Store) IndexedThrough(ctx context.Context) (uint64, error) {
	const op = "redis.IndexedThrough"
	v, err := s.c.Get(ctx, s.ledKey("ix")).Result()
	if errors.Is(err, goredis.Nil) {
		return 0, nil
	}
	if err != nil {
		return 0, s.fail(op, err)
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return 0, ctigate.E(op, ctigate.Internal, "malformed ledger index position")
	}
	return n, nil
}

// WriteIndex writes b if the index is still built through from: one
// transaction that WATCHes P:{l}:ix (a transaction rather than a script:
// Redis's Lua would copy and hash every argument, and there is one per
// object).
func (s *Store) WriteIndex(ctx context.Context, from uint64, b *store.IndexBatch) error {
	const op = "redis.WriteIndex"
	kix := s.ledKey("ix")
	// Objects: one APPEND per id.
	seqs := map[string][]byte{}
	var ids []string
	for _, o := range b.Objects {
		if _, ok := seqs[o.ID]; !ok {
			ids = append(ids, o.ID)
		}
		seqs[o.ID] = binary.BigEndian.AppendUint64(seqs[o.ID], o.Seq)
	}
	moved := false
	err := s.c.Watch(ctx, func(tx *goredis.Tx) error {
		cur, err := tx.Get(ctx, kix).Result()
		if errors.Is(err, goredis.Nil) {
			cur, err = "0", nil
		}
		if err != nil {
			return err
		}
		if cur != strconv.FormatUint(from, 10) {
			moved = true
			return nil
		}
		cmds, err := tx.TxPipelined(ctx, func(p goredis.Pipeliner) error {
			// Tree hashes: one SETRANGE per chunk they fall in.
			for i := 0; i < len(b.Tree); {
				idx := b.TreeStart + int64(i)
				chunk, off := idx/treeChunk, idx%treeChunk
				n := min(len(b.Tree)-i, int(treeChunk-off))
				buf := make([]byte, 0, 32*n)
				for _, h := range b.Tree[i : i+n] {
					buf = append(buf, h[:]...)
				}
				p.SetRange(ctx, s.ledKey("tr:"+strconv.FormatInt(chunk, 10)), 32*off, string(buf))
				i += n
			}
			for _, id := range ids {
				p.Append(ctx, s.ledKey("o:"+id), string(seqs[id]))
			}
			for _, d := range b.Deliveries {
				p.ZAdd(ctx, s.rangeKey(d.Collection, spanClass(d.First, d.Last)), goredis.Z{
					Score: float64(d.Last.UnixMicro()), Member: strconv.FormatUint(d.Seq, 10) + ":" + strconv.FormatInt(d.First.UnixMicro(), 10),
				})
			}
			p.Set(ctx, kix, strconv.FormatUint(b.Through, 10), 0)
			return nil
		})
		return execErr(cmds, err)
	}, kix)
	if errors.Is(err, goredis.TxFailedErr) {
		moved, err = true, nil
	}
	if err != nil {
		return s.fail(op, err)
	}
	if moved {
		return ctigate.E(op, ctigate.Conflict, "the ledger index moved")
	}
	return nil
}

// TreeHashes returns the stored tree hashes at indexes.
func (s *Store) TreeHashes(ctx context.Context, indexes []int64) ([][32]byte, error) {
	const op = "redis.TreeHashes"
	pipe := s.c.Pipeline()
	cmds := make([]*goredis.StringCmd, len(indexes))
	for i, x := range indexes {
		off := 32 * (x % treeChunk)
		cmds[i] = pipe.GetRange(ctx, s.ledKey("tr:"+strconv.FormatInt(x/treeChunk, 10)), off, off+31)
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, goredis.Nil) {
		return nil, s.fail(op, err)
	}
	out := make([][32]byte, len(indexes))
	for i, c := range cmds {
		v := c.Val()
		if len(v) != 32 || v == string(make([]byte, 32)) {
			return nil, ctigate.E(op, ctigate.NotFound, fmt.Sprintf("tree hash %d not stored", indexes[i]))
		}
		copy(out[i][:], v)
	}
	return out, nil
}

// DeliveriesContaining returns the indexed deliveries of collection whose
// range holds at.
func (s *Store) DeliveriesContaining(ctx context.Context, collection string, at time.Time, after uint64, limit int) ([]uint64, error) {
	const op = "redis.DeliveriesContaining"
	if err := store.ValidName("collection", collection); err != nil {
		return nil, ctigate.E(op, ctigate.Invalid, err.Error())
	}
	d := at.UnixMicro()
	pipe := s.c.Pipeline()
	cmds := make([]*goredis.StringSliceCmd, 65)
	for class := range 65 {
		stop := "+inf"
		if class < 52 {
			stop = "(" + strconv.FormatInt(d+int64(1)<<class, 10)
		}
		cmds[class] = pipe.ZRangeArgs(ctx, goredis.ZRangeArgs{Key: s.rangeKey(collection, class), Start: strconv.FormatInt(d, 10), Stop: stop, ByScore: true})
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, goredis.Nil) {
		return nil, s.fail(op, err)
	}
	var out []uint64
	for _, c := range cmds {
		for _, m := range c.Val() {
			ss, fs, ok := strings.Cut(m, ":")
			seq, err1 := strconv.ParseUint(ss, 10, 64)
			first, err2 := strconv.ParseInt(fs, 10, 64)
			if !ok || err1 != nil || err2 != nil {
				return nil, ctigate.E(op, ctigate.Internal, "malformed delivery range")
			}
			if first <= d && seq > after {
				out = append(out, seq)
			}
		}
	}
	slices.Sort(out)
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

// objectSeqs returns the indexed seqs of the entries about id in (after,
// through].
func (s *Store) objectSeqs(ctx context.Context, id string, after, through uint64) ([]uint64, error) {
	v, err := s.c.Get(ctx, s.ledKey("o:"+id)).Result()
	if errors.Is(err, goredis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if len(v)%8 != 0 {
		return nil, errors.New("malformed ledger object index")
	}
	var out []uint64
	for i := 0; i < len(v); i += 8 {
		seq := binary.BigEndian.Uint64([]byte(v[i : i+8]))
		if seq > after && seq <= through {
			out = append(out, seq)
		}
	}
	return out, nil
}

// linesOf returns the JSON text of the entries seqs (ascending), reading
// each append (block) holding one once.
func (s *Store) linesOf(ctx context.Context, seqs []uint64) ([]string, error) {
	pipe := s.c.Pipeline()
	cmds := make([]*goredis.StringSliceCmd, len(seqs))
	for i, seq := range seqs {
		cmds[i] = pipe.ZRangeArgs(ctx, goredis.ZRangeArgs{
			Key: s.ledKey("blk"), Start: strconv.FormatUint(seq, 10), Stop: "-inf", ByScore: true, Rev: true, Count: 1,
		})
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, err
	}
	firsts := make([]string, len(seqs))
	var want []string
	for i, c := range cmds {
		if len(c.Val()) != 1 {
			return nil, fmt.Errorf("ledger entry %d: no block holds it", seqs[i])
		}
		firsts[i] = c.Val()[0]
		if !slices.Contains(want, firsts[i]) {
			want = append(want, firsts[i])
		}
	}
	texts, err := s.c.HMGet(ctx, s.ledKey("log"), want...).Result()
	if err != nil {
		return nil, err
	}
	out := make([]string, len(seqs))
	blocks := make([][]string, len(want)) // unpacked as needed
	for i, seq := range seqs {
		w := slices.Index(want, firsts[i])
		text, ok := texts[w].(string)
		first, err := strconv.ParseUint(firsts[i], 10, 64)
		if !ok || err != nil || seq < first {
			return nil, fmt.Errorf("ledger block %s missing", firsts[i])
		}
		if blocks[w] == nil {
			if blocks[w], err = logLines(text); err != nil {
				return nil, fmt.Errorf("ledger block %s: %w", firsts[i], err)
			}
		}
		lines := blocks[w]
		if seq-first >= uint64(len(lines)) {
			return nil, fmt.Errorf("ledger entry %d: not in its block", seq)
		}
		out[i] = lines[seq-first]
	}
	return out, nil
}

// DeliverySalter returns the Salter of this store's deliveries, one for
// the store's life (the key in Redis never changes).
func (s *Store) DeliverySalter(ctx context.Context) (*custody.Salter, error) {
	const op = "redis.DeliverySalter"
	s.saltMu.Lock()
	defer s.saltMu.Unlock()
	if s.salter != nil {
		return s.salter, nil
	}
	var k [32]byte
	_, _ = rand.Read(k[:])
	if err := s.c.SetNX(ctx, s.ledKey("dk"), k[:], 0).Err(); err != nil {
		return nil, s.fail(op, err)
	}
	v, err := s.c.Get(ctx, s.ledKey("dk")).Result()
	if err != nil {
		return nil, s.fail(op, err)
	}
	if len(v) != 32 {
		return nil, ctigate.E(op, ctigate.Internal, "malformed delivery key")
	}
	copy(k[:], v)
	s.salter = custody.NewSalter(k)
	return s.salter, nil
}

// RecordDelivery stores the manifest unless present, then appends e.
func (s *Store) RecordDelivery(ctx context.Context, e custody.Entry, manifest []byte) (custody.Entry, error) {
	const op = "redis.RecordDelivery"
	if e.Action != custody.Delivered {
		return custody.Entry{}, ctigate.E(op, ctigate.Invalid, "not a delivered entry")
	}
	if err := e.Valid(); err != nil {
		return custody.Entry{}, ctigate.E(op, ctigate.Invalid, err.Error())
	}
	if err := validRoot(e.ItemsRoot); err != nil {
		return custody.Entry{}, ctigate.E(op, ctigate.Invalid, err.Error())
	}
	if err := s.c.HSetNX(ctx, s.ledKey("m:"+e.Collection), e.ItemsRoot, manifest).Err(); err != nil {
		return custody.Entry{}, s.fail(op, err)
	}
	out, err := s.AppendEntries(ctx, []custody.Entry{e})
	if err != nil {
		return custody.Entry{}, err
	}
	return out[0], nil
}

func validRoot(root string) error {
	if r, err := hex.DecodeString(root); err != nil || len(r) != 32 {
		return fmt.Errorf("items root %.70q is not a hex SHA-256", root)
	}
	return nil
}

// Manifest returns the manifest stored under (collection, root).
func (s *Store) Manifest(ctx context.Context, collection, root string) ([]byte, error) {
	const op = "redis.Manifest"
	if err := validRoot(root); err != nil {
		return nil, ctigate.E(op, ctigate.Invalid, err.Error())
	}
	v, err := s.c.HGet(ctx, s.ledKey("m:"+collection), root).Result()
	if errors.Is(err, goredis.Nil) {
		return nil, ctigate.E(op, ctigate.NotFound, "no such delivery manifest")
	}
	if err != nil {
		return nil, s.fail(op, err)
	}
	return []byte(v), nil
}

// Memos (store.Memos) are kept as P:{l}:memo:<name>.
var _ store.Memos = (*Store)(nil)

// Memo returns the memo stored under name, nil when there is none.
func (s *Store) Memo(ctx context.Context, name string) ([]byte, error) {
	const op = "redis.Memo"
	if err := store.ValidName("memo", name); err != nil {
		return nil, ctigate.E(op, ctigate.Invalid, err.Error())
	}
	v, err := s.c.Get(ctx, s.ledKey("memo:"+name)).Bytes()
	if errors.Is(err, goredis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, s.fail(op, err)
	}
	return v, nil
}

// PutMemo stores v under name.
func (s *Store) PutMemo(ctx context.Context, name string, v []byte) error {
	const op = "redis.PutMemo"
	if err := store.ValidName("memo", name); err != nil {
		return ctigate.E(op, ctigate.Invalid, err.Error())
	}
	if len(v) > store.MaxMemoBytes {
		return ctigate.E(op, ctigate.Invalid, "memo too large")
	}
	if err := s.c.Set(ctx, s.ledKey("memo:"+name), v, 0).Err(); err != nil {
		return s.fail(op, err)
	}
	return nil
}
