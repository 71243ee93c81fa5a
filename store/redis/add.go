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

// An add (AddObjects, AddObjectsCheckpoint) is one optimistic
// transaction on the collection's keys, without a script: it WATCHes the
// version lists (n), the date_added clock (last), the pending ledger list
// and its counter (pl, pln) and the checkpoints (ck, when it moves one);
// reads what it needs; decides here which versions are new, their
// date_added (the clock's next microseconds, ascending) and the lists'
// new text; then writes everything in one MULTI/EXEC, which Redis refuses
// if any watched key changed meanwhile (another process's write or
// delete), and the add starts over. Nothing is written before every check
// has passed. This process's adds to one collection take turns (addTurn),
// so they never make each other start over.
//
// Records travel as commands' arguments, not a script's: Redis's Lua
// copies and hashes every byte of every argument, which cost a third of
// an add's Redis CPU.

// addTurn returns the turn that this process's adds to coll take: a
// channel of one, which an add fills while it runs.
func (s *Store) addTurn(coll string) chan struct{} {
	if m, ok := s.addTurns.Load(coll); ok {
		return m.(chan struct{})
	}
	m, _ := s.addTurns.LoadOrStore(coll, make(chan struct{}, 1))
	return m.(chan struct{})
}

// maxAddAttempts bounds the starts of one add when other processes keep
// changing the collection.
const maxAddAttempts = 100

// addItem is one object of an add, encoded.
type addItem struct {
	id, ver, spec string // id, versionKey, listSpec
	rec           []byte
	received      string // its received ledger line, "" for none
}

// addPlan is what one attempt decided.
type addPlan struct {
	res []int64 // date_added of each object; negative: -da of the version found
	lb  uint64  // pending ledger batch written, 0 for none
}

// addTx runs the add's transaction (see above). cpAt is the checkpoint's
// new time in µs, "" to remove it; cpFrom what it must be ("" for none).
func (s *Store) addTx(ctx context.Context, coll string, items []addItem, decided, cpName, cpFrom, cpAt string, trim uint64, now int64) (addPlan, error) {
	kz, kn, klast, kck := s.collKey(coll, "z"), s.collKey(coll, "n"), s.collKey(coll, "last"), s.collKey(coll, "ck")
	kmv, kpl, kpln := s.collKey(coll, "mv"), s.collKey(coll, "pl"), s.collKey(coll, "pln")
	watch := []string{kn, klast, kpl, kpln}
	if cpName != "" {
		watch = append(watch, kck)
	}
	ids := make([]string, 0, len(items))
	seen := make(map[string]bool, len(items))
	for i := range items {
		if !seen[items[i].id] {
			seen[items[i].id] = true
			ids = append(ids, items[i].id)
		}
	}
	turn := s.addTurn(coll)
	select {
	case turn <- struct{}{}:
		defer func() { <-turn }()
	case <-ctx.Done():
		return addPlan{}, ctx.Err()
	}
	var plan addPlan
	attempt := func(tx *goredis.Tx) error {
		var (
			listsCmd        *goredis.SliceCmd
			lastCmd, plnCmd *goredis.StringCmd
			llenCmd         *goredis.IntCmd
			ckCmd           *goredis.StringCmd
		)
		_, err := tx.Pipelined(ctx, func(p goredis.Pipeliner) error {
			if len(ids) > 0 {
				listsCmd = p.HMGet(ctx, kn, ids...)
			}
			lastCmd, plnCmd, llenCmd = p.Get(ctx, klast), p.Get(ctx, kpln), p.LLen(ctx, kpl)
			if cpName != "" {
				ckCmd = p.HGet(ctx, kck, cpName)
			}
			return nil
		})
		if err != nil && !errors.Is(err, goredis.Nil) {
			return err
		}
		if cpName != "" {
			cur, err := ckCmd.Result()
			if err != nil && !errors.Is(err, goredis.Nil) {
				return err
			}
			if cur != cpFrom {
				return ctigate.E("redis.AddObjectsCheckpoint", ctigate.Conflict, fmt.Errorf("checkpoint %s is at %q, not %q", cpName, cur, cpFrom), "checkpoint already moved by another writer")
			}
		}
		lists := make(map[string]string, len(ids))
		if listsCmd != nil {
			if err := listsCmd.Err(); err != nil {
				return err
			}
			for i, v := range listsCmd.Val() {
				if str, ok := v.(string); ok {
					lists[ids[i]] = str
				}
			}
		}
		last := now - 1
		if v, err := lastCmd.Result(); err == nil {
			if last, err = strconv.ParseInt(v, 10, 64); err != nil {
				return fmt.Errorf("collection clock %q", v)
			}
		} else if !errors.Is(err, goredis.Nil) {
			return err
		}
		pln := uint64(0)
		if v, err := plnCmd.Result(); err == nil {
			if pln, err = strconv.ParseUint(v, 10, 64); err != nil {
				return fmt.Errorf("pending batch number %q", v)
			}
		} else if !errors.Is(err, goredis.Nil) {
			return err
		}
		llen, err := llenCmd.Result()
		if err != nil {
			return err
		}
		plan = addPlan{res: make([]int64, len(items))}
		var (
			zs         []goredis.Z
			changed    []string
			multi      bool
			changedSet = make(map[string]bool)
			led        []string
		)
		for k := range items {
			it := &items[k]
			list := lists[it.id]
			if da, ok := findVersion(list, it.ver); ok {
				plan.res[k] = -da
				continue
			}
			d := max(now, last+1)
			last = d
			zs = append(zs, goredis.Z{Score: float64(d), Member: it.rec})
			if list != "" {
				multi = true
			}
			if !changedSet[it.id] {
				changedSet[it.id] = true
				changed = append(changed, it.id)
			}
			lists[it.id] = list + strconv.FormatInt(d, 10) + "," + it.ver + "," + it.spec + ";"
			plan.res[k] = d
			if it.received != "" {
				led = append(led, it.received)
			}
		}
		if decided != "" {
			led = append(led, decided)
		}
		cmds, err := tx.TxPipelined(ctx, func(p goredis.Pipeliner) error {
			if len(zs) > 0 {
				p.ZAdd(ctx, kz, zs...)
				hs := make([]any, 0, 2*len(changed))
				for _, id := range changed {
					hs = append(hs, id, lists[id])
				}
				p.HSet(ctx, kn, hs...)
				p.Set(ctx, klast, last, 0)
			}
			if multi {
				p.Set(ctx, kmv, "1", 0)
			}
			if cpName != "" {
				if cpAt == "" {
					p.HDel(ctx, kck, cpName)
				} else {
					p.HSet(ctx, kck, cpName, cpAt)
				}
			}
			if len(led) > 0 {
				pln++
				plan.lb = pln
				p.Set(ctx, kpln, pln, 0)
				p.RPush(ctx, kpl, strconv.FormatUint(pln, 10)+":"+strconv.FormatInt(now, 10)+"\n"+strings.Join(led, "\n"))
				llen++
			}
			// pl holds the batches numbered pln-LLEN+1 … pln, in order
			// (each is pushed with its number, and only its head is
			// removed): the chained ones go without reading a batch.
			if trim > 0 && llen > 0 {
				drop := int64(trim) - (int64(pln) - llen)
				if drop >= llen {
					p.Del(ctx, kpl)
				} else if drop > 0 {
					p.LTrim(ctx, kpl, drop, -1)
				}
			}
			return nil
		})
		return execErr(cmds, err)
	}
	for range maxAddAttempts {
		err := s.c.Watch(ctx, attempt, watch...)
		if !errors.Is(err, goredis.TxFailedErr) {
			return plan, err
		}
		s.addRestarts.Add(1)
	}
	return addPlan{}, ctigate.E("redis.AddObjects", ctigate.Unavailable, "collection changing too fast to write")
}

