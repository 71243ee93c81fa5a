package config

import (
	"strings"
	"testing"
	"time"
)

func TestDemoConfig(t *testing.T) {
	c, err := Load("../configs/ctigate.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Listen != "127.0.0.1:8080" || c.DataDir != "./data" || len(c.APIRoots) != 1 || c.APIRoots[0].Name != "exchange" {
		t.Errorf("demo config: %+v", c)
	}
	want := map[string]string{
		"cert-a-inbound":  "24f70a31-7be5-4fdd-8353-9784877646c1",
		"cert-b-inbound":  "5b6b0f0e-3c2a-4c38-9f0e-7a1d2c3b4e5f",
		"law-enforcement": "1dae5e88-4b59-4503-a9cf-2e649dd6544c",
		"judiciary":       "17f28d77-a964-471e-ab40-76087911370a",
	}
	for _, col := range c.APIRoots[0].Collections {
		if want[col.Alias] != col.ID {
			t.Errorf("collection %s has id %s, want %s", col.Alias, col.ID, want[col.Alias])
		}
		delete(want, col.Alias)
	}
	if len(want) != 0 {
		t.Errorf("missing collections %v", want)
	}
	var names []string
	for _, u := range c.Users {
		names = append(names, u.Name)
	}
	if got := strings.Join(names, ","); got != "cert-a,cert-b,police,prosecutor,analyst,auditor,admin" {
		t.Errorf("users %s", got)
	}
	routes := map[string]string{}
	for _, r := range c.Routes {
		routes[r.Name] = r.ID + " " + r.Ceiling + " from " + strings.Join(r.Sources, ",")
	}
	if len(c.Routes) != 2 ||
		routes["law-enforcement"] != "1dae5e88-4b59-4503-a9cf-2e649dd6544c TLP:AMBER from 24f70a31-7be5-4fdd-8353-9784877646c1,5b6b0f0e-3c2a-4c38-9f0e-7a1d2c3b4e5f" ||
		routes["judiciary"] != "17f28d77-a964-471e-ab40-76087911370a TLP:GREEN from 24f70a31-7be5-4fdd-8353-9784877646c1,5b6b0f0e-3c2a-4c38-9f0e-7a1d2c3b4e5f" {
		t.Errorf("routes %v", routes)
	}
}

func TestRouteValidationNamesKeys(t *testing.T) {
	base := `
api_roots:
  - name: exchange
    title: X
    collections:
      - id: 24f70a31-7be5-4fdd-8353-9784877646c1
        title: In
      - id: 1dae5e88-4b59-4503-a9cf-2e649dd6544c
        title: Out
users:
  - name: u1
    organisation: O
    token_sha256: [` + strings.Repeat("a", 64) + `]
routes:
  - name: out
    id: 1DAE5E88-4B59-4503-A9CF-2E649DD6544C
    sources: [24f70a31-7be5-4fdd-8353-9784877646c1]
    ceiling: TLP:AMBER
`
	if _, err := Parse([]byte(base), nil); err != nil {
		t.Fatalf("base config: %v", err)
	}
	cases := []struct{ from, to, want string }{
		{"ceiling: TLP:AMBER", "ceiling: TLP:RED", "config: routes[0].ceiling: "},
		{"ceiling: TLP:AMBER", "ceiling: TLP:AMBER\n    references: maybe", "config: routes[0].references: "},
		{"1DAE5E88-4B59-4503-A9CF-2E649DD6544C", "5b1e0f3c-0d6a-4f8e-9a3b-7c2d1e4f5a6b", "config: routes[0].id: \"5b1e0f3c-0d6a-4f8e-9a3b-7c2d1e4f5a6b\" is not the id of a configured collection"},
		{"sources: [24f70a31-7be5-4fdd-8353-9784877646c1]", "sources: [5b1e0f3c-0d6a-4f8e-9a3b-7c2d1e4f5a6b]", "config: routes[0].sources[0]: "},
		{"sources: [24f70a31-7be5-4fdd-8353-9784877646c1]", "sources: [1dae5e88-4b59-4503-a9cf-2e649dd6544c]", "config: routes[0].sources[0]: a route cannot read"},
		{"    ceiling: TLP:AMBER\n", "    ceiling: TLP:AMBER\n  - name: again\n    id: 1dae5e88-4b59-4503-a9cf-2e649dd6544c\n    sources: [24f70a31-7be5-4fdd-8353-9784877646c1]\n    ceiling: TLP:GREEN\n", "config: routes[1].id: "},
	}
	for _, c := range cases {
		_, err := Parse([]byte(strings.Replace(base, c.from, c.to, 1)), nil)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s → %s: got %v, want an error containing %s", c.from, c.to, err, c.want)
		}
	}
}

