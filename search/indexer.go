package search

// How the index is kept. Each collection's date_added order is a durable,
// ordered log (as for fan-out). The indexer keeps one index checkpoint
// per collection: the date_added of the last version it indexed. A pass
// reads each collection after its checkpoint, extracts the observables of
// every version, and writes their entries and the new checkpoint in one
// atomic write (store.Index.AddIndexEntries), so a crash neither loses
// nor repeats work. Dropping the index drops its checkpoints too, and the
// next passes index every collection again from the start.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/ctigate/ctigate/stix"
	"github.com/ctigate/ctigate/store"
)

// Defaults for IndexerOptions.
const (
	DefaultInterval  = time.Second
	DefaultMinGap    = time.Second
	DefaultBatchSize = 5000
)

// IndexerOptions configure an Indexer.
type IndexerOptions struct {
	Store Store
	// Collections are the ids of the collections to index.
	Collections []string
	// CollectionsOf, when set, is read at each pass instead of Collections
	// (the configuration in force, which a reload may replace).
	CollectionsOf func() []string
	// Markings resolves TLP levels (the server's registry). Default: TLP
	// only.
	Markings *stix.Markings
	Logger   *slog.Logger // default: discard
	// Interval is how often Run polls the collections. Default:
	// DefaultInterval.
	Interval time.Duration
	// MinGap is the least time between the starts of two passes, however
	// often Notify is called: under a stream of ingests, passes then
	// index large batches instead of competing with every write for the
	// store. Default: DefaultMinGap; negative: no gap.
	MinGap time.Duration
	// BatchSize is the number of versions read and indexed at a time.
	// Default: DefaultBatchSize.
	BatchSize int
}

// Indexer keeps the search index up to date with the collections.
type Indexer struct {
	st       Store
	colls    []string
	collsOf  func() []string
	markings *stix.Markings
	log      *slog.Logger
	interval time.Duration
	minGap   time.Duration
	batch    int
	wake     chan struct{}
	mu       sync.Mutex // held by a pass
}

// NewIndexer returns an Indexer; start it with Run.
func NewIndexer(opts IndexerOptions) *Indexer {
	x := &Indexer{
		st: opts.Store, colls: opts.Collections, collsOf: opts.CollectionsOf, markings: opts.Markings, log: opts.Logger,
		interval: opts.Interval, minGap: opts.MinGap, batch: opts.BatchSize, wake: make(chan struct{}, 1),
	}
	if x.minGap == 0 {
		x.minGap = DefaultMinGap
	}
	if x.markings == nil {
		x.markings = stix.NewMarkings()
	}
	if x.log == nil {
		x.log = slog.New(slog.DiscardHandler)
	}
	if x.interval <= 0 {
		x.interval = DefaultInterval
	}
	if x.batch <= 0 {
		x.batch = DefaultBatchSize
	}
	return x
}

// CheckpointName is the index checkpoint of collection.
func CheckpointName(collection string) string { return "search/" + collection }

// Notify wakes Run for a pass now, e.g. after a write. It never blocks.
func (x *Indexer) Notify() {
	select {
	case x.wake <- struct{}{}:
	default:
	}
}

// Run makes passes every Interval, and whenever Notify is called, until
// ctx is done; then it returns nil once the pass under way has stopped.
func (x *Indexer) Run(ctx context.Context) error {
	t := time.NewTicker(x.interval)
	defer t.Stop()
	for {
		start := time.Now()
		if _, err := x.RunOnce(ctx); err != nil && ctx.Err() == nil {
			x.log.Error("search: indexing pass failed; retrying", "err", err)
		}
		if gap := x.minGap - time.Since(start); gap > 0 {
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(gap):
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		case <-x.wake:
		}
	}
}

// Stats count what passes indexed.
type Stats struct {
	Versions int // object versions read
	Entries  int // index entries written
}

