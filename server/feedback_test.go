package server_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/go-json-experiment/json"

	"github.com/ctigate/ctigate/custody"
	"github.com/ctigate/ctigate/policy"
	"github.com/ctigate/ctigate/store"
)

// feedbackResp is the response of GET /api/v1/statuses/{id}/decisions.
type feedbackResp struct {
	Status     string `json:"status"`
	Collection string `json:"collection"`
	Objects    int    `json:"objects"`
	Routes     []struct {
		Route     string         `json:"route"`
		Published int            `json:"published"`
		Redacted  int            `json:"redacted"`
		Withheld  int            `json:"withheld"`
		Pending   int            `json:"pending"`
		Reasons   map[string]int `json:"reasons"`
	} `json:"routes"`
	Withheld []struct {
		Route   string `json:"route"`
		ID      string `json:"id"`
		Version string `json:"version"`
		Reason  string `json:"reason"`
		Detail  string `json:"detail"`
	} `json:"withheld"`
}

// TestFeedbackFromLedger: a producer's feedback counts, per route reading
// the request's collection, the latest decision entry of the ledger about
// each version the request stored, under the route's current policy
// version and from that collection; the ledger's other entries (a
// withdrawal, a rejection) are not decisions.
func TestFeedbackFromLedger(t *testing.T) {
	eachBackend(t, func(t *testing.T, st ledgerStore) {
		cfg := decisionsConfig(t)
		cfg.Routes = []policy.RouteConfig{
			{ID: publishedID, Name: "law-enforcement", Sources: []string{inboundID}, Ceiling: "TLP:AMBER"},
			{ID: closedID, Name: "closed", Sources: []string{inboundID}, Ceiling: "TLP:GREEN"},
		}
		if err := cfg.Validate(); err != nil {
			t.Fatal(err)
		}
		routes, err := policy.CompileRoutes(cfg.Routes)
		if err != nil {
			t.Fatal(err)
		}
		pv := routes[0].Version()
		url := serveStore(t, cfg, st)
		ctx := context.Background()

		const (
			a, b, c, d = "indicator--00000000-0000-4000-8000-00000000000a", "indicator--00000000-0000-4000-8000-00000000000b",
				"indicator--00000000-0000-4000-8000-00000000000c", "indicator--00000000-0000-4000-8000-00000000000d"
			ver = "2026-01-01T00:00:00.000Z"
		)
		v1, _ := time.Parse(time.RFC3339, "2026-01-01T00:00:00Z")
		other := custody.FormatVersion(v1.Add(time.Hour))
		dec := func(action, id, version, source, policyVersion, reason string) custody.Entry {
			return custody.Entry{Action: action, User: "ctigate", ObjectID: id, ObjectVersion: version, Collection: publishedID,
				Source: source, Route: "law-enforcement", PolicyVersion: policyVersion, Reason: reason, Detail: reason + " detail"}
		}
		if _, err := st.AppendEntries(ctx, []custody.Entry{
			dec(custody.Published, a, ver, inboundID, pv, ""),
			dec(custody.Redacted, b, ver, inboundID, pv, ""),
			dec(custody.Withheld, b, ver, inboundID, pv, "above_ceiling"), // the latest about b
			dec(custody.Withheld, c, ver, inboundID, pv, "tlp_red"),
			// Not about these versions, or from another policy version or
			// collection: they do not count.
			dec(custody.Withheld, a, other, inboundID, pv, "tlp_red"),
			dec(custody.Withheld, a, ver, inboundID, "an older policy", "tlp_red"),
			dec(custody.Withheld, a, ver, closedID, pv, "tlp_red"),
			dec(custody.Published, d, ver, inboundID, "an older policy", ""),
			// Not decisions.
			{Action: custody.Withdrawn, User: "ctigate", ObjectID: a, ObjectVersion: ver, Collection: publishedID,
				Source: inboundID, Route: "law-enforcement", PolicyVersion: pv, Reason: "retracted"},
			{Action: custody.Rejected, User: "cert-a", Org: "CERT-A", ObjectID: c, Route: "law-enforcement", Reason: "invalid"},
		}); err != nil {
			t.Fatal(err)
		}
		status := store.Status{
			ID: "2d1c8a3e-6f4b-4c1a-9e0d-7b5a3c2f1e0d", APIRoot: "exchange", Collection: inboundID, Owner: "cert-a",
			Status: "complete", RequestTimestamp: v1, TotalCount: 4,
			Successes: []store.StatusDetail{{ID: a, Version: ver}, {ID: b, Version: ver}, {ID: c, Version: ver}, {ID: d, Version: ver}},
		}
		if err := st.PutStatus(ctx, status); err != nil {
			t.Fatal(err)
		}
		g := &gateway{t: t, URL: url}
		res := g.do(http.MethodGet, "/api/v1/statuses/"+status.ID+"/decisions", "cert-a", nil)
		if res.Status != http.StatusOK {
			t.Fatalf("feedback as the requester = %d %s", res.Status, res.Body)
		}
		var fb feedbackResp
		if err := json.Unmarshal(res.Body, &fb); err != nil {
			t.Fatalf("%v: %s", err, res.Body)
		}
		if fb.Status != status.ID || fb.Collection != inboundID || fb.Objects != 4 || len(fb.Routes) != 2 {
			t.Fatalf("feedback %s", res.Body)
		}
		closed, law := fb.Routes[0], fb.Routes[1]
		if closed.Route != "closed" || closed.Pending != 4 || closed.Published+closed.Redacted+closed.Withheld != 0 {
			t.Errorf("route closed, which decided nothing: %+v", closed)
		}
		if law.Route != "law-enforcement" || law.Published != 1 || law.Redacted != 0 || law.Withheld != 2 || law.Pending != 1 ||
			len(law.Reasons) != 2 || law.Reasons["above_ceiling"] != 1 || law.Reasons["tlp_red"] != 1 {
			t.Errorf("route law-enforcement: %+v; want a published, b and c withheld, d pending", law)
		}
		if len(fb.Withheld) != 2 || fb.Withheld[0].ID != b || fb.Withheld[0].Reason != "above_ceiling" || fb.Withheld[0].Detail != "above_ceiling detail" ||
			fb.Withheld[1].ID != c || fb.Withheld[1].Reason != "tlp_red" || fb.Withheld[0].Version != ver || fb.Withheld[0].Route != "law-enforcement" {
			t.Errorf("withheld: %+v", fb.Withheld)
		}
		// A decision appended later is the latest: d is decided.
		if _, err := st.AppendEntries(ctx, []custody.Entry{dec(custody.Redacted, d, ver, inboundID, pv, "")}); err != nil {
			t.Fatal(err)
		}
		res = g.do(http.MethodGet, "/api/v1/statuses/"+status.ID+"/decisions", "cert-a", nil)
		var again feedbackResp
		if err := json.Unmarshal(res.Body, &again); err != nil || res.Status != http.StatusOK || len(again.Routes) != 2 {
			t.Fatalf("feedback = %d %s", res.Status, res.Body)
		}
		if law := again.Routes[1]; law.Redacted != 1 || law.Pending != 0 {
			t.Errorf("after d's decision, route law-enforcement: %+v; want d redacted", law)
		}
		// Another organisation's user learns nothing of the request.
		if res := g.do(http.MethodGet, "/api/v1/statuses/"+status.ID+"/decisions", "police", nil); res.Status != http.StatusNotFound {
			t.Errorf("feedback as police = %d %s; want 404", res.Status, res.Body)
		}
	})
}
