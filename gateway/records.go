package gateway

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
	"golang.org/x/mod/sumdb/tlog"

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
		ResolveAdded(ctx context.Context, collection string, das []time.Time) ([]store.AddedVersion, error)
	}
	Ledger DeliveryLedger
	Config *config.Config
	// Checkpoints, when set, signs the head first, so that the package
	// covers every entry so far; otherwise the newest checkpoint in the
	// ledger is the tree head.
	Checkpoints interface {
		Sign(ctx context.Context) (custody.Head, error)
	}
	Now func() time.Time
	// Sees, when set, says which entries the package's reader may see
	// (access.Policy.SeesEntry): the others are left out. Collections,
	// when set, says in which collections the versions are listed. Nil:
	// everything (the offline package of whoever holds the data).
	Sees        func(*custody.Entry) bool
	Collections func(id string) bool
}

// BuildEvidence assembles the evidence package of object id (see
// custody.Evidence): its versions in every configured collection (with
// their original bytes when withContent), the entries about it and the
// deliveries of pages that held one of its versions, each proven against
// a signed tree head, and the routes that decided about it. Nothing in it
// concerns another object.
func BuildEvidence(ctx context.Context, src EvidenceSource, id string, withContent bool) (*custody.Evidence, error) {
	const op = "gateway.BuildEvidence"
	if id == "" || len(id) > 1024 {
		return nil, ctigate.E(op, ctigate.Invalid, "bad object id")
	}
	th, err := treeHead(ctx, src)
	if err != nil {
		return nil, err
	}
	size := th.SignedSeq
	if _, err := store.IndexLedger(ctx, src.Ledger, size); err != nil {
		return nil, err
	}
	sees := func(e *custody.Entry) bool { return src.Sees == nil || src.Sees(e) }
	// The entries about id.
	var relevant []custody.Entry
	q := store.LedgerQuery{ObjectID: id, Through: size, Limit: store.MaxLedgerLimit}
	for {
		es, err := src.Ledger.LedgerEntries(ctx, q)
		if err != nil {
			return nil, err
		}
		for _, e := range es {
			if sees(&e) {
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
	// Where its versions were: stored ones from the store, removed ones
	// from their deleted or withdrawn entries.
	type place struct {
		collection string
		at         time.Time
	}
	var places []place
	seen := map[place]bool{}
	addPlace := func(p place) {
		if !seen[p] {
			seen[p] = true
			places = append(places, p)
		}
	}
	var versions []custody.Version
	if src.Config != nil {
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
						addPlace(place{col.ID, o.DateAdded})
					}
					if !page.More {
						break
					}
					oq.Next = page.Next
				}
			}
		}
	}
	for _, e := range relevant {
		if (e.Action == custody.Deleted || e.Action == custody.Withdrawn) && e.DateAdded != "" {
			if t, err := custody.ParseTime(e.DateAdded); err == nil && (src.Collections == nil || src.Collections(e.Collection)) {
				addPlace(place{e.Collection, t})
			}
		}
	}
	// The deliveries of pages that held one of them.
	pages := newPageProver(ctx, src)
	var proofs []custody.DeliveryProof
	var delivered []custody.Entry
	for _, p := range places {
		es, err := deliveriesOf(ctx, src.Ledger, p.collection, p.at, size, pages.manifests)
		if err != nil {
			return nil, err
		}
		for _, e := range es {
			if !sees(&e) {
				continue
			}
			dp, ok, err := pages.prove(&e, p.at)
			if err != nil {
				return nil, err
			}
			if ok {
				proofs = append(proofs, dp)
				delivered = append(delivered, e)
			}
		}
	}
	// Every entry, in seq order, with its inclusion proof.
	all := append(relevant, delivered...)
	slices.SortFunc(all, func(a, b custody.Entry) int { return cmp.Compare(a.Seq, b.Seq) })
	all = slices.CompactFunc(all, func(a, b custody.Entry) bool { return a.Seq == b.Seq })
	slices.SortFunc(proofs, func(a, b custody.DeliveryProof) int { return cmp.Compare(a.Seq, b.Seq) })
	tree := store.TreeReader(ctx, src.Ledger)
	ev := &custody.Evidence{Format: custody.EvidenceFormat, ObjectID: id, Versions: versions, Deliveries: proofs}
	if ev.Versions == nil {
		ev.Versions = []custody.Version{}
	}
	if ev.TreeHead, err = json.Marshal(th); err != nil {
		return nil, err
	}
	for i := range all {
		p, err := tlog.ProveRecord(int64(size), int64(all[i].Seq-1), tree)
		if err != nil {
			return nil, ctigate.E(op, fmt.Errorf("proving entry %d: %w", all[i].Seq, err))
		}
		b, err := json.Marshal(&all[i])
		if err != nil {
			return nil, err
		}
		ev.Entries = append(ev.Entries, custody.ProvenEntry{Entry: b, Proof: custody.EncodeProof(p)})
	}
	ev.Policies = policiesOf(src.Config, relevant)
	now := time.Now
	if src.Now != nil {
		now = src.Now
	}
	ev.Created = custody.FormatTime(now())
	return ev, nil
}

