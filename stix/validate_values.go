package stix

import (
	"encoding/base64"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/go-json-experiment/json/jsontext"
)

// Checkers for the STIX 2.1 data types (§2) and the common nested types
// (external-reference, kill-chain-phase, granular-marking, hashes,
// extensions).

// wrongKind is the problem of a value of the wrong JSON kind.
func wrongKind(want string, v []byte) string {
	return "must be " + want + ", got " + kindName(jsontext.Value(v).Kind())
}

// str accepts any string.
func str(c *vctx, v []byte) string {
	if _, ok := stringValue(v); !ok {
		return wrongKind("a string", v)
	}
	return ""
}

// nonEmptyStr accepts a string of at least one character.
func nonEmptyStr(c *vctx, v []byte) string {
	s, ok := stringValue(v)
	if !ok {
		return wrongKind("a string", v)
	}
	if len(s) == 0 {
		return "must not be empty"
	}
	return ""
}

// boolean accepts true and false.
func boolean(c *vctx, v []byte) string {
	if k := jsontext.Value(v).Kind(); k != 't' && k != 'f' {
		return wrongKind("a boolean", v)
	}
	return ""
}

// integer returns a checker for integers in [min, max].
func integer(min, max int64) check {
	return func(c *vctx, v []byte) string {
		n, ok := intValue(v)
		if !ok {
			if jsontext.Value(v).Kind() == '0' {
				return "must be an integer, got " + quoteValue(v)
			}
			return wrongKind("an integer", v)
		}
		if n < min || n > max {
			return fmt.Sprintf("must be between %d and %d, got %d", min, max, n)
		}
		return ""
	}
}

// nonNegative accepts integers from 0.
var nonNegative = integer(0, maxInt)

// anyInt accepts any STIX integer.
var anyInt = integer(-maxInt, maxInt)

// number returns a checker for numbers in [min, max].
func number(min, max float64) check {
	return func(c *vctx, v []byte) string {
		f, ok := floatValue(v)
		if !ok {
			return wrongKind("a number", v)
		}
		if f < min || f > max {
			return fmt.Sprintf("must be between %g and %g, got %s", min, max, v)
		}
		return ""
	}
}

// timestampCheck accepts a STIX timestamp of any precision (§2.16).
func timestampCheck(c *vctx, v []byte) string {
	s, ok := stringValue(v)
	if !ok {
		return wrongKind("a string", v)
	}
	if _, _, p := parseTimestamp(s); p != "" {
		return p + ", got " + quoteValue(s)
	}
	return ""
}

// timeOf returns the raw timestamp v, if it is one.
func timeOf(v []byte) (time.Time, bool) {
	s, ok := stringValue(v)
	if !ok {
		return time.Time{}, false
	}
	t, _, p := parseTimestamp(s)
	return t, p == ""
}

// list returns a checker for a non-empty list (§2.8: lists must not be
// empty) whose elements pass elem.
func list(elem check) check {
	return func(c *vctx, v []byte) string {
		if k := jsontext.Value(v).Kind(); k != '[' {
			return wrongKind("a list", v)
		}
		it := newArrayIter(v)
		i := 0
		for e := it.next(); e != nil; e = it.next() {
			if p := elem(c, e); p != "" {
				return atIndex(i, p)
			}
			i++
		}
		if i == 0 {
			return "must not be empty"
		}
		return ""
	}
}

var (
	strList         = list(str)
	nonEmptyStrList = list(nonEmptyStr)
)

// enum returns a checker for a string from a closed vocabulary (an
// enumeration the specification says MUST be used).
func enum(values ...string) check {
	set := make(map[string]bool, len(values))
	for _, s := range values {
		set[s] = true
	}
	msg := `must be one of "` + strings.Join(values, `", "`) + `"`
	return func(c *vctx, v []byte) string {
		s, ok := stringValue(v)
		if !ok {
			return wrongKind("a string", v)
		}
		if !set[string(s)] {
			return msg + ", got " + quoteValue(s)
		}
		return ""
	}
}

