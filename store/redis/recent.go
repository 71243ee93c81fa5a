package redis

import (
	"context"
	"errors"
	"math"
	"slices"
	"strconv"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/ctigate/ctigate/store"
)

// What this process wrote lately (recent). Fan-out and the search indexer
// read each collection from their checkpoint on, every version in
// date_added order (Query{AddedAfter, Versions: All}), mostly just after
// this process's adds wrote those versions: reading them back from Redis
// was a fifth of Redis's CPU in a push. So each add that succeeds leaves
// the records it wrote here, with what Redis said around them, and such a
// read is answered from here when Redis proves that nothing else changed:
//
//   - An add reads the collection's clock (last) under WATCH, and its
//     transaction sets it past every date_added it assigns and counts the
//     collection's versions (ZCARD) after its writes. Every write of a
//     version by any process, of this build or of earlier ones, moves the
//     clock (a version's date_added is the clock's next value); a delete
//     lowers the count (and moves the clock when it leaves tombstones).
//   - Turns are kept as a chain: a turn joins the one before it only if
//     it read the clock that one left and its count is that one's plus
//     what it added, i.e. no other process added or removed a version in
//     between. Otherwise the chain starts again from that turn.
//   - A read after s (a date_added) is answered from the chain when its
//     first turn read a clock <= s (every version stored then had a
//     date_added <= s, as the clock is never behind them) and Redis's
//     clock and count, read now in one round trip, are still those the
//     chain's last turn left. Then the versions after s in Redis are
//     exactly the chain's versions after s, as of that round trip.
//
// Anything else (a read with filters, a chain that starts after s, a
// clock or count that moved, records evicted) reads Redis as before. The
// records kept are bounded in bytes over all collections; the oldest
// turns go first.

// DefaultRecentBytes bounds the records kept (Options.RecentBytes).
const DefaultRecentBytes = 64 << 20

// recentAge is how long a turn is kept at most: readers that far behind
// read Redis, and an idle process keeps nothing.
const recentAge = 10 * time.Second

// recentTurn is one successful add's writes to a collection.
type recentTurn struct {
	prev  int64    // the clock the turn read; math.MinInt64 when unset
	end   int64    // the clock it left
	count int64    // the collection's versions after it
	das   []int64  // the date_added of the versions it wrote, ascending
	recs  []string // their records
	size  int64    // bytes kept
	gone  bool     // dropped from its chain
	at    time.Time
}

// recentColl is a collection's chain of turns, oldest first.
type recentColl struct {
	name  string
	turns []*recentTurn
}

// recent is what a Store keeps of its adds (see above).
type recent struct {
	mu    sync.Mutex
	max   int64 // <= 0: nothing is kept
	age   time.Duration
	size  int64
	colls map[string]*recentColl
	live  int         // turns kept
	fifo  []recentRef // the turns kept, oldest first, for eviction (and some dropped)
	hits  int64       // reads answered here
}

type recentRef struct {
	c *recentColl
	t *recentTurn
}

// add records a turn on coll that succeeded.
func (r *recent) add(coll string, t *recentTurn) {
	if r.max <= 0 {
		return
	}
	t.size, t.at = 64, time.Now()
	for _, rec := range t.recs {
		t.size += int64(len(rec)) + 24
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.colls == nil {
		r.colls = map[string]*recentColl{}
	}
	c := r.colls[coll]
	if c == nil {
		c = &recentColl{name: coll}
		r.colls[coll] = c
	}
	if n := len(c.turns); n > 0 {
		tail := c.turns[n-1]
		if tail.end == t.prev && tail.count+int64(len(t.das)) == t.count {
			if len(t.das) == 0 {
				return // changed nothing: the chain stands as it is
			}
		} else {
			r.drop(c, n) // another process wrote in between
		}
	}
	c.turns = append(c.turns, t)
	r.fifo = append(r.fifo, recentRef{c, t})
	r.size += t.size
	r.live++
	r.expire(t.at)
}

// expire drops the oldest turns while they are over the bound in bytes,
// or older than r.age at now.
func (r *recent) expire(now time.Time) {
	for len(r.fifo) > 0 && (r.size > r.max || now.Sub(r.fifo[0].t.at) > r.age) {
		old := r.fifo[0]
		r.fifo[0] = recentRef{}
		r.fifo = r.fifo[1:]
		if !old.t.gone { // then the oldest of its chain
			r.drop(old.c, 1)
			if len(old.c.turns) == 0 {
				delete(r.colls, old.c.name)
			}
		}
	}
	if len(r.fifo) > 2*r.live+64 { // chains started again leave refs behind
		r.fifo = slices.DeleteFunc(r.fifo, func(x recentRef) bool { return x.t.gone })
	}
}

// drop removes c's n oldest turns.
func (r *recent) drop(c *recentColl, n int) {
	for _, t := range c.turns[:n] {
		r.size -= t.size
		t.gone = true
	}
	r.live -= n
	clear(c.turns[:n])
	c.turns = c.turns[n:]
}

// after returns up to want of the versions of coll's chain with a
// date_added after start, and the clock and count Redis must still hold
// for them to be all of them; ok is false when the chain cannot tell.
func (r *recent) after(coll string, start int64, want int) (das []int64, recs []string, end, count int64, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.expire(time.Now())
	c := r.colls[coll]
	if c == nil || c.turns[0].prev > start {
		return nil, nil, 0, 0, false
	}
	tail := c.turns[len(c.turns)-1]
	for _, t := range c.turns {
		if t.end <= start {
			continue
		}
		for i, da := range t.das {
			if da <= start {
				continue
			}
			if len(das) == want {
				return das, recs, tail.end, tail.count, true
			}
			das = append(das, da)
			recs = append(recs, t.recs[i])
		}
	}
	return das, recs, tail.end, tail.count, true
}

// fromRecent answers a read of every version of coll after start, up to
// want of them, from what this process wrote (see above); ok is false
// when it cannot, and the caller reads Redis.
func (s *Store) fromRecent(ctx context.Context, coll string, q *store.Query, sel *selector, start int64, want int) (objs []store.Object, das []int64, ok bool, err error) {
	if s.recent.max <= 0 || !sel.all || len(q.SpecVersions) > 0 || len(q.Types) > 0 || len(q.IDs) > 0 {
		return nil, nil, false, nil
	}
	das, recs, end, count, ok := s.recent.after(coll, start, want)
	if !ok {
		return nil, nil, false, nil
	}
	pipe := s.c.Pipeline()
	lastCmd := pipe.Get(ctx, s.collKey(coll, "last"))
	countCmd := pipe.ZCard(ctx, s.collKey(coll, "z"))
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, goredis.Nil) {
		return nil, nil, false, err
	}
	if lastCmd.Val() != strconv.FormatInt(end, 10) || countCmd.Val() != count || end == math.MinInt64 {
		return nil, nil, false, nil
	}
	anys := make([]any, len(recs))
	for i, rec := range recs {
		anys[i] = rec
	}
	objs, das, err = decodeFiltered(das, anys, q, nil)
	if err != nil {
		return nil, nil, false, err
	}
	if len(objs) == 0 {
		objs, das = nil, nil // as a read of Redis finding none
	}
	s.recent.mu.Lock()
	s.recent.hits++
	s.recent.mu.Unlock()
	return objs, das, true, nil
}
