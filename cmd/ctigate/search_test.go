package main

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-json-experiment/json"
)

const (
	tlpGreenID = "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb"
	tlpAmberID = "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421"
	tlpRedID   = "marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1"
)

func patternIndicator(n int, pattern, marking string) string {
	return fmt.Sprintf(`{"type":"indicator","spec_version":"2.1","id":"indicator--5e4c0000-0000-4000-8000-%012d","created":"2026-01-01T00:00:00.000Z","modified":"2026-01-01T00:00:00.000Z",`+
		`"name":"search %d","pattern":%q,"pattern_type":"stix","valid_from":"2026-01-01T00:00:00Z","labels":["malicious-activity"],"object_marking_refs":[%q]}`,
		n, n, pattern, marking)
}

type searchHit struct {
	ID         string `json:"id"`
	Collection struct {
		ID    string `json:"id"`
		Title string `json:"title"`
	} `json:"collection"`
	TLP       string   `json:"tlp"`
	Producer  string   `json:"producer"`
	FirstSeen string   `json:"first_seen"`
	LastSeen  string   `json:"last_seen"`
	Matched   []string `json:"matched"`
}

type searchResponse struct {
	Query struct {
		Kind       string `json:"kind"`
		Normalised string `json:"normalised"`
	} `json:"query"`
	Hits []searchHit `json:"hits"`
	Next string      `json:"next"`
}

func searchHTTP(t *testing.T, client *http.Client, base, user, query string) (int, searchResponse, string) {
	t.Helper()
	res, b, err := request(t, client, "GET", base+"/api/v1/search?"+query, user, nil)
	if err != nil {
		t.Fatalf("GET /api/v1/search?%s: %v", query, err)
	}
	var r searchResponse
	if res.StatusCode == http.StatusOK {
		if err := json.Unmarshal(b, &r); err != nil {
			t.Fatalf("search response: %v: %s", err, b)
		}
	}
	return res.StatusCode, r, string(b)
}

func hitKeys(r searchResponse) []string {
	var out []string
	for _, h := range r.Hits {
		out = append(out, h.Collection.Title+" "+h.ID[len(h.ID)-2:]+" "+h.TLP)
	}
	slices.Sort(out)
	return out
}

