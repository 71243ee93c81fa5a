package access_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/go-json-experiment/json"

	"github.com/ctigate/ctigate/access"
	"github.com/ctigate/ctigate/auth"
	"github.com/ctigate/ctigate/config"
	"github.com/ctigate/ctigate/custody"
)

// demoConfig is the demo topology, edited and validated.
func demoConfig(t *testing.T, edit func(*config.Config)) *config.Config {
	t.Helper()
	cfg, err := config.Load("../configs/ctigate.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	if edit != nil {
		edit(cfg)
		if err := cfg.Validate(); err != nil {
			t.Fatal(err)
		}
	}
	return cfg
}

func collection(cfg *config.Config, id string) *config.Collection {
	for i := range cfg.APIRoots {
		for j := range cfg.APIRoots[i].Collections {
			if c := &cfg.APIRoots[i].Collections[j]; c.ID == id {
				return c
			}
		}
	}
	return nil
}

func userOf(cfg *config.Config, name string) *config.User {
	for i := range cfg.Users {
		if cfg.Users[i].Name == name {
			return &cfg.Users[i]
		}
	}
	return nil
}

// describe writes an access change entry in one line.
func describe(e custody.Entry) string {
	s := e.Action + " " + e.User + "@" + e.Org
	for _, v := range []string{e.Permission, e.Collection, e.Role, e.TokenID} {
		if v != "" {
			s += " " + v
		}
	}
	return s
}

func describeAll(es []custody.Entry) []string {
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = describe(e)
	}
	return out
}

const policeTokenDigest = "4b1f6bc2a0d3e8c7f9a1b2c3d4e5f60718293a4b5c6d7e8f9a0b1c2d3e4f5a6b"

// configA gives police a bearer token; configB then lets the prosecutor
// read the law-enforcement collection, revokes the police token and
// removes the admin.
func configA(t *testing.T) *config.Config {
	return demoConfig(t, func(c *config.Config) {
		userOf(c, "police").TokenSHA256 = []string{policeTokenDigest}
	})
}

func configB(t *testing.T) *config.Config {
	return demoConfig(t, func(c *config.Config) {
		col := collection(c, police)
		col.Readers = append(col.Readers, "prosecutor")
		c.Users = slices.DeleteFunc(c.Users, func(u config.User) bool { return u.Name == "admin" })
	})
}

