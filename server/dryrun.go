package server

import (
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/ctigate/ctigate"
	"github.com/ctigate/ctigate/gateway"
	"github.com/ctigate/ctigate/policy"
	"github.com/ctigate/ctigate/stix"
)

var (
	errCannotDryRun = ctigate.E("server.postDryRun", ctigate.Forbidden, "a dry run requires the producer or policy-admin role")
	errNoRoute      = ctigate.E("server.postDryRun", ctigate.NotFound, "no such route")
)

// dryRunResponse is the answer of POST /api/v1/routes/{route}/dry-run.
type dryRunResponse struct {
	Results []gateway.Result `json:"results"`
	Summary gateway.Summary  `json:"summary"`
}

// postDryRun serves POST /api/v1/routes/{route}/dry-run (route: its name,
// or the id or alias of its collection): what the route would do now with
// the bundle or envelope in the body, decided as fan-out decides
// (gateway.Decider) against what the route's collection holds, storing
// nothing. The run is for the caller's organisation: its marking
// definitions, and of the route's state only what the route published of
// its organisation's objects (a reference to another organisation's
// object counts as unpublished), so that it tells nothing about other
// organisations. Principals in custody.all_organisations see the whole
// state and may name the producing organisation (?producer=ORG).
func (s *Server) postDryRun(c echo.Context) error {
	u := userOf(c)
	if u == nil || !(u.HasRole("producer") || u.HasRole("policy-admin")) {
		return errCannotDryRun
	}
	route, col := s.viewOf(c).routeNamed(c.Param("route"))
	if route == nil {
		return errNoRoute
	}
	producer, seen := u.Organisation, u.Organisation
	if s.viewOf(c).access.AllOrganisations(u) {
		seen = ""
		if p, ok := c.QueryParams()["producer"]; ok {
			producer = strings.Join(p, "")
		}
	} else if p := c.QueryParam("producer"); p != "" && p != u.Organisation {
		return ctigate.E("server.postDryRun", ctigate.Forbidden, "a dry run is for your own organisation's objects")
	}
	body, err := s.readBody(c, col.root.cfg.MaxContentLength)
	if err != nil {
		return err
	}
	// Held to ingest's limits, so that the dry run refuses what a POST
	// would.
	items, err := stix.DecodeEnvelopeLimited(body, gateway.IngestLimits(s.viewOf(c).cfg))
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	results, sum, err := gateway.DryRun(items, gateway.Decider{
		Markings: s.markings, Route: route, Now: s.now(),
		Holds: gateway.StoreHolds(ctx, s.store, route.ID(), seen),
		// References to the producer's earlier submissions are judged by
		// what the route decides for them, as fan-out does.
		Lookahead: gateway.SourceLookahead(ctx, s.store, route, "", time.Time{}),
	}, producer)
	if err != nil {
		return err
	}
	return writePlainJSON(c, dryRunResponse{Results: results, Summary: sum})
}

// routeNamed returns the route named name, or publishing into the
// collection whose id or alias name is, with that collection.
func (v *view) routeNamed(name string) (*policy.Route, *collection) {
	for id, r := range v.routes {
		for _, root := range v.roots {
			col := root.byKey[id]
			if col == nil {
				continue
			}
			if r.Name() == name || id == strings.ToLower(name) || (col.cfg.Alias != "" && col.cfg.Alias == name) {
				return r, col
			}
		}
	}
	return nil, nil
}
