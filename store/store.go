// Package store defines the storage contract of the gateway: collections of
// STIX object versions kept as the producer's original bytes, read back in
// date_added order through stateless keyset cursors, and TAXII status
// resources. Backends live in sub-packages named for their technology.
package store

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/go-json-experiment/json"
)

// Object is one stored version of a STIX object.
type Object struct {
	ID          string    // STIX id, e.g. "indicator--…"
	Type        string    // STIX type, the part of ID before "--"
	SpecVersion string    // "2.1"
	Version     time.Time // modified, else created; zero when the object has neither (e.g. SCOs)
	DateAdded   time.Time // assigned by the store on first add; microsecond precision, UTC
	Raw         []byte    // the producer's original bytes; nil in manifest reads
	Hash        [32]byte  // SHA-256 of the RFC 8785 canonical form of Raw, given by the writer; returned with Raw (zero when unknown)
	Producer    string    // organisation of the user who submitted this version, given by the writer; returned with Raw ("" when unknown)
	// Leaf is the version's delivery leaf as a page with its bytes commits
	// to it (custody.PageLeaves.Leaf with Hash, under the store's own
	// DeliverySalter), when the store computed it as it wrote the version;
	// returned with Raw (zero when the store keeps none: the reader
	// computes it). Writers leave it zero.
	Leaf [32]byte
}

// VersionKind selects versions of an object (TAXII match[version]).
type VersionKind uint8

// Version selectors.
const (
	Last  VersionKind = iota // the newest version (highest Version)
	First                    // the oldest version
	All                      // every version
	At                       // the version whose Version equals At
)

// VersionMatch is one entry of match[version].
type VersionMatch struct {
	Kind VersionKind
	At   time.Time // for Kind == At
}

// Query selects object versions of one collection. The empty Query selects
// the last version of every object, from the start, with the backend's
// default limit.
type Query struct {
	AddedAfter   time.Time      // exclusive; zero means from the start
	Limit        int            // maximum versions per page; <= 0 means DefaultLimit
	Next         string         // cursor from Page.Next; "" starts at the beginning
	IDs          []string       // match[id]; empty matches every id
	Types        []string       // match[type]; empty matches every type
	Versions     []VersionMatch // match[version]; empty means {Last}
	SpecVersions []string       // match[spec_version]; empty matches every spec version
	WithoutRaw   bool           // leave Object.Raw nil (manifest reads)
	// MaxBytes, when positive, bounds the page by the bytes of its
	// objects' Raw as well as by Limit: versions are added in order while
	// their Raw bytes together stay within MaxBytes, and the first always
	// is (a version larger than MaxBytes makes a page of its own), so
	// that paging always moves on. A page that stopped short of Limit
	// this way, with more matches after it, has More set and Next at its
	// last version, exactly as a page cut by Limit; no version is lost
	// or repeated. Reads WithoutRaw are bounded by Limit only.
	MaxBytes int64
}

// FitBytes returns how many of objs, taken in order, a page bounded by
// maxBytes of Raw holds (Query.MaxBytes): as many as fit, and at least
// one. maxBytes <= 0 bounds nothing.
func FitBytes(objs []Object, maxBytes int64) int {
	if maxBytes <= 0 {
		return len(objs)
	}
	var n int64
	for i := range objs {
		n += int64(len(objs[i].Raw))
		if i > 0 && n > maxBytes {
			return i
		}
	}
	return len(objs)
}

// DefaultLimit is the page size used when Query.Limit is not set.
const DefaultLimit = 1000

// Page is one page of results in ascending date_added order.
type Page struct {
	Objects []Object
	More    bool   // further matching versions exist after this page
	Next    string // cursor for the next page; set whenever More is true
	// OneVersionEach: no object id of the collection had more than one
	// version stored when the page was read, so each version on it is
	// its id's only one. A backend that does not know leaves it false.
	OneVersionEach bool

	release func()   // see Release; nil when there is nothing to give back
	joined  [][]byte // see Joined
}

// WithJoined returns p with segs as its objects' bytes joined by commas
// (Joined); for backends that copy a page's bytes that way.
func (p Page) WithJoined(segs [][]byte) Page {
	p.joined = segs
	return p
}

