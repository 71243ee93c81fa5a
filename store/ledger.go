package store

import (
	"context"
	"time"

	"github.com/ctigate/ctigate/custody"
)

// Ledger is the custody ledger of a backend (see package custody). A
// backend that implements it also records, in the same atomic write as the
// change they describe:
//
//   - a received entry for each new object version AddObjects or
//     AddObjectsCheckpoint stores while the context carries an Actor
//     (WithActor), and none for versions reported as Existed;
//   - a published, redacted or withheld entry for each Decision given to
//     AddObjectsCheckpoint, in Decision order;
//   - a deleted entry for each version DeleteObject removes, with its hash
//     (withdrawn, with the route and reason, when the context carries a
//     RemovalWithdrawn; reason "expired" for RemovalExpired).
//
// Entries are numbered 1, 2, 3, … without gaps and chained by hash.
type Ledger interface {
	// AppendEntries appends entries (rejected, delivered, config-loaded,
	// checkpoint, …) atomically, in order, assigning Seq, Time (always),
	// Prev and Hash, and returns them as recorded. An entry that is not
	// Valid is Invalid and fails the whole write.
	AppendEntries(ctx context.Context, entries []custody.Entry) ([]custody.Entry, error)
	// LedgerEntries returns entries matching q in ascending Seq order.
	LedgerEntries(ctx context.Context, q LedgerQuery) ([]custody.Entry, error)
	// LedgerEntry returns the entry seq; NotFound if there is none.
	LedgerEntry(ctx context.Context, seq uint64) (custody.Entry, error)
	// LedgerHead returns the newest entry's seq, hash and time; the zero
	// Head when the ledger is empty.
	LedgerHead(ctx context.Context) (custody.Head, error)
}

// LedgerQuery selects ledger entries. Empty fields match everything.
type LedgerQuery struct {
	ObjectID   string // entries about this STIX id, or delivering it
	User, Org  string // the acting user, organisation
	Route      string
	Action     string
	Collection string
	From, To   time.Time // From <= Time < To (zero: unbounded)
	After      uint64    // only Seq > After (the paging cursor)
	Through    uint64    // only Seq <= Through (0: unbounded)
	Limit      int       // at most this many; <= 0 means DefaultLedgerLimit, capped at MaxLedgerLimit
}

// Limits of LedgerQuery.Limit.
const (
	DefaultLedgerLimit = 100
	MaxLedgerLimit     = 10000
)

// Match reports whether e matches q's filters (not its paging).
func (q *LedgerQuery) Match(e *custody.Entry) bool {
	if q.ObjectID != "" && !e.Touches(q.ObjectID) {
		return false
	}
	if (q.User != "" && e.User != q.User) || (q.Org != "" && e.Org != q.Org) || (q.Route != "" && e.Route != q.Route) ||
		(q.Action != "" && e.Action != q.Action) || (q.Collection != "" && e.Collection != q.Collection) {
		return false
	}
	if !q.From.IsZero() || !q.To.IsZero() {
		t, err := custody.ParseTime(e.Time)
		if err != nil {
			return false
		}
		if (!q.From.IsZero() && t.Before(q.From)) || (!q.To.IsZero() && !t.Before(q.To)) {
			return false
		}
	}
	return true
}

// Actor is who a write is made for: the authenticated user and their
// organisation. The ledger records it with the entries the write causes.
type Actor struct {
	User string
	Org  string
}

type actorKey struct{}

// WithActor returns ctx carrying a.
func WithActor(ctx context.Context, a Actor) context.Context {
	return context.WithValue(ctx, actorKey{}, a)
}

// ActorFrom returns the Actor ctx carries.
func ActorFrom(ctx context.Context) (Actor, bool) {
	a, ok := ctx.Value(actorKey{}).(Actor)
	return a, ok
}
