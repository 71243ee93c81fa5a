package custody

import (
	"cmp"
	"encoding/hex"
	"fmt"
	"slices"

	"github.com/ctigate/ctigate/stix"
)

// Lookup returns the stored bytes of one object version in a collection,
// found false when the collection does not hold it.
type Lookup func(collection, id, version string) (raw []byte, found bool, err error)

type objectKey struct{ collection, id, version string }

type objectRecord struct {
	seq  uint64
	hash string
}

// ObjectChecker checks stored objects against the ledger: fed a verified
// chain in order, it knows which versions each collection should hold and
// their hashes (received: sha256; published or redacted: published_sha256;
// deleted or withdrawn: none), and Check re-hashes what the store holds.
type ObjectChecker struct {
	want map[objectKey]objectRecord
}

// NewObjectChecker returns an empty ObjectChecker.
func NewObjectChecker() *ObjectChecker { return &ObjectChecker{want: map[objectKey]objectRecord{}} }

// Add takes the next entry of the chain.
func (c *ObjectChecker) Add(e *Entry) {
	k := objectKey{e.Collection, e.ObjectID, e.ObjectVersion}
	switch e.Action {
	case Received:
		if e.SHA256 != "" {
			c.want[k] = objectRecord{e.Seq, e.SHA256}
		}
	case Published, Redacted:
		if e.PublishedSHA256 != "" {
			c.want[k] = objectRecord{e.Seq, e.PublishedSHA256}
		}
	case Deleted, Withdrawn:
		delete(c.want, k)
	}
}

// Check re-hashes each version the ledger says is stored, in ledger order,
// and names the entry of the first whose bytes are missing or differ.
func (c *ObjectChecker) Check(lookup Lookup) (int, error) {
	keys := make([]objectKey, 0, len(c.want))
	for k := range c.want {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b objectKey) int { return cmp.Compare(c.want[a].seq, c.want[b].seq) })
	for _, k := range keys {
		r := c.want[k]
		raw, found, err := lookup(k.collection, k.id, k.version)
		if err != nil {
			return 0, err
		}
		if !found {
			return 0, &Error{Seq: r.seq, Reason: fmt.Sprintf("%s version %s is not in collection %s, and no deleted entry records its removal", k.id, k.version, k.collection)}
		}
		h, err := stix.Hash(raw)
		if err != nil {
			return 0, &Error{Seq: r.seq, Reason: fmt.Sprintf("the stored bytes of %s version %s have no canonical form: %v", k.id, k.version, err)}
		}
		if got := hex.EncodeToString(h[:]); got != r.hash {
			return 0, &Error{Seq: r.seq, Reason: fmt.Sprintf("the stored bytes of %s version %s in %s hash to %s, recorded %s: the stored object was altered", k.id, k.version, k.collection, got, r.hash)}
		}
	}
	return len(keys), nil
}
