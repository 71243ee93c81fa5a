package server

import (
	"context"
	"fmt"
	"time"

	"github.com/ctigate/ctigate"
	"github.com/ctigate/ctigate/policy"
	"github.com/ctigate/ctigate/stix"
	"github.com/ctigate/ctigate/store"
)

// A published collection that a route feeds may, until fan-out publishes
// into it, also be written directly by its writers. Such direct writes are
// held to the route: an object is stored only when the route would publish
// it unchanged. Anything the route would withhold or redact is refused
// with the route's reason, so no direct write can put into a consumer's
// collection what the route would keep from it (TLP above the ceiling,
// TLP:RED, unknown markings, …).
type routeGuard struct {
	s        *Server
	ctx      context.Context
	route    *policy.Route // nil: the collection has no route
	col      *collection
	producer string
	now      time.Time
	accepted map[string]bool // ids admitted earlier in this request
}

func (s *Server) newRouteGuard(ctx context.Context, col *collection, producer string) *routeGuard {
	return &routeGuard{s: s, ctx: ctx, route: s.routes[col.cfg.ID], col: col, producer: producer,
		now: s.now(), accepted: map[string]bool{}}
}

// check returns why the route refuses it, or nil.
func (g *routeGuard) check(it *stix.Item, res stix.Resolution, hash [32]byte) error {
	if g.route == nil {
		return nil
	}
	d := policy.Evaluate(policy.Input{
		Raw: it.Raw, Type: it.Object.Type, ID: it.Object.ID, SHA256: hash, Markings: res,
		Producer: g.producer, Published: g.published,
	}, g.route, g.now)
	switch d.Action {
	case policy.Publish:
		g.accepted[it.Object.ID] = true
		return nil
	case policy.PublishRedacted:
		return ctigate.Errorf(ctigate.Forbidden, "route %q (policy %.12s) would publish this object only redacted (%s); post it to the route's source collection instead",
			g.route.Name(), g.route.Version(), removals(d.Removed))
	default:
		return ctigate.Errorf(ctigate.Forbidden, "route %q (policy %.12s) withholds this object: %s: %s",
			g.route.Name(), g.route.Version(), d.Reason, d.Detail)
	}
}

// published reports whether the collection holds (or this request has
// admitted) some version of id.
func (g *routeGuard) published(id string) bool {
	if g.accepted[id] {
		return true
	}
	p, err := g.s.store.Objects(g.ctx, g.col.cfg.ID, store.Query{
		IDs: []string{id}, Versions: []store.VersionMatch{{Kind: store.All}}, Limit: 1, WithoutRaw: true,
	})
	return err == nil && len(p.Objects) > 0
}

func removals(rs []policy.Removal) string {
	out := ""
	for i, r := range rs {
		if i > 0 {
			out += ", "
		}
		out += fmt.Sprintf("%s: %s", r.Path, r.Reason)
	}
	return out
}
