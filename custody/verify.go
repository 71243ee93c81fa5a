package custody

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
)

// checkpointDomain prefixes the message a checkpoint signs.
const checkpointDomain = "ctigate custody checkpoint v2\n"

// CheckpointMessage is what a checkpoint over the entry (seq, hash) and
// the Merkle tree of entries 1..seq (root, hex) signs.
func CheckpointMessage(seq uint64, hash, root string) []byte {
	return []byte(checkpointDomain + strconv.FormatUint(seq, 10) + "\n" + hash + "\n" + root)
}

// Signer makes checkpoint entries with one Ed25519 key.
type Signer struct {
	key ed25519.PrivateKey
	pub string
}

// NewSigner returns a Signer for key.
func NewSigner(key ed25519.PrivateKey) *Signer {
	return &Signer{key: key, pub: base64.StdEncoding.EncodeToString(key.Public().(ed25519.PublicKey))}
}

// PublicKey returns the signer's public key, base64.
func (s *Signer) PublicKey() string { return s.pub }

// Checkpoint returns an unsealed checkpoint entry signing head and root,
// the tree hash of entries 1..head.Seq (hex).
func (s *Signer) Checkpoint(head Head, root string) Entry {
	sig := ed25519.Sign(s.key, CheckpointMessage(head.Seq, head.Hash, root))
	return Entry{
		Action: Checkpoint, User: "ctigate", SignedSeq: head.Seq, SignedHash: head.Hash, Root: root,
		PublicKey: s.pub, Signature: base64.StdEncoding.EncodeToString(sig),
	}
}

// VerifyOptions tune verification.
type VerifyOptions struct {
	// Keys pins the checkpoint keys: a checkpoint signed by another key
	// fails. Empty accepts the key each checkpoint carries (Report.Keys
	// lists them, to be compared with a trusted copy).
	Keys []ed25519.PublicKey
	// Anchored accepts a first entry with any seq and prev (an export of a
	// range); otherwise the first entry must be seq 1 with prev ZeroHash.
	Anchored bool
}

// Report summarises a verified chain.
type Report struct {
	Entries       int
	First, Last   uint64 // seqs of the first and last entries
	Head          string // hash of the last entry
	Checkpoints   int
	SignedThrough uint64   // highest seq covered by a verified checkpoint
	Elided        int      // entries shown only by their place in the chain (Elided)
	Keys          []string // checkpoint public keys seen, base64
	// RootsChecked counts the checkpoints whose Merkle root was
	// recomputed from the entries (an export read from seq 1); an export
	// of a range checks signatures only.
	RootsChecked int
	// Late counts the checkpoints (among Checkpoints) that sign an
	// earlier entry than the checkpoint before them: with several gateway
	// processes signing one chain, one whose tree took longer could land
	// after another's (builds before the store refused it). Each is
	// checked like any other, against the entries it signs; it adds no
	// coverage.
	Late int
}

// Error names the first entry that does not verify.
type Error struct {
	Line   int    // 1-based line (or position) of the entry in its file
	Seq    uint64 // the entry's seq as written (0 when unreadable)
	Reason string
}

func (e *Error) Error() string {
	if e.Line == 0 {
		return fmt.Sprintf("entry %d does not verify: %s", e.Seq, e.Reason)
	}
	if e.Seq == 0 {
		return fmt.Sprintf("entry at line %d does not verify: %s", e.Line, e.Reason)
	}
	return fmt.Sprintf("entry %d (line %d) does not verify: %s", e.Seq, e.Line, e.Reason)
}

// Verifier checks a chain one entry at a time, in order.
type Verifier struct {
	opts   VerifyOptions
	rep    Report
	line   int
	prev   Head
	hashes map[uint64]string // hashes of entries a later checkpoint may sign: from prevSigned on
	tree   Compact           // the tree of entries 1..tree.Size() (from seq 1 only)
	// The seqs the last two checkpoints sign, and the tree at the first
	// of them (base): a late checkpoint, one that signs an earlier entry
	// than the last, is checked from there.
	signed, prevSigned uint64
	base               Compact
	failed             error
}

// NewVerifier returns a Verifier for a chain read from its start (or, with
// opts.Anchored, from any entry).
func NewVerifier(opts VerifyOptions) *Verifier {
	return &Verifier{opts: opts, hashes: map[uint64]string{}}
}

