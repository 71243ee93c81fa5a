// Package search finds the STIX objects that mention an observable (an IP
// address or network, a domain, a URL, an e-mail address, a file hash):
// it extracts and normalises the observables of stored objects, keeps the
// store's search index up to date with them, and answers lookups limited
// to the collections a caller may read.
package search

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"maps"
	"net/netip"
	"net/url"
	"slices"
	"strings"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/ctigate/ctigate/stix/pattern"
)

// Observable is one normalised observable: Class and Value are its index
// key, Given the text it was found as.
//
// Classes:
//
//	ipv4/N, ipv6/N    an address (N = 32 or 128) or a network of prefix
//	                  length N; Value is the masked address in canonical
//	                  text (net/netip), IPv4-mapped IPv6 addresses as IPv4
//	domain            a domain name, lower case, without trailing dot
//	url               a URL with lower-case scheme and host, otherwise as given
//	email             an e-mail address, lower case
//	md5, sha1,        a file (or artifact, certificate) hash, lower-case hex
//	sha256, sha512
type Observable struct {
	Class, Value string
	Given        string
}

// Hash classes by the normalised algorithm name (upper case, no '-').
var hashClasses = map[string]struct {
	class string
	hexes int
}{
	"MD5":    {"md5", 32},
	"SHA1":   {"sha1", 40},
	"SHA256": {"sha256", 64},
	"SHA512": {"sha512", 128},
}

// maxValue bounds the length of an indexed value.
const maxValue = 2048

// IP returns the observable of an address or CIDR network, false when s is
// neither.
func IP(s string) (Observable, bool) {
	s = strings.TrimSpace(s)
	var p netip.Prefix
	if strings.Contains(s, "/") {
		var err error
		if p, err = netip.ParsePrefix(s); err != nil {
			return Observable{}, false
		}
		if a := p.Addr(); a.Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
		}
	} else {
		a, err := netip.ParseAddr(s)
		if err != nil || a.Zone() != "" {
			return Observable{}, false
		}
		a = a.Unmap()
		p = netip.PrefixFrom(a, a.BitLen())
	}
	p = p.Masked()
	return Observable{Class: ipClass(p.Addr().Is4(), p.Bits()), Value: p.Addr().String(), Given: s}, true
}

func ipClass(v4 bool, bits int) string {
	if v4 {
		return fmt.Sprintf("ipv4/%d", bits)
	}
	return fmt.Sprintf("ipv6/%d", bits)
}

// Domain returns the observable of a domain name.
func Domain(s string) (Observable, bool) {
	d := strings.TrimSuffix(strings.ToLower(strings.TrimSpace(s)), ".")
	if d == "" || len(d) > 253 || strings.ContainsAny(d, " /\\@:\t\r\n") {
		return Observable{}, false
	}
	return Observable{Class: "domain", Value: d, Given: s}, true
}

// URL returns the observable of a URL and, when it has one, that of its
// host (a domain or an address).
func URL(s string) []Observable {
	s = strings.TrimSpace(s)
	if s == "" || len(s) > maxValue {
		return nil
	}
	v := s
	var host string
	if i := strings.Index(s, "://"); i > 0 {
		rest := s[i+3:]
		end := strings.IndexAny(rest, "/?#")
		if end < 0 {
			end = len(rest)
		}
		v = strings.ToLower(s[:i+3]) + strings.ToLower(rest[:end]) + rest[end:]
		if u, err := url.Parse(v); err == nil {
			host = u.Hostname()
		}
	}
	out := []Observable{{Class: "url", Value: v, Given: s}}
	if host != "" {
		if o, ok := IP(host); ok {
			out = append(out, o)
		} else if o, ok := Domain(host); ok {
			out = append(out, o)
		}
	}
	return out
}

// Email returns the observable of an e-mail address.
func Email(s string) (Observable, bool) {
	e := strings.ToLower(strings.TrimSpace(s))
	at := strings.LastIndexByte(e, '@')
	if at <= 0 || at == len(e)-1 || len(e) > 320 || strings.ContainsAny(e, " \t\r\n") {
		return Observable{}, false
	}
	return Observable{Class: "email", Value: e, Given: s}, true
}

