package server

import (
	"bufio"
	"context"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/go-json-experiment/json"
	"github.com/labstack/echo/v4"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/ctigate/ctigate"
	"github.com/ctigate/ctigate/custody"
	"github.com/ctigate/ctigate/gateway"
	"github.com/ctigate/ctigate/store"
)

// Ledger is what the server needs from the custody ledger: its entries,
// its index (evidence packages prove entries against its Merkle tree) and
// deliveries recorded by reference.
type Ledger = gateway.DeliveryLedger

// auditRole may read the custody ledger: hashes and metadata, never
// object content (DESIGN.md, "Roles").
const auditRole = "auditor"

var (
	errNotAuditor = ctigate.E("server.audit", ctigate.Forbidden, "the custody ledger is readable by the auditor role only")
	errNoLedger   = ctigate.E("server.audit", ctigate.Unavailable, "this gateway keeps no custody ledger")
)

func (s *Server) auditor(c echo.Context) error {
	if u := userOf(c); u == nil || !u.HasRole(auditRole) {
		return errNotAuditor
	}
	if s.ledger == nil {
		return errNoLedger
	}
	return nil
}

// ledgerQuery parses ?object=&user=&org=&route=&action=&collection=
// &from=&to=&after=&through=&limit=.
func ledgerQuery(c echo.Context) (store.LedgerQuery, error) {
	const op = "server.audit"
	q := store.LedgerQuery{
		ObjectID: c.QueryParam("object"), User: c.QueryParam("user"), Org: c.QueryParam("org"),
		Route: c.QueryParam("route"), Action: c.QueryParam("action"), Collection: c.QueryParam("collection"),
	}
	for _, p := range []struct {
		name string
		dst  *time.Time
	}{{"from", &q.From}, {"to", &q.To}} {
		if v := c.QueryParam(p.name); v != "" {
			t, err := time.Parse(time.RFC3339Nano, v)
			if err != nil {
				return q, ctigate.E(op, ctigate.Invalid, p.name+" must be an RFC 3339 time")
			}
			*p.dst = t
		}
	}
	for _, p := range []struct {
		name string
		dst  *uint64
	}{{"after", &q.After}, {"through", &q.Through}} {
		if v := c.QueryParam(p.name); v != "" {
			n, err := strconv.ParseUint(v, 10, 64)
			if err != nil {
				return q, ctigate.E(op, ctigate.Invalid, p.name+" must be a ledger sequence number")
			}
			*p.dst = n
		}
	}
	if v := c.QueryParam("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return q, ctigate.E(op, ctigate.Invalid, "limit must be a positive integer")
		}
		q.Limit = min(n, store.MaxLedgerLimit)
	}
	if q.Limit == 0 {
		q.Limit = store.DefaultLedgerLimit
	}
	return q, nil
}

// entriesPage is the response of GET /api/v1/audit/entries.
type entriesPage struct {
	Entries []custody.Entry `json:"entries"`
	// Next, when set, is the after value of the next page.
	Next string `json:"next,omitempty"`
}

// getLedgerEntries lists ledger entries, oldest first.
func (s *Server) getLedgerEntries(c echo.Context) error {
	if err := s.auditor(c); err != nil {
		return err
	}
	q, err := ledgerQuery(c)
	if err != nil {
		return err
	}
	u := userOf(c)
	limit := q.Limit
	es, next, err := visiblePage(q.After, limit, func(after uint64) ([]custody.Entry, error) {
		q.After = after
		return s.ledger.LedgerEntries(c.Request().Context(), q)
	}, func(e *custody.Entry) uint64 { return e.Seq }, func(e *custody.Entry) bool { return s.viewOf(c).access.SeesEntry(u, e) })
	if err != nil {
		return err
	}
	page := entriesPage{Entries: es}
	if page.Entries == nil {
		page.Entries = []custody.Entry{}
	}
	if next > 0 {
		page.Next = strconv.FormatUint(next, 10)
	}
	return writePlainJSON(c, page)
}

// maxScanPages bounds how many store pages one scoped page of records
// reads: a reader who sees few of them gets a short page with a next
// cursor rather than a request that reads the whole ledger.
const maxScanPages = 16

