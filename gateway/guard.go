package gateway

import (
	"context"
	"fmt"

	"github.com/ctigate/ctigate"
	"github.com/ctigate/ctigate/policy"
	"github.com/ctigate/ctigate/stix"
)

// A published collection that a route feeds may, until fan-out publishes
// into it, also be written directly by its writers. Such direct writes are
// held to the route: an object is stored only when the route would publish
// it unchanged. Anything the route would withhold or redact is refused
// with the route's reason, so no direct write can put into a consumer's
// collection what the route would keep from it (TLP above the ceiling,
// TLP:RED, unknown markings, …).
type routeGuard struct {
	route    *policy.Route // nil: the collection has no route
	producer string
	decider  *Decider // what the route has published, and this request admitted
}

func (in *Ingester) newRouteGuard(ctx context.Context, collection, producer string) *routeGuard {
	g := &routeGuard{route: in.Routes[collection], producer: producer}
	if g.route != nil {
		g.decider = &Decider{Markings: in.Markings, Route: g.route, Now: in.Clock(), Holds: StoreHolds(ctx, in.Store, collection, "")}
	}
	return g
}

// check returns why the route refuses it, or nil.
func (g *routeGuard) check(it *stix.Item, res stix.Resolution, hash [32]byte) error {
	if g.route == nil {
		return nil
	}
	d, err := g.decider.Evaluate(Object{Raw: it.Raw, Type: it.Object.Type, ID: it.Object.ID, Producer: g.producer}, res, hash)
	if err != nil {
		return err
	}
	unchanged := d.Action == policy.Publish && d.PublishedSHA256 == d.OriginalSHA256
	if !unchanged {
		g.decider.Forget(it.Object.ID) // refused: not stored
	}
	switch {
	case unchanged:
		return nil
	case d.Action == policy.Publish:
		return ctigate.Errorf(ctigate.Forbidden, "route %q (policy %.12s) would publish this object only with the %s marking it assumes for unmarked objects; mark it, or post it to the route's source collection",
			g.route.Name(), g.route.Version(), d.TLP)
	case d.Action == policy.PublishRedacted:
		return ctigate.Errorf(ctigate.Forbidden, "route %q (policy %.12s) would publish this object only redacted (%s); post it to the route's source collection instead",
			g.route.Name(), g.route.Version(), removals(d.Removed))
	default:
		return ctigate.Errorf(ctigate.Forbidden, "route %q (policy %.12s) withholds this object: %s: %s",
			g.route.Name(), g.route.Version(), d.Reason, d.Detail)
	}
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
