package redis

// The custody ledger (store.Ledger) on Redis.
//
// The chain is one global sequence, but the writes it records are atomic
// per collection, and in a Cluster a collection's slot is not the
// ledger's. Redis Lua has no SHA-256 either. So a record is written in
// two steps:
//
//  1. Pending. The transaction that stores a collection's objects
//     (add.go), or the script that deletes them (query.go), also appends to the collection's pending
//     list P:{c:X}:pl one batch "b:micros\n" followed by the unsealed
//     entries (JSON, one a line): received entries of the versions it
//     found new, then the decisions' entries (or the deleted entries). b
//     comes from the counter P:{c:X}:pln, micros is the write's clock. An
//     object therefore never exists without its received record, nor the
//     reverse: both are in one transaction.
//  2. Chained. A sequencer (any gateway process) reads the head and, for
//     each collection, the number of the last batch it chained, reads the
//     pending batches after it, numbers and hashes their entries in Go
//     (custody.Prepared.Seal) and appends them with one script in the
//     ledger's slot {l} that checks, compare-and-set, that the head and
//     every collection's chained batch number are still what it read. If
//     not (another process chained first), it starts again from what is
//     there now; nothing was written. The batches it chained leave the
//     pending list on the next pass over it, or with the collection's
//     next write (a batch still listed but at or below the chained number
//     is skipped, so a crash between the two steps chains it once).
//
// Keys of slot {l}:
//
//	P:{l}:head   "seq:micros:hash" of the newest entry
//	P:{l}:log    hash: first seq of an append -> its entries (export
//	             lines), packed (logpack.go: about 140 bytes an entry
//	             instead of 520), or, as earlier builds wrote them, the
//	             lines joined by newlines: one field per append, not per
//	             entry
//	P:{l}:blk    sorted set of those first seqs: finds the append holding
//	             a seq
//	P:{l}:tg     hash: first seq -> 8 bytes per entry: a 64-bit digest of
//	             its object id (odd), 0 for none. An object's query reads
//	             the index (ledgerindex.go) as far as it is built, then the
//	             tags after it and only the appends with a candidate
//	P:{l}:ap     hash: collection -> its last batch chained
//	P:{l}:src    set of the collections that have written batches
//
// The writer of a batch chains it right after its write (one script
// call: its process caches the head and the chained numbers, so it needs
// no read first unless another process moved them); if that fails, the
// entries stay pending and the next sequencer chains them. Every reader
// (LedgerEntries, LedgerEntry, LedgerHead, LedgerLines) chains all
// pending batches first, so it never misses a recorded write.
//
// What an auditor must know: a received, decision or deleted entry exists
// from the instant of its write, but it may be pending, without a seq, for
// a moment (until its writer's next round trip, or the next reader).
// Nothing is lost on a crash: a pending batch stays in Redis until chained.
// Entries are chained in batch order per collection; batches of different
// collections interleave in the order they are chained, not in the order
// of their writes. An entry's time is when it was chained or, for a
// pending batch, when it was written, never before the previous entry's.

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/go-json-experiment/json"
	goredis "github.com/redis/go-redis/v9"

	"github.com/ctigate/ctigate"
	"github.com/ctigate/ctigate/custody"
	"github.com/ctigate/ctigate/store"
)

var _ store.Ledger = (*Store)(nil)

// systemUser is the actor of entries written without an Actor in the
// context (fan-out decisions, deletions by maintenance).
const systemUser = "ctigate"

func (s *Store) ledKey(suffix string) string { return s.prefix + ":{l}:" + suffix }

// ledgerHead is the decoded P:{l}:head.
type ledgerHead struct {
	seq    uint64
	micros int64
	hash   string
}

func (h ledgerHead) String() string {
	if h.seq == 0 {
		return ""
	}
	return strconv.FormatUint(h.seq, 10) + ":" + strconv.FormatInt(h.micros, 10) + ":" + h.hash
}

func parseHead(v string) (ledgerHead, error) {
	if v == "" {
		return ledgerHead{}, nil
	}
	a, rest, ok1 := strings.Cut(v, ":")
	b, hash, ok2 := strings.Cut(rest, ":")
	seq, err1 := strconv.ParseUint(a, 10, 64)
	micros, err2 := strconv.ParseInt(b, 10, 64)
	if !ok1 || !ok2 || err1 != nil || err2 != nil || len(hash) != 64 {
		return ledgerHead{}, fmt.Errorf("malformed ledger head %q", v)
	}
	return ledgerHead{seq: seq, micros: micros, hash: hash}, nil
}

