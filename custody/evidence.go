package custody

import (
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/ctigate/ctigate/stix"
)

// EvidenceFormat names the evidence package format.
const EvidenceFormat = "ctigate-evidence/2"

// Evidence is the evidence package of one object: one JSON document that
// discloses the object's custody and nothing else.
//
// TreeHead is a checkpoint entry: a signed tree head over entries
// 1..signed_seq. Entries are the entries about the object (received,
// decisions, deleted, withdrawn) and the delivered entries of the pages
// that held one of its versions, each with its inclusion proof in that
// tree; no other entry appears, not even elided. Deliveries prove, for
// each such page, that the object's version was in it: the item (salt
// revealed) and its inclusion proof against the entry's items_root.
// Versions are the object versions the gateway still holds, with their
// original bytes when the package was made with content access.
type Evidence struct {
	Format     string          `json:"format"`
	ObjectID   string          `json:"object_id"`
	Created    string          `json:"created"`
	Versions   []Version       `json:"versions"`
	Policies   []Policy        `json:"policies,omitempty"`
	TreeHead   jsontext.Value  `json:"tree_head"`
	Entries    []ProvenEntry   `json:"entries"`
	Deliveries []DeliveryProof `json:"deliveries,omitempty"`
}

// ProvenEntry is a ledger entry (its JSON text, as an export line holds
// it) and its inclusion proof in the tree TreeHead signs.
type ProvenEntry struct {
	Entry jsontext.Value `json:"entry"`
	Proof []string       `json:"proof"`
}