// treeHead returns the checkpoint entry the package is proven against.
func treeHead(ctx context.Context, src EvidenceSource) (*custody.Entry, error) {
	const op = "gateway.BuildEvidence"
	if src.Checkpoints != nil {
		h, err := src.Checkpoints.Sign(ctx)
		if err != nil {
			return nil, err
		}
		if h.Seq > 0 {
			e, err := src.Ledger.LedgerEntry(ctx, h.Seq)
			if err != nil {
				return nil, err
			}
			if e.Action == custody.Checkpoint {
				return &e, nil
			}
		}
	}
	// The checkpoint in the ledger that signs the most entries: the newest,
	// unless a late one (signing an earlier entry than the one before it,
	// as replicas of earlier builds could append) came after it.
	var last *custody.Entry
	q := store.LedgerQuery{Action: custody.Checkpoint, Limit: store.MaxLedgerLimit}
	for {
		es, err := src.Ledger.LedgerEntries(ctx, q)
		if err != nil {
			return nil, err
		}
		for i := range es {
			if last == nil || es[i].SignedSeq >= last.SignedSeq {
				e := es[i]
				last = &e
			}
		}
		if len(es) > 0 {
			q.After = es[len(es)-1].Seq
		}
		if len(es) < q.Limit {
			break
		}
	}
	if last == nil {
		return nil, ctigate.E(op, ctigate.Unavailable, "the custody ledger has no signed checkpoint yet")
	}
	return last, nil
}

// policiesOf lists the routes and policy versions that decided about the
// object, with a route's configuration when the gateway still runs the
// version that decided.
func policiesOf(cfg *config.Config, relevant []custody.Entry) []custody.Policy {
	routes := map[string]bool{}
	var policies []custody.Policy
	for _, e := range relevant {
		if e.Route != "" && !routes[e.Route+"\x00"+e.PolicyVersion] {
			routes[e.Route+"\x00"+e.PolicyVersion] = true
			policies = append(policies, custody.Policy{Route: e.Route, PolicyVersion: e.PolicyVersion})
		}
	}
	if cfg == nil {
		return policies
	}
	current, _ := policy.CompileRoutes(cfg.Routes)
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
	return policies
}

// pageProver rebuilds delivered pages from their manifests and the store
// (ResolveAdded) to prove which of their items were an object's. Items
// are resolved once, whatever the number of pages holding them.
type pageProver struct {
	ctx       context.Context
	src       EvidenceSource
	salter    *custody.Salter
	manifests manifestCache
	items     map[string]map[int64]*pageItem // by collection, then date_added (µs)
}

// pageItem is an item with its leaf hashes as a page with content and a
// manifest page (no hash) commit to it.
type pageItem struct {
	item            custody.Item // with its hash
	leaf, leafNoSum tlog.Hash
}

func newPageProver(ctx context.Context, src EvidenceSource) *pageProver {
	return &pageProver{ctx: ctx, src: src, manifests: manifestCache{}, items: map[string]map[int64]*pageItem{}}
}

// prove returns the proof that delivery e's page held the version added
// at at, ok false when the page did not hold it.
func (p *pageProver) prove(e *custody.Entry, at time.Time) (custody.DeliveryProof, bool, error) {
	const op = "gateway.BuildEvidence"
	das, err := p.manifests.get(p.ctx, p.src.Ledger, e)
	if err != nil {
		return custody.DeliveryProof{}, false, err
	}
	i, found := slices.BinarySearch(das, at.UnixMicro())
	if !found {
		// Its range held at, its items did not.
		return custody.DeliveryProof{}, false, nil
	}
	items, err := p.resolve(e, das)
	if err != nil {
		return custody.DeliveryProof{}, false, err
	}
	// A page read with content commits to each item's hash; a manifest
	// (metadata only) to none: the one whose root is the entry's is the
	// page.
	leaves := make([]tlog.Hash, len(das))
	for _, withSum := range []bool{true, false} {
		for k, it := range items {
			if withSum {
				leaves[k] = it.leaf
			} else {
				leaves[k] = it.leafNoSum
			}
		}
		root, proof := custody.ProveLeaf(leaves, i)
		if custody.HexRoot(root) != e.ItemsRoot {
			continue
		}
		it := items[i].item
		if !withSum {
			it.SHA256 = ""
		}
		return custody.DeliveryProof{Seq: e.Seq, Position: int64(i), Item: it, Proof: custody.EncodeProof(proof)}, true, nil
	}
	return custody.DeliveryProof{}, false, ctigate.E(op, ctigate.Internal, fmt.Sprintf("delivery %d: the page rebuilt from the store does not hash to the entry's items_root: the store was altered", e.Seq))
}

