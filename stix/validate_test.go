package stix

import (
	"strings"
	"testing"
)

// validObject returns a valid object of type typ (common properties and
// minimalProperties) with changes applied as objectJSON applies them.
func validObject(typ string, changes ...member) string {
	const uuid = "--6ba7b810-9dad-41d1-80b4-00c04fd430c8"
	base := []member{{"type", `"` + typ + `"`}, {"id", `"` + typ + uuid + `"`}}
	if classOf([]byte(typ)) != classObservable {
		base = append(base, member{"spec_version", `"2.1"`}, member{"created", `"` + tsCreated + `"`})
		if typ != "marking-definition" {
			base = append(base, member{"modified", `"` + tsModified + `"`})
		}
	}
	return objectJSON(append(base, minimalProperties[typ]...), changes...)
}

// idOf returns the id validObject gives objects of type typ.
func idOf(typ string) string { return typ + "--6ba7b810-9dad-41d1-80b4-00c04fd430c8" }

const (
	markingGreen = "marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da"
	identityID   = "identity--b3bca3c2-1f3d-4b54-b44f-dac42c3a8f01"
	malwareID    = "malware--31b940d4-6f7f-459a-80ea-9c1f17b5891b"
	ipv4ID       = "ipv4-addr--efcd5e80-570d-4131-b213-62cb18eaa6a8"
)

type ruleCase struct {
	name string
	obj  string
	err  string // the message after "<id>: "; "" when valid
}

func runRuleCases(t *testing.T, cases []ruleCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			it := decodeOne(t, tc.obj)
			want := tc.err
			if want != "" {
				want = it.ID + ": " + want
			}
			checkItemErr(t, it, want)
		})
	}
}