// Joined returns the Raw of the page's objects joined by commas, as the
// consecutive segments of memory the backend copied them into: their
// concatenation is Raw[0] "," Raw[1] "," … Raw[n-1], the elements of a
// JSON array of the page, to be written without copying each object. It
// returns nil when the backend gave none, or when they no longer match
// Objects: every object's Raw must be the very bytes at its place in the
// segments (checked by address, so a page whose Objects were filtered,
// reordered or replaced since it was read never writes the segments).
func (p *Page) Joined() [][]byte {
	segs := p.joined
	if len(segs) == 0 || len(p.Objects) == 0 {
		return nil
	}
	si, off := 0, 0
	skipEnded := func() {
		for si < len(segs) && off == len(segs[si]) {
			si, off = si+1, 0
		}
	}
	for i := range p.Objects {
		if i > 0 {
			skipEnded()
			if si == len(segs) || segs[si][off] != ',' {
				return nil
			}
			off++
		}
		skipEnded()
		raw := p.Objects[i].Raw
		if len(raw) == 0 || si == len(segs) || len(segs[si])-off < len(raw) || &segs[si][off] != &raw[0] {
			return nil
		}
		off += len(raw)
	}
	skipEnded()
	if si != len(segs) {
		return nil
	}
	return segs
}

// WithRelease returns p with release as what Release calls; for backends
// that reuse a page's memory. release runs at most once, however many
// copies of the page call Release.
func (p Page) WithRelease(release func()) Page {
	p.release = sync.OnceFunc(release)
	return p
}

// Release gives the page's memory (the Objects slice and the bytes their
// Raw fields hold) back to the backend that read it, for its later
// pages. Nothing of the page may be used afterwards, from any copy of it:
// the same memory may already hold another reader's objects. Calling it
// is optional: a page never released is collected as usual.
func (p *Page) Release() {
	if p.release != nil {
		p.release()
		*p = Page{}
	}
}

// AddResult tells what happened to one object given to AddObjects.
type AddResult struct {
	DateAdded time.Time // the version's date_added (the original one if it existed)
	Existed   bool      // the same (id, version) was already stored; nothing changed
	Hash      [32]byte  // when Existed: the stored version's Hash, so a writer can tell a repeat from a conflicting copy
}

// Store is the storage contract every backend implements.
type Store interface {
	// AddObjects stores object versions in one collection atomically: either
	// all are stored or none. Each new version gets a date_added strictly
	// greater than every date_added already assigned in the collection, in
	// input order. Re-adding a stored (id, version) changes nothing and
	// reports Existed (the first copy wins; later bytes are ignored).
	// results[i] corresponds to objs[i].
	AddObjects(ctx context.Context, collection string, objs []Object) ([]AddResult, error)

	// AddObjectsCheckpoint is AddObjects into collection that also
	// records decisions in the custody ledger and sets the checkpoint
	// name to at, in the same atomic write: either the objects are stored,
	// the decisions recorded and the checkpoint moved, or none of it. objs
	// and decisions may be empty, to move the checkpoint alone. A consumer
	// of a collection's date_added order (fan-out) keeps its position this
	// way, so that a crash at any point neither loses nor repeats its work,
	// and each decision is recorded exactly once, iff its effect happened.
	//
	// The ledger is the only record of decisions: each is one published,
	// redacted or withheld entry (see Ledger), in decisions order, that
	// LedgerEntries reads back (with LedgerQuery.Actions). Every backend
	// therefore implements Ledger. An invalid decision (Decision.Validate)
	// is Invalid and fails the whole write.
	//
	// from is the checkpoint the caller read before the work it writes
	// (the zero time when none was set). When the stored checkpoint is no
	// longer from, another worker (a replica) has written work from there
	// first: nothing is written and the error is Conflict, so that work
	// done twice is recorded once; the caller reads the checkpoint again.
	AddObjectsCheckpoint(ctx context.Context, collection string, objs []Object, decisions []Decision, name string, from, at time.Time) ([]AddResult, error)

	// Checkpoint returns the time last set under name by
	// AddObjectsCheckpoint, or the zero time when none was set. Checkpoints
	// are durable and shared by every replica over the backend.
	Checkpoint(ctx context.Context, name string) (time.Time, error)

	// Objects returns one page of versions matching q, in ascending
	// date_added order. A Next cursor stays valid across restarts and on
	// any replica sharing the backend. A malformed cursor is Invalid.
	Objects(ctx context.Context, collection string, q Query) (Page, error)

	// DeleteObject removes the versions of id selected by versions and
	// specVersions (empty versions means All) and returns how many were
	// removed. Removing none is NotFound. The context says why
	// (WithRemoval; a deletion by default): unless the removal is
	// RemovalReleased (Tombstoned), each removed version leaves a
	// Tombstone in the collection, kept for good and indexed by the
	// version's date_added too (ResolveAdded), written in the same atomic
	// write.
	DeleteObject(ctx context.Context, collection, id string, versions []VersionMatch, specVersions []string) (int, error)

	// Tombstones returns up to limit (DefaultLimit when <= 0) tombstones
	// of collection with Removed after after, in ascending Removed
	// order, and whether more follow.
	Tombstones(ctx context.Context, collection string, after time.Time, limit int) ([]Tombstone, bool, error)

	// ResolveAdded returns, for each date_added in das, the version that
	// was added to collection at that instant (date_added is unique per
	// collection): the one stored, or the one removed since (from its
	// tombstone). out[i] answers das[i]; Found is false when no version
	// ever had that date_added (or it left by RemovalReleased). A delivery
	// record names its versions this way (see custody, Deliveries).
	ResolveAdded(ctx context.Context, collection string, das []time.Time) ([]AddedVersion, error)

	// PutStatus creates or replaces a status resource. A replacement
	// takes the new Status's Expires, which the writer therefore sets on
	// every write (see Status.Expires).
	PutStatus(ctx context.Context, s Status) error
	// Status returns a status resource; NotFound if there is none or it
	// has expired: from its Expires on, by the store's clock, a status
	// reads as an id never stored, also before the backend has removed
	// it.
	Status(ctx context.Context, id string) (Status, error)

	// Ping reports whether the backend is reachable and usable.
	Ping(ctx context.Context) error
	// Close releases the backend; it waits for operations under way.
	Close() error
}

