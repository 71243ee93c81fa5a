package gateway

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/ctigate/ctigate"
	"github.com/ctigate/ctigate/custody"
	"github.com/ctigate/ctigate/policy"
	"github.com/ctigate/ctigate/stix"
	"github.com/ctigate/ctigate/store"
	"github.com/ctigate/ctigate/telemetry"
)

// Span names of one ingest (children of the request's span).
const (
	SpanDecode    = "stix.decode"           // envelope decoding and per-object validation
	SpanMarkings  = "stix.resolve_markings" // marking resolution, canonical hash, route guard
	SpanStoreAdd  = "store.add_objects"     // the inbound write (with the status resource on a store.StatusAdder)
	SpanStoreStat = "store.put_status"      // the status resource, when not written with the objects
)

var (
	attrObjects = attribute.Key("ctigate.objects")
	// attrStatus is set on store.add_objects when the status resource was
	// written in the same write (store.StatusAdder).
	attrStatus = attribute.Key("ctigate.status_stored")
)

// IngestStore is what ingest needs of the store.
type IngestStore interface {
	AddObjects(ctx context.Context, collection string, objs []store.Object) ([]store.AddResult, error)
	Objects(ctx context.Context, collection string, q store.Query) (store.Page, error)
	PutStatus(ctx context.Context, s store.Status) error
}

// Ledger is where ingest records what it refuses.
type Ledger interface {
	AppendEntries(ctx context.Context, entries []custody.Entry) ([]custody.Entry, error)
}

// Ingester takes envelopes into collections: decode and validate, resolve
// markings with the submitting organisation's registry, hash, hold writes
// into a route's collection to the route, store with the custody record,
// and write the receipts (a TAXII status). The HTTP layer calls it; so
// will every other way objects come in.
type Ingester struct {
	Store    IngestStore
	Ledger   Ledger // nil: rejections are not recorded
	Markings *stix.Markings
	// Routes are the routes by the id of the collection each publishes
	// into: a direct write there must be one the route would publish
	// unchanged.
	Routes map[string]*policy.Route
	Clock  func() time.Time
	Tracer trace.Tracer
	// StatusRetention is how long the status resource of an ingest is
	// kept once it is complete (store.Status.Expires); zero keeps it
	// until it is replaced.
	StatusRetention time.Duration
	// Limits bound what one object may cost (stix.Limits): an object over
	// one is refused on its own, its status failure naming the limit and
	// its setting. The zero Limits bounds nothing.
	Limits stix.Limits
	// Stored, when set, is called with the request's context and the
	// results after new versions are stored (to wake fan-out and link
	// its spans).
	Stored func(ctx context.Context, collection string, res []store.AddResult)
}

// Actor is who submits: the authenticated user and organisation. It
// decides what custody records and whose marking definitions apply.
type Actor = store.Actor

// Target is the collection an envelope is posted to.
type Target struct {
	APIRoot    string
	Collection string // its id
}

// Outcome is what an ingest did, for the caller's metrics.
type Outcome struct {
	Status   store.Status
	Received int            // objects in the envelope
	Rejected map[string]int // refusals by kind
	// Failed is the store operation that failed ("add_objects",
	// "put_status", "ledger"), if one did: with an error, or with
	// Unrecorded.
	Failed string
	// Unrecorded is what could not be written after the objects were
	// stored: the ledger entries of the conflicts or the status resource.
	// The ingest stands (Status lists the stored objects as successes,
	// and Ingest returns no error); the caller logs it.
	Unrecorded error
}

