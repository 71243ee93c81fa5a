package redis

import (
	"bytes"
	"compress/flate"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/go-json-experiment/json"
	goredis "github.com/redis/go-redis/v9"

	"github.com/ctigate/ctigate"
	"github.com/ctigate/ctigate/store"
)

type statusJSON struct {
	ID               string       `json:"id"`
	APIRoot          string       `json:"api_root"`
	Collection       string       `json:"collection"`
	Owner            string       `json:"owner"`
	Status           string       `json:"status"`
	RequestTimestamp time.Time    `json:"request_timestamp"`
	TotalCount       int          `json:"total_count"`
	Successes        []detailJSON `json:"successes,omitempty"`
	Failures         []detailJSON `json:"failures,omitempty"`
	Pendings         []detailJSON `json:"pendings,omitempty"`
	Expires          time.Time    `json:"expires,omitzero"`
}

type detailJSON struct {
	ID      string `json:"id,omitempty"`
	Version string `json:"v,omitempty"`
	Message string `json:"m,omitempty"`
}

func toJSON(ds []store.StatusDetail) []detailJSON {
	out := make([]detailJSON, len(ds))
	for i, d := range ds {
		out[i] = detailJSON(d)
	}
	return out
}

func fromJSON(ds []detailJSON) []store.StatusDetail {
	if len(ds) == 0 {
		return nil
	}
	out := make([]store.StatusDetail, len(ds))
	for i, d := range ds {
		out[i] = store.StatusDetail(d)
	}
	return out
}

func (s *Store) statusKey(id string) string { return s.prefix + ":st:" + id }

// A status of more than packMin bytes of JSON is stored deflated, after
// the byte packedStatus (JSON starts with '{'): an envelope's status
// lists every object with its id, version and hash, and is kept for
// days. maxStatusJSON bounds what a stored status inflates to.
const (
	packedStatus  = 1
	packMin       = 1024
	maxStatusJSON = 256 << 20
)

var statusWriters = sync.Pool{New: func() any {
	w, _ := flate.NewWriter(nil, flate.BestSpeed)
	return w
}}

func packStatus(b []byte) []byte {
	if len(b) <= packMin {
		return b
	}
	var out bytes.Buffer
	out.Grow(len(b) / 2)
	out.WriteByte(packedStatus)
	w := statusWriters.Get().(*flate.Writer)
	w.Reset(&out)
	// Writes to a bytes.Buffer do not fail.
	_, _ = w.Write(b)
	_ = w.Close()
	statusWriters.Put(w)
	return out.Bytes()
}

func unpackStatus(b []byte) ([]byte, error) {
	if len(b) == 0 || b[0] != packedStatus {
		return b, nil
	}
	r := flate.NewReader(bytes.NewReader(b[1:]))
	defer r.Close()
	out, err := io.ReadAll(io.LimitReader(r, maxStatusJSON+1))
	if err != nil {
		return nil, err
	}
	if len(out) > maxStatusJSON {
		return nil, errors.New("inflates past the bound")
	}
	return out, nil
}

// PutStatus creates or replaces a status resource. A status with Expires
// is written with a TTL in the same command (SET … PX), the time left
// until Expires by the store's clock, so that Redis removes it by itself;
// a replacement's TTL replaces the earlier one (none when it has no
// Expires). A status that has already expired is not written, and an
// earlier one of its id is deleted.
func (s *Store) PutStatus(ctx context.Context, st store.Status) error {
	const op = "redis.PutStatus"
	if st.ID == "" {
		return ctigate.E(op, ctigate.Invalid, "status without id")
	}
	if len(st.ID) > maxIDLen {
		return ctigate.E(op, ctigate.Invalid, "status id too long")
	}
	if err := ctx.Err(); err != nil {
		return ctxErr(op, err)
	}
	b, err := json.Marshal(statusJSON{
		ID: st.ID, APIRoot: st.APIRoot, Collection: st.Collection, Owner: st.Owner, Status: st.Status,
		RequestTimestamp: st.RequestTimestamp, TotalCount: st.TotalCount,
		Successes: toJSON(st.Successes), Failures: toJSON(st.Failures), Pendings: toJSON(st.Pendings),
		Expires: st.Expires,
	})
	if err != nil {
		return ctigate.E(op, ctigate.Internal, err)
	}
	b = packStatus(b)
	var ttl time.Duration
	if !st.Expires.IsZero() {
		ttl = st.Expires.Sub(s.clock())
		if ttl <= 0 {
			if err := s.c.Del(ctx, s.statusKey(st.ID)).Err(); err != nil {
				return s.fail(op, err)
			}
			return nil
		}
		// Whole milliseconds (PX), rounded up: never before Expires.
		ttl = (ttl + time.Millisecond - 1).Truncate(time.Millisecond)
	}
	if err := s.c.Set(ctx, s.statusKey(st.ID), b, ttl).Err(); err != nil {
		return s.fail(op, err)
	}
	return nil
}

// Status returns a status resource; NotFound if there is none or it has
// expired by the store's clock (also while its key's TTL, counted by
// Redis's clock, has not yet run out).
func (s *Store) Status(ctx context.Context, id string) (store.Status, error) {
	const op = "redis.Status"
	if id == "" || len(id) > maxIDLen {
		return store.Status{}, ctigate.E(op, ctigate.NotFound, "no such status")
	}
	if err := ctx.Err(); err != nil {
		return store.Status{}, ctxErr(op, err)
	}
	b, err := s.c.Get(ctx, s.statusKey(id)).Bytes()
	if errors.Is(err, goredis.Nil) {
		return store.Status{}, ctigate.E(op, ctigate.NotFound, "no such status")
	}
	if err != nil {
		return store.Status{}, s.fail(op, err)
	}
	var j statusJSON
	b, err = unpackStatus(b)
	if err == nil {
		err = json.Unmarshal(b, &j)
	}
	if err != nil {
		return store.Status{}, ctigate.E(op, ctigate.Internal, fmt.Errorf("status %s: %w", id, err))
	}
	if !j.Expires.IsZero() && !s.clock().Before(j.Expires) {
		return store.Status{}, ctigate.E(op, ctigate.NotFound, "no such status")
	}
	return store.Status{
		ID: j.ID, APIRoot: j.APIRoot, Collection: j.Collection, Owner: j.Owner, Status: j.Status,
		RequestTimestamp: j.RequestTimestamp, TotalCount: j.TotalCount,
		Successes: fromJSON(j.Successes), Failures: fromJSON(j.Failures), Pendings: fromJSON(j.Pendings),
		Expires: j.Expires,
	}, nil
}