// ledgerState is a process's view of the chain, used to chain its own
// batches without reading first. It may be stale: the append script
// checks it.
type ledgerState struct {
	mu      sync.Mutex
	head    ledgerHead
	known   bool                             // head was read or written by this process
	chained map[string]uint64                // collection -> last batch chained, as last seen
	local   map[string]map[uint64]localBatch // batches this process wrote and has not seen chained

	// Under their own lock, which writers take before their write
	// without waiting for a chaining round trip: the writes under way per
	// collection, and the batch number through which a write may trim
	// the collection's pending list (a copy of chained).
	wmu      sync.Mutex
	inflight map[string]int
	trim     map[string]uint64
	src      sync.Map // collections this process added to P:{l}:src
}

// ledgerStateScript reads the head and the chained batch numbers of the
// collections ARGV.
var ledgerStateScript = goredis.NewScript(`
local out = {redis.call('GET', KEYS[1]) or ''}
if #ARGV > 0 then
  local a = redis.call('HMGET', KEYS[2], unpack(ARGV))
  for i = 1, #ARGV do out[i+1] = a[i] or '0' end
end
return out
`)

// ledgerAppendScript appends a block of sealed entries if the head and
// the chained batch numbers are still what the caller read.
//
// KEYS: 1 head, 2 log, 3 ap, 4 blk, 5 tg, 6 cks. ARGV: 1 head read (""
// for none), 2 new head, 3 number m of collections, then m triples
// (collection, chained number read, new chained number), then the
// block's first seq, its lines (joined by newlines), its tags and the
// highest seq a checkpoint in it signs (0 for none). Returns 1, 0 when
// nothing was written, or 2 when nothing was written because the
// checkpoint signs no later seq than one already appended (cks: the
// highest seq signed so far; custody.ErrStaleCheckpoint).
var ledgerAppendScript = goredis.NewScript(`
if (redis.call('GET', KEYS[1]) or '') ~= ARGV[1] then return 0 end
local m = tonumber(ARGV[3])
for j = 0, m - 1 do
  if (redis.call('HGET', KEYS[3], ARGV[4 + 3*j]) or '0') ~= ARGV[5 + 3*j] then return 0 end
end
local i = 4 + 3*m
local sg = tonumber(ARGV[i+3] or '0')
if sg > 0 then
  if tonumber(redis.call('GET', KEYS[6]) or '0') >= sg then return 2 end
  redis.call('SET', KEYS[6], ARGV[i+3])
end
redis.call('HSET', KEYS[2], ARGV[i], ARGV[i+1])
redis.call('HSET', KEYS[5], ARGV[i], ARGV[i+2])
redis.call('ZADD', KEYS[4], ARGV[i], ARGV[i])
for j = 0, m - 1 do redis.call('HSET', KEYS[3], ARGV[4 + 3*j], ARGV[6 + 3*j]) end
redis.call('SET', KEYS[1], ARGV[2])
return 1
`)

// ledgerPendingScript removes from the pending list KEYS[1] the batches
// numbered ARGV[1] or below (already chained) and returns the first
// ARGV[2] of the others. The list holds the batches numbered
// KEYS[2]-LLEN+1 … KEYS[2] (pln), in order: every batch is pushed by the
// write (transaction or script) that takes its number, and only the
// list's head is ever
// removed. So the chained ones go without a batch being read.
var ledgerPendingScript = goredis.NewScript(`
local len = redis.call('LLEN', KEYS[1])
if len == 0 then return {} end
local drop = tonumber(ARGV[1]) - (tonumber(redis.call('GET', KEYS[2]) or '0') - len)
if drop >= len then
  redis.call('DEL', KEYS[1])
  return {}
elseif drop > 0 then
  redis.call('LTRIM', KEYS[1], drop, -1)
end
return redis.call('LRANGE', KEYS[1], 0, tonumber(ARGV[2]) - 1)
`)

// pendingEntry is one unsealed entry of a batch, with what its chain
// script needs.
type sealInput struct {
	p      *custody.Prepared
	tag    uint64 // entryTag
	micros int64  // the write's time (0: now)
}

// encodePending returns the JSON line of an unsealed entry (its fields in
// RFC 8785 form, as Prepare encoded them) and the entry prepared for
// sealing (which checks that it can be sealed: a batch that could not
// would stop the chain). The writer of the batch seals the prepared
// entries itself; other processes decode the line.
func (s *Store) encodePending(e *custody.Entry, check bool) (string, sealInput, error) {
	if check {
		if err := e.Valid(); err != nil {
			return "", sealInput{}, err
		}
	}
	p, err := custody.Prepare(e)
	if err != nil {
		return "", sealInput{}, err
	}
	b := p.JSON() // the entry's JSON, already encoded for its hash
	if bytes.IndexByte(b, '\n') >= 0 {
		return "", sealInput{}, errors.New("entry encodes with a newline")
	}
	return string(b), sealInput{p: p, tag: entryTag(e)}, nil
}

