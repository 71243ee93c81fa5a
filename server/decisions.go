package server

import (
	"strconv"

	"github.com/labstack/echo/v4"

	"github.com/ctigate/ctigate"
	"github.com/ctigate/ctigate/custody"
	"github.com/ctigate/ctigate/store"
)

// Roles that may read decisions (DESIGN.md, "Roles"): policy admins and
// auditors see decisions, hashes and metadata, never content.
var decisionRoles = []string{"policy-admin", "auditor"}

var errCannotAudit = ctigate.E("server.getDecisions", ctigate.Forbidden, "reading decisions requires the policy-admin or auditor role")

// Limits of GET /api/v1/decisions?limit=.
const (
	defaultDecisionLimit = 100
	maxDecisionLimit     = 1000
)

// decisionsPage is the response of GET /api/v1/decisions.
type decisionsPage struct {
	Decisions []decisionJSON `json:"decisions"`
	// Next, when set, is the after value of the next page.
	Next string `json:"next,omitempty"`
}

// decisionJSON is one decision as its custody ledger entry (published,
// redacted or withheld) records it: metadata and hashes only. Seq is the
// entry's ledger sequence number, which the paging cursor after names:
// the ledger numbers every entry, so the seqs of decisions increase but
// have gaps where other entries are. Time is when the entry was
// recorded, in the write that carried the decision's effect.
type decisionJSON struct {
	Seq             uint64   `json:"seq"`
	Time            string   `json:"time"`
	Route           string   `json:"route"`
	Collection      string   `json:"collection"`
	PolicyVersion   string   `json:"policy_version"`
	ObjectID        string   `json:"object_id"`
	ObjectVersion   string   `json:"object_version,omitempty"`
	Source          string   `json:"source"`
	Action          string   `json:"action"`
	Reason          string   `json:"reason,omitempty"`
	Detail          string   `json:"detail,omitempty"`
	Removed         []string `json:"removed,omitempty"`
	OriginalSHA256  string   `json:"original_sha256,omitempty"`
	PublishedSHA256 string   `json:"published_sha256,omitempty"`
}

// getDecisions lists the routes' decisions, oldest first, from the
// custody ledger (its published, redacted and withheld entries):
// ?object=<id>&route=<name>&after=<seq>&limit=<n>, where seq is a ledger
// sequence number. A reader sees the decisions access.SeesRecord shows
// them.
func (s *Server) getDecisions(c echo.Context) error {
	const op = "server.getDecisions"
	u := userOf(c)
	if u == nil || !(u.HasRole(decisionRoles[0]) || u.HasRole(decisionRoles[1])) {
		return errCannotAudit
	}
	q := store.LedgerQuery{
		ObjectID: c.QueryParam("object"), Route: c.QueryParam("route"),
		Actions: store.DecisionActions(), Limit: defaultDecisionLimit,
	}
	if v := c.QueryParam("after"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return ctigate.E(op, ctigate.Invalid, "after must be a ledger sequence number")
		}
		q.After = n
	}
	if v := c.QueryParam("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return ctigate.E(op, ctigate.Invalid, "limit must be a positive integer")
		}
		q.Limit = min(n, maxDecisionLimit)
	}
	pol := s.viewOf(c).access
	es, next, err := visiblePage(q.After, q.Limit, func(after uint64) ([]custody.Entry, error) {
		q.After = after
		return s.store.LedgerEntries(c.Request().Context(), q)
	}, func(e *custody.Entry) uint64 { return e.Seq }, func(e *custody.Entry) bool {
		return pol.SeesEntry(u, e)
	})
	if err != nil {
		return err
	}
	page := decisionsPage{Decisions: make([]decisionJSON, len(es))}
	for i := range es {
		e := &es[i]
		page.Decisions[i] = decisionJSON{
			Seq: e.Seq, Time: e.Time, Route: e.Route, Collection: e.Collection,
			PolicyVersion: e.PolicyVersion, ObjectID: e.ObjectID, ObjectVersion: e.ObjectVersion,
			Source: e.Source, Action: e.Action, Reason: e.Reason, Detail: e.Detail, Removed: e.Removed,
			OriginalSHA256: e.SHA256, PublishedSHA256: e.PublishedSHA256,
		}
	}
	if next > 0 {
		page.Next = strconv.FormatUint(next, 10)
	}
	return writePlainJSON(c, page)
}