// Removal kinds (Removal.Kind, Tombstone.Kind).
const (
	// RemovalDeleted: a user deleted the version (TAXII DELETE), which
	// retracts it: routes withdraw the copies they published from it.
	RemovalDeleted = "deleted"
	// RemovalWithdrawn: a route withdrew its copy (the source version was
	// retracted, superseded by a version the route withholds, or the
	// route's policy no longer publishes it).
	RemovalWithdrawn = "withdrawn"
	// RemovalExpired: retention removed the version. Housekeeping, not a
	// retraction (Retracts): its tombstone keeps the version provable,
	// but route copies stay and consumers are not told it was withdrawn.
	RemovalExpired = "expired"
	// RemovalReleased: fan-out removed an entry of its own bookkeeping (an
	// object that waited for references was decided). No tombstone.
	RemovalReleased = "released"
)

// Tombstoned reports whether a removal of kind leaves a tombstone: every
// removal from a collection readers may read (all but RemovalReleased),
// so that a delivered page stays provable after its versions left the
// collection (see ResolveAdded).
func Tombstoned(kind string) bool { return kind != RemovalReleased }

// Retracts reports whether a removal of kind retracts the version: routes
// withdraw what they published from it, and readers of the collection are
// told (deleted, withdrawn). An expired version is not retracted.
func Retracts(kind string) bool { return kind == RemovalDeleted || kind == RemovalWithdrawn }

// AddedVersion is what ResolveAdded tells of one date_added.
type AddedVersion struct {
	Found   bool
	Removed bool // no longer stored: known from its tombstone
	ID      string
	Version time.Time // zero when unversioned
	Hash    [32]byte  // canonical hash of the bytes stored (zero when unknown)
}

// Removal says why DeleteObject removes versions. It travels in the
// context (WithRemoval); without one, the removal is RemovalDeleted.
type Removal struct {
	Kind string
	// For RemovalWithdrawn: the route, its policy version, the source
	// collection of the version the copy came from, and why (a
	// policy.Reason or a withdrawal reason) — recorded in the custody
	// entry and the tombstone.
	Route, PolicyVersion, Source, Reason, Detail string
}

type removalKey struct{}

// WithRemoval returns ctx carrying r.
func WithRemoval(ctx context.Context, r Removal) context.Context {
	return context.WithValue(ctx, removalKey{}, r)
}

// RemovalFrom returns the Removal ctx carries, RemovalDeleted when none.
func RemovalFrom(ctx context.Context) Removal {
	r, ok := ctx.Value(removalKey{}).(Removal)
	if !ok || r.Kind == "" {
		r.Kind = RemovalDeleted
	}
	return r
}

