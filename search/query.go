package search

import (
	"cmp"
	"context"
	"encoding/base64"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/ctigate/ctigate"
	"github.com/ctigate/ctigate/stix"
	"github.com/ctigate/ctigate/store"
)

// Limits of Query.Limit.
const (
	DefaultLimit = 100
	MaxLimit     = 1000
)

// Query is one observable lookup.
type Query struct {
	// Value is what to look for: an IPv4 or IPv6 address (finds the
	// address and every network holding it), a CIDR network (finds the
	// networks holding it), a domain, a URL, an e-mail address, or an
	// MD5, SHA-1, SHA-256 or SHA-512 hash in hex.
	Value string
	// Collections are the ids of the collections the caller may read.
	// Only hits in them are returned; none means no hits.
	Collections []string
	// Filters; each empty one matches everything. Several values of one
	// filter match any of them.
	Types     []string // STIX object types
	Labels    []string // labels (the object has one of them)
	TLPs      []string // TLP levels as stix.TLP.String() gives them, e.g. "TLP:AMBER", "TLP:none"
	Producers []string // producer organisations
	// AddedAfter and AddedBefore (both exclusive, zero for no bound)
	// restrict the matching versions to those added in that range.
	AddedAfter, AddedBefore time.Time
	// Limit is the maximum number of hits; <= 0 means DefaultLimit,
	// capped at MaxLimit.
	Limit int
	// Next is Result.Next of the previous page; "" for the first page.
	Next string
}

// Hit is one object, in one collection, that mentions the observable.
type Hit struct {
	Collection string
	ID         string
	Type       string
	Version    time.Time // the newest matching version (zero when unversioned)
	TLP        string    // of that version
	Producer   string    // of that version
	Labels     []string  // of that version
	// Revoked: the newest version of the object the collection holds
	// says "revoked": true (its producer revoked it).
	Revoked bool
	// FirstSeen and LastSeen are the date_added of the first and the last
	// matching version in the collection.
	FirstSeen, LastSeen time.Time
	// Matched are the observables that matched, as the object gave them.
	Matched []string
}

// Result is one page of hits, ordered by collection and id.
type Result struct {
	// Kind is how the value was read: "ipv4", "ipv6", "ipv4-network",
	// "ipv6-network", "domain", "url", "email", "md5", "sha1", "sha256" or
	// "sha512".
	Kind string
	// Normalised is the value as the index holds it.
	Normalised string
	Hits       []Hit
	// Next, when set, fetches the next page.
	Next string
}

// Store is what a Searcher reads: the index, and the collections, to
// drop hits whose versions were deleted since they were indexed.
type Store interface {
	store.Index
	Objects(ctx context.Context, collection string, q store.Query) (store.Page, error)
}

// Searcher answers lookups.
type Searcher struct {
	st Store
}

// NewSearcher returns a Searcher over st.
func NewSearcher(st Store) *Searcher { return &Searcher{st: st} }

