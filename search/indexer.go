package search

// How the index is kept. Each collection's date_added order is a durable,
// ordered log (as for fan-out). The indexer keeps one index checkpoint
// per collection: the date_added of the last version it indexed. A pass
// reads each collection after its checkpoint, extracts the observables of
// every version, and writes their entries and then the new checkpoint
// (store.Index.AddIndexEntries, which moves the checkpoint only once the
// entries are written), so a crash loses no work, and the entries it may
// write again replace themselves. Dropping the index drops its
// checkpoints too, and the next passes index every collection again from
// the start.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"

	"github.com/ctigate/ctigate/internal/backoff"
	"github.com/ctigate/ctigate/stix"
	"github.com/ctigate/ctigate/store"
	"github.com/ctigate/ctigate/telemetry"
)

// Defaults for IndexerOptions.
const (
	DefaultInterval  = time.Second
	DefaultMinGap    = time.Second
	DefaultBatchSize = 5000
	// DefaultMaxObservables is the usual IndexerOptions.MaxObservables.
	DefaultMaxObservables = 1000
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
	// MaxObservables bounds the index entries of one object version: an
	// object with more distinct observables is indexed by the first
	// MaxObservables (in the order of its pattern, or of its SCOs), and
	// the pass logs it, counts it in Stats.Partial and in the metrics.
	// It bounds what one object version can add to the index (each entry
	// takes some 400 to 450 bytes in either backend), whatever its
	// pattern lists. Default: DefaultMaxObservables.
	MaxObservables int
	// MaxObservablesOf, when set, is read at each pass instead of
	// MaxObservables (the configuration in force). Versions indexed
	// before a change keep their entries.
	MaxObservablesOf func() int
	// MaxObservablesKey is the setting that sets MaxObservables, named in
	// log lines. Default: "search.max_observables_per_object".
	MaxObservablesKey string
	// MeterProvider receives the indexer's metrics. Default: none.
	MeterProvider metric.MeterProvider
	// Follow, when set, returns for a collection the date_added through
	// which every route reading it has decided its versions (fan-out's
	// checkpoints), and false when no route reads it. The indexer then
	// indexes that collection no further than that, except for versions
	// added more than FollowWait ago: a route's unchanged copy is indexed
	// soon after its source and reuses its extraction (extractCache)
	// instead of reading its bytes again, however far publication is
	// behind ingest (up to FollowWait). Default: none (each collection is
	// indexed up to its end).
	Follow func(ctx context.Context, collection string) (time.Time, bool, error)
	// FollowWait bounds how long Follow holds a version back. Default:
	// DefaultFollowWait.
	FollowWait time.Duration
	// Clock is the time FollowWait is measured against. Default:
	// time.Now.
	Clock func() time.Time
}

// DefaultFollowWait is the usual IndexerOptions.FollowWait: longer than
// publication lags behind a burst of a few hundred thousand objects on two
// cores (docs/performance.md), short enough for search.
const DefaultFollowWait = 10 * time.Second

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
	maxObs   int
	maxObsOf func() int
	maxKey   string
	partial  metric.Int64Counter // object versions indexed partially
	skipped  metric.Int64Counter // observables of those left out
	versions metric.Int64Counter // object versions indexed, by whether their extraction was reused
	follow   func(ctx context.Context, collection string) (time.Time, bool, error)
	wait     time.Duration // FollowWait
	now      func() time.Time
	wake     chan struct{}
	mu       sync.Mutex // held by a pass
	extracts extractCache
}

// extractCacheSize bounds how many extractions the indexer remembers: a
// few batches' worth, enough to span an inbound batch and the routes'
// copies of it.
const extractCacheSize = 16384

// extractCache remembers what extraction found in recently indexed
// versions, by their canonical hash (store.Object.Hash): a route's copy
// published unchanged has the hash of its source version, so the indexer
// reads it once for the inbound collection and every route. What it keeps
// depends on the object's JSON value alone, which the hash identifies:
// Extract's result, and the object-level TLP (stix.Resolution.TLP, which
// only the standard TLP definitions set, whatever statement definitions a
// registry holds).
//
// It holds two generations of at most extractCacheSize/2 each: puts go
// into the newer; when it is full it becomes the older one and the older
// one is dropped whole. Nothing is ever deleted from a map: a Go map that
// keeps its size under steady deletes and inserts fills with deleted
// slots that lengthen every probe (evicting one entry per put cost more
// than the lookups it saved).
type extractCache struct {
	mu         sync.Mutex
	cur, older map[[32]byte]extraction
}

