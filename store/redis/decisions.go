package redis

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
	goredis "github.com/redis/go-redis/v9"

	"github.com/ctigate/ctigate"
	"github.com/ctigate/ctigate/store"
)

// decisionJSON is the stored form of a store.Decision (Seq is the field
// name in P:{d}:log).
type decisionJSON struct {
	Time            int64    `json:"t"`
	Route           string   `json:"r"`
	Collection      string   `json:"c"`
	PolicyVersion   string   `json:"pv"`
	ObjectID        string   `json:"id"`
	ObjectVersion   string   `json:"v,omitempty"` // RFC 3339 with nanoseconds; "" when unversioned
	Source          string   `json:"s"`
	Action          string   `json:"a"`
	Reason          string   `json:"why,omitempty"`
	Detail          string   `json:"d,omitempty"`
	Removed         []string `json:"rm,omitempty"`
	OriginalSHA256  []byte   `json:"h0,omitempty"`
	PublishedSHA256 []byte   `json:"h1,omitempty"`
}

func hashBytes(h [32]byte) []byte {
	if h == ([32]byte{}) {
		return nil
	}
	return h[:]
}

// encodeDecisions returns a decision batch: the JSON array of ds, each
// with its time (now when zero).
func encodeDecisions(ds []store.Decision, now time.Time) (string, error) {
	out := make([]decisionJSON, len(ds))
	for i := range ds {
		d := &ds[i]
		if err := d.Validate(); err != nil {
			return "", fmt.Errorf("decision %d: %v", i, err)
		}
		t := d.Time
		if t.IsZero() {
			t = now
		}
		v := ""
		if !d.ObjectVersion.IsZero() {
			v = d.ObjectVersion.UTC().Format(time.RFC3339Nano)
		}
		out[i] = decisionJSON{
			Time: t.UnixNano(), Route: d.Route, Collection: d.Collection, PolicyVersion: d.PolicyVersion,
			ObjectID: d.ObjectID, ObjectVersion: v, Source: d.Source, Action: d.Action, Reason: d.Reason,
			Detail: d.Detail, Removed: d.Removed,
			OriginalSHA256: hashBytes(d.OriginalSHA256), PublishedSHA256: hashBytes(d.PublishedSHA256),
		}
	}
	b, err := json.Marshal(out)
	if err != nil {
		return "", err
	}
	return string(b), nil
}

func decodeDecision(seq uint64, s string) (store.Decision, error) {
	var j decisionJSON
	if err := json.Unmarshal([]byte(s), &j); err != nil {
		return store.Decision{}, err
	}
	d := store.Decision{
		Seq: seq, Time: time.Unix(0, j.Time).UTC(), Route: j.Route, Collection: j.Collection,
		PolicyVersion: j.PolicyVersion, ObjectID: j.ObjectID, Source: j.Source, Action: j.Action,
		Reason: j.Reason, Detail: j.Detail, Removed: j.Removed,
	}
	if j.ObjectVersion != "" {
		v, err := time.Parse(time.RFC3339Nano, j.ObjectVersion)
		if err != nil {
			return d, err
		}
		d.ObjectVersion = v.UTC()
	}
	copy(d.OriginalSHA256[:], j.OriginalSHA256)
	copy(d.PublishedSHA256[:], j.PublishedSHA256)
	return d, nil
}

// numberScript numbers one pending batch into the global record, once.
//
// KEYS: 1 seq, 2 log, 3 ap, then 2 per decision: its object index, its
// route index. ARGV: 1 collection, 2 batch number, then each decision's
// JSON.
var numberScript = goredis.NewScript(`
local done = tonumber(redis.call('HGET', KEYS[3], ARGV[1]) or '0')
local b = tonumber(ARGV[2])
if done >= b then return 0 end
for k = 3, #ARGV do
  local s = redis.call('INCR', KEYS[1])
  redis.call('HSET', KEYS[2], s, ARGV[k])
  redis.call('ZADD', KEYS[4 + 2*(k-3)], s, s)
  redis.call('ZADD', KEYS[5 + 2*(k-3)], s, s)
end
redis.call('HSET', KEYS[3], ARGV[1], ARGV[2])
return #ARGV - 2
`)

// popScript removes the head of a pending list if it is batch ARGV[1].
var popScript = goredis.NewScript(`
local h = redis.call('LINDEX', KEYS[1], 0)
if h and string.sub(h, 1, #ARGV[1] + 1) == ARGV[1] .. ':' then redis.call('LPOP', KEYS[1]) return 1 end
return 0
`)

