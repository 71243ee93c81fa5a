package redis

// Queues on Redis Streams. With Options.Events, every new version stored
// in collection X appends, in the same script as the version itself, an
// entry to the stream P:{c:X}:ev with the fields
//
//	id          the STIX id
//	version     the version (modified, else created; RFC 3339, UTC), "" for
//	            versions without one
//	date_added  the version's date_added in microseconds since 1970
//	traceparent the W3C trace context of the writing request, when it had
//	            a span (and tracestate, when set)
//
// Streams are the gateway's own: only its replicas have Redis access
// (README, "Redis"), and consumers poll TAXII. For an inbound collection a
// stream is a work queue.
//
// A Queue is one consumer of a consumer group on such a stream: Read
// delivers new entries (XREADGROUP) and first reclaims those another
// consumer received and left unacknowledged for longer than ClaimIdle (a
// dead worker; XAUTOCLAIM). An entry delivered MaxDeliveries times without
// being acknowledged is poison: it is moved to the dead-letter stream
// P:{c:X}:dead (the entry's fields plus stream_id, group, consumer and
// deliveries) and acknowledged, in one script. DeadLetters lists them.
//
// TrimEvents bounds a stream without losing anything unacknowledged: with
// consumer groups it removes only entries below every group's oldest
// pending entry and last delivered one (XTRIM MINID); without groups it
// keeps about Options.EventMaxLen entries.

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/ctigate/ctigate/store"
)

// EventStream returns the key of collection's event stream.
func (s *Store) EventStream(collection string) string { return s.collKey(collection, "ev") }

// DeadLetterStream returns the key of collection's dead-letter stream.
func (s *Store) DeadLetterStream(collection string) string { return s.collKey(collection, "dead") }

// Event is one entry of an event stream.
type Event struct {
	StreamID   string    // the entry's id in the stream
	ID         string    // STIX id
	Version    string    // the version as text, "" when none
	DateAdded  time.Time // the version's date_added
	Deliveries int64     // times delivered to the group so far, this one included (reclaimed entries only; 1 otherwise)
	// Trace is the W3C trace context (traceparent, and tracestate when
	// set) of the request that wrote the version; nil when it had no span.
	// telemetry.Extract reads it.
	Trace map[string]string
}

// QueueOptions configure a Queue.
type QueueOptions struct {
	Group    string // consumer group name
	Consumer string // this consumer's name, unique within the group (e.g. host and pid)
	// ClaimIdle: entries pending on another consumer for longer are
	// reclaimed by Read. Zero means 30 seconds.
	ClaimIdle time.Duration
	// MaxDeliveries: an entry delivered this many times without an ack
	// goes to the dead-letter stream. Zero means 5.
	MaxDeliveries int64
}

// Queue is one consumer of a consumer group on a collection's event stream.
type Queue struct {
	s          *Store
	coll       string
	stream     string
	dead       string
	opts       QueueOptions
	groupReady bool
}

// Queue returns a consumer of the group on collection's event stream.
func (s *Store) Queue(collection string, opts QueueOptions) (*Queue, error) {
	if err := store.ValidName("collection", collection); err != nil {
		return nil, err
	}
	if opts.Group == "" || opts.Consumer == "" {
		return nil, errors.New("redis: queue needs a group and a consumer name")
	}
	if opts.ClaimIdle <= 0 {
		opts.ClaimIdle = 30 * time.Second
	}
	if opts.MaxDeliveries <= 0 {
		opts.MaxDeliveries = 5
	}
	return &Queue{s: s, coll: collection, stream: s.EventStream(collection), dead: s.DeadLetterStream(collection), opts: opts}, nil
}

// ensureGroup creates the group (and the stream) if needed, reading from
// the stream's start.
func (q *Queue) ensureGroup(ctx context.Context) error {
	if q.groupReady {
		return nil
	}
	err := q.s.c.XGroupCreateMkStream(ctx, q.stream, q.opts.Group, "0").Err()
	if err != nil && !strings.HasPrefix(err.Error(), "BUSYGROUP") {
		return err
	}
	q.groupReady = true
	return nil
}

