package redis

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/ctigate/ctigate"
	"github.com/ctigate/ctigate/store"
)

// addScript writes one AddObjects or AddObjectsCheckpoint call.
//
// KEYS: 1 z, 2 unused, 3 n, 4 last, 5 ck, 6, 7 and 8 unused, 9 mv,
// 10 pl, 11 pln
// ARGV: 1 clock (µs), 2 checkpoint name ("" for none), 3 checkpoint time
// (µs; "" to remove it: back to the start), 4 and 5 unused,
// 6 the pending ledger batch number through which pl may be trimmed (they
// are chained), 7 the checkpoint the write starts from ("" for none), 8
// the decisions' ledger entries (lines; "" for none), 9 and 10 unused, 11 the
// objects' received ledger entries, one a line in object order ("" for
// none), then 5 per object: id, version key, spec_version (listSpec), record,
// version (text).
//
// It returns one string per object: "n<da>" for a new version, "e<da>" for
// one already stored, then "L<b>": the number of the pending ledger batch
// written (ledger.go), 0 for none. Nothing is written before every check
// has passed. Writes are batched into variadic commands of at most 500
// entries.
var addScript = goredis.NewScript(`
if ARGV[2] ~= '' then
  local cur = redis.call('HGET', KEYS[5], ARGV[2]) or ''
  if cur ~= ARGV[7] then
    return redis.error_reply('CTIGATE_CONFLICT checkpoint ' .. ARGV[2] .. ' is at ' .. cur .. ', not ' .. ARGV[7])
  end
end
local n = (#ARGV - 11) / 5
local ids = {}
for k = 1, n do ids[k] = ARGV[7 + 5*k] end
local lists = {}
for s = 1, n, 500 do
  local e = math.min(s + 499, n)
  local got = redis.call('HMGET', KEYS[3], unpack(ids, s, e))
  for j = s, e do
    if got[j - s + 1] then lists[ids[j]] = got[j - s + 1] end
  end
end
local now = tonumber(ARGV[1])
local last = redis.call('GET', KEYS[4])
if last then last = tonumber(last) else last = now - 1 end
local res, zargs, changed, led = {}, {}, {}, {}
local multi, allnew = false, true
for k = 1, n do
  local i = 7 + 5*k
  local id, ver = ARGV[i], ARGV[i+1]
  local list = lists[id] or ''
  local found = nil
  if list ~= '' then
    for da, v in string.gmatch(list, '(%-?%d+),(%x+),[^;]*;') do
      if v == ver then found = da break end
    end
  end
  if found then
    res[k] = 'e' .. found
    allnew = false
  else
    local d = now
    if d <= last then d = last + 1 end
    last = d
    local ds = string.format('%.0f', d)
    zargs[#zargs+1] = ds
    zargs[#zargs+1] = ARGV[i+3]
    if list ~= '' then multi = true end
    lists[id] = list .. ds .. ',' .. ver .. ',' .. ARGV[i+2] .. ';'
    changed[id] = true
    res[k] = 'n' .. ds
  end
end
for s = 1, #zargs, 1000 do
  redis.call('ZADD', KEYS[1], unpack(zargs, s, math.min(s + 999, #zargs)))
end
local nargs = {}
for id in pairs(changed) do
  nargs[#nargs+1] = id
  nargs[#nargs+1] = lists[id]
  if #nargs == 1000 then redis.call('HSET', KEYS[3], unpack(nargs)) nargs = {} end
end
if #nargs > 0 then redis.call('HSET', KEYS[3], unpack(nargs)) end
if #zargs > 0 then redis.call('SET', KEYS[4], string.format('%.0f', last)) end
if multi then redis.call('SET', KEYS[9], '1') end
if ARGV[2] ~= '' then
  if ARGV[3] == '' then redis.call('HDEL', KEYS[5], ARGV[2]) else redis.call('HSET', KEYS[5], ARGV[2], ARGV[3]) end
end
if ARGV[11] ~= '' then
  if allnew then
    led[1] = ARGV[11]
  else
    local k = 0
    for line in string.gmatch(ARGV[11], '[^\n]+') do
      k = k + 1
      if string.byte(res[k], 1) == 110 then led[#led+1] = line end
    end
  end
end
if ARGV[8] ~= '' then led[#led+1] = ARGV[8] end
local lb = 0
if #led > 0 then
  lb = redis.call('INCR', KEYS[11])
  local body = led[1]
  if #led > 1 then body = table.concat(led, '\n') end
  redis.call('RPUSH', KEYS[10], lb .. ':' .. ARGV[1] .. '\n' .. body)
end
local trim = tonumber(ARGV[6])
if trim > 0 then
  -- pl holds the batches numbered pln-LLEN+1 … pln, in order (each is
  -- pushed with its INCR, and only its head is removed): the chained
  -- ones go without reading a batch.
  local len = redis.call('LLEN', KEYS[10])
  if len > 0 then
    local drop = trim - (tonumber(redis.call('GET', KEYS[11]) or '0') - len)
    if drop >= len then
      redis.call('DEL', KEYS[10])
    elseif drop > 0 then
      redis.call('LTRIM', KEYS[10], drop, -1)
    end
  end
end
res[#res+1] = 'L' .. lb
return res
`)