// TestGrantsChanges: the changes from one configuration's access to the
// next are exactly what changed (a read gained, a token revoked, a user
// removed with their role), in a fixed order; replayed from the start
// they add up to the configuration's state and digest; the same access
// twice gives no change; no entry holds a token's hash.
func TestGrantsChanges(t *testing.T) {
	a, b := access.GrantsOf(configA(t)), access.GrantsOf(configB(t))
	got := describeAll(a.Changes(b))
	tokenID := access.TokenID(policeTokenDigest)
	want := []string{
		"access-revoked admin@CERT-A policy-admin",
		"user-removed admin@CERT-A",
		"token-revoked police@National Police " + tokenID,
		"access-granted prosecutor@Prosecution Service read " + police,
	}
	if !slices.Equal(got, want) {
		t.Fatalf("changes A→B:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if n := len(b.Changes(access.GrantsOf(configB(t)))); n != 0 {
		t.Fatalf("B→B: %d changes, want none", n)
	}

	// The baseline: from nothing to A, every user added before what they
	// were granted.
	base := access.NewGrants().Changes(a)
	seen := map[string]bool{}
	for _, e := range base {
		if e.Action == custody.UserAdded {
			seen[e.User] = true
		} else if !seen[e.User] {
			t.Fatalf("%s before user-added %s", describe(e), e.User)
		}
	}
	if len(seen) != len(configA(t).Users) {
		t.Fatalf("baseline adds %d users, want %d", len(seen), len(configA(t).Users))
	}

	// Replayed, the entries add up to the configurations' states.
	replay := access.NewGrants()
	for _, e := range append(base, a.Changes(b)...) {
		if err := e.Valid(); err != nil {
			t.Fatalf("%s: %v", describe(e), err)
		}
		j, err := json.Marshal(&e)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(strings.ToLower(string(j)), policeTokenDigest) {
			t.Fatalf("entry holds the token's hash: %s", j)
		}
		var back custody.Entry
		if err := json.Unmarshal(j, &back); err != nil {
			t.Fatal(err)
		}
		if !replay.Apply(&back) {
			t.Fatalf("Apply refuses %s", j)
		}
	}
	if !replay.Equal(b) || replay.Digest() != b.Digest() || replay.Equal(a) {
		t.Fatalf("replay does not add up to B")
	}
	if a.Digest() == b.Digest() {
		t.Fatal("A and B share a digest")
	}
	if replay.Apply(&custody.Entry{Action: custody.Received, ObjectID: "x"}) {
		t.Fatal("Apply took a received entry")
	}
}

// TestGrantsEffective: Grants are the access a configuration gives, not
// how it is written: naming the prosecutor or their organisation gives the
// same state; a bare role that reaches no collection gives nothing but
// the role; custody.all_organisations is a permission of its own.
func TestGrantsEffective(t *testing.T) {
	byName := access.GrantsOf(demoConfig(t, func(c *config.Config) {
		col := collection(c, police)
		col.Readers = append(col.Readers, "prosecutor")
	}))
	byOrg := access.GrantsOf(demoConfig(t, func(c *config.Config) {
		col := collection(c, police)
		col.Readers = append(col.Readers, "org:Prosecution Service")
	}))
	if !byName.Equal(byOrg) || byName.Digest() != byOrg.Digest() {
		t.Error("the same access written two ways gives different grants")
	}
	demo := access.GrantsOf(demoConfig(t, nil))
	// The analyst role opens neither published collection: they hold two
	// organisations' objects.
	if ch := demo.Changes(access.GrantsOf(demoConfig(t, func(c *config.Config) {
		col := collection(c, police)
		col.Readers = append(col.Readers, "role:analyst")
	}))); len(ch) != 0 {
		t.Errorf("role:analyst on a two-organisation collection: %v", describeAll(ch))
	}
	ch := describeAll(demo.Changes(access.GrantsOf(demoConfig(t, func(c *config.Config) {
		c.Custody.AllOrganisations = []string{"auditor"}
	}))))
	if want := []string{"access-granted auditor@CERT-A all-organisations"}; !slices.Equal(ch, want) {
		t.Errorf("all_organisations: %v, want %v", ch, want)
	}
	// A user moving to another organisation leaves the old one and joins
	// the new one.
	ch = describeAll(demo.Changes(access.GrantsOf(demoConfig(t, func(c *config.Config) {
		userOf(c, "auditor").Organisation = "CERT-B"
	}))))
	want := []string{"access-revoked auditor@CERT-A auditor", "user-removed auditor@CERT-A", "user-added auditor@CERT-B", "access-granted auditor@CERT-B auditor"}
	if !slices.Equal(ch, want) {
		t.Errorf("organisation changed: %v, want %v", ch, want)
	}
}

// TestSeesAccessChanges: an auditor scoped to an organisation reads the
// access changes about its users and about collections it reads, nothing
// else; an auditor of all organisations reads them all.
func TestSeesAccessChanges(t *testing.T) {
	cfg := demoConfig(t, func(c *config.Config) {
		h := c.Users[0].PasswordHash
		c.Users = append(c.Users,
			config.User{Name: "police-auditor", Organisation: "National Police", Roles: []string{"auditor"}, PasswordHash: h},
			config.User{Name: "oversight", Organisation: "Oversight", Roles: []string{"auditor"}, PasswordHash: h})
		c.Custody.AllOrganisations = []string{"oversight"}
		// The prosecutor also reads the police's collection.
		col := collection(c, police)
		col.Readers = append(col.Readers, "prosecutor")
		userOf(c, "cert-b").TokenSHA256 = []string{policeTokenDigest}
	})
	p := access.New(cfg)
	users := map[string]*auth.User{}
	for _, u := range cfg.Users {
		users[u.Name] = &auth.User{Name: u.Name, Organisation: u.Organisation, Roles: u.Roles}
	}
	entries := access.NewGrants().Changes(access.GrantsOf(cfg))
	// What the law-enforcement collection's readers are granted is
	// visible to the police's auditor, whoever the reader.
	lawEnforcement := func(e custody.Entry) bool { return e.Collection == police }
	for _, c := range []struct {
		auditor string
		want    func(e custody.Entry) bool
	}{
		{"auditor", func(e custody.Entry) bool { return e.Org == "CERT-A" }},
		{"police-auditor", func(e custody.Entry) bool { return e.Org == "National Police" || lawEnforcement(e) }},
		{"oversight", func(custody.Entry) bool { return true }},
	} {
		var saw []string
		for _, e := range entries {
			got := p.SeesEntry(users[c.auditor], &e)
			if got != c.want(e) {
				t.Errorf("%s sees %s: %v, want %v", c.auditor, describe(e), got, !got)
			}
			if got {
				saw = append(saw, describe(e))
			}
		}
		t.Logf("%s sees %d of %d", c.auditor, len(saw), len(entries))
		if c.auditor == "police-auditor" && !slices.Contains(saw, fmt.Sprintf("access-granted prosecutor@Prosecution Service read %s", police)) {
			t.Errorf("the police's auditor does not see the prosecutor granted read on their collection: %v", saw)
		}
		if c.auditor == "auditor" && slices.ContainsFunc(saw, func(s string) bool { return strings.Contains(s, "cert-b") }) {
			t.Errorf("CERT-A's auditor sees CERT-B's user: %v", saw)
		}
	}
}