// deadScript moves entry ARGV[1] of stream KEYS[1] to the dead-letter
// stream KEYS[2] and acknowledges it for group ARGV[2].
// ARGV: 1 entry id, 2 group, 3 consumer, 4 deliveries.
var deadScript = goredis.NewScript(`
local e = redis.call('XRANGE', KEYS[1], ARGV[1], ARGV[1])
local f = {}
if e[1] then f = e[1][2] end
table.insert(f, 'stream_id') table.insert(f, ARGV[1])
table.insert(f, 'group') table.insert(f, ARGV[2])
table.insert(f, 'consumer') table.insert(f, ARGV[3])
table.insert(f, 'deliveries') table.insert(f, ARGV[4])
redis.call('XADD', KEYS[2], '*', unpack(f))
return redis.call('XACK', KEYS[1], ARGV[2], ARGV[1])
`)

// Read returns up to count entries for this consumer: first entries
// reclaimed from consumers idle for longer than ClaimIdle, then new ones,
// waiting up to block for new ones when there are none (block < 0: do not
// wait). Poison entries are moved to the dead-letter stream on the way.
// Entries must be acknowledged with Ack once handled.
func (q *Queue) Read(ctx context.Context, count int, block time.Duration) ([]Event, error) {
	const op = "redis.Queue.Read"
	if err := ctx.Err(); err != nil {
		return nil, ctxErr(op, err)
	}
	if err := q.ensureGroup(ctx); err != nil {
		return nil, q.s.fail(op, err)
	}
	c := q.s.c
	// Pending entries idle for too long: poison ones to the dead letters,
	// the others reclaimed.
	pend, err := c.XPendingExt(ctx, &goredis.XPendingExtArgs{
		Stream: q.stream, Group: q.opts.Group, Idle: q.opts.ClaimIdle, Start: "-", End: "+", Count: int64(count),
	}).Result()
	if err != nil {
		return nil, q.s.fail(op, err)
	}
	deliveries := map[string]int64{}
	for _, p := range pend {
		if p.RetryCount >= q.opts.MaxDeliveries {
			if err := deadScript.Run(ctx, c, []string{q.stream, q.dead}, p.ID, q.opts.Group, p.Consumer, p.RetryCount).Err(); err != nil {
				return nil, q.s.fail(op, err)
			}
			continue
		}
		deliveries[p.ID] = p.RetryCount + 1
	}
	var out []Event
	if len(deliveries) > 0 {
		msgs, _, err := c.XAutoClaim(ctx, &goredis.XAutoClaimArgs{
			Stream: q.stream, Group: q.opts.Group, Consumer: q.opts.Consumer,
			MinIdle: q.opts.ClaimIdle, Start: "0-0", Count: int64(count),
		}).Result()
		if err != nil {
			return nil, q.s.fail(op, err)
		}
		for _, m := range msgs {
			ev := toEvent(m)
			ev.Deliveries = deliveries[m.ID]
			if ev.Deliveries == 0 {
				ev.Deliveries = 1
			}
			out = append(out, ev)
		}
	}
	if len(out) >= count {
		return out, nil
	}
	streams, err := c.XReadGroup(ctx, &goredis.XReadGroupArgs{
		Group: q.opts.Group, Consumer: q.opts.Consumer, Streams: []string{q.stream, ">"},
		Count: int64(count - len(out)), Block: block,
	}).Result()
	if err != nil && !errors.Is(err, goredis.Nil) {
		return out, q.s.fail(op, err)
	}
	for _, st := range streams {
		for _, m := range st.Messages {
			ev := toEvent(m)
			ev.Deliveries = 1
			out = append(out, ev)
		}
	}
	return out, nil
}

func toEvent(m goredis.XMessage) Event {
	ev := Event{StreamID: m.ID}
	ev.ID, _ = m.Values["id"].(string)
	ev.Version, _ = m.Values["version"].(string)
	if tp, ok := m.Values["traceparent"].(string); ok {
		ev.Trace = map[string]string{"traceparent": tp}
		if ts, ok := m.Values["tracestate"].(string); ok {
			ev.Trace["tracestate"] = ts
		}
	}
	if s, ok := m.Values["date_added"].(string); ok {
		if us, err := strconv.ParseInt(s, 10, 64); err == nil {
			ev.DateAdded = microTime(us)
		}
	}
	return ev
}

// Ack acknowledges handled entries.
func (q *Queue) Ack(ctx context.Context, streamIDs ...string) error {
	if len(streamIDs) == 0 {
		return nil
	}
	if err := q.s.c.XAck(ctx, q.stream, q.opts.Group, streamIDs...).Err(); err != nil {
		return q.s.fail("redis.Queue.Ack", err)
	}
	return nil
}

