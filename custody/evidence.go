package custody

import (
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/ctigate/ctigate/stix"
)

// EvidenceFormat names the evidence package format.
const EvidenceFormat = "ctigate-evidence/1"

// Evidence is the evidence package of one object: one JSON document.
//
// Entries is the contiguous ledger segment from the first entry touching
// the object to the first checkpoint signing the last one (or the head),
// so that the chain between them, and the signature, can be checked;
// Relevant lists the seqs of the entries touching the object. Versions are
// the object versions the gateway still holds, with their original bytes
// when the package was made with content access; deleted versions are
// known by their received and deleted entries alone.
type Evidence struct {
	Format   string           `json:"format"`
	ObjectID string           `json:"object_id"`
	Created  string           `json:"created"`
	Versions []Version        `json:"versions"`
	Policies []Policy         `json:"policies,omitempty"`
	Relevant []uint64         `json:"relevant"`
	Entries  []jsontext.Value `json:"entries"`
}

// Version is one stored version of the object.
type Version struct {
	Collection string `json:"collection"`
	Version    string `json:"version,omitempty"`
	DateAdded  string `json:"date_added"`
	SHA256     string `json:"sha256"`
	Producer   string `json:"producer,omitempty"`
	Raw        []byte `json:"raw,omitempty"` // original bytes, base64
}

// Policy is a route and policy version that decided about the object, with
// the route's configuration as the gateway loaded it (when known).
type Policy struct {
	Route         string         `json:"route"`
	PolicyVersion string         `json:"policy_version"`
	Config        jsontext.Value `json:"config,omitempty"`
}

// BuildEvidence assembles the package of id from the ledger segment
// entries (consecutive, in order) and the stored versions.
// Entries elide says are in their Elided form (elide may be nil).
func BuildEvidence(id, created string, entries []Entry, versions []Version, policies []Policy, elide func(*Entry) bool) (*Evidence, error) {
	ev := &Evidence{Format: EvidenceFormat, ObjectID: id, Created: created, Versions: versions, Policies: policies}
	for i := range entries {
		if elide != nil && elide(&entries[i]) {
			b, err := json.Marshal(Elide(&entries[i]))
			if err != nil {
				return nil, err
			}
			ev.Entries = append(ev.Entries, b)
			continue
		}
		b, err := json.Marshal(&entries[i])
		if err != nil {
			return nil, err
		}
		ev.Entries = append(ev.Entries, b)
		if entries[i].Touches(id) {
			ev.Relevant = append(ev.Relevant, entries[i].Seq)
		}
	}
	if ev.Versions == nil {
		ev.Versions = []Version{}
	}
	return ev, nil
}

// EvidenceReport summarises a verified evidence package.
type EvidenceReport struct {
	Chain    Report
	Relevant int      // entries touching the object
	Versions int      // versions whose bytes were re-hashed
	Actions  []string // actions of the relevant entries, in order
}

// VerifyEvidence checks an evidence package read from r: the chain of its
// ledger segment and its checkpoint signatures (the last relevant entry
// must be covered by a verified checkpoint), that Relevant names exactly
// the entries touching the object, and that each version's original bytes
// hash to its recorded SHA-256 and match a received entry.
func VerifyEvidence(r io.Reader, opts VerifyOptions) (EvidenceReport, error) {
	var rep EvidenceReport
	var ev Evidence
	if err := json.UnmarshalRead(r, &ev); err != nil {
		return rep, fmt.Errorf("not an evidence package: %v", err)
	}
	if ev.Format != EvidenceFormat {
		return rep, fmt.Errorf("format %q, want %q", ev.Format, EvidenceFormat)
	}
	if len(ev.Entries) == 0 {
		return rep, errors.New("no ledger entries")
	}
	opts.Anchored = true
	v := NewVerifier(opts)
	var relevant []uint64
	received := map[string]bool{} // version + " " + sha256 stored (received) or published
	for _, raw := range ev.Entries {
		e, err := v.Add(raw)
		if err != nil {
			return rep, err
		}
		if e.Touches(ev.ObjectID) {
			relevant = append(relevant, e.Seq)
			rep.Actions = append(rep.Actions, e.Action)
			if e.ObjectID == ev.ObjectID {
				switch e.Action {
				case Received:
					received[e.ObjectVersion+" "+e.SHA256] = true
				case Published, Redacted:
					received[e.ObjectVersion+" "+e.PublishedSHA256] = true
				}
			}
		}
	}
	rep.Chain = v.Report()
	rep.Relevant = len(relevant)
	if !slices.Equal(relevant, ev.Relevant) {
		return rep, fmt.Errorf("relevant lists seqs %v, but the entries touching %s are %v", ev.Relevant, ev.ObjectID, relevant)
	}
	if len(relevant) == 0 {
		return rep, fmt.Errorf("no entry touches %s", ev.ObjectID)
	}
	if last := relevant[len(relevant)-1]; rep.Chain.SignedThrough < last {
		return rep, fmt.Errorf("entry %d is not covered by a signed checkpoint (signed through %d)", last, rep.Chain.SignedThrough)
	}
	for i, ver := range ev.Versions {
		if len(ver.Raw) > 0 {
			h, err := stix.Hash(ver.Raw)
			if err != nil {
				return rep, fmt.Errorf("version %d (%s): original bytes have no canonical form: %v", i, ver.Version, err)
			}
			if got := hex.EncodeToString(h[:]); got != ver.SHA256 {
				return rep, fmt.Errorf("version %d (%s): original bytes hash to %s, recorded %s: the stored object was altered", i, ver.Version, got, ver.SHA256)
			}
			rep.Versions++
		}
		if !received[ver.Version+" "+ver.SHA256] {
			return rep, fmt.Errorf("version %d (%s, sha256 %s): no received, published or redacted entry records it", i, ver.Version, ver.SHA256)
		}
	}
	return rep, nil
}
