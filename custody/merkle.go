package custody

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-json-experiment/json"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/ctigate/ctigate/stix"
)

// # The Merkle tree of the ledger
//
// Besides the hash chain, the ledger is a Merkle tree as RFC 9162 (§2.1)
// defines it: leaf n (0-based) is entry seq n+1, and its leaf hash is
// SHA-256(0x00 || the 32 bytes of the entry's hash), interior nodes
// SHA-256(0x01 || left || right). A checkpoint signs the tree of entries
// 1..signed_seq (tree size signed_seq) through its root. An inclusion
// proof of an entry against a signed tree then shows that the entry is in
// the ledger, unaltered, without showing any other entry: that is how an
// evidence package shows one object's entries and nothing else. The
// package golang.org/x/mod/sumdb/tlog implements this tree (it is RFC
// 6962's, which RFC 9162 keeps); the gateway stores the hashes tlog
// names (tlog.StoredHashIndex), built behind the chain.
//
// # Deliveries
//
// A delivered entry does not copy its page: the page is a range of the
// collection's date_added order, which the store keeps immutable (every
// version that leaves a collection leaves a tombstone with its id,
// version, date_added and hash). The entry holds the range, the count and
// the Merkle root (same hashing) of the page's items in page order, each
// item's leaf input being the RFC 8785 form of
//
//	{"id":…,"salt":…,"sha256":…,"version":…}
//
// with sha256 the canonical hash of the bytes served and salt 16 bytes
// (base64) the gateway derives from a secret key of its own, the
// collection and the item's date_added (Salter): an item's leaf hash,
// which a proof about another item discloses, cannot be confirmed by
// guessing the item. An evidence package proves that a page held the object with the
// item (salt revealed) and its path to the entry's items_root.

// LeafHash returns the Merkle leaf hash of the entry whose hash (hex) is
// entryHash.
func LeafHash(entryHash string) (tlog.Hash, error) {
	var h [32]byte
	if len(entryHash) != 64 {
		return tlog.Hash{}, fmt.Errorf("entry hash %.70q is not a hex SHA-256", entryHash)
	}
	if _, err := hex.Decode(h[:], []byte(entryHash)); err != nil {
		return tlog.Hash{}, fmt.Errorf("entry hash %.70q is not a hex SHA-256", entryHash)
	}
	return tlog.RecordHash(h[:]), nil
}

// Compact is the compact range of a tree being appended to: the roots of
// its perfect subtrees, left to right. It gives the tree hash of every
// size it passes through with O(log n) memory (a verifier reading a whole
// export checks each checkpoint's root with it).
type Compact struct {
	size  uint64
	nodes []tlog.Hash
}

// Append adds the next leaf hash.
func (c *Compact) Append(leaf tlog.Hash) {
	h := leaf
	for s := c.size; s&1 == 1; s >>= 1 {
		h = tlog.NodeHash(c.nodes[len(c.nodes)-1], h)
		c.nodes = c.nodes[:len(c.nodes)-1]
	}
	c.nodes = append(c.nodes, h)
	c.size++
}

// clone returns a copy of c that appends apart from it.
func (c *Compact) clone() Compact {
	return Compact{size: c.size, nodes: slices.Clone(c.nodes)}
}

// Size is the number of leaves appended.
func (c *Compact) Size() uint64 { return c.size }

// Root is the tree hash of the leaves appended (RFC 9162 MTH; the hash of
// the empty string for none).
func (c *Compact) Root() tlog.Hash {
	if len(c.nodes) == 0 {
		return sha256.Sum256(nil)
	}
	r := c.nodes[len(c.nodes)-1]
	for i := len(c.nodes) - 2; i >= 0; i-- {
		r = tlog.NodeHash(c.nodes[i], r)
	}
	return r
}

// TreeRoot returns the tree hash of leaves.
func TreeRoot(leaves []tlog.Hash) tlog.Hash {
	var c Compact
	for _, l := range leaves {
		c.Append(l)
	}
	return c.Root()
}

// ProveLeaf returns the tree hash of leaves and the inclusion proof of
// leaf i (RFC 9162 §2.1.3.1, PATH), in one pass over the tree.
func ProveLeaf(leaves []tlog.Hash, i int) (tlog.Hash, []tlog.Hash) {
	if len(leaves) == 1 {
		return leaves[0], nil
	}
	k := 1
	for k*2 < len(leaves) {
		k *= 2
	}
	if i < k {
		l, p := ProveLeaf(leaves[:k], i)
		r := TreeRoot(leaves[k:])
		return tlog.NodeHash(l, r), append(p, r)
	}
	l := TreeRoot(leaves[:k])
	r, p := ProveLeaf(leaves[k:], i-k)
	return tlog.NodeHash(l, r), append(p, l)
}

// MemoryTree is a Merkle tree held in memory (a page's items), with the
// hashes tlog stores, to prove its leaves.
type MemoryTree struct {
	hashes []tlog.Hash
	size   int64
}