// extraction is what the indexer reads of one object version: what
// Extract finds, and the label of its object-level TLP ("TLP:unknown"
// when its markings do not resolve).
type extraction struct {
	Extracted
	TLP string
}

func (c *extractCache) get(h [32]byte) (extraction, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if ex, ok := c.cur[h]; ok {
		return ex, true
	}
	ex, ok := c.older[h]
	return ex, ok
}

func (c *extractCache) put(h [32]byte, ex extraction) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.cur[h]; ok {
		return
	}
	if len(c.cur) >= extractCacheSize/2 || c.cur == nil {
		c.older, c.cur = c.cur, make(map[[32]byte]extraction, extractCacheSize/2)
	}
	// Clipped: a caller appending to them must not write into the cache.
	ex.Observables, ex.Refs, ex.Labels = slices.Clip(ex.Observables), slices.Clip(ex.Refs), slices.Clip(ex.Labels)
	c.cur[h] = ex
}

// unknownTLP labels index entries of objects whose markings do not
// resolve.
const unknownTLP = "TLP:unknown"

// extract returns what o's bytes hold for the index, from the cache when
// they were seen. One pass over the bytes resolves the markings and finds
// the members Extract reads (stix.Markings.ResolveMembers); bytes whose
// markings do not resolve are read by Extract alone, with an unknown TLP.
func (x *Indexer) extract(o *store.Object) (ex extraction, reused bool, err error) {
	if o.Hash != ([32]byte{}) {
		if ex, ok := x.extracts.get(o.Hash); ok {
			return ex, true, nil
		}
	}
	res, vals, rerr := x.markings.Of(o.Producer).ResolveMembers(o.Raw, objectMembers)
	if rerr == nil {
		ex.Extracted, err = extractValues(vals)
		ex.TLP = res.TLP.String()
	} else {
		ex.Extracted, err = Extract(o.Raw)
		ex.TLP = unknownTLP
	}
	if err == nil && o.Hash != ([32]byte{}) {
		x.extracts.put(o.Hash, ex)
	}
	return ex, false, err
}

// Attribute of the indexer's metrics: the collection's id (bounded by
// configuration).
var attrCollection = attribute.Key("ctigate.collection")

// attrExtraction says whether a version's extraction was read from its
// bytes ("read") or reused from the cache ("reused").
var attrExtraction = attribute.Key("ctigate.extraction")

