package server

import (
	"context"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/ctigate/ctigate"
	"github.com/ctigate/ctigate/stix"
	"github.com/ctigate/ctigate/store"
)

// Limits of GET /api/v1/collections/{id}/withdrawn.
const (
	defaultWithdrawnLimit = 1000
	maxWithdrawnLimit     = 10000
)

// withdrawnPage is the response of GET /api/v1/collections/{id}/withdrawn.
type withdrawnPage struct {
	Collection string          `json:"collection"`
	Withdrawn  []withdrawnJSON `json:"withdrawn"`
	More       bool            `json:"more"`
	// Next, when set, is the added_after value of the next page: the
	// withdrawn_at of the last item, or later when the removals of
	// expired versions after it were passed over.
	Next string `json:"next,omitempty"`
}

// withdrawnJSON is one object version that left the collection.
type withdrawnJSON struct {
	ID          string `json:"id"`
	Version     string `json:"version,omitempty"`
	DateAdded   string `json:"date_added"`
	WithdrawnAt string `json:"withdrawn_at"`
	// Reason is "retracted" (its producer deleted it) or "withdrawn" (the
	// route's policy no longer publishes it). Why the policy withholds it
	// is not said: that a newer version is, say, TLP:RED is itself
	// something the route does not publish.
	Reason string `json:"reason"`
}

// getWithdrawn lists the object versions withdrawn from (or deleted in) a
// collection the caller may read, oldest first, after a point on the
// collection's date_added clock: ?added_after=<timestamp>&limit=<n>. A
// consumer that remembers the last X-TAXII-Date-Added-Last it received
// asks for what was withdrawn since, and removes those versions; a version
// added again later comes back in the objects with a later date_added.
func (s *Server) getWithdrawn(c echo.Context) error {
	const op = "server.getWithdrawn"
	u := userOf(c)
	v := s.viewOf(c)
	var col *collection
	for _, r := range v.roots {
		if k := r.byKey[c.Param("collection")]; k != nil {
			col = k
			break
		}
	}
	if col == nil || u == nil || !v.access.CanRead(u, col.cfg.ID) {
		return errNoCollection
	}
	var after time.Time
	limit := defaultWithdrawnLimit
	for k, vals := range c.QueryParams() {
		val := vals[len(vals)-1]
		switch k {
		case "added_after":
			t, err := stix.ParseTimestamp(val)
			if err != nil {
				return ctigate.E(op, ctigate.Invalid, "added_after is not a timestamp: "+err.Error())
			}
			after = t
		case "limit":
			n, err := strconv.Atoi(val)
			if err != nil || n < 1 {
				return ctigate.E(op, ctigate.Invalid, "limit must be a positive integer")
			}
			limit = min(n, maxWithdrawnLimit)
		default:
			return invalidf("unknown parameter %q", k)
		}
	}
	page, err := s.withdrawnSince(c.Request().Context(), col.cfg.ID, after, limit)
	if err != nil {
		return err
	}
	return writePlainJSON(c, page)
}

// withdrawnReads bounds the tombstone pages one withdrawn request reads
// while it passes over those of expired versions.
const withdrawnReads = 8

// withdrawnSince returns up to limit versions withdrawn from (or deleted
// in) collection after after. Tombstones of removals that retract nothing
// (store.Retracts: expired versions) are passed over: a consumer keeps
// what merely aged out of the collection. Next then moves past them too,
// so a page may hold fewer than limit items, or none, with More set.
func (s *Server) withdrawnSince(ctx context.Context, collection string, after time.Time, limit int) (withdrawnPage, error) {
	page := withdrawnPage{Collection: collection, Withdrawn: []withdrawnJSON{}}
	var last time.Time // the Removed of the last tombstone passed, listed or not
	for range withdrawnReads {
		ts, more, err := s.store.Tombstones(ctx, collection, after, limit-len(page.Withdrawn))
		if err != nil {
			return withdrawnPage{}, err
		}
		for _, t := range ts {
			last = t.Removed
			if !store.Retracts(t.Kind) {
				continue
			}
			j := withdrawnJSON{ID: t.ID, DateAdded: formatDateAdded(t.DateAdded), WithdrawnAt: formatDateAdded(t.Removed), Reason: "withdrawn"}
			if !t.Version.IsZero() {
				j.Version = stix.FormatTimestamp(t.Version)
			}
			if t.Kind == store.RemovalDeleted || t.Reason == "retracted" {
				j.Reason = "retracted"
			}
			page.Withdrawn = append(page.Withdrawn, j)
		}
		page.More = more
		if !more || len(page.Withdrawn) == limit {
			break
		}
		after = last
	}
	if page.More && !last.IsZero() {
		page.Next = formatDateAdded(last)
	}
	return page, nil
}
