package main

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/go-json-experiment/json"

	"github.com/ctigate/ctigate/internal/shared"
	"github.com/ctigate/ctigate/policy"
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

// TestPushWaitATTACK: `ctigate push --wait` of ATT&CK ICS 18.1 into the
// demo (whose routes withhold unmarked objects) prints, per route, how many
// were published, redacted and withheld and why: no more silent
// withholding; --fail-withheld makes that exit status 3. Through routes
// that treat unmarked objects as TLP:GREEN it reports them published.
func TestPushWaitATTACK(t *testing.T) {
	file := shared.Path(t, "attack", "ics-attack-18.1.json")
	gw := startServe(t, nil, "--config", demoVariant(t, func(cfg map[string]any) {
		cfgList(cfg, "api_roots")[0].(map[string]any)["max_content_length"] = 16 << 20
	}), "--data", t.TempDir(), "--listen", "127.0.0.1:0")
	out, errs, err := ctl(context.Background(), pushEnv, nil, nil, "push", "--server", gw.base, "--collection", "cert-a-inbound", "--user", "cert-a",
		"--wait", "--fail-withheld", file)
	var coded interface{ ExitCode() int }
	if !errors.As(err, &coded) || coded.ExitCode() != 3 {
		t.Fatalf("push --wait --fail-withheld of unmarked ATT&CK: %v (want exit status 3)\n%s%s", err, out, errs)
	}
	// Everything is unmarked but the statement marking definition, which
	// goes out only with an object that uses it.
	for _, want := range []string{"route law-enforcement: published 0, redacted 0, withheld 1826 (marking_definition 1, unmarked 1825)", "route judiciary: published 0, redacted 0, withheld 1826 (marking_definition 1, unmarked 1825)"} {
		if !strings.Contains(out, want) {
			t.Errorf("push --wait printed:\n%s\nwant a line %q", out, want)
		}
	}

	green := startServe(t, nil, "--config", demoVariant(t, func(cfg map[string]any) {
		cfgList(cfg, "api_roots")[0].(map[string]any)["max_content_length"] = 16 << 20
		for _, r := range cfgList(cfg, "routes") {
			r.(map[string]any)["unmarked"] = "TLP:GREEN"
		}
	}), "--data", t.TempDir(), "--listen", "127.0.0.1:0")
	out, errs, err = ctl(context.Background(), pushEnv, nil, nil, "push", "--server", green.base, "--collection", "cert-a-inbound", "--user", "cert-a",
		"--wait", "--fail-withheld", file)
	if err != nil && !errors.As(err, &coded) {
		t.Fatalf("push --wait: %v\n%s%s", err, out, errs)
	}
	// Law enforcement publishes all (five redacted: an empty
	// x_mitre_data_source_ref, which names nothing, trimmed), judiciary
	// redacts (it drops x_ properties).
	if !regexp.MustCompile(`route law-enforcement: published 18\d\d, redacted \d, withheld 0\n`).MatchString(out) ||
		!regexp.MustCompile(`route judiciary: published \d+, redacted 18\d\d, withheld 0\n`).MatchString(out) {
		t.Errorf("push --wait through routes publishing unmarked data as GREEN printed:\n%s", out)
	}
	t.Logf("push --wait printed:\n%s", out)
}

// TestSourceProtection: with protect_source on the law-enforcement route,
// nothing the police receive — objects, manifest, versions, search hits
// (filtered by producer or not), the withdrawn list — names CERT-A or its
// identity's id; the indicator names the gateway as its creator, and the
// gateway's identity is published with it.
func TestSourceProtection(t *testing.T) {
	config := demoVariant(t, func(cfg map[string]any) {
		for _, r := range cfgList(cfg, "routes") {
			if r := r.(map[string]any); r["name"] == "law-enforcement" {
				r["protect_source"] = true
			}
		}
		for _, u := range cfgList(cfg, "users") {
			if u := u.(map[string]any); u["name"] == "police" {
				u["roles"] = []any{"consumer", "analyst", "auditor"}
			}
		}
	})
	gw := startServe(t, nil, "--config", config, "--data", t.TempDir(), "--listen", "127.0.0.1:0")
	client := &http.Client{Timeout: 20 * time.Second}
	const (
		who = "identity--c3a7a000-0000-4000-8000-000000000001"
		ind = "indicator--c3a7a000-0000-4000-8000-000000000002"
	)
	identity := `{"type":"identity","spec_version":"2.1","id":"` + who + `","created":"2026-01-01T00:00:00.000Z","modified":"2026-01-01T00:00:00.000Z","name":"CERT-A","identity_class":"organization","object_marking_refs":["` + tlpGreen + `"]}`
	indicator := strings.Replace(isoIndicator(ind, "protected-source.example", tlpGreen), `"pattern"`, `"created_by_ref":"`+who+`","pattern"`, 1)
	if res, b, err := request(t, client, "POST", gw.base+inboundPath+"objects/", "cert-a", []byte(`{"objects":[`+identity+`,`+indicator+`]}`)); err != nil || res.StatusCode != http.StatusAccepted {
		t.Fatalf("POST: %v %v %s", res, err, b)
	}
	waitFor(t, "the police read the indicator", 10*time.Second, func() bool { return visible(t, client, gw.base, lawEnforcementPath, "police", ind) })
	waitFor(t, "the prosecutor (no protection) reads it", 10*time.Second, func() bool { return visible(t, client, gw.base, judiciaryPath, "prosecutor", ind) })
	waitFor(t, "the police find it", 10*time.Second, func() bool { return found(t, client, gw.base, "police", "protected-source.example", ind) })
	var all []string
	for _, p := range []string{
		lawEnforcementPath + "objects/?match[version]=all", lawEnforcementPath + "manifest/", lawEnforcementPath + "objects/" + ind + "/versions/",
		"/api/v1/search?value=protected-source.example", "/api/v1/search?value=protected-source.example&producer=CERT-A",
		"/api/v1/collections/law-enforcement/withdrawn", "/api/v1/audit/entries?limit=10000", "/api/v1/decisions?limit=1000",
	} {
		res, b, err := request(t, client, "GET", gw.base+p, "police", nil)
		if err != nil || res.StatusCode/100 != 2 && res.StatusCode != http.StatusForbidden {
			t.Fatalf("GET %s: %v %v %s", p, res, err, b)
		}
		all = append(all, string(b))
		for _, secret := range []string{"CERT-A", who, certAInboundID} {
			if strings.Contains(string(b), secret) {
				t.Errorf("GET %s as police reveals %q:\n%s", p, secret, b)
			}
		}
	}
	if !strings.Contains(all[0], `"created_by_ref":"`+policy.GatewayIdentity+`"`) || !strings.Contains(all[0], `"id":"`+policy.GatewayIdentity+`"`) || !strings.Contains(all[0], `"source_protected":true`) {
		t.Errorf("the police's copy does not name the gateway as its creator:\n%s", all[0])
	}
	if !strings.Contains(all[3], ind) {
		t.Errorf("search without a producer filter does not find the indicator:\n%s", all[3])
	}
	// The judiciary route does not protect its sources: the prosecutor sees
	// CERT-A's attribution.
	if _, b, _ := request(t, client, "GET", gw.base+judiciaryPath+"objects/"+ind+"/", "prosecutor", nil); !strings.Contains(string(b), who) {
		t.Errorf("the judiciary copy lost its attribution:\n%s", b)
	}
}
