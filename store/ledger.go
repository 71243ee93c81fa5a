package store

import (
	"context"
	"slices"
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
	Actions    []string // entries whose action is one of these (empty: any)
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
	if len(q.Actions) > 0 && !slices.Contains(q.Actions, e.Action) {
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

// Deliveries is how a backend records deliveries by reference (see
// custody, "Deliveries"): the ledger entry names a range of the
// collection's date_added order and the Merkle root of the page's items;
// the page's manifest (the date_added of each item, in page order,
// custody.EncodeManifest) is kept once per (collection, items root), so
// that reading the same page again adds only the entry.
type Deliveries interface {
	// RecordDelivery appends the delivered entry e, storing manifest
	// under (e.Collection, e.ItemsRoot) unless it is there already, in
	// one atomic write or the manifest first: no entry without its
	// manifest. It returns the entry as recorded.
	RecordDelivery(ctx context.Context, e custody.Entry, manifest []byte) (custody.Entry, error)
	// Manifest returns the manifest stored under (collection, root);
	// NotFound when there is none.
	Manifest(ctx context.Context, collection, root string) ([]byte, error)
	// DeliverySalter returns the Salter of the items' salts, whose secret
	// key the backend keeps (made on first use, the same for every
	// replica).
	DeliverySalter(ctx context.Context) (*custody.Salter, error)
}

// LedgerIndex is the index a backend keeps over its ledger: the Merkle
// tree of the entries (RFC 9162, as golang.org/x/mod/sumdb/tlog stores
// it), the entries about each object, and the delivered entries by the
// date_added range of their pages. It is built behind the chain by
// IndexLedger (the checkpointer runs it before signing), in order, and
// every write is idempotent, so replicas may build it concurrently.
type LedgerIndex interface {
	// IndexedThrough returns the seq through which the index is built.
	IndexedThrough(ctx context.Context) (uint64, error)
	// WriteIndex writes b and moves IndexedThrough from from to b.Through
	// in one atomic write. When IndexedThrough is no longer from, another
	// process indexed first: nothing is written and the error is
	// Conflict.
	WriteIndex(ctx context.Context, from uint64, b *IndexBatch) error
	// TreeHashes returns the stored tree hashes at the given storage
	// indexes (tlog.StoredHashIndex); NotFound for one not written.
	TreeHashes(ctx context.Context, indexes []int64) ([][32]byte, error)
	// DeliveriesContaining returns the seqs of the indexed delivered
	// entries of collection whose range [first_added, last_added] holds
	// at, ascending, at most limit after after.
	DeliveriesContaining(ctx context.Context, collection string, at time.Time, after uint64, limit int) ([]uint64, error)
}

// Memos keep small values derived from the ledger beside it, so that a
// process starting need not replay the whole ledger to recompute them.
// A memo is not evidence: whoever reads one checks what it claims
// against the ledger (its hash-chained entries) before relying on it.
type Memos interface {
	// Memo returns the value stored under name, nil when there is none.
	Memo(ctx context.Context, name string) ([]byte, error)
	// PutMemo stores v under name, replacing what was there.
	PutMemo(ctx context.Context, name string, v []byte) error
}

// MaxMemoBytes bounds a memo's value.
const MaxMemoBytes = 1 << 20

// IndexBatch is the index of the entries after IndexedThrough through
// Through.
type IndexBatch struct {
	Through    uint64
	TreeStart  int64      // storage index of Tree[0]
	Tree       [][32]byte // the tree hashes to store, from TreeStart on
	Objects    []ObjectRef
	Deliveries []DeliveryRef
}

// ObjectRef indexes the entry Seq under the object id it is about.
type ObjectRef struct {
	ID  string
	Seq uint64
}

// DeliveryRef indexes the delivered entry Seq of Collection under its
// range.
type DeliveryRef struct {
	Collection  string
	First, Last time.Time
	Seq         uint64
}