// AddObjects stores object versions in one collection atomically.
func (s *Store) AddObjects(ctx context.Context, collection string, objs []store.Object) ([]store.AddResult, error) {
	return s.add(ctx, "redis.AddObjects", collection, objs, nil, "", time.Time{}, time.Time{})
}

// AddObjectsCheckpoint is AddObjects that also records decisions (as
// custody ledger entries, pending in the same script call, see ledger.go)
// and moves the checkpoint name from from to at, in the same script call.
// A checkpoint that is no longer from is a Conflict and nothing is
// written.
func (s *Store) AddObjectsCheckpoint(ctx context.Context, collection string, objs []store.Object, decisions []store.Decision, name string, from, at time.Time) ([]store.AddResult, error) {
	const op = "redis.AddObjectsCheckpoint"
	if err := store.ValidName("checkpoint", name); err != nil {
		return nil, ctigate.E(op, ctigate.Invalid, err.Error())
	}
	if err := store.ValidateDecisions(decisions); err != nil {
		return nil, ctigate.E(op, ctigate.Invalid, err.Error())
	}
	return s.add(ctx, op, collection, objs, decisions, name, from, at)
}

func (s *Store) add(ctx context.Context, op, collection string, objs []store.Object, decisions []store.Decision, cpName string, from, at time.Time) ([]store.AddResult, error) {
	if err := store.ValidName("collection", collection); err != nil {
		return nil, ctigate.E(op, ctigate.Invalid, err.Error())
	}
	received, receivedIns, err := s.receivedLines(ctx, collection, objs)
	if err != nil {
		return nil, ctigate.E(op, ctigate.Invalid, err.Error())
	}
	decided, decidedIns, err := s.decisionLines(ctx, decisions)
	if err != nil {
		return nil, ctigate.E(op, ctigate.Invalid, err.Error())
	}
	args := make([]any, 11, 11+5*len(objs))
	for i := range objs {
		o := &objs[i]
		if err := o.Validate(); err != nil {
			return nil, ctigate.E(op, ctigate.Invalid, fmt.Sprintf("object %d: %v", i, err))
		}
		ver := ""
		if !o.Version.IsZero() {
			ver = o.Version.UTC().Format(time.RFC3339Nano)
		}
		args = append(args, o.ID, versionKey(o.Version), listSpec(o), encodeRecord(o), ver)
	}
	if err := ctx.Err(); err != nil {
		return nil, ctxErr(op, err)
	}
	results := make([]store.AddResult, len(objs))
	if len(objs) == 0 && cpName == "" {
		return results, nil
	}
	now := s.clock().UnixMicro()
	args[0] = now
	args[1], args[2], args[3] = cpName, int64(0), ""
	if cpName != "" {
		args[2] = at.UnixMicro()
		if at.IsZero() {
			args[2] = "" // set back to the start: no value, as before the first write
		}
		// Where Checkpoint(name) finds it; harmless if the script fails.
		if err := s.c.HSet(ctx, s.prefix+":{k}:where", cpName, collection).Err(); err != nil {
			return nil, s.fail(op, err)
		}
	}
	ledgered := decided != "" || (len(objs) > 0 && received[0] != "")
	// The pending ledger batch the script writes, if any, and its
	// entries, which this process chains (ledger.go).
	var (
		lb   uint64
		lins []sealInput
	)
	if ledgered {
		if err := s.registerSource(ctx, collection); err != nil {
			return nil, s.fail(op, err)
		}
		s.ledgerBegin(collection)
		defer func() {
			if err := s.ledgerEnd(ctx, collection, lb, now, lins); err != nil {
				// Recorded; the next write or read chains it.
				s.log.Warn("redis: chaining custody ledger entries", "collection", collection, "err", err)
			}
		}()
	}
	args[4], args[5], args[6] = "0", s.trimThrough(collection), ""
	args[7], args[8], args[9], args[10] = decided, "", "", ""
	if len(objs) > 0 && received[0] != "" {
		// One argument for the envelope: the script keeps the lines of
		// the versions it finds new.
		args[10] = strings.Join(received, "\n")
	}
	if !from.IsZero() {
		args[6] = strconv.FormatInt(from.UnixMicro(), 10)
	}
	keys := []string{
		s.collKey(collection, "z"), s.collKey(collection, "o"), s.collKey(collection, "n"),
		s.collKey(collection, "last"), s.collKey(collection, "ck"), s.collKey(collection, "o"),
		s.collKey(collection, "o"), s.collKey(collection, "o"), s.collKey(collection, "mv"),
		s.collKey(collection, "pl"), s.collKey(collection, "pln"),
	}
	out, err := addScript.Run(ctx, s.c, keys, args...).StringSlice()
	if err != nil {
		return nil, s.fail(op, err)
	}
	if len(out) != len(objs)+1 || !strings.HasPrefix(out[len(objs)], "L") {
		return nil, ctigate.E(op, ctigate.Internal, fmt.Errorf("script returned %d results for %d objects", len(out), len(objs)))
	}
	b, err := strconv.ParseUint(out[len(objs)][1:], 10, 64)
	if err != nil {
		return nil, ctigate.E(op, ctigate.Internal, fmt.Errorf("script result %q", out[len(objs)]))
	}
	out = out[:len(objs)]
	if b > 0 {
		for i, r := range out {
			if r[0] == 'n' && received[i] != "" {
				lins = append(lins, receivedIns[i])
			}
		}
		lins = append(lins, decidedIns...)
		lb = b
	}
	var existed []string
	for i, r := range out {
		if len(r) < 2 {
			return nil, ctigate.E(op, ctigate.Internal, fmt.Errorf("script result %q", r))
		}
		da, err := strconv.ParseInt(r[1:], 10, 64)
		if err != nil {
			return nil, ctigate.E(op, ctigate.Internal, fmt.Errorf("script result %q", r))
		}
		results[i].DateAdded = microTime(da)
		if r[0] == 'e' {
			results[i].Existed = true
			existed = append(existed, r[1:])
		}
	}
	if len(existed) > 0 {
		recs, err := s.records(ctx, collection, existed)
		if err != nil {
			return nil, s.fail(op, err)
		}
		j := 0
		for i := range results {
			if results[i].Existed {
				if b, ok := recs[j].(string); ok {
					results[i].Hash = recordHash([]byte(b))
				}
				j++
			}
		}
	}
	return results, nil
}

// Checkpoint returns the time last set under name, zero when none.
func (s *Store) Checkpoint(ctx context.Context, name string) (time.Time, error) {
	const op = "redis.Checkpoint"
	if err := store.ValidName("checkpoint", name); err != nil {
		return time.Time{}, ctigate.E(op, ctigate.Invalid, err.Error())
	}
	if err := ctx.Err(); err != nil {
		return time.Time{}, ctxErr(op, err)
	}
	coll, err := s.c.HGet(ctx, s.prefix+":{k}:where", name).Result()
	if errors.Is(err, goredis.Nil) {
		return time.Time{}, nil
	}
	if err != nil {
		return time.Time{}, s.fail(op, err)
	}
	v, err := s.c.HGet(ctx, s.collKey(coll, "ck"), name).Int64()
	if errors.Is(err, goredis.Nil) {
		return time.Time{}, nil
	}
	if err != nil {
		return time.Time{}, s.fail(op, err)
	}
	return microTime(v), nil
}
