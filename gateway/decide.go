// Package gateway is what happens to an object between the edges (HTTP,
// the fan-out worker, the command line) and the store, the policy and the
// custody ledger:
//
//   - Decider is the one place that turns an object version into a
//     route's decision: marking resolution with the producing
//     organisation's registry, the canonical hash, the revoked flag, and
//     what the route's collection already holds. Fan-out, the route guard
//     on direct writes, the server-side dry run and the offline
//     `ctigate policy check` all decide through it, so they cannot drift.
//   - Ingester takes envelopes in (decode, validate, resolve, guard,
//     store with custody, receipts), with the acting user as an argument.
//   - Current holds the configuration snapshot in force, which server,
//     fan-out and authentication read through one pointer.
//   - LoadMarkings and BuildEvidence rebuild the marking registry and
//     make evidence packages.
package gateway

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/ctigate/ctigate/policy"
	"github.com/ctigate/ctigate/stix"
	"github.com/ctigate/ctigate/store"
)

// Object is one object version to decide about.
type Object struct {
	Raw      []byte
	Type, ID string
	Version  time.Time // modified, else created (zero: unknown; DecideAll then supersedes nothing with it)
	Producer string    // the submitting organisation ("": unknown; routes that list producers withhold it)
	// Hash is the SHA-256 of Raw's canonical form when the caller knows it
	// (the store keeps it with each version: store.Object.Hash); zero:
	// Resolve computes it.
	Hash [32]byte
}

// StoredObject is the Object of a version read from the store, with the
// hash ingest stored with it.
func StoredObject(o *store.Object) Object {
	return Object{Raw: o.Raw, Type: o.Type, ID: o.ID, Version: o.Version, Producer: o.Producer, Hash: o.Hash}
}

// Decider decides about object versions for one route. Evaluate decides
// one object at a time: an object published (or redacted) by an earlier
// decision counts as published for the references of later ones.
// DecideAll decides a set of objects at once, so that what it publishes
// does not depend on their order.
type Decider struct {
	Markings *stix.Markings // the registry; each object is resolved with its producer's (Markings.Of)
	Route    *policy.Route
	Now      time.Time
	// Holds reports whether the route's collection holds some version of
	// id (nil: the route's state is unknown, as in an offline check, and
	// nothing counts as held). An error makes Decide return it.
	Holds func(id string) (bool, error)
	// Lookahead, when set, lets DecideAll judge a reference to an id the
	// route has not published by the referenced object itself: it returns
	// the newest version of id that producer submitted and the route has
	// not decided yet (pending), or else whether producer submitted id at
	// all (known; a known id the route has not published was withheld).
	// An id neither pending nor known is one the producer has not
	// submitted (yet): Judged.Awaiting lists those a decision depended on.
	// It must look only at producer's own submissions, never another
	// organisation's.
	Lookahead func(id, producer string) (o Object, pending, known bool, err error)

	batch map[string]bool // ids published by earlier decisions
	err   error

	// DecideAll's state.
	assume map[string]int     // id -> candidates with that id not (yet) withheld
	cur    *candidate         // the candidate being evaluated
	looked map[[2]string]bool // looked up; true: the producer has not submitted it
	ghosts []*candidate       // lookahead objects added this round
	limit  int                // most lookahead objects per DecideAll
	nghost int
}

// Published reports whether the route's collection holds id or an earlier
// decision of this Decider published it; during DecideAll, also whether
// one of its objects, or a lookahead object, with that id may still be
// published.
func (d *Decider) Published(id string) bool {
	if d.batch[id] {
		return true
	}
	if n, ok := d.assume[id]; ok {
		// One of the set: the decision relies on it either way (and
		// waits for what it waits for).
		d.cur.deps = append(d.cur.deps, id)
		if n > 0 {
			return true
		}
	}
	if d.held(id) {
		return true
	}
	return d.lookahead(id)
}

func (d *Decider) held(id string) bool {
	if d.Holds == nil || d.err != nil {
		return false
	}
	ok, err := d.Holds(id)
	if err != nil {
		d.err = err
		return false
	}
	return ok
}