func TestCommonPropertyRules(t *testing.T) {
	ind := func(changes ...member) string { return validObject("indicator", changes...) }
	runRuleCases(t, []ruleCase{
		{"created_by_ref identity", ind(member{"created_by_ref", `"` + identityID + `"`}), ""},
		{"created_by_ref other type", ind(member{"created_by_ref", `"` + malwareID + `"`}),
			`created_by_ref: must reference an identity, got "` + malwareID + `"`},
		{"created_by_ref not an id", ind(member{"created_by_ref", `"CERT-A"`}),
			`created_by_ref: must be an identifier <type>--<UUID> with a lowercase RFC 4122 UUID, got "CERT-A"`},
		{"created_by_ref number", ind(member{"created_by_ref", `1`}), `created_by_ref: must be an identifier, got number`},
		{"object_marking_refs valid", ind(member{"object_marking_refs", `["` + markingGreen + `"]`}), ""},
		{"object_marking_refs empty", ind(member{"object_marking_refs", `[]`}), `object_marking_refs: must not be empty`},
		{"object_marking_refs not list", ind(member{"object_marking_refs", `"` + markingGreen + `"`}), `object_marking_refs: must be a list, got string`},
		{"object_marking_refs wrong type", ind(member{"object_marking_refs", `["` + markingGreen + `","` + identityID + `"]`}),
			`object_marking_refs[1]: must reference a marking-definition, got "` + identityID + `"`},
		{"labels valid", ind(member{"labels", `["a","b"]`}), ""},
		{"labels empty list", ind(member{"labels", `[]`}), `labels: must not be empty`},
		{"labels empty string", ind(member{"labels", `["a",""]`}), `labels[1]: must not be empty`},
		{"labels number", ind(member{"labels", `["a",1]`}), `labels[1]: must be a string, got number`},
		{"confidence 0", ind(member{"confidence", `0`}), ""},
		{"confidence 100", ind(member{"confidence", `100`}), ""},
		{"confidence 85.0", ind(member{"confidence", `85.0`}), ""},
		{"confidence 101", ind(member{"confidence", `101`}), `confidence: must be between 0 and 100, got 101`},
		{"confidence -1", ind(member{"confidence", `-1`}), `confidence: must be between 0 and 100, got -1`},
		{"confidence fraction", ind(member{"confidence", `50.5`}), `confidence: must be an integer, got "50.5"`},
		{"confidence string", ind(member{"confidence", `"50"`}), `confidence: must be an integer, got string`},
		{"lang valid", ind(member{"lang", `"de-CH"`}), ""},
		{"lang invalid", ind(member{"lang", `"german language"`}), `lang: must be an RFC 5646 language tag, got "german language"`},
		{"revoked", ind(member{"revoked", `true`}), ""},
		{"revoked string", ind(member{"revoked", `"true"`}), `revoked: must be a boolean, got string`},
		{"external_references valid", ind(member{"external_references", `[{"source_name":"veris","external_id":"0001AA7F"},{"source_name":"x","url":"https://example.org/a?b=c#d"}]`}), ""},
		{"external_references empty", ind(member{"external_references", `[]`}), `external_references: must not be empty`},
		{"external_references no source_name", ind(member{"external_references", `[{"external_id":"x"}]`}), `external_references[0].source_name: required`},
		{"external_references source_name only", ind(member{"external_references", `[{"source_name":"x"}]`}),
			`external_references[0]: must have at least one of description, url, external_id`},
		{"external_references capec", ind(member{"external_references", `[{"source_name":"capec","external_id":"CAPEC-163"}]`}), ""},
		{"external_references capec bad id", ind(member{"external_references", `[{"source_name":"capec","external_id":"163"}]`}),
			`external_references[0].external_id: must be CAPEC-<number> when source_name is "capec", got "163"`},
		{"external_references capec no id", ind(member{"external_references", `[{"source_name":"capec","url":"https://capec.mitre.org/"}]`}),
			`external_references[0].external_id: required when source_name is "capec"`},
		{"external_references cve", ind(member{"external_references", `[{"source_name":"cve","external_id":"CVE-2021-44228"}]`}), ""},
		{"external_references cve bad id", ind(member{"external_references", `[{"source_name":"cve","external_id":"CVE-21-1"}]`}),
			`external_references[0].external_id: must be CVE-<year>-<number of 4 or more digits> when source_name is "cve", got "CVE-21-1"`},
		{"external_references bad url", ind(member{"external_references", `[{"source_name":"x","url":"hxxp://evil[.]com"}]`}),
			`external_references[0].url: must be a URL per RFC 3986: square brackets are only allowed around an IP literal host (defanged?), got "hxxp://evil[.]com"`},
		{"external_references hashes", ind(member{"external_references", `[{"source_name":"x","url":"https://example.org/","hashes":{"SHA-256":"6db12788c37247f2316052e142f42f4b259d6561751e5f401a1ae2a6df9c674b"}}]`}), ""},
		{"granular_markings valid", ind(member{"granular_markings", `[{"marking_ref":"` + markingGreen + `","selectors":["pattern","valid_from"]},{"lang":"de","selectors":["id"]}]`}), ""},
		{"granular_markings list item selector", ind(member{"labels", `["a","b"]`}, member{"granular_markings", `[{"marking_ref":"` + markingGreen + `","selectors":["labels.[1]"]}]`}), ""},
		{"granular_markings no selectors", ind(member{"granular_markings", `[{"marking_ref":"` + markingGreen + `"}]`}), `granular_markings[0].selectors: required`},
		{"granular_markings empty selectors", ind(member{"granular_markings", `[{"marking_ref":"` + markingGreen + `","selectors":[]}]`}), `granular_markings[0].selectors: must not be empty`},
		{"granular_markings neither ref nor lang", ind(member{"granular_markings", `[{"selectors":["pattern"]}]`}),
			`granular_markings[0]: must have at least one of marking_ref, lang`},
		{"granular_markings both ref and lang", ind(member{"granular_markings", `[{"marking_ref":"` + markingGreen + `","lang":"en","selectors":["pattern"]}]`}),
			`granular_markings[0].lang: must not be present together with marking_ref`},
		{"granular_markings wrong ref type", ind(member{"granular_markings", `[{"marking_ref":"` + identityID + `","selectors":["pattern"]}]`}),
			`granular_markings[0].marking_ref: must reference a marking-definition, got "` + identityID + `"`},
		{"granular_markings dangling selector", ind(member{"granular_markings", `[{"marking_ref":"` + markingGreen + `","selectors":["pattern","description"]}]`}),
			`granular_markings[0].selectors[1]: "description" does not select any property of the object`},
		{"granular_markings index out of range", ind(member{"labels", `["a"]`}, member{"granular_markings", `[{"marking_ref":"` + markingGreen + `","selectors":["labels.[1]"]}]`}),
			`granular_markings[0].selectors[0]: "labels.[1]" does not select any property of the object`},
		{"custom property", ind(member{"x_acme_score", `7`}), ""},
		{"custom property without x_", ind(member{"acme_score", `{"a":[]}`}), ""},
		{"custom property upper case", ind(member{"x_Acme", `7`}), `x_Acme: custom property names must contain only a–z, 0–9 and underscore`},
		{"custom property hyphen", ind(member{"x-acme", `7`}), `x-acme: custom property names must contain only a–z, 0–9 and underscore`},
		{"custom property short", ind(member{"xy", `7`}), `xy: custom property names must be 3 to 250 characters long`},
		{"custom property long", ind(member{strings.Repeat("x", 251), `7`}), `"` + strings.Repeat("x", 64) + `"…: custom property names must be 3 to 250 characters long`},
		{"custom property null", ind(member{"x_acme", `null`}), `x_acme: must not be null`},
		{"custom property empty list", ind(member{"x_acme", `[]`}), `x_acme: must not be empty`},
		{"extensions property-extension", ind(member{"extensions", `{"extension-definition--d83fce45-ef58-4c6c-a3f4-1fbc32e98c6e":{"extension_type":"property-extension","rank":5}}`}), ""},
		{"extensions toplevel", ind(member{"x_rank", `5`}, member{"extensions", `{"extension-definition--d83fce45-ef58-4c6c-a3f4-1fbc32e98c6e":{"extension_type":"toplevel-property-extension"}}`}), ""},
		{"extensions empty", ind(member{"extensions", `{}`}), `extensions: must not be empty`},
		{"extensions not object", ind(member{"extensions", `[]`}), `extensions: must be a dictionary, got array`},
		{"extensions bad extension_type", ind(member{"extensions", `{"extension-definition--d83fce45-ef58-4c6c-a3f4-1fbc32e98c6e":{"extension_type":"new-thing"}}`}),
			`extensions.extension-definition--d83fce45-ef58-4c6c-a3f4-1fbc32e98c6e.extension_type: must be one of "new-sdo", "new-sco", "new-sro", "property-extension", "toplevel-property-extension", got "new-thing"`},
		{"extensions missing extension_type", ind(member{"extensions", `{"extension-definition--d83fce45-ef58-4c6c-a3f4-1fbc32e98c6e":{"rank":5}}`}),
			`extensions.extension-definition--d83fce45-ef58-4c6c-a3f4-1fbc32e98c6e.extension_type: required`},
		{"extensions bad definition id", ind(member{"extensions", `{"extension-definition--1234":{"extension_type":"property-extension"}}`}),
			`extensions.extension-definition--1234: must be the id of an extension-definition`},
		{"extensions empty value", ind(member{"extensions", `{"x-acme-ext":{}}`}), `extensions.x-acme-ext: must not be empty`},
		{"extensions legacy custom", ind(member{"extensions", `{"x-acme-ext":{"a":1}}`}), ""},
		{"extensions bad key", ind(member{"extensions", `{"x acme":{"a":1}}`}), `extensions."x acme": dictionary keys must contain only a–z, A–Z, 0–9, hyphen and underscore`},
		{"extensions predefined on wrong type", ind(member{"extensions", `{"archive-ext":{"contains_refs":["` + idOf("file") + `"]}}`}),
			`extensions.archive-ext: is a predefined extension of file, not of indicator`},
	})
}

