package stix

import (
	"bytes"
	"strings"

	"github.com/go-json-experiment/json/jsontext"
	guuid "github.com/google/uuid"
)

// scoNamespace is the UUIDv5 namespace of deterministic SCO identifiers
// (STIX 2.1 §2.9): 00abedb4-aa42-466c-9c01-fed23315a9b7.
var scoNamespace = guuid.UUID{0x00, 0xab, 0xed, 0xb4, 0xaa, 0x42, 0x46, 0x6c, 0x9c, 0x01, 0xfe, 0xd2, 0x33, 0x15, 0xa9, 0xb7}

// hashPreference is the order in which one hash of a hashes property is
// chosen to contribute to a deterministic id (as the OASIS reference
// implementation, cti-python-stix2, chooses it).
var hashPreference = []string{"MD5", "SHA-1", "SHA-256", "SHA-512"}

// checkSCOID checks the id of a SCO whose UUID is version 5 against the
// deterministic id computed from its ID contributing properties props
// (STIX 2.1 §2.9, §6): UUIDv5 in the SCO namespace of the RFC 8785
// canonical JSON of an object holding only those properties (and of
// hashes only one, see hashPreference).
//
// A mismatch is a warning, not an error: STIX 2.1 says SCOs SHOULD use
// such ids, and a producer may use UUIDv5 with a namespace of its own. The
// warning matters because consumers deduplicate on these ids: the same
// observable under another id is a different object to them.
//
// Objects with none of the contributing properties, or whose id is not
// version 5, are not checked. When hashes is the only contributing
// property present and holds none of the preferred algorithms, any one of
// its hashes may have been used, and each is tried.
func checkSCOID(c *vctx, props []string, o *fieldSet) {
	_, uuid, _ := splitID([]byte(c.id))
	if len(uuid) != 36 || uuid[14] != '5' {
		return
	}
	var candidates [][]field // the "hashes" choices; one nil entry when there is no choice
	if h := o.get("hashes"); h != nil && contains(props, "hashes") {
		all := readFields(nil, h)
		for _, name := range hashPreference {
			for _, f := range all {
				if string(f.name) == name {
					candidates = [][]field{{f}}
					break
				}
			}
			if candidates != nil {
				break
			}
		}
		if candidates == nil {
			for _, f := range all {
				candidates = append(candidates, []field{f})
			}
		}
	}
	if candidates == nil {
		candidates = [][]field{nil}
	}
	var (
		want  string
		names []string
	)
	for _, hash := range candidates {
		name, used, ok := contributingJSON(props, o, hash)
		if !ok {
			return
		}
		names = used
		u := []byte(guuid.NewSHA1(scoNamespace, name).String())
		if bytes.Equal(uuid, u) {
			return
		}
		if want == "" {
			want = c.typ + "--" + string(u)
		}
	}
	c.warnings = append(c.warnings, "id: not the deterministic UUIDv5 of its ID contributing properties ("+
		strings.Join(names, ", ")+"), which is "+want+" (STIX 2.1 §2.9: SCOs SHOULD use it)")
}

// contributingJSON returns the canonical JSON of the contributing
// properties props present in o, with hashes reduced to hash, and their
// names. ok is false when none is present or the result cannot be
// canonicalised.
func contributingJSON(props []string, o *fieldSet, hash []field) (name []byte, used []string, ok bool) {
	var b bytes.Buffer
	b.WriteByte('{')
	for _, p := range props {
		v := o.get(p)
		if v == nil {
			continue
		}
		if p == "hashes" {
			if hash == nil {
				continue
			}
			q, _ := jsontext.AppendQuote([]byte(`{`), hash[0].name)
			v = append(append(append(q, ':'), hash[0].val...), '}')
		}
		if b.Len() > 1 {
			b.WriteByte(',')
		}
		q, _ := jsontext.AppendQuote(nil, p)
		b.Write(q)
		b.WriteByte(':')
		b.Write(v)
		used = append(used, p)
	}
	b.WriteByte('}')
	if len(used) == 0 {
		return nil, nil, false
	}
	val := jsontext.Value(b.Bytes())
	if err := val.Canonicalize(); err != nil {
		return nil, nil, false
	}
	return val, used, true
}

// contains reports whether list holds s.
func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
