package custody

import (
	"bytes"
	"crypto/ed25519"
	"strings"
	"testing"

	"github.com/go-json-experiment/json"
)

// elide rewrites the lines at seqs (1-based) in their Elided form.
func elide(t *testing.T, lines [][]byte, seqs ...int) [][]byte {
	t.Helper()
	out := clone(lines)
	for _, s := range seqs {
		var e Entry
		if err := json.Unmarshal(lines[s-1], &e); err != nil {
			t.Fatal(err)
		}
		b, err := json.Marshal(Elide(&e))
		if err != nil {
			t.Fatal(err)
		}
		out[s-1] = b
	}
	return out
}

// TestElided: a chain with entries shown only by their place verifies
// (checkpoints included), counts them, and still catches an altered
// visible entry, an elided entry with content left in it, and an elided
// entry whose hash is not the one the next entry chains to.
func TestElided(t *testing.T) {
	s, pub := newSigner(t)
	orig := chain(t, 12, s)
	opts := VerifyOptions{Keys: []ed25519.PublicKey{pub}}
	lines := elide(t, orig, 1, 2, 6, 11)
	if !bytes.Equal(lines[0], []byte(`{"seq":1,"prev":"`+ZeroHash+`","hash":"`+hashOf(t, orig[0])+`","elided":true}`)) {
		t.Fatalf("elided form: %s", lines[0])
	}
	rep, err := VerifyJSONL(join(lines), opts)
	if err != nil {
		t.Fatalf("a chain with elided entries does not verify: %v", err)
	}
	if rep.Entries != 12 || rep.Elided != 4 || rep.SignedThrough != 12 {
		t.Fatalf("report %+v", rep)
	}

	altered := clone(lines)
	altered[4] = bytes.Replace(altered[4], []byte("indicator--"), []byte("indicator--x"), 1)
	wantBroken(t, "visible entry altered", altered, opts, 5, 5)

	stuffed := clone(lines)
	stuffed[5] = bytes.Replace(stuffed[5], []byte(`"elided":true`), []byte(`"elided":true,"object_id":"indicator--1"`), 1)
	wantBroken(t, "content left in an elided entry", stuffed, opts, 6, 6)

	rehashed := clone(lines)
	rehashed[5] = []byte(strings.Replace(string(rehashed[5]), hashOf(t, orig[5]), strings.Repeat("0", 64), 1))
	wantBroken(t, "elided entry's hash replaced", rehashed, opts, 7, 7)

	notTrue := clone(lines)
	notTrue[1] = bytes.Replace(notTrue[1], []byte(`"elided":true`), []byte(`"elided":false`), 1)
	wantBroken(t, "elided false", notTrue, opts, 2, 2)
}