// RunOnce brings the index up to date with every collection.
func (x *Indexer) RunOnce(ctx context.Context) (Stats, error) {
	x.mu.Lock()
	defer x.mu.Unlock()
	var total Stats
	var errs []error
	colls := x.colls
	if x.collsOf != nil {
		colls = x.collsOf()
	}
	for _, c := range colls {
		st, err := x.drain(ctx, c)
		total.Versions += st.Versions
		total.Entries += st.Entries
		if err != nil {
			errs = append(errs, fmt.Errorf("collection %s: %w", c, err))
		}
	}
	return total, errors.Join(errs...)
}

func (x *Indexer) drain(ctx context.Context, coll string) (Stats, error) {
	name := CheckpointName(coll)
	var total Stats
	for {
		if err := ctx.Err(); err != nil {
			return total, err
		}
		cp, err := x.st.IndexCheckpoint(ctx, coll, name)
		if err != nil {
			return total, err
		}
		page, err := x.st.Objects(ctx, coll, store.Query{
			AddedAfter: cp, Versions: []store.VersionMatch{{Kind: store.All}}, Limit: x.batch,
		})
		if err != nil {
			return total, err
		}
		if len(page.Objects) == 0 {
			return total, nil
		}
		entries, err := x.Entries(ctx, coll, page.Objects)
		if err != nil {
			return total, err
		}
		if err := x.st.AddIndexEntries(ctx, coll, entries, name, page.Objects[len(page.Objects)-1].DateAdded); err != nil {
			return total, err
		}
		total.Versions += len(page.Objects)
		total.Entries += len(entries)
		if !page.More {
			return total, nil
		}
	}
}

// Entries returns the index entries of objs, versions stored in coll.
// The SCOs observed-data refers to are looked up in coll.
func (x *Indexer) Entries(ctx context.Context, coll string, objs []store.Object) ([]store.IndexEntry, error) {
	var out []store.IndexEntry
	for i := range objs {
		o := &objs[i]
		ex, err := Extract(o.Raw)
		if err != nil {
			x.log.Debug("search: not indexed", "collection", coll, "id", o.ID, "err", err)
			continue
		}
		obs := ex.Observables
		if len(ex.Refs) > 0 {
			refs, err := x.scos(ctx, coll, ex.Refs)
			if err != nil {
				return nil, err
			}
			obs = dedup(append(obs, refs...))
		}
		if len(obs) == 0 {
			continue
		}
		tlp := "TLP:unknown"
		if res, err := x.markings.Of(o.Producer).Resolve(o.Raw); err == nil {
			tlp = res.TLP.String()
		}
		for _, ob := range obs {
			out = append(out, store.IndexEntry{
				Class: ob.Class, Value: ob.Value, Collection: coll, ID: o.ID, Type: o.Type,
				Version: o.Version, DateAdded: o.DateAdded, TLP: tlp, Producer: o.Producer,
				Labels: ex.Labels, Observable: ob.Given,
			})
		}
	}
	return out, nil
}

// maxRefs bounds the object_refs of one observed-data object followed.
const maxRefs = 1000

// scos returns the observables of the SCOs among refs that coll holds.
func (x *Indexer) scos(ctx context.Context, coll string, refs []string) ([]Observable, error) {
	var ids []string
	for _, r := range refs[:min(len(refs), maxRefs)] {
		switch t, _, _ := cutType(r); t {
		case "ipv4-addr", "ipv6-addr", "domain-name", "url", "email-addr", "file", "artifact":
			ids = append(ids, r)
		}
	}
	if len(ids) == 0 {
		return nil, nil
	}
	p, err := x.st.Objects(ctx, coll, store.Query{IDs: ids, Limit: len(ids)})
	if err != nil {
		return nil, err
	}
	var out []Observable
	for _, o := range p.Objects {
		out = append(out, ExtractSCO(o.Raw)...)
	}
	return out, nil
}

func cutType(id string) (string, string, bool) {
	for i := 0; i+1 < len(id); i++ {
		if id[i] == '-' && id[i+1] == '-' {
			return id[:i], id[i+2:], true
		}
	}
	return "", id, false
}
