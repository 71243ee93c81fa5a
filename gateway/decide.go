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
	"bytes"
	"context"
	"time"

	"github.com/go-json-experiment/json"

	"github.com/ctigate/ctigate/policy"
	"github.com/ctigate/ctigate/stix"
	"github.com/ctigate/ctigate/store"
)

// Object is one object version to decide about.
type Object struct {
	Raw      []byte
	Type, ID string
	Producer string // the submitting organisation ("": unknown; routes that list producers withhold it)
}

// Decider decides about object versions for one route, in order, as one
// batch: an object published (or redacted) by an earlier decision counts
// as published for the references of later ones.
type Decider struct {
	Markings *stix.Markings // the registry; each object is resolved with its producer's (Markings.Of)
	Route    *policy.Route
	Now      time.Time
	// Holds reports whether the route's collection holds some version of
	// id (nil: the route's state is unknown, as in an offline check, and
	// nothing counts as held). An error makes Decide return it.
	Holds func(id string) (bool, error)

	batch map[string]bool // ids published by earlier decisions
	err   error
}

// Published reports whether the route's collection holds id or an earlier
// decision of this Decider published it.
func (d *Decider) Published(id string) bool {
	if d.batch[id] {
		return true
	}
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

// Mark records that id is published by this batch (e.g. a marking
// definition sent along with an object).
func (d *Decider) Mark(id string) {
	if d.batch == nil {
		d.batch = map[string]bool{}
	}
	d.batch[id] = true
}

// Resolve reads o's markings with its producer's registry
// (Markings.Of) and computes its canonical hash. An error means the object
// cannot be judged (ingest refuses it; fan-out withholds it as invalid).
func (d *Decider) Resolve(o Object) (stix.Resolution, [32]byte, error) {
	return d.Markings.Of(o.Producer).ResolveHash(o.Raw)
}

// Evaluate returns the route's decision about o, whose markings and hash
// Resolve returned. An error is one of reading the route's state; the
// decision is then unset.
func (d *Decider) Evaluate(o Object, res stix.Resolution, hash [32]byte) (policy.Decision, error) {
	dec := policy.Evaluate(policy.Input{
		Raw: o.Raw, Type: o.Type, ID: o.ID, SHA256: hash, Markings: res,
		Producer: o.Producer,
		Revoked:  Revoked(o.Raw),
		// Revoked versions of objects the route already received are
		// always delivered.
		Received:  d.Published(o.ID),
		Published: d.Published,
	}, d.Route, d.Now)
	if d.err != nil {
		err := d.err
		d.err = nil
		return policy.Decision{}, err
	}
	if dec.Action != policy.Withhold {
		d.Mark(o.ID)
	}
	return dec, nil
}

// StoreHolds returns a Decider.Holds that reads collection in st,
// remembering each answer (one decider, one batch). With org set, only
// versions that organisation submitted count: what a dry run for one
// organisation may see of a route's state.
func StoreHolds(ctx context.Context, st interface {
	Objects(ctx context.Context, collection string, q store.Query) (store.Page, error)
}, collection, org string) func(id string) (bool, error) {
	known := map[string]bool{}
	return func(id string) (bool, error) {
		if v, ok := known[id]; ok {
			return v, nil
		}
		q := store.Query{IDs: []string{id}, Versions: []store.VersionMatch{{Kind: store.All}}, Limit: 1, WithoutRaw: true}
		if org != "" {
			q.Limit, q.WithoutRaw = store.DefaultLimit, false // the producer comes with the bytes
		}
		for {
			p, err := st.Objects(ctx, collection, q)
			if err != nil {
				return false, err
			}
			for _, o := range p.Objects {
				if org == "" || o.Producer == org {
					known[id] = true
					return true, nil
				}
			}
			if !p.More {
				break
			}
			q.Next = p.Next
		}
		known[id] = false
		return false, nil
	}
}

// Forget undoes Mark for an object that was decided but not stored (the
// route guard refuses what a route would publish only redacted).
func (d *Decider) Forget(id string) { delete(d.batch, id) }

// Revoked reports whether raw has "revoked": true.
func Revoked(raw []byte) bool {
	if !bytes.Contains(raw, []byte(`"revoked"`)) {
		return false
	}
	var v struct {
		Revoked bool `json:"revoked"`
	}
	return json.Unmarshal(raw, &v) == nil && v.Revoked
}
