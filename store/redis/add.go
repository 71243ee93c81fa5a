package redis

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/ctigate/ctigate"
	"github.com/ctigate/ctigate/custody"
	"github.com/ctigate/ctigate/store"
)

// An add (AddObjects, AddObjectsCheckpoint) is one optimistic
// transaction on the collection's keys, without a script: it WATCHes the
// version lists (n), the date_added clock (last), the pending ledger list
// and its counter (pl, pln) and the checkpoints (ck); reads what it needs;
// decides here which versions are new, their date_added (the clock's next
// microseconds, ascending) and the lists' new text; then writes
// everything in one MULTI/EXEC, which Redis refuses if any watched key
// changed meanwhile (another process's write or delete), and the add
// starts over. Nothing is written before every check has passed.
//
// This process's adds to one collection take turns, so they never make
// each other start over; adds that arrive during a turn wait and then
// share the next one (group commit): one transaction writes them all, in
// arrival order, each with its own pending ledger batch, and each gets
// its own result. A turn costs three round trips to Redis (WATCH, the
// reads, MULTI/EXEC), so sharing it keeps small concurrent envelopes
// from queueing behind each other's round trips.
//
// Records travel as commands' arguments, not a script's: Redis's Lua
// copies and hashes every byte of every argument, which cost a third of
// an add's Redis CPU.

// addQueue is a collection's turn: whether an add is running, and the
// adds waiting for the next turn.
type addQueue struct {
	mu      sync.Mutex
	running bool
	waiting []*addReq
}

// addReq is one add: its objects, decisions and checkpoint move, then
// its outcome.
type addReq struct {
	items                []addItem
	decided              string // the decisions' pending ledger lines
	cpName, cpFrom, cpAt string // cpAt "" removes it; cpFrom "" for none
	now                  int64  // the add's clock, µs
	// salter makes the delivery leaves of the items with a hash (nil
	// when none has one).
	salter *custody.Salter

	plan addPlan
	err  error
	done chan struct{}  // closed when plan and err are set
	lead chan []*addReq // receives the turn, with the adds it runs
}

// maxAddAttempts bounds the starts of one turn when other processes keep
// changing the collection.
const maxAddAttempts = 100

// addItem is one object of an add, encoded.
type addItem struct {
	id, ver, spec string // id, versionKey, listSpec
	rec           []byte
	received      string        // its received ledger line, "" for none
	obj           *store.Object // for its delivery leaf, when it has a hash
}

// addPlan is what a turn decided for one add.
type addPlan struct {
	res []int64 // date_added of each object; negative: -da of the version found
	lb  uint64  // pending ledger batch written, 0 for none
}

// addTx runs r in this process's next turn on coll, shared with the adds
// waiting with it, and returns its outcome.
func (s *Store) addTx(ctx context.Context, coll string, r *addReq) (addPlan, error) {
	r.done, r.lead = make(chan struct{}), make(chan []*addReq, 1)
	v, _ := s.addTurns.LoadOrStore(coll, &addQueue{})
	q := v.(*addQueue)
	q.mu.Lock()
	if !q.running {
		q.running = true
		q.mu.Unlock()
		s.runTurns(ctx, coll, q, []*addReq{r})
		return r.plan, r.err
	}
	q.waiting = append(q.waiting, r)
	q.mu.Unlock()
	select {
	case batch := <-r.lead:
		s.runTurns(ctx, coll, q, batch)
	case <-r.done:
	case <-ctx.Done():
		q.mu.Lock()
		if i := slices.Index(q.waiting, r); i >= 0 {
			q.waiting = slices.Delete(q.waiting, i, i+1)
			q.mu.Unlock()
			return addPlan{}, ctx.Err()
		}
		q.mu.Unlock()
		// Taken into a turn: its outcome comes.
		select {
		case batch := <-r.lead:
			s.runTurns(ctx, coll, q, batch)
		case <-r.done:
		}
	}
	return r.plan, r.err
}

// maxTurnObjects bounds the objects of the adds that share a turn (one
// always runs, whatever its size): a transaction holds Redis, which
// serves no other client while it runs.
const maxTurnObjects = 5000

// runTurns runs batch, then hands the turn to the first add that waited
// meanwhile, with the adds waiting after it up to maxTurnObjects, or ends
// the turns.
func (s *Store) runTurns(ctx context.Context, coll string, q *addQueue, batch []*addReq) {
	// The adds of others must not fail because this one's caller gave up.
	s.runAdds(context.WithoutCancel(ctx), coll, batch)
	for _, r := range batch {
		close(r.done)
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.waiting) == 0 {
		q.running = false
		return
	}
	n, objs := 1, len(q.waiting[0].items)
	for n < len(q.waiting) && objs+len(q.waiting[n].items) <= maxTurnObjects {
		objs += len(q.waiting[n].items)
		n++
	}
	next := slices.Clone(q.waiting[:n])
	q.waiting = slices.Delete(q.waiting, 0, n)
	next[0].lead <- next
}

