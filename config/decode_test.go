package config

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// demoText is the demo configuration's text.
func demoText(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("../configs/ctigate.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// edit replaces the first from in text with to, failing when from is not
// there.
func edit(t *testing.T, text, from, to string) string {
	t.Helper()
	if !strings.Contains(text, from) {
		t.Fatalf("%q is not in the configuration", from)
	}
	return strings.Replace(text, from, to, 1)
}

// lineWith is the line number of the first line of text holding s.
func lineWith(t *testing.T, text, s string) int {
	t.Helper()
	i := strings.Index(text, s)
	if i < 0 {
		t.Fatalf("%q is not in the configuration", s)
	}
	return strings.Count(text[:i], "\n") + 1
}

// loadText writes text to a file and loads it, returning the file's path
// and the error.
func loadText(t *testing.T, text string, getenv func(string) string) (string, error) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "gateway.yaml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Load(path, getenv)
	return path, err
}

// goTypeWords are what an error meant for an operator must not hold: Go type
// names and YAML decoder jargon.
var goTypeWords = []string{"config.", "policy.", "[]", "time.Duration", "int64", "!!", "unmarshal", "EOF", "struct"}

func noGoWords(t *testing.T, err error) {
	t.Helper()
	for _, w := range goTypeWords {
		if strings.Contains(err.Error(), w) {
			t.Errorf("the error holds %q: %v", w, err)
		}
	}
}

// TestEmptyConfigFile: an empty file, or one with nothing but comments,
// is refused naming the file and saying so.
func TestEmptyConfigFile(t *testing.T) {
	for _, c := range []struct{ text, want string }{
		{"", "config: the file is empty"},
		{"\n  \n", "config: the file is empty"},
		{"# nothing yet\n", "config: the file holds no settings"},
		{"---\n", "config: the file holds no settings"},
	} {
		path, err := loadText(t, c.text, nil)
		if err == nil || !strings.HasPrefix(err.Error(), path+": "+c.want) {
			t.Errorf("%q: got %v, want %q", c.text, err, path+": "+c.want)
			continue
		}
		noGoWords(t, err)
	}
}

// TestConfigStructureErrors: an unknown key, a key given twice, a value
// of the wrong kind and a YAML syntax error each name the file, the line
// and the key path, with the key meant or what was expected, never Go's
// type names.
func TestConfigStructureErrors(t *testing.T) {
	demo := demoText(t)
	cases := []struct {
		name     string
		from, to string
		at       string // the text of the line the error must name
		want     string
	}{
		{"misspelt route key", "    ceiling: TLP:AMBER", "    ceilng: TLP:AMBER", "ceilng:",
			"config: routes[0].ceilng: unknown key (did you mean ceiling?)"},
		{"misspelt nested key", "      drop_custom_properties: true", "      drop_custom_property: true", "drop_custom_property:",
			"config: routes[1].minimise.drop_custom_property: unknown key (did you mean drop_custom_properties?)"},
		{"swapped letters", "log:\n", "lgo:\n", "lgo:",
			"config: lgo: unknown key (did you mean log?)"},
		{"nothing like it", "log:\n", "colour: blue\nlog:\n", "colour:",
			"config: colour: unknown key (known keys here: api_roots, "},
		{"key set twice", "  max_limit: 10000\n", "  max_limit: 10000\n  max_limit: 500\n", "max_limit: 500",
			fmt.Sprintf("config: paging.max_limit: set twice (first at line %d)", lineWith(t, demo, "max_limit: 10000"))},
		{"text for a number", "max_limit: 10000", "max_limit: lots", "max_limit: lots",
			`config: paging.max_limit: expected a whole number, got "lots"`},
		{"number without a unit", "checkpoint_interval: 60s", "checkpoint_interval: 60", "checkpoint_interval: 60",
			"config: custody.checkpoint_interval: expected a duration with a unit, such as 30s, 15m or 720h, got 60"},
		{"text for a bool", "drop_custom_properties: true", "drop_custom_properties: sometimes", "drop_custom_properties: sometimes",
			`config: routes[1].minimise.drop_custom_properties: expected true or false, got "sometimes"`},
		{"one role, not a list", "    roles: [producer]\n    password_hash: $argon2id$v=19$m=19456,t=2,p=1$mDzG", "    roles: producer\n    password_hash: $argon2id$v=19$m=19456,t=2,p=1$mDzG", "roles: producer",
			`config: users[1].roles: expected a list, such as [a, b] or one "- item" line each, got "producer"`},
		{"a string for the routes", "routes:\n  - name: law-enforcement", "routes: law-enforcement\nold_routes:\n  - name: law-enforcement", "routes: law-enforcement",
			`config: routes: expected a list of entries, each starting with "- ", got "law-enforcement"`},
		{"a list for a section", "paging:\n  default_limit: 1000\n  max_limit: 10000\n", "paging:\n  - 1000\n", "- 1000",
			"config: paging: expected key: value settings (a mapping), got a list"},
		{"a mapping for a string", "listen: 127.0.0.1:8080", "listen:\n  host: 127.0.0.1", "host: 127.0.0.1",
			"config: listen: expected a string, got key: value settings (a mapping)"},
		{"YAML syntax: unclosed list", "listen: 127.0.0.1:8080", "listen: [127.0.0.1:8080", "listen: [",
			"config: not valid YAML: did not find expected ',' or ']'"},
		{"YAML syntax: bad indentation", "  format: text\n", "  format: text\n   extra: 1\n", "extra: 1",
			"config: not valid YAML: mapping values are not allowed in this context"},
		{"YAML syntax: reserved character", "listen: 127.0.0.1:8080", "listen: @127.0.0.1:8080", "listen: @",
			"config: not valid YAML: found character that cannot start any token"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			text := edit(t, demo, c.from, c.to)
			path, err := loadText(t, text, nil)
			if err == nil {
				t.Fatal("accepted")
			}
			want := fmt.Sprintf("%s:%d: %s", path, lineWith(t, text, c.at), c.want)
			if !strings.Contains(err.Error(), want) {
				t.Errorf("got\n%v\nwant a line starting\n%s", err, want)
			}
			noGoWords(t, err)
		})
	}

	// Every problem of the kind is reported, each on its own line.
	text := edit(t, edit(t, demo, "    ceiling: TLP:AMBER", "    ceilng: TLP:AMBER"), "max_limit: 10000", "max_limit: lots")
	path, err := loadText(t, text, nil)
	if err == nil {
		t.Fatal("accepted")
	}
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], fmt.Sprintf("%s:%d: config: paging.max_limit: ", path, lineWith(t, text, "max_limit:"))) ||
		!strings.HasPrefix(lines[1], fmt.Sprintf("%s:%d: config: routes[0].ceilng: ", path, lineWith(t, text, "ceilng:"))) {
		t.Errorf("got\n%v\nwant the two problems in file order", err)
	}
}

