package stix

import (
	"strings"
	"testing"
	"time"

	"github.com/ctigate/ctigate"
)

// member is one "name": value pair of a test object; value is raw JSON.
type member struct{ name, value string }

// objectJSON renders base with changes applied in order: a change replaces
// the member of the same name in place, deletes it when its value is "",
// and is appended when base has no such member.
func objectJSON(base []member, changes ...member) string {
	ms := append([]member(nil), base...)
	for _, c := range changes {
		found := false
		for i := range ms {
			if ms[i].name == c.name {
				ms[i].value = c.value
				found = true
				break
			}
		}
		if !found {
			ms = append(ms, c)
		}
	}
	var b strings.Builder
	b.WriteByte('{')
	first := true
	for _, m := range ms {
		if m.value == "" {
			continue
		}
		if !first {
			b.WriteByte(',')
		}
		first = false
		b.WriteString(`"` + m.name + `":` + m.value)
	}
	b.WriteByte('}')
	return b.String()
}

const (
	indicatorID = "indicator--e2e1a340-4415-4ba8-9671-f7343fbf0836"
	tsCreated   = "2016-01-20T12:31:12.123Z"
	tsModified  = "2017-02-21T13:32:13.456789Z"
)

var (
	indicator = []member{
		{"type", `"indicator"`},
		{"spec_version", `"2.1"`},
		{"id", `"` + indicatorID + `"`},
		{"created", `"` + tsCreated + `"`},
		{"modified", `"` + tsModified + `"`},
		{"pattern", `"[ipv4-addr:value = '198.51.100.1']"`},
		{"pattern_type", `"stix"`},
		{"valid_from", `"2016-01-20T12:31:12.123Z"`},
	}
	ipv4 = []member{
		{"type", `"ipv4-addr"`},
		{"id", `"ipv4-addr--ff26c055-6336-5bc5-b98d-13d6226742dd"`},
		{"value", `"198.51.100.3"`},
	}
	marking = []member{
		{"type", `"marking-definition"`},
		{"spec_version", `"2.1"`},
		{"id", `"marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da"`},
		{"created", `"2017-01-20T00:00:00.000Z"`},
		{"definition_type", `"tlp"`},
		{"name", `"TLP:GREEN"`},
		{"definition", `{"tlp":"green"}`},
	}
	custom = []member{
		{"type", `"x-acme-widget"`},
		{"spec_version", `"2.1"`},
		{"id", `"x-acme-widget--4527e5de-8572-446a-a57a-706f15467461"`},
		{"created", `"` + tsCreated + `"`},
		{"modified", `"` + tsCreated + `"`},
		{"x_acme_size", `14`},
	}
	newSCOExt = `{"extension-definition--d83fce45-ef58-4c6c-a3f4-1fbc32e98c6e":{"extension_type":"new-sco"}}`
	newSDOExt = `{"extension-definition--fb9c968a-745b-4ade-9b25-c324172197f4":{"extension_type":"new-sdo"}}`
)

// decodeOne decodes an envelope holding the single object obj and returns
// its Item.
func decodeOne(t *testing.T, obj string) Item {
	t.Helper()
	items, err := DecodeEnvelope([]byte(`{"objects":[` + obj + `]}`))
	if err != nil {
		t.Fatalf("DecodeEnvelope: unexpected envelope error %v for object %s", err, obj)
	}
	if len(items) != 1 {
		t.Fatalf("DecodeEnvelope: got %d items, want 1", len(items))
	}
	return items[0]
}

// checkItemErr checks that it.Err is nil when want is "", and otherwise an
// Invalid error whose message is exactly want.
func checkItemErr(t *testing.T, it Item, want string) {
	t.Helper()
	if want == "" {
		if it.Err != nil {
			t.Fatalf("unexpected error: %v\nobject: %s", it.Err, it.Raw)
		}
		return
	}
	if it.Err == nil {
		t.Fatalf("got no error, want %q\nobject: %s", want, it.Raw)
	}
	if k := ctigate.KindOf(it.Err); k != ctigate.Invalid {
		t.Errorf("error kind %v, want %v", k, ctigate.Invalid)
	}
	if got := ctigate.MessageOf(it.Err); got != want {
		t.Errorf("got error\n\t%s\nwant\n\t%s", got, want)
	}
	if it.Err.Error() != ctigate.MessageOf(it.Err) {
		t.Errorf("Error() = %q differs from the client message %q", it.Err.Error(), ctigate.MessageOf(it.Err))
	}
	if it.Object != (Object{}) {
		t.Errorf("invalid item has Object %+v, want the zero Object", it.Object)
	}
}