// visiblePage reads records after a sequence number through read (pages
// of at most limit, in ascending seq) and keeps those keep accepts, until
// limit are kept, the records end, or maxScanPages pages were read. next
// is where the following page starts, 0 when the records ended.
func visiblePage[T any](after uint64, limit int, read func(after uint64) ([]T, error), seq func(*T) uint64, keep func(*T) bool) (out []T, next uint64, err error) {
	for range maxScanPages {
		rs, err := read(after)
		if err != nil {
			return nil, 0, err
		}
		for i := range rs {
			if keep(&rs[i]) {
				out = append(out, rs[i])
				if len(out) == limit {
					// More may follow unless this was the last record read
					// and the read was short.
					if i < len(rs)-1 || len(rs) == limit {
						return out, seq(&rs[i]), nil
					}
					return out, 0, nil
				}
			}
		}
		if len(rs) < limit {
			return out, 0, nil
		}
		after = seq(&rs[len(rs)-1])
	}
	return out, after, nil
}

// writePlainJSON answers 200 with v as plain JSON, neither sniffed nor
// cached (the gateway's own API, not TAXII).
func writePlainJSON(c echo.Context, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return ctigate.E("server", err)
	}
	h := c.Response().Header()
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	return c.Blob(http.StatusOK, echo.MIMEApplicationJSON, b)
}