// TestValidationErrorsNameLines: each validation problem names the file
// and the line of its key, or of the nearest enclosing key the file sets;
// one about a value from the environment names neither; Parse names
// lines alone.
func TestValidationErrorsNameLines(t *testing.T) {
	demo := demoText(t)
	text := edit(t, edit(t, demo, "ceiling: TLP:GREEN", "ceiling: TLP:RED"), "        title: Judiciary\n", "")
	path, err := loadText(t, text, nil)
	if err == nil {
		t.Fatal("accepted")
	}
	for _, want := range []string{
		fmt.Sprintf("%s:%d: config: routes[1].ceiling: TLP:RED is never published", path, lineWith(t, text, "ceiling: TLP:RED")),
		// title is missing: the line of the collection's entry.
		fmt.Sprintf("%s:%d: config: api_roots[0].collections[3].title: must not be empty", path, lineWith(t, text, "- id: 17f28d77")),
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("got\n%v\nwant a line\n%s", err, want)
		}
	}
	if _, err := Parse([]byte(text), nil); err == nil || !strings.Contains(err.Error(),
		fmt.Sprintf("line %d: config: routes[1].ceiling: ", lineWith(t, text, "ceiling: TLP:RED"))) {
		t.Errorf("Parse: got %v, want the line of routes[1].ceiling", err)
	}

	_, err = loadText(t, demo, func(k string) string {
		if k == "CTIGATE_LISTEN" {
			return "10.1.2.3:8080"
		}
		return ""
	})
	if err == nil || !strings.HasPrefix(err.Error(), `config: listen: "10.1.2.3:8080" is not a loopback address`) {
		t.Errorf("listen from the environment: got %v, want an error naming no line of the file", err)
	}
}

