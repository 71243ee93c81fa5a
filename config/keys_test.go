package config

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"strings"
	"testing"
)

func newPub(t *testing.T) (ed25519.PublicKey, string) {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return pub, base64.StdEncoding.EncodeToString(pub)
}

// TestParsePublicKeys: a file of pinned keys holds one key a line, with
// comments and blank lines; anything else is refused, naming the line.
func TestParsePublicKeys(t *testing.T) {
	k1, s1 := newPub(t)
	k2, s2 := newPub(t)
	text := "# checkpoint keys of the exchange\n\n" + s1 + "   # 2025, retired\n  " + s2 + "\n# end\n"
	keys, err := ParsePublicKeys(text)
	if err != nil || len(keys) != 2 || !bytes.Equal(keys[0], k1) || !bytes.Equal(keys[1], k2) {
		t.Fatalf("ParsePublicKeys = %v, %v", keys, err)
	}
	for _, c := range []struct{ text, want string }{
		{"# nothing\n\n", "no public key"},
		{s1 + "\nnot-a-key\n", "line 2"},
		{s1 + " " + s2 + "\n", "line 1"},
		{s1[:20] + "\n", "line 1"},
	} {
		if _, err := ParsePublicKeys(c.text); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("ParsePublicKeys(%q) = %v, want an error naming %q", c.text, err, c.want)
		}
	}
}

// TestTrustedKeys: custody.trusted_keys takes several public keys, from
// the file or the environment; a key that is not one is refused, naming
// its index.
func TestTrustedKeys(t *testing.T) {
	k1, s1 := newPub(t)
	k2, s2 := newPub(t)
	base := minimalYAML + `custody:
  trusted_keys:
    - ` + s1 + `
    - ` + s2 + `
`
	c, err := Parse([]byte(base), nil)
	if err != nil {
		t.Fatal(err)
	}
	if keys := c.Custody.PublicKeys(); len(keys) != 2 || !bytes.Equal(keys[0], k1) || !bytes.Equal(keys[1], k2) {
		t.Fatalf("trusted keys %v", keys)
	}
	c, err = Parse([]byte(base), func(k string) string {
		if k == "CTIGATE_CUSTODY_TRUSTED_KEYS" {
			return s2
		}
		return ""
	})
	if err != nil || len(c.Custody.PublicKeys()) != 1 || !bytes.Equal(c.Custody.PublicKeys()[0], k2) {
		t.Fatalf("from the environment: %v %v", c, err)
	}
	_, err = Parse([]byte(strings.Replace(base, s2, "c2lnbmluZyBrZXk=", 1)), nil)
	if err == nil || !strings.Contains(err.Error(), "custody.trusted_keys[1]") {
		t.Fatalf("a bad trusted key: %v", err)
	}
}
