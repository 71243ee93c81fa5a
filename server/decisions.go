package server

import (
	"encoding/hex"
	"strconv"

	"github.com/labstack/echo/v4"

	"github.com/ctigate/ctigate"
	"github.com/ctigate/ctigate/access"
	"github.com/ctigate/ctigate/stix"
	"github.com/ctigate/ctigate/store"
)

// Roles that may read the decision record (DESIGN.md, "Roles"): policy
// admins and auditors see decisions, hashes and metadata, never content.
var decisionRoles = []string{"policy-admin", "auditor"}

var errCannotAudit = ctigate.E("server.getDecisions", ctigate.Forbidden, "reading decisions requires the policy-admin or auditor role")

// decisionsPage is the response of GET /api/v1/decisions.
type decisionsPage struct {
	Decisions []decisionJSON `json:"decisions"`
	// Next, when set, is the after value of the next page.
	Next string `json:"next,omitempty"`
}

// decisionJSON is one recorded decision: metadata and hashes only.
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

func hexHash(h [32]byte) string {
	if h == ([32]byte{}) {
		return ""
	}
	return hex.EncodeToString(h[:])
}

// getDecisions lists recorded policy decisions, oldest first:
// ?object=<id>&route=<name>&after=<seq>&limit=<n>.
func (s *Server) getDecisions(c echo.Context) error {
	const op = "server.getDecisions"
	u := userOf(c)
	if u == nil || !(u.HasRole(decisionRoles[0]) || u.HasRole(decisionRoles[1])) {
		return errCannotAudit
	}
	q := store.DecisionQuery{ObjectID: c.QueryParam("object"), Route: c.QueryParam("route"), Limit: store.DefaultDecisionLimit}
	if v := c.QueryParam("after"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return ctigate.E(op, ctigate.Invalid, "after must be a decision sequence number")
		}
		q.After = n
	}
	if v := c.QueryParam("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return ctigate.E(op, ctigate.Invalid, "limit must be a positive integer")
		}
		q.Limit = min(n, store.MaxDecisionLimit)
	}
	ds, next, err := visiblePage(q.After, q.Limit, func(after uint64) ([]store.Decision, error) {
		q.After = after
		return s.store.Decisions(c.Request().Context(), q)
	}, func(d *store.Decision) uint64 { return d.Seq }, func(d *store.Decision) bool {
		return s.viewOf(c).access.SeesRecord(u, access.Record{Action: d.Action, Collection: d.Collection, Source: d.Source})
	})
	if err != nil {
		return err
	}
	page := decisionsPage{Decisions: make([]decisionJSON, len(ds))}
	for i, d := range ds {
		j := decisionJSON{
			Seq: d.Seq, Time: formatDateAdded(d.Time), Route: d.Route, Collection: d.Collection,
			PolicyVersion: d.PolicyVersion, ObjectID: d.ObjectID, Source: d.Source, Action: d.Action,
			Reason: d.Reason, Detail: d.Detail, Removed: d.Removed,
			OriginalSHA256: hexHash(d.OriginalSHA256), PublishedSHA256: hexHash(d.PublishedSHA256),
		}
		if !d.ObjectVersion.IsZero() {
			j.ObjectVersion = stix.FormatTimestamp(d.ObjectVersion)
		}
		page.Decisions[i] = j
	}
	if next > 0 {
		page.Next = strconv.FormatUint(next, 10)
	}
	return writePlainJSON(c, page)
}
