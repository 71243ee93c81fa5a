package custody

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"

	"github.com/ctigate/ctigate/stix"
)

// Scan calls fn for every object version a collection holds, in any
// order.
type Scan func(collection string, fn func(id, version string, raw []byte) error) error

// objectKey names one version in one collection by a digest of
// (collection, id, version): a checker of a ledger of millions of stored
// versions holds 32 bytes of key and 48 of record for each, not their
// strings.
type objectKey [sha256.Size]byte

func keyOf(collection, id, version string) objectKey {
	h := sha256.New()
	h.Write([]byte(collection))
	h.Write([]byte{0})
	h.Write([]byte(id))
	h.Write([]byte{0})
	h.Write([]byte(version))
	var k objectKey
	h.Sum(k[:0])
	return k
}

type objectRecord struct {
	seq  uint64
	coll uint32 // index in ObjectChecker.colls
	hash [sha256.Size]byte
}

// ObjectChecker checks stored objects against the ledger: fed a verified
// chain in order, it knows which versions each collection should hold and
// their hashes (received: sha256; published or redacted: published_sha256;
// deleted or withdrawn: none), and Check re-hashes what the store holds.
type ObjectChecker struct {
	want  map[objectKey]objectRecord
	colls []string
	index map[string]uint32
}

// NewObjectChecker returns an empty ObjectChecker.
func NewObjectChecker() *ObjectChecker {
	return &ObjectChecker{want: map[objectKey]objectRecord{}, index: map[string]uint32{}}
}

// Add takes the next entry of the chain.
func (c *ObjectChecker) Add(e *Entry) {
	var sum string
	switch e.Action {
	case Received:
		sum = e.SHA256
	case Published, Redacted:
		sum = e.PublishedSHA256
	case Deleted, Withdrawn:
		delete(c.want, keyOf(e.Collection, e.ObjectID, e.ObjectVersion))
		return
	default:
		return
	}
	if sum == "" {
		return
	}
	r := objectRecord{seq: e.Seq}
	if n, err := hex.Decode(r.hash[:], []byte(sum)); err != nil || n != sha256.Size {
		// A verified entry's digests are hex SHA-256; anything else can
		// match no stored bytes, which Check reports.
		r.hash = [sha256.Size]byte{}
	}
	i, ok := c.index[e.Collection]
	if !ok {
		i = uint32(len(c.colls))
		c.colls = append(c.colls, e.Collection)
		c.index[e.Collection] = i
	}
	r.coll = i
	c.want[keyOf(e.Collection, e.ObjectID, e.ObjectVersion)] = r
}

// Check reads every collection the ledger names once, re-hashes each
// stored version the ledger says is there, and names the entry (the
// earliest in ledger order) of a version whose bytes differ or that is
// missing. It returns how many versions it checked; a checker checks once.
func (c *ObjectChecker) Check(scan Scan) (int, error) {
	var (
		first   *Error
		checked int
	)
	fail := func(seq uint64, reason string) {
		if first == nil || seq < first.Seq {
			first = &Error{Seq: seq, Reason: reason}
		}
	}
	for _, coll := range c.colls {
		err := scan(coll, func(id, version string, raw []byte) error {
			k := keyOf(coll, id, version)
			r, ok := c.want[k]
			if !ok {
				return nil
			}
			delete(c.want, k)
			checked++
			h, err := stix.Hash(raw)
			if err != nil {
				fail(r.seq, fmt.Sprintf("the stored bytes of %s version %s have no canonical form: %v", id, version, err))
				return nil
			}
			if h != r.hash {
				fail(r.seq, fmt.Sprintf("the stored bytes of %s version %s in %s hash to %x, recorded %x: the stored object was altered", id, version, coll, h, r.hash))
			}
			return nil
		})
		if err != nil {
			return 0, err
		}
	}
	// What is left was recorded as stored and is not.
	missing := make([]objectRecord, 0, len(c.want))
	for _, r := range c.want {
		missing = append(missing, r)
	}
	if len(missing) > 0 {
		r := slices.MinFunc(missing, func(a, b objectRecord) int { return cmp.Compare(a.seq, b.seq) })
		fail(r.seq, fmt.Sprintf("the version this entry records is not in collection %s, and no deleted entry records its removal (%d such versions in all)", c.colls[r.coll], len(missing)))
	}
	if first != nil {
		return 0, first
	}
	return checked, nil
}
