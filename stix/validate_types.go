package stix

import (
	"maps"
	"strings"
)

// The rule tables of every STIX 2.1 object type. Open vocabularies (the
// "-ov" types) accept any string, as the specification only says SHOULD
// for them; enumerations (the "-enum" types) and the value sets the
// specification says MUST for are checked.

// commonProps are the common properties (§3.2) with their checkers. type,
// id, spec_version, created and modified were checked before (validate in
// object.go). They apply to every object that has them: the specification
// gives SCOs only a subset, and a SCO carrying, say, created_by_ref uses
// the property with its STIX meaning.
var commonProps = map[string]check{
	"type":                skip,
	"id":                  skip,
	"spec_version":        skip,
	"created":             skip,
	"modified":            skip,
	"created_by_ref":      identityRef,
	"revoked":             boolean,
	"labels":              nonEmptyStrList,
	"confidence":          integer(0, 100),
	"lang":                langCheck,
	"external_references": externalReferences,
	"object_marking_refs": list(markingRef),
	"granular_markings":   granularMarkings,
	"defanged":            boolean,
	"extensions":          extensions,
}

// skip accepts anything: for members checked elsewhere.
func skip(*vctx, []byte) string { return "" }

// commonChecks apply to every object.
var commonChecks = []objCheck{selectorsResolve}

// def builds a typeDef from the common properties and props.
func def(props map[string]check, required []string, checks ...objCheck) *typeDef {
	all := maps.Clone(commonProps)
	maps.Copy(all, props)
	return &typeDef{rules: rules{
		props:    all,
		required: required,
		checks:   append(append([]objCheck(nil), commonChecks...), checks...),
		custom:   true,
	}}
}

// sco builds the typeDef of a STIX-defined SCO with its ID contributing
// properties.
func sco(props map[string]check, required []string, idProps []string, checks ...objCheck) *typeDef {
	d := def(props, required, checks...)
	d.scoIDProps = idProps
	return d
}

// Custom objects: the common properties, and custom properties for the
// rest.
var (
	customDomain     = def(nil, nil)
	customObservable = def(nil, nil)
)

// Reference checkers used by several types.
var (
	anyRefs      = list(anyRef)
	softwareRef  = refTo("software")
	softwareRefs = list(softwareRef)
	fileRef      = refTo("file")
	artifactRef  = refTo("artifact")
	userRef      = refTo("user-account")
	emailRef     = refTo("email-addr")
	emailRefs    = list(emailRef)
	trafficRef   = refTo("network-traffic")
	processRef   = refTo("process")
)

// Common SDO property sets.
var (
	seen = map[string]check{"first_seen": timestampCheck, "last_seen": timestampCheck}
)

// with merges property maps.
func with(ms ...map[string]check) map[string]check {
	all := map[string]check{}
	for _, m := range ms {
		maps.Copy(all, m)
	}
	return all
}