// refKind classifies the type of a referenced object.
type refKind func(typ string) bool

// ref returns a checker for an identifier whose type satisfies ok; what
// names the allowed types in messages ("an identity").
func ref(what string, ok refKind) check {
	return func(c *vctx, v []byte) string {
		s, isStr := stringValue(v)
		if !isStr {
			return wrongKind("an identifier", v)
		}
		typ, uuid, split := splitID(s)
		if !split || typeProblem(typ) != "" || uuidProblem(uuid) != "" {
			return "must be an identifier <type>--<UUID> with a lowercase RFC 4122 UUID, got " + quoteValue(s)
		}
		if ok != nil && !ok(string(typ)) {
			return "must reference " + what + ", got " + quoteValue(s)
		}
		return ""
	}
}

// refTo returns a checker for an identifier of one of types.
func refTo(types ...string) check {
	what := types[len(types)-1]
	if len(types) > 1 {
		what = strings.Join(types[:len(types)-1], ", ") + " or " + what
	}
	if strings.IndexByte("aeio", types[0][0]) >= 0 {
		what = "an " + what
	} else {
		what = "a " + what
	}
	return ref(what, func(t string) bool {
		for _, want := range types {
			if t == want {
				return true
			}
		}
		return false
	})
}

// The classes of referenced types. Types STIX does not define are custom
// objects whose class the reference alone does not tell: they are allowed
// wherever an SDO or an SCO is.
var (
	anyRef = ref("an object", nil)
	// notSDOTarget: SROs, meta objects and bundles.
	sdoOrSCO = ref("an SDO or SCO", func(t string) bool { return !isNonGraphType(t) })
	sdoRef   = ref("an SDO", func(t string) bool { return !isNonGraphType(t) && classOf([]byte(t)) != classObservable })
	scoRef   = ref("an SCO", func(t string) bool {
		return classOf([]byte(t)) == classObservable || !isSpecType([]byte(t)) && t != "bundle"
	})
	identityRef = refTo("identity")
	markingRef  = refTo("marking-definition")
)

// isNonGraphType reports whether objects of type t cannot be the source or
// target of a relationship: SROs, meta objects and bundles.
func isNonGraphType(t string) bool {
	switch t {
	case "relationship", "sighting", "marking-definition", "language-content", "extension-definition", "bundle":
		return true
	}
	return false
}

// dictKeyProblem returns why k is not a valid dictionary key (STIX 2.1
// §2.6: 1 to 250 ASCII characters a–z, A–Z, 0–9, hyphen and underscore), or
// "".
func dictKeyProblem(k []byte) string {
	if len(k) == 0 || len(k) > 250 {
		return "dictionary keys must be 1 to 250 characters long"
	}
	for _, ch := range k {
		if !('a' <= ch && ch <= 'z' || 'A' <= ch && ch <= 'Z' || '0' <= ch && ch <= '9' || ch == '-' || ch == '_') {
			return "dictionary keys must contain only a–z, A–Z, 0–9, hyphen and underscore"
		}
	}
	return ""
}

// dict returns a checker for a dictionary (§2.6) whose values pass val
// (any value when val is nil).
func dict(val check) check {
	return func(c *vctx, v []byte) string {
		if k := jsontext.Value(v).Kind(); k != '{' {
			return wrongKind("a dictionary", v)
		}
		fields := readFields(nil, v)
		if len(fields) == 0 {
			return "must not be empty"
		}
		for _, f := range fields {
			if p := dictKeyProblem(f.name); p != "" {
				return "." + quoteIfOdd(string(f.name)) + ": " + p
			}
			if val != nil {
				if p := val(c, f.val); p != "" {
					return at("."+string(f.name), p)
				}
			}
		}
		return ""
	}
}