// TestSearchDemoTopology: the analyst finds indicators by an address
// inside their CIDR pattern, by the domain of their URL pattern and by the
// hash of their file pattern, in the published collections the analyst
// may read, at the TLP each was published under; never the inbound
// originals, never what the routes withheld. (The demo variant names the
// analyst as a reader of both published collections and not of CERT-A's
// inbound one: an analyst of the authorities, say.)
func TestSearchDemoTopology(t *testing.T) {
	data := t.TempDir()
	config := demoVariant(t, func(cfg map[string]any) {
		cfgCollection(cfg, certAInboundID)["readers"] = []any{"role:producer@CERT-A"}
		for _, r := range cfgList(cfg, "routes") {
			col := cfgCollection(cfg, r.(map[string]any)["id"].(string))
			col["readers"] = append(cfgList(col, "readers"), "analyst")
		}
	})
	gw := startServe(t, nil, "--config", config, "--data", data, "--listen", "127.0.0.1:0")
	client := &http.Client{Timeout: 10 * time.Second}
	body := `{"objects":[` + strings.Join([]string{
		patternIndicator(1, "[ipv4-addr:value = '198.51.100.0/24']", tlpGreenID),
		patternIndicator(2, "[url:value = 'https://Phish.Example/login.php']", tlpAmberID),
		patternIndicator(3, "[file:hashes.'SHA-256' = 'AEC070645FE53EE3B3763059376134F058CC337247C978ADD178B6CCDFB0019F']", tlpGreenID),
		patternIndicator(4, "[ipv4-addr:value = '203.0.113.0/28'] AND [domain-name:value = 'red.example']", tlpRedID),
	}, ",") + `]}`
	res, b, err := request(t, client, "POST", gw.base+inboundPath+"objects/", "cert-a", []byte(body))
	if err != nil || res.StatusCode != http.StatusAccepted || !strings.Contains(string(b), `"success_count":4`) {
		t.Fatalf("POST: %v %v %s", res, err, b)
	}

	// Publication and indexing are asynchronous: wait until the last
	// expected hit is there.
	for deadline := time.Now().Add(30 * time.Second); ; {
		_, r, _ := searchHTTP(t, client, gw.base, "analyst", "value="+url.QueryEscape("198.51.100.200"))
		if len(r.Hits) == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("indicator 1 not found in both published collections: %+v", r)
		}
		time.Sleep(20 * time.Millisecond)
	}
	for deadline := time.Now().Add(30 * time.Second); ; {
		_, r, _ := searchHTTP(t, client, gw.base, "analyst", "value=phish.example")
		_, r3, _ := searchHTTP(t, client, gw.base, "analyst", "value=aec070645fe53ee3b3763059376134f058cc337247c978add178b6ccdfb0019f")
		if len(r.Hits) == 1 && len(r3.Hits) == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("indicators 2 and 3 not found: %+v %+v", r, r3)
		}
		time.Sleep(20 * time.Millisecond)
	}

	for _, c := range []struct {
		query, kind string
		want        []string
	}{
		{"value=198.51.100.200", "ipv4", []string{"Judiciary 01 TLP:GREEN", "Law enforcement 01 TLP:GREEN"}},
		{"value=198.51.100.0/25", "ipv4-network", []string{"Judiciary 01 TLP:GREEN", "Law enforcement 01 TLP:GREEN"}},
		{"value=PHISH.example.", "domain", []string{"Law enforcement 02 TLP:AMBER"}},
		{"value=" + url.QueryEscape("https://phish.example/login.php"), "url", []string{"Law enforcement 02 TLP:AMBER"}},
		{"value=AEC070645FE53EE3B3763059376134F058CC337247C978ADD178B6CCDFB0019F", "sha256", []string{"Judiciary 03 TLP:GREEN", "Law enforcement 03 TLP:GREEN"}},
		// TLP:RED is never published, so never found.
		{"value=203.0.113.5", "ipv4", nil},
		{"value=red.example", "domain", nil},
		// Filters.
		{"value=198.51.100.200&tlp=amber", "ipv4", nil},
		{"value=198.51.100.200&tlp=TLP:GREEN&producer=CERT-A&label=malicious-activity&type=indicator", "ipv4", []string{"Judiciary 01 TLP:GREEN", "Law enforcement 01 TLP:GREEN"}},
		{"value=198.51.100.200&type=malware", "ipv4", nil},
		{"value=198.51.100.200&added_after=2100-01-01T00:00:00Z", "ipv4", nil},
	} {
		code, r, b := searchHTTP(t, client, gw.base, "analyst", c.query)
		if code != http.StatusOK {
			t.Fatalf("%s: %d %s", c.query, code, b)
		}
		if got := hitKeys(r); !slices.Equal(got, c.want) || r.Query.Kind != c.kind {
			t.Errorf("%s: kind %q, hits %q; want %q, %q", c.query, r.Query.Kind, got, c.kind, c.want)
		}
		for _, h := range r.Hits {
			if h.Producer != "CERT-A" || h.FirstSeen == "" || h.LastSeen == "" || len(h.Matched) == 0 {
				t.Errorf("%s: incomplete hit %+v", c.query, h)
			}
		}
	}

	// A producer may read its inbound collection, but searching needs the analyst
	// role; a consumer may not search either.
	for _, u := range []string{"cert-a", "police", "auditor"} {
		if code, _, b := searchHTTP(t, client, gw.base, u, "value=198.51.100.200"); code != http.StatusForbidden || !strings.Contains(b, `"title"`) {
			t.Errorf("%s: %d %s, want 403 with a TAXII error", u, code, b)
		}
	}
	req, _ := http.NewRequest("GET", gw.base+"/api/v1/search?value=1.2.3.4", nil)
	if r, err := client.Do(req); err != nil || r.StatusCode != http.StatusUnauthorized {
		t.Errorf("unauthenticated search: %v %v", r, err)
	} else {
		r.Body.Close()
	}
	for _, q := range []string{"", "value=", "value=a%20b", "value=1.2.3.4&limit=0", "value=1.2.3.4&tlp=purple", "value=1.2.3.4&next=%25%25", "value=1.2.3.4&bogus=1", "value=1.2.3.4&added_after=yesterday"} {
		if code, _, b := searchHTTP(t, client, gw.base, "analyst", q); code != http.StatusBadRequest || !strings.Contains(b, `"http_status":"400"`) {
			t.Errorf("?%s: %d %s, want 400 with a TAXII error", q, code, b)
		}
	}

	// The same from the command line.
	env := func(k string) string {
		if k == "CTIGATE_PASSWORD" {
			return "analyst-demo"
		}
		return ""
	}
	var out, errOut strings.Builder
	if err := run(t.Context(), []string{"search", "--server", gw.base, "--user", "analyst", "198.51.100.9", "--tlp", "green"}, env, nil, &out, &errOut); err != nil {
		t.Fatalf("ctigate search: %v\n%s", err, errOut.String())
	}
	if o := out.String(); strings.Count(o, "indicator--5e4c0000-0000-4000-8000-000000000001") != 2 || !strings.Contains(o, "Judiciary") ||
		!strings.Contains(o, "Law enforcement") || !strings.Contains(o, "198.51.100.0/24") || strings.Contains(o, "analyst-demo") {
		t.Errorf("ctigate search output:\n%s", o)
	}
	if e := errOut.String(); !strings.Contains(e, "ipv4 198.51.100.9: 2 hit(s)") {
		t.Errorf("ctigate search stderr: %s", e)
	}
	out.Reset()
	if err := run(t.Context(), []string{"search", "--server", gw.base, "--user", "analyst", "--json", "--max", "1", "aec070645fe53ee3b3763059376134f058cc337247c978add178b6ccdfb0019f"}, env, nil, &out, &errOut); err != nil {
		t.Fatalf("ctigate search --json: %v", err)
	}
	var hits []searchHit
	if err := json.Unmarshal([]byte(out.String()), &hits); err != nil || len(hits) != 1 || hits[0].TLP != "TLP:GREEN" {
		t.Errorf("ctigate search --json --max 1: %v %s", err, out.String())
	}
	err = run(t.Context(), []string{"search", "--server", gw.base, "--user", "police", "1.2.3.4"}, func(k string) string {
		if k == "CTIGATE_PASSWORD" {
			return "police-demo"
		}
		return ""
	}, nil, &out, &errOut)
	if err == nil || !strings.Contains(err.Error(), "analyst role") || strings.Contains(err.Error(), "police-demo") {
		t.Errorf("ctigate search as police: %v", err)
	}

	// Rebuilding the index, gateway stopped, gives the same answers.
	gw.stop(t)
	out.Reset()
	if err := run(t.Context(), []string{"index", "rebuild", "--config", demoConfig, "--data", data}, func(string) string { return "" }, nil, &out, &errOut); err != nil {
		t.Fatalf("ctigate index rebuild: %v", err)
	}
	if !strings.Contains(out.String(), "index rebuilt:") || !strings.Contains(out.String(), "entries/s") {
		t.Errorf("index rebuild output: %s", out.String())
	}
	t.Log(strings.TrimSpace(out.String()))
	gw = startServe(t, nil, "--config", demoConfig, "--data", data, "--listen", "127.0.0.1:0")
	if _, r, _ := searchHTTP(t, client, gw.base, "analyst", "value=phish.example"); len(r.Hits) != 1 {
		t.Errorf("after rebuild: %+v", r)
	}
}