// Hash returns the observable of a hash named alg ("MD5", "SHA-1",
// "SHA-256", "SHA-512", in any case), false for other algorithms and for
// values that are not hex of the algorithm's length.
func Hash(alg, s string) (Observable, bool) {
	h, ok := hashClasses[strings.ReplaceAll(strings.ToUpper(alg), "-", "")]
	v := strings.ToLower(strings.TrimSpace(s))
	if !ok || len(v) != h.hexes {
		return Observable{}, false
	}
	if _, err := hex.DecodeString(v); err != nil {
		return Observable{}, false
	}
	return Observable{Class: h.class, Value: v, Given: s}, true
}

// object holds the properties extraction reads.
type object struct {
	Type        string                    `json:"type"`
	Value       string                    `json:"value"`
	Hashes      map[string]string         `json:"hashes"`
	Pattern     string                    `json:"pattern"`
	PatternType string                    `json:"pattern_type"`
	Labels      []string                  `json:"labels"`
	ObjectRefs  []string                  `json:"object_refs"`
	Objects     map[string]jsontext.Value `json:"objects"` // observed-data, deprecated
}

// Extracted is what Extract found in one object.
type Extracted struct {
	// Observables are in a fixed order for a given object: its pattern's
	// comparisons left to right; an SCO's value, then its hashes by
	// algorithm name; embedded objects by key.
	Observables []Observable
	Labels      []string
	// Refs are the object_refs of observed-data: the caller resolves them
	// (in the same collection) and extracts the SCOs with ExtractSCO.
	Refs []string
}

// Extract returns the observables of one STIX object: those its pattern
// tests for equality (indicators with pattern_type stix), those of an
// SCO, and those of the objects embedded in observed-data. Duplicates are
// removed. An object that is not JSON is an error; one with nothing to
// index returns no observables.
func Extract(raw []byte) (Extracted, error) {
	var o object
	if err := json.Unmarshal(raw, &o); err != nil {
		return Extracted{}, err
	}
	return extractObject(&o), nil
}

// objectMembers are the top-level members object has fields for, in the
// order extractValues takes their values.
var objectMembers = []string{"type", "value", "hashes", "pattern", "pattern_type", "labels", "object_refs", "objects"}

// extractValues is Extract of an object whose members objectMembers have
// the values vals (nil where absent), as stix.Markings.ResolveMembers
// found them: Extract without reading the object again. The object must
// have been scanned as valid JSON (as ResolveMembers does); the values
// are decoded as json.Unmarshal of the whole object decodes them, so that
// the result, and the error for a value of the wrong type, are Extract's.
func extractValues(vals [][]byte) (Extracted, error) {
	var o object
	for i, v := range vals {
		if v == nil {
			continue
		}
		var err error
		switch i {
		case 0:
			err = decodeString(v, &o.Type)
		case 1:
			err = decodeString(v, &o.Value)
		case 2:
			err = json.Unmarshal(v, &o.Hashes)
		case 3:
			err = decodeString(v, &o.Pattern)
		case 4:
			err = decodeString(v, &o.PatternType)
		case 5:
			err = json.Unmarshal(v, &o.Labels)
		case 6:
			err = json.Unmarshal(v, &o.ObjectRefs)
		case 7:
			err = json.Unmarshal(v, &o.Objects)
		}
		if err != nil {
			return Extracted{}, err
		}
	}
	return extractObject(&o), nil
}

// decodeString decodes the JSON value v, part of a scanned valid JSON
// text, into s: a string without escapes is its bytes between the quotes
// (the scan checked its UTF-8 and characters); others are decoded.
func decodeString(v []byte, s *string) error {
	if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' && !bytes.ContainsRune(v[1:len(v)-1], '\\') {
		*s = string(v[1 : len(v)-1])
		return nil
	}
	return json.Unmarshal(v, s)
}

