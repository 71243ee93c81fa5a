// Package access decides who may see and change what: which collections a
// user may read and write, and which custody entries and decisions an
// auditor or policy admin may read. Every edge of the gateway (TAXII,
// search, the audit and decision APIs, and whatever comes next) asks a
// Policy; none decides for itself.
//
// The rules, which rest on one invariant that config.Validate enforces
// (a collection with writers holds the objects of one organisation only):
//
//   - A collection is read whole by the users its readers name: by user
//     name, "org:ORG" or "role:ROLE@ORG" of their organisation.
//   - A grant to every holder of a role ("role:ROLE") or to everyone ("*")
//     reaches a collection only when every object it can hold is the
//     reader's own organisation's (config.ContentOrganisations). So the
//     analyst role never opens another organisation's submissions, or
//     what a route published from them to someone else.
//   - Writing needs a matching writer; deleting needs reading and writing.
//     Since a collection with writers holds one organisation's objects,
//     receipts, deletes and reads of it never involve another one's.
//   - Custody entries and decisions are read by an organisation's auditors
//     and policy admins when they are about what the organisation
//     submitted, what it did, or what a route published to a collection
//     it may read; never a withholding of another organisation's object.
//     Principals in custody.all_organisations read them all.
//   - Changes in access the ledger records (users added and removed,
//     permissions and roles granted and revoked, tokens created and
//     revoked) are read by the auditors of the user's organisation and,
//     for a permission on a collection, of the organisations that read
//     the collection; custody.all_organisations read them all.
package access

import (
	"slices"

	"github.com/ctigate/ctigate/auth"
	"github.com/ctigate/ctigate/config"
	"github.com/ctigate/ctigate/custody"
)

// Policy answers access questions for one configuration. It is immutable
// and safe for concurrent use.
type Policy struct {
	colls     map[string]*collection
	users     map[string]string // user name -> organisation
	allOrgs   []string          // principals reading every organisation's custody records
	protected map[string]bool   // collections of routes that protect their sources
}

type collection struct {
	readers, writers []string
	owners           []string // organisations whose objects it can hold
}

// New returns the Policy of a validated configuration.
func New(cfg *config.Config) *Policy {
	p := &Policy{colls: map[string]*collection{}, users: map[string]string{}, allOrgs: cfg.Custody.AllOrganisations, protected: map[string]bool{}}
	for _, r := range cfg.Routes {
		if r.ProtectSource {
			p.protected[r.ID] = true
		}
	}
	owners := cfg.ContentOrganisations()
	for _, r := range cfg.APIRoots {
		for _, c := range r.Collections {
			p.colls[c.ID] = &collection{readers: c.Readers, writers: c.Writers, owners: owners[c.ID]}
		}
	}
	for _, u := range cfg.Users {
		p.users[u.Name] = u.Organisation
	}
	return p
}

// HidesProducer reports whether collection id is a route's that protects
// its sources: its readers must not learn which organisation produced
// what it holds (search hits name no producer, and cannot be filtered by
// one).
func (p *Policy) HidesProducer(id string) bool { return p.protected[id] }

// CanRead reports whether u may read collection id (see the package
// comment). Unknown collections are readable by no one.
func (p *Policy) CanRead(u *auth.User, id string) bool {
	c := p.colls[id]
	if c == nil || u == nil {
		return false
	}
	for _, pr := range auth.Matching(u, c.readers) {
		if pr.Named() || c.ownedBy(u.Organisation) {
			return true
		}
	}
	return false
}

// CanWrite reports whether u may write to collection id.
func (p *Policy) CanWrite(u *auth.User, id string) bool {
	c := p.colls[id]
	return c != nil && len(auth.Matching(u, c.writers)) > 0
}

// CanDelete reports whether u may delete from collection id: read and
// write (TAXII 2.1 §5.7).
func (p *Policy) CanDelete(u *auth.User, id string) bool {
	return p.CanRead(u, id) && p.CanWrite(u, id)
}