func TestSDORules(t *testing.T) {
	runRuleCases(t, []ruleCase{
		// indicator
		{"indicator valid_until later", validObject("indicator", member{"valid_until", `"2016-01-01T00:00:00.001Z"`}), ""},
		{"indicator valid_until equal", validObject("indicator", member{"valid_until", `"2016-01-01T00:00:00Z"`}), `valid_until: must be later than valid_from`},
		{"indicator valid_until earlier", validObject("indicator", member{"valid_until", `"2015-01-01T00:00:00Z"`}), `valid_until: must be later than valid_from`},
		{"indicator valid_from missing", validObject("indicator", member{"valid_from", ""}), `valid_from: required`},
		{"indicator valid_from malformed", validObject("indicator", member{"valid_from", `"2016-01-01"`}),
			`valid_from: must be a STIX timestamp, YYYY-MM-DDTHH:MM:SS[.s+]Z in UTC, got "2016-01-01"`},
		{"indicator pattern empty", validObject("indicator", member{"pattern", `""`}), `pattern: must not be empty`},
		{"indicator pattern_type missing", validObject("indicator", member{"pattern_type", ""}), `pattern_type: required`},
		{"indicator other pattern type", validObject("indicator", member{"pattern_type", `"snort"`}, member{"pattern", `"alert tcp any any -> any any"`}), ""},
		{"indicator kill chain", validObject("indicator", member{"kill_chain_phases", `[{"kill_chain_name":"lockheed-martin-cyber-kill-chain","phase_name":"reconnaissance"}]`}), ""},
		{"indicator kill chain no phase", validObject("indicator", member{"kill_chain_phases", `[{"kill_chain_name":"lockheed-martin-cyber-kill-chain"}]`}), `kill_chain_phases[0].phase_name: required`},
		{"indicator kill chain not object", validObject("indicator", member{"kill_chain_phases", `["recon"]`}), `kill_chain_phases[0]: must be an object, got string`},
		{"indicator open vocabulary", validObject("indicator", member{"indicator_types", `["something-new"]`}), ""},
		// first_seen / last_seen
		{"campaign seen in order", validObject("campaign", member{"first_seen", `"2016-01-01T00:00:00Z"`}, member{"last_seen", `"2016-01-01T00:00:00Z"`}), ""},
		{"campaign seen reversed", validObject("campaign", member{"first_seen", `"2016-01-02T00:00:00Z"`}, member{"last_seen", `"2016-01-01T00:00:00Z"`}), `last_seen: must not be earlier than first_seen`},
		{"threat-actor seen reversed", validObject("threat-actor", member{"first_seen", `"2016-01-02T00:00:00Z"`}, member{"last_seen", `"2016-01-01T00:00:00Z"`}), `last_seen: must not be earlier than first_seen`},
		{"intrusion-set seen reversed", validObject("intrusion-set", member{"first_seen", `"2016-01-02T00:00:00Z"`}, member{"last_seen", `"2016-01-01T00:00:00Z"`}), `last_seen: must not be earlier than first_seen`},
		{"infrastructure seen reversed", validObject("infrastructure", member{"first_seen", `"2016-01-02T00:00:00Z"`}, member{"last_seen", `"2016-01-01T00:00:00Z"`}), `last_seen: must not be earlier than first_seen`},
		{"malware seen reversed", validObject("malware", member{"first_seen", `"2016-01-02T00:00:00Z"`}, member{"last_seen", `"2016-01-01T00:00:00Z"`}), `last_seen: must not be earlier than first_seen`},
		// required names
		{"attack-pattern name missing", validObject("attack-pattern", member{"name", ""}), `name: required`},
		{"identity name number", validObject("identity", member{"name", `1`}), `name: must be a string, got number`},
		// malware
		{"malware family without name", validObject("malware", member{"is_family", `true`}), `name: required when is_family is true`},
		{"malware family with name", validObject("malware", member{"is_family", `true`}, member{"name", `"Poison Ivy"`}), ""},
		{"malware is_family string", validObject("malware", member{"is_family", `"true"`}), `is_family: must be a boolean, got string`},
		{"malware sample_refs", validObject("malware", member{"sample_refs", `["` + idOf("file") + `","` + idOf("artifact") + `"]`}), ""},
		{"malware sample_refs wrong", validObject("malware", member{"sample_refs", `["` + ipv4ID + `"]`}), `sample_refs[0]: must reference a file or artifact, got "` + ipv4ID + `"`},
		{"malware operating_system_refs", validObject("malware", member{"operating_system_refs", `["` + idOf("file") + `"]`}), `operating_system_refs[0]: must reference a software, got "` + idOf("file") + `"`},
		// malware-analysis
		{"malware-analysis needs result", validObject("malware-analysis", member{"result", ""}), `(object): must have at least one of result, analysis_sco_refs`},
		{"malware-analysis sco refs", validObject("malware-analysis", member{"result", ""}, member{"analysis_sco_refs", `["` + ipv4ID + `"]`}), ""},
		{"malware-analysis sco refs SDO", validObject("malware-analysis", member{"analysis_sco_refs", `["` + malwareID + `"]`}), `analysis_sco_refs[0]: must reference an SCO, got "` + malwareID + `"`},
		// location
		{"location lat/long", validObject("location", member{"region", ""}, member{"latitude", `48.8566`}, member{"longitude", `2.3522`}, member{"precision", `1000.0`}), ""},
		{"location latitude range", validObject("location", member{"latitude", `91`}, member{"longitude", `0`}), `latitude: must be between -90 and 90, got 91`},
		{"location longitude range", validObject("location", member{"latitude", `0`}, member{"longitude", `-180.5`}), `longitude: must be between -180 and 180, got -180.5`},
		{"location latitude alone", validObject("location", member{"latitude", `10`}), `longitude: required when latitude is present`},
		{"location precision alone", validObject("location", member{"precision", `10`}), `latitude: required when precision is present`},
		{"location nothing", validObject("location", member{"region", ""}, member{"city", `"Paris"`}), `(object): must have at least one of region, country, latitude`},
		// report, grouping, note, opinion
		{"report object_refs any", validObject("report", member{"object_refs", `["` + markingGreen + `","` + ipv4ID + `"]`}), ""},
		{"report object_refs empty", validObject("report", member{"object_refs", `[]`}), `object_refs: must not be empty`},
		{"report published missing", validObject("report", member{"published", ""}), `published: required`},
		{"grouping context missing", validObject("grouping", member{"context", ""}), `context: required`},
		{"note object_refs bad", validObject("note", member{"object_refs", `["nope"]`}), `object_refs[0]: must be an identifier <type>--<UUID> with a lowercase RFC 4122 UUID, got "nope"`},
		{"opinion enum", validObject("opinion", member{"opinion", `"strongly-agree"`}), ""},
		{"opinion not in enum", validObject("opinion", member{"opinion", `"maybe"`}),
			`opinion: must be one of "strongly-disagree", "disagree", "neutral", "agree", "strongly-agree", got "maybe"`},
		// observed-data
		{"observed-data number 0", validObject("observed-data", member{"number_observed", `0`}), `number_observed: must be between 1 and 999999999, got 0`},
		{"observed-data number max", validObject("observed-data", member{"number_observed", `999999999`}), ""},
		{"observed-data number too big", validObject("observed-data", member{"number_observed", `1000000000`}), `number_observed: must be between 1 and 999999999, got 1000000000`},
		{"observed-data reversed", validObject("observed-data", member{"last_observed", `"2015-12-21T18:00:00Z"`}), `last_observed: must not be earlier than first_observed`},
		{"observed-data refs SDO", validObject("observed-data", member{"object_refs", `["` + malwareID + `"]`}), `object_refs[0]: must reference an SCO or SRO, got "` + malwareID + `"`},
		{"observed-data only SROs", validObject("observed-data", member{"object_refs", `["` + idOf("relationship") + `"]`}), `object_refs: must reference at least one SCO`},
		{"observed-data objects and refs", validObject("observed-data", member{"objects", `{"0":{"type":"ipv4-addr","value":"198.51.100.3"}}`}), `objects: must not be present together with object_refs`},
		{"observed-data deprecated objects", validObject("observed-data", member{"object_refs", ""}, member{"objects", `{"0":{"type":"ipv4-addr","value":"198.51.100.3"}}`}), ""},
		{"observed-data neither", validObject("observed-data", member{"object_refs", ""}), `(object): must have at least one of object_refs, objects`},
	})
}