// DeadLetter is one entry of a dead-letter stream.
type DeadLetter struct {
	DeadID   string // id in the dead-letter stream
	Event           // the original entry (StreamID: its id in the event stream; Deliveries: before it was given up)
	Group    string // the group that gave up on it
	Consumer string // the consumer that last had it
}

// DeadLetters lists up to count dead-lettered entries of collection after
// the dead-letter id after ("" from the start), oldest first.
func (s *Store) DeadLetters(ctx context.Context, collection, after string, count int64) ([]DeadLetter, error) {
	const op = "redis.DeadLetters"
	start := "-"
	if after != "" {
		start = "(" + after
	}
	msgs, err := s.c.XRangeN(ctx, s.DeadLetterStream(collection), start, "+", count).Result()
	if err != nil {
		return nil, s.fail(op, err)
	}
	out := make([]DeadLetter, 0, len(msgs))
	for _, m := range msgs {
		d := DeadLetter{DeadID: m.ID, Event: toEvent(m)}
		d.StreamID, _ = m.Values["stream_id"].(string)
		d.Group, _ = m.Values["group"].(string)
		d.Consumer, _ = m.Values["consumer"].(string)
		if n, ok := m.Values["deliveries"].(string); ok {
			d.Deliveries, _ = strconv.ParseInt(n, 10, 64)
		}
		out = append(out, d)
	}
	return out, nil
}

// TrimEvents bounds collection's event stream without dropping entries any
// consumer group has not acknowledged, and returns how many it removed.
func (s *Store) TrimEvents(ctx context.Context, collection string) (int64, error) {
	const op = "redis.TrimEvents"
	key := s.EventStream(collection)
	groups, err := s.c.XInfoGroups(ctx, key).Result()
	if err != nil {
		if strings.Contains(err.Error(), "no such key") {
			return 0, nil
		}
		return 0, s.fail(op, err)
	}
	if len(groups) == 0 {
		if s.eventMaxLen <= 0 {
			return 0, nil
		}
		n, err := s.c.XTrimMaxLenApprox(ctx, key, s.eventMaxLen, 0).Result()
		if err != nil {
			return 0, s.fail(op, err)
		}
		return n, nil
	}
	// The lowest id still needed: each group's oldest pending entry, or
	// the entry after its last delivered one.
	var keep string
	for _, g := range groups {
		need := nextID(g.LastDeliveredID)
		if g.Pending > 0 {
			p, err := s.c.XPending(ctx, key, g.Name).Result()
			if err != nil {
				return 0, s.fail(op, err)
			}
			if p.Lower != "" && lessID(p.Lower, need) {
				need = p.Lower
			}
		}
		if keep == "" || lessID(need, keep) {
			keep = need
		}
	}
	n, err := s.c.XTrimMinID(ctx, key, keep).Result()
	if err != nil {
		return 0, s.fail(op, err)
	}
	return n, nil
}

// parseID splits a stream id "ms-seq".
func parseID(id string) (uint64, uint64) {
	a, b, _ := strings.Cut(id, "-")
	ms, _ := strconv.ParseUint(a, 10, 64)
	seq, _ := strconv.ParseUint(b, 10, 64)
	return ms, seq
}

func lessID(a, b string) bool {
	am, as := parseID(a)
	bm, bs := parseID(b)
	return am < bm || (am == bm && as < bs)
}

func nextID(id string) string {
	ms, seq := parseID(id)
	return fmt.Sprintf("%d-%d", ms, seq+1)
}

// leaseScript takes or renews lease KEYS[1] for holder ARGV[1] for ARGV[2]
// milliseconds, unless another holder has it.
var leaseScript = goredis.NewScript(`
local cur = redis.call('GET', KEYS[1])
if cur == false or cur == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
`)

// Lease takes or renews the lease name for holder for ttl and reports
// whether holder has it: one holder at a time, until it stops renewing.
// Gateway replicas share fan-out work this way (fanout.Options.Lease).
func (s *Store) Lease(ctx context.Context, name, holder string, ttl time.Duration) (bool, error) {
	const op = "redis.Lease"
	if name == "" || holder == "" || ttl < time.Millisecond {
		return false, fmt.Errorf("%s: need a name, a holder and a ttl of at least 1ms", op)
	}
	n, err := leaseScript.Run(ctx, s.c, []string{s.prefix + ":lease:" + name}, holder, ttl.Milliseconds()).Int()
	if err != nil {
		return false, s.fail(op, err)
	}
	return n == 1, nil
}