// TestOpsListenNeedsAllowRemote: the unauthenticated operations listener
// is refused on an address other than loopback unless ops.allow_remote
// says so; the container configuration says so.
func TestOpsListenNeedsAllowRemote(t *testing.T) {
	demo := demoText(t)
	for _, c := range []struct {
		ops  string
		want string // "" when accepted
	}{
		{"ops:\n  listen: 127.0.0.1:9464\n", ""},
		{"ops:\n  listen: localhost:9464\n", ""},
		{"ops:\n  listen: '[::1]:9464'\n", ""},
		{"ops:\n  listen: \"\"\n", ""},
		{"ops:\n  listen: 0.0.0.0:9464\n", `config: ops.listen: "0.0.0.0:9464" is not a loopback address: `},
		{"ops:\n  listen: :9464\n", `config: ops.listen: ":9464" is not a loopback address: `},
		{"ops:\n  listen: 10.0.0.5:9464\n  allow_remote: false\n", `config: ops.listen: "10.0.0.5:9464" is not a loopback address: `},
		{"ops:\n  listen: 0.0.0.0:9464\n  allow_remote: true\n", ""},
	} {
		text := edit(t, demo, "log:\n", c.ops+"log:\n")
		path, err := loadText(t, text, nil)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%q: refused: %v", c.ops, err)
		case c.want != "" && err == nil:
			t.Errorf("%q: accepted", c.ops)
		case c.want != "":
			want := fmt.Sprintf("%s:%d: %s", path, lineWith(t, text, "  listen: "), c.want)
			if !strings.HasPrefix(err.Error(), want) || !strings.Contains(err.Error(), "ops.allow_remote: true") {
				t.Errorf("%q: got %v, want %s… naming ops.allow_remote", c.ops, err, want)
			}
		}
	}
	if _, err := loadText(t, demo, func(k string) string {
		if k == "CTIGATE_OPS_LISTEN" {
			return "0.0.0.0:9464"
		}
		return ""
	}); err == nil || !strings.Contains(err.Error(), "ops.allow_remote") {
		t.Errorf("ops.listen from the environment: got %v, want a refusal naming ops.allow_remote", err)
	}
	// Both from the environment (a container's): accepted; a value that
	// is not a boolean is refused, naming the variable.
	env := map[string]string{"CTIGATE_OPS_LISTEN": "0.0.0.0:9464", "CTIGATE_OPS_ALLOW_REMOTE": "true"}
	path, err := loadText(t, demo, func(k string) string { return env[k] })
	if err != nil {
		t.Fatalf("ops.listen and ops.allow_remote from the environment: %v", err)
	}
	if c, err := Load(path, func(k string) string { return env[k] }); err != nil || !c.Ops.AllowRemote {
		t.Errorf("ops.allow_remote from the environment: %v", err)
	}
	env["CTIGATE_OPS_ALLOW_REMOTE"] = "yes please"
	if _, err := loadText(t, demo, func(k string) string { return env[k] }); err == nil ||
		!strings.Contains(err.Error(), "CTIGATE_OPS_ALLOW_REMOTE") || !strings.Contains(err.Error(), "is not true or false") {
		t.Errorf("CTIGATE_OPS_ALLOW_REMOTE=%q: got %v", env["CTIGATE_OPS_ALLOW_REMOTE"], err)
	}
}