// typeDefs holds the rules of every type STIX 2.1 defines.
var typeDefs = map[string]*typeDef{
	// §4 STIX Domain Objects.
	"attack-pattern": def(map[string]check{
		"name": str, "description": str, "aliases": strList, "kill_chain_phases": killChainPhases,
	}, []string{"name"}),
	"campaign": def(with(seen, map[string]check{
		"name": str, "description": str, "aliases": strList, "objective": str,
	}), []string{"name"}, order("first_seen", "last_seen", false)),
	"course-of-action": def(map[string]check{"name": str, "description": str}, []string{"name"}),
	"grouping": def(map[string]check{
		"name": str, "description": str, "context": str, "object_refs": anyRefs,
	}, []string{"context", "object_refs"}),
	"identity": def(map[string]check{
		"name": str, "description": str, "roles": strList, "identity_class": str,
		"sectors": strList, "contact_information": str,
	}, []string{"name"}),
	"incident": def(map[string]check{
		"name": str, "description": str, "kill_chain_phases": killChainPhases,
	}, []string{"name"}),
	"indicator": def(map[string]check{
		"name": str, "description": str, "indicator_types": strList,
		"pattern": nonEmptyStr, "pattern_type": nonEmptyStr, "pattern_version": str,
		"valid_from": timestampCheck, "valid_until": timestampCheck,
		"kill_chain_phases": killChainPhases,
	}, []string{"pattern", "pattern_type", "valid_from"}, order("valid_from", "valid_until", true)),
	"infrastructure": def(with(seen, map[string]check{
		"name": str, "description": str, "infrastructure_types": strList, "aliases": strList,
		"kill_chain_phases": killChainPhases,
	}), []string{"name"}, order("first_seen", "last_seen", false)),
	"intrusion-set": def(with(seen, map[string]check{
		"name": str, "description": str, "aliases": strList, "goals": strList,
		"resource_level": str, "primary_motivation": str, "secondary_motivations": strList,
	}), []string{"name"}, order("first_seen", "last_seen", false)),
	"location": def(map[string]check{
		"name": str, "description": str,
		"latitude": number(-90, 90), "longitude": number(-180, 180), "precision": number(0, 1e300),
		"region": str, "country": str, "administrative_area": str, "city": str,
		"street_address": str, "postal_code": str,
	}, nil,
		requireOne("region", "country", "latitude"),
		requires("latitude", "longitude"), requires("longitude", "latitude"),
		requires("precision", "latitude")),
	"malware": def(with(seen, map[string]check{
		"name": str, "description": str, "malware_types": strList, "is_family": boolean,
		"aliases": strList, "kill_chain_phases": killChainPhases,
		"operating_system_refs":       softwareRefs,
		"architecture_execution_envs": strList, "implementation_languages": strList,
		"capabilities": strList, "sample_refs": list(refTo("file", "artifact")),
	}), []string{"is_family"}, order("first_seen", "last_seen", false), familyName),
	"malware-analysis": def(map[string]check{
		"product": str, "version": str, "host_vm_ref": softwareRef,
		"operating_system_ref": softwareRef, "installed_software_refs": softwareRefs,
		"configuration_version": str, "modules": strList, "analysis_engine_version": str,
		"analysis_definition_version": str, "submitted": timestampCheck,
		"analysis_started": timestampCheck, "analysis_ended": timestampCheck,
		"result_name": str, "result": str, "analysis_sco_refs": list(scoRef),
		"sample_ref": refTo("file", "network-traffic", "artifact"),
	}, []string{"product"}, requireOne("result", "analysis_sco_refs")),
	"note": def(map[string]check{
		"abstract": str, "content": str, "authors": strList, "object_refs": anyRefs,
	}, []string{"content", "object_refs"}),
	"observed-data": def(map[string]check{
		"first_observed": timestampCheck, "last_observed": timestampCheck,
		"number_observed": integer(1, 999_999_999),
		"objects":         dict(nil), "object_refs": observedRefs,
	}, []string{"first_observed", "last_observed", "number_observed"},
		order("first_observed", "last_observed", false),
		requireOne("object_refs", "objects"), exclusive("object_refs", "objects")),
	"opinion": def(map[string]check{
		"explanation": str, "authors": strList,
		"opinion":     enum("strongly-disagree", "disagree", "neutral", "agree", "strongly-agree"),
		"object_refs": anyRefs,
	}, []string{"opinion", "object_refs"}),
	"report": def(map[string]check{
		"name": str, "description": str, "report_types": strList,
		"published": timestampCheck, "object_refs": anyRefs,
	}, []string{"name", "published", "object_refs"}),
	"threat-actor": def(with(seen, map[string]check{
		"name": str, "description": str, "threat_actor_types": strList, "aliases": strList,
		"roles": strList, "goals": strList, "sophistication": str, "resource_level": str,
		"primary_motivation": str, "secondary_motivations": strList, "personal_motivations": strList,
	}), []string{"name"}, order("first_seen", "last_seen", false)),
	"tool": def(map[string]check{
		"name": str, "description": str, "tool_types": strList, "aliases": strList,
		"kill_chain_phases": killChainPhases, "tool_version": str,
	}, []string{"name"}),
	"vulnerability": def(map[string]check{"name": str, "description": str}, []string{"name"}),

	// §5 STIX Relationship Objects.
	"relationship": def(map[string]check{
		"relationship_type": relationshipType, "description": str,
		"source_ref": sdoOrSCO, "target_ref": sdoOrSCO,
		"start_time": timestampCheck, "stop_time": timestampCheck,
	}, []string{"relationship_type", "source_ref", "target_ref"}, order("start_time", "stop_time", true)),
	"sighting": def(with(seen, map[string]check{
		"description": str, "count": integer(0, 999_999_999),
		"sighting_of_ref":    sdoRef,
		"observed_data_refs": list(refTo("observed-data")),
		"where_sighted_refs": list(refTo("identity", "location")),
		"summary":            boolean,
	}), []string{"sighting_of_ref"}, order("first_seen", "last_seen", false)),

	// §6 STIX Cyber-observable Objects.
	"artifact": sco(map[string]check{
		"mime_type": str, "payload_bin": binaryCheck, "url": urlCheck, "hashes": hashes,
		"encryption_algorithm": enum("AES-256-GCM", "ChaCha20-Poly1305", "mime-type-indicated"),
		"decryption_key":       str,
	}, nil, []string{"hashes", "payload_bin"},
		requireOne("payload_bin", "url"), exclusive("payload_bin", "url"), requires("url", "hashes")),
	"autonomous-system": sco(map[string]check{
		"number": integer(0, 1<<32-1), "name": str, "rir": str,
	}, []string{"number"}, []string{"number"}),
	"directory": sco(map[string]check{
		"path": str, "path_enc": str, "ctime": timestampCheck, "mtime": timestampCheck,
		"atime": timestampCheck, "contains_refs": list(refTo("file", "directory")),
	}, []string{"path"}, []string{"path"}),
	"domain-name": sco(map[string]check{
		"value": domainValue, "resolves_to_refs": list(refTo("ipv4-addr", "ipv6-addr", "domain-name")),
	}, []string{"value"}, []string{"value"}),
	"email-addr": sco(map[string]check{
		"value": emailValue, "display_name": str, "belongs_to_ref": userRef,
	}, []string{"value"}, []string{"value"}),
	"email-message": sco(map[string]check{
		"is_multipart": boolean, "date": timestampCheck, "content_type": str,
		"from_ref": emailRef, "sender_ref": emailRef,
		"to_refs": emailRefs, "cc_refs": emailRefs, "bcc_refs": emailRefs,
		"message_id": str, "subject": str, "received_lines": strList,
		"additional_header_fields": dict(strOrStrList), "body": str,
		"body_multipart": list(object(&rules{
			props: map[string]check{
				"body": str, "body_raw_ref": refTo("artifact", "file"),
				"content_type": str, "content_disposition": str,
			},
			checks: []objCheck{requireOne("body", "body_raw_ref"), exclusive("body", "body_raw_ref")},
		})),
		"raw_email_ref": artifactRef,
	}, []string{"is_multipart"}, []string{"from_ref", "subject", "body"}, multipart),
	"file": sco(map[string]check{
		"hashes": hashes, "size": nonNegative, "name": str, "name_enc": str,
		"magic_number_hex": hexCheck, "mime_type": str,
		"ctime": timestampCheck, "mtime": timestampCheck, "atime": timestampCheck,
		"parent_directory_ref": refTo("directory"), "contains_refs": list(scoRef),
		"content_ref": artifactRef,
	}, nil, []string{"hashes", "name", "extensions", "parent_directory_ref"}, requireOne("hashes", "name")),
	"ipv4-addr": sco(map[string]check{
		"value": ipValue(false), "resolves_to_refs": list(refTo("mac-addr")),
		"belongs_to_refs": list(refTo("autonomous-system")),
	}, []string{"value"}, []string{"value"}),
	"ipv6-addr": sco(map[string]check{
		"value": ipValue(true), "resolves_to_refs": list(refTo("mac-addr")),
		"belongs_to_refs": list(refTo("autonomous-system")),
	}, []string{"value"}, []string{"value"}),
	"mac-addr": sco(map[string]check{"value": macValue}, []string{"value"}, []string{"value"}),
	"mutex":    sco(map[string]check{"name": str}, []string{"name"}, []string{"name"}),
	"network-traffic": sco(map[string]check{
		"start": timestampCheck, "end": timestampCheck, "is_active": boolean,
		"src_ref": endpointRef, "dst_ref": endpointRef,
		"src_port": integer(0, 65535), "dst_port": integer(0, 65535),
		"protocols": strList, "src_byte_count": nonNegative, "dst_byte_count": nonNegative,
		"src_packets": nonNegative, "dst_packets": nonNegative, "ipfix": dict(strOrInt),
		"src_payload_ref": artifactRef, "dst_payload_ref": artifactRef,
		"encapsulates_refs": list(trafficRef), "encapsulated_by_ref": trafficRef,
	}, []string{"protocols"},
		[]string{"start", "end", "src_ref", "dst_ref", "src_port", "dst_port", "protocols", "extensions"},
		requireOne("src_ref", "dst_ref"), order("start", "end", false), activeHasNoEnd),
	"process": sco(processProps, nil, nil, atLeastOneProperty(sortedKeys(processProps)...)),
	"software": sco(map[string]check{
		"name": str, "cpe": str, "swid": str, "languages": strList, "vendor": str, "version": str,
	}, []string{"name"}, []string{"name", "cpe", "swid", "vendor", "version"}),
	"url": sco(map[string]check{"value": urlCheck}, []string{"value"}, []string{"value"}),
	"user-account": sco(userAccountProps, nil, []string{"account_type", "user_id", "account_login"},
		atLeastOneProperty(sortedKeys(userAccountProps)...)),
	"windows-registry-key": sco(registryProps, nil, []string{"key", "values"},
		atLeastOneProperty(sortedKeys(registryProps)...)),
	"x509-certificate": sco(x509Props, nil, []string{"hashes", "serial_number"},
		atLeastOneProperty(sortedKeys(x509Props)...)),

	// §7 STIX Meta Objects.
	"language-content": def(map[string]check{
		"object_ref": anyRef, "object_modified": timestampCheck,
		"contents": dict(dict(nil)),
	}, []string{"object_ref", "contents"}),
	"marking-definition": def(map[string]check{
		"name": str, "definition_type": str, "definition": skip,
	}, nil, markingDefinition),
	"extension-definition": def(map[string]check{
		"name": str, "description": str, "schema": str, "version": str,
		"extension_types":      list(extensionType),
		"extension_properties": strList,
	}, []string{"created_by_ref", "name", "schema", "version", "extension_types"}, extensionProperties),
}