// ownedBy reports whether every object c can hold is org's.
func (c *collection) ownedBy(org string) bool {
	return len(c.owners) == 1 && c.owners[0] == org
}

// orgReads reports whether the users of org read collection id whole:
// its readers name org, or it holds only org's objects.
func (p *Policy) orgReads(id, org string) bool {
	c := p.colls[id]
	if c == nil || org == "" {
		return false
	}
	if c.ownedBy(org) {
		return true
	}
	for _, s := range c.readers {
		pr, err := auth.ParsePrincipal(s)
		switch {
		case err != nil || !pr.Named():
		case pr.User != "" && p.users[pr.User] == org:
			return true
		case pr.User == "" && pr.Org == org:
			return true
		}
	}
	return false
}

// AllOrganisations reports whether u reads every organisation's custody
// entries and decisions (custody.all_organisations).
func (p *Policy) AllOrganisations(u *auth.User) bool {
	return len(auth.Matching(u, p.allOrgs)) > 0
}

// AuditsCollection reports whether u, as an auditor, may list the stored
// versions of collection id (hashes and metadata): their organisation
// reads it whole, or u reads every organisation's records.
func (p *Policy) AuditsCollection(u *auth.User, id string) bool {
	return u != nil && (p.AllOrganisations(u) || p.orgReads(id, u.Organisation))
}

// Record is what SeesRecord needs of a custody entry or decision.
type Record struct {
	Action     string // a custody action
	Org        string // the acting organisation ("" for the gateway itself); for access changes, the user's
	Collection string // where it happened (for decisions: the route's collection)
	Source     string // for decisions: the collection the object was read from
}

// EntryRecord describes a custody entry.
func EntryRecord(e *custody.Entry) Record {
	return Record{Action: e.Action, Org: e.Org, Collection: e.Collection, Source: e.Source}
}

// SeesRecord reports whether u may read a custody entry or decision r.
func (p *Policy) SeesRecord(u *auth.User, r Record) bool {
	if u == nil {
		return false
	}
	if p.AllOrganisations(u) {
		return true
	}
	org := u.Organisation
	switch r.Action {
	case custody.Checkpoint, custody.ConfigLoaded:
		return true // no object in them; they anchor the chain
	case custody.Published, custody.Redacted, custody.Withdrawn:
		// A route that protects its sources does not tell its readers
		// where its objects came from: its records are the producers'.
		return p.ownsSource(r.Source, org) || !p.protected[r.Collection] && p.orgReads(r.Collection, org)
	case custody.Withheld:
		// The reader of the route's collection never received it: only
		// the submitting organisation learns of it.
		return p.ownsSource(r.Source, org)
	case custody.Received, custody.Rejected, custody.Delivered, custody.Deleted:
		if r.Org != "" && r.Org != custody.GatewayOrg {
			return r.Org == org
		}
		return p.orgReads(r.Collection, org) // retention: whoever reads the collection
	case custody.UserAdded, custody.UserRemoved, custody.AccessGranted, custody.AccessRevoked,
		custody.TokenCreated, custody.TokenRevoked:
		// Org is the organisation of the user concerned.
		return org != "" && r.Org == org || r.Collection != "" && p.orgReads(r.Collection, org)
	}
	return false // an action this build does not know: fail closed
}

func (p *Policy) ownsSource(id, org string) bool {
	c := p.colls[id]
	return c != nil && c.ownedBy(org)
}

// SeesEntry reports whether u may read custody entry e.
func (p *Policy) SeesEntry(u *auth.User, e *custody.Entry) bool {
	return p.SeesRecord(u, EntryRecord(e))
}

// Readable returns the ids of the collections u may read, in ids' order.
func (p *Policy) Readable(u *auth.User, ids []string) []string {
	return slices.DeleteFunc(slices.Clone(ids), func(id string) bool { return !p.CanRead(u, id) })
}
