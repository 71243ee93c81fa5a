// Package custody defines the custody ledger: append-only, hash-chained
// entries recording what the gateway received, decided, delivered and
// deleted, signed checkpoints over the chain head, and the export and
// evidence formats that `ctigate audit verify` checks offline.
//
// # Entry hashing
//
// An entry is a JSON object (see Entry for its members). Its hash is the
// lower-case hex SHA-256 of the RFC 8785 (JCS) canonical form of the entry
// with its "hash" member removed; "prev" holds the previous entry's hash
// (64 zeros for the first entry, seq 1). Every other member, including
// members this code does not know, is covered. So an export can be
// verified by anyone with a JCS implementation: for each line, drop
// "hash", canonicalise, SHA-256, compare with "hash" and with the next
// line's "prev", and check that seq increases by one.
//
// # Checkpoints
//
// A checkpoint is an entry with action "checkpoint" whose signed_seq and
// signed_hash name an earlier entry, with an Ed25519 signature (base64,
// standard encoding) by public_key over the bytes of
//
//	"ctigate custody checkpoint v1\n" + decimal signed_seq + "\n" + signed_hash
//
// The checkpoint is itself chained like any entry.
package custody

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/go-json-experiment/json"

	"github.com/ctigate/ctigate/stix"
)

// GatewayOrg is the organisation recorded for what the gateway does on its
// own (retention, checkpoints); no user may belong to it.
const GatewayOrg = "ctigate"

// Actions (Entry.Action).
const (
	Received     = "received"      // a new object version was stored in a collection by Actor
	Rejected     = "rejected"      // an object of an envelope was refused (Reason)
	Published    = "published"     // a route published a version as received
	Redacted     = "redacted"      // a route published a version with properties removed
	Withheld     = "withheld"      // a route did not publish a version (Reason)
	Delivered    = "delivered"     // a page of objects was returned to a consumer (Items)
	Deleted      = "deleted"       // a stored version was removed (Reason "expired" when retention removed it)
	Withdrawn    = "withdrawn"     // a route removed its copy of a version from its collection (Route, Source, Reason)
	ConfigLoaded = "config-loaded" // the gateway started with a configuration (SHA256 of the file)
	Checkpoint   = "checkpoint"    // a signature over the chain head
)

// Item is one object version in a delivered page.
type Item struct {
	ID      string `json:"id"`
	Version string `json:"version,omitempty"`
	SHA256  string `json:"sha256,omitempty"`
}

// Entry is one ledger entry. Empty members are omitted from its JSON form.
type Entry struct {
	Seq    uint64 `json:"seq"`    // 1, 2, 3, … gap-free
	Time   string `json:"time"`   // when recorded: RFC 3339, UTC, microseconds (FormatTime)
	Action string `json:"action"` // one of the actions above
	User   string `json:"user,omitempty"`
	Org    string `json:"org,omitempty"`

	ObjectID      string `json:"object_id,omitempty"`
	ObjectVersion string `json:"object_version,omitempty"` // STIX timestamp of the version (modified, else created)
	SHA256        string `json:"sha256,omitempty"`         // hex SHA-256 of the RFC 8785 canonical form of the object as received
	Collection    string `json:"collection,omitempty"`     // where it was stored, published, delivered from or deleted
	Source        string `json:"source,omitempty"`         // for decisions: the collection the object was read from

	Route           string   `json:"route,omitempty"`
	PolicyVersion   string   `json:"policy_version,omitempty"`
	Reason          string   `json:"reason,omitempty"`
	Detail          string   `json:"detail,omitempty"`
	Removed         []string `json:"removed,omitempty"`          // redacted: selectors of what was removed
	PublishedSHA256 string   `json:"published_sha256,omitempty"` // published/redacted: hash of what was published

	Items []Item `json:"items,omitempty"` // delivered: the versions in the page

	SignedSeq  uint64 `json:"signed_seq,omitzero"` // checkpoint: the entry signed
	SignedHash string `json:"signed_hash,omitempty"`
	PublicKey  string `json:"public_key,omitempty"` // checkpoint: Ed25519 public key, base64
	Signature  string `json:"signature,omitempty"`  // checkpoint: base64

	Prev string `json:"prev"`           // hash of the previous entry
	Hash string `json:"hash,omitempty"` // this entry's hash
}

// Elided is what a reader scoped to one organisation is shown of an entry
// about another one (an export or evidence segment): its place in the
// chain, nothing of its content. As JSON it is exactly
//
//	{"seq":N,"prev":"…","hash":"…","elided":true}
//
// and a verifier checks its links (seq, prev, and the next entry's prev)
// but cannot recompute its hash: the visible entries are proven to be in
// the chain, in order, with nothing of them altered, and the elided ones
// disclose only that they exist.
type Elided struct {
	Seq    uint64 `json:"seq"`
	Prev   string `json:"prev"`
	Hash   string `json:"hash"`
	Elided bool   `json:"elided"`
}

// Elide returns the elided form of e.
func Elide(e *Entry) Elided { return Elided{Seq: e.Seq, Prev: e.Prev, Hash: e.Hash, Elided: true} }