// resolve returns the items of a page of e's collection, resolving those
// not seen yet.
func (p *pageProver) resolve(e *custody.Entry, das []int64) ([]*pageItem, error) {
	const op = "gateway.BuildEvidence"
	if p.salter == nil {
		var err error
		if p.salter, err = p.src.Ledger.DeliverySalter(p.ctx); err != nil {
			return nil, err
		}
	}
	known := p.items[e.Collection]
	if known == nil {
		known = map[int64]*pageItem{}
		p.items[e.Collection] = known
	}
	out := make([]*pageItem, len(das))
	var missing []time.Time
	for k, d := range das {
		if out[k] = known[d]; out[k] == nil {
			missing = append(missing, time.UnixMicro(d).UTC())
		}
	}
	if len(missing) == 0 {
		return out, nil
	}
	vs, err := p.src.Store.ResolveAdded(p.ctx, e.Collection, missing)
	if err != nil {
		return nil, err
	}
	for k, v := range vs {
		if !v.Found {
			return nil, ctigate.E(op, ctigate.Internal, fmt.Sprintf("delivery %d: no version of %s was added at %s", e.Seq, e.Collection, custody.FormatTime(missing[k])))
		}
		it := custody.Item{ID: v.ID, Version: custody.FormatVersion(v.Version), Salt: p.salter.Salt(e.Collection, missing[k])}
		noSum, err := it.Leaf()
		if err != nil {
			return nil, ctigate.E(op, err)
		}
		it.SHA256 = custody.HexHash(v.Hash)
		leaf, err := it.Leaf()
		if err != nil {
			return nil, ctigate.E(op, err)
		}
		known[missing[k].UnixMicro()] = &pageItem{item: it, leaf: leaf, leafNoSum: noSum}
	}
	for k, d := range das {
		out[k] = known[d]
	}
	return out, nil
}

// DeliveryLedger is a ledger that records deliveries by reference.
type DeliveryLedger interface {
	store.IndexedLedger
	store.Deliveries
}

// DeliveriesOf returns the delivered entries, through seq through (0: the
// head), whose pages held the version added to collection at at: the
// deliveries whose ranges hold at (the ledger's index, built first), kept
// when their manifests list at.
func DeliveriesOf(ctx context.Context, l DeliveryLedger, collection string, at time.Time, through uint64) ([]custody.Entry, error) {
	return deliveriesOf(ctx, l, collection, at, through, manifestCache{})
}

// manifestCache holds the manifests read, as Unix microseconds, by
// collection and items root.
type manifestCache map[string][]int64

func (m manifestCache) get(ctx context.Context, l DeliveryLedger, e *custody.Entry) ([]int64, error) {
	key := e.Collection + "\x00" + e.ItemsRoot
	if das, ok := m[key]; ok {
		return das, nil
	}
	b, err := l.Manifest(ctx, e.Collection, e.ItemsRoot)
	if err != nil {
		return nil, fmt.Errorf("delivery %d: its page's manifest: %w", e.Seq, err)
	}
	das, err := custody.DecodeManifestMicros(b)
	if err != nil || len(das) != e.Count {
		return nil, ctigate.E("gateway.deliveries", ctigate.Internal, fmt.Sprintf("delivery %d: its page's manifest does not match the entry", e.Seq))
	}
	m[key] = das
	return das, nil
}

func deliveriesOf(ctx context.Context, l DeliveryLedger, collection string, at time.Time, through uint64, manifests manifestCache) ([]custody.Entry, error) {
	through, err := store.IndexLedger(ctx, l, through)
	if err != nil {
		return nil, err
	}
	var out []custody.Entry
	us := at.UnixMicro()
	for after := uint64(0); ; {
		seqs, err := l.DeliveriesContaining(ctx, collection, at, after, store.MaxLedgerLimit)
		if err != nil {
			return nil, err
		}
		for _, seq := range seqs {
			if seq > through {
				continue
			}
			e, err := l.LedgerEntry(ctx, seq)
			if err != nil {
				return nil, err
			}
			das, err := manifests.get(ctx, l, &e)
			if err != nil {
				return nil, err
			}
			if _, found := slices.BinarySearch(das, us); found {
				out = append(out, e)
			}
		}
		if len(seqs) < store.MaxLedgerLimit {
			return out, nil
		}
		after = seqs[len(seqs)-1]
	}
}