// Add checks the next entry, given as its JSON text, and returns it
// decoded. After the first failure every call returns that failure.
func (v *Verifier) Add(raw []byte) (*Entry, error) {
	if v.failed != nil {
		return nil, v.failed
	}
	v.line++
	e, err := v.add(raw)
	if err != nil {
		var seq uint64
		if e != nil {
			seq = e.Seq
		}
		v.failed = &Error{Line: v.line, Seq: seq, Reason: err.Error()}
		return nil, v.failed
	}
	return e, nil
}

func (v *Verifier) add(raw []byte) (*Entry, error) {
	var e Entry
	// Members are decoded leniently here, so that the error names the
	// entry; the hash below covers every member, known or not.
	if err := json.Unmarshal(raw, &e); err != nil {
		return nil, fmt.Errorf("not a ledger entry: %v", err)
	}
	var m map[string]jsontext.Value
	if err := json.Unmarshal(raw, &m); err != nil {
		return &e, fmt.Errorf("not a JSON object: %v", err)
	}
	elided, err := isElided(m)
	if err != nil {
		return &e, err
	}
	if elided {
		// Only its links can be checked; its content is not here.
		if len(e.Hash) != 64 || strings.Trim(e.Hash, "0123456789abcdef") != "" {
			return &e, fmt.Errorf("elided entry's hash %q is not a SHA-256", e.Hash)
		}
		v.rep.Elided++
	} else if err := checkContentHash(m, e.Hash); err != nil {
		return &e, err
	}
	switch {
	case v.rep.Entries == 0 && !v.opts.Anchored:
		if e.Seq != 1 || e.Prev != ZeroHash {
			return &e, fmt.Errorf("the chain must start at seq 1 with prev %s (an entry before it was removed?)", ZeroHash)
		}
	case v.rep.Entries > 0:
		if e.Seq != v.prev.Seq+1 {
			return &e, fmt.Errorf("seq %d follows seq %d (entries removed, inserted or reordered)", e.Seq, v.prev.Seq)
		}
		if e.Prev != v.prev.Hash {
			return &e, fmt.Errorf("prev %q is not the hash of entry %d (%s)", e.Prev, v.prev.Seq, v.prev.Hash)
		}
	}
	if e.Action == Checkpoint {
		if err := v.checkpoint(&e); err != nil {
			return &e, err
		}
	}
	if v.rep.Entries == 0 {
		v.rep.First = e.Seq
	}
	v.rep.Entries++
	v.rep.Last, v.rep.Head = e.Seq, e.Hash
	v.prev = Head{Seq: e.Seq, Hash: e.Hash, Time: e.Time}
	v.hashes[e.Seq] = e.Hash
	return &e, nil
}

// checkContentHash checks that hash is that of an entry's members m (all
// but "hash", which it removes from m).
func checkContentHash(m map[string]jsontext.Value, hash string) error {
	delete(m, "hash")
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	got, err := hashJSON(b)
	if err != nil {
		return fmt.Errorf("no canonical form: %v", err)
	}
	if got != hash {
		return fmt.Errorf("hash %q does not match its content (sha256 %s): the entry was altered", hash, got)
	}
	return nil
}

// isElided reports whether an entry's members are those of the Elided
// form; an entry that claims to be elided and holds anything more is an
// error (content would go unchecked).
func isElided(m map[string]jsontext.Value) (bool, error) {
	flag, ok := m["elided"]
	if !ok {
		return false, nil
	}
	if string(flag) != "true" {
		return false, fmt.Errorf("elided is %s, not true", flag)
	}
	for k := range m {
		switch k {
		case "seq", "prev", "hash", "elided":
		default:
			return false, fmt.Errorf("an elided entry holds %q: only seq, prev and hash may remain", k)
		}
	}
	return true, nil
}