var (
	processProps = map[string]check{
		"is_hidden": boolean, "pid": anyInt, "created_time": timestampCheck, "cwd": str,
		"command_line": str, "environment_variables": dict(str),
		"opened_connection_refs": list(trafficRef), "creator_user_ref": userRef,
		"image_ref": fileRef, "parent_ref": processRef, "child_refs": list(processRef),
	}
	userAccountProps = map[string]check{
		"user_id": str, "credential": str, "account_login": str, "account_type": str,
		"display_name": str, "is_service_account": boolean, "is_privileged": boolean,
		"can_escalate_privs": boolean, "is_disabled": boolean,
		"account_created": timestampCheck, "account_expires": timestampCheck,
		"credential_last_changed": timestampCheck, "account_first_login": timestampCheck,
		"account_last_login": timestampCheck,
	}
	registryProps = map[string]check{
		"key": str,
		"values": list(object(&rules{
			props: map[string]check{
				"name": str, "data": str,
				"data_type": enum("REG_NONE", "REG_SZ", "REG_EXPAND_SZ", "REG_BINARY", "REG_DWORD",
					"REG_DWORD_BIG_ENDIAN", "REG_DWORD_LITTLE_ENDIAN", "REG_LINK", "REG_MULTI_SZ",
					"REG_RESOURCE_LIST", "REG_FULL_RESOURCE_DESCRIPTION", "REG_RESOURCE_REQUIREMENTS_LIST",
					"REG_QWORD", "REG_INVALID_TYPE"),
			},
		})),
		"modified_time": timestampCheck, "creator_user_ref": userRef, "number_of_subkeys": nonNegative,
	}
	x509Props = map[string]check{
		"is_self_signed": boolean, "hashes": hashes, "version": str, "serial_number": str,
		"signature_algorithm": str, "issuer": str,
		"validity_not_before": timestampCheck, "validity_not_after": timestampCheck,
		"subject": str, "subject_public_key_algorithm": str, "subject_public_key_modulus": str,
		"subject_public_key_exponent": nonNegative, "x509_v3_extensions": object(&rules{
			props: map[string]check{
				"basic_constraints": str, "name_constraints": str, "policy_constraints": str,
				"key_usage": str, "extended_key_usage": str, "subject_key_identifier": str,
				"authority_key_identifier": str, "subject_alternative_name": str,
				"issuer_alternative_name": str, "subject_directory_attributes": str,
				"crl_distribution_points": str, "inhibit_any_policy": str,
				"private_key_usage_period_not_before": timestampCheck,
				"private_key_usage_period_not_after":  timestampCheck,
				"certificate_policies":                str, "policy_mappings": str,
			},
		}),
	}
)