// hexCheck accepts the hex type (§2.5): an even number of hexadecimal
// characters.
func hexCheck(c *vctx, v []byte) string {
	s, ok := stringValue(v)
	if !ok {
		return wrongKind("a string", v)
	}
	if !isHex(s) || len(s)%2 != 0 {
		return "must be an even number of hexadecimal characters, got " + quoteValue(s)
	}
	return ""
}

// isHex reports whether s is all hexadecimal digits.
func isHex(s []byte) bool {
	for _, ch := range s {
		if !('0' <= ch && ch <= '9' || 'a' <= ch && ch <= 'f' || 'A' <= ch && ch <= 'F') {
			return false
		}
	}
	return true
}

// binaryCheck accepts the binary type (§2.1): base64 as RFC 4648 §4.
func binaryCheck(c *vctx, v []byte) string {
	s, ok := stringValue(v)
	if !ok {
		return wrongKind("a string", v)
	}
	if _, err := base64.StdEncoding.Strict().DecodeString(string(s)); err != nil {
		return "must be base64 (RFC 4648 §4)"
	}
	return ""
}

// urlCheck accepts a URL as RFC 3986 defines it: a scheme, ":", and the
// rest made of the characters a URI may hold, with valid percent-encoding.
// Square brackets are allowed only around an IP literal host. Defanged
// values ("hxxp://evil[.]com", "evil[.]com") fail.
func urlCheck(c *vctx, v []byte) string {
	s, ok := stringValue(v)
	if !ok {
		return wrongKind("a string", v)
	}
	if p := urlProblem(s); p != "" {
		return "must be a URL per RFC 3986: " + p + ", got " + quoteValue(s)
	}
	return ""
}

// urlProblem returns why s is not an RFC 3986 URI, or "".
func urlProblem(s []byte) string {
	colon := -1
	for i, ch := range s {
		if ch == ':' {
			colon = i
			break
		}
		if !('a' <= ch && ch <= 'z' || 'A' <= ch && ch <= 'Z' || i > 0 && ('0' <= ch && ch <= '9' || ch == '+' || ch == '-' || ch == '.')) {
			break
		}
	}
	if colon <= 0 {
		return "no scheme"
	}
	rest := s[colon+1:]
	// The host of the authority may be an IP literal in brackets.
	hostStart, hostEnd := -1, -1
	if len(rest) >= 2 && rest[0] == '/' && rest[1] == '/' {
		end := 2
		for end < len(rest) && rest[end] != '/' && rest[end] != '?' && rest[end] != '#' {
			end++
		}
		auth := rest[2:end]
		host := 2
		if at := lastIndexByte(auth, '@'); at >= 0 {
			host += at + 1
		}
		if host < end && rest[host] == '[' {
			hostStart = host
			for i := host; i < end; i++ {
				if rest[i] == ']' {
					hostEnd = i
					break
				}
			}
			if hostEnd < 0 {
				return "unclosed IP literal"
			}
		}
	}
	for i := 0; i < len(rest); i++ {
		ch := rest[i]
		switch {
		case 'a' <= ch && ch <= 'z', 'A' <= ch && ch <= 'Z', '0' <= ch && ch <= '9':
		case strings.IndexByte("-._~:/?#@!$&'()*+,;=", ch) >= 0:
		case ch == '%':
			if i+2 >= len(rest) || !isHex(rest[i+1:i+3]) {
				return "invalid percent-encoding"
			}
			i += 2
		case ch == '[' && i == hostStart, ch == ']' && i == hostEnd:
		case ch == ' ':
			return "spaces must be percent-encoded"
		case ch == '[' || ch == ']':
			return "square brackets are only allowed around an IP literal host (defanged?)"
		default:
			return fmt.Sprintf("character %q is not allowed", rune(ch))
		}
	}
	return ""
}

// lastIndexByte returns the index of the last c in b, or -1.
func lastIndexByte(b []byte, c byte) int {
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] == c {
			return i
		}
	}
	return -1
}