// NewMemoryTree builds the tree of leaves.
func NewMemoryTree(leaves []tlog.Hash) (*MemoryTree, error) {
	t := &MemoryTree{hashes: make([]tlog.Hash, 0, 2*len(leaves))}
	for _, l := range leaves {
		hs, err := tlog.StoredHashesForRecordHash(t.size, l, t)
		if err != nil {
			return nil, err
		}
		t.hashes = append(t.hashes, hs...)
		t.size++
	}
	return t, nil
}

// ReadHashes implements tlog.HashReader.
func (t *MemoryTree) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	for i, x := range indexes {
		if x < 0 || x >= int64(len(t.hashes)) {
			return nil, fmt.Errorf("tree hash %d not stored", x)
		}
		out[i] = t.hashes[x]
	}
	return out, nil
}

// Root returns the tree hash.
func (t *MemoryTree) Root() (tlog.Hash, error) { return tlog.TreeHash(t.size, t) }

// Prove returns the inclusion proof of leaf n.
func (t *MemoryTree) Prove(n int64) ([]string, error) {
	p, err := tlog.ProveRecord(t.size, n, t)
	if err != nil {
		return nil, err
	}
	return EncodeProof(p), nil
}

// EncodeProof and DecodeProof give a proof's JSON form: each hash
// base64 (standard encoding), leaf to root.
func EncodeProof(p []tlog.Hash) []string {
	out := make([]string, len(p))
	for i := range p {
		out[i] = base64.StdEncoding.EncodeToString(p[i][:])
	}
	return out
}

// DecodeProof decodes what EncodeProof wrote.
func DecodeProof(p []string) ([]tlog.Hash, error) {
	if len(p) > 64 {
		return nil, errors.New("proof longer than 64 hashes")
	}
	out := make([]tlog.Hash, len(p))
	for i, s := range p {
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil || len(b) != 32 {
			return nil, fmt.Errorf("proof hash %d is not a base64 SHA-256", i)
		}
		copy(out[i][:], b)
	}
	return out, nil
}

// HexRoot formats a tree hash as entries hold it (items_root, root).
func HexRoot(h tlog.Hash) string { return hex.EncodeToString(h[:]) }

// ParseRoot parses what HexRoot wrote.
func ParseRoot(s string) (tlog.Hash, error) {
	var h tlog.Hash
	if len(s) != 64 {
		return h, fmt.Errorf("%.70q is not a hex SHA-256", s)
	}
	if _, err := hex.Decode(h[:], []byte(s)); err != nil {
		return h, fmt.Errorf("%.70q is not a hex SHA-256", s)
	}
	return h, nil
}

// Item is one version in a delivered page, as its leaf commits to it.
type Item struct {
	ID      string `json:"id"`
	Salt    string `json:"salt"`
	SHA256  string `json:"sha256"`
	Version string `json:"version,omitempty"`
}

// Leaf returns the item's leaf hash: SHA-256(0x00 || RFC 8785 form).
func (it *Item) Leaf() (tlog.Hash, error) {
	if !plainASCII(it.ID) || !plainASCII(it.Salt) || !plainASCII(it.SHA256) || !plainASCII(it.Version) {
		j, err := json.Marshal(it)
		if err != nil {
			return tlog.Hash{}, err
		}
		c, err := stix.Canonical(j)
		if err != nil {
			return tlog.Hash{}, err
		}
		return tlog.RecordHash(c), nil
	}
	b := make([]byte, 0, 64+len(it.ID)+len(it.Salt)+len(it.SHA256)+len(it.Version))
	b = append(b, `{"id":"`...)
	b = append(b, it.ID...)
	b = append(b, `","salt":"`...)
	b = append(b, it.Salt...)
	b = append(b, `","sha256":"`...)
	b = append(b, it.SHA256...)
	if it.Version != "" {
		b = append(b, `","version":"`...)
		b = append(b, it.Version...)
	}
	b = append(b, `"}`...)
	return tlog.RecordHash(b), nil
}

// plainASCII reports whether s is printable ASCII needing no escape in
// JSON: what STIX ids, timestamps, hashes and base64 are, and what Leaf
// writes in canonical form directly.
func plainASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

// Salter derives the salts of items from a secret key.
type Salter struct {
	key [32]byte
	mu  sync.Mutex
	aes map[string]cipher.Block // by collection
}

// NewSalter returns a Salter for key (32 secret bytes the backend keeps).
func NewSalter(key [32]byte) *Salter { return &Salter{key: key, aes: map[string]cipher.Block{}} }

// block returns the AES-128 cipher of collection: its key is the first 16
// bytes of SHA-256(key || collection).
func (s *Salter) block(collection string) cipher.Block {
	s.mu.Lock()
	defer s.mu.Unlock()
	if b, ok := s.aes[collection]; ok {
		return b
	}
	h := sha256.New()
	h.Write(s.key[:])
	h.Write([]byte(collection))
	var sum [32]byte
	b, err := aes.NewCipher(h.Sum(sum[:0])[:16])
	if err != nil {
		panic(err) // a 16-byte key is always valid
	}
	if len(s.aes) > 1<<12 {
		clear(s.aes)
	}
	s.aes[collection] = b
	return b
}