// TestTrustedProxies: trusted_proxies takes CIDR ranges and single
// addresses, and refuses anything else and a range holding every address.
func TestTrustedProxies(t *testing.T) {
	demo := demoText(t)
	text := edit(t, demo, "log:\n", "trusted_proxies: [10.0.0.0/8, 192.0.2.7, '2001:db8::/32', '2001:db8:1::1']\nlog:\n")
	path, err := loadText(t, text, nil)
	if err != nil {
		t.Fatal(err)
	}
	c, err := Load(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	ranges := c.TrustedProxyRanges()
	in := func(ip string) bool {
		for _, r := range ranges {
			if r.Contains(net.ParseIP(ip)) {
				return true
			}
		}
		return false
	}
	for ip, want := range map[string]bool{"10.200.0.1": true, "192.0.2.7": true, "192.0.2.8": false, "2001:db8:ff::1": true, "2001:db9::1": false, "198.51.100.1": false} {
		if in(ip) != want {
			t.Errorf("%s trusted: %v, want %v", ip, !want, want)
		}
	}
	for _, c := range []struct{ list, want string }{
		{"[10.0.0.0/33]", `config: trusted_proxies[0]: "10.0.0.0/33" is not a CIDR range`},
		{"[10.0.0.1, proxy.example]", `config: trusted_proxies[1]: "proxy.example" is not a CIDR range`},
		{"[0.0.0.0/0]", `config: trusted_proxies[0]: "0.0.0.0/0" trusts every address`},
		{"['::/0']", `config: trusted_proxies[0]: "::/0" trusts every address`},
		{"10.0.0.0/8", `config: trusted_proxies: expected a list`},
	} {
		text := edit(t, demo, "log:\n", "trusted_proxies: "+c.list+"\nlog:\n")
		path, err := loadText(t, text, nil)
		if want := fmt.Sprintf("%s:%d: %s", path, lineWith(t, text, "trusted_proxies:"), c.want); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: got %v, want %s", c.list, err, want)
		}
	}
	// From the environment, comma-separated (a container's), checked
	// alike.
	env := map[string]string{"CTIGATE_TRUSTED_PROXIES": "10.0.0.0/8,192.0.2.7"}
	if c, err := Load(path, func(k string) string { return env[k] }); err != nil || len(c.TrustedProxyRanges()) != 2 {
		t.Errorf("CTIGATE_TRUSTED_PROXIES=%s: %v", env["CTIGATE_TRUSTED_PROXIES"], err)
	}
	env["CTIGATE_TRUSTED_PROXIES"] = "0.0.0.0/0"
	if _, err := Load(path, func(k string) string { return env[k] }); err == nil || !strings.Contains(err.Error(), "trusts every address") {
		t.Errorf("CTIGATE_TRUSTED_PROXIES=0.0.0.0/0: got %v, want a refusal", err)
	}
}

// TestCheckSelfReadingTypes: a type that reads itself from YAML or text
// (netip.Addr, a struct) is checked by reading it, not by its Go kind.
func TestCheckSelfReadingTypes(t *testing.T) {
	type settings struct {
		Peer netip.Addr `yaml:"peer"`
	}
	for text, want := range map[string]string{
		"peer: 192.0.2.1\n": "",
		"peer: nowhere\n":   `peer: "nowhere" is not valid here: `,
	} {
		var doc yaml.Node
		if err := yaml.Unmarshal([]byte(text), &doc); err != nil {
			t.Fatal(err)
		}
		ps := check(doc.Content[0], reflect.TypeFor[settings](), "")
		switch {
		case want == "" && len(ps) > 0:
			t.Errorf("%q: %v", text, ps)
		case want != "" && (len(ps) != 1 || ps[0].line != 1 || !strings.HasPrefix(ps[0].Error(), "config: "+want)):
			t.Errorf("%q: got %v, want one problem at line 1: config: %s…", text, ps, want)
		}
	}
}