// findVersion returns the date_added of version key ver in version list
// list ("da,version,spec;" entries).
func findVersion(list, ver string) (int64, bool) {
	for list != "" {
		e, rest, ok := strings.Cut(list, ";")
		if !ok {
			return 0, false
		}
		list = rest
		da, e, ok1 := strings.Cut(e, ",")
		v, _, ok2 := strings.Cut(e, ",")
		if ok1 && ok2 && v == ver {
			if n, err := strconv.ParseInt(da, 10, 64); err == nil {
				return n, true
			}
		}
	}
	return 0, false
}

// AddObjects stores object versions in one collection atomically.
func (s *Store) AddObjects(ctx context.Context, collection string, objs []store.Object) ([]store.AddResult, error) {
	return s.add(ctx, "redis.AddObjects", collection, objs, nil, "", time.Time{}, time.Time{})
}

// AddObjectsCheckpoint is AddObjects that also records decisions (as
// custody ledger entries, pending in the same transaction, see ledger.go)
// and moves the checkpoint name from from to at, in the same transaction.
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
	items := make([]addItem, len(objs))
	for i := range objs {
		o := &objs[i]
		if err := o.Validate(); err != nil {
			return nil, ctigate.E(op, ctigate.Invalid, fmt.Sprintf("object %d: %v", i, err))
		}
		items[i] = addItem{id: o.ID, ver: versionKey(o.Version), spec: listSpec(o), rec: encodeRecord(o), received: received[i]}
	}
	if err := ctx.Err(); err != nil {
		return nil, ctxErr(op, err)
	}
	results := make([]store.AddResult, len(objs))
	if len(objs) == 0 && cpName == "" {
		return results, nil
	}
	now := s.clock().UnixMicro()
	var cpFrom, cpAt string
	if cpName != "" {
		if !at.IsZero() { // else set back to the start: no value, as before the first write
			cpAt = strconv.FormatInt(at.UnixMicro(), 10)
		}
		if !from.IsZero() {
			cpFrom = strconv.FormatInt(from.UnixMicro(), 10)
		}
		// Where Checkpoint(name) finds it; harmless if the add fails.
		if err := s.c.HSet(ctx, s.prefix+":{k}:where", cpName, collection).Err(); err != nil {
			return nil, s.fail(op, err)
		}
	}
	ledgered := decided != "" || (len(objs) > 0 && received[0] != "")
	// The pending ledger batch the add writes, if any, and its entries,
	// which this process chains (ledger.go).
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
	plan, err := s.addTx(ctx, collection, items, decided, cpName, cpFrom, cpAt, s.trimThrough(collection), now)
	if err != nil {
		if _, ok := errors.AsType[*ctigate.Error](err); ok {
			return nil, err
		}
		return nil, s.fail(op, err)
	}
	if plan.lb > 0 {
		for i, da := range plan.res {
			if da > 0 && received[i] != "" {
				lins = append(lins, receivedIns[i])
			}
		}
		lins = append(lins, decidedIns...)
		lb = plan.lb
	}
	var existed []string
	for i, da := range plan.res {
		if da < 0 {
			da = -da
			results[i].Existed = true
			existed = append(existed, strconv.FormatInt(da, 10))
		}
		results[i].DateAdded = microTime(da)
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