// lookahead adds the producer's own not-yet-decided object id, when there
// is one, as a candidate that DecideAll judges with the others (without
// publishing it: fan-out publishes it when it reaches it).
func (d *Decider) lookahead(id string) bool {
	if d.assume == nil || d.Lookahead == nil || d.cur == nil || d.cur.o.Producer == "" || d.nghost >= d.limit || !stix.IsIdentifier(id) {
		return false // not an identifier (say, ""): nothing will ever arrive under it
	}
	k := [2]string{id, d.cur.o.Producer}
	if absent, seen := d.looked[k]; seen {
		if absent {
			d.cur.absent = append(d.cur.absent, id)
		}
		return false // looked for before: absent, or withheld (else assume counts it)
	}
	o, pending, known, err := d.Lookahead(id, d.cur.o.Producer)
	if err != nil {
		d.err = err
		return false
	}
	d.looked[k] = !pending && !known
	if !pending && !known {
		d.cur.absent = append(d.cur.absent, id)
	}
	if !pending || o.ID != id || o.Producer != d.cur.o.Producer {
		return false
	}
	res, hash, err := d.Resolve(o)
	if err != nil {
		return false
	}
	c := &candidate{o: o, index: -1, res: res, hash: hash}
	d.ghosts = append(d.ghosts, c)
	d.nghost++
	d.assume[id]++
	d.cur.deps = append(d.cur.deps, id)
	return true
}

// candidate is one object DecideAll judges: one of its input (index >= 0)
// or a lookahead object (index -1).
type candidate struct {
	o      Object
	index  int
	res    stix.Resolution
	hash   [32]byte
	dec    policy.Decision
	deps   []string // ids assumed published when dec was made
	absent []string // ids referenced that the producer has not submitted
	out    bool     // withheld, and no longer counted in assume
}

// MaxLookahead bounds the objects one DecideAll looks ahead at (an
// ATT&CK collection object alone refers to every object of its bundle);
// references beyond it are judged as if unpublished.
const MaxLookahead = 10_000

// Judged is what DecideAll says of one object.
type Judged struct {
	Res      stix.Resolution
	Hash     [32]byte
	Invalid  error // Resolve failed: the object cannot be judged (Decision unset)
	Decision policy.Decision
	// Awaiting lists the ids the object refers to that its producer has
	// not submitted (with Lookahead set): the decision treated them as
	// unpublished, and may change when they arrive.
	Awaiting []string
}

