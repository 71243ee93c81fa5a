package custody

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ctigate/ctigate/stix"
)

// chain builds a sealed chain of n entries with a checkpoint every 4, and
// returns its export lines.
func chain(t *testing.T, n int, s *Signer) [][]byte {
	t.Helper()
	var head Head
	var lines [][]byte
	var tree Compact
	at := time.Date(2026, 11, 28, 13, 0, 0, 0, time.UTC)
	for i := 0; len(lines) < n; i++ {
		e := Entry{Action: Received, User: "cert-a", Org: "CERT-A", ObjectID: fmt.Sprintf("indicator--%d", i),
			ObjectVersion: "2026-01-01T00:00:00.000Z", SHA256: strings.Repeat("ab", 32), Collection: "inbound",
			Detail: "Zürich \u2028 \"quoted\" \x01"}
		if s != nil && i%4 == 3 {
			e = s.Checkpoint(head, HexRoot(tree.Root()))
		}
		e.Time = FormatTime(at.Add(time.Duration(i) * time.Millisecond))
		line, err := SealJSON(&e, head)
		if err != nil {
			t.Fatal(err)
		}
		lines = append(lines, line)
		head = Head{Seq: e.Seq, Hash: e.Hash}
		leaf, err := LeafHash(e.Hash)
		if err != nil {
			t.Fatal(err)
		}
		tree.Append(leaf)
	}
	return lines
}

func join(lines [][]byte) *bytes.Reader {
	return bytes.NewReader(append(bytes.Join(lines, []byte("\n")), '\n'))
}

func newSigner(t *testing.T) (*Signer, ed25519.PublicKey) {
	t.Helper()
	pub, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return NewSigner(key), pub
}

func TestVerifyUntouched(t *testing.T) {
	s, pub := newSigner(t)
	lines := chain(t, 12, s)
	rep, err := VerifyJSONL(join(lines), VerifyOptions{Keys: []ed25519.PublicKey{pub}})
	if err != nil {
		t.Fatalf("an untouched chain does not verify: %v", err)
	}
	if rep.Entries != 12 || rep.First != 1 || rep.Last != 12 || rep.Checkpoints != 3 || rep.SignedThrough != 12 {
		t.Fatalf("report %+v", rep)
	}
}

// TestHashIndependent recomputes an entry's hash from its export line the
// way the package documentation says, without this package.
func TestHashIndependent(t *testing.T) {
	lines := chain(t, 1, nil)
	line := lines[0]
	i := bytes.LastIndex(line, []byte(`,"hash":"`))
	stripped := append(append([]byte{}, line[:i]...), '}')
	canon, err := stix.Canonical(stripped)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(canon)
	if want := fmt.Sprintf(`"hash":"%s"}`, hex.EncodeToString(sum[:])); !bytes.HasSuffix(line, []byte(want)) {
		t.Fatalf("line %s does not end in %s", line, want)
	}
}

// wantBroken checks that verification fails naming seq (0: line only).
func wantBroken(t *testing.T, what string, lines [][]byte, opts VerifyOptions, seq uint64, line int) {
	t.Helper()
	_, err := VerifyJSONL(join(lines), opts)
	var ve *Error
	if !errors.As(err, &ve) {
		t.Fatalf("%s: got %v, want a verification error", what, err)
	}
	if ve.Seq != seq || ve.Line != line {
		t.Fatalf("%s: error names entry %d at line %d (%v), want entry %d at line %d", what, ve.Seq, ve.Line, err, seq, line)
	}
}

func clone(lines [][]byte) [][]byte {
	out := make([][]byte, len(lines))
	for i, l := range lines {
		out[i] = bytes.Clone(l)
	}
	return out
}