// receivedLines returns the pending line of each object's received entry
// ("" each when ctx carries no actor), and the entry prepared.
func (s *Store) receivedLines(ctx context.Context, collection string, objs []store.Object) ([]string, []sealInput, error) {
	out := make([]string, len(objs))
	actor, ok := store.ActorFrom(ctx)
	if !ok {
		return out, nil, nil
	}
	ins := make([]sealInput, len(objs))
	if !utf8.ValidString(actor.User) || !utf8.ValidString(actor.Org) || !utf8.ValidString(collection) {
		return nil, nil, errors.New("actor or collection is not valid UTF-8")
	}
	for i := range objs {
		o := &objs[i]
		if !utf8.ValidString(o.ID) {
			return nil, nil, fmt.Errorf("object %d: id is not valid UTF-8", i)
		}
		l, in, err := s.encodePending(&custody.Entry{
			Action: custody.Received, User: actor.User, Org: actor.Org,
			ObjectID: o.ID, ObjectVersion: custody.FormatVersion(o.Version), SHA256: custody.HexHash(o.Hash),
			Collection: collection,
		}, false)
		if err != nil {
			return nil, nil, fmt.Errorf("object %d: %v", i, err)
		}
		out[i], ins[i] = l, in
	}
	return out, ins, nil
}

// decisionLines returns the pending lines of the decisions' entries,
// joined by newlines ("" for none), and the entries prepared.
func (s *Store) decisionLines(ctx context.Context, ds []store.Decision) (string, []sealInput, error) {
	if len(ds) == 0 {
		return "", nil, nil
	}
	ins := make([]sealInput, len(ds))
	actor, _ := store.ActorFrom(ctx)
	user := actor.User
	if user == "" {
		user = systemUser
	}
	var b strings.Builder
	for i := range ds {
		d := &ds[i]
		l, in, err := s.encodePending(&custody.Entry{
			Action: d.Action, User: user, Org: actor.Org,
			ObjectID: d.ObjectID, ObjectVersion: custody.FormatVersion(d.ObjectVersion), SHA256: custody.HexHash(d.OriginalSHA256),
			Collection: d.Collection, Source: d.Source, Route: d.Route, PolicyVersion: d.PolicyVersion,
			Reason: d.Reason, Detail: d.Detail, Removed: d.Removed, PublishedSHA256: custody.HexHash(d.PublishedSHA256),
		}, true)
		if err != nil {
			return "", nil, fmt.Errorf("decision %d: %v", i, err)
		}
		ins[i] = in
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(l)
	}
	return b.String(), ins, nil
}

// registerSource adds coll to P:{l}:src once per process.
func (s *Store) registerSource(ctx context.Context, coll string) error {
	if _, ok := s.led.src.Load(coll); ok {
		return nil
	}
	if err := s.c.SAdd(ctx, s.ledKey("src"), coll).Err(); err != nil {
		return err
	}
	s.led.src.Store(coll, true)
	return nil
}

// trimThrough returns the batch number through which coll's pending list
// may be trimmed by its next write (this process saw them chained).
func (s *Store) trimThrough(coll string) uint64 {
	s.led.wmu.Lock()
	defer s.led.wmu.Unlock()
	return s.led.trim[coll]
}

// setChained records that coll's batches through n are chained. The
// caller holds s.led.mu.
func (s *Store) setChained(coll string, n uint64) {
	if s.led.chained == nil {
		s.led.chained = map[string]uint64{}
	}
	s.led.chained[coll] = n
	s.led.wmu.Lock()
	if s.led.trim == nil {
		s.led.trim = map[string]uint64{}
	}
	s.led.trim[coll] = n
	s.led.wmu.Unlock()
}

// writing returns the number of writes of coll under way.
func (s *Store) writing(coll string) int {
	s.led.wmu.Lock()
	defer s.led.wmu.Unlock()
	return s.led.inflight[coll]
}

// Tags of entries (P:{l}:tg): an object query reads the tags of the
// blocks and only the blocks holding a candidate.
const tagNone = 0 // no object (object tags are odd)

// objectTag is a 64-bit digest of an object id (FNV-1a; a collision only
// costs a candidate read). Always odd.
func objectTag(id string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(id); i++ {
		h ^= uint64(id[i])
		h *= 1099511628211
	}
	return h | 1
}

