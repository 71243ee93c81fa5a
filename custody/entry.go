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
// signed_hash name an earlier entry and whose root is the Merkle tree hash
// of entries 1..signed_seq (see "The Merkle tree of the ledger" in
// merkle.go), with an Ed25519 signature (base64, standard encoding) by
// public_key over the bytes of
//
//	"ctigate custody checkpoint v2\n" + decimal signed_seq + "\n" + signed_hash + "\n" + root
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

// Access changes: what a configuration put in force changed in who may do
// what, recorded with its config-loaded entry (just before it). User is
// the user concerned and Org their organisation; the configuration is the
// actor. They never hold a password, a token or a token's hash.
const (
	UserAdded     = "user-added"     // User (of Org) became known to the gateway
	UserRemoved   = "user-removed"   // User (of Org) is no longer known
	AccessGranted = "access-granted" // User gained Permission (on Collection) or Role
	AccessRevoked = "access-revoked" // User lost Permission (on Collection) or Role
	TokenCreated  = "token-created"  // a bearer token of User, named by TokenID, became valid
	TokenRevoked  = "token-revoked"  // the bearer token TokenID of User is no longer valid
)

// Permissions (Entry.Permission) of access-granted and access-revoked
// entries.
const (
	PermRead    = "read"              // reading Collection
	PermWrite   = "write"             // writing to Collection
	PermAllOrgs = "all-organisations" // reading every organisation's custody entries and decisions
)

// AccessChange reports whether action is one of the access changes.
func AccessChange(action string) bool {
	switch action {
	case UserAdded, UserRemoved, AccessGranted, AccessRevoked, TokenCreated, TokenRevoked:
		return true
	}
	return false
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

	// DateAdded is, for deleted and withdrawn entries, the removed
	// version's date_added in Collection (FormatTime).
	DateAdded string `json:"date_added,omitempty"`

	// Delivered: a page of Count versions of Collection, the first added
	// at FirstAdded and the last at LastAdded, read with the query whose
	// digest is Filter, under the access configuration View (the SHA-256
	// of the configuration file). ItemsRoot is the RFC 9162 Merkle tree
	// hash of the page's items in page order (see Deliveries). The page
	// itself is not copied: it is a range of the collection's immutable
	// date_added order.
	Count      int    `json:"count,omitzero"`
	FirstAdded string `json:"first_added,omitempty"`
	LastAdded  string `json:"last_added,omitempty"`
	Filter     string `json:"filter,omitempty"`
	View       string `json:"view,omitempty"`
	ItemsRoot  string `json:"items_root,omitempty"`

	// Access changes (see AccessChange): the permission or role granted
	// or revoked, and the identifier of the token created or revoked
	// (never the token or its hash). GrantsSHA256, on config-loaded
	// entries, is the digest of the whole access state the configuration
	// gives, which the access changes recorded since the ledger's start
	// add up to.
	Permission   string `json:"permission,omitempty"`
	Role         string `json:"role,omitempty"`
	TokenID      string `json:"token_id,omitempty"`
	GrantsSHA256 string `json:"grants_sha256,omitempty"`

	// RejectedItems is, for a rejected entry summarising several refused
	// objects of one envelope (Count of them), a bitmap of their indexes
	// in the envelope's "objects" array (bit i of byte i/8, least
	// significant first; base64, standard encoding); ItemsRoot is then the
	// Merkle tree hash of their RejectedLeaf in index order.
	RejectedItems string `json:"rejected_items,omitempty"`

	// Nonce is 16 random bytes (base64) the ledger adds to every entry
	// but checkpoints, so that an entry's hash, which proofs disclose,
	// cannot be confirmed by guessing the entry's content.
	Nonce string `json:"nonce,omitempty"`

	SignedSeq  uint64 `json:"signed_seq,omitzero"` // checkpoint: the entry signed
	SignedHash string `json:"signed_hash,omitempty"`
	Root       string `json:"root,omitempty"`       // checkpoint: Merkle tree hash (hex) of entries 1..signed_seq
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
	var b [24]byte
	return string(AppendVersion(b[:0], t))
}

// AppendVersion appends FormatVersion(t) to b.
func AppendVersion(b []byte, t time.Time) []byte {
	if t.IsZero() {
		return b
	}
	t = t.UTC()
	// The common case, millisecond precision, without time.Format (a
	// page's worth of versions is formatted per delivery).
	if y := t.Year(); y >= 0 && y <= 9999 && t.Nanosecond()%int(time.Millisecond) == 0 {
		mo, d := t.Month(), t.Day()
		h, mi, sec := t.Clock()
		ms := t.Nanosecond() / int(time.Millisecond)
		put := func(v, n int) {
			for j := n - 1; j >= 0; j-- {
				b = append(b, 0)
			}
			for j := len(b) - 1; j >= len(b)-n; j-- {
				b[j] = byte('0' + v%10)
				v /= 10
			}
		}
		put(y, 4)
		b = append(b, '-')
		put(int(mo), 2)
		b = append(b, '-')
		put(d, 2)
		b = append(b, 'T')
		put(h, 2)
		b = append(b, ':')
		put(mi, 2)
		b = append(b, ':')
		put(sec, 2)
		b = append(b, '.')
		put(ms, 3)
		return append(b, 'Z')
	}
	return append(b, stix.FormatTimestamp(t)...)
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
	case Rejected:
		if e.Count > 0 && (e.ItemsRoot == "" || e.RejectedItems == "") {
			return fmt.Errorf("rejected entry summarising %d objects without items_root or rejected_items", e.Count)
		}
	case ConfigLoaded:
	case Delivered:
		if e.Count <= 0 || e.ItemsRoot == "" || e.FirstAdded == "" || e.LastAdded == "" || e.Collection == "" {
			return fmt.Errorf("delivered entry without collection, count, items_root, first_added or last_added")
		}
	case Checkpoint:
		if e.SignedSeq == 0 || e.Signature == "" || e.PublicKey == "" || e.Root == "" {
			return fmt.Errorf("checkpoint without signed_seq, root, signature or public_key")
		}
	case UserAdded, UserRemoved:
		if e.User == "" || e.Org == "" {
			return fmt.Errorf("%s entry without user or org", e.Action)
		}
	case AccessGranted, AccessRevoked:
		if e.User == "" || e.Org == "" {
			return fmt.Errorf("%s entry without user or org", e.Action)
		}
		switch {
		case e.Role != "" && e.Permission == "" && e.Collection == "":
		case (e.Permission == PermRead || e.Permission == PermWrite) && e.Role == "" && e.Collection != "":
		case e.Permission == PermAllOrgs && e.Role == "" && e.Collection == "":
		default:
			return fmt.Errorf("%s entry needs a role, permission %s or %s with a collection, or permission %s", e.Action, PermRead, PermWrite, PermAllOrgs)
		}
	case TokenCreated, TokenRevoked:
		if e.User == "" || e.Org == "" || e.TokenID == "" {
			return fmt.Errorf("%s entry without user, org or token_id", e.Action)
		}
	default:
		return fmt.Errorf("unknown action %q", e.Action)
	}
	return nil
}

// Touches reports whether e is about the object id (its subject).
// Deliveries name no object: the pages holding a version are found by
// their ranges (see Deliveries).
func (e *Entry) Touches(id string) bool { return e.ObjectID == id }

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