// Tombstone is the durable record that an object version left a
// collection: by deletion, withdrawal or expiry (every removal but
// RemovalReleased, see Tombstoned). Fan-out follows the tombstones of
// inbound collections to withdraw what routes published from deleted
// versions; consumers read those of published collections to learn what
// was withdrawn. Both skip tombstones whose Kind does not retract the
// version (Retracts: expired). ResolveAdded reads them all, to prove what
// a delivered page held.
type Tombstone struct {
	ID        string
	Version   time.Time // the removed version (modified, else created)
	DateAdded time.Time // the removed version's date_added
	// Removed is when, on the collection's date_added clock: after every
	// date_added assigned before the removal and before every one
	// assigned after it, and unique among the collection's tombstones, so
	// that a reader can ask for what was removed since a date_added it
	// has seen.
	Removed  time.Time
	Kind     string   // RemovalDeleted, RemovalWithdrawn or RemovalExpired
	Reason   string   // for RemovalWithdrawn: why (Removal.Reason)
	Hash     [32]byte // the removed version's canonical hash (zero when unknown)
	Producer string   // the removed version's producing organisation ("" when unknown)
}

// EncodeTombstone and DecodeTombstone give backends one encoding of a
// tombstone (JSON; Removed is kept by the backend as the key).
func EncodeTombstone(t *Tombstone) []byte {
	j := tombstoneJSON{
		ID: t.ID, DateAdded: t.DateAdded.UnixMicro(), Kind: t.Kind,
		Reason: t.Reason, Hash: hex.EncodeToString(t.Hash[:]), Producer: t.Producer,
	}
	if !t.Version.IsZero() {
		j.Version = t.Version.UTC().Format(time.RFC3339Nano)
	}
	b, _ := json.Marshal(j)
	return b
}

// DecodeTombstone decodes what EncodeTombstone wrote; removed is the key.
func DecodeTombstone(b []byte, removed time.Time) (Tombstone, error) {
	var j tombstoneJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return Tombstone{}, fmt.Errorf("tombstone: %w", err)
	}
	t := Tombstone{
		ID: j.ID, DateAdded: time.UnixMicro(j.DateAdded).UTC(), Removed: removed.UTC(),
		Kind: j.Kind, Reason: j.Reason, Producer: j.Producer,
	}
	if j.Version != "" {
		v, err := time.Parse(time.RFC3339Nano, j.Version)
		if err != nil {
			return Tombstone{}, fmt.Errorf("tombstone version: %w", err)
		}
		t.Version = v.UTC()
	}
	if h, err := hex.DecodeString(j.Hash); err == nil && len(h) == 32 {
		copy(t.Hash[:], h)
	}
	return t, nil
}

type tombstoneJSON struct {
	ID        string `json:"id"`
	Version   string `json:"v,omitzero"`
	DateAdded int64  `json:"da"`
	Kind      string `json:"k"`
	Reason    string `json:"r,omitzero"`
	Hash      string `json:"h,omitzero"`
	Producer  string `json:"p,omitzero"`
}

// Decision actions (Decision.Action), the actions of their ledger entries
// (custody.Published, custody.Redacted, custody.Withheld).
const (
	ActionPublished = "published" // published as received
	ActionRedacted  = "redacted"  // published with properties removed (Decision.Removed)
	ActionWithheld  = "withheld"  // not published (Decision.Reason)
)

// DecisionActions returns the decision actions: the LedgerQuery.Actions
// that select the decisions among ledger entries.
func DecisionActions() []string { return []string{ActionPublished, ActionRedacted, ActionWithheld} }

// Decision is one policy decision as AddObjectsCheckpoint records it:
// what the gateway decided for one source object version and one route,
// under which policy version, and why. It is recorded as a custody ledger
// entry (package custody) whose Action is the decision's, written in the
// same transaction as the decision's effect; the entry's Seq and Time are
// the ledger's. Decisions carry hashes and metadata, never content.
type Decision struct {
	Route         string    // the route's name
	Collection    string    // the id of the collection the route publishes into
	PolicyVersion string    // the route's policy version
	ObjectID      string    // STIX id of the source object
	ObjectVersion time.Time // the source version (modified, else created); zero when unversioned
	Source        string    // the id of the collection the object was read from
	Action        string    // ActionPublished, ActionRedacted or ActionWithheld
	Reason        string    // why withheld (a policy.Reason); empty otherwise
	Detail        string    // for people
	Removed       []string  // for ActionRedacted: the selectors (STIX 2.1 §7.2.3.1) of what was removed
	// OriginalSHA256 is the canonical hash of the object as received
	// (zero when it could not be computed); PublishedSHA256 that of what
	// was published (zero when withheld).
	OriginalSHA256, PublishedSHA256 [32]byte
}