// entryTag is the tag of e.
func entryTag(e *custody.Entry) uint64 {
	if e.ObjectID != "" {
		return objectTag(e.ObjectID)
	}
	return tagNone
}

// batchNumber returns the number of a pending batch.
func batchNumber(v string) (uint64, error) {
	bs, _, ok := strings.Cut(v, ":")
	b, err := strconv.ParseUint(bs, 10, 64)
	if !ok || err != nil {
		return 0, fmt.Errorf("malformed pending ledger batch %.40q", v)
	}
	return b, nil
}

// parseBatch decodes a pending batch "b:micros\nline…" into entries.
func (s *Store) parseBatch(v string) (uint64, []sealInput, error) {
	hdr, body, _ := strings.Cut(v, "\n")
	bs, ms, ok := strings.Cut(hdr, ":")
	b, err1 := strconv.ParseUint(bs, 10, 64)
	micros, err2 := strconv.ParseInt(ms, 10, 64)
	if !ok || err1 != nil || err2 != nil {
		return 0, nil, fmt.Errorf("malformed pending ledger batch %.40q", v)
	}
	var out []sealInput
	for body != "" {
		var line string
		line, body, _ = strings.Cut(body, "\n")
		var e custody.Entry
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			return 0, nil, fmt.Errorf("pending ledger batch %d: %w", b, err)
		}
		p, err := custody.Prepare(&e)
		if err != nil {
			return 0, nil, fmt.Errorf("pending ledger batch %d: %w", b, err)
		}
		out = append(out, sealInput{p: p, tag: entryTag(&e), micros: micros})
	}
	return b, out, nil
}

// batchRange is the batches of one collection an append chains.
type batchRange struct {
	coll     string
	from, to uint64 // chained number read, new chained number
}

// appendSealed seals ins after head and runs the append script; it
// reports whether it was written, and the new head. sealed, when not
// nil, receives the sealed entries.
func (s *Store) appendSealed(ctx context.Context, head ledgerHead, ranges []batchRange, ins []sealInput, sealed []custody.Entry, signed uint64) (bool, ledgerHead, error) {
	keys := []string{s.ledKey("head"), s.ledKey("log"), s.ledKey("ap"), s.ledKey("blk"), s.ledKey("tg"), s.ledKey("cks")}
	args := make([]any, 3, 6+3*len(ranges))
	args[0], args[2] = head.String(), len(ranges)
	for _, r := range ranges {
		args = append(args, r.coll, strconv.FormatUint(r.from, 10), strconv.FormatUint(r.to, 10))
	}
	now := s.clock().UnixMicro()
	prev := custody.Head{Seq: head.seq, Hash: head.hash}
	micros := head.micros
	var ts string
	var tsMicros int64 = -1
	pack := newLogPacker(512 * len(ins))
	tags := make([]byte, 0, 8*len(ins))
	for i, in := range ins {
		m := in.micros
		if m == 0 {
			m = now
		}
		micros = max(micros, m)
		if micros != tsMicros {
			ts, tsMicros = custody.FormatTime(time.UnixMicro(micros)), micros
		}
		line, e := in.p.Seal(prev, ts)
		if sealed != nil {
			sealed[i] = e
		}
		prev = custody.Head{Seq: e.Seq, Hash: e.Hash}
		pack.add(string(line))
		tags = binary.BigEndian.AppendUint64(tags, in.tag)
	}
	args = append(args, strconv.FormatUint(head.seq+1, 10), pack.bytes(), tags, strconv.FormatUint(signed, 10))
	next := ledgerHead{seq: prev.Seq, micros: micros, hash: prev.Hash}
	args[1] = next.String()
	ok, err := ledgerAppendScript.Run(ctx, s.c, keys, args...).Int()
	if err != nil {
		return false, head, err
	}
	if ok == 2 {
		return false, head, custody.ErrStaleCheckpoint
	}
	return ok == 1, next, nil
}

// localBatch is a batch this process wrote, prepared for sealing.
type localBatch struct {
	micros int64
	ins    []sealInput
}

// ledgerBegin counts a write of coll that will write a pending batch.
func (s *Store) ledgerBegin(coll string) {
	s.led.wmu.Lock()
	defer s.led.wmu.Unlock()
	if s.led.inflight == nil {
		s.led.inflight = map[string]int{}
	}
	s.led.inflight[coll]++
}

// maxLocalBatches bounds the batches a process keeps for chaining itself;
// beyond, they are chained from Redis.
const maxLocalBatches = 1024

