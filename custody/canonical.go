package custody

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"strconv"
	"unicode/utf8"
)

// Prepared is an entry encoded ahead of its place in the chain: the RFC
// 8785 canonical form of its members, cut where seq, prev and time go, so
// that appending it (under the ledger's lock) only splices those in and
// hashes. Prepare writes the canonical form directly; it equals
// stix.Canonical of the entry's JSON (TestCanonicalMatches).
type Prepared struct {
	e       Entry
	canon   []byte // with prev, seq and time left out
	cutPrev int    // where `"prev":"` + prev + `",` goes
	cutSeq  int    // where `"seq":` + seq + `,` goes
	cutTime int    // where `"time":"` + time + `",` goes
}

var errBadUTF8 = errors.New("entry holds invalid UTF-8")

// Prepare encodes e (its Seq, Prev, Time and Hash are ignored). It sets
// e.Nonce when empty (but for checkpoints).
func Prepare(e *Entry) (*Prepared, error) {
	if e.Action == "" {
		return nil, errors.New("entry without action")
	}
	if !validUTF8(e) {
		return nil, errBadUTF8
	}
	if e.Nonce == "" && e.Action != Checkpoint {
		e.Nonce = newNonce() // set on e, so that its JSON form carries it too
	}
	p := &Prepared{e: *e}
	b := make([]byte, 0, 384+len(e.Detail))
	b = append(b, '{')
	str := func(k, v string) {
		if v != "" {
			b = appendKey(b, k)
			b = appendJCSString(b, v)
		}
	}
	str("action", e.Action)
	str("collection", e.Collection)
	if e.Count != 0 {
		b = appendKey(b, "count")
		b = strconv.AppendInt(b, int64(e.Count), 10)
	}
	str("date_added", e.DateAdded)
	str("detail", e.Detail)
	str("filter", e.Filter)
	str("first_added", e.FirstAdded)
	str("grants_sha256", e.GrantsSHA256)
	str("items_root", e.ItemsRoot)
	str("last_added", e.LastAdded)
	str("nonce", e.Nonce)
	str("object_id", e.ObjectID)
	str("object_version", e.ObjectVersion)
	str("org", e.Org)
	str("permission", e.Permission)
	str("policy_version", e.PolicyVersion)
	p.cutPrev = len(b)
	str("public_key", e.PublicKey)
	str("published_sha256", e.PublishedSHA256)
	str("reason", e.Reason)
	str("rejected_items", e.RejectedItems)
	if len(e.Removed) > 0 {
		b = appendKey(b, "removed")
		b = append(b, '[')
		for i, s := range e.Removed {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJCSString(b, s)
		}
		b = append(b, ']')
	}
	str("role", e.Role)
	str("root", e.Root)
	str("route", e.Route)
	p.cutSeq = len(b)
	str("sha256", e.SHA256)
	str("signature", e.Signature)
	str("signed_hash", e.SignedHash)
	if e.SignedSeq != 0 {
		b = appendKey(b, "signed_seq")
		b = strconv.AppendUint(b, e.SignedSeq, 10)
	}
	str("source", e.Source)
	p.cutTime = len(b)
	str("token_id", e.TokenID)
	str("user", e.User)
	str("view", e.View)
	b = append(b, '}')
	p.canon = b
	return p, nil
}

// appendKey appends `,"k":` (or `"k":` first in the object).
func appendKey(b []byte, k string) []byte {
	if b[len(b)-1] != '{' {
		b = append(b, ',')
	}
	b = append(b, '"')
	b = append(b, k...)
	return append(b, '"', ':')
}

func validUTF8(e *Entry) bool {
	for _, s := range []string{e.Action, e.User, e.Org, e.ObjectID, e.ObjectVersion, e.SHA256, e.Collection, e.Source, e.Route,
		e.PolicyVersion, e.Reason, e.Detail, e.PublishedSHA256, e.SignedHash, e.PublicKey, e.Signature,
		e.DateAdded, e.FirstAdded, e.LastAdded, e.Filter, e.View, e.ItemsRoot, e.Nonce, e.Root,
		e.Permission, e.Role, e.TokenID, e.GrantsSHA256, e.RejectedItems} {
		if !utf8.ValidString(s) {
			return false
		}
	}
	for _, s := range e.Removed {
		if !utf8.ValidString(s) {
			return false
		}
	}
	return true
}

// appendJCSString appends s, valid UTF-8, as RFC 8785 §3.2.2.2 writes
// strings.
func appendJCSString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			i++
			continue
		}
		if c >= utf8.RuneSelf {
			i++
			continue
		}
		b = append(b, s[start:i]...)
		switch c {
		case '"', '\\':
			b = append(b, '\\', c)
		case '\b':
			b = append(b, '\\', 'b')
		case '\f':
			b = append(b, '\\', 'f')
		case '\n':
			b = append(b, '\\', 'n')
		case '\r':
			b = append(b, '\\', 'r')
		case '\t':
			b = append(b, '\\', 't')
		default:
			const hexDigits = "0123456789abcdef"
			b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		}
		i++
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// splice appends canon[:at] and then `,"key":` + v (quoted when quote).
func splice(dst, canon []byte, at int, key string, v []byte, quote bool) []byte {
	dst = append(dst, canon[:at]...)
	dst = append(dst, ',', '"')
	dst = append(dst, key...)
	dst = append(dst, '"', ':')
	if quote {
		dst = append(dst, '"')
	}
	dst = append(dst, v...)
	if quote {
		dst = append(dst, '"')
	}
	return dst
}

// JSON returns the entry as Prepare encoded it, without prev, seq and
// time: every other field in RFC 8785 form, which a JSON decoder reads
// back as the entry with those unset. The caller must not modify it.
func (p *Prepared) JSON() []byte { return p.canon }

// Seal places the entry after prev at time ts (FormatTime) and returns its
// JSON text (the canonical form followed by its hash member, as an export
// line holds it) and the sealed entry.
func (p *Prepared) Seal(prev Head, ts string) ([]byte, Entry) {
	e := p.e
	e.Seq, e.Prev, e.Time = prev.Seq+1, prev.Hash, ts
	if e.Prev == "" {
		e.Prev = ZeroHash
	}
	var seqBuf [20]byte
	seq := strconv.AppendUint(seqBuf[:0], e.Seq, 10)
	c := p.canon
	out := make([]byte, 0, len(c)+len(e.Prev)+len(seq)+len(ts)+32+len(`,"hash":""`)+64)
	// "action" is always first, so every spliced member follows another.
	out = splice(out, c, p.cutPrev, "prev", []byte(e.Prev), true)
	out = append(out, c[p.cutPrev:p.cutSeq]...)
	out = append(out, `,"seq":`...)
	out = append(out, seq...)
	out = append(out, c[p.cutSeq:p.cutTime]...)
	out = append(out, `,"time":"`...)
	out = append(out, ts...)
	out = append(out, '"')
	out = append(out, c[p.cutTime:]...)
	sum := sha256.Sum256(out)
	e.Hash = hex.EncodeToString(sum[:])
	out = append(out[:len(out)-1], `,"hash":"`...)
	out = append(out, e.Hash...)
	out = append(out, '"', '}')
	return out, e
}

// newNonce returns 16 random bytes, base64 (Entry.Nonce).
func newNonce() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return base64.RawStdEncoding.EncodeToString(b[:])
}