// langCheck accepts an RFC 5646 language tag, checked for its shape:
// subtags of 1 to 8 ASCII letters or digits separated by hyphens, the
// first of letters only.
func langCheck(c *vctx, v []byte) string {
	s, ok := stringValue(v)
	if !ok {
		return wrongKind("a string", v)
	}
	if !isLangTag(s) {
		return "must be an RFC 5646 language tag, got " + quoteValue(s)
	}
	return ""
}

// isLangTag reports whether s has the shape of an RFC 5646 language tag.
func isLangTag(s []byte) bool {
	n, first := 0, true
	for i := 0; i <= len(s); i++ {
		if i == len(s) || s[i] == '-' {
			if n == 0 || n > 8 {
				return false
			}
			n, first = 0, false
			continue
		}
		ch := s[i]
		letter := 'a' <= ch && ch <= 'z' || 'A' <= ch && ch <= 'Z'
		if !letter && (first || ch < '0' || ch > '9') {
			return false
		}
		n++
	}
	return true
}

// --- hashes (§2.7) -------------------------------------------------------

// hashFormats gives the hex length of the algorithms of hash-algorithm-ov
// with a fixed-size digest; SSDEEP and TLSH values need only be non-empty.
var hashFormats = map[string]int{
	"MD5": 32, "SHA-1": 40, "SHA-256": 64, "SHA-512": 128, "SHA3-256": 64, "SHA3-512": 128,
	"SSDEEP": 0, "TLSH": 0,
}

// hashes accepts the hashes type: a non-empty dictionary whose keys are 3
// to 250 characters of a–z, A–Z, 0–9, hyphen and underscore, naming the
// algorithm, and whose values are strings "in the appropriate format defined
// by the hash type". For the algorithms of hash-algorithm-ov that is
// checked (hexadecimal digests of the algorithm's length); a key that
// differs from a vocabulary name only in letter case ("sha-256") is
// rejected, since the vocabulary's names are case-sensitive and such a key
// would otherwise escape the format check. Other keys are custom
// algorithms, accepted with any non-empty string.
func hashes(c *vctx, v []byte) string {
	if k := jsontext.Value(v).Kind(); k != '{' {
		return wrongKind("a dictionary of hashes", v)
	}
	fields := readFields(nil, v)
	if len(fields) == 0 {
		return "must not be empty"
	}
	for _, f := range fields {
		name := string(f.name)
		if p := dictKeyProblem(f.name); p != "" || len(name) < 3 {
			if p == "" {
				p = "hash algorithm names must be at least 3 characters long"
			}
			return "." + quoteIfOdd(name) + ": " + p
		}
		s, ok := stringValue(f.val)
		if !ok {
			return at("."+name, wrongKind("a string", f.val))
		}
		size, known := hashFormats[name]
		if !known {
			for vocab := range hashFormats {
				if strings.EqualFold(vocab, name) {
					return "." + name + `: hash algorithm names from hash-algorithm-ov are case-sensitive: use "` + vocab + `"`
				}
			}
		}
		switch {
		case len(s) == 0:
			return "." + name + ": must not be empty"
		case size > 0 && (len(s) != size || !isHex(s)):
			return fmt.Sprintf(".%s: must be %d hexadecimal characters, got %s", name, size, quoteValue(s))
		}
	}
	return ""
}

// --- common nested types -------------------------------------------------

// killChainPhases is a list of the kill-chain-phase type (§2.13).
var killChainPhases = list(object(&rules{
	props:    map[string]check{"kill_chain_name": str, "phase_name": str},
	required: []string{"kill_chain_name", "phase_name"},
}))

// externalReferences is a list of the external-reference type (§2.10):
// source_name is required, with at least one of description, url or
// external_id; "capec" and "cve" sources need an external_id of their
// form.
var externalReferences = list(object(&rules{
	props: map[string]check{
		"source_name": str, "description": str, "url": urlCheck,
		"hashes": hashes, "external_id": str,
	},
	required: []string{"source_name"},
	checks: []objCheck{
		requireOne("description", "url", "external_id"),
		externalIDForm,
	},
}))

