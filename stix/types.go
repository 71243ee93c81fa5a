package stix

// class is the kind of STIX object a type name denotes, as far as the common
// properties are concerned (STIX 2.1 §3.2, the table of common properties).
type class uint8

const (
	// classDomain covers SDOs, SROs, language-content, extension-definition
	// and custom objects: spec_version, created and modified are required.
	classDomain class = iota
	// classObservable covers SCOs: spec_version is optional (default "2.1")
	// and there is no created or modified.
	classObservable
	// classMarking is marking-definition: spec_version and created are
	// required, there is no modified.
	classMarking
)

// classOf returns the class of the STIX 2.1 type name typ. Types this
// version of STIX does not define (custom objects) are classDomain; the
// caller refines that for custom SCOs declared through an extension
// definition (see isNewSCO).
func classOf(typ []byte) class {
	switch string(typ) {
	// STIX 2.1 §6: the STIX Cyber-observable Objects.
	case "artifact",
		"autonomous-system",
		"directory",
		"domain-name",
		"email-addr",
		"email-message",
		"file",
		"ipv4-addr",
		"ipv6-addr",
		"mac-addr",
		"mutex",
		"network-traffic",
		"process",
		"software",
		"url",
		"user-account",
		"windows-registry-key",
		"x509-certificate":
		return classObservable
	// STIX 2.1 §7.2.1: marking-definition has created but no modified.
	case "marking-definition":
		return classMarking
	}
	// STIX 2.1 §4 SDOs (attack-pattern, campaign, course-of-action,
	// grouping, identity, incident, indicator, infrastructure, intrusion-set,
	// location, malware, malware-analysis, note, observed-data, opinion,
	// report, threat-actor, tool, vulnerability), §5 SROs (relationship,
	// sighting), §7.1 language-content, §7.3 extension-definition, and
	// custom objects all require spec_version, created and modified.
	return classDomain
}

// isSpecType reports whether typ is a type STIX 2.1 itself defines, whose
// class an extension cannot change.
func isSpecType(typ []byte) bool {
	switch string(typ) {
	case "attack-pattern", "campaign", "course-of-action", "grouping", "identity", "incident",
		"indicator", "infrastructure", "intrusion-set", "location", "malware", "malware-analysis",
		"note", "observed-data", "opinion", "report", "threat-actor", "tool", "vulnerability",
		"relationship", "sighting", "language-content", "marking-definition", "extension-definition":
		return true
	}
	return classOf(typ) != classDomain
}

// typeProblem returns why typ is not a valid STIX 2.1 type name, or "".
//
// STIX 2.1 §3.1: type names are lowercase, begin with a letter, separate
// words with hyphens and are 3–250 characters long; §11.2.1: only a–z, 0–9
// and hyphen, and no hyphen immediately following another. A type name must
// also not end with a hyphen: the identifier form (§2.9) joins type and UUID
// with "--", which a trailing hyphen would make ambiguous, and the OASIS
// JSON schema for identifiers requires the type part to end with a letter or
// digit.
func typeProblem(typ []byte) string {
	if len(typ) < 3 || len(typ) > 250 {
		return "must be 3 to 250 characters long"
	}
	if c := typ[0]; c < 'a' || c > 'z' {
		return "must begin with a lowercase ASCII letter"
	}
	for i, c := range typ {
		switch {
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9':
		case c == '-':
			if typ[i-1] == '-' {
				return `must not contain "--"`
			}
		default:
			return "must contain only lowercase ASCII letters, digits and hyphens"
		}
	}
	if typ[len(typ)-1] == '-' {
		return "must not end with a hyphen"
	}
	return ""
}

// uuidProblem returns why u is not an RFC 4122 UUID as STIX 2.1 §2.9
// requires, or "": 36 characters, hexadecimal in the groups 8-4-4-4-12,
// version 1 to 5 and the RFC 4122 variant (10xx). Upper-case hexadecimal
// is accepted, as RFC 4122 reads it; ids are compared as written, so the
// two spellings of one UUID name two objects.
func uuidProblem(u []byte) string {
	const form = "must be hexadecimal in the form xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx"
	if len(u) != 36 || u[8] != '-' || u[13] != '-' || u[18] != '-' || u[23] != '-' {
		return form
	}
	bad := byte(0)
	for _, c := range u[0:8] {
		bad |= hexDigit[c]
	}
	for _, c := range u[9:13] {
		bad |= hexDigit[c]
	}
	for _, c := range u[14:18] {
		bad |= hexDigit[c]
	}
	for _, c := range u[19:23] {
		bad |= hexDigit[c]
	}
	for _, c := range u[24:36] {
		bad |= hexDigit[c]
	}
	if bad != 0 {
		return form
	}
	if v := u[14]; v < '1' || v > '5' {
		return "must be an RFC 4122 UUID of version 1 to 5"
	}
	switch u[19] {
	case '8', '9', 'a', 'b', 'A', 'B':
	default:
		return "must be an RFC 4122 UUID (variant bits 10)"
	}
	return ""
}

// hexDigit is 0 for the bytes 0-9, a-f and A-F, 1 for all others. (RFC
// 4122 writes UUIDs in lowercase but reads them in either case, and so do
// the OASIS schemas and real data: OASIS's own infrastructure example has
// one in upper case.)
var hexDigit = func() (t [256]byte) {
	for c := range t {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			t[c] = 1
		}
	}
	return t
}()

// splitID splits a STIX identifier "<type>--<UUID>" at its last "--" (a
// UUID holds single hyphens only). ok is false when id has no "--".
func splitID(id []byte) (typ, uuid []byte, ok bool) {
	for i := len(id) - 2; i >= 0; i-- {
		if id[i] == '-' && id[i+1] == '-' {
			return id[:i], id[i+2:], true
		}
	}
	return nil, nil, false
}

// isIdentifier reports whether id is a syntactically valid STIX identifier.
func isIdentifier(id []byte) bool {
	typ, uuid, ok := splitID(id)
	return ok && typeProblem(typ) == "" && uuidProblem(uuid) == ""
}

// IsIdentifier reports whether id is a syntactically valid STIX
// identifier ("<type>--<UUID>").
func IsIdentifier(id string) bool { return isIdentifier([]byte(id)) }