// ledgerEnd ends a write counted by ledgerBegin that wrote batch b (0:
// none, or unknown after an error) of coll at micros, and chains what this
// process can: its own batches in order, with one script call while its
// view of the head is current. When a batch before them is missing and
// no other write of coll is under way in this process (the batch is
// another process's, or its write failed), it chains every pending batch
// of coll from Redis. Errors leave the batches pending.
func (s *Store) ledgerEnd(ctx context.Context, coll string, b uint64, micros int64, ins []sealInput) error {
	s.led.mu.Lock()
	defer s.led.mu.Unlock()
	s.led.wmu.Lock()
	s.led.inflight[coll]--
	s.led.wmu.Unlock()
	if s.led.local == nil {
		s.led.local = map[string]map[uint64]localBatch{}
	}
	local := s.led.local[coll]
	if local == nil {
		local = map[uint64]localBatch{}
		s.led.local[coll] = local
	}
	if b > 0 {
		local[b] = localBatch{micros: micros, ins: ins}
	}
	for {
		last, seen := s.led.chained[coll]
		for n := range local {
			if seen && n <= last {
				delete(local, n)
			}
		}
		if len(local) == 0 {
			return nil
		}
		if s.led.known && seen {
			var run []sealInput
			n := last
			for {
				lb, ok := local[n+1]
				if !ok {
					break
				}
				n++
				for _, in := range lb.ins {
					in.micros = lb.micros
					run = append(run, in)
				}
			}
			if n > last {
				ok, next, err := s.appendSealed(ctx, s.led.head, []batchRange{{coll, last, n}}, run, nil, 0)
				if err != nil {
					return err
				}
				if ok {
					s.led.head = next
					s.setChained(coll, n)
					continue
				}
				s.led.known = false // moved by another process
			}
		}
		if s.writing(coll) > 0 && s.led.known && len(local) < maxLocalBatches {
			return nil // the write under way chains them
		}
		err := s.chainPending(ctx, []string{coll})
		if err != nil || len(local) >= maxLocalBatches {
			clear(local)
		}
		return err
	}
}

// maxChainBatches bounds the batches read from one pending list per
// append.
const maxChainBatches = 64

// chainPending chains every pending batch of colls. The caller holds
// s.led.mu.
func (s *Store) chainPending(ctx context.Context, colls []string) error {
	for range 1000 {
		args := make([]any, len(colls))
		for i, c := range colls {
			args[i] = c
		}
		st, err := ledgerStateScript.Run(ctx, s.c, []string{s.ledKey("head"), s.ledKey("ap")}, args...).StringSlice()
		if err != nil {
			return err
		}
		head, err := parseHead(st[0])
		if err != nil {
			return err
		}
		s.led.head, s.led.known = head, true
		if s.led.chained == nil {
			s.led.chained = map[string]uint64{}
		}
		from := make([]uint64, len(colls))
		for i, c := range colls {
			if from[i], err = strconv.ParseUint(st[i+1], 10, 64); err != nil {
				return fmt.Errorf("chained batch number of %s: %q", c, st[i+1])
			}
			s.setChained(c, from[i])
		}
		// The batches not chained yet (the chained ones leave the list).
		pipe := s.c.Pipeline()
		cmds := make([]*goredis.Cmd, len(colls))
		for i, c := range colls {
			cmds[i] = ledgerPendingScript.Eval(ctx, pipe, []string{s.collKey(c, "pl"), s.collKey(c, "pln")}, from[i], maxChainBatches)
		}
		if _, err := pipe.Exec(ctx); err != nil {
			return err
		}
		var (
			ranges []batchRange
			ins    []sealInput
			more   bool
		)
		for i, c := range colls {
			vals, err := cmds[i].StringSlice()
			if err != nil {
				return err
			}
			if len(vals) == maxChainBatches {
				more = true
			}
			r := batchRange{coll: c, from: from[i], to: from[i]}
			for _, v := range vals {
				if b, err := batchNumber(v); err != nil {
					return err
				} else if b <= r.to {
					continue // chained, not yet trimmed
				}
				b, es, err := s.parseBatch(v)
				if err != nil {
					return err
				}
				r.to = b
				ins = append(ins, es...)
			}
			if r.to != r.from {
				ranges = append(ranges, r)
			}
		}
		if len(ranges) > 0 {
			ok, next, err := s.appendSealed(ctx, head, ranges, ins, nil, 0)
			if err != nil {
				return err
			}
			if !ok {
				continue // another process chained first: read again
			}
			s.led.head = next
			for _, r := range ranges {
				s.setChained(r.coll, r.to)
			}
		}
		if !more {
			return nil
		}
	}
	return errors.New("ledger head changing too fast to append")
}