// DecideAll decides about objs for the route as one set, so that the
// result is the same for every order of objs: each object's references to
// the others (and, through Lookahead, to the producer's objects the route
// has not decided yet) are judged by what the route decides for those,
// not by which came first. It computes the largest consistent set: every
// object starts as publishable; an object withheld withdraws that
// assumption, and the objects whose decisions relied on it are decided
// again, until nothing changes. A reference is kept only to an object
// the route holds or publishes in the final set (or, by lookahead, will
// publish when it reaches it). Objects that publish count as published
// for later decisions of d. An error is one of reading the route's state.
//
// Objects in also are decided with objs but not returned (say, a newer
// version of one of them that the route decided before: if it is
// withheld, the older ones in objs are superseded).
func (d *Decider) DecideAll(objs []Object, also ...Object) ([]Judged, error) {
	out := make([]Judged, len(objs))
	d.assume, d.looked, d.ghosts, d.nghost = map[string]int{}, map[[2]string]bool{}, nil, 0
	d.limit = max(MaxLookahead, 2*len(objs))
	defer func() { d.assume, d.looked, d.cur, d.ghosts = nil, nil, nil, nil }()
	var cands []*candidate
	byID := map[string][]*candidate{}
	for i := range objs {
		res, hash, err := d.Resolve(objs[i])
		out[i].Res, out[i].Hash, out[i].Invalid = res, hash, err
		if err == nil {
			c := &candidate{o: objs[i], index: i, res: res, hash: hash}
			cands = append(cands, c)
			byID[c.o.ID] = append(byID[c.o.ID], c)
			d.assume[objs[i].ID]++
		}
	}
	for _, o := range also {
		res, hash, err := d.Resolve(o)
		if err != nil {
			continue
		}
		c := &candidate{o: o, index: -1, res: res, hash: hash}
		cands = append(cands, c)
		byID[o.ID] = append(byID[o.ID], c)
		d.assume[o.ID]++
	}
	todo := cands
	for len(todo) > 0 {
		var gone []string
		for _, c := range todo {
			if c.out {
				continue
			}
			d.cur, c.deps, c.absent = c, c.deps[:0], c.absent[:0]
			dec, err := d.evaluate(c.o, c.res, c.hash, d.received(c, byID))
			if err != nil {
				return nil, err
			}
			c.dec = dec
			if c.dec.Action == policy.Withhold {
				c.out = true
				if d.assume[c.o.ID]--; d.assume[c.o.ID] == 0 {
					gone = append(gone, c.o.ID)
				}
			}
		}
		cands = append(cands, d.ghosts...)
		for _, g := range d.ghosts {
			byID[g.o.ID] = append(byID[g.o.ID], g)
		}
		todo, d.ghosts = d.ghosts, nil
		gone = append(gone, d.supersede(cands)...)
		if len(gone) == 0 {
			continue
		}
		for _, c := range cands {
			if !c.out && c.dec.Action != policy.Withhold && slices.ContainsFunc(c.deps, func(id string) bool { return slices.Contains(gone, id) }) && !slices.Contains(todo, c) {
				todo = append(todo, c)
			}
		}
	}
	for _, c := range cands {
		if c.index < 0 {
			continue
		}
		out[c.index].Decision = c.dec
		out[c.index].Awaiting = awaiting(c, byID)
	}
	for _, c := range cands {
		if c.index >= 0 && c.dec.Action != policy.Withhold {
			d.Mark(c.o.ID)
		}
	}
	return out, nil
}

// supersede withholds, with policy.ReasonSuperseded, each candidate that
// would publish although the route withholds a newer version of the same
// object from the same producer (unless the route keeps superseded
// versions), and returns the ids no candidate may publish any more.
func (d *Decider) supersede(cands []*candidate) []string {
	if d.Route.KeepsSuperseded() {
		return nil
	}
	type key struct{ id, producer string }
	newest := map[key]*candidate{}
	for _, c := range cands {
		if !c.out || c.o.Version.IsZero() || c.dec.Reason == policy.ReasonInvalid || c.dec.Reason == policy.ReasonMarkingDefinition {
			continue
		}
		k := key{c.o.ID, c.o.Producer}
		if n := newest[k]; n == nil || c.o.Version.After(n.o.Version) {
			newest[k] = c
		}
	}
	var gone []string
	for _, c := range cands {
		n := newest[key{c.o.ID, c.o.Producer}]
		if c.out || n == nil || !n.o.Version.After(c.o.Version) {
			continue
		}
		c.dec = policy.Decision{
			Action: policy.Withhold, Reason: policy.ReasonSuperseded, OriginalSHA256: c.hash,
			Detail: fmt.Sprintf("the newer version %s is withheld (%s)", n.o.Version.Format(time.RFC3339Nano), n.dec.Reason),
		}
		c.out = true
		if d.assume[c.o.ID]--; d.assume[c.o.ID] == 0 {
			gone = append(gone, c.o.ID)
		}
	}
	return gone
}