// Parse reads a query value: its kind, its normalised form, and the index
// keys to look up given the classes present in the index.
func Parse(value string, classes []string) (kind, normalised string, keys []store.IndexKey, err error) {
	const op = "search.Parse"
	v := strings.TrimSpace(value)
	if v == "" {
		return "", "", nil, ctigate.E(op, ctigate.Invalid, "value is required")
	}
	if len(v) > maxValue {
		return "", "", nil, ctigate.E(op, ctigate.Invalid, "value is too long")
	}
	if !utf8.ValidString(v) {
		return "", "", nil, ctigate.E(op, ctigate.Invalid, "value is not valid UTF-8")
	}
	if ob, ok := IP(v); ok {
		p, _ := netip.ParsePrefix(ob.Value + "/" + ob.Class[5:])
		kind = ob.Class[:4]
		if p.Bits() < p.Addr().BitLen() {
			kind += "-network"
			normalised = p.String()
		} else {
			normalised = ob.Value
		}
		// Every network of a length present in the index that holds p.
		for _, c := range classes {
			if !strings.HasPrefix(c, ob.Class[:5]) {
				continue
			}
			bits, err := strconv.Atoi(c[5:])
			if err != nil || bits > p.Bits() {
				continue
			}
			if q, err := p.Addr().Prefix(bits); err == nil {
				keys = append(keys, store.IndexKey{Class: c, Value: q.Addr().String()})
			}
		}
		return kind, normalised, keys, nil
	}
	if len(v) == 32 || len(v) == 40 || len(v) == 64 || len(v) == 128 {
		for alg := range hashClasses {
			if ob, ok := Hash(alg, v); ok {
				return ob.Class, ob.Value, []store.IndexKey{{Class: ob.Class, Value: ob.Value}}, nil
			}
		}
	}
	if strings.Contains(v, "://") {
		ob := URL(v)[0]
		return "url", ob.Value, []store.IndexKey{{Class: ob.Class, Value: ob.Value}}, nil
	}
	if strings.Contains(v, "@") {
		if ob, ok := Email(v); ok {
			return "email", ob.Value, []store.IndexKey{{Class: ob.Class, Value: ob.Value}}, nil
		}
	}
	if ob, ok := Domain(v); ok {
		return "domain", ob.Value, []store.IndexKey{{Class: ob.Class, Value: ob.Value}}, nil
	}
	return "", "", nil, ctigate.E(op, ctigate.Invalid, "value is not an IP address or network, domain, URL, e-mail address or MD5/SHA-1/SHA-256/SHA-512 hash")
}

// hitKey orders hits and makes the paging cursor.
type hitKey struct{ coll, id string }

func (k hitKey) cursor() string {
	return base64.RawURLEncoding.EncodeToString([]byte(k.coll + "\x00" + k.id))
}

func parseCursor(s string) (hitKey, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return hitKey{}, err
	}
	c, id, ok := strings.Cut(string(b), "\x00")
	if !ok {
		return hitKey{}, strconv.ErrSyntax
	}
	return hitKey{c, id}, nil
}

type group struct {
	key     hitKey
	entries []store.IndexEntry
}

// Search returns one page of the objects in q.Collections that mention
// q.Value. Versions deleted since they were indexed are not returned.
func (s *Searcher) Search(ctx context.Context, q Query) (Result, error) {
	const op = "search.Search"
	var after hitKey
	if q.Next != "" {
		k, err := parseCursor(q.Next)
		if err != nil {
			return Result{}, ctigate.E(op, ctigate.Invalid, "next is not a cursor this server issued")
		}
		after = k
	}
	limit := q.Limit
	if limit <= 0 {
		limit = DefaultLimit
	}
	limit = min(limit, MaxLimit)
	classes, err := s.st.IndexClasses(ctx)
	if err != nil {
		return Result{}, err
	}
	kind, norm, keys, err := Parse(q.Value, classes)
	if err != nil {
		return Result{}, err
	}
	res := Result{Kind: kind, Normalised: norm, Hits: []Hit{}}
	if len(keys) == 0 || len(q.Collections) == 0 {
		return res, nil
	}
	entries, err := s.st.IndexLookup(ctx, keys)
	if err != nil {
		return Result{}, err
	}
	readable := make(map[string]bool, len(q.Collections))
	for _, c := range q.Collections {
		readable[c] = true
	}
	groups := map[hitKey]*group{}
	for _, e := range entries {
		k := hitKey{e.Collection, e.ID}
		if !readable[e.Collection] || !q.matches(&e) || (q.Next != "" && compareKeys(k, after) <= 0) {
			continue
		}
		g := groups[k]
		if g == nil {
			g = &group{key: k}
			groups[k] = g
		}
		g.entries = append(g.entries, e)
	}
	ordered := make([]*group, 0, len(groups))
	for _, g := range groups {
		ordered = append(ordered, g)
	}
	slices.SortFunc(ordered, func(a, b *group) int { return compareKeys(a.key, b.key) })
	for i, g := range ordered {
		if len(res.Hits) == limit {
			res.Next = ordered[i-1].key.cursor()
			break
		}
		h, ok, err := s.hit(ctx, g)
		if err != nil {
			return Result{}, err
		}
		if ok {
			res.Hits = append(res.Hits, h)
		}
	}
	return res, nil
}