// sortedKeys returns the keys of m (in no particular order: the messages
// that use them do not list them).
func sortedKeys(m map[string]check) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	return keys
}

// endpointRef is the type of network-traffic src_ref and dst_ref.
var endpointRef = refTo("ipv4-addr", "ipv6-addr", "mac-addr", "domain-name")

// observedRefs checks observed-data object_refs (§4.13): SCOs and SROs
// only, at least one of them an SCO. Custom types count as SCOs: the
// reference alone cannot tell.
func observedRefs(c *vctx, v []byte) string {
	if p := list(ref("an SCO or SRO", func(t string) bool {
		return t == "relationship" || t == "sighting" || classOf([]byte(t)) == classObservable ||
			!isSpecType([]byte(t)) && t != "bundle"
	}))(c, v); p != "" {
		return p
	}
	it := newArrayIter(v)
	for e := it.next(); e != nil; e = it.next() {
		s, _ := stringValue(e)
		typ, _, _ := splitID(s)
		if t := string(typ); t != "relationship" && t != "sighting" {
			return ""
		}
	}
	return "must reference at least one SCO"
}

// relationshipType checks relationship_type (§5.1): ASCII a–z, 0–9 and
// hyphen.
func relationshipType(c *vctx, v []byte) string {
	s, ok := stringValue(v)
	if !ok {
		return wrongKind("a string", v)
	}
	if len(s) == 0 {
		return "must not be empty"
	}
	for _, ch := range s {
		if !('a' <= ch && ch <= 'z' || '0' <= ch && ch <= '9' || ch == '-') {
			return "must contain only a–z, 0–9 and hyphen, got " + quoteValue(s)
		}
	}
	return ""
}