// SaltBytes returns the salt of the version added to collection at
// dateAdded: AES-128 under the collection's key of date_added as
// big-endian Unix microseconds followed by 8 zero bytes (a pseudo-random
// function of the item's place, unknown without the key).
func (s *Salter) SaltBytes(collection string, dateAdded time.Time) [16]byte {
	var in, out [16]byte
	binary.BigEndian.PutUint64(in[:8], uint64(dateAdded.UnixMicro()))
	s.block(collection).Encrypt(out[:], in[:])
	return out
}

// Salt is SaltBytes in base64, as Item.Salt holds it.
func (s *Salter) Salt(collection string, dateAdded time.Time) string {
	b := s.SaltBytes(collection, dateAdded)
	return base64.StdEncoding.EncodeToString(b[:])
}

// PageLeaves computes the leaves of a page's items as Item.Leaf does,
// without building an Item for each (the read path records every page).
type PageLeaves struct {
	salter     *Salter
	collection string
	block      cipher.Block
	in, salt   [16]byte
	buf        []byte
}

// Page returns a PageLeaves for collection.
func (s *Salter) Page(collection string) *PageLeaves {
	return &PageLeaves{salter: s, collection: collection, block: s.block(collection), buf: make([]byte, 0, 256)}
}

// Leaf returns the leaf of the version (id, version) added at dateAdded,
// committing to sum unless sum is nil (a page that served no bytes).
func (p *PageLeaves) Leaf(id string, version, dateAdded time.Time, sum *[32]byte) (tlog.Hash, error) {
	binary.BigEndian.PutUint64(p.in[:8], uint64(dateAdded.UnixMicro()))
	p.block.Encrypt(p.salt[:], p.in[:])
	salt := p.salt
	if !plainASCII(id) {
		it := Item{ID: id, Version: FormatVersion(version), Salt: base64.StdEncoding.EncodeToString(salt[:])}
		if sum != nil {
			it.SHA256 = HexHash(*sum)
		}
		return it.Leaf()
	}
	b := append(p.buf[:0], 0x00)
	b = append(b, `{"id":"`...)
	b = append(b, id...)
	b = append(b, `","salt":"`...)
	b = base64.StdEncoding.AppendEncode(b, salt[:])
	b = append(b, `","sha256":"`...)
	if sum != nil && *sum != ([32]byte{}) {
		b = hex.AppendEncode(b, sum[:])
	}
	if !version.IsZero() {
		b = append(b, `","version":"`...)
		b = AppendVersion(b, version)
	}
	b = append(b, `"}`...)
	p.buf = b
	return sha256.Sum256(b), nil
}

// EncodeManifest encodes the date_added of a page's items, ascending, as
// the backend keeps it (not part of the ledger: the entry's items_root
// is what proves): the first as a uvarint of Unix microseconds, each next
// as the uvarint of its difference to the one before.
func EncodeManifest(das []time.Time) []byte {
	b := make([]byte, 0, 3*len(das)+8)
	var prev int64
	for i, d := range das {
		us := d.UnixMicro()
		if i == 0 {
			b = binary.AppendUvarint(b, uint64(us))
		} else {
			b = binary.AppendUvarint(b, uint64(us-prev))
		}
		prev = us
	}
	return b
}

// DecodeManifest decodes what EncodeManifest wrote.
func DecodeManifest(b []byte) ([]time.Time, error) {
	us, err := DecodeManifestMicros(b)
	if err != nil {
		return nil, err
	}
	out := make([]time.Time, len(us))
	for i, u := range us {
		out[i] = time.UnixMicro(u).UTC()
	}
	return out, nil
}

// DecodeManifestMicros is DecodeManifest giving Unix microseconds.
func DecodeManifestMicros(b []byte) ([]int64, error) {
	out := make([]int64, 0, len(b)/2)
	var prev int64
	for len(b) > 0 {
		v, n := binary.Uvarint(b)
		if n <= 0 {
			return nil, errors.New("malformed manifest")
		}
		b = b[n:]
		us := int64(v)
		if len(out) > 0 {
			if v == 0 || us < 0 || prev+us < prev {
				return nil, errors.New("malformed manifest: not ascending")
			}
			us = prev + us
		}
		out = append(out, us)
		prev = us
	}
	return out, nil
}

// FilterDigest returns the hex SHA-256 of a query's parameters, one
// "name=value" a line, in the order given: the filter member of a
// delivered entry (or its first 128 bits) says which query a page
// answered without naming what it asked for.
func FilterDigest(params []string) string {
	sum := sha256.Sum256([]byte(strings.Join(params, "\n")))
	return hex.EncodeToString(sum[:])
}