// externalIDForm checks the external_id of the capec and cve sources
// (§2.10: CAPEC-[id], CVE-YYYY-NNNN).
func externalIDForm(c *vctx, o *fieldSet) string {
	src, _ := stringValue(o.get("source_name"))
	var ok func([]byte) bool
	var form string
	switch string(src) {
	case "capec":
		ok, form = isCAPECID, "CAPEC-<number>"
	case "cve":
		ok, form = isCVEID, "CVE-<year>-<number of 4 or more digits>"
	default:
		return ""
	}
	id := o.get("external_id")
	if id == nil {
		return "external_id: required when source_name is " + quoteValue(src)
	}
	s, _ := stringValue(id)
	if !ok(s) {
		return "external_id: must be " + form + " when source_name is " + quoteValue(src) + ", got " + quoteValue(s)
	}
	return ""
}

// isCAPECID reports whether s is "CAPEC-" and digits.
func isCAPECID(s []byte) bool {
	rest, ok := strings.CutPrefix(string(s), "CAPEC-")
	return ok && len(rest) > 0 && allDigits(rest)
}

// isCVEID reports whether s is a CVE id: CVE-YYYY-NNNN with four or more
// digits, no leading zero in five or more.
func isCVEID(s []byte) bool {
	rest, ok := strings.CutPrefix(string(s), "CVE-")
	if !ok || len(rest) < 9 || rest[4] != '-' || !allDigits(rest[:4]) {
		return false
	}
	seq := rest[5:]
	return allDigits(seq) && (len(seq) == 4 || seq[0] != '0')
}

// allDigits reports whether s is all ASCII digits.
func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// granularMarkings is a list of the granular-marking type (§7.2.3):
// selectors are required, and exactly one of marking_ref and lang.
// Whether each selector selects something in the object is checked by
// selectorsResolve.
var granularMarkings = list(object(&rules{
	props: map[string]check{
		"selectors":   nonEmptyStrList,
		"marking_ref": markingRef,
		"lang":        langCheck,
	},
	required: []string{"selectors"},
	checks:   []objCheck{requireOne("marking_ref", "lang"), exclusive("marking_ref", "lang")},
}))

// selectorsResolve checks that every selector of every granular marking
// selects a property or list item of the object (§7.2.3.1), so that the
// marking applies to what its producer meant; a dangling selector would
// leave the content it was meant to restrict unmarked.
func selectorsResolve(c *vctx, o *fieldSet) string {
	gm := o.get("granular_markings")
	if gm == nil {
		return ""
	}
	markings := newArrayIter(gm)
	for i, m := 0, markings.next(); m != nil; i, m = i+1, markings.next() {
		var sels []byte
		for _, f := range readFields(nil, m) {
			if string(f.name) == "selectors" {
				sels = f.val
			}
		}
		it := newArrayIter(sels)
		for j, s := 0, it.next(); s != nil; j, s = j+1, it.next() {
			sel, _ := stringValue(s)
			if !selects(c.raw, string(sel)) {
				return fmt.Sprintf("granular_markings[%d].selectors[%d]: %s does not select any property of the object", i, j, quoteValue(sel))
			}
		}
	}
	return ""
}