// strOrStrList accepts a string or a list of strings (email-message
// additional_header_fields).
func strOrStrList(c *vctx, v []byte) string {
	if len(v) > 0 && v[0] == '[' {
		return strList(c, v)
	}
	return str(c, v)
}

// strOrInt accepts a string or an integer (network-traffic ipfix).
func strOrInt(c *vctx, v []byte) string {
	if len(v) > 0 && v[0] == '"' {
		return ""
	}
	if _, ok := intValue(v); ok {
		return ""
	}
	return wrongKind("a string or an integer", v)
}

// familyName requires a name on malware families (§4.9).
func familyName(c *vctx, o *fieldSet) string {
	if isTrue(o.get("is_family")) && !o.has("name") {
		return "name: required when is_family is true"
	}
	return ""
}

// multipart checks email-message body and body_multipart against
// is_multipart (§6.6).
func multipart(c *vctx, o *fieldSet) string {
	if isTrue(o.get("is_multipart")) {
		if o.has("body") {
			return "body: must not be present when is_multipart is true"
		}
	} else if o.has("body_multipart") {
		return "body_multipart: must not be present when is_multipart is false"
	}
	return ""
}

// activeHasNoEnd checks network-traffic end against is_active (§6.12).
func activeHasNoEnd(c *vctx, o *fieldSet) string {
	if isTrue(o.get("is_active")) && o.has("end") {
		return "end: must not be present when is_active is true"
	}
	return ""
}

