package auth

import (
	"fmt"
	"slices"
	"strings"
)

// A principal names who a grant is for. Its forms:
//
//	"*"                any authenticated user
//	"<user>"           one user, by name
//	"org:<org>"        every user of an organisation
//	"role:<role>"      every user holding a role, of any organisation
//	"role:<role>@<org>" users holding a role within one organisation
//
// Roles never contain "@", so the organisation of the last form is
// everything after the first "@" and may contain any character.
type Principal struct {
	Any  bool
	User string
	Org  string // org: and role:@ forms
	Role string // role: forms
}

// ParsePrincipal reads a principal. It checks only the form; whether the
// user, role or organisation exists is the configuration's to check.
func ParsePrincipal(s string) (Principal, error) {
	switch {
	case s == "*":
		return Principal{Any: true}, nil
	case strings.HasPrefix(s, "org:"):
		if s[4:] == "" {
			return Principal{}, fmt.Errorf("%q names no organisation", s)
		}
		return Principal{Org: s[4:]}, nil
	case strings.HasPrefix(s, "role:"):
		role, org, scoped := strings.Cut(s[5:], "@")
		if role == "" || (scoped && org == "") {
			return Principal{}, fmt.Errorf("%q: want role:ROLE or role:ROLE@ORGANISATION", s)
		}
		return Principal{Role: role, Org: org}, nil
	case s == "":
		return Principal{}, fmt.Errorf("empty principal")
	}
	return Principal{User: s}, nil
}

// Match reports whether u is one of the users p names.
func (p Principal) Match(u *User) bool {
	switch {
	case u == nil:
		return false
	case p.Any:
		return true
	case p.User != "":
		return p.User == u.Name
	case p.Role != "":
		return slices.Contains(u.Roles, p.Role) && (p.Org == "" || p.Org == u.Organisation)
	}
	return p.Org != "" && p.Org == u.Organisation
}

// Named reports whether p names u's organisation or u itself, rather than
// every holder of a role ("role:ROLE") or everyone ("*"), whatever their
// organisation. Only a named grant reaches other organisations' objects.
func (p Principal) Named() bool { return !p.Any && (p.User != "" || p.Org != "") }

// Matching returns the principals of ps (as ParsePrincipal reads them)
// that match u; a principal that does not parse matches no one.
func Matching(u *User, ps []string) []Principal {
	var out []Principal
	for _, s := range ps {
		if p, err := ParsePrincipal(s); err == nil && p.Match(u) {
			out = append(out, p)
		}
	}
	return out
}