func TestSRORules(t *testing.T) {
	rel := func(changes ...member) string { return validObject("relationship", changes...) }
	sig := func(changes ...member) string { return validObject("sighting", changes...) }
	runRuleCases(t, []ruleCase{
		{"relationship SCO target", rel(member{"target_ref", `"` + ipv4ID + `"`}), ""},
		{"relationship custom target", rel(member{"target_ref", `"x-mitre-tactic--6ba7b810-9dad-41d1-80b4-00c04fd430c8"`}), ""},
		{"relationship to marking", rel(member{"source_ref", `"` + markingGreen + `"`}), `source_ref: must reference an SDO or SCO, got "` + markingGreen + `"`},
		{"relationship to relationship", rel(member{"target_ref", `"` + idOf("relationship") + `"`}), `target_ref: must reference an SDO or SCO, got "` + idOf("relationship") + `"`},
		{"relationship to bundle", rel(member{"target_ref", `"bundle--6ba7b810-9dad-41d1-80b4-00c04fd430c8"`}), `target_ref: must reference an SDO or SCO, got "bundle--6ba7b810-9dad-41d1-80b4-00c04fd430c8"`},
		{"relationship type chars", rel(member{"relationship_type", `"Indicates"`}), `relationship_type: must contain only a–z, 0–9 and hyphen, got "Indicates"`},
		{"relationship custom type", rel(member{"relationship_type", `"x-acme-feeds"`}), ""},
		{"relationship target missing", rel(member{"target_ref", ""}), `target_ref: required`},
		{"relationship times", rel(member{"start_time", `"2016-01-01T00:00:00Z"`}, member{"stop_time", `"2016-01-02T00:00:00Z"`}), ""},
		{"relationship stop equals start", rel(member{"start_time", `"2016-01-01T00:00:00Z"`}, member{"stop_time", `"2016-01-01T00:00:00Z"`}), `stop_time: must be later than start_time`},
		{"sighting full", sig(member{"count", `0`}, member{"observed_data_refs", `["` + idOf("observed-data") + `"]`},
			member{"where_sighted_refs", `["` + identityID + `","` + idOf("location") + `"]`}, member{"summary", `false`}), ""},
		{"sighting of SCO", sig(member{"sighting_of_ref", `"` + ipv4ID + `"`}), `sighting_of_ref: must reference an SDO, got "` + ipv4ID + `"`},
		{"sighting of relationship", sig(member{"sighting_of_ref", `"` + idOf("relationship") + `"`}), `sighting_of_ref: must reference an SDO, got "` + idOf("relationship") + `"`},
		{"sighting count max", sig(member{"count", `999999999`}), ""},
		{"sighting count too big", sig(member{"count", `1000000000`}), `count: must be between 0 and 999999999, got 1000000000`},
		{"sighting count negative", sig(member{"count", `-1`}), `count: must be between 0 and 999999999, got -1`},
		{"sighting observed_data_refs wrong", sig(member{"observed_data_refs", `["` + identityID + `"]`}), `observed_data_refs[0]: must reference an observed-data, got "` + identityID + `"`},
		{"sighting where_sighted wrong", sig(member{"where_sighted_refs", `["` + malwareID + `"]`}), `where_sighted_refs[0]: must reference an identity or location, got "` + malwareID + `"`},
		{"sighting seen reversed", sig(member{"first_seen", `"2016-01-02T00:00:00Z"`}, member{"last_seen", `"2016-01-01T00:00:00Z"`}), `last_seen: must not be earlier than first_seen`},
	})
}