// chainAll chains the pending batches of every collection: what every
// reader does first.
func (s *Store) chainAll(ctx context.Context) error {
	colls, err := s.c.SMembers(ctx, s.ledKey("src")).Result()
	if err != nil {
		return err
	}
	s.led.mu.Lock()
	defer s.led.mu.Unlock()
	return s.chainPending(ctx, colls)
}

// AppendEntries appends entries atomically, in order, after whatever is
// chained.
func (s *Store) AppendEntries(ctx context.Context, entries []custody.Entry) ([]custody.Entry, error) {
	const op = "redis.AppendEntries"
	ins := make([]sealInput, len(entries))
	for i := range entries {
		e := &entries[i]
		if err := e.Valid(); err != nil {
			return nil, ctigate.E(op, ctigate.Invalid, fmt.Sprintf("entry %d: %v", i, err))
		}
		if len(e.ObjectID) > maxIDLen {
			return nil, ctigate.E(op, ctigate.Invalid, fmt.Sprintf("entry %d: object id too long", i))
		}
		p, err := custody.Prepare(e)
		if err != nil {
			return nil, ctigate.E(op, ctigate.Invalid, fmt.Sprintf("entry %d: %v", i, err))
		}
		ins[i] = sealInput{p: p, tag: entryTag(e)}
	}
	if err := ctx.Err(); err != nil {
		return nil, ctxErr(op, err)
	}
	out := make([]custody.Entry, len(entries))
	if len(entries) == 0 {
		return out, nil
	}
	// Checkpoints must sign ever later entries: the append refuses one
	// signing no later seq than a checkpoint already appended (another
	// replica's, whose tree was ready first, or which signed the same head
	// as both stopped).
	var signed uint64
	for i := range entries {
		if entries[i].Action == custody.Checkpoint {
			signed = max(signed, entries[i].SignedSeq)
		}
	}
	s.led.mu.Lock()
	defer s.led.mu.Unlock()
	for range 1000 {
		if !s.led.known {
			v, err := s.c.Get(ctx, s.ledKey("head")).Result()
			if err != nil && !errors.Is(err, goredis.Nil) {
				return nil, s.fail(op, err)
			}
			h, err := parseHead(v)
			if err != nil {
				return nil, ctigate.E(op, ctigate.Internal, err)
			}
			s.led.head, s.led.known = h, true
		}
		ok, next, err := s.appendSealed(ctx, s.led.head, nil, ins, out, signed)
		if errors.Is(err, custody.ErrStaleCheckpoint) {
			return nil, ctigate.E(op, ctigate.Conflict, err, "a later checkpoint is already in the ledger")
		}
		if err != nil {
			return nil, s.fail(op, err)
		}
		if ok {
			s.led.head = next
			return out, nil
		}
		s.led.known = false
	}
	return nil, ctigate.E(op, ctigate.Unavailable, "ledger head changing too fast to append")
}

// LedgerHead returns the newest entry's seq, hash and time, after chaining
// what is pending.
func (s *Store) LedgerHead(ctx context.Context) (custody.Head, error) {
	const op = "redis.LedgerHead"
	if err := ctx.Err(); err != nil {
		return custody.Head{}, ctxErr(op, err)
	}
	if err := s.chainAll(ctx); err != nil {
		return custody.Head{}, s.fail(op, err)
	}
	v, err := s.c.Get(ctx, s.ledKey("head")).Result()
	if err != nil && !errors.Is(err, goredis.Nil) {
		return custody.Head{}, s.fail(op, err)
	}
	h, err := parseHead(v)
	if err != nil {
		return custody.Head{}, ctigate.E(op, ctigate.Internal, err)
	}
	if h.seq == 0 {
		return custody.Head{}, nil
	}
	return custody.Head{Seq: h.seq, Hash: h.hash, Time: custody.FormatTime(time.UnixMicro(h.micros))}, nil
}

// LedgerEntry returns the entry seq.
func (s *Store) LedgerEntry(ctx context.Context, seq uint64) (custody.Entry, error) {
	const op = "redis.LedgerEntry"
	if seq == 0 {
		return custody.Entry{}, ctigate.E(op, ctigate.NotFound, "no such ledger entry")
	}
	es, err := s.LedgerEntries(ctx, store.LedgerQuery{After: seq - 1, Through: seq, Limit: 1})
	if err != nil {
		return custody.Entry{}, err
	}
	if len(es) == 0 {
		return custody.Entry{}, ctigate.E(op, ctigate.NotFound, "no such ledger entry")
	}
	return es[0], nil
}

