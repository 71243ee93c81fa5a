package main

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/go-json-experiment/json"
)

// TestAssumedTLPVisible: an unmarked indicator through a route that treats
// unmarked objects as TLP:GREEN reaches the police carrying the TLP:GREEN
// marking (and the extension saying it was assumed), and search reports
// TLP:GREEN.
func TestAssumedTLPVisible(t *testing.T) {
	config := demoVariant(t, func(cfg map[string]any) {
		for _, r := range cfgList(cfg, "routes") {
			r.(map[string]any)["unmarked"] = "TLP:GREEN"
		}
		for _, u := range cfgList(cfg, "users") {
			if u := u.(map[string]any); u["name"] == "police" {
				u["roles"] = []any{"consumer", "analyst"}
			}
		}
	})
	gw := startServe(t, nil, "--config", config, "--data", t.TempDir(), "--listen", "127.0.0.1:0")
	client := &http.Client{Timeout: 20 * time.Second}
	const id = "indicator--a55e0000-0000-4000-8000-000000000001"
	unmarked := `{"type":"indicator","spec_version":"2.1","id":"` + id + `","created":"2026-01-01T00:00:00.000Z","modified":"2026-01-01T00:00:00.000Z",` +
		`"pattern":"[domain-name:value = 'assumed-green.example']","pattern_type":"stix","valid_from":"2026-01-01T00:00:00Z"}`
	if res, b, err := request(t, client, "POST", gw.base+inboundPath+"objects/", "cert-a", []byte(`{"objects":[`+unmarked+`]}`)); err != nil || res.StatusCode != http.StatusAccepted {
		t.Fatalf("POST: %v %v %s", res, err, b)
	}
	var copy []byte
	waitFor(t, "the police read it", 10*time.Second, func() bool {
		res, b, err := request(t, client, "GET", gw.base+lawEnforcementPath+"objects/"+id+"/", "police", nil)
		if err != nil || res.StatusCode != http.StatusOK {
			return false
		}
		copy = b
		return true
	})
	if !strings.Contains(string(copy), `"object_marking_refs":["`+tlpGreen+`"]`) || !strings.Contains(string(copy), `"assumed_tlp":"TLP:GREEN"`) {
		t.Fatalf("the published copy does not carry the assumed TLP:GREEN: %s", copy)
	}
	var hits struct {
		Hits []struct {
			ID  string `json:"id"`
			TLP string `json:"tlp"`
		} `json:"hits"`
	}
	waitFor(t, "search finds it", 10*time.Second, func() bool {
		res, b, err := request(t, client, "GET", gw.base+"/api/v1/search?"+url.Values{"value": {"assumed-green.example"}}.Encode(), "police", nil)
		if err != nil || res.StatusCode != http.StatusOK || json.Unmarshal(b, &hits) != nil {
			t.Fatalf("search: %v %v %s", res, err, b)
		}
		return len(hits.Hits) == 1
	})
	if hits.Hits[0].TLP != "TLP:GREEN" {
		t.Errorf("search shows %s, want TLP:GREEN", hits.Hits[0].TLP)
	}
}