// --- extensions (§7.3) -------------------------------------------------

// extensionType is the extension-type-enum.
var extensionType = enum("new-sdo", "new-sco", "new-sro", "property-extension", "toplevel-property-extension")

// extensionProperties checks that extension_properties is used only with a
// toplevel-property-extension (§7.3).
func extensionProperties(c *vctx, o *fieldSet) string {
	if !o.has("extension_properties") {
		return ""
	}
	if types := o.get("extension_types"); types == nil || !strings.Contains(string(types), `"toplevel-property-extension"`) {
		return "extension_properties: only allowed when extension_types includes \"toplevel-property-extension\""
	}
	return ""
}

// extensionInstance is the value of an extension-definition key in an
// object's extensions: extension_type is required.
var extensionInstance = object(&rules{
	props:    map[string]check{"extension_type": extensionType},
	required: []string{"extension_type"},
})

// extensions checks the extensions property (§3.2, §7.3): a non-empty
// dictionary whose keys are extension-definition ids, the predefined
// extensions of the object's type (§6), or other names that follow the
// dictionary key rules (legacy custom extensions); each value is a
// non-empty object. Extension-definition extensions carry extension_type.
func extensions(c *vctx, v []byte) string {
	if k := v[0]; k != '{' {
		return wrongKind("a dictionary", v)
	}
	fields := readFields(nil, v)
	if len(fields) == 0 {
		return "must not be empty"
	}
	for _, f := range fields {
		name := string(f.name)
		if p := dictKeyProblem(f.name); p != "" {
			return "." + quoteIfOdd(name) + ": " + p
		}
		if len(f.val) == 0 || f.val[0] != '{' {
			return at("."+name, wrongKind("an object", f.val))
		}
		if len(readFields(nil, f.val)) == 0 {
			return "." + name + ": must not be empty"
		}
		var p string
		switch pre, ok := predefinedExtensions[name]; {
		case strings.HasPrefix(name, "extension-definition--"):
			if !isIdentifier(f.name) {
				return "." + quoteIfOdd(name) + ": must be the id of an extension-definition"
			}
			p = extensionInstance(c, f.val)
			if p == "" && name == markingTLP2Extension {
				p = tlp2Instance(c, f.val)
			}
		case ok && pre.host == c.typ:
			p = pre.check(c, f.val)
		case ok:
			return "." + name + ": is a predefined extension of " + pre.host + ", not of " + c.typ
		}
		if p != "" {
			return at("."+name, p)
		}
	}
	return ""
}

// predefinedExtension is an extension STIX 2.1 defines for one SCO type.
type predefinedExtension struct {
	host  string
	check check
}