func TestEnvironmentOverrides(t *testing.T) {
	env := map[string]string{"CTIGATE_LISTEN": "127.0.0.1:9999", "CTIGATE_DATA_DIR": "/tmp/x", "CTIGATE_LOG_FORMAT": "json", "CTIGATE_PAGING_MAX_LIMIT": "5000"}
	c, err := Load("../configs/ctigate.yaml", func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if c.Listen != "127.0.0.1:9999" || c.DataDir != "/tmp/x" || c.Log.Format != "json" || c.Paging.MaxLimit != 5000 {
		t.Errorf("overrides not applied: %+v", c)
	}
	_, err = Load("../configs/ctigate.yaml", func(k string) string {
		if k == "CTIGATE_PAGING_MAX_LIMIT" {
			return "lots"
		}
		return ""
	})
	if err == nil || !strings.Contains(err.Error(), "paging.max_limit") {
		t.Errorf("bad number: %v", err)
	}
}

func TestValidationNamesKeys(t *testing.T) {
	base := minimalYAML
	if _, err := Parse([]byte(base), nil); err != nil {
		t.Fatalf("base config: %v", err)
	}
	custody := strings.Replace(base, "readers: [u1]", "readers: [u1]\n        retention: 720h", 1) +
		"custody:\n  signing_key_file: k.pem\n  checkpoint_every: 10\n  checkpoint_interval: 5s\n"
	c, err := Parse([]byte(custody), func(k string) string {
		if k == "CTIGATE_CUSTODY_SIGNING_KEY_FILE" {
			return "/etc/ctigate/custody.pem"
		}
		return ""
	})
	if err != nil {
		t.Fatalf("custody config: %v", err)
	}
	if c.Custody.SigningKeyFile != "/etc/ctigate/custody.pem" || c.Custody.CheckpointEvery != 10 || c.Custody.CheckpointInterval != 5*time.Second ||
		c.APIRoots[0].Collections[0].Retention != 720*time.Hour {
		t.Errorf("custody config read as %+v, retention %v", c.Custody, c.APIRoots[0].Collections[0].Retention)
	}
	cases := []struct{ from, to, want string }{
		{"name: exchange", "name: taxii2", "api_roots[0].name"},
		{"name: exchange", "name: Ex Change", "api_roots[0].name"},
		{"title: X", "title: \"\"", "api_roots[0].title"},
		{"readers: [u1]", "readers: [u2]", "api_roots[0].collections[0].readers[0]"},
		{"readers: [u1]", "readers: [\"org:Nobody\"]", "api_roots[0].collections[0].readers[0]"},
		{"readers: [u1]", "readers: [\"role:king\"]", "api_roots[0].collections[0].readers[0]"},
		{"organisation: O", "organisation: \"\"", "users[0].organisation"},
		{"token_sha256: [", "roles: [king]\n    token_sha256: [", "users[0].roles[0]"},
		{"a]", "z]", "users[0].token_sha256[0]"},
		{"api_roots:", "listen: 10.0.0.1:443\napi_roots:", "listen"},
		{"api_roots:", "tls:\n  cert_file: x\napi_roots:", "tls"},
		{"api_roots:", "paging:\n  default_limit: 0\napi_roots:", "paging.default_limit"},
		{"api_roots:", "discovery:\n  default: other\napi_roots:", "discovery.default"},
		{"api_roots:", "colour: blue\napi_roots:", "colour"},
		{"api_roots:", "custody:\n  checkpoint_every: 0\napi_roots:", "custody.checkpoint_every"},
		{"api_roots:", "custody:\n  checkpoint_interval: 10ms\napi_roots:", "custody.checkpoint_interval"},
		{"readers: [u1]", "readers: [u1]\n        retention: -1h", "api_roots[0].collections[0].retention"},
	}
	for _, c := range cases {
		_, err := Parse([]byte(strings.Replace(base, c.from, c.to, 1)), nil)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s → %s: got %v, want an error naming %s", c.from, c.to, err, c.want)
		}
	}
}

// TestDockerConfig: the container example is complete but for the
// password hashes the operator must set, and fails closed until then.
func TestDockerConfig(t *testing.T) {
	_, err := Load("../configs/docker.yaml", nil)
	if err == nil {
		t.Fatal("the container example validated with REPLACE-ME password hashes")
	}
	for _, line := range strings.Split(err.Error(), "\n") {
		if !strings.Contains(line, ".password_hash: ") {
			t.Errorf("unexpected problem: %s", line)
		}
	}
}