// extractObject is what Extract returns for the object o.
func extractObject(o *object) Extracted {
	var x Extracted
	x.Labels = o.Labels
	var obs []Observable
	switch o.Type {
	case "indicator":
		if o.PatternType == "stix" {
			if p, err := pattern.Parse(o.Pattern); err == nil {
				obs = fromPattern(p)
			}
		}
	case "observed-data":
		x.Refs = o.ObjectRefs
		// In the order of their keys, so that the same object always
		// yields its observables in the same order.
		for _, k := range slices.Sorted(maps.Keys(o.Objects)) {
			var e object
			if json.Unmarshal(o.Objects[k], &e) == nil {
				obs = append(obs, fromSCO(&e)...)
			}
		}
	default:
		obs = fromSCO(o)
	}
	x.Observables = dedup(obs)
	return x
}

// ExtractSCO returns the observables of a cyber-observable object.
func ExtractSCO(raw []byte) []Observable {
	var o object
	if json.Unmarshal(raw, &o) != nil {
		return nil
	}
	return dedup(fromSCO(&o))
}

func fromSCO(o *object) []Observable {
	var out []Observable
	switch o.Type {
	case "ipv4-addr", "ipv6-addr":
		if ob, ok := IP(o.Value); ok {
			out = append(out, ob)
		}
	case "domain-name":
		if ob, ok := Domain(o.Value); ok {
			out = append(out, ob)
		}
	case "url":
		out = append(out, URL(o.Value)...)
	case "email-addr":
		if ob, ok := Email(o.Value); ok {
			out = append(out, ob)
		}
	}
	for _, alg := range slices.Sorted(maps.Keys(o.Hashes)) {
		if ob, ok := Hash(alg, o.Hashes[alg]); ok {
			out = append(out, ob)
		}
	}
	return out
}

// emailPaths are the email-message paths that name an address.
var emailPaths = map[string]bool{
	"from_ref.value": true, "sender_ref.value": true,
	"to_refs[*].value": true, "cc_refs[*].value": true, "bcc_refs[*].value": true,
}

// fromPattern returns the observables a pattern compares for equality
// (=, IN) or, for addresses, network membership (ISSUBSET). Negated
// comparisons and other operators say nothing about a value.
func fromPattern(p *pattern.Pattern) []Observable {
	var out []Observable
	for _, c := range p.Observables() {
		if c.Negated || (c.Op != "=" && c.Op != "IN" && c.Op != "ISSUBSET") {
			continue
		}
		for _, v := range c.Values {
			if v.Kind != pattern.KindString {
				continue
			}
			out = append(out, fromComparison(c.Type, c.Path, c.Op, v.Text)...)
		}
	}
	return out
}

func fromComparison(typ, path, op, s string) []Observable {
	one := func(o Observable, ok bool) []Observable {
		if ok {
			return []Observable{o}
		}
		return nil
	}
	if op == "ISSUBSET" {
		if typ == "ipv4-addr" || typ == "ipv6-addr" || strings.HasSuffix(path, "_ref.value") {
			return one(IP(s))
		}
		return nil
	}
	switch {
	case path == "value" && (typ == "ipv4-addr" || typ == "ipv6-addr"):
		return one(IP(s))
	case path == "value" && typ == "domain-name":
		return one(Domain(s))
	case path == "value" && typ == "url":
		return URL(s)
	case path == "value" && typ == "email-addr":
		return one(Email(s))
	case typ == "email-message" && emailPaths[path]:
		return one(Email(s))
	case typ == "network-traffic" && (path == "src_ref.value" || path == "dst_ref.value"):
		if o, ok := IP(s); ok {
			return []Observable{o}
		}
		return one(Domain(s))
	case strings.HasPrefix(path, "hashes."):
		return one(Hash(strings.Trim(path[len("hashes."):], "'"), s))
	}
	return nil
}

func dedup(obs []Observable) []Observable {
	if len(obs) < 2 {
		return obs
	}
	seen := make(map[[2]string]bool, len(obs))
	out := obs[:0]
	for _, o := range obs {
		k := [2]string{o.Class, o.Value}
		if !seen[k] {
			seen[k] = true
			out = append(out, o)
		}
	}
	return out
}
