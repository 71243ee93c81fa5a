package server_test

import (
	"strconv"
	"strings"
	"testing"

	"github.com/go-json-experiment/json"

	"github.com/ctigate/ctigate/config"
	"github.com/ctigate/ctigate/policy"
)

// indicatorWithPattern returns a valid indicator n whose STIX pattern is
// exactly size bytes long.
func indicatorWithPattern(n, size int) string {
	const head, tail = "[domain-name:value = '", ".example']"
	p := head + strings.Repeat("a", size-len(head)-len(tail)) + tail
	return `{"type":"indicator","spec_version":"2.1","id":"indicator--` + uuidN(n) + `",` +
		`"created":"2026-01-01T00:00:00.000Z","modified":"2026-01-01T00:00:00.000Z",` +
		`"pattern":` + strconv.Quote(p) + `,"pattern_type":"stix","valid_from":"2026-01-01T00:00:00Z"}`
}

// TestPatternLimit: with the default limit (64 KiB), an indicator whose
// pattern is one byte over is refused at POST with a status failure that
// names the limit, its value and its setting; one at the limit and the
// rest of the envelope are stored.
func TestPatternLimit(t *testing.T) {
	g := newGateway(t, func(c *config.Config) { c.APIRoots[0].MaxContentLength = 1 << 20 })
	const limit = 65536
	var st status
	g.post(inbound+"objects/", "cert-a", env(indicatorWithPattern(1, limit), indicatorWithPattern(2, limit+1), indicator(3, "2026-01-01T00:00:00.000Z"))).
		expect(t, 202, &st)
	if st.TotalCount != 3 || st.SuccessCount != 2 || st.FailureCount != 1 || len(st.Failures) != 1 {
		t.Fatalf("status %+v; want 2 successes and 1 failure", st)
	}
	f := st.Failures[0]
	want := "indicator--" + uuidN(2) + ": pattern: 65,537 bytes is over the limit of 65,536 bytes (ingest.max_pattern_bytes)"
	if f.ID != "indicator--"+uuidN(2) || f.Message != want {
		t.Errorf("failure %+v\nwant message %q", f, want)
	}
	for _, s := range st.Successes {
		if s.ID == "indicator--"+uuidN(2) {
			t.Errorf("the indicator over the limit is listed as a success: %+v", s)
		}
	}
	// The one at the limit is stored and served; the one over it is not.
	var page struct {
		Objects []struct {
			ID      string `json:"id"`
			Pattern string `json:"pattern"`
		} `json:"objects"`
	}
	g.get(inbound+"objects/indicator--"+uuidN(1)+"/", "cert-a").expect(t, 200, &page)
	if len(page.Objects) != 1 || len(page.Objects[0].Pattern) != limit {
		t.Errorf("the indicator at the limit reads back as %d objects", len(page.Objects))
	}
	g.get(inbound+"objects/indicator--"+uuidN(2)+"/", "cert-a").expectError(t, 404)
}

// TestPatternLimitConfigured: ingest.max_pattern_bytes sets the limit, the
// refusal names the configured value, and a route's dry run refuses what
// a POST would.
func TestPatternLimitConfigured(t *testing.T) {
	g := newGateway(t, func(c *config.Config) {
		c.Ingest.MaxPatternBytes = 4096
		c.APIRoots[0].Collections[1].Writers = nil
		c.Routes = []policy.RouteConfig{{Name: "to-police", ID: publishedID, Sources: []string{inboundID}, Ceiling: "TLP:AMBER", Unmarked: "TLP:GREEN"}}
	})
	want := "indicator--" + uuidN(2) + ": pattern: 4,097 bytes is over the limit of 4,096 bytes (ingest.max_pattern_bytes)"
	var st status
	g.post(inbound+"objects/", "cert-a", env(indicatorWithPattern(1, 4096), indicatorWithPattern(2, 4097))).expect(t, 202, &st)
	if st.SuccessCount != 1 || st.FailureCount != 1 || st.Failures[0].Message != want {
		t.Fatalf("status %+v\nwant one failure %q", st, want)
	}

	var dr struct {
		Results []struct {
			ID       string `json:"id"`
			Decision string `json:"decision"`
			Detail   string `json:"detail"`
		} `json:"results"`
	}
	r := g.post("/api/v1/routes/to-police/dry-run", "cert-a", env(indicatorWithPattern(1, 4096), indicatorWithPattern(2, 4097)))
	if r.Status != 200 {
		t.Fatalf("dry run: %d %.300s", r.Status, r.Body)
	}
	if err := json.Unmarshal(r.Body, &dr); err != nil {
		t.Fatal(err)
	}
	if len(dr.Results) != 2 || dr.Results[0].Decision != "publish" || dr.Results[1].Decision != "rejected" || dr.Results[1].Detail != want {
		t.Errorf("dry run: %+v", dr.Results)
	}
}