func ledgerLimit(n int) int {
	if n <= 0 {
		return store.DefaultLedgerLimit
	}
	return min(n, store.MaxLedgerLimit)
}

// LedgerEntries returns entries matching q in Seq order.
func (s *Store) LedgerEntries(ctx context.Context, q store.LedgerQuery) ([]custody.Entry, error) {
	limit := ledgerLimit(q.Limit)
	var out []custody.Entry
	err := s.ledgerScan(ctx, "redis.LedgerEntries", q, func(seq uint64, line string) (bool, error) {
		var e custody.Entry
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			return false, fmt.Errorf("ledger entry %d: %w", seq, err)
		}
		if q.Match(&e) {
			out = append(out, e)
		}
		return len(out) >= limit, nil
	})
	return out, err
}

// LedgerLines calls fn with the JSON text of each entry in (after,
// through] (through 0: to the head), in order, unfiltered: an export.
func (s *Store) LedgerLines(ctx context.Context, after, through uint64, fn func(seq uint64, line []byte) error) error {
	return s.ledgerScan(ctx, "redis.LedgerLines", store.LedgerQuery{After: after, Through: through}, func(seq uint64, line string) (bool, error) {
		return false, fn(seq, []byte(line))
	})
}

// ledgerBlocks is how many blocks a scan reads per round trip.
const ledgerBlocks = 32

// ledgerScan calls fn with the text of the candidate entries of q (all in
// (After, Through], or, with q.ObjectID, those whose tag is the object's
// and the deliveries naming it), in seq order, until fn reports it is
// done.
func (s *Store) ledgerScan(ctx context.Context, op string, q store.LedgerQuery, fn func(seq uint64, line string) (bool, error)) error {
	if len(q.ObjectID) > maxIDLen {
		return ctigate.E(op, ctigate.Invalid, "object id too long")
	}
	if err := ctx.Err(); err != nil {
		return ctxErr(op, err)
	}
	if q.After == ^uint64(0) {
		return nil
	}
	if err := s.chainAll(ctx); err != nil {
		return s.fail(op, err)
	}
	v, err := s.c.Get(ctx, s.ledKey("head")).Result()
	if err != nil && !errors.Is(err, goredis.Nil) {
		return s.fail(op, err)
	}
	head, err := parseHead(v)
	if err != nil {
		return ctigate.E(op, ctigate.Internal, err)
	}
	last := head.seq
	if q.Through != 0 {
		last = min(last, q.Through)
	}
	if q.After >= last {
		return nil
	}
	var tag uint64
	if q.ObjectID != "" {
		tag = objectTag(q.ObjectID)
		// The entries the index holds, then the tags of the blocks after.
		ix, err := s.IndexedThrough(ctx)
		if err != nil {
			return err
		}
		if upto := min(ix, last); upto > q.After {
			seqs, err := s.objectSeqs(ctx, q.ObjectID, q.After, upto)
			if err != nil {
				return s.fail(op, err)
			}
			if len(seqs) > 0 {
				lines, err := s.linesOf(ctx, seqs)
				if err != nil {
					return s.fail(op, err)
				}
				for i, seq := range seqs {
					done, err := fn(seq, lines[i])
					if err != nil {
						return ctigate.E(op, err)
					}
					if done {
						return nil
					}
				}
			}
			q.After = upto
			if q.After >= last {
				return nil
			}
		}
	}
	// The block holding After+1 starts at or before it.
	start, err := s.c.ZRangeArgs(ctx, goredis.ZRangeArgs{
		Key: s.ledKey("blk"), Start: strconv.FormatUint(q.After+1, 10), Stop: "-inf", ByScore: true, Rev: true, Count: 1,
	}).Result()
	if err != nil {
		return s.fail(op, err)
	}
	from := "-inf"
	if len(start) == 1 {
		from = start[0]
	}
	for {
		firsts, err := s.c.ZRangeArgs(ctx, goredis.ZRangeArgs{
			Key: s.ledKey("blk"), Start: from, Stop: strconv.FormatUint(last, 10), ByScore: true, Count: ledgerBlocks,
		}).Result()
		if err != nil {
			return s.fail(op, err)
		}
		if len(firsts) == 0 {
			return nil
		}
		from = "(" + firsts[len(firsts)-1]
		// With an object, the tags first; then the text of the blocks
		// holding a candidate.
		want := firsts
		var tags []any
		if q.ObjectID != "" {
			if tags, err = s.c.HMGet(ctx, s.ledKey("tg"), firsts...).Result(); err != nil {
				return s.fail(op, err)
			}
			want = nil
			for i, f := range firsts {
				if t, ok := tags[i].(string); ok && hasTag(t, tag) {
					want = append(want, f)
				}
			}
		}
		if len(want) == 0 {
			if len(firsts) < ledgerBlocks {
				return nil
			}
			continue
		}
		texts, err := s.c.HMGet(ctx, s.ledKey("log"), want...).Result()
		if err != nil {
			return s.fail(op, err)
		}
		for i, f := range want {
			first, err := strconv.ParseUint(f, 10, 64)
			if err != nil {
				return ctigate.E(op, ctigate.Internal, fmt.Errorf("ledger block %q", f))
			}
			text, ok := texts[i].(string)
			if !ok {
				return ctigate.E(op, ctigate.Internal, fmt.Errorf("ledger block %d missing", first))
			}
			lines, err := logLines(text)
			if err != nil {
				return ctigate.E(op, ctigate.Internal, fmt.Errorf("ledger block %d: %w", first, err))
			}
			var blockTags string
			if q.ObjectID != "" {
				blockTags, _ = tags[indexOf(firsts, f)].(string)
			}
			for k, line := range lines {
				seq := first + uint64(k)
				if seq <= q.After {
					continue
				}
				if seq > last {
					return nil
				}
				if q.ObjectID != "" {
					if 8*k+8 > len(blockTags) {
						return ctigate.E(op, ctigate.Internal, fmt.Errorf("ledger block %d: tags too short", first))
					}
					if binary.BigEndian.Uint64([]byte(blockTags[8*k:])) != tag {
						continue
					}
				}
				done, err := fn(seq, line)
				if err != nil {
					return ctigate.E(op, err)
				}
				if done {
					return nil
				}
			}
		}
		if len(firsts) < ledgerBlocks {
			return nil
		}
	}
}

