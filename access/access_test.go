package access_test

import (
	"testing"

	"github.com/ctigate/ctigate/access"
	"github.com/ctigate/ctigate/auth"
	"github.com/ctigate/ctigate/config"
	"github.com/ctigate/ctigate/custody"
)

const (
	inboundA = "24f70a31-7be5-4fdd-8353-9784877646c1"
	inboundB = "5b6b0f0e-3c2a-4c38-9f0e-7a1d2c3b4e5f"
	police   = "1dae5e88-4b59-4503-a9cf-2e649dd6544c"
	judicial = "17f28d77-a964-471e-ab40-76087911370a"
)

// demo is the demo topology with variations made in code.
func demo(t *testing.T, edit func(*config.Config)) (*access.Policy, func(string) *auth.User) {
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
	users := map[string]*auth.User{}
	for _, u := range cfg.Users {
		users[u.Name] = &auth.User{Name: u.Name, Organisation: u.Organisation, Roles: u.Roles}
	}
	return access.New(cfg), func(n string) *auth.User {
		if users[n] == nil {
			t.Fatalf("no user %s", n)
		}
		return users[n]
	}
}

func TestDemoCollections(t *testing.T) {
	p, user := demo(t, nil)
	type rw struct{ read, write bool }
	want := map[string]map[string]rw{
		"cert-a":     {inboundA: {true, true}},
		"cert-b":     {inboundB: {true, true}},
		"analyst":    {inboundA: {true, false}}, // CERT-A's: not the published collections
		"police":     {police: {true, false}},
		"prosecutor": {judicial: {true, false}},
		"auditor":    {},
		"admin":      {},
	}
	for name, colls := range want {
		for _, id := range []string{inboundA, inboundB, police, judicial, "no-such"} {
			got := rw{p.CanRead(user(name), id), p.CanWrite(user(name), id)}
			if got != colls[id] {
				t.Errorf("%s on %s: read %v write %v, want %+v", name, id, got.read, got.write, colls[id])
			}
			if p.CanDelete(user(name), id) != (got.read && got.write) {
				t.Errorf("%s on %s: delete without read and write", name, id)
			}
		}
	}
	if p.CanRead(nil, inboundA) || p.CanWrite(nil, inboundA) {
		t.Error("no user reads or writes")
	}
}

// TestRoleGrants: a bare role or "*" opens a collection only when it
// holds nothing but the reader's organisation's objects; a named grant
// (user, org:, role:@org) opens it whole.
func TestRoleGrants(t *testing.T) {
	p, user := demo(t, func(c *config.Config) {
		for i := range c.APIRoots[0].Collections {
			col := &c.APIRoots[0].Collections[i]
			switch col.ID {
			case inboundA:
				col.Readers = []string{"role:analyst", "*"}
			case police:
				col.Readers = append(col.Readers, "role:analyst", "role:auditor", "*")
			case judicial:
				col.Readers = append(col.Readers, "analyst")
			}
		}
	})
	for _, c := range []struct {
		user, coll string
		want       bool
	}{
		{"analyst", inboundA, true},    // CERT-A's own objects only
		{"cert-b", inboundA, false},    // "*", but CERT-A's objects
		{"police", inboundA, false},    // "*", but CERT-A's objects
		{"analyst", police, false},     // role:analyst, but CERT-A's and CERT-B's objects
		{"auditor", police, false},     // likewise
		{"prosecutor", police, false},  // "*"
		{"analyst", judicial, true},    // named by user name
		{"prosecutor", judicial, true}, // org:Prosecution Service
		{"cert-a", judicial, false},    // not a reader
	} {
		if got := p.CanRead(user(c.user), c.coll); got != c.want {
			t.Errorf("%s reads %s: %v, want %v", c.user, c.coll, got, c.want)
		}
	}
}

func TestSeesRecord(t *testing.T) {
	p, user := demo(t, func(c *config.Config) {
		c.Users = append(c.Users,
			config.User{Name: "police-auditor", Organisation: "National Police", Roles: []string{"auditor"}, PasswordHash: c.Users[0].PasswordHash},
			config.User{Name: "cert-b-auditor", Organisation: "CERT-B", Roles: []string{"auditor"}, PasswordHash: c.Users[0].PasswordHash},
			config.User{Name: "oversight", Organisation: "Oversight", Roles: []string{"auditor"}, PasswordHash: c.Users[0].PasswordHash})
		c.Custody.AllOrganisations = []string{"oversight"}
	})
	recs := map[string]access.Record{
		"received A":         {Action: custody.Received, Org: "CERT-A", Collection: inboundA},
		"rejected B":         {Action: custody.Rejected, Org: "CERT-B", Collection: inboundB},
		"published A→police": {Action: custody.Published, Collection: police, Source: inboundA},
		"redacted B→police":  {Action: custody.Redacted, Collection: police, Source: inboundB},
		"withheld B→police":  {Action: custody.Withheld, Collection: police, Source: inboundB},
		"delivered police":   {Action: custody.Delivered, Org: "National Police", Collection: police},
		"retention A":        {Action: custody.Deleted, Org: custody.GatewayOrg, Collection: inboundA},
		"retention police":   {Action: custody.Deleted, Org: custody.GatewayOrg, Collection: police},
		"checkpoint":         {Action: custody.Checkpoint, Org: custody.GatewayOrg},
		"unknown action":     {Action: "approved", Org: "CERT-A", Collection: inboundA},
	}
	want := map[string][]string{
		"auditor":        {"received A", "published A→police", "retention A", "checkpoint"},
		"cert-b-auditor": {"rejected B", "redacted B→police", "withheld B→police", "checkpoint"},
		"police-auditor": {"published A→police", "redacted B→police", "delivered police", "retention police", "checkpoint"},
		"oversight":      {"received A", "rejected B", "published A→police", "redacted B→police", "withheld B→police", "delivered police", "retention A", "retention police", "checkpoint", "unknown action"},
	}
	for name, sees := range want {
		set := map[string]bool{}
		for _, r := range sees {
			set[r] = true
		}
		for r, rec := range recs {
			if got := p.SeesRecord(user(name), rec); got != set[r] {
				t.Errorf("%s sees %s: %v, want %v", name, r, got, set[r])
			}
		}
	}
	if !p.AuditsCollection(user("police-auditor"), police) || p.AuditsCollection(user("police-auditor"), inboundA) ||
		!p.AuditsCollection(user("auditor"), inboundA) || p.AuditsCollection(user("auditor"), inboundB) || !p.AuditsCollection(user("oversight"), inboundB) {
		t.Error("AuditsCollection")
	}
}