// Ingest takes the envelope body posted by actor into target. Invalid
// objects fail only themselves; the status resource is stored and
// returned (complete). An error means none of the envelope's objects was
// stored (the store's writes are atomic). Once they are, the ingest
// succeeds: a record that cannot be written after them (the conflicts'
// ledger entries, the status resource: say, the disk is full) is
// reported in Outcome.Unrecorded, not as an error that would tell the
// client its objects were not stored. Only an envelope of which no
// object was admitted fails when its status cannot be stored, since the
// status is then all it leaves. On a store.StatusAdder (the embedded
// store) the objects and their status are one write, so neither is
// stored without the other.
func (in *Ingester) Ingest(ctx context.Context, actor Actor, target Target, body []byte) (Outcome, error) {
	tracer := in.Tracer
	if tracer == nil {
		tracer = noop.NewTracerProvider().Tracer("")
	}
	received := in.Clock().UTC()
	_, span := tracer.Start(ctx, SpanDecode)
	items, err := stix.DecodeEnvelopeLimited(body, in.Limits)
	span.SetAttributes(attrObjects.Int(len(items)))
	telemetry.EndSpan(span, err)
	if err != nil {
		return Outcome{}, err
	}
	out := Outcome{Received: len(items), Rejected: map[string]int{}}
	st := store.Status{
		ID:               newStatusID(),
		APIRoot:          target.APIRoot,
		Collection:       target.Collection,
		Owner:            actor.User,
		Status:           "complete",
		RequestTimestamp: received,
		TotalCount:       len(items),
	}
	markings := in.Markings.Of(actor.Org)
	// Marking definitions join the organisation's registry first, so that
	// an object may refer to one defined later in the same envelope (as
	// the dry run and fan-out read them).
	refused := map[int]error{}
	_, span = tracer.Start(ctx, SpanMarkings)
	for i := range items {
		if it := &items[i]; it.Err == nil && it.Object.Type == "marking-definition" {
			if err := markings.Add(it.Raw); err != nil && ctigate.KindOf(err) != ctigate.Unsupported {
				refused[i] = err
			}
		}
	}
	guard := in.newRouteGuard(ctx, target.Collection, actor.Org)
	rejected := rejections{actor: actor, collection: target.Collection, status: st.ID} // what the ledger records of the failures
	valid := 0                                                                         // sized by the valid elements, not by the envelope (which may be junk)
	for i := range items {
		if items[i].Err == nil {
			valid++
		}
	}
	objs := make([]store.Object, 0, valid)
	index := make([]int, 0, valid)    // each object's position in the envelope
	notes := make([]string, 0, valid) // how the gateway read each object's markings
	reject := func(it *stix.Item, err error) {
		if len(st.Failures) < MaxListedFailures {
			st.Failures = append(st.Failures, store.StatusDetail{ID: failureID(it), Version: it.Version, Message: ctigate.MessageOf(err)})
		}
		kind := ctigate.KindOf(err).String()
		out.Rejected[kind]++
		rejected.add(it, kind, err)
	}
	for i := range items {
		it := &items[i]
		if it.Err == nil {
			it.Err = refused[i]
		}
		if it.Err != nil {
			reject(it, it.Err)
			continue
		}
		o, note, err := admit(it, markings, guard)
		if err != nil {
			reject(it, err)
			continue
		}
		o.Producer = actor.Org
		objs = append(objs, o)
		index = append(index, it.Index)
		notes = append(notes, note)
	}
	span.End()
	// Rejections are recorded before what is stored, so that they precede
	// the decisions fan-out makes about the rest of the envelope.
	if in.Ledger != nil && rejected.n > 0 {
		if _, err := in.Ledger.AppendEntries(ctx, rejected.entries()); err != nil {
			return out, err
		}
	}
	// receipt makes the status resource from the store's results: the
	// producer's receipts, and conflicts as failures. It may run more than
	// once (store.StatusAdder); each run starts again from base.
	base := st
	var conflicts rejections
	nConflicts := 0
	receipt := func(res []store.AddResult) store.Status {
		st := base
		st.Failures = slices.Clip(base.Failures)
		conflicts = rejections{actor: actor, collection: target.Collection, status: st.ID}
		nConflicts = 0
		for j, r := range res {
			o := &objs[j]
			d := store.StatusDetail{ID: o.ID, Version: VersionString(&store.Object{Version: o.Version, DateAdded: r.DateAdded})}
			// The message is the producer's receipt: how the gateway read
			// the markings, and the SHA-256 of the RFC 8785 canonical form
			// of what is stored. The collection holds only the actor's
			// organisation's objects (config.Validate), so a repeat or a
			// conflict is with the organisation's own submission.
			switch {
			case !r.Existed:
				d.Message = fmt.Sprintf("added; %s; sha256 %x", notes[j], o.Hash)
			case r.Hash == o.Hash || r.Hash == ([32]byte{}):
				d.Message = fmt.Sprintf("already stored; %s; sha256 %x", notes[j], o.Hash)
			default:
				// Same id and modified, different content: STIX requires a
				// new modified for every change, and the evidence already
				// stored must not be silently shadowed.
				d.Message = fmt.Sprintf("conflict: a different object with this id and version is already stored (sha256 %x); "+
					"change modified to publish a new version", r.Hash)
				if len(st.Failures) < MaxListedFailures {
					st.Failures = append(st.Failures, d)
				}
				nConflicts++
				conflicts.addConflict(index[j], o, d.Version, r.Hash)
				continue
			}
			st.Successes = append(st.Successes, d)
		}
		if in.StatusRetention > 0 {
			// Complete now: kept for StatusRetention from here on.
			st.Expires = in.Clock().UTC().Add(in.StatusRetention)
		}
		return st
	}
	statusStored := false
	if len(objs) > 0 {
		sctx, span := tracer.Start(store.WithActor(ctx, actor), SpanStoreAdd)
		span.SetAttributes(attrObjects.Int(len(objs)))
		var res []store.AddResult
		var err error
		sa, ok := in.Store.(store.StatusAdder)
		if ok {
			// One durable write for the objects and their status.
			res, err = sa.AddObjectsStatus(sctx, target.Collection, objs, func(res []store.AddResult) store.Status {
				st = receipt(res)
				return st
			})
			ok = ctigate.KindOf(err) != ctigate.Unsupported
			statusStored = ok && err == nil
		}
		span.SetAttributes(attrStatus.Bool(statusStored))
		if !ok {
			res, err = in.Store.AddObjects(sctx, target.Collection, objs)
			if err == nil {
				st = receipt(res)
			}
		}
		telemetry.EndSpan(span, err)
		if err != nil {
			out.Failed = "add_objects"
			return out, err
		}
		if in.Stored != nil {
			in.Stored(ctx, target.Collection, res)
		}
		if nConflicts > 0 {
			out.Rejected["conflict"] += nConflicts
		}
	} else if in.StatusRetention > 0 {
		st.Expires = in.Clock().UTC().Add(in.StatusRetention)
	}
	if in.Ledger != nil && conflicts.n > 0 {
		if _, err := in.Ledger.AppendEntries(ctx, conflicts.entries()); err != nil {
			out.Failed, out.Unrecorded = "ledger", fmt.Errorf("recording the conflicts in the custody ledger: %w", err)
		}
	}
	out.Status = st
	if statusStored {
		return out, nil
	}
	sctx, span := tracer.Start(ctx, SpanStoreStat)
	err = in.Store.PutStatus(sctx, st)
	telemetry.EndSpan(span, err)
	if err != nil {
		out.Failed = "put_status"
		if len(objs) == 0 {
			return out, err
		}
		out.Unrecorded = errors.Join(out.Unrecorded, fmt.Errorf("storing the status resource: %w", err))
	}
	return out, nil
}

