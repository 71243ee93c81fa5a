package auth

import "testing"

func TestPrincipal(t *testing.T) {
	alice := &User{Name: "alice", Organisation: "CERT-A", Roles: []string{"producer", "analyst"}}
	bob := &User{Name: "bob", Organisation: "CERT-B", Roles: []string{"producer"}}
	cases := []struct {
		p          string
		alice, bob bool
		named      bool
	}{
		{"*", true, true, false},
		{"alice", true, false, true},
		{"org:CERT-A", true, false, true},
		{"role:producer", true, true, false},
		{"role:analyst", true, false, false},
		{"role:producer@CERT-A", true, false, true},
		{"role:producer@CERT-B", false, true, true},
		{"role:analyst@CERT-B", false, false, true},
		{"role:producer@CERT-A@x", false, false, true}, // the organisation is "CERT-A@x"
	}
	for _, c := range cases {
		p, err := ParsePrincipal(c.p)
		if err != nil {
			t.Fatalf("%q: %v", c.p, err)
		}
		if p.Match(alice) != c.alice || p.Match(bob) != c.bob || p.Named() != c.named {
			t.Errorf("%q: alice %v bob %v named %v, want %v %v %v", c.p, p.Match(alice), p.Match(bob), p.Named(), c.alice, c.bob, c.named)
		}
		if p.Match(nil) {
			t.Errorf("%q matches no user", c.p)
		}
	}
	for _, bad := range []string{"", "org:", "role:", "role:@CERT-A", "role:producer@"} {
		if _, err := ParsePrincipal(bad); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
	if got := Matching(alice, []string{"role:", "bob", "org:CERT-A", "role:producer"}); len(got) != 2 {
		t.Errorf("Matching: %+v, want org:CERT-A and role:producer", got)
	}
}