func TestSCORules(t *testing.T) {
	const sha256 = "6db12788c37247f2316052e142f42f4b259d6561751e5f401a1ae2a6df9c674b"
	runRuleCases(t, []ruleCase{
		// url
		{"url defanged", validObject("url", member{"value", `"hxxp://evil[.]com/a"`}),
			`value: must be a URL per RFC 3986: square brackets are only allowed around an IP literal host (defanged?), got "hxxp://evil[.]com/a"`},
		{"url no scheme", validObject("url", member{"value", `"evil.com/a"`}), `value: must be a URL per RFC 3986: no scheme, got "evil.com/a"`},
		{"url space", validObject("url", member{"value", `"http://evil.com/a b"`}), `value: must be a URL per RFC 3986: spaces must be percent-encoded, got "http://evil.com/a b"`},
		{"url bad percent", validObject("url", member{"value", `"http://evil.com/%zz"`}), `value: must be a URL per RFC 3986: invalid percent-encoding, got "http://evil.com/%zz"`},
		{"url IPv6 literal", validObject("url", member{"value", `"http://user@[2001:db8::1]:8080/p?q=1#f"`}), ""},
		{"url non-ASCII", validObject("url", member{"value", `"http://exämple.com/"`}), `value: must be a URL per RFC 3986: character 'Ã' is not allowed, got "http://exämple.com/"`},
		// addresses
		{"ipv4 CIDR", validObject("ipv4-addr", member{"value", `"198.51.100.0/24"`}), ""},
		{"ipv4 invalid", validObject("ipv4-addr", member{"value", `"198.51.100.300"`}), `value: must be an IPv4 address or CIDR block, got "198.51.100.300"`},
		{"ipv4 given v6", validObject("ipv4-addr", member{"value", `"2001:db8::1"`}), `value: must be an IPv4 address or CIDR block, got "2001:db8::1"`},
		{"ipv4 defanged", validObject("ipv4-addr", member{"value", `"198.51.100[.]3"`}), `value: must be an IPv4 address or CIDR block, got "198.51.100[.]3"`},
		{"ipv4 resolves_to", validObject("ipv4-addr", member{"resolves_to_refs", `["` + idOf("mac-addr") + `"]`}, member{"belongs_to_refs", `["` + idOf("autonomous-system") + `"]`}), ""},
		{"ipv4 resolves_to wrong", validObject("ipv4-addr", member{"resolves_to_refs", `["` + idOf("domain-name") + `"]`}), `resolves_to_refs[0]: must reference a mac-addr, got "` + idOf("domain-name") + `"`},
		{"ipv6 CIDR", validObject("ipv6-addr", member{"value", `"2001:db8::/32"`}), ""},
		{"ipv6 given v4", validObject("ipv6-addr", member{"value", `"198.51.100.3"`}), `value: must be an IPv6 address or CIDR block, got "198.51.100.3"`},
		{"mac upper case", validObject("mac-addr", member{"value", `"D2:FB:49:24:37:18"`}), `value: must be a lowercase, colon-delimited MAC-48 address (00:00:5e:00:53:01), got "D2:FB:49:24:37:18"`},
		{"mac dashes", validObject("mac-addr", member{"value", `"d2-fb-49-24-37-18"`}), `value: must be a lowercase, colon-delimited MAC-48 address (00:00:5e:00:53:01), got "d2-fb-49-24-37-18"`},
		{"domain IDN", validObject("domain-name", member{"value", `"bücher.example"`}), ""},
		{"domain defanged", validObject("domain-name", member{"value", `"evil[.]com"`}), `value: must be a domain name (RFC 1034, RFC 5890), got "evil[.]com"`},
		{"domain empty label", validObject("domain-name", member{"value", `"evil..com"`}), `value: must be a domain name (RFC 1034, RFC 5890), got "evil..com"`},
		{"domain resolves_to", validObject("domain-name", member{"resolves_to_refs", `["` + ipv4ID + `"]`}), ""},
		{"email invalid", validObject("email-addr", member{"value", `"John Doe"`}), `value: must be a single e-mail address (RFC 5322 addr-spec), got "John Doe"`},
		{"email belongs_to wrong", validObject("email-addr", member{"belongs_to_ref", `"` + identityID + `"`}), `belongs_to_ref: must reference a user-account, got "` + identityID + `"`},
		// file and hashes
		{"file hashes only", validObject("file", member{"name", ""}, member{"hashes", `{"SHA-256":"` + sha256 + `","x_custom":"abc"}`}), ""},
		{"file neither", validObject("file", member{"name", ""}, member{"size", `10`}), `(object): must have at least one of hashes, name`},
		{"file size negative", validObject("file", member{"size", `-1`}), `size: must be between 0 and 9007199254740990, got -1`},
		{"file hash wrong length", validObject("file", member{"hashes", `{"MD5":"abc"}`}), `hashes.MD5: must be 32 hexadecimal characters, got "abc"`},
		{"file hash lower-case name", validObject("file", member{"hashes", `{"sha-256":"` + sha256 + `"}`}), `hashes.sha-256: hash algorithm names from hash-algorithm-ov are case-sensitive: use "SHA-256"`},
		{"file hash empty", validObject("file", member{"hashes", `{}`}), `hashes: must not be empty`},
		{"file hash bad key", validObject("file", member{"hashes", `{"SHA 256":"x"}`}), `hashes."SHA 256": dictionary keys must contain only a–z, A–Z, 0–9, hyphen and underscore`},
		{"file hash short key", validObject("file", member{"hashes", `{"h1":"x"}`}), `hashes.h1: hash algorithm names must be at least 3 characters long`},
		{"file magic hex", validObject("file", member{"magic_number_hex", `"ffd8"`}), ""},
		{"file magic odd hex", validObject("file", member{"magic_number_hex", `"ffd"`}), `magic_number_hex: must be an even number of hexadecimal characters, got "ffd"`},
		{"file parent dir wrong", validObject("file", member{"parent_directory_ref", `"` + idOf("file") + `"`}), `parent_directory_ref: must reference a directory, got "` + idOf("file") + `"`},
		{"file archive-ext", validObject("file", member{"extensions", `{"archive-ext":{"contains_refs":["` + idOf("file") + `"]}}`}), ""},
		{"file archive-ext missing refs", validObject("file", member{"extensions", `{"archive-ext":{"comment":"x"}}`}), `extensions.archive-ext.contains_refs: required`},
		{"file pebinary", validObject("file", member{"extensions", `{"windows-pebinary-ext":{"pe_type":"exe","machine_hex":"014c","sections":[{"name":".text","entropy":7.5}]}}`}), ""},
		{"file pebinary no pe_type", validObject("file", member{"extensions", `{"windows-pebinary-ext":{"imphash":"x"}}`}), `extensions.windows-pebinary-ext.pe_type: required`},
		{"file ntfs ads without name", validObject("file", member{"extensions", `{"ntfs-ext":{"alternate_data_streams":[{"size":1}]}}`}), `extensions.ntfs-ext.alternate_data_streams[0].name: required`},
		// artifact
		{"artifact url needs hashes", validObject("artifact", member{"payload_bin", ""}, member{"url", `"https://example.org/a.bin"`}), `hashes: required when url is present`},
		{"artifact url with hashes", validObject("artifact", member{"payload_bin", ""}, member{"url", `"https://example.org/a.bin"`}, member{"hashes", `{"SHA-256":"` + sha256 + `"}`}), ""},
		{"artifact both", validObject("artifact", member{"url", `"https://example.org/a.bin"`}, member{"hashes", `{"SHA-256":"` + sha256 + `"}`}), `url: must not be present together with payload_bin`},
		{"artifact bad base64", validObject("artifact", member{"payload_bin", `"not base64!"`}), `payload_bin: must be base64 (RFC 4648 §4)`},
		{"artifact encryption enum", validObject("artifact", member{"encryption_algorithm", `"rot13"`}),
			`encryption_algorithm: must be one of "AES-256-GCM", "ChaCha20-Poly1305", "mime-type-indicated", got "rot13"`},
		// others
		{"autonomous-system number string", validObject("autonomous-system", member{"number", `"15139"`}), `number: must be an integer, got string`},
		{"directory contains", validObject("directory", member{"contains_refs", `["` + idOf("file") + `","` + idOf("directory") + `"]`}), ""},
		{"directory contains wrong", validObject("directory", member{"contains_refs", `["` + ipv4ID + `"]`}), `contains_refs[0]: must reference a file or directory, got "` + ipv4ID + `"`},
		{"email-message multipart", validObject("email-message", member{"is_multipart", `true`}, member{"body_multipart", `[{"body":"hi","content_type":"text/plain"},{"body_raw_ref":"` + idOf("artifact") + `"}]`}), ""},
		{"email-message body with multipart", validObject("email-message", member{"is_multipart", `true`}, member{"body", `"hi"`}), `body: must not be present when is_multipart is true`},
		{"email-message multipart when not", validObject("email-message", member{"body_multipart", `[{"body":"hi"}]`}), `body_multipart: must not be present when is_multipart is false`},
		{"email-message part without body", validObject("email-message", member{"is_multipart", `true`}, member{"body_multipart", `[{"content_type":"text/plain"}]`}), `body_multipart[0]: must have at least one of body, body_raw_ref`},
		{"email-message to_refs wrong", validObject("email-message", member{"to_refs", `["` + identityID + `"]`}), `to_refs[0]: must reference an email-addr, got "` + identityID + `"`},
		{"network-traffic no endpoint", validObject("network-traffic", member{"dst_ref", ""}), `(object): must have at least one of src_ref, dst_ref`},
		{"network-traffic port range", validObject("network-traffic", member{"dst_port", `65536`}), `dst_port: must be between 0 and 65535, got 65536`},
		{"network-traffic active with end", validObject("network-traffic", member{"is_active", `true`}, member{"end", `"2016-01-01T00:00:00Z"`}), `end: must not be present when is_active is true`},
		{"network-traffic end before start", validObject("network-traffic", member{"start", `"2016-01-02T00:00:00Z"`}, member{"end", `"2016-01-01T00:00:00Z"`}), `end: must not be earlier than start`},
		{"network-traffic src_ref wrong", validObject("network-traffic", member{"src_ref", `"` + idOf("url") + `"`}), `src_ref: must reference an ipv4-addr, ipv6-addr, mac-addr or domain-name, got "` + idOf("url") + `"`},
		{"network-traffic socket-ext", validObject("network-traffic", member{"extensions", `{"socket-ext":{"address_family":"AF_INET","socket_type":"SOCK_STREAM"}}`}), ""},
		{"network-traffic socket-ext family", validObject("network-traffic", member{"extensions", `{"socket-ext":{"address_family":"AF_UNIX"}}`}),
			`extensions.socket-ext.address_family: must be one of "AF_UNSPEC", "AF_INET", "AF_IPX", "AF_APPLETALK", "AF_NETBIOS", "AF_INET6", "AF_IRDA", "AF_BTH", got "AF_UNIX"`},
		{"network-traffic http-request-ext", validObject("network-traffic", member{"extensions", `{"http-request-ext":{"request_method":"get"}}`}), `extensions.http-request-ext.request_value: required`},
		{"network-traffic icmp-ext", validObject("network-traffic", member{"extensions", `{"icmp-ext":{"icmp_type_hex":"08","icmp_code_hex":"0"}}`}), `extensions.icmp-ext.icmp_code_hex: must be an even number of hexadecimal characters, got "0"`},
		{"process only id", validObject("process", member{"pid", ""}), `(object): must have at least one process property`},
		{"process extension only", validObject("process", member{"pid", ""}, member{"extensions", `{"windows-process-ext":{"integrity_level":"high"}}`}), ""},
		{"process integrity enum", validObject("process", member{"extensions", `{"windows-process-ext":{"integrity_level":"root"}}`}),
			`extensions.windows-process-ext.integrity_level: must be one of "low", "medium", "high", "system", got "root"`},
		{"process service enums", validObject("process", member{"extensions", `{"windows-service-ext":{"start_type":"SERVICE_AUTO_START","service_type":"SERVICE_WIN32_OWN_PROCESS","service_status":"SERVICE_RUNNING"}}`}), ""},
		{"process service status", validObject("process", member{"extensions", `{"windows-service-ext":{"service_status":"RUNNING"}}`}),
			`extensions.windows-service-ext.service_status: must be one of "SERVICE_CONTINUE_PENDING", "SERVICE_PAUSE_PENDING", "SERVICE_PAUSED", "SERVICE_RUNNING", "SERVICE_START_PENDING", "SERVICE_STOP_PENDING", "SERVICE_STOPPED", got "RUNNING"`},
		{"process parent wrong", validObject("process", member{"parent_ref", `"` + idOf("file") + `"`}), `parent_ref: must reference a process, got "` + idOf("file") + `"`},
		{"software name missing", validObject("software", member{"name", ""}), `name: required`},
		{"user-account unix ext", validObject("user-account", member{"extensions", `{"unix-account-ext":{"gid":1001,"groups":["wheel"]}}`}), ""},
		{"registry values", validObject("windows-registry-key", member{"values", `[{"name":"Foo","data":"qwerty","data_type":"REG_SZ"}]`}), ""},
		{"registry data_type enum", validObject("windows-registry-key", member{"values", `[{"name":"Foo","data_type":"REG_STRING"}]`}),
			`values[0].data_type: must be one of "REG_NONE", "REG_SZ", "REG_EXPAND_SZ", "REG_BINARY", "REG_DWORD", "REG_DWORD_BIG_ENDIAN", "REG_DWORD_LITTLE_ENDIAN", "REG_LINK", "REG_MULTI_SZ", "REG_RESOURCE_LIST", "REG_FULL_RESOURCE_DESCRIPTION", "REG_RESOURCE_REQUIREMENTS_LIST", "REG_QWORD", "REG_INVALID_TYPE", got "REG_STRING"`},
		{"x509 validity", validObject("x509-certificate", member{"validity_not_before", `"2016-03-12T12:00:00Z"`}, member{"x509_v3_extensions", `{"basic_constraints":"critical,CA:TRUE"}`}), ""},
		{"x509 bad validity", validObject("x509-certificate", member{"validity_not_after", `"soon"`}), `validity_not_after: must be a STIX timestamp, YYYY-MM-DDTHH:MM:SS[.s+]Z in UTC, got "soon"`},
		{"SCO defanged flag", validObject("url", member{"defanged", `true`}), ""},
		{"SCO object_marking_refs", validObject("url", member{"object_marking_refs", `["` + identityID + `"]`}), `object_marking_refs[0]: must reference a marking-definition, got "` + identityID + `"`},
	})
}

