package gateway

import (
	"context"
	"time"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/ctigate/ctigate"
	"github.com/ctigate/ctigate/config"
	"github.com/ctigate/ctigate/custody"
	"github.com/ctigate/ctigate/policy"
	"github.com/ctigate/ctigate/stix"
	"github.com/ctigate/ctigate/store"
)

// LoadMarkings builds the marking registry from the marking definitions
// stored in the configured collections, so that definitions producers
// posted are known again after a restart.
func LoadMarkings(ctx context.Context, st interface {
	Objects(ctx context.Context, collection string, q store.Query) (store.Page, error)
}, cfg *config.Config) (*stix.Markings, error) {
	m := stix.NewMarkings()
	for _, r := range cfg.APIRoots {
		for _, c := range r.Collections {
			q := store.Query{Types: []string{"marking-definition"}, Versions: []store.VersionMatch{{Kind: store.All}}, Limit: 1000}
			for {
				page, err := st.Objects(ctx, c.ID, q)
				if err != nil {
					return nil, err
				}
				for _, o := range page.Objects {
					// Definitions refused at ingest are not stored, so an
					// error here means a stored one is no longer trusted
					// (say, by a newer build): leave it unknown.
					_ = m.Of(o.Producer).Add(o.Raw)
				}
				if !page.More {
					break
				}
				q.Next = page.Next
			}
		}
	}
	return m, nil
}

// EvidenceSource is where BuildEvidence reads from.
type EvidenceSource struct {
	Store interface {
		Objects(ctx context.Context, collection string, q store.Query) (store.Page, error)
	}
	Ledger interface {
		LedgerEntries(ctx context.Context, q store.LedgerQuery) ([]custody.Entry, error)
	}
	Config *config.Config
	// Checkpoints, when set, signs the head first, so that the package's
	// entries are covered by a checkpoint.
	Checkpoints interface {
		Sign(ctx context.Context) (custody.Head, error)
	}
	Now func() time.Time
	// Sees, when set, says which entries the package's reader may see
	// (access.Policy.SeesEntry): the others are left out of the relevant
	// entries and appear in the segment only in their elided form.
	// Collections, when set, says in which collections the versions are
	// listed. Nil: everything (the offline package of whoever holds the
	// data).
	Sees        func(*custody.Entry) bool
	Collections func(id string) bool
}

// BuildEvidence assembles the evidence package of object id: its versions
// in every configured collection (with their original bytes when
// withContent), the ledger segment from its first entry to the first
// checkpoint after its last, and the routes that decided about it.
func BuildEvidence(ctx context.Context, src EvidenceSource, id string, withContent bool) (*custody.Evidence, error) {
	const op = "gateway.BuildEvidence"
	if id == "" || len(id) > 1024 {
		return nil, ctigate.E(op, ctigate.Invalid, "bad object id")
	}
	if src.Checkpoints != nil {
		if _, err := src.Checkpoints.Sign(ctx); err != nil {
			return nil, err
		}
	}
	// The entries touching id.
	var relevant []custody.Entry
	q := store.LedgerQuery{ObjectID: id, Limit: store.MaxLedgerLimit}
	for {
		es, err := src.Ledger.LedgerEntries(ctx, q)
		if err != nil {
			return nil, err
		}
		for _, e := range es {
			if src.Sees == nil || src.Sees(&e) {
				relevant = append(relevant, e)
			}
		}
		if len(es) < q.Limit {
			break
		}
		q.After = es[len(es)-1].Seq
	}
	if len(relevant) == 0 {
		return nil, ctigate.E(op, ctigate.NotFound, "the custody ledger has no entry about this object")
	}
	// The segment: from the first relevant entry to the first checkpoint
	// signing the last one.
	last := relevant[len(relevant)-1].Seq
	var segment []custody.Entry
	q = store.LedgerQuery{After: relevant[0].Seq - 1, Limit: store.MaxLedgerLimit}
	for done := false; !done; {
		es, err := src.Ledger.LedgerEntries(ctx, q)
		if err != nil {
			return nil, err
		}
		for _, e := range es {
			segment = append(segment, e)
			if e.Action == custody.Checkpoint && e.SignedSeq >= last {
				done = true
				break
			}
		}
		if len(es) < q.Limit {
			break
		}
		q.After = es[len(es)-1].Seq
	}
	var versions []custody.Version
	routes := map[string]bool{}
	var policies []custody.Policy
	for _, e := range relevant {
		if e.Route != "" && !routes[e.Route+"\x00"+e.PolicyVersion] {
			routes[e.Route+"\x00"+e.PolicyVersion] = true
			policies = append(policies, custody.Policy{Route: e.Route, PolicyVersion: e.PolicyVersion})
		}
	}
	if src.Config != nil {
		// The configuration of a route is attached when the gateway still
		// runs the version that decided.
		current, _ := policy.CompileRoutes(src.Config.Routes)
		for i := range policies {
			for _, r := range current {
				if r.Name() != policies[i].Route || r.Version() != policies[i].PolicyVersion {
					continue
				}
				if b, err := json.Marshal(r.Config()); err == nil {
					policies[i].Config = jsontext.Value(b)
				}
			}
		}
		for _, r := range src.Config.APIRoots {
			for _, col := range r.Collections {
				if src.Collections != nil && !src.Collections(col.ID) {
					continue
				}
				oq := store.Query{IDs: []string{id}, Versions: []store.VersionMatch{{Kind: store.All}}, Limit: 1000}
				for {
					page, err := src.Store.Objects(ctx, col.ID, oq)
					if err != nil {
						return nil, err
					}
					for _, o := range page.Objects {
						v := custody.Version{
							Collection: col.ID, Version: custody.FormatVersion(o.Version), DateAdded: custody.FormatTime(o.DateAdded),
							SHA256: custody.HexHash(o.Hash), Producer: o.Producer,
						}
						if withContent {
							v.Raw = o.Raw
						}
						versions = append(versions, v)
					}
					if !page.More {
						break
					}
					oq.Next = page.Next
				}
			}
		}
	}
	now := time.Now
	if src.Now != nil {
		now = src.Now
	}
	var elide func(*custody.Entry) bool
	if src.Sees != nil {
		elide = func(e *custody.Entry) bool { return !src.Sees(e) }
	}
	return custody.BuildEvidence(id, custody.FormatTime(now()), segment, versions, policies, elide)
}
