package custody

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"math/bits"
	"strconv"

	"golang.org/x/mod/sumdb/tlog"
)

// # Rejections
//
// An envelope's refused objects are recorded one entry each up to a
// bound; the others of the envelope are summarised by one rejected entry:
// Count of them, Reason a summary of their kinds ("invalid ×99,900"),
// RejectedItems a bitmap of their indexes in the envelope, and ItemsRoot
// the Merkle tree hash of their leaves in index order, each leaf being
// SHA-256(0x00 || {"index":i,"sha256":"…"}), sha256 the hex SHA-256 of
// the element's bytes exactly as sent. Whoever holds the envelope (the
// producer) can so show that a given element was refused in it
// (RejectedRoot), and the ledger stays small whatever an envelope holds.

// RejectedLeaf returns the leaf of the refused element at index whose
// bytes as sent are raw.
func RejectedLeaf(index int, raw []byte) tlog.Hash {
	sum := sha256.Sum256(raw)
	// tlog.RecordHash(b) without its allocations: SHA-256(0x00 || b), b
	// built on the stack (an envelope may hold 100,000 refusals).
	var buf [128]byte
	b := append(buf[:0], 0)
	b = append(b, `{"index":`...)
	b = strconv.AppendInt(b, int64(index), 10)
	b = append(b, `,"sha256":"`...)
	b = hex.AppendEncode(b, sum[:])
	b = append(b, `"}`...)
	return sha256.Sum256(b)
}

// Bitmap is a set of envelope indexes, as RejectedItems encodes it.
type Bitmap []byte

// Set adds i.
func (b *Bitmap) Set(i int) {
	for len(*b) <= i/8 {
		*b = append(*b, 0)
	}
	(*b)[i/8] |= 1 << (i % 8)
}

// Has reports whether i is in b.
func (b Bitmap) Has(i int) bool { return i >= 0 && i/8 < len(b) && b[i/8]&(1<<(i%8)) != 0 }

// Len is the number of indexes in b.
func (b Bitmap) Len() int {
	n := 0
	for _, x := range b {
		n += bits.OnesCount8(x)
	}
	return n
}

// String is the base64 form RejectedItems holds.
func (b Bitmap) String() string { return base64.StdEncoding.EncodeToString(b) }

// ParseBitmap parses what String wrote.
func ParseBitmap(s string) (Bitmap, error) {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, errors.New("rejected_items is not base64")
	}
	return Bitmap(b), nil
}

// RejectedRoot checks a summarised rejected entry against the envelope's
// elements as sent (raw[i] the bytes of objects[i]): the elements its
// bitmap names hash to its items_root, and there are count of them.
func RejectedRoot(e *Entry, raw [][]byte) error {
	if e.Action != Rejected || e.RejectedItems == "" {
		return errors.New("not a summarised rejected entry")
	}
	bm, err := ParseBitmap(e.RejectedItems)
	if err != nil {
		return err
	}
	var leaves []tlog.Hash
	for i := range len(bm) * 8 {
		if !bm.Has(i) {
			continue
		}
		if i >= len(raw) {
			return fmt.Errorf("rejected_items names objects[%d], the envelope holds %d", i, len(raw))
		}
		leaves = append(leaves, RejectedLeaf(i, raw[i]))
	}
	if len(leaves) != e.Count {
		return fmt.Errorf("rejected_items names %d objects, count is %d", len(leaves), e.Count)
	}
	if got := HexRoot(TreeRoot(leaves)); got != e.ItemsRoot {
		return fmt.Errorf("the envelope's refused objects hash to %s, the entry records %s: not the envelope the entry records", got, e.ItemsRoot)
	}
	return nil
}