// getLedgerExport streams the entries of ?after=&through= (the whole
// ledger by default), unfiltered, as JSON Lines: what `ctigate audit
// verify` reads.
func (s *Server) getLedgerExport(c echo.Context) error {
	if err := s.auditor(c); err != nil {
		return err
	}
	q, err := ledgerQuery(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	u := userOf(c)
	elide := func(e *custody.Entry) bool { return !s.viewOf(c).access.SeesEntry(u, e) }
	page := store.LedgerQuery{After: q.After, Through: q.Through, Limit: store.MaxLedgerLimit}
	es, err := s.ledger.LedgerEntries(ctx, page)
	if err != nil {
		return err
	}
	h := c.Response().Header()
	h.Set(echo.HeaderContentType, "application/jsonl")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	h.Set(echo.HeaderContentDisposition, `attachment; filename="ledger.jsonl"`)
	c.Response().WriteHeader(http.StatusOK)
	w := bufio.NewWriterSize(c.Response(), 64<<10)
	for len(es) > 0 {
		if err := custody.WriteJSONL(w, es, elide); err != nil {
			return nil // the client went away; the status is sent
		}
		if len(es) < page.Limit {
			break
		}
		page.After = es[len(es)-1].Seq
		if es, err = s.ledger.LedgerEntries(ctx, page); err != nil {
			s.log.Error("ledger export failed part way", "after", page.After, "err", err)
			return nil
		}
	}
	_ = w.Flush()
	return nil
}

// getEvidence serves the evidence package of one object, without its
// content: auditors see hashes and metadata. The package with the
// original bytes is made offline by `ctigate audit evidence`, by whoever
// holds the data file.
func (s *Server) getEvidence(c echo.Context) error {
	if err := s.auditor(c); err != nil {
		return err
	}
	u := userOf(c)
	ev, err := gateway.BuildEvidence(c.Request().Context(), gateway.EvidenceSource{
		Store: s.store, Ledger: s.ledger, Config: s.viewOf(c).cfg, Checkpoints: s.checkpoints, Now: s.now,
		Sees:        func(e *custody.Entry) bool { return s.viewOf(c).access.SeesEntry(u, e) },
		Collections: func(id string) bool { return s.viewOf(c).access.AuditsCollection(u, id) },
	}, c.Param("object"), false)
	if err != nil {
		return err
	}
	c.Response().Header().Set(echo.HeaderContentDisposition, `attachment; filename="evidence.json"`)
	return writePlainJSON(c, ev)
}

// delivery is the delivered entry of a page and the page's manifest,
// made ready (hashed) before the page is sent and appended by record.
type delivery struct {
	entry    custody.Entry
	manifest []byte
}

// prepareDelivery makes the delivered entry of a page read from col with
// q (nil for an empty page, which is not a delivery). The entry names the
// page by reference (custody, "Deliveries"): its date_added range, count,
// query digest, the access configuration in force, and the Merkle root of
// its items; the store keeps the page's manifest once. This is the
// processor's part of recording a delivery (a hash or two per item);
// record is the store's.
func (s *Server) prepareDelivery(c echo.Context, col *collection, q *store.Query, page *store.Page) (*delivery, error) {
	if s.ledger == nil || len(page.Objects) == 0 {
		return nil, nil
	}
	salter, err := s.ledger.DeliverySalter(c.Request().Context())
	if err != nil {
		return nil, undelivered(err)
	}
	// The leaves the store keeps with its versions (store.Object.Leaf)
	// are this ledger's when the store made them with the same salter.
	stored := false
	if ss, ok := s.store.(deliverySalter); ok && !q.WithoutRaw {
		own, err := ss.DeliverySalter(c.Request().Context())
		stored = err == nil && own == salter
	}
	n := len(page.Objects)
	leaves := make([]tlog.Hash, n)
	das := make([]time.Time, n)
	pl := salter.Page(col.cfg.ID)
	for i := range page.Objects {
		o := &page.Objects[i]
		das[i] = o.DateAdded
		if stored && o.Leaf != ([32]byte{}) {
			leaves[i] = o.Leaf
			continue
		}
		// A page that serves the bytes commits to their hash; a manifest
		// or versions page serves none.
		var sum *[32]byte
		if !q.WithoutRaw {
			sum = &o.Hash
		}
		if leaves[i], err = pl.Leaf(o.ID, o.Version, o.DateAdded, sum); err != nil {
			return nil, ctigate.E("server.recordDelivery", err)
		}
	}
	d := &delivery{entry: custody.Entry{
		Action: custody.Delivered, Collection: col.cfg.ID, Detail: c.Request().Method + " " + endpointName(c.Path()),
		Count: n, FirstAdded: custody.FormatTime(das[0]), LastAdded: custody.FormatTime(das[n-1]),
		Filter: queryDigest(c.Path(), q), View: s.viewOf(c).accessDigest, ItemsRoot: custody.HexRoot(s.roots.Root(leaves)),
	}, manifest: custody.EncodeManifest(das)}
	if u := userOf(c); u != nil {
		d.entry.User, d.entry.Org = u.Name, u.Organisation
	}
	return d, nil
}

// deliverySalter is a store that is also a ledger recording deliveries.
type deliverySalter interface {
	DeliverySalter(ctx context.Context) (*custody.Salter, error)
}

// record appends d durably, before its page is sent: no delivery without
// its record. Nothing to record (nil) is no error.
func (s *Server) record(c echo.Context, d *delivery) error {
	if d == nil {
		return nil
	}
	_, err := s.ledger.RecordDelivery(c.Request().Context(), d.entry, d.manifest)
	return undelivered(err)
}

// endpointName names a read endpoint by its path template's last segment:
// objects, manifest, versions, or object (one object's versions).
func endpointName(template string) string {
	segs := strings.Split(strings.Trim(template, "/"), "/")
	last := segs[len(segs)-1]
	if strings.HasPrefix(last, ":") {
		return "object"
	}
	return last
}

// queryDigest is the filter member of a delivered entry: the endpoint and
// the query as the store ran it (the first 128 bits of custody.FilterDigest).
func queryDigest(endpoint string, q *store.Query) string {
	ps := []string{"endpoint=" + endpoint}
	if !q.AddedAfter.IsZero() {
		ps = append(ps, "added_after="+custody.FormatTime(q.AddedAfter))
	}
	ps = append(ps, "limit="+strconv.Itoa(q.Limit))
	if q.Next != "" {
		ps = append(ps, "next="+q.Next)
	}
	for _, id := range q.IDs {
		ps = append(ps, "match[id]="+id)
	}
	for _, t := range q.Types {
		ps = append(ps, "match[type]="+t)
	}
	for _, v := range q.Versions {
		switch v.Kind {
		case store.Last:
			ps = append(ps, "match[version]=last")
		case store.First:
			ps = append(ps, "match[version]=first")
		case store.All:
			ps = append(ps, "match[version]=all")
		default:
			ps = append(ps, "match[version]="+custody.FormatVersion(v.At))
		}
	}
	for _, sv := range q.SpecVersions {
		ps = append(ps, "match[spec_version]="+sv)
	}
	if q.WithoutRaw {
		ps = append(ps, "manifest")
	}
	return custody.FilterDigest(ps)[:32]
}