// MaxNameLen bounds collection and checkpoint names, and a Decision's
// ObjectID and Route.
const MaxNameLen = 1024

// ValidName reports why name cannot name a collection or checkpoint (what
// says which): empty or longer than MaxNameLen. Backends refuse such a
// name as Invalid.
func ValidName(what, name string) error {
	switch {
	case name == "":
		return fmt.Errorf("empty %s name", what)
	case len(name) > MaxNameLen:
		return fmt.Errorf("%s name too long", what)
	}
	return nil
}

// MaxFieldLen bounds an Object's Type and SpecVersion.
const MaxFieldLen = 256

// Validate reports why o cannot be stored: an empty or overlong id, an
// overlong type or spec_version, a spec_version holding ',' or ';' (no
// STIX spec_version does), or no bytes. Every backend refuses such an
// object as Invalid, the same way.
func (o *Object) Validate() error {
	switch {
	case o.ID == "":
		return errors.New("empty id")
	case len(o.ID) > MaxNameLen:
		return errors.New("id too long")
	case len(o.Type) > MaxFieldLen || len(o.SpecVersion) > MaxFieldLen:
		return errors.New("type or spec_version too long")
	case strings.ContainsAny(o.SpecVersion, ",;"):
		return errors.New("spec_version contains ',' or ';'")
	case len(o.Raw) == 0:
		return errors.New("no bytes")
	}
	return nil
}

// Validate reports why d cannot be recorded: an empty or overlong object
// id or route, or an unknown action. Backends refuse such a decision as
// Invalid.
func (d *Decision) Validate() error {
	switch {
	case d.ObjectID == "":
		return errors.New("empty object id")
	case len(d.ObjectID) > MaxNameLen:
		return errors.New("object id too long")
	case d.Route == "":
		return errors.New("empty route")
	case len(d.Route) > MaxNameLen:
		return errors.New("route name too long")
	}
	switch d.Action {
	case ActionPublished, ActionRedacted, ActionWithheld:
	default:
		return fmt.Errorf("unknown action %q", d.Action)
	}
	return nil
}

// ValidateDecisions reports why a decision of ds cannot be recorded,
// naming it by its index; nil when every one can.
func ValidateDecisions(ds []Decision) error {
	for i := range ds {
		if err := ds[i].Validate(); err != nil {
			return fmt.Errorf("decision %d: %v", i, err)
		}
	}
	return nil
}

// StatusAdder is a store that writes an envelope's status resource in the
// same durable write as its objects: one commit for both where two would
// each wait for their own (the embedded store; with small envelopes from
// many producers the commits are what ingest waits for). status builds the
// status from the objects' results; it may run more than once (a shared
// write retried alone), and the status of its last run is the one stored.
// A wrapper whose store has no such write returns a ctigate.Unsupported
// error without writing anything; the caller then writes the two apart.
type StatusAdder interface {
	AddObjectsStatus(ctx context.Context, collection string, objs []Object, status func([]AddResult) Status) ([]AddResult, error)
}

// Status is a TAXII status resource, with the fields the gateway needs to
// authorise access to it.
type Status struct {
	ID               string
	APIRoot          string
	Collection       string
	Owner            string // user who made the request
	Status           string // "pending" or "complete"
	RequestTimestamp time.Time
	TotalCount       int
	Successes        []StatusDetail
	Failures         []StatusDetail
	Pendings         []StatusDetail
	// Expires is when the status resource expires; the zero time keeps
	// it until it is replaced. The gateway sets it to the time the
	// status is complete plus the configured status_retention (TAXII 2.1
	// asks for at least 24 hours). The backend removes an expired status
	// by itself: Redis with the key's TTL, bbolt by a sweep
	// (SweepStatuses, which the gateway runs every minute).
	Expires time.Time
}

// StatusDetail is one entry of a status resource's successes, failures or
// pendings.
type StatusDetail struct {
	ID      string
	Version string
	Message string
}

// EachVersion calls fn for every version collection holds, raw bytes
// included, in date_added order, a page at a time (reading a collection
// of millions without holding it).
func EachVersion(ctx context.Context, s Store, collection string, fn func(Object) error) error {
	q := Query{Versions: []VersionMatch{{Kind: All}}, Limit: DefaultLimit, MaxBytes: 8 << 20}
	for {
		p, err := s.Objects(ctx, collection, q)
		if err != nil {
			return err
		}
		for _, o := range p.Objects {
			if err := fn(o); err != nil {
				return err
			}
		}
		if !p.More {
			return nil
		}
		q.Next = p.Next
	}
}