// checkpoint checks a checkpoint entry: the hash it signs against the
// chain's, its root against the tree of the entries it signs (read from
// seq 1), and its signature. A late checkpoint, one that signs an earlier
// entry than the checkpoint before it (Report.Late), is checked against
// the tree rebuilt from the one the checkpoint before the last signs; one
// that signs an entry before that is refused.
func (v *Verifier) checkpoint(e *Entry) error {
	if e.SignedSeq >= e.Seq {
		return fmt.Errorf("checkpoint signs seq %d, not an earlier entry", e.SignedSeq)
	}
	late := e.SignedSeq < v.signed
	if late && e.SignedSeq < v.prevSigned {
		return fmt.Errorf("checkpoint signs seq %d, before the entries the two checkpoints before it sign (%d and %d)", e.SignedSeq, v.prevSigned, v.signed)
	}
	want, ok := v.hashes[e.SignedSeq]
	if !ok {
		if e.SignedSeq < v.rep.First {
			// Signs an entry before this export starts: nothing to compare.
			want = e.SignedHash
		} else {
			return fmt.Errorf("checkpoint signs seq %d, which is not in the chain", e.SignedSeq)
		}
	}
	if want != e.SignedHash {
		return fmt.Errorf("checkpoint signs hash %s for seq %d, but the chain has %s", e.SignedHash, e.SignedSeq, want)
	}
	if _, err := ParseRoot(e.Root); err != nil {
		return fmt.Errorf("checkpoint root: %v", err)
	}
	// Read from seq 1, the tree is known: its root at signed_seq must be
	// the one signed.
	if !v.opts.Anchored || v.rep.First == 1 {
		tree := &v.tree
		if late {
			t := v.base.clone()
			tree = &t
		} else {
			v.base = v.tree.clone() // at the entry the last checkpoint signs, soon the one before the last
		}
		for seq := tree.Size() + 1; seq <= e.SignedSeq; seq++ {
			leaf, err := LeafHash(v.hashes[seq])
			if err != nil {
				return err
			}
			tree.Append(leaf)
		}
		if got := HexRoot(tree.Root()); got != e.Root {
			return fmt.Errorf("checkpoint signs root %s for tree size %d, but the entries give %s", e.Root, e.SignedSeq, got)
		}
		v.rep.RootsChecked++
	}
	if err := checkSignature(e, v.opts.Keys); err != nil {
		return err
	}
	v.rep.Checkpoints++
	if !slices.Contains(v.rep.Keys, e.PublicKey) {
		v.rep.Keys = append(v.rep.Keys, e.PublicKey)
	}
	if late {
		v.rep.Late++ // it adds no coverage
		return nil
	}
	// A checkpoint covers the entries it signs and, directly after them,
	// itself: it adds nothing but its signature.
	covered := e.SignedSeq
	if e.SignedSeq == e.Seq-1 {
		covered = e.Seq
	}
	v.rep.SignedThrough = max(v.rep.SignedThrough, covered)
	// Later checkpoints sign later entries, but for a late one, which
	// may sign any entry from the one the checkpoint before signs.
	v.prevSigned, v.signed = v.signed, e.SignedSeq
	for s := range v.hashes {
		if s < v.prevSigned {
			delete(v.hashes, s)
		}
	}
	return nil
}

// checkSignature checks a checkpoint's signature, and that its key is
// one of keys when keys is not empty.
func checkSignature(e *Entry, keys []ed25519.PublicKey) error {
	pub, err := base64.StdEncoding.DecodeString(e.PublicKey)
	if err != nil || len(pub) != ed25519.PublicKeySize {
		return errors.New("checkpoint public_key is not a base64 Ed25519 key")
	}
	if len(keys) > 0 && !slices.ContainsFunc(keys, func(k ed25519.PublicKey) bool { return bytes.Equal(k, pub) }) {
		return fmt.Errorf("checkpoint signed by key %s, which is not pinned", e.PublicKey)
	}
	sig, err := base64.StdEncoding.DecodeString(e.Signature)
	if err != nil || !ed25519.Verify(pub, CheckpointMessage(e.SignedSeq, e.SignedHash, e.Root), sig) {
		return errors.New("checkpoint signature does not verify")
	}
	return nil
}

// Report returns what has been verified so far.
func (v *Verifier) Report() Report { return v.rep }

// MaxLine bounds one JSON Lines entry.
const MaxLine = 16 << 20

// VerifyJSONL verifies a JSON Lines export (one entry per line; empty
// lines are skipped).
func VerifyJSONL(r io.Reader, opts VerifyOptions) (Report, error) {
	v := NewVerifier(opts)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), MaxLine)
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			v.line++
			continue
		}
		if _, err := v.Add(line); err != nil {
			return v.Report(), err
		}
	}
	if err := sc.Err(); err != nil {
		return v.Report(), fmt.Errorf("reading the export after line %d: %w", v.line, err)
	}
	if v.rep.Entries == 0 {
		return v.rep, errors.New("no entries")
	}
	return v.Report(), nil
}

// WriteJSONL writes entries as JSON Lines; those elide says are written
// in their Elided form (elide may be nil).
func WriteJSONL(w io.Writer, entries []Entry, elide func(*Entry) bool) error {
	for i := range entries {
		var b []byte
		var err error
		if elide != nil && elide(&entries[i]) {
			b, err = json.Marshal(Elide(&entries[i]))
		} else {
			b, err = json.Marshal(&entries[i])
		}
		if err != nil {
			return err
		}
		if _, err := w.Write(append(b, '\n')); err != nil {
			return err
		}
	}
	return nil
}
