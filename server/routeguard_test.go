package server_test

import (
	"strings"
	"testing"

	"github.com/ctigate/ctigate/config"
	"github.com/ctigate/ctigate/policy"
	"github.com/ctigate/ctigate/stix"
)

// TestDirectWritesHeldToRoute: a producer writing straight into a routed
// (published) collection gets only what the route would publish unchanged
// stored; everything else is refused with the route's reason, and the
// consumer never sees it.
func TestDirectWritesHeldToRoute(t *testing.T) {
	g := newGateway(t, func(c *config.Config) {
		c.Routes = []policy.RouteConfig{{ID: publishedID, Name: "police", Sources: []string{inboundID}, Ceiling: "TLP:GREEN"}}
	})
	var st status
	g.post(published+"objects/", "cert-a", env(
		marked(1, stix.TLP2Green),
		marked(2, stix.TLP2Amber),
		marked(3, stix.TLP1Red),
		indicator(4, "2026-01-01T00:00:00.000Z"), // unmarked
		marked(5, stix.TLP1White),
		marked(6, "marking-definition--0f0e0d0c-0b0a-4908-8706-050403020100", stix.TLP2Green),
	)).expect(t, 202, &st)
	if st.SuccessCount != 2 || st.FailureCount != 4 {
		t.Fatalf("status: %+v", st)
	}
	for _, f := range st.Failures {
		if !strings.Contains(f.Message, `route "police"`) || !strings.Contains(f.Message, "withholds") {
			t.Errorf("%s: %q", f.ID, f.Message)
		}
	}
	var e envelope
	g.get(published+"objects/", "police").expect(t, 200, &e)
	got := ids(t, e.Objects)
	if len(got) != 2 || got[0] != "indicator--"+uuidN(1)+"@2026-01-01" || got[1] != "indicator--"+uuidN(5)+"@2026-01-01" {
		t.Errorf("police see %v, want only the TLP:GREEN and TLP:CLEAR indicators", got)
	}
	// Writes into a collection no route feeds are not filtered.
	g.post(inbound+"objects/", "cert-a", env(marked(3, stix.TLP1Red))).expect(t, 202, &st)
	if st.SuccessCount != 1 {
		t.Errorf("inbound: %+v", st)
	}
}
