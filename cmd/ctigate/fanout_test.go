package main

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-json-experiment/json"
)

const (
	lawEnforcementPath = "/exchange/collections/1dae5e88-4b59-4503-a9cf-2e649dd6544c/"
	judiciaryPath      = "/exchange/collections/17f28d77-a964-471e-ab40-76087911370a/"
)

func markedIndicator(name, marking string) string {
	return fmt.Sprintf(`{"type":"indicator","spec_version":"2.1","id":"indicator--%s","created":"2026-01-01T00:00:00.000Z","modified":"2026-01-01T00:00:00.000Z","name":%q,"pattern":"[ipv4-addr:value = '203.0.113.7']","pattern_type":"stix","valid_from":"2026-01-01T00:00:00Z","object_marking_refs":[%q]}`,
		map[string]string{"green": "2b0b8f4e-1c7a-4d55-9f3e-000000000001", "amber": "2b0b8f4e-1c7a-4d55-9f3e-000000000002", "red": "2b0b8f4e-1c7a-4d55-9f3e-000000000003"}[name],
		name, marking)
}

// TestFanOutEndToEnd: what cert-a posts to csirt-inbound reaches police
// and prosecutor as far as their routes allow, and TLP:RED never does.
func TestFanOutEndToEnd(t *testing.T) {
	gw := startServe(t, nil, "--config", demoConfig, "--data", t.TempDir(), "--listen", "127.0.0.1:0")
	client := &http.Client{Timeout: 10 * time.Second}
	body := `{"objects":[` + strings.Join([]string{
		markedIndicator("green", "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb"),
		markedIndicator("amber", "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421"),
		markedIndicator("red", "marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1"),
	}, ",") + `]}`
	res, b, err := request(t, client, "POST", gw.base+inboundPath+"objects/", "cert-a", []byte(body))
	if err != nil || res.StatusCode != http.StatusAccepted || !strings.Contains(string(b), `"success_count":3`) {
		t.Fatalf("POST: %v %v %s", res, err, b)
	}

	names := func(user, path string) []string {
		t.Helper()
		res, b, err := request(t, client, "GET", gw.base+path+"objects/", user, nil)
		if err != nil || res.StatusCode != http.StatusOK {
			t.Fatalf("GET %s as %s: %v %v %s", path, user, res, err, b)
		}
		var env struct {
			Objects []struct {
				Name string `json:"name"`
			} `json:"objects"`
		}
		if err := json.Unmarshal(b, &env); err != nil {
			t.Fatalf("GET %s as %s: %v: %s", path, user, err, b)
		}
		var out []string
		for _, o := range env.Objects {
			out = append(out, o.Name)
		}
		slices.Sort(out)
		return out
	}
	for _, c := range []struct {
		user, path string
		want       []string
	}{
		{"police", lawEnforcementPath, []string{"amber", "green"}},
		{"prosecutor", judiciaryPath, []string{"green"}},
	} {
		deadline := time.Now().Add(20 * time.Second)
		for {
			got := names(c.user, c.path)
			if slices.Contains(got, "red") {
				t.Fatalf("%s sees TLP:RED: %v", c.user, got)
			}
			if slices.Equal(got, c.want) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s sees %v, want %v", c.user, got, c.want)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}