// TestSharedCollectionRefused: a collection whose objects can come from
// several organisations is refused when it has writers (its receipts,
// deletes and reads would involve another organisation's objects), naming
// the key and the organisations; routes may read several.
func TestSharedCollectionRefused(t *testing.T) {
	cases := []struct {
		name    string
		edit    func(c *Config)
		wantErr string
	}{
		{"demo", func(c *Config) {}, ""},
		{"bare role", func(c *Config) { c.APIRoots[0].Collections[0].Writers = []string{"role:producer"} }, "collections[0].writers: users of several organisations (CERT-A, CERT-B)"},
		{"anyone", func(c *Config) { c.APIRoots[0].Collections[1].Writers = []string{"*"} }, "collections[1].writers: users of several organisations"},
		{"two organisations", func(c *Config) {
			c.APIRoots[0].Collections[0].Writers = []string{"cert-a", "org:CERT-B"}
		}, "collections[0].writers: users of several organisations (CERT-A, CERT-B)"},
		{"direct writer into a route from another organisation", func(c *Config) {
			c.APIRoots[0].Collections[2].Writers = []string{"role:producer@CERT-A"}
		}, "collections[2].writers: users of several organisations (CERT-A, CERT-B)"},
		{"direct writer into a route from its own organisation", func(c *Config) {
			c.APIRoots[0].Collections[2].Writers = []string{"role:producer@CERT-A"}
			c.Routes[0].Sources = c.Routes[0].Sources[:1]
		}, ""},
		{"unknown organisation in a role", func(c *Config) { c.APIRoots[0].Collections[0].Readers = []string{"role:analyst@CERT-Z"} }, `collections[0].readers[0]: no user belongs to organisation "CERT-Z"`},
		{"unknown role", func(c *Config) { c.APIRoots[0].Collections[0].Readers = []string{"role:reader@CERT-A"} }, `collections[0].readers[0]: "reader" is not one of`},
		{"malformed", func(c *Config) { c.APIRoots[0].Collections[0].Readers = []string{"role:@CERT-A"} }, `collections[0].readers[0]: "role:@CERT-A"`},
		{"gateway's organisation", func(c *Config) { c.Users[0].Organisation = "ctigate" }, `users[0].organisation: "ctigate" is the gateway's own`},
		{"all organisations", func(c *Config) { c.Custody.AllOrganisations = []string{"nobody"} }, `custody.all_organisations[0]: no user named "nobody"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg, err := Load("../configs/ctigate.yaml", nil)
			if err != nil {
				t.Fatal(err)
			}
			c.edit(cfg)
			err = cfg.Validate()
			switch {
			case c.wantErr == "" && err != nil:
				t.Errorf("refused: %v", err)
			case c.wantErr != "" && (err == nil || !strings.Contains(err.Error(), c.wantErr)):
				t.Errorf("got %v, want an error containing %q", err, c.wantErr)
			}
		})
	}
}

func TestContentOrganisations(t *testing.T) {
	cfg, err := Load("../configs/ctigate.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	got := cfg.ContentOrganisations()
	want := map[string]string{
		"24f70a31-7be5-4fdd-8353-9784877646c1": "CERT-A",
		"5b6b0f0e-3c2a-4c38-9f0e-7a1d2c3b4e5f": "CERT-B",
		"1dae5e88-4b59-4503-a9cf-2e649dd6544c": "CERT-A,CERT-B",
		"17f28d77-a964-471e-ab40-76087911370a": "CERT-A,CERT-B",
	}
	for id, w := range want {
		if g := strings.Join(got[id], ","); g != w {
			t.Errorf("%s: %s, want %s", id, g, w)
		}
	}
}

// TestStatusRetention: statuses are kept a week unless status_retention
// says otherwise, and never less than the 24 hours TAXII 2.1 asks for.
func TestStatusRetention(t *testing.T) {
	base := minimalYAML
	c, err := Parse([]byte(base), nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.StatusRetention != 7*24*time.Hour {
		t.Errorf("default status_retention = %s, want 168h", c.StatusRetention)
	}
	for _, tc := range []struct {
		value string
		want  time.Duration // 0: refused
	}{
		{"24h", 24 * time.Hour},
		{"720h", 720 * time.Hour},
		{"23h59m59s", 0},
		{"1h", 0},
		{"0s", 0},
		{"-24h", 0},
	} {
		c, err := Parse([]byte(base+"status_retention: "+tc.value+"\n"), nil)
		switch {
		case tc.want == 0 && (err == nil || !strings.Contains(err.Error(), "status_retention")):
			t.Errorf("status_retention: %s: got %v, want an error naming status_retention", tc.value, err)
		case tc.want != 0 && err != nil:
			t.Errorf("status_retention: %s: %v", tc.value, err)
		case tc.want != 0 && c.StatusRetention != tc.want:
			t.Errorf("status_retention: %s read as %s", tc.value, c.StatusRetention)
		}
	}
}