func TestMetaObjectRules(t *testing.T) {
	const tlp2Green = "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb"
	tlp2 := func(id, level string) string {
		return `{"type":"marking-definition","spec_version":"2.1","id":"` + id + `","created":"2022-10-01T00:00:00.000Z","name":"TLP:GREEN",` +
			`"extensions":{"` + markingTLP2Extension + `":{"extension_type":"property-extension","tlp_2_0":"` + level + `"}}}`
	}
	md := func(changes ...member) string { return validObject("marking-definition", changes...) }
	runRuleCases(t, []ruleCase{
		{"TLP 1.0 green", objectJSON(marking), ""},
		{"TLP 1.0 wrong level for id", objectJSON(marking, member{"definition", `{"tlp":"white"}`}),
			`definition.tlp: must be "green" for ` + markingGreen + `, got "white"`},
		{"TLP 1.0 unknown level", objectJSON(marking, member{"definition", `{"tlp":"clear"}`}),
			`definition.tlp: must be one of "white", "green", "amber", "red", got "clear"`},
		{"TLP 1.0 non-standard id", md(member{"definition_type", `"tlp"`}, member{"definition", `{"tlp":"green"}`}),
			`definition_type: "tlp" marking definitions must be one of the four TLP 1.0 objects of STIX 2.1 §7.2.1.4, and ` + idOf("marking-definition") + ` is none of them`},
		{"statement", md(), ""},
		{"statement missing", md(member{"definition", `{"text":"x"}`}), `definition.statement: required`},
		{"statement not string", md(member{"definition", `{"statement":5}`}), `definition.statement: must be a string, got number`},
		{"definition without type", md(member{"definition_type", ""}), `definition_type: required with definition`},
		{"definition_type without definition", md(member{"definition", ""}), `definition: required with definition_type`},
		{"neither definition nor extension", md(member{"definition", ""}, member{"definition_type", ""}), `definition_type: required unless the marking is defined by an extension`},
		{"custom definition_type", md(member{"definition_type", `"acme"`}, member{"definition", `{"acme":1}`}), ""},
		{"TLP 2.0 green", tlp2(tlp2Green, "green"), ""},
		{"TLP 2.0 level mismatch", tlp2(tlp2Green, "clear"),
			`extensions.` + markingTLP2Extension + `.tlp_2_0: must be "green" for the OASIS TLP:GREEN marking definition ` + tlp2Green + `, got "clear"`},
		{"TLP 2.0 unknown level", tlp2(tlp2Green, "white"),
			`extensions.` + markingTLP2Extension + `.tlp_2_0: must be one of "clear", "green", "amber", "amber+strict", "red", got "white"`},
		{"TLP 2.0 own marking", tlp2(idOf("marking-definition"), "amber+strict"), ""},
		{"TLP 2.0 id with other extension", `{"type":"marking-definition","spec_version":"2.1","id":"` + tlp2Green + `","created":"2022-10-01T00:00:00.000Z","extensions":{"extension-definition--d83fce45-ef58-4c6c-a3f4-1fbc32e98c6e":{"extension_type":"property-extension","level":"x"}}}`,
			`extensions: the OASIS TLP 2.0 marking definition ` + tlp2Green + ` must carry the extension ` + markingTLP2Extension},
		{"TLP 2.0 missing level", `{"type":"marking-definition","spec_version":"2.1","id":"` + tlp2Green + `","created":"2022-10-01T00:00:00.000Z","extensions":{"` + markingTLP2Extension + `":{"extension_type":"property-extension"}}}`,
			`extensions.` + markingTLP2Extension + `.tlp_2_0: required`},
		// extension-definition
		{"extension-definition", validObject("extension-definition"), ""},
		{"extension-definition no creator", validObject("extension-definition", member{"created_by_ref", ""}), `created_by_ref: required`},
		{"extension-definition bad type", validObject("extension-definition", member{"extension_types", `["new-thing"]`}),
			`extension_types[0]: must be one of "new-sdo", "new-sco", "new-sro", "property-extension", "toplevel-property-extension", got "new-thing"`},
		{"extension-definition empty types", validObject("extension-definition", member{"extension_types", `[]`}), `extension_types: must not be empty`},
		{"extension-definition properties", validObject("extension-definition", member{"extension_types", `["toplevel-property-extension"]`}, member{"extension_properties", `["x_rank"]`}), ""},
		{"extension-definition stray properties", validObject("extension-definition", member{"extension_properties", `["x_rank"]`}),
			`extension_properties: only allowed when extension_types includes "toplevel-property-extension"`},
		// language-content
		{"language-content", validObject("language-content"), ""},
		{"language-content contents not dict", validObject("language-content", member{"contents", `{"de":"Name"}`}), `contents.de: must be a dictionary, got string`},
		{"language-content empty contents", validObject("language-content", member{"contents", `{}`}), `contents: must not be empty`},
		// custom objects
		{"custom SDO", objectJSON(custom), ""},
		{"custom SDO bad common property", objectJSON(custom, member{"created_by_ref", `"` + malwareID + `"`}),
			`created_by_ref: must reference an identity, got "` + malwareID + `"`},
		{"custom SDO by extension", objectJSON(custom, member{"extensions", newSDOExt}), ""},
		{"custom SCO by extension", objectJSON(custom, member{"spec_version", ""}, member{"created", ""}, member{"modified", ""}, member{"extensions", newSCOExt}), ""},
		{"custom object bad property name", objectJSON(custom, member{"x_Acme", `1`}), `x_Acme: custom property names must contain only a–z, 0–9 and underscore`},
	})
}