func compareKeys(a, b hitKey) int {
	return cmp.Or(strings.Compare(a.coll, b.coll), strings.Compare(a.id, b.id))
}

func (q *Query) matches(e *store.IndexEntry) bool {
	switch {
	case len(q.Types) > 0 && !slices.Contains(q.Types, e.Type):
	case len(q.TLPs) > 0 && !slices.Contains(q.TLPs, e.TLP):
	case len(q.Producers) > 0 && !slices.Contains(q.Producers, e.Producer):
	case len(q.Labels) > 0 && !slices.ContainsFunc(e.Labels, func(l string) bool { return slices.Contains(q.Labels, l) }):
	case !q.AddedAfter.IsZero() && !e.DateAdded.After(q.AddedAfter):
	case !q.AddedBefore.IsZero() && !e.DateAdded.Before(q.AddedBefore):
	default:
		return true
	}
	return false
}

// hit builds the hit of a group from the versions still stored; ok is
// false when none is.
func (s *Searcher) hit(ctx context.Context, g *group) (Hit, bool, error) {
	type ver struct {
		v time.Time
		d int64
	}
	stored := map[ver]bool{}
	pq := store.Query{IDs: []string{g.key.id}, Versions: []store.VersionMatch{{Kind: store.All}}, WithoutRaw: true, Limit: store.DefaultLimit}
	for {
		p, err := s.st.Objects(ctx, g.key.coll, pq)
		if err != nil {
			if ctigate.KindOf(err) == ctigate.NotFound {
				return Hit{}, false, nil
			}
			return Hit{}, false, err
		}
		for _, o := range p.Objects {
			stored[ver{o.Version.UTC(), o.DateAdded.UnixMicro()}] = true
		}
		if !p.More {
			break
		}
		pq.Next = p.Next
	}
	var h Hit
	var newest *store.IndexEntry
	for i := range g.entries {
		e := &g.entries[i]
		if !stored[ver{e.Version.UTC(), e.DateAdded.UnixMicro()}] {
			continue // deleted since it was indexed (or deleted and added again: the new copy has an entry of its own)
		}
		if newest == nil {
			h.FirstSeen, h.LastSeen = e.DateAdded, e.DateAdded
		}
		if newest == nil || e.Version.After(newest.Version) || (e.Version.Equal(newest.Version) && e.DateAdded.After(newest.DateAdded)) {
			newest = e
		}
		if e.DateAdded.Before(h.FirstSeen) {
			h.FirstSeen = e.DateAdded
		}
		if e.DateAdded.After(h.LastSeen) {
			h.LastSeen = e.DateAdded
		}
		if !slices.Contains(h.Matched, e.Observable) {
			h.Matched = append(h.Matched, e.Observable)
		}
	}
	if newest == nil {
		return Hit{}, false, nil
	}
	h.Collection, h.ID, h.Type, h.Version = newest.Collection, newest.ID, newest.Type, newest.Version
	h.TLP, h.Producer, h.Labels = newest.TLP, newest.Producer, newest.Labels
	// A revoked version need not mention the observable: read the newest.
	p, err := s.st.Objects(ctx, g.key.coll, store.Query{IDs: []string{g.key.id}, Limit: 1})
	if err != nil && ctigate.KindOf(err) != ctigate.NotFound {
		return Hit{}, false, err
	}
	h.Revoked = len(p.Objects) > 0 && stix.Revoked(p.Objects[0].Raw)
	return h, true, nil
}

// Objects reads a collection's object versions (store.Store.Objects).
type Objects interface {
	Objects(ctx context.Context, collection string, q store.Query) (store.Page, error)
}

// Join makes a Store of a store's collections and a search index kept
// apart from it (bolt.Index, redis.Index).
func Join(objects Objects, index store.Index) Store {
	return joined{index, objects}
}

type joined struct {
	store.Index
	o Objects
}

func (j joined) Objects(ctx context.Context, collection string, q store.Query) (store.Page, error) {
	return j.o.Objects(ctx, collection, q)
}