// moveDecisions numbers the pending decision batches of coll, in order.
func (s *Store) moveDecisions(ctx context.Context, coll string) error {
	pd := s.collKey(coll, "pd")
	for {
		heads, err := s.c.LRange(ctx, pd, 0, 15).Result()
		if err != nil {
			return err
		}
		if len(heads) == 0 {
			return nil
		}
		for _, h := range heads {
			bs, payload, ok := strings.Cut(h, ":")
			if !ok {
				return fmt.Errorf("malformed pending decision batch in %s", pd)
			}
			var ds []jsontext.Value
			if err := json.Unmarshal([]byte(payload), &ds); err != nil {
				return fmt.Errorf("pending decision batch %s of %s: %w", bs, coll, err)
			}
			keys := make([]string, 3, 3+2*len(ds))
			keys[0], keys[1], keys[2] = s.decKey("seq"), s.decKey("log"), s.decKey("ap")
			args := make([]any, 2, 2+len(ds))
			args[0], args[1] = coll, bs
			for _, raw := range ds {
				var who struct {
					Route    string `json:"r"`
					ObjectID string `json:"id"`
				}
				if err := json.Unmarshal(raw, &who); err != nil {
					return err
				}
				keys = append(keys, s.decKey("o:"+who.ObjectID), s.decKey("r:"+who.Route))
				args = append(args, string(raw))
			}
			if err := numberScript.Run(ctx, s.c, keys, args...).Err(); err != nil {
				return err
			}
			if err := popScript.Run(ctx, s.c, []string{pd}, bs).Err(); err != nil {
				return err
			}
		}
	}
}

// moveAllDecisions numbers the pending decisions of every collection.
func (s *Store) moveAllDecisions(ctx context.Context) error {
	colls, err := s.c.SMembers(ctx, s.decKey("src")).Result()
	if err != nil {
		return err
	}
	for _, c := range colls {
		if err := s.moveDecisions(ctx, c); err != nil {
			return err
		}
	}
	return nil
}

// Decisions returns recorded decisions matching q in ascending Seq order.
func (s *Store) Decisions(ctx context.Context, q store.DecisionQuery) ([]store.Decision, error) {
	const op = "redis.Decisions"
	limit := q.Limit
	if limit <= 0 {
		limit = store.DefaultDecisionLimit
	}
	limit = min(limit, store.MaxDecisionLimit)
	if err := ctx.Err(); err != nil {
		return nil, ctxErr(op, err)
	}
	if err := s.moveAllDecisions(ctx); err != nil {
		return nil, s.fail(op, err)
	}
	var idx string
	switch {
	case q.ObjectID != "":
		idx = s.decKey("o:" + q.ObjectID)
	case q.Route != "":
		idx = s.decKey("r:" + q.Route)
	}
	var out []store.Decision
	after := q.After
	for len(out) < limit {
		var seqs []string
		if idx == "" {
			last, err := s.c.Get(ctx, s.decKey("seq")).Uint64()
			if err != nil && !errors.Is(err, goredis.Nil) {
				return nil, s.fail(op, err)
			}
			for n := after + 1; n <= last && n > after && len(seqs) < limit-len(out); n++ {
				seqs = append(seqs, strconv.FormatUint(n, 10))
			}
		} else {
			var err error
			seqs, err = s.c.ZRangeArgs(ctx, goredis.ZRangeArgs{
				Key: idx, Start: "(" + strconv.FormatUint(after, 10), Stop: "+inf", ByScore: true, Count: int64(limit),
			}).Result()
			if err != nil {
				return nil, s.fail(op, err)
			}
		}
		if len(seqs) == 0 {
			break
		}
		vals, err := s.c.HMGet(ctx, s.decKey("log"), seqs...).Result()
		if err != nil {
			return nil, s.fail(op, err)
		}
		for i, v := range vals {
			seq, _ := strconv.ParseUint(seqs[i], 10, 64)
			after = seq
			str, ok := v.(string)
			if !ok {
				continue
			}
			d, err := decodeDecision(seq, str)
			if err != nil {
				return nil, ctigate.E(op, ctigate.Internal, fmt.Errorf("decision %d: %w", seq, err))
			}
			if (q.ObjectID != "" && d.ObjectID != q.ObjectID) || (q.Route != "" && d.Route != q.Route) {
				continue
			}
			if len(out) < limit {
				out = append(out, d)
			}
		}
		if idx == "" || len(seqs) < limit {
			break
		}
	}
	return out, nil
}