// selects reports whether the selector sel (STIX 2.1 §7.2.3.1: property
// names and list indexes "[n]" joined by ".") selects content in the JSON
// value v.
func selects(v []byte, sel string) bool {
	if sel == "" {
		return false
	}
	for seg := range strings.SplitSeq(sel, ".") {
		switch kind := jsontext.Value(v).Kind(); {
		case kind == '[' && len(seg) > 2 && seg[0] == '[' && seg[len(seg)-1] == ']' && allDigits(seg[1:len(seg)-1]):
			n := 0
			for _, d := range seg[1 : len(seg)-1] {
				n = n*10 + int(d-'0')
				if n > 1<<20 {
					return false
				}
			}
			it := newArrayIter(v)
			e := it.next()
			for ; e != nil && n > 0; n-- {
				e = it.next()
			}
			if e == nil {
				return false
			}
			v = e
		case kind == '{':
			var next []byte
			for _, f := range readFields(nil, v) {
				if string(f.name) == seg {
					next = f.val
					break
				}
			}
			if next == nil {
				return false
			}
			v = next
		default:
			return false
		}
	}
	return true
}

// --- IP, MAC, domain and e-mail values ---------------------------------

// ipValue returns a checker for ipv4-addr or ipv6-addr values (§6.8, §6.9):
// one address, or a CIDR block.
func ipValue(v6 bool) check {
	return func(c *vctx, v []byte) string {
		s, ok := stringValue(v)
		if !ok {
			return wrongKind("a string", v)
		}
		want := "an IPv4 address or CIDR block"
		if v6 {
			want = "an IPv6 address or CIDR block"
		}
		var addr netip.Addr
		var err error
		if strings.IndexByte(string(s), '/') >= 0 {
			var p netip.Prefix
			p, err = netip.ParsePrefix(string(s))
			addr = p.Addr()
		} else {
			addr, err = netip.ParseAddr(string(s))
		}
		if err != nil || addr.Zone() != "" || addr.Is4() == v6 {
			return "must be " + want + ", got " + quoteValue(s)
		}
		return ""
	}
}

// macValue accepts a mac-addr value (§6.10): a colon-delimited, lowercase
// MAC-48 address with leading zeros.
func macValue(c *vctx, v []byte) string {
	s, ok := stringValue(v)
	if !ok {
		return wrongKind("a string", v)
	}
	valid := len(s) == 17
	for i := 0; valid && i < 17; i++ {
		if i%3 == 2 {
			valid = s[i] == ':'
		} else {
			valid = '0' <= s[i] && s[i] <= '9' || 'a' <= s[i] && s[i] <= 'f'
		}
	}
	if !valid {
		return "must be a lowercase, colon-delimited MAC-48 address (00:00:5e:00:53:01), got " + quoteValue(s)
	}
	return ""
}

// domainValue accepts a domain name (§6.4: RFC 1034, labels per RFC
// 5890): dot-separated labels of 1 to 63 bytes, at most 253 bytes, of
// letters, digits, hyphens, underscores or non-ASCII (U-label) characters.
func domainValue(c *vctx, v []byte) string {
	s, ok := stringValue(v)
	if !ok {
		return wrongKind("a string", v)
	}
	d := strings.TrimSuffix(string(s), ".")
	valid := len(d) > 0 && len(d) <= 253
	for label := range strings.SplitSeq(d, ".") {
		if !valid {
			break
		}
		valid = len(label) > 0 && len(label) <= 63
		for i := 0; valid && i < len(label); i++ {
			ch := label[i]
			valid = 'a' <= ch && ch <= 'z' || 'A' <= ch && ch <= 'Z' || '0' <= ch && ch <= '9' || ch == '-' || ch == '_' || ch >= 0x80
		}
	}
	if !valid {
		return "must be a domain name (RFC 1034, RFC 5890), got " + quoteValue(s)
	}
	return ""
}

// emailValue accepts one e-mail address (§6.5, RFC 5322 addr-spec),
// checked for its shape: a local part, "@", a domain, no spaces.
func emailValue(c *vctx, v []byte) string {
	s, ok := stringValue(v)
	if !ok {
		return wrongKind("a string", v)
	}
	at := lastIndexByte(s, '@')
	if at <= 0 || at == len(s)-1 || strings.ContainsAny(string(s), " \t\r\n<>") {
		return "must be a single e-mail address (RFC 5322 addr-spec), got " + quoteValue(s)
	}
	return ""
}