// ZeroHash is the prev of the first entry.
var ZeroHash = strings.Repeat("0", 64)

// FormatTime formats an entry time: RFC 3339 in UTC with microseconds.
func FormatTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000000Z") }

// ParseTime parses what FormatTime wrote.
func ParseTime(s string) (time.Time, error) {
	return time.Parse("2006-01-02T15:04:05.000000Z", s)
}

// FormatVersion formats an object version as a STIX timestamp; "" for the
// zero time (unversioned objects).
func FormatVersion(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	t = t.UTC()
	// The common case, millisecond precision, without time.Format (a
	// delivered entry formats a page's worth of versions).
	if y := t.Year(); y >= 0 && y <= 9999 && t.Nanosecond()%int(time.Millisecond) == 0 {
		var b [24]byte
		mo, d := t.Month(), t.Day()
		h, mi, sec := t.Clock()
		ms := t.Nanosecond() / int(time.Millisecond)
		put := func(i, v, n int) {
			for j := i + n - 1; j >= i; j-- {
				b[j] = byte('0' + v%10)
				v /= 10
			}
		}
		put(0, y, 4)
		b[4] = '-'
		put(5, int(mo), 2)
		b[7] = '-'
		put(8, d, 2)
		b[10] = 'T'
		put(11, h, 2)
		b[13] = ':'
		put(14, mi, 2)
		b[16] = ':'
		put(17, sec, 2)
		b[19] = '.'
		put(20, ms, 3)
		b[23] = 'Z'
		return string(b[:])
	}
	return stix.FormatTimestamp(t)
}

// HexHash formats a SHA-256; "" for the zero hash (unknown).
func HexHash(h [32]byte) string {
	if h == ([32]byte{}) {
		return ""
	}
	return hex.EncodeToString(h[:])
}

// ComputeHash returns the hash of e as the package documentation defines
// it; e.Hash is ignored.
func ComputeHash(e *Entry) (string, error) {
	c := *e
	c.Hash = ""
	b, err := json.Marshal(&c)
	if err != nil {
		return "", fmt.Errorf("encoding entry %d: %w", e.Seq, err)
	}
	return hashJSON(b)
}

func hashJSON(b []byte) (string, error) {
	canon, err := stix.Canonical(b)
	if err != nil {
		return "", err
	}
	h := sha256.Sum256(canon)
	return hex.EncodeToString(h[:]), nil
}

// Seal sets e's Seq, Prev and Hash to follow the entry (seq, hash) prev.
func Seal(e *Entry, prev Head) error {
	e.Seq = prev.Seq + 1
	e.Prev = prev.Hash
	if e.Prev == "" {
		e.Prev = ZeroHash
	}
	h, err := ComputeHash(e)
	if err != nil {
		return err
	}
	e.Hash = h
	return nil
}

// Head is the newest entry of a chain: its seq, hash and time. The zero
// Head is the empty chain.
type Head struct {
	Seq  uint64
	Hash string
	Time string
}

// Valid reports whether e has what its action requires; the ledger
// refuses entries that do not.
func (e *Entry) Valid() error {
	switch e.Action {
	case Received, Deleted, Published, Redacted, Withheld, Withdrawn:
		if e.ObjectID == "" {
			return fmt.Errorf("%s entry without object_id", e.Action)
		}
	case Rejected, ConfigLoaded:
	case Delivered:
		if len(e.Items) == 0 {
			return fmt.Errorf("delivered entry without items")
		}
	case Checkpoint:
		if e.SignedSeq == 0 || e.Signature == "" || e.PublicKey == "" {
			return fmt.Errorf("checkpoint without signed_seq, signature or public_key")
		}
	default:
		return fmt.Errorf("unknown action %q", e.Action)
	}
	return nil
}

// Touches reports whether e concerns the object id: as its subject or as
// an item of a delivered page.
func (e *Entry) Touches(id string) bool {
	if e.ObjectID == id {
		return true
	}
	for _, it := range e.Items {
		if it.ID == id {
			return true
		}
	}
	return false
}

// SealJSON is Seal that also returns the JSON text of the sealed entry,
// as an export line holds it (without the newline).
func SealJSON(e *Entry, prev Head) ([]byte, error) {
	e.Seq = prev.Seq + 1
	e.Prev = prev.Hash
	if e.Prev == "" {
		e.Prev = ZeroHash
	}
	e.Hash = ""
	b, err := json.Marshal(e)
	if err != nil {
		return nil, fmt.Errorf("encoding entry %d: %w", e.Seq, err)
	}
	h, err := hashJSON(b)
	if err != nil {
		return nil, err
	}
	e.Hash = h
	// Hash is the last member: insert it before the closing brace.
	out := make([]byte, 0, len(b)+len(`,"hash":""`)+len(h))
	out = append(out, b[:len(b)-1]...)
	out = append(out, `,"hash":"`...)
	out = append(out, h...)
	out = append(out, `"}`...)
	return out, nil
}