func TestObjectRules(t *testing.T) {
	long := strings.Repeat("a", 250)
	tests := []struct {
		name string
		obj  string
		err  string // the whole message; "" when valid
	}{
		// type
		{"valid indicator", objectJSON(indicator), ""},
		{"type missing", objectJSON(indicator, member{"type", ""}),
			indicatorID + ": type: required"},
		{"type number", objectJSON(indicator, member{"type", `5`}),
			indicatorID + ": type: must be a string, got number"},
		{"type null", objectJSON(indicator, member{"type", `null`}),
			indicatorID + ": type: must be a string, got null"},
		{"type object", objectJSON(indicator, member{"type", `{"a":"indicator"}`}),
			indicatorID + ": type: must be a string, got object"},
		{"type too short", objectJSON(indicator, member{"type", `"ab"`}, member{"id", `"ab--e2e1a340-4415-4ba8-9671-f7343fbf0836"`}),
			`objects[0]: type: must be 3 to 250 characters long, got "ab"`},
		{"type 3 characters", objectJSON(custom, member{"type", `"abc"`}, member{"id", `"abc--4527e5de-8572-446a-a57a-706f15467461"`}), ""},
		{"type 250 characters", objectJSON(custom, member{"type", `"` + long + `"`}, member{"id", `"` + long + `--4527e5de-8572-446a-a57a-706f15467461"`}), ""},
		{"type 251 characters", objectJSON(custom, member{"type", `"` + long + `b"`}, member{"id", `"` + long + `b--4527e5de-8572-446a-a57a-706f15467461"`}),
			`objects[0]: type: must be 3 to 250 characters long, got "` + long[:64] + `"…`},
		{"type upper case", objectJSON(indicator, member{"type", `"Indicator"`}),
			indicatorID + `: type: must begin with a lowercase ASCII letter, got "Indicator"`},
		{"type inner upper case", objectJSON(indicator, member{"type", `"inDicator"`}),
			indicatorID + `: type: must contain only lowercase ASCII letters, digits and hyphens, got "inDicator"`},
		{"type leading digit", objectJSON(custom, member{"type", `"1x-acme"`}),
			`x-acme-widget--4527e5de-8572-446a-a57a-706f15467461: type: must begin with a lowercase ASCII letter, got "1x-acme"`},
		{"type leading hyphen", objectJSON(custom, member{"type", `"-x-acme"`}),
			`x-acme-widget--4527e5de-8572-446a-a57a-706f15467461: type: must begin with a lowercase ASCII letter, got "-x-acme"`},
		{"type trailing hyphen", objectJSON(custom, member{"type", `"x-acme-"`}, member{"id", `"x-acme---4527e5de-8572-446a-a57a-706f15467461"`}),
			`objects[0]: type: must not end with a hyphen, got "x-acme-"`},
		{"type double hyphen", objectJSON(custom, member{"type", `"x--acme"`}),
			`x-acme-widget--4527e5de-8572-446a-a57a-706f15467461: type: must not contain "--", got "x--acme"`},
		{"type underscore", objectJSON(custom, member{"type", `"x_acme_widget"`}),
			`x-acme-widget--4527e5de-8572-446a-a57a-706f15467461: type: must contain only lowercase ASCII letters, digits and hyphens, got "x_acme_widget"`},
		{"type non-ASCII", objectJSON(custom, member{"type", `"x-acmé"`}),
			`x-acme-widget--4527e5de-8572-446a-a57a-706f15467461: type: must contain only lowercase ASCII letters, digits and hyphens, got "x-acmé"`},
		{"type escaped", objectJSON(indicator, member{"type", `"\u0069ndicator"`}), ""},
		{"custom type with digits", objectJSON(custom, member{"type", `"x-acme-2"`}, member{"id", `"x-acme-2--4527e5de-8572-446a-a57a-706f15467461"`}), ""},

		// id
		{"id missing", objectJSON(indicator, member{"id", ""}),
			"objects[0]: id: required"},
		{"id number", objectJSON(indicator, member{"id", `42`}),
			"objects[0]: id: must be a string, got number"},
		{"id without separator", objectJSON(indicator, member{"id", `"e2e1a340-4415-4ba8-9671-f7343fbf0836"`}),
			`objects[0]: id: must be "indicator--<UUID>", got "e2e1a340-4415-4ba8-9671-f7343fbf0836"`},
		{"id prefix mismatch", objectJSON(indicator, member{"id", `"malware--e2e1a340-4415-4ba8-9671-f7343fbf0836"`}),
			`malware--e2e1a340-4415-4ba8-9671-f7343fbf0836: id: prefix "malware" does not match type "indicator"`},
		{"id empty prefix", objectJSON(indicator, member{"id", `"--e2e1a340-4415-4ba8-9671-f7343fbf0836"`}),
			`objects[0]: id: prefix "" does not match type "indicator"`},
		{"id upper-case UUID", objectJSON(indicator, member{"id", `"indicator--E2E1A340-4415-4BA8-9671-F7343FBF0836"`}), ``},
		{"id short UUID", objectJSON(indicator, member{"id", `"indicator--e2e1a340-4415-4ba8-9671-f7343fbf083"`}),
			`objects[0]: id: UUID part "e2e1a340-4415-4ba8-9671-f7343fbf083" must be hexadecimal in the form xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`},
		{"id UUID without hyphens", objectJSON(indicator, member{"id", `"indicator--e2e1a34044154ba89671f7343fbf0836"`}),
			`objects[0]: id: UUID part "e2e1a34044154ba89671f7343fbf0836" must be hexadecimal in the form xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`},
		{"id UUID in braces", objectJSON(indicator, member{"id", `"indicator--{e2e1a340-4415-4ba8-9671-f7343fbf08}"`}),
			`objects[0]: id: UUID part "{e2e1a340-4415-4ba8-9671-f7343fbf08}" must be hexadecimal in the form xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`},
		{"id nil UUID", objectJSON(indicator, member{"id", `"indicator--00000000-0000-0000-0000-000000000000"`}),
			`objects[0]: id: UUID part "00000000-0000-0000-0000-000000000000" must be an RFC 4122 UUID of version 1 to 5`},
		{"id UUID version 7", objectJSON(indicator, member{"id", `"indicator--01890a5d-ac96-774b-bcce-b302099a8057"`}),
			`objects[0]: id: UUID part "01890a5d-ac96-774b-bcce-b302099a8057" must be an RFC 4122 UUID of version 1 to 5`},
		{"id UUID wrong variant", objectJSON(indicator, member{"id", `"indicator--e2e1a340-4415-4ba8-c671-f7343fbf0836"`}),
			`objects[0]: id: UUID part "e2e1a340-4415-4ba8-c671-f7343fbf0836" must be an RFC 4122 UUID (variant bits 10)`},
		{"id UUID version 1", objectJSON(indicator, member{"id", `"indicator--1621d4d4-b67d-11e3-9670-f01faf20d111"`}), ""},
		{"id UUID version 3", objectJSON(indicator, member{"id", `"indicator--6fa459ea-ee8a-3ca4-894e-db77e160355e"`}), ""},
		{"id UUID version 5", objectJSON(indicator, member{"id", `"indicator--886313e1-3b8a-5372-9b90-0c9aee199e5d"`}), ""},
		{"id hyphenated type", objectJSON(indicator, member{"type", `"attack-pattern"`}, member{"id", `"attack-pattern--7e33a43e-e34b-40ec-89da-36c9bb2cacd5"`}, member{"name", `"Spearphishing"`}), ""},

		// spec_version
		{"spec_version missing on SDO", objectJSON(indicator, member{"spec_version", ""}),
			indicatorID + ": spec_version: required"},
		{"spec_version 2.0", objectJSON(indicator, member{"spec_version", `"2.0"`}),
			indicatorID + `: spec_version: must be "2.1", got "2.0"`},
		{"spec_version number", objectJSON(indicator, member{"spec_version", `2.1`}),
			indicatorID + ": spec_version: must be a string, got number"},
		{"spec_version missing on SCO", objectJSON(ipv4), ""},
		{"spec_version 2.1 on SCO", objectJSON(ipv4, member{"spec_version", `"2.1"`}), ""},
		{"spec_version 2.0 on SCO", objectJSON(ipv4, member{"spec_version", `"2.0"`}),
			`ipv4-addr--ff26c055-6336-5bc5-b98d-13d6226742dd: spec_version: must be "2.1", got "2.0"`},
		{"spec_version missing on marking-definition", objectJSON(marking, member{"spec_version", ""}),
			"marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da: spec_version: required"},
		{"spec_version missing on custom object", objectJSON(custom, member{"spec_version", ""}),
			"x-acme-widget--4527e5de-8572-446a-a57a-706f15467461: spec_version: required"},
		{"custom SCO by extension", objectJSON(custom, member{"spec_version", ""}, member{"created", ""}, member{"modified", ""}, member{"extensions", newSCOExt}), ""},
		{"custom SDO by extension", objectJSON(custom, member{"spec_version", ""}, member{"extensions", newSDOExt}),
			"x-acme-widget--4527e5de-8572-446a-a57a-706f15467461: spec_version: required"},
		{"spec type cannot become SCO", objectJSON(indicator, member{"spec_version", ""}, member{"extensions", newSCOExt}),
			indicatorID + ": spec_version: required"},
		{"unreadable extensions keep SDO rules", objectJSON(custom, member{"created", ""}, member{"extensions", `{"x":{"extension_type":5}}`}),
			"x-acme-widget--4527e5de-8572-446a-a57a-706f15467461: created: required"},

		// created
		{"created missing on SDO", objectJSON(indicator, member{"created", ""}),
			indicatorID + ": created: required"},
		{"created missing on marking-definition", objectJSON(marking, member{"created", ""}),
			"marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da: created: required"},
		{"created number", objectJSON(indicator, member{"created", `5`}),
			indicatorID + ": created: must be a string, got number"},
		{"created boolean", objectJSON(indicator, member{"created", `true`}),
			indicatorID + ": created: must be a string, got boolean"},
		{"created array", objectJSON(indicator, member{"created", `["` + tsCreated + `"]`}),
			indicatorID + ": created: must be a string, got array"},
		{"created malformed", objectJSON(indicator, member{"created", `"2022-101-27T13:49:54.326Z"`}),
			indicatorID + `: created: must be a STIX timestamp, YYYY-MM-DDTHH:MM:SS[.s+]Z in UTC, got "2022-101-27T13:49:54.326Z"`},
		{"created with offset", objectJSON(indicator, member{"created", `"2016-01-20T12:31:12.123+01:00"`}),
			indicatorID + `: created: must be in UTC with a literal "Z", not a numeric offset, got "2016-01-20T12:31:12.123+01:00"`},
		{"created impossible date", objectJSON(indicator, member{"created", `"2016-02-30T12:31:12.123Z"`}),
			indicatorID + `: created: day out of range, got "2016-02-30T12:31:12.123Z"`},
		{"created without fraction", objectJSON(indicator, member{"created", `"2016-01-20T12:31:12Z"`}),
			indicatorID + `: created: must have at least millisecond precision (three fraction digits), got "2016-01-20T12:31:12Z"`},
		{"created with one fraction digit", objectJSON(indicator, member{"created", `"2016-01-20T12:31:12.1Z"`}),
			indicatorID + `: created: must have at least millisecond precision (three fraction digits), got "2016-01-20T12:31:12.1Z"`},
		{"created escaped", objectJSON(indicator, member{"created", `"2016-01-20T12:31:12.123\u005a"`}), ""},

		// modified
		{"modified missing on SDO", objectJSON(indicator, member{"modified", ""}),
			indicatorID + ": modified: required"},
		{"modified missing on SRO", `{"type":"relationship","spec_version":"2.1","id":"relationship--44298a74-ba52-4f0c-87a3-1824e67d7fad","created":"2016-04-06T20:06:37.000Z","relationship_type":"indicates","source_ref":"` + indicatorID + `","target_ref":"malware--31b940d4-6f7f-459a-80ea-9c1f17b5891b"}`,
			"relationship--44298a74-ba52-4f0c-87a3-1824e67d7fad: modified: required"},
		{"modified missing on language-content", `{"type":"language-content","spec_version":"2.1","id":"language-content--b86bd89f-98bb-4fa9-8cb2-9ad421da981d","created":"2017-02-08T21:31:22.007Z","object_ref":"campaign--12a111f0-b824-4baf-a224-83b80237a094","object_modified":"2017-02-08T21:31:22.007Z","contents":{"de":{"name":"Bank Angriff 1"}}}`,
			"language-content--b86bd89f-98bb-4fa9-8cb2-9ad421da981d: modified: required"},
		{"modified missing on extension-definition", `{"type":"extension-definition","spec_version":"2.1","id":"extension-definition--60a3c5c5-0d10-413e-aab3-9e08dde9e88d","created":"2022-10-01T00:00:00.000Z","created_by_ref":"identity--b5437038-eb96-4652-88bc-5f94993b7326","name":"TLP 2.0","schema":"https://example.org/tlp2.json","version":"1.0.0","extension_types":["property-extension"]}`,
			"extension-definition--60a3c5c5-0d10-413e-aab3-9e08dde9e88d: modified: required"},
		{"modified missing on marking-definition", objectJSON(marking), ""},
		{"modified present on marking-definition", objectJSON(marking, member{"modified", `"2021-12-01T16:19:51.601791Z"`}), ""},
		{"modified string of wrong form", objectJSON(indicator, member{"modified", `"yesterday"`}),
			indicatorID + `: modified: must be a STIX timestamp, YYYY-MM-DDTHH:MM:SS[.s+]Z in UTC, got "yesterday"`},
		{"modified object", objectJSON(indicator, member{"modified", `{}`}),
			indicatorID + ": modified: must be a string, got object"},
		{"modified before created", objectJSON(indicator, member{"modified", `"2016-01-20T12:31:12.122Z"`}),
			indicatorID + `: modified: must not be earlier than created ("2016-01-20T12:31:12.122Z" < "2016-01-20T12:31:12.123Z")`},
		{"modified equal to created", objectJSON(indicator, member{"modified", `"2016-01-20T12:31:12.123000Z"`}), ""},
		{"SCO with modified only", objectJSON(ipv4, member{"modified", `"2016-01-20T12:31:12.123Z"`}), ""},
		{"SCO with malformed created", objectJSON(ipv4, member{"created", `"2016-01-20"`}),
			`ipv4-addr--ff26c055-6336-5bc5-b98d-13d6226742dd: created: must be a STIX timestamp, YYYY-MM-DDTHH:MM:SS[.s+]Z in UTC, got "2016-01-20"`},

		// labels when the id is unusable
		{"label for non-string id", objectJSON(indicator, member{"id", `42`}, member{"created", `5`}),
			"objects[0]: id: must be a string, got number"},
		{"label for invalid id", objectJSON(indicator, member{"id", `"indicator--x"`}, member{"type", ""}),
			"objects[0]: type: required"},
		{"label quotes odd ids", objectJSON(indicator, member{"id", `"a\nb"`}),
			`objects[0]: id: must be "indicator--<UUID>", got "a\nb"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			checkItemErr(t, decodeOne(t, tc.obj), tc.err)
		})
	}
}

// TestEveryObjectType checks the common-property rules per kind of object
// for every type STIX 2.1 defines.
func TestEveryObjectType(t *testing.T) {
	sdos := []string{"attack-pattern", "campaign", "course-of-action", "grouping", "identity", "incident",
		"indicator", "infrastructure", "intrusion-set", "location", "malware", "malware-analysis", "note",
		"observed-data", "opinion", "report", "threat-actor", "tool", "vulnerability",
		"relationship", "sighting", "language-content", "extension-definition", "x-mitre-tactic", "attack-flow"}
	scos := []string{"artifact", "autonomous-system", "directory", "domain-name", "email-addr", "email-message",
		"file", "ipv4-addr", "ipv6-addr", "mac-addr", "mutex", "network-traffic", "process", "software", "url",
		"user-account", "windows-registry-key", "x509-certificate"}
	const uuid = "--6ba7b810-9dad-41d1-80b4-00c04fd430c8"
	full := func(typ string) []member {
		return append([]member{
			{"type", `"` + typ + `"`}, {"spec_version", `"2.1"`}, {"id", `"` + typ + uuid + `"`},
			{"created", `"` + tsCreated + `"`}, {"modified", `"` + tsModified + `"`},
		}, minimalProperties[typ]...)
	}
	for _, typ := range sdos {
		t.Run(typ, func(t *testing.T) {
			checkItemErr(t, decodeOne(t, objectJSON(full(typ))), "")
			checkItemErr(t, decodeOne(t, objectJSON(full(typ), member{"spec_version", ""})), typ+uuid+": spec_version: required")
			checkItemErr(t, decodeOne(t, objectJSON(full(typ), member{"created", ""})), typ+uuid+": created: required")
			checkItemErr(t, decodeOne(t, objectJSON(full(typ), member{"modified", ""})), typ+uuid+": modified: required")
		})
	}
	for _, typ := range scos {
		t.Run(typ, func(t *testing.T) {
			it := decodeOne(t, objectJSON(append([]member{{"type", `"` + typ + `"`}, {"id", `"` + typ + uuid + `"`}}, minimalProperties[typ]...)))
			checkItemErr(t, it, "")
			if want := (Object{ID: typ + uuid, Type: typ, SpecVersion: "2.1"}); it.Object != want {
				t.Errorf("Object = %+v, want %+v", it.Object, want)
			}
			checkItemErr(t, decodeOne(t, objectJSON(full(typ))), "")
		})
	}
	t.Run("marking-definition", func(t *testing.T) {
		checkItemErr(t, decodeOne(t, objectJSON(full("marking-definition"), member{"modified", ""})), "")
		checkItemErr(t, decodeOne(t, objectJSON(full("marking-definition"), member{"created", ""})),
			"marking-definition"+uuid+": created: required")
	})
}

// minimalProperties are, per type, the properties beyond the common ones
// that make an object of the type valid (see validate_types.go).
var minimalProperties = map[string][]member{
	"attack-pattern":       {{"name", `"Spearphishing"`}},
	"campaign":             {{"name", `"Green Group Attacks"`}},
	"course-of-action":     {{"name", `"Add TCP port 80 filter rule"`}},
	"grouping":             {{"context", `"suspicious-activity"`}, {"object_refs", `["` + indicatorID + `"]`}},
	"identity":             {{"name", `"CERT-A"`}},
	"incident":             {{"name", `"Breach"`}},
	"indicator":            {{"pattern", `"[ipv4-addr:value = '198.51.100.1']"`}, {"pattern_type", `"stix"`}, {"valid_from", `"2016-01-01T00:00:00Z"`}},
	"infrastructure":       {{"name", `"Poison Ivy C2"`}},
	"intrusion-set":        {{"name", `"Bobcat Breakin"`}},
	"location":             {{"region", `"europe"`}},
	"malware":              {{"is_family", `false`}},
	"malware-analysis":     {{"product", `"av"`}, {"result", `"malicious"`}},
	"note":                 {{"content", `"text"`}, {"object_refs", `["` + indicatorID + `"]`}},
	"observed-data":        {{"first_observed", `"2015-12-21T19:00:00Z"`}, {"last_observed", `"2015-12-21T19:00:00Z"`}, {"number_observed", `1`}, {"object_refs", `["ipv4-addr--efcd5e80-570d-4131-b213-62cb18eaa6a8"]`}},
	"opinion":              {{"opinion", `"agree"`}, {"object_refs", `["` + indicatorID + `"]`}},
	"report":               {{"name", `"Report"`}, {"published", `"2016-01-20T17:00:00.000Z"`}, {"object_refs", `["` + indicatorID + `"]`}},
	"threat-actor":         {{"name", `"Evil Org"`}},
	"tool":                 {{"name", `"VNC"`}},
	"vulnerability":        {{"name", `"CVE-2016-1234"`}},
	"relationship":         {{"relationship_type", `"indicates"`}, {"source_ref", `"` + indicatorID + `"`}, {"target_ref", `"malware--31b940d4-6f7f-459a-80ea-9c1f17b5891b"`}},
	"sighting":             {{"sighting_of_ref", `"` + indicatorID + `"`}},
	"language-content":     {{"object_ref", `"` + indicatorID + `"`}, {"contents", `{"de":{"name":"Name"}}`}},
	"extension-definition": {{"created_by_ref", `"identity--b3bca3c2-1f3d-4b54-b44f-dac42c3a8f01"`}, {"name", `"x"`}, {"schema", `"https://example.org/s.json"`}, {"version", `"1.0.0"`}, {"extension_types", `["property-extension"]`}},
	"marking-definition":   {{"definition_type", `"statement"`}, {"definition", `{"statement":"Copyright 2016, Example Corp"}`}},
	"artifact":             {{"payload_bin", `"aGVsbG8="`}},
	"autonomous-system":    {{"number", `15139`}},
	"directory":            {{"path", `"C:\\Windows"`}},
	"domain-name":          {{"value", `"example.com"`}},
	"email-addr":           {{"value", `"john@example.com"`}},
	"email-message":        {{"is_multipart", `false`}},
	"file":                 {{"name", `"qwerty.dll"`}},
	"ipv4-addr":            {{"value", `"198.51.100.3"`}},
	"ipv6-addr":            {{"value", `"2001:0db8::1"`}},
	"mac-addr":             {{"value", `"d2:fb:49:24:37:18"`}},
	"mutex":                {{"name", `"__CLEANSWEEP__"`}},
	"network-traffic":      {{"protocols", `["tcp"]`}, {"dst_ref", `"ipv4-addr--efcd5e80-570d-4131-b213-62cb18eaa6a8"`}},
	"process":              {{"pid", `1221`}},
	"software":             {{"name", `"Word"`}},
	"url":                  {{"value", `"https://example.com/research/index.html"`}},
	"user-account":         {{"user_id", `"1001"`}},
	"windows-registry-key": {{"key", `"HKEY_LOCAL_MACHINE\\System"`}},
	"x509-certificate":     {{"serial_number", `"36:f7:d4:32:f4:ab:70:ea:d3:ce:98:6e:ea:99:93:49:32:0a:b7:06"`}},
}

func TestItemFields(t *testing.T) {
	created := time.Date(2016, 1, 20, 12, 31, 12, 123e6, time.UTC)
	modified := time.Date(2017, 2, 21, 13, 32, 13, 456789e3, time.UTC)
	tests := []struct {
		name        string
		obj         string
		id, version string
		object      Object
		valid       bool
	}{
		{"SDO", objectJSON(indicator), indicatorID, tsModified,
			Object{ID: indicatorID, Type: "indicator", SpecVersion: "2.1", Created: created, Modified: modified, Version: modified}, true},
		{"marking-definition", objectJSON(marking), "marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da", "2017-01-20T00:00:00.000Z",
			Object{ID: "marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da", Type: "marking-definition", SpecVersion: "2.1",
				Created: time.Date(2017, 1, 20, 0, 0, 0, 0, time.UTC), Version: time.Date(2017, 1, 20, 0, 0, 0, 0, time.UTC)}, true},
		{"SCO", objectJSON(ipv4), "ipv4-addr--ff26c055-6336-5bc5-b98d-13d6226742dd", "",
			Object{ID: "ipv4-addr--ff26c055-6336-5bc5-b98d-13d6226742dd", Type: "ipv4-addr", SpecVersion: "2.1"}, true},
		{"versioned SCO", objectJSON(ipv4, member{"created", `"` + tsCreated + `"`}), "ipv4-addr--ff26c055-6336-5bc5-b98d-13d6226742dd", tsCreated,
			Object{ID: "ipv4-addr--ff26c055-6336-5bc5-b98d-13d6226742dd", Type: "ipv4-addr", SpecVersion: "2.1", Created: created, Version: created}, true},
		{"escaped id", objectJSON(indicator, member{"id", `"indicator--e2e1a340-4415-4ba8-9671-f7343fbf083\u0036"`}), indicatorID, tsModified,
			Object{ID: indicatorID, Type: "indicator", SpecVersion: "2.1", Created: created, Modified: modified, Version: modified}, true},
		// Invalid objects still report id and version, as sent, for status
		// reports.
		{"invalid, version from modified", objectJSON(indicator, member{"spec_version", ""}), indicatorID, tsModified, Object{}, false},
		{"invalid, version from created", objectJSON(indicator, member{"modified", `5`}, member{"id", `"not an id"`}), "not an id", tsCreated, Object{}, false},
		{"invalid, no strings", objectJSON(indicator, member{"id", `[]`}, member{"created", `1`}, member{"modified", `null`}), "", "", Object{}, false},
		{"invalid, bad timestamp kept as sent", objectJSON(indicator, member{"modified", `"2016-99-01"`}), indicatorID, "2016-99-01", Object{}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			it := decodeOne(t, tc.obj)
			if (it.Err == nil) != tc.valid {
				t.Fatalf("Err = %v, want valid = %v", it.Err, tc.valid)
			}
			if it.ID != tc.id || it.Version != tc.version {
				t.Errorf("ID, Version = %q, %q; want %q, %q", it.ID, it.Version, tc.id, tc.version)
			}
			if it.Object != tc.object {
				t.Errorf("Object = %+v\nwant %+v", it.Object, tc.object)
			}
		})
	}
}

func TestDuplicateMembersFailOnlyTheirObject(t *testing.T) {
	good := objectJSON(indicator)
	dupRefs := strings.TrimSuffix(objectJSON(indicator, member{"object_marking_refs", `["marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da"]`}), "}") +
		`,"object_marking_refs":["marking-definition--5e57c739-391a-4eb3-b6be-7d15ca92d5ed"]}`
	dupID := strings.TrimSuffix(objectJSON(indicator), "}") + `,"id":"indicator--0b2a8b7e-2b62-4e6e-9e07-7d1a1e3b6c55"}`
	dupModified := strings.TrimSuffix(objectJSON(indicator), "}") + `,"modified":"2030-01-01T00:00:00.000Z"}`
	dupEscaped := strings.TrimSuffix(objectJSON(indicator), "}") + `,"t\u0079pe":"malware"}`
	dupNested := objectJSON(indicator, member{"granular_markings", `[{"marking_ref":"marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da","selectors":["name"],"selectors":["pattern"]}]`})
	dupDeep := objectJSON(indicator, member{"x_acme", `{"a":[{"b":{"c":1,"c":2}}]}`})

	cases := []struct {
		name, obj, err, id, version string
	}{
		{"top-level", dupRefs, indicatorID + ": object_marking_refs: duplicate member name", indicatorID, tsModified},
		{"id itself", dupID, "objects[1]: id: duplicate member name", "", tsModified},
		{"modified", dupModified, indicatorID + ": modified: duplicate member name", indicatorID, tsCreated},
		{"escaped name", dupEscaped, indicatorID + ": type: duplicate member name", indicatorID, tsModified},
		{"nested", dupNested, indicatorID + ": granular_markings/0/selectors: duplicate member name", indicatorID, tsModified},
		{"deep", dupDeep, indicatorID + ": x_acme/a/0/b/c: duplicate member name", indicatorID, tsModified},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			body := `{"objects":[` + good + `,` + tc.obj + `,` + good + `]}`
			items, err := DecodeEnvelope([]byte(body))
			if err != nil {
				t.Fatalf("DecodeEnvelope: envelope error %v; want only the object to fail", err)
			}
			if len(items) != 3 {
				t.Fatalf("got %d items, want 3", len(items))
			}
			checkItemErr(t, items[0], "")
			checkItemErr(t, items[2], "")
			checkItemErr(t, items[1], tc.err)
			if items[1].ID != tc.id || items[1].Version != tc.version {
				t.Errorf("ID, Version = %q, %q; want %q, %q (ambiguous members are not reported)",
					items[1].ID, items[1].Version, tc.id, tc.version)
			}
			if string(items[1].Raw) != tc.obj {
				t.Errorf("Raw = %s, want the object as sent", items[1].Raw)
			}
		})
	}
}
