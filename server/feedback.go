package server

import (
	"cmp"
	"slices"

	"github.com/labstack/echo/v4"

	"github.com/ctigate/ctigate"
	"github.com/ctigate/ctigate/custody"
	"github.com/ctigate/ctigate/policy"
	"github.com/ctigate/ctigate/stix"
	"github.com/ctigate/ctigate/store"
)

// maxFeedbackWithheld bounds the withheld objects a feedback lists one by
// one (the counts stay exact).
const maxFeedbackWithheld = 1000

// feedbackJSON is the response of GET /api/v1/statuses/{id}/decisions.
type feedbackJSON struct {
	Status     string              `json:"status"`
	Collection string              `json:"collection"`
	Objects    int                 `json:"objects"` // the versions the request stored or found stored
	Routes     []routeFeedbackJSON `json:"routes"`
	// Withheld lists the withheld versions, by route (at most 1,000; the
	// counts are exact).
	Withheld []withheldJSON `json:"withheld,omitempty"`
}

type routeFeedbackJSON struct {
	Route     string         `json:"route"`
	Published int            `json:"published"`
	Redacted  int            `json:"redacted"`
	Withheld  int            `json:"withheld"`
	Pending   int            `json:"pending"` // not decided yet (fan-out behind, or waiting for references)
	Reasons   map[string]int `json:"reasons,omitempty"`
}

type withheldJSON struct {
	Route   string `json:"route"`
	ID      string `json:"id"`
	Version string `json:"version,omitempty"`
	Reason  string `json:"reason"`
	Detail  string `json:"detail,omitempty"`
}

// getFeedback tells a producer what each route decided about the objects
// one of its requests submitted, from the decisions' entries in the
// custody ledger: the requester, or a writer of the collection, reads it
// (as the status itself); other users get 404, as does everyone once the
// status has expired (status_retention).
// Only the routes that read that collection, and only their decisions
// about the versions in it, are reported: another organisation's objects
// never appear. Each route's current policy version counts.
func (s *Server) getFeedback(c echo.Context) error {
	ctx := c.Request().Context()
	u := userOf(c)
	st, err := s.store.Status(ctx, c.Param("status"))
	if ctigate.KindOf(err) == ctigate.NotFound || u == nil {
		return errNoStatus // unknown or expired
	}
	if err != nil {
		return err
	}
	v := s.viewOf(c)
	if st.Owner != u.Name && !v.access.CanWrite(u, st.Collection) {
		return errNoStatus
	}
	out := feedbackJSON{Status: st.ID, Collection: st.Collection, Objects: len(st.Successes), Routes: []routeFeedbackJSON{}}
	var routes []*routeFeedbackJSON
	versions := map[string]string{} // route name -> policy version
	for _, r := range v.routes {
		if !slices.Contains(r.Sources(), st.Collection) {
			continue
		}
		routes = append(routes, &routeFeedbackJSON{Route: r.Name(), Reasons: map[string]int{}})
		versions[r.Name()] = r.Version()
	}
	slices.SortFunc(routes, func(a, b *routeFeedbackJSON) int { return cmp.Compare(a.Route, b.Route) })
	for _, d := range st.Successes {
		latest := map[string]custody.Entry{}
		q := store.LedgerQuery{ObjectID: d.ID, Actions: store.DecisionActions(), Limit: store.MaxLedgerLimit}
		for {
			es, err := s.store.LedgerEntries(ctx, q)
			if err != nil {
				return err
			}
			for _, x := range es {
				q.After = x.Seq
				if x.Source != st.Collection || versions[x.Route] != x.PolicyVersion || !sameVersion(&x, d.Version) {
					continue
				}
				if prev, ok := latest[x.Route]; ok && prev.Action != store.ActionWithheld && x.Reason == string(policy.ReasonMarkingDefinition) {
					continue // a marking definition published with an object that uses it stays published
				}
				latest[x.Route] = x // in seq order: the last is the latest
			}
			if len(es) < q.Limit {
				break
			}
		}
		for _, r := range routes {
			x, ok := latest[r.Route]
			switch {
			case !ok:
				r.Pending++
			case x.Action == store.ActionPublished:
				r.Published++
			case x.Action == store.ActionRedacted:
				r.Redacted++
			default:
				r.Withheld++
				r.Reasons[x.Reason]++
				if len(out.Withheld) < maxFeedbackWithheld {
					out.Withheld = append(out.Withheld, withheldJSON{Route: r.Route, ID: x.ObjectID, Version: d.Version, Reason: x.Reason, Detail: x.Detail})
				}
			}
		}
	}
	for _, r := range routes {
		out.Routes = append(out.Routes, *r)
	}
	return writePlainJSON(c, out)
}

// sameVersion reports whether the decision entry e is about the version
// a status names (unversioned objects: any).
func sameVersion(e *custody.Entry, version string) bool {
	if e.ObjectVersion == "" {
		return true
	}
	v, err := stix.ParseTimestamp(e.ObjectVersion)
	if err != nil {
		return false
	}
	t, err := stix.ParseTimestamp(version)
	return err == nil && t.Equal(v)
}
