package access

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"strings"

	"github.com/go-json-experiment/json"

	"github.com/ctigate/ctigate/auth"
	"github.com/ctigate/ctigate/config"
	"github.com/ctigate/ctigate/custody"
)

// Grants is the access a configuration gives, as a set of facts: the users
// (each with their organisation), their roles, their bearer tokens (by
// TokenID), the collections each may read and write (as a Policy decides,
// not as readers and writers are spelt) and who reads every
// organisation's custody records. Two configurations giving the same
// access have equal Grants however they are written.
//
// The custody ledger records Grants as the access changes (custody
// AccessChange actions) that lead from one configuration's to the next,
// and each config-loaded entry carries the Digest of the Grants then in
// force; replaying the access changes of a ledger from its start (Apply)
// gives the Grants it last recorded.
//
// A Grants is not safe for concurrent modification.
type Grants struct {
	facts map[grant]struct{}
}

// grant is one fact. Its kind is kindUser, kindRole, kindToken or a
// permission (custody.PermRead, PermWrite, PermAllOrgs); value is the
// role, the token id or the collection id.
type grant struct {
	kind, user, org, value string
}

const (
	kindUser  = "user"
	kindRole  = "role"
	kindToken = "token"
)

// NewGrants returns empty Grants: the state of a ledger that records no
// access yet.
func NewGrants() *Grants { return &Grants{facts: map[grant]struct{}{}} }

// GrantsOf returns the access a validated configuration gives.
func GrantsOf(cfg *config.Config) *Grants {
	g := NewGrants()
	p := New(cfg)
	var ids []string
	for _, r := range cfg.APIRoots {
		for _, c := range r.Collections {
			ids = append(ids, c.ID)
		}
	}
	for _, cu := range cfg.Users {
		u := &auth.User{Name: cu.Name, Organisation: cu.Organisation, Roles: cu.Roles}
		add := func(kind, value string) { g.facts[grant{kind, u.Name, u.Organisation, value}] = struct{}{} }
		add(kindUser, "")
		for _, r := range cu.Roles {
			add(kindRole, r)
		}
		for _, d := range cu.TokenSHA256 {
			add(kindToken, TokenID(d))
		}
		for _, id := range ids {
			if p.CanRead(u, id) {
				add(custody.PermRead, id)
			}
			if p.CanWrite(u, id) {
				add(custody.PermWrite, id)
			}
		}
		if p.AllOrganisations(u) {
			add(custody.PermAllOrgs, "")
		}
	}
	return g
}

// TokenID names the bearer token whose token_sha256 (as configured) is
// digest, in the ledger and in `ctigate passwd --token`'s output: the
// first 16 hex digits of the SHA-256 of "ctigate token id\n" followed by
// the lower-case digest. It is neither the token nor its hash, and does
// not authenticate.
func TokenID(digest string) string {
	sum := sha256.Sum256([]byte("ctigate token id\n" + strings.ToLower(digest)))
	return hex.EncodeToString(sum[:8])
}

// Len returns the number of facts in g.
func (g *Grants) Len() int { return len(g.facts) }

// Clone returns a copy of g.
func (g *Grants) Clone() *Grants {
	c := NewGrants()
	for f := range g.facts {
		c.facts[f] = struct{}{}
	}
	return c
}

// sorted returns the facts of g in a fixed order.
func (g *Grants) sorted() []grant {
	out := make([]grant, 0, len(g.facts))
	for f := range g.facts {
		out = append(out, f)
	}
	slices.SortFunc(out, func(a, b grant) int {
		return cmp.Or(strings.Compare(a.user, b.user), strings.Compare(a.org, b.org),
			strings.Compare(a.kind, b.kind), strings.Compare(a.value, b.value))
	})
	return out
}

