package config

import (
	"bufio"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
)

// ParsePublicKey reads an Ed25519 public key written in standard base64
// (surrounding spaces ignored), as `ctigate audit keygen` prints it.
func ParsePublicKey(s string) (ed25519.PublicKey, error) {
	s = strings.TrimSpace(s)
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil || len(b) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("%q is not a base64 Ed25519 public key (%d bytes)", s, ed25519.PublicKeySize)
	}
	return ed25519.PublicKey(b), nil
}

// ParsePublicKeys reads a file of pinned public keys: one base64 key per
// line; "#" starts a comment that runs to the end of its line; blank
// lines are skipped. It fails when a line holds anything else, naming the
// line, or when there is no key.
func ParsePublicKeys(text string) ([]ed25519.PublicKey, error) {
	var keys []ed25519.PublicKey
	sc := bufio.NewScanner(strings.NewReader(text))
	for n := 1; sc.Scan(); n++ {
		line, _, _ := strings.Cut(sc.Text(), "#")
		if strings.TrimSpace(line) == "" {
			continue
		}
		k, err := ParsePublicKey(line)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
		keys = append(keys, k)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(keys) == 0 {
		return nil, errors.New("no public key")
	}
	return keys, nil
}

// PublicKeys returns the trusted keys of a validated configuration.
func (c Custody) PublicKeys() []ed25519.PublicKey {
	out := make([]ed25519.PublicKey, 0, len(c.TrustedKeys))
	for _, s := range c.TrustedKeys {
		if k, err := ParsePublicKey(s); err == nil {
			out = append(out, k)
		}
	}
	return out
}