// runAdds writes reqs in one transaction (see above), retried while other
// processes change the collection first, and sets each one's outcome. An
// add whose checkpoint moved is a Conflict; the others are written.
func (s *Store) runAdds(ctx context.Context, coll string, reqs []*addReq) {
	kz, kn, klast, kck := s.collKey(coll, "z"), s.collKey(coll, "n"), s.collKey(coll, "last"), s.collKey(coll, "ck")
	kmv, kpl, kpln := s.collKey(coll, "mv"), s.collKey(coll, "pl"), s.collKey(coll, "pln")
	watch := []string{kn, klast, kpl, kpln, kck}
	var ids, cps []string
	seen := map[string]bool{}
	for _, r := range reqs {
		for i := range r.items {
			if id := r.items[i].id; !seen[id] {
				seen[id] = true
				ids = append(ids, id)
			}
		}
		if r.cpName != "" && !slices.Contains(cps, r.cpName) {
			cps = append(cps, r.cpName)
		}
	}
	trim := s.trimThrough(coll)
	attempt := func(tx *goredis.Tx) error {
		var (
			listsCmd, ckCmd *goredis.SliceCmd
			lastCmd, plnCmd *goredis.StringCmd
			llenCmd         *goredis.IntCmd
		)
		_, err := tx.Pipelined(ctx, func(p goredis.Pipeliner) error {
			if len(ids) > 0 {
				listsCmd = p.HMGet(ctx, kn, ids...)
			}
			lastCmd, plnCmd, llenCmd = p.Get(ctx, klast), p.Get(ctx, kpln), p.LLen(ctx, kpl)
			if len(cps) > 0 {
				ckCmd = p.HMGet(ctx, kck, cps...)
			}
			return nil
		})
		if err != nil && !errors.Is(err, goredis.Nil) {
			return err
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
		ck := map[string]string{}
		if ckCmd != nil {
			if err := ckCmd.Err(); err != nil {
				return err
			}
			for i, v := range ckCmd.Val() {
				if str, ok := v.(string); ok {
					ck[cps[i]] = str
				}
			}
		}
		last := int64(math.MinInt64)
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
		var (
			zs         []goredis.Z
			leaves     *custody.PageLeaves
			changed    []string
			changedSet = map[string]bool{}
			multi      bool
			batches    []any // pending ledger batches, in number order
			cpMoves    []string
		)
		for _, r := range reqs {
			r.plan, r.err = addPlan{}, nil
			if r.cpName != "" {
				if cur := ck[r.cpName]; cur != r.cpFrom {
					r.err = ctigate.E("redis.AddObjectsCheckpoint", ctigate.Conflict, fmt.Errorf("checkpoint %s is at %q, not %q", r.cpName, cur, r.cpFrom), "checkpoint already moved by another writer")
					continue
				}
				ck[r.cpName] = r.cpAt
				cpMoves = append(cpMoves, r.cpName)
			}
			if last == math.MinInt64 {
				last = r.now - 1
			}
			r.plan.res = make([]int64, len(r.items))
			var led []string
			for k := range r.items {
				it := &r.items[k]
				list := lists[it.id]
				stored := parseVersions(list)
				if i := slices.IndexFunc(stored, func(e versionEntry) bool { return e.version == it.ver }); i >= 0 {
					r.plan.res[k] = -stored[i].da // stored already: first copy wins
					continue
				}
				d := max(r.now, last+1)
				last = d
				var leaf *[32]byte
				if o := it.obj; o != nil && r.salter != nil {
					if leaves == nil { // the store's one salter: every add's
						leaves = r.salter.Page(coll)
					}
					l, err := leaves.Leaf(o.ID, o.Version, time.UnixMicro(d).UTC(), &o.Hash)
					if err != nil {
						return err
					}
					leaf = (*[32]byte)(&l)
				}
				zs = append(zs, goredis.Z{Score: float64(d), Member: withDateAdded(it.rec, d, leaf)})
				if list != "" {
					multi = true
				}
				if !changedSet[it.id] {
					changedSet[it.id] = true
					changed = append(changed, it.id)
				}
				lists[it.id] = list + strconv.FormatInt(d, 10) + "," + it.ver + "," + it.spec + ";"
				r.plan.res[k] = d
				if it.received != "" {
					led = append(led, it.received)
				}
			}
			if r.decided != "" {
				led = append(led, r.decided)
			}
			if len(led) > 0 {
				pln++
				r.plan.lb = pln
				batches = append(batches, strconv.FormatUint(pln, 10)+":"+strconv.FormatInt(r.now, 10)+"\n"+strings.Join(led, "\n"))
			}
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
			for _, name := range cpMoves {
				if ck[name] == "" {
					p.HDel(ctx, kck, name)
				} else {
					p.HSet(ctx, kck, name, ck[name])
				}
			}
			if len(batches) > 0 {
				p.Set(ctx, kpln, pln, 0)
				p.RPush(ctx, kpl, batches...)
				llen += int64(len(batches))
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
	var err error
	for range maxAddAttempts {
		err = s.c.Watch(ctx, attempt, watch...)
		if !errors.Is(err, goredis.TxFailedErr) {
			break
		}
		s.addRestarts.Add(1)
	}
	if errors.Is(err, goredis.TxFailedErr) {
		err = ctigate.E("redis.AddObjects", ctigate.Unavailable, "collection changing too fast to write")
	}
	s.addTurnsRun.Add(1)
	for _, r := range reqs {
		if err != nil {
			r.plan, r.err = addPlan{}, err
		}
	}
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
		if o.Hash != ([32]byte{}) {
			items[i].obj = o
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, ctxErr(op, err)
	}
	results := make([]store.AddResult, len(objs))
	if len(objs) == 0 && cpName == "" {
		return results, nil
	}
	var salter *custody.Salter // for the items' delivery leaves
	if slices.ContainsFunc(items, func(it addItem) bool { return it.obj != nil }) {
		if salter, err = s.DeliverySalter(ctx); err != nil {
			return nil, err
		}
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
	plan, err := s.addTx(ctx, collection, &addReq{items: items, decided: decided, cpName: cpName, cpFrom: cpFrom, cpAt: cpAt, now: now, salter: salter})
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