// Bounds on what one envelope's refusals cost.
const (
	// MaxListedFailures bounds the failures a status resource lists; its
	// failure_count stays exact.
	MaxListedFailures = 1000
	// MaxRejectedEntries bounds the rejected ledger entries of one
	// envelope's objects, one each; the rest of the envelope's refusals
	// are summarised by one more entry (custody, "Rejections").
	MaxRejectedEntries = 100
)

// rejections collects the ledger's record of an envelope's refusals: an
// entry each for the first MaxRejectedEntries, then one summary.
type rejections struct {
	actor              Actor
	collection, status string
	n                  int // refusals added
	listed             []custody.Entry
	bitmap             custody.Bitmap
	tree               custody.Compact // of the summarised refusals' leaves
	kinds              map[string]int
}

// add records the refusal of the envelope's element it for err, of kind.
func (r *rejections) add(it *stix.Item, kind string, err error) {
	r.n++
	if len(r.listed) < MaxRejectedEntries {
		r.listed = append(r.listed, rejectedEntry(r.actor, r.collection, r.status, failureID(it), it.Version, it.Raw, err))
		return
	}
	r.summarise(it.Index, it.Raw, kind)
}

// addConflict records element i, the object o, refused because another
// object with its id and version is stored (hash stored).
func (r *rejections) addConflict(i int, o *store.Object, version string, stored [32]byte) {
	r.n++
	if len(r.listed) < MaxRejectedEntries {
		e := rejectedEntry(r.actor, r.collection, r.status, o.ID, version, nil, nil)
		e.SHA256, e.Reason = custody.HexHash(o.Hash), "conflict"
		e.Detail += fmt.Sprintf("; a different object with this id and version is stored (sha256 %x)", stored)
		r.listed = append(r.listed, e)
		return
	}
	r.summarise(i, o.Raw, "conflict")
}