func TestDeterministicSCOIDs(t *testing.T) {
	tests := []struct {
		name, obj string
		warn      string // "" when none
	}{
		{"ipv4 matches", `{"type":"ipv4-addr","id":"ipv4-addr--28bb3599-77cd-5a82-a950-b5bc3caf07c4","value":"198.51.100.3"}`, ""},
		{"ipv4 mismatch", `{"type":"ipv4-addr","id":"ipv4-addr--ff26c055-6336-5bc5-b98d-13d6226742dd","value":"198.51.100.3"}`,
			"id: not the deterministic UUIDv5 of its ID contributing properties (value), which is ipv4-addr--28bb3599-77cd-5a82-a950-b5bc3caf07c4 (STIX 2.1 §2.9: SCOs SHOULD use it)"},
		{"ipv4 version 4 not checked", `{"type":"ipv4-addr","id":"ipv4-addr--efcd5e80-570d-4131-b213-62cb18eaa6a8","value":"198.51.100.3"}`, ""},
		{"domain matches", `{"type":"domain-name","id":"domain-name--bedb4899-d24b-5401-bc86-8f6b4cc18ec7","value":"example.com"}`, ""},
		{"file one hash of several", `{"type":"file","id":"file--b91bcf06-0d11-5a89-9c3a-8d4279aefe56","hashes":{"x_other":"1234","SHA-256":"fe90a7e910cb3a4739bed9180e807e93fa70c90f25a8915476f5e4bfbac681db"}}`, ""},
		{"escapes canonicalised", `{"type":"domain-name","id":"domain-name--bedb4899-d24b-5401-bc86-8f6b4cc18ec7","value":"ex\u0061mple.com"}`, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			it := decodeOne(t, tc.obj)
			checkItemErr(t, it, "")
			got := strings.Join(it.Warnings, "\n")
			if got != tc.warn {
				t.Errorf("warnings\n\t%s\nwant\n\t%s", got, tc.warn)
			}
		})
	}
}