// predefinedExtensions are the extensions of §6.
var predefinedExtensions = map[string]predefinedExtension{
	"archive-ext": {"file", object(&rules{
		props:    map[string]check{"contains_refs": list(refTo("file", "directory")), "comment": str},
		required: []string{"contains_refs"},
	})},
	"ntfs-ext": {"file", object(&rules{
		props: map[string]check{"sid": str, "alternate_data_streams": list(object(&rules{
			props:    map[string]check{"name": str, "hashes": hashes, "size": nonNegative},
			required: []string{"name"},
		}))},
	})},
	"pdf-ext": {"file", object(&rules{
		props: map[string]check{
			"version": str, "is_optimized": boolean, "document_info_dict": dict(str),
			"pdfid0": str, "pdfid1": str,
		},
	})},
	"raster-image-ext": {"file", object(&rules{
		props: map[string]check{
			"image_height": nonNegative, "image_width": nonNegative, "bits_per_pixel": nonNegative,
			"exif_tags": dict(strOrInt),
		},
	})},
	"windows-pebinary-ext": {"file", object(&rules{
		props: map[string]check{
			"pe_type": str, "imphash": str, "machine_hex": hexCheck, "number_of_sections": nonNegative,
			"time_date_stamp": timestampCheck, "pointer_to_symbol_table_hex": hexCheck,
			"number_of_symbols": nonNegative, "size_of_optional_header": nonNegative,
			"characteristics_hex": hexCheck, "file_header_hashes": hashes,
			"optional_header": object(&rules{props: map[string]check{"hashes": hashes}}),
			"sections": list(object(&rules{
				props:    map[string]check{"name": str, "size": nonNegative, "entropy": number(-1e300, 1e300), "hashes": hashes},
				required: []string{"name"},
			})),
		},
		required: []string{"pe_type"},
	})},
	"http-request-ext": {"network-traffic", object(&rules{
		props: map[string]check{
			"request_method": str, "request_value": str, "request_version": str,
			"request_header": dict(strOrStrList), "message_body_length": nonNegative,
			"message_body_data_ref": artifactRef,
		},
		required: []string{"request_method", "request_value"},
	})},
	"icmp-ext": {"network-traffic", object(&rules{
		props:    map[string]check{"icmp_type_hex": hexCheck, "icmp_code_hex": hexCheck},
		required: []string{"icmp_type_hex", "icmp_code_hex"},
	})},
	"socket-ext": {"network-traffic", object(&rules{
		props: map[string]check{
			"address_family": enum("AF_UNSPEC", "AF_INET", "AF_IPX", "AF_APPLETALK", "AF_NETBIOS",
				"AF_INET6", "AF_IRDA", "AF_BTH"),
			"is_blocking": boolean, "is_listening": boolean, "options": dict(anyInt),
			"socket_type":       enum("SOCK_STREAM", "SOCK_DGRAM", "SOCK_RAW", "SOCK_RDM", "SOCK_SEQPACKET"),
			"socket_descriptor": nonNegative, "socket_handle": anyInt,
		},
		required: []string{"address_family"},
	})},
	"tcp-ext": {"network-traffic", object(&rules{
		props: map[string]check{"src_flags_hex": hexCheck, "dst_flags_hex": hexCheck},
	})},
	"windows-process-ext": {"process", object(&rules{
		props: map[string]check{
			"aslr_enabled": boolean, "dep_enabled": boolean, "priority": str, "owner_sid": str,
			"window_title": str, "startup_info": dict(nil),
			"integrity_level": enum("low", "medium", "high", "system"),
		},
	})},
	"windows-service-ext": {"process", object(&rules{
		props: map[string]check{
			"service_name": str, "descriptions": strList, "display_name": str, "group_name": str,
			"start_type": enum("SERVICE_AUTO_START", "SERVICE_BOOT_START", "SERVICE_DEMAND_START",
				"SERVICE_DISABLED", "SERVICE_SYSTEM_ALERT"),
			"service_dll_refs": list(fileRef),
			"service_type": enum("SERVICE_KERNEL_DRIVER", "SERVICE_FILE_SYSTEM_DRIVER",
				"SERVICE_WIN32_OWN_PROCESS", "SERVICE_WIN32_SHARE_PROCESS"),
			"service_status": enum("SERVICE_CONTINUE_PENDING", "SERVICE_PAUSE_PENDING", "SERVICE_PAUSED",
				"SERVICE_RUNNING", "SERVICE_START_PENDING", "SERVICE_STOP_PENDING", "SERVICE_STOPPED"),
		},
	})},
	"unix-account-ext": {"user-account", object(&rules{
		props: map[string]check{"gid": anyInt, "groups": strList, "home_dir": str, "shell": str},
	})},
}