// NewIndexer returns an Indexer; start it with Run.
func NewIndexer(opts IndexerOptions) *Indexer {
	x := &Indexer{
		st: opts.Store, colls: opts.Collections, collsOf: opts.CollectionsOf, markings: opts.Markings, log: opts.Logger,
		interval: opts.Interval, minGap: opts.MinGap, batch: opts.BatchSize, wake: make(chan struct{}, 1),
		maxObs: opts.MaxObservables, maxObsOf: opts.MaxObservablesOf, maxKey: opts.MaxObservablesKey,
		follow: opts.Follow, wait: opts.FollowWait, now: opts.Clock,
	}
	if x.wait <= 0 {
		x.wait = DefaultFollowWait
	}
	if x.now == nil {
		x.now = time.Now
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
	if x.maxKey == "" {
		x.maxKey = "search.max_observables_per_object"
	}
	mp := opts.MeterProvider
	if mp == nil {
		mp = noop.NewMeterProvider()
	}
	meter := mp.Meter(telemetry.ScopeName)
	var err1, err2, err3 error
	x.partial, err1 = meter.Int64Counter("ctigate.search.objects.partial", metric.WithUnit("{version}"),
		metric.WithDescription("Object versions indexed by only the first of their observables (over the per-object limit), by collection."))
	x.skipped, err2 = meter.Int64Counter("ctigate.search.observables.skipped", metric.WithUnit("{observable}"),
		metric.WithDescription("Observables left out of the search index by the per-object limit, by collection."))
	x.versions, err3 = meter.Int64Counter("ctigate.search.versions", metric.WithUnit("{version}"),
		metric.WithDescription("Object versions indexed, by collection and by extraction: read from their bytes, or reused from a version with the same canonical hash indexed shortly before (a route's unchanged copy)."))
	if err := errors.Join(err1, err2, err3); err != nil {
		x.log.Error("search: creating metric instruments failed; indexer metrics are off", "err", err)
		x.partial, x.skipped, x.versions = noop.Int64Counter{}, noop.Int64Counter{}, noop.Int64Counter{}
	}
	return x
}

// maxObservables is the per-object limit in force.
func (x *Indexer) maxObservables() int {
	n := x.maxObs
	if x.maxObsOf != nil {
		n = x.maxObsOf()
	}
	if n <= 0 {
		n = DefaultMaxObservables
	}
	return n
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
// After a failed pass it waits longer each time (from Interval, doubling,
// up to 30 seconds, or until Notify), and logs the failure once, then
// once more when a pass succeeds again (package backoff).
func (x *Indexer) Run(ctx context.Context) error {
	t := time.NewTicker(x.interval)
	defer t.Stop()
	retry := backoff.Retry{What: "search: indexing pass", Log: x.log, Min: x.interval}
	for {
		start := time.Now()
		_, err := x.RunOnce(ctx)
		if ctx.Err() != nil {
			return nil
		}
		next, stop := t.C, func() bool { return false }
		if err != nil {
			wait := time.NewTimer(retry.Failed(err))
			next, stop = wait.C, wait.Stop
		} else {
			retry.Succeeded()
		}
		if gap := x.minGap - time.Since(start); gap > 0 {
			select {
			case <-ctx.Done():
				stop()
				return nil
			case <-time.After(gap):
			}
		}
		select {
		case <-ctx.Done():
			stop()
			return nil
		case <-next:
		case <-x.wake:
			stop()
		}
	}
}

// Stats count what passes indexed.
type Stats struct {
	Versions int // object versions read
	Entries  int // index entries written
	// Partial counts the object versions with more observables than the
	// per-object limit, indexed by the first of them only.
	Partial int
	// Reused counts the object versions whose extraction was not read
	// from their bytes but taken from a version with the same canonical
	// hash indexed shortly before (extractCache).
	Reused int
}

// RunOnce brings the index up to date with every collection (as far as
// Follow lets it). It takes the collections in turn, a batch of each at
// a time, so that a route's copies are indexed close to their sources
// (extractCache).
func (x *Indexer) RunOnce(ctx context.Context) (Stats, error) {
	x.mu.Lock()
	defer x.mu.Unlock()
	var total Stats
	var errs []error
	colls := x.colls
	if x.collsOf != nil {
		colls = x.collsOf()
	}
	for len(colls) > 0 {
		var more []string
		for _, c := range colls {
			st, again, err := x.indexBatch(ctx, c)
			total.Versions += st.Versions
			total.Reused += st.Reused
			total.Entries += st.Entries
			total.Partial += st.Partial
			if err != nil {
				errs = append(errs, fmt.Errorf("collection %s: %w", c, err))
				if ctx.Err() != nil {
					return total, errors.Join(errs...)
				}
				continue
			}
			if again {
				more = append(more, c)
			}
		}
		colls = more
	}
	return total, errors.Join(errs...)
}

// bound returns the date_added through which coll may be indexed now,
// and false when it may be indexed to its end (see Follow).
func (x *Indexer) bound(ctx context.Context, coll string) (time.Time, bool, error) {
	if x.follow == nil {
		return time.Time{}, false, nil
	}
	at, ok, err := x.follow(ctx, coll)
	if err != nil || !ok {
		return time.Time{}, false, err
	}
	if waited := x.now().Add(-x.wait); waited.After(at) {
		at = waited
	}
	return at, true, nil
}

// indexBatch indexes the next batch of coll's versions after its index
// checkpoint, and says whether there is more to index now.
func (x *Indexer) indexBatch(ctx context.Context, coll string) (Stats, bool, error) {
	if err := ctx.Err(); err != nil {
		return Stats{}, false, err
	}
	name := CheckpointName(coll)
	cp, err := x.st.IndexCheckpoint(ctx, coll, name)
	if err != nil {
		return Stats{}, false, err
	}
	through, bounded, err := x.bound(ctx, coll)
	if err != nil {
		return Stats{}, false, err
	}
	if bounded && !through.After(cp) {
		return Stats{}, false, nil
	}
	page, err := x.st.Objects(ctx, coll, store.Query{
		AddedAfter: cp, Versions: []store.VersionMatch{{Kind: store.All}}, Limit: x.batch,
	})
	if err != nil {
		return Stats{}, false, err
	}
	objs, more := page.Objects, page.More
	if bounded {
		// Ascending: keep those added through the bound; the rest wait.
		k := sort.Search(len(objs), func(i int) bool { return objs[i].DateAdded.After(through) })
		if k < len(objs) {
			objs, more = objs[:k], false
		}
	}
	if len(objs) == 0 {
		page.Release()
		return Stats{}, false, nil
	}
	entries, partial, reused, err := x.entries(ctx, coll, objs, x.maxObservables())
	last, n := objs[len(objs)-1].DateAdded, len(objs)
	// The entries hold no bytes of the page (extraction copies what it
	// keeps): its memory goes back to the store for the next read.
	page.Release()
	if err != nil {
		return Stats{}, false, err
	}
	if err := x.st.AddIndexEntries(ctx, coll, entries, name, last); err != nil {
		return Stats{}, false, err
	}
	x.reportPartial(ctx, coll, partial)
	x.versions.Add(ctx, int64(n-reused), metric.WithAttributes(attrCollection.String(coll), attrExtraction.String("read")))
	x.versions.Add(ctx, int64(reused), metric.WithAttributes(attrCollection.String(coll), attrExtraction.String("reused")))
	return Stats{Versions: n, Reused: reused, Entries: len(entries), Partial: len(partial)}, more, nil
}

// Entries returns the index entries of objs, versions stored in coll,
// under the per-object limit in force. The SCOs observed-data refers to
// are looked up in coll.
func (x *Indexer) Entries(ctx context.Context, coll string, objs []store.Object) ([]store.IndexEntry, error) {
	out, _, _, err := x.entries(ctx, coll, objs, x.maxObservables())
	return out, err
}

// partialObject is an object version indexed partially: its first Indexed
// observables of Found.
type partialObject struct {
	ID             string
	Version        time.Time
	Found, Indexed int
}

// reportPartial logs and counts the versions of coll indexed partially.
func (x *Indexer) reportPartial(ctx context.Context, coll string, partial []partialObject) {
	if len(partial) == 0 {
		return
	}
	skipped := 0
	for _, p := range partial {
		skipped += p.Found - p.Indexed
		args := []any{"collection", coll, "id", p.ID}
		if !p.Version.IsZero() {
			args = append(args, "version", stix.FormatTimestamp(p.Version))
		}
		x.log.Warn("search: object indexed partially: it has more observables than the limit",
			append(args, "observables", p.Found, "indexed", p.Indexed, "limit_setting", x.maxKey)...)
	}
	attrs := metric.WithAttributes(attrCollection.String(coll))
	x.partial.Add(ctx, int64(len(partial)), attrs)
	x.skipped.Add(ctx, int64(skipped), attrs)
}

// entries returns the index entries of objs, at most limit per object,
// the objects that had more, and how many objects' extractions were
// reused (extractCache).
func (x *Indexer) entries(ctx context.Context, coll string, objs []store.Object, limit int) ([]store.IndexEntry, []partialObject, int, error) {
	// What each object yields first, then the entries in one allocation:
	// an IndexEntry is some 250 bytes, and growing the slice entry by
	// entry copied them over and over.
	type found struct {
		o   *store.Object
		ex  extraction
		obs []Observable
	}
	var (
		finds   []found
		n       int
		partial []partialObject
		reused  int
	)
	for i := range objs {
		o := &objs[i]
		ex, hit, err := x.extract(o)
		if hit {
			reused++
		}
		if err != nil {
			x.log.Debug("search: not indexed", "collection", coll, "id", o.ID, "err", err)
			continue
		}
		obs := ex.Observables
		if len(ex.Refs) > 0 {
			refs, err := x.scos(ctx, coll, ex.Refs)
			if err != nil {
				return nil, nil, 0, err
			}
			obs = dedup(append(slices.Clone(obs), refs...)) // not in place: obs may be the cache's
		}
		if len(obs) == 0 {
			continue
		}
		if len(obs) > limit {
			partial = append(partial, partialObject{ID: o.ID, Version: o.Version, Found: len(obs), Indexed: limit})
			obs = obs[:limit]
		}
		finds = append(finds, found{o, ex, obs})
		n += len(obs)
	}
	if n == 0 {
		return nil, partial, reused, nil
	}
	out := make([]store.IndexEntry, 0, n)
	for _, f := range finds {
		o := f.o
		for _, ob := range f.obs {
			out = append(out, store.IndexEntry{
				Class: ob.Class, Value: ob.Value, Collection: coll, ID: o.ID, Type: o.Type,
				Version: o.Version, DateAdded: o.DateAdded, TLP: f.ex.TLP, Producer: o.Producer,
				Labels: f.ex.Labels, Observable: ob.Given,
			})
		}
	}
	return out, partial, reused, nil
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
	p.Release() // the observables are copies
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