// DeliveryProof proves that the delivered entry Seq's page held Item at
// Position (0-based, page order). A page that held several versions of
// the object has a proof for each.
type DeliveryProof struct {
	Seq      uint64   `json:"seq"`
	Position int64    `json:"position"`
	Item     Item     `json:"item"`
	Proof    []string `json:"proof"`
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

// MaxEvidenceEntries bounds the entries of one package the verifier
// reads.
const MaxEvidenceEntries = 1 << 20

// EvidenceReport summarises a verified evidence package.
type EvidenceReport struct {
	TreeSize   uint64   // the size of the signed tree
	Key        string   // the public key that signed it, base64
	Entries    int      // entries proven in the tree
	Deliveries int      // pages proven to have held the object
	Versions   int      // versions whose bytes were re-hashed
	Actions    []string // actions of the entries, in order
}

// VerifyEvidence checks an evidence package read from r: the tree head's
// hash and signature (by a pinned key when opts.Keys is set), each entry's
// hash and inclusion proof, that each entry is about the object or is a
// delivery proven to have held it, each delivery's item proof against its
// entry's items_root (and that the item is a version the package's
// received, published or redacted entries record for that collection),
// and each version's original bytes against its recorded hash.
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
	if len(ev.Entries) > MaxEvidenceEntries || len(ev.Deliveries) > MaxEvidenceEntries {
		return rep, errors.New("too many entries")
	}
	// The tree head.
	th, err := checkEntryHash(ev.TreeHead)
	if err != nil {
		return rep, fmt.Errorf("tree head: %v", err)
	}
	if th.Action != Checkpoint {
		return rep, fmt.Errorf("tree head is a %q entry, not a checkpoint", th.Action)
	}
	if err := checkSignature(th, opts.Keys); err != nil {
		return rep, fmt.Errorf("tree head: %v", err)
	}
	root, err := ParseRoot(th.Root)
	if err != nil {
		return rep, fmt.Errorf("tree head: %v", err)
	}
	rep.TreeSize, rep.Key = th.SignedSeq, th.PublicKey

	entries := map[uint64]*Entry{}
	delivered := map[uint64]bool{} // delivered entries a proof uses
	for _, d := range ev.Deliveries {
		delivered[d.Seq] = true
	}
	stored := map[string]bool{}        // collection, version, sha256 of what the entries record as stored
	storedVersion := map[string]bool{} // collection, version of the same
	var last uint64
	for i, pe := range ev.Entries {
		e, err := checkEntryHash(pe.Entry)
		if err != nil {
			var seq uint64
			if e != nil {
				seq = e.Seq
			}
			return rep, &Error{Line: i + 1, Seq: seq, Reason: err.Error()}
		}
		fail := func(format string, a ...any) error {
			return &Error{Line: i + 1, Seq: e.Seq, Reason: fmt.Sprintf(format, a...)}
		}
		if e.Seq <= last {
			return rep, fail("entries must be in ascending seq order, once each")
		}
		last = e.Seq
		if e.Seq == 0 || e.Seq > th.SignedSeq {
			return rep, fail("seq %d is outside the signed tree (size %d)", e.Seq, th.SignedSeq)
		}
		switch {
		case e.ObjectID == ev.ObjectID:
		case e.Action == Delivered && delivered[e.Seq]:
		default:
			return rep, fail("a %s entry that is not about %s: a package holds no other object's entries", e.Action, ev.ObjectID)
		}
		proof, err := DecodeProof(pe.Proof)
		if err != nil {
			return rep, fail("%v", err)
		}
		leaf, err := LeafHash(e.Hash)
		if err != nil {
			return rep, fail("%v", err)
		}
		if err := tlog.CheckRecord(proof, int64(th.SignedSeq), root, int64(e.Seq-1), leaf); err != nil {
			return rep, fail("its inclusion proof does not lead to the signed root: the entry is not the one the ledger holds")
		}
		entries[e.Seq] = e
		rep.Actions = append(rep.Actions, e.Action)
		switch e.Action {
		case Received:
			stored[e.Collection+" "+e.ObjectVersion+" "+e.SHA256] = true
			storedVersion[e.Collection+" "+e.ObjectVersion] = true
		case Published, Redacted:
			stored[e.Collection+" "+e.ObjectVersion+" "+e.PublishedSHA256] = true
			storedVersion[e.Collection+" "+e.ObjectVersion] = true
		}
	}
	rep.Entries = len(ev.Entries)
	type at struct {
		seq uint64
		pos int64
	}
	seen := map[at]bool{}
	proven := map[uint64]bool{}
	for i, d := range ev.Deliveries {
		fail := func(format string, a ...any) error {
			return fmt.Errorf("delivery %d (entry %d): %s", i+1, d.Seq, fmt.Sprintf(format, a...))
		}
		e := entries[d.Seq]
		if e == nil || e.Action != Delivered {
			return rep, fail("no delivered entry %d in the package", d.Seq)
		}
		if seen[at{d.Seq, d.Position}] {
			return rep, fail("position %d proven twice", d.Position)
		}
		seen[at{d.Seq, d.Position}] = true
		proven[d.Seq] = true
		if d.Item.ID != ev.ObjectID {
			return rep, fail("the item is %q, not %s", d.Item.ID, ev.ObjectID)
		}
		if d.Position < 0 || d.Position >= int64(e.Count) {
			return rep, fail("position %d outside the page of %d", d.Position, e.Count)
		}
		itemsRoot, err := ParseRoot(e.ItemsRoot)
		if err != nil {
			return rep, fail("items_root: %v", err)
		}
		leaf, err := d.Item.Leaf()
		if err != nil {
			return rep, fail("%v", err)
		}
		proof, err := DecodeProof(d.Proof)
		if err != nil {
			return rep, fail("%v", err)
		}
		if err := tlog.CheckRecord(proof, int64(e.Count), itemsRoot, d.Position, leaf); err != nil {
			return rep, fail("the page did not hold version %s (sha256 %s) at position %d: its proof does not lead to the page's items_root", d.Item.Version, d.Item.SHA256, d.Position)
		}
		if d.Item.SHA256 == "" {
			// A manifest page (metadata only) commits to no hash.
			if !storedVersion[e.Collection+" "+d.Item.Version] {
				return rep, fail("version %s of collection %s is recorded by no received, published or redacted entry of the package", d.Item.Version, e.Collection)
			}
		} else if !stored[e.Collection+" "+d.Item.Version+" "+d.Item.SHA256] {
			return rep, fail("version %s (sha256 %s) of collection %s is recorded by no received, published or redacted entry of the package", d.Item.Version, d.Item.SHA256, e.Collection)
		}
	}
	for seq := range delivered {
		if !proven[seq] {
			return rep, fmt.Errorf("delivered entry %d has no proof", seq)
		}
	}
	rep.Deliveries = len(ev.Deliveries)
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
		if !stored[ver.Collection+" "+ver.Version+" "+ver.SHA256] {
			return rep, fmt.Errorf("version %d (%s, sha256 %s): no received, published or redacted entry records it", i, ver.Version, ver.SHA256)
		}
	}
	if !slices.ContainsFunc(rep.Actions, func(a string) bool { return a != Delivered }) {
		return rep, fmt.Errorf("no entry is about %s", ev.ObjectID)
	}
	return rep, nil
}

// checkEntryHash decodes an entry and checks that its hash is that of
// its content.
func checkEntryHash(raw jsontext.Value) (*Entry, error) {
	var e Entry
	if err := json.Unmarshal(raw, &e); err != nil {
		return nil, fmt.Errorf("not a ledger entry: %v", err)
	}
	var m map[string]jsontext.Value
	if err := json.Unmarshal(raw, &m); err != nil {
		return &e, fmt.Errorf("not a JSON object: %v", err)
	}
	if _, ok := m["elided"]; ok {
		return &e, errors.New("an elided entry has no place in an evidence package")
	}
	if err := checkContentHash(m, e.Hash); err != nil {
		return &e, err
	}
	return &e, nil
}