func TestTamper(t *testing.T) {
	s, pub := newSigner(t)
	orig := chain(t, 12, s)
	opts := VerifyOptions{Keys: []ed25519.PublicKey{pub}}
	for k := range orig {
		seq := uint64(k + 1)
		// Alter one byte of a member's value.
		l := clone(orig)
		l[k] = bytes.Replace(l[k], []byte(`"time":"2026`), []byte(`"time":"2025`), 1)
		wantBroken(t, fmt.Sprintf("altered entry %d", seq), l, opts, seq, k+1)

		// Remove it.
		l = clone(orig)
		l = append(l[:k], l[k+1:]...)
		if k == len(orig)-1 {
			// Removing the last entry leaves a valid shorter chain;
			// only the signed head (or a known head) can tell.
			continue
		}
		if k == 0 {
			wantBroken(t, "removed entry 1", l, opts, 2, 1)
		} else {
			wantBroken(t, fmt.Sprintf("removed entry %d", seq), l, opts, seq+1, k+1)
		}
	}
	for k := 0; k+1 < len(orig); k++ {
		// Swap two neighbours.
		l := clone(orig)
		l[k], l[k+1] = l[k+1], l[k]
		if k == 0 {
			wantBroken(t, "swapped entries 1 and 2", l, opts, 2, 1)
		} else {
			wantBroken(t, fmt.Sprintf("swapped entries %d and %d", k+1, k+2), l, opts, uint64(k+2), k+1)
		}
	}
	// Insert an entry sealed to follow entry 5: entry 6 no longer follows.
	var e Entry
	e.Action, e.Time, e.ObjectID = Deleted, FormatTime(time.Now()), "indicator--x"
	line, err := SealJSON(&e, Head{Seq: 5, Hash: hashOf(t, orig[4])})
	if err != nil {
		t.Fatal(err)
	}
	l := clone(orig)
	l = append(l[:5], append([][]byte{line}, l[5:]...)...)
	wantBroken(t, "inserted after 5", l, opts, 6, 7)

	// Rewrite entry 2 and re-seal every later entry: the chain is
	// consistent, but the checkpoint over entry 3 no longer is.
	l = clone(orig)
	var head Head
	for k := range l {
		var x Entry
		if err := jsonUnmarshal(l[k], &x); err != nil {
			t.Fatal(err)
		}
		if k == 1 {
			x.SHA256 = strings.Repeat("cd", 32)
		}
		out, err := SealJSON(&x, head)
		if err != nil {
			t.Fatal(err)
		}
		l[k] = out
		head = Head{Seq: x.Seq, Hash: x.Hash}
	}
	wantBroken(t, "rewritten and re-sealed", l, opts, 4, 4)

	// A checkpoint signed by another key than the pinned one.
	other, _ := newSigner(t)
	wantBroken(t, "other key", chain(t, 4, other), opts, 4, 4)
	if _, err := VerifyJSONL(join(chain(t, 4, other)), VerifyOptions{}); err != nil {
		t.Fatalf("without pinning: %v", err)
	}
	// An unknown member added (without re-sealing).
	l = clone(orig)
	l[2] = bytes.Replace(l[2], []byte(`{"seq"`), []byte(`{"extra":1,"seq"`), 1)
	wantBroken(t, "added member", l, opts, 3, 3)
	// Garbage.
	l = clone(orig)
	l[6] = []byte(`{"seq":7,`)
	wantBroken(t, "truncated line", l, opts, 0, 7)
}

func hashOf(t *testing.T, line []byte) string {
	t.Helper()
	var e Entry
	if err := jsonUnmarshal(line, &e); err != nil {
		t.Fatal(err)
	}
	return e.Hash
}

func TestAnchored(t *testing.T) {
	lines := chain(t, 8, nil)
	if _, err := VerifyJSONL(join(lines[3:]), VerifyOptions{}); err == nil {
		t.Fatal("a range not starting at seq 1 verified without Anchored")
	}
	rep, err := VerifyJSONL(join(lines[3:]), VerifyOptions{Anchored: true})
	if err != nil || rep.First != 4 || rep.Last != 8 {
		t.Fatalf("anchored range: %+v, %v", rep, err)
	}
}

func FuzzVerifyJSONL(f *testing.F) {
	s := NewSigner(ed25519.NewKeyFromSeed(make([]byte, 32)))
	var buf bytes.Buffer
	for _, l := range chainF(s) {
		buf.Write(l)
		buf.WriteByte('\n')
	}
	f.Add(buf.Bytes())
	f.Add([]byte(`{"seq":1,"prev":"` + ZeroHash + `","hash":"x"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = VerifyJSONL(bytes.NewReader(b), VerifyOptions{})
		_, _ = VerifyEvidence(bytes.NewReader(b), VerifyOptions{})
	})
}

func chainF(s *Signer) [][]byte {
	var head Head
	var lines [][]byte
	var tree Compact
	for i := range 4 {
		e := Entry{Action: Received, ObjectID: fmt.Sprint("indicator--", i), Time: FormatTime(time.Unix(0, 0))}
		if i == 3 {
			e = s.Checkpoint(head, HexRoot(tree.Root()))
		}
		line, _ := SealJSON(&e, head)
		lines = append(lines, line)
		head = Head{Seq: e.Seq, Hash: e.Hash}
		leaf, _ := LeafHash(e.Hash)
		tree.Append(leaf)
	}
	return lines
}
