package server_test

import (
	"testing"

	"github.com/google/uuid"
)

// TestStatusIDsAscend: the ids of the status resources of successive
// POSTs are UUIDv7 and increase in the order of the POSTs, so the
// embedded store's statuses bucket, keyed by id, appends. Each id is
// still unique, and readable with GET …/status/{id}/.
func TestStatusIDsAscend(t *testing.T) {
	g := newGateway(t)
	prev := ""
	for n := 1; n <= 50; n++ {
		var posted status
		g.post(inbound+"objects/", "cert-a", env(indicator(n, "2026-01-01T00:00:00.000Z"))).expect(t, 202, &posted)
		u, err := uuid.Parse(posted.ID)
		if err != nil || u.Version() != 7 || u.String() != posted.ID {
			t.Fatalf("POST %d: status id %q is not a UUIDv7 in canonical form (%v)", n, posted.ID, err)
		}
		if posted.ID <= prev {
			t.Fatalf("POST %d: status id %s does not sort after %s", n, posted.ID, prev)
		}
		prev = posted.ID
		var got status
		g.get(root+"status/"+posted.ID+"/", "cert-a").expect(t, 200, &got)
		if got.ID != posted.ID || got.SuccessCount != 1 {
			t.Fatalf("GET status %s: %+v", posted.ID, got)
		}
	}
}