// Digest returns the lower-case hex SHA-256 of g: of the JSON array of its
// facts, each the array [kind, user, organisation, value], sorted by user,
// organisation, kind and value (byte order). Kinds are "user", "role"
// (value: the role), "token" (value: its TokenID), "read" and "write"
// (value: the collection id) and "all-organisations"; value is "" where it
// has none.
func (g *Grants) Digest() string {
	rows := make([][4]string, 0, len(g.facts))
	for _, f := range g.sorted() {
		rows = append(rows, [4]string{f.kind, f.user, f.org, f.value})
	}
	b, err := json.Marshal(rows)
	if err != nil {
		panic(err) // strings always encode
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// Equal reports whether g and o hold the same facts.
func (g *Grants) Equal(o *Grants) bool {
	if len(g.facts) != len(o.facts) {
		return false
	}
	for f := range g.facts {
		if _, ok := o.facts[f]; !ok {
			return false
		}
	}
	return true
}

// Apply applies an access change entry to g and reports whether e was
// one; other entries leave g as it is.
func (g *Grants) Apply(e *custody.Entry) bool {
	f, added, ok := grantOf(e)
	if !ok {
		return false
	}
	if added {
		g.facts[f] = struct{}{}
	} else {
		delete(g.facts, f)
	}
	return true
}

// grantOf returns the fact an access change entry adds or removes.
func grantOf(e *custody.Entry) (f grant, added, ok bool) {
	f = grant{user: e.User, org: e.Org}
	switch e.Action {
	case custody.UserAdded, custody.UserRemoved:
		f.kind = kindUser
	case custody.TokenCreated, custody.TokenRevoked:
		f.kind, f.value = kindToken, e.TokenID
	case custody.AccessGranted, custody.AccessRevoked:
		switch {
		case e.Role != "":
			f.kind, f.value = kindRole, e.Role
		case e.Permission != "":
			f.kind, f.value = e.Permission, e.Collection
		default:
			return f, false, false
		}
	default:
		return f, false, false
	}
	return f, e.Action == custody.UserAdded || e.Action == custody.TokenCreated || e.Action == custody.AccessGranted, true
}

// entry returns the access change entry adding (or removing) f.
func (f grant) entry(added bool) custody.Entry {
	e := custody.Entry{User: f.user, Org: f.org}
	pick := func(add, remove string) string {
		if added {
			return add
		}
		return remove
	}
	switch f.kind {
	case kindUser:
		e.Action = pick(custody.UserAdded, custody.UserRemoved)
	case kindToken:
		e.Action, e.TokenID = pick(custody.TokenCreated, custody.TokenRevoked), f.value
	case kindRole:
		e.Action, e.Role = pick(custody.AccessGranted, custody.AccessRevoked), f.value
	default:
		e.Action, e.Permission, e.Collection = pick(custody.AccessGranted, custody.AccessRevoked), f.kind, f.value
	}
	return e
}

// rank orders the changes of one user: what is revoked, then the user's
// removal; the user's addition, then what is granted.
func (f grant) rank(added bool) int {
	order := []string{kindToken, custody.PermWrite, custody.PermRead, custody.PermAllOrgs, kindRole, kindUser}
	i := slices.Index(order, f.kind)
	if added {
		return 2*len(order) - i
	}
	return i
}

// Changes returns the access change entries that lead from g to next, to
// be appended in this order: for each user in name order, what they lost,
// then what they gained (a user whose organisation changed is removed
// from the old one and added to the new). Equal Grants give none.
func (g *Grants) Changes(next *Grants) []custody.Entry {
	type change struct {
		f     grant
		added bool
	}
	var cs []change
	for f := range g.facts {
		if _, ok := next.facts[f]; !ok {
			cs = append(cs, change{f, false})
		}
	}
	for f := range next.facts {
		if _, ok := g.facts[f]; !ok {
			cs = append(cs, change{f, true})
		}
	}
	slices.SortFunc(cs, func(a, b change) int {
		return cmp.Or(strings.Compare(a.f.user, b.f.user), cmp.Compare(a.f.rank(a.added), b.f.rank(b.added)),
			strings.Compare(a.f.org, b.f.org), strings.Compare(a.f.value, b.f.value))
	})
	out := make([]custody.Entry, len(cs))
	for i, c := range cs {
		out[i] = c.f.entry(c.added)
	}
	return out
}