func (r *rejections) summarise(i int, raw []byte, kind string) {
	if r.kinds == nil {
		r.kinds = map[string]int{}
	}
	r.bitmap.Set(i)
	r.tree.Append(custody.RejectedLeaf(i, raw))
	r.kinds[kind]++
}

// entries returns the ledger entries: one per listed refusal, then the
// summary of the others.
func (r *rejections) entries() []custody.Entry {
	out := r.listed
	n := int(r.tree.Size())
	if n == 0 {
		return out
	}
	var reason []string
	for _, k := range slices.Sorted(maps.Keys(r.kinds)) {
		reason = append(reason, fmt.Sprintf("%s ×%d", k, r.kinds[k]))
	}
	return append(out, custody.Entry{
		Action: custody.Rejected, User: r.actor.User, Org: r.actor.Org, Collection: r.collection,
		Detail: fmt.Sprintf("status %s; %d more refused objects of the envelope, by index", r.status, n),
		Reason: strings.Join(reason, ", "), Count: n, RejectedItems: r.bitmap.String(),
		ItemsRoot: custody.HexRoot(r.tree.Root()),
	})
}

// rejectedEntry is the ledger's record of an object refused at ingest:
// its id and version as sent, the kind of error, the status resource that
// holds the message (messages may quote the object, and auditors see no
// content), and the canonical hash of its bytes when they have one.
func rejectedEntry(actor Actor, collection, status, id, version string, raw []byte, err error) custody.Entry {
	e := custody.Entry{Action: custody.Rejected, User: actor.User, Org: actor.Org, ObjectID: id, ObjectVersion: version,
		Collection: collection, Detail: "status " + status}
	if err != nil {
		e.Reason = ctigate.KindOf(err).String()
	}
	if len(raw) > 0 {
		if h, err := stix.Hash(raw); err == nil {
			e.SHA256 = custody.HexHash(h)
		}
	}
	return e
}

// admit prepares one valid object for the store: its markings are
// resolved (granular selectors must select something) and its canonical
// hash computed, in one pass; a write into a routed collection must pass
// the route unchanged. note says how its markings were read, for the
// producer's receipt.
func admit(it *stix.Item, markings *stix.Markings, guard *routeGuard) (o store.Object, note string, err error) {
	res, hash, err := markings.ResolveHash(it.Raw)
	if err != nil {
		return o, "", err
	}
	if err := guard.check(it, res, hash); err != nil {
		return o, "", err
	}
	note = res.TLP.String()
	if len(res.Unknown) > 0 {
		note += fmt.Sprintf(" (unknown markings: %s)", strings.Join(res.Unknown, ", "))
	}
	if len(res.Granular) > 0 {
		note += fmt.Sprintf(", %d granular markings", len(res.Granular))
	}
	return store.Object{
		ID: it.Object.ID, Type: it.Object.Type, SpecVersion: it.Object.SpecVersion,
		Version: it.Object.Version, Raw: it.Raw, Hash: hash,
	}, note, nil
}

// failureID names a rejected object in a status resource: its id when it
// had a usable one, else its position in the envelope.
func failureID(it *stix.Item) string {
	if it.ID != "" {
		return it.ID
	}
	return "objects[" + strconv.Itoa(it.Index) + "]"
}

// VersionString is the TAXII version of a stored object: its modified (or
// created) timestamp, or its date_added when it has neither.
func VersionString(o *store.Object) string {
	if o.Version.IsZero() {
		return stix.FormatTimestamp(o.DateAdded)
	}
	return stix.FormatTimestamp(o.Version)
}

// newStatusID returns the id of a new status resource: a UUIDv7, so that
// ids increase with time within the process (google/uuid keeps them
// monotonic) and the embedded store's statuses bucket, keyed by id,
// appends instead of inserting at random. With random ids each commit of
// a few small envelopes dirtied a leaf per status. The other 62 bits are
// random, so ids stay unguessable; the time they carry, to the
// millisecond, is the status's request_timestamp already.
func newStatusID() string {
	id, err := uuid.NewV7()
	if err != nil {
		// NewV7 fails only when the system's random source does.
		return uuid.NewString()
	}
	return id.String()
}