// TestInfrastructureExample checks that every object of the OASIS
// infrastructure example is valid, including the one whose UUID is written
// partly in upper case.
func TestInfrastructureExample(t *testing.T) {
	items := decodeAll(t, bundleToEnvelope(t, readShared(t, "oasis-examples/infrastructure.json")))
	bad := 0
	for _, it := range items {
		if it.Err != nil {
			bad++
			t.Errorf("unexpected error %v", it.Err)
		}
	}
	if bad != 0 {
		t.Errorf("%d objects failed, want 0", bad)
	}
}

// TestNegativeTLP2Example checks that the upstream TLP 2.0 example with
// real defects fails where it is wrong, and only there.
func TestNegativeTLP2Example(t *testing.T) {
	items := decodeAll(t, bundleToEnvelope(t, readShared(t, "negative/using-tlp2.0-green.invalid.json")))
	want := []string{"", "",
		`relationship--1621d4d4-b67d-11e3-9670-f01faf20d111: created: must be a STIX timestamp, YYYY-MM-DDTHH:MM:SS[.s+]Z in UTC, got "2022-101-27T13:49:54.326Z"`}
	if len(items) != len(want) {
		t.Fatalf("got %d items, want %d", len(items), len(want))
	}
	for i, it := range items {
		checkItemErr(t, it, want[i])
	}
}