// hasTag reports whether the tags of a block hold tag or a delivery.
func hasTag(tags string, tag uint64) bool {
	for i := 0; i+8 <= len(tags); i += 8 {
		if binary.BigEndian.Uint64([]byte(tags[i:i+8])) == tag {
			return true
		}
	}
	return false
}

func indexOf(ss []string, s string) int {
	for i, x := range ss {
		if x == s {
			return i
		}
	}
	return -1
}

// deletedLines returns the pending lines of the deleted entries of the
// versions vs of id, each with the hash of its stored record (read before
// the delete script, which checks that the versions are unchanged) and the
// version's date_added, and, when the removal leaves tombstones, the
// tombstone of each version in the order of vs (none otherwise).
func (s *Store) deletedLines(ctx context.Context, collection, id string, vs []versionEntry) ([]string, []string, []sealInput, error) {
	das := make([]string, len(vs))
	for i, v := range vs {
		das[i] = strconv.FormatInt(v.da, 10)
	}
	recs, err := s.records(ctx, collection, das)
	if err != nil {
		return nil, nil, nil, err
	}
	actor, _ := store.ActorFrom(ctx)
	if actor.User == "" {
		actor.User = systemUser
	}
	rm := store.RemovalFrom(ctx)
	out := make([]string, len(vs))
	ins := make([]sealInput, len(vs))
	var tombs []string
	for i, v := range vs {
		e := custody.Entry{Action: custody.Deleted, User: actor.User, Org: actor.Org, ObjectID: id, Collection: collection,
			DateAdded: custody.FormatTime(time.UnixMicro(v.da))}
		switch rm.Kind {
		case store.RemovalWithdrawn:
			e.Action, e.Route, e.PolicyVersion, e.Source, e.Reason, e.Detail = custody.Withdrawn, rm.Route, rm.PolicyVersion, rm.Source, rm.Reason, rm.Detail
		case store.RemovalExpired, store.RemovalReleased:
			e.Reason = rm.Kind
		}
		t := store.Tombstone{ID: id, DateAdded: time.UnixMicro(v.da).UTC(), Kind: rm.Kind, Reason: rm.Reason}
		if k, err := hex.DecodeString(v.version); err == nil && len(k) == 12 {
			t.Version = versionTime(k)
			e.ObjectVersion = custody.FormatVersion(t.Version)
		}
		if b, ok := recs[i].(string); ok {
			e.SHA256 = custody.HexHash(recordHash([]byte(b)))
			if o, err := decodeRecord(b, true); err == nil {
				t.Hash, t.Producer = o.Hash, o.Producer
			}
		}
		l, in, err := s.encodePending(&e, true)
		if err != nil {
			return nil, nil, nil, err
		}
		out[i], ins[i] = l, in
		if store.Tombstoned(rm.Kind) {
			tombs = append(tombs, string(store.EncodeTombstone(&t)))
		}
	}
	return out, tombs, ins, nil
}