// --- marking definitions (§7.2) ------------------------------------------

// tlp1IDs are the TLP 1.0 marking definitions (§7.2.1.4), the only TLP
// marking definitions of definition_type "tlp" allowed to exist.
var tlp1IDs = map[string]string{
	TLP1White: "white",
	TLP1Green: "green",
	TLP1Amber: "amber",
	TLP1Red:   "red",
}

// tlp2IDs are the OASIS TLP 2.0 marking definitions and their levels.
var tlp2IDs = map[string]string{
	TLP2Clear:       "clear",
	TLP2Green:       "green",
	TLP2Amber:       "amber",
	TLP2AmberStrict: "amber+strict",
	TLP2Red:         "red",
}

// tlp1Level is the value set of a TLP 1.0 definition's tlp (§7.2.1.4).
var tlp1Level = enum("white", "green", "amber", "red")

// tlp2Level is the tlp_2_0 value set of the TLP 2.0 extension's schema.
var tlp2Level = enum("clear", "green", "amber", "amber+strict", "red")

// tlp2Instance checks the TLP 2.0 extension inside a marking definition:
// tlp_2_0 is required, one of the TLP 2.0 levels, and on the OASIS
// marking-definition ids the level that id stands for, so that no object
// can pass off one level under another's id.
func tlp2Instance(c *vctx, v []byte) string {
	fs := fieldSet{readFields(nil, v)}
	level := fs.get("tlp_2_0")
	if level == nil {
		return ".tlp_2_0: required"
	}
	if p := tlp2Level(c, level); p != "" {
		return at(".tlp_2_0", p)
	}
	s, _ := stringValue(level)
	if want, ok := tlp2IDs[c.id]; ok && string(s) != want {
		return `.tlp_2_0: must be "` + want + `" for the OASIS TLP:` + strings.ToUpper(want) + " marking definition " + c.id + ", got " + quoteValue(s)
	}
	return ""
}

// markingDefinition checks a marking definition (§7.2.1): definition_type
// and definition are required unless the marking is defined by an
// extension; "statement" definitions hold a statement, and "tlp" ones are
// exactly the four TLP 1.0 objects the specification fixes.
func markingDefinition(c *vctx, o *fieldSet) string {
	dt, def := o.get("definition_type"), o.get("definition")
	if dt == nil && def == nil {
		if !o.has("extensions") {
			return "definition_type: required unless the marking is defined by an extension"
		}
		if _, ok := tlp2IDs[c.id]; ok && !strings.Contains(string(o.get("extensions")), `"`+markingTLP2Extension+`"`) {
			return "extensions: the OASIS TLP 2.0 marking definition " + c.id + " must carry the extension " + markingTLP2Extension
		}
		return ""
	}
	if dt == nil {
		return "definition_type: required with definition"
	}
	if def == nil {
		return "definition: required with definition_type"
	}
	if def[0] != '{' {
		return at("definition", wrongKind("an object", def))
	}
	fs := fieldSet{readFields(nil, def)}
	switch s, _ := stringValue(dt); string(s) {
	case "statement":
		if p := nonEmptyStr(c, fs.get("statement")); fs.get("statement") == nil {
			return "definition.statement: required"
		} else if p != "" {
			return "definition.statement: " + p
		}
	case "tlp":
		level := fs.get("tlp")
		if level == nil {
			return "definition.tlp: required"
		}
		if p := tlp1Level(c, level); p != "" {
			return "definition.tlp: " + p
		}
		want, ok := tlp1IDs[c.id]
		if !ok {
			return "definition_type: \"tlp\" marking definitions must be one of the four TLP 1.0 objects of STIX 2.1 §7.2.1.4, and " + c.id + " is none of them"
		}
		if l, _ := stringValue(level); string(l) != want {
			return `definition.tlp: must be "` + want + `" for ` + c.id + ", got " + quoteValue(l)
		}
	}
	return ""
}