// awaiting returns the ids c waits for: those it refers to that the
// producer has not submitted, and those the objects its decision relied on
// wait for (transitively), sorted.
func awaiting(c *candidate, byID map[string][]*candidate) []string {
	if len(c.absent) == 0 && len(c.deps) == 0 {
		return nil
	}
	var out []string
	seen := map[*candidate]bool{c: true}
	stack := []*candidate{c}
	for len(stack) > 0 {
		x := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		out = append(out, x.absent...)
		for _, id := range x.deps {
			for _, y := range byID[id] {
				if !seen[y] {
					seen[y] = true
					stack = append(stack, y)
				}
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// received reports whether the route received c's object before: it holds
// a version, an earlier decision of d published one, or an earlier input
// object with the same id may still publish.
func (d *Decider) received(c *candidate, byID map[string][]*candidate) bool {
	if d.batch[c.o.ID] || d.held(c.o.ID) {
		return true
	}
	if c.index < 0 {
		return false
	}
	for _, o := range byID[c.o.ID] { // in input order
		if o.index < 0 || o.index >= c.index {
			break
		}
		if !o.out {
			return true
		}
	}
	return false
}

// Mark records that id is published by this batch (e.g. a marking
// definition sent along with an object).
func (d *Decider) Mark(id string) {
	if d.batch == nil {
		d.batch = map[string]bool{}
	}
	d.batch[id] = true
}

// Resolve reads o's markings with its producer's registry
// (Markings.Of) and computes its canonical hash, unless o carries it
// (o.Hash: a stored version's, computed once at ingest). An error means
// the object cannot be judged (ingest refuses it; fan-out withholds it as
// invalid).
func (d *Decider) Resolve(o Object) (stix.Resolution, [32]byte, error) {
	m := d.Markings.Of(o.Producer)
	if o.Hash == ([32]byte{}) {
		return m.ResolveHash(o.Raw)
	}
	res, err := m.Resolve(o.Raw)
	if err != nil {
		return stix.Resolution{}, [32]byte{}, err
	}
	return res, o.Hash, nil
}

// Evaluate returns the route's decision about o, whose markings and hash
// Resolve returned. An error is one of reading the route's state; the
// decision is then unset.
func (d *Decider) Evaluate(o Object, res stix.Resolution, hash [32]byte) (policy.Decision, error) {
	// Revoked versions of objects the route already received are always
	// delivered.
	dec, err := d.evaluate(o, res, hash, d.Published(o.ID))
	if err != nil {
		return policy.Decision{}, err
	}
	if dec.Action != policy.Withhold {
		d.Mark(o.ID)
	}
	return dec, nil
}

// evaluate is policy.Evaluate of o for d's route, references answered by
// d.Published; an error is one of reading the route's state.
func (d *Decider) evaluate(o Object, res stix.Resolution, hash [32]byte, received bool) (policy.Decision, error) {
	dec := policy.Evaluate(policy.Input{
		Raw: o.Raw, Type: o.Type, ID: o.ID, SHA256: hash, Markings: res,
		Producer: o.Producer, Revoked: stix.Revoked(o.Raw),
		Received: received, Published: d.Published,
	}, d.Route, d.Now)
	if d.err != nil {
		err := d.err
		d.err = nil
		return policy.Decision{}, err
	}
	return dec, nil
}

// StoreHolds returns a Decider.Holds that reads collection in st,
// remembering each answer (one decider, one batch). With org set, only
// versions that organisation submitted count: what a dry run for one
// organisation may see of a route's state.
func StoreHolds(ctx context.Context, st Objects, collection, org string) func(id string) (bool, error) {
	return NewHolds(ctx, st, collection, org).Holds
}

// Objects reads a collection's object versions (store.Store.Objects).
type Objects interface {
	Objects(ctx context.Context, collection string, q store.Query) (store.Page, error)
}

// Holds answers whether a collection holds some version of an id,
// remembering each answer; Prefetch answers many ids in one read.
type Holds struct {
	ctx             context.Context
	st              Objects
	collection, org string
	known           map[string]bool
}

// NewHolds returns the Holds of collection in st (see StoreHolds).
func NewHolds(ctx context.Context, st Objects, collection, org string) *Holds {
	return &Holds{ctx: ctx, st: st, collection: collection, org: org, known: map[string]bool{}}
}

// Prefetch reads, in one query, which of ids the collection holds (for
// org "" only; otherwise it does nothing).
func (h *Holds) Prefetch(ids []string) error {
	if h.org != "" || len(ids) == 0 {
		return nil
	}
	q := store.Query{IDs: ids, Versions: []store.VersionMatch{{Kind: store.All}}, Limit: store.DefaultLimit, WithoutRaw: true}
	found := map[string]bool{}
	for {
		p, err := h.st.Objects(h.ctx, h.collection, q)
		if err != nil {
			return err
		}
		for _, o := range p.Objects {
			found[o.ID] = true
		}
		if !p.More {
			break
		}
		q.Next = p.Next
	}
	for _, id := range ids {
		h.known[id] = found[id]
	}
	return nil
}

// Holds reports whether the collection holds some version of id.
func (h *Holds) Holds(id string) (bool, error) {
	if v, ok := h.known[id]; ok {
		return v, nil
	}
	q := store.Query{IDs: []string{id}, Versions: []store.VersionMatch{{Kind: store.All}}, Limit: 1, WithoutRaw: true}
	if h.org != "" {
		q.Limit, q.WithoutRaw = store.DefaultLimit, false // the producer comes with the bytes
	}
	for {
		p, err := h.st.Objects(h.ctx, h.collection, q)
		if err != nil {
			return false, err
		}
		for _, o := range p.Objects {
			if h.org == "" || o.Producer == h.org {
				h.known[id] = true
				return true, nil
			}
		}
		if !p.More {
			break
		}
		q.Next = p.Next
	}
	h.known[id] = false
	return false, nil
}

// RouteState is what a lookahead reads: the route's sources and
// checkpoints.
type RouteState interface {
	Objects
	Checkpoint(ctx context.Context, name string) (time.Time, error)
}

// CheckpointName is the name of the fan-out checkpoint of route r over
// source src: the date_added up to which r's policy version has decided
// src's versions.
func CheckpointName(r *policy.Route, src string) string {
	return "fanout/" + r.ID() + "/" + src + "/" + r.Version()
}

// ParkingOf names the collection of the objects waiting for references
// under checkpoint name (fan-out's own, never served).
func ParkingOf(name string) string { return "parked/" + name }

// SourceLookahead returns a Decider.Lookahead over r's sources in st, as
// fan-out reads them: the newest version of id that producer submitted is
// pending (judged by what r will decide for it) when r has not decided it
// yet — added after r's checkpoint over its source (over upToSrc, after
// upTo, when upToSrc is set: the batch under way), or waiting for
// references — and known (r decided it: r holds it, or withheld it)
// otherwise. Another organisation's versions are never returned.
func SourceLookahead(ctx context.Context, st RouteState, r *policy.Route, upToSrc string, upTo time.Time) func(id, producer string) (Object, bool, bool, error) {
	cps := map[string]time.Time{}
	if upToSrc != "" {
		cps[upToSrc] = upTo
	}
	return func(id, producer string) (Object, bool, bool, error) {
		known := false
		for _, s := range r.Sources() {
			cp, ok := cps[s]
			if !ok {
				var err error
				if cp, err = st.Checkpoint(ctx, CheckpointName(r, s)); err != nil {
					return Object{}, false, false, err
				}
				cps[s] = cp
			}
			p, err := st.Objects(ctx, s, store.Query{IDs: []string{id}})
			if err != nil {
				return Object{}, false, false, err
			}
			for _, o := range p.Objects {
				if o.Producer != producer || o.Type == "marking-definition" {
					continue
				}
				g := StoredObject(&o)
				if o.DateAdded.After(cp) {
					return g, true, true, nil
				}
				waiting, err := st.Objects(ctx, ParkingOf(CheckpointName(r, s)), store.Query{IDs: []string{id}, WithoutRaw: true})
				if err != nil {
					return Object{}, false, false, err
				}
				if len(waiting.Objects) > 0 {
					return g, true, true, nil
				}
				known = true
			}
		}
		return Object{}, false, known, nil
	}
}

// Forget undoes Mark for an object that was decided but not stored (the
// route guard refuses what a route would publish only redacted).
func (d *Decider) Forget(id string) { delete(d.batch, id) }
