package stix

import (
	"bytes"
	"strconv"
	"strings"
	"testing"

	"github.com/ctigate/ctigate"
)

func TestEnvelopeErrors(t *testing.T) {
	obj := objectJSON(indicator)
	dupObj := strings.TrimSuffix(obj, "}") + `,"type":"indicator"}` // sends DecodeEnvelope down its careful path
	tests := []struct {
		name, body, err string
	}{
		{"empty", ``, `invalid TAXII envelope: empty body: expected a TAXII envelope {"objects": [...]}`},
		{"whitespace only", " \n\t ", `invalid TAXII envelope: empty body: expected a TAXII envelope {"objects": [...]}`},
		{"not JSON", `objects: []`, `invalid TAXII envelope: invalid JSON at byte offset 0: invalid character 'o' at start of value`},
		{"truncated", `{"objects":[` + obj, `invalid TAXII envelope: invalid JSON: unexpected end of input`},
		{"bad token inside an object", `{"objects":[{"type":"indicator",}]}`,
			`invalid TAXII envelope: invalid JSON at byte offset 32 (in "/objects/0"): invalid character '}' at start of string (expecting '"')`},
		{"array", `[` + obj + `]`, `invalid TAXII envelope: the body is a JSON array at byte offset 0: expected a TAXII envelope {"objects": [...]}`},
		{"string", `  "objects"`, `invalid TAXII envelope: the body is a JSON string at byte offset 2: expected a TAXII envelope {"objects": [...]}`},
		{"null", `null`, `invalid TAXII envelope: the body is a JSON null at byte offset 0: expected a TAXII envelope {"objects": [...]}`},
		{"no objects", `{"more":false}`, `invalid TAXII envelope: the envelope has no "objects" member`},
		{"empty object", `{}`, `invalid TAXII envelope: the envelope has no "objects" member`},
		{"single STIX object", obj,
			`invalid TAXII envelope: the body has no "objects" member: it looks like a single STIX object; TAXII 2.1 expects an envelope {"objects": [...]}`},
		{"objects null", `{"objects":null}`, `invalid TAXII envelope: "objects" must be an array, got null at byte offset 11`},
		{"objects object", `{"objects": {"0":` + obj + `}}`, `invalid TAXII envelope: "objects" must be an array, got object at byte offset 12`},
		{"objects string", `{"objects":"[]"}`, `invalid TAXII envelope: "objects" must be an array, got string at byte offset 11`},
		{"objects empty", `{"more":false,"objects":[ ]}`,
			`invalid TAXII envelope: "objects" at byte offset 24 is empty: an envelope must hold at least one object`},
		{"duplicate objects", `{"objects":[` + obj + `],"objects":[]}`,
			`invalid TAXII envelope: duplicate top-level member "objects" at byte offset ` + itoa(len(`{"objects":[`+obj+`],`))},
		{"duplicate objects, careful path", `{"objects":[` + dupObj + `],"objects":[` + obj + `]}`,
			`invalid TAXII envelope: duplicate top-level member "objects" at byte offset ` + itoa(len(`{"objects":[`+dupObj+`],`))},
		{"duplicate objects, escaped", `{"objects":[` + obj + `],"object\u0073":[` + obj + `]}`,
			`invalid TAXII envelope: duplicate top-level member "objects" at byte offset ` + itoa(len(`{"objects":[`+obj+`],`))},
		{"duplicate more", `{"more":true,"objects":[` + obj + `],"more":false}`,
			`invalid TAXII envelope: duplicate top-level member "more" at byte offset ` + itoa(len(`{"more":true,"objects":[`+obj+`],`))},
		{"trailing garbage", `{"objects":[` + obj + `]}x`,
			`invalid TAXII envelope: trailing data after the envelope at byte offset ` + itoa(len(`{"objects":[`+obj+`]}`))},
		{"trailing second envelope", `{"objects":[` + obj + `]}` + "\n" + `{"objects":[` + obj + `]}`,
			`invalid TAXII envelope: trailing data after the envelope at byte offset ` + itoa(len(`{"objects":[`+obj+`]}`)+1)},
		{"invalid UTF-8 in an object", `{"objects":[{"type":"indicator","name":"` + "caf\xe9" + `"}]}`,
			`invalid TAXII envelope: invalid JSON at byte offset 43 (in "/objects/0/name"): invalid UTF-8`},
		{"invalid UTF-8 in a name", `{"objects":[{"` + "\xff" + `":1}]}`,
			`invalid TAXII envelope: invalid JSON at byte offset 14 (in "/objects/0"): invalid UTF-8`},
		{"invalid UTF-8 elsewhere", `{"objects":[` + obj + `],"next":"` + "\xc3\x28" + `"}`,
			`invalid TAXII envelope: invalid JSON at byte offset ` + itoa(len(`{"objects":[`+obj+`],"next":"`)) + ` (in "/next"): invalid UTF-8`},
		{"invalid UTF-8, careful path", `{"objects":[` + dupObj + `,{"name":"` + "\xff" + `"}]}`,
			`invalid TAXII envelope: invalid JSON at byte offset ` + itoa(len(`{"objects":[`+dupObj+`,{"name":"`)) + ` (in "/objects/1/name"): invalid UTF-8`},
		{"byte order mark", "\ufeff" + `{"objects":[` + obj + `]}`,
			`invalid TAXII envelope: invalid JSON at byte offset 0: invalid character '\ufeff' at start of value`},
		{"lone surrogate escape", `{"objects":[{"name":"\ud800"}]}`,
			"invalid TAXII envelope: invalid JSON at byte offset 21 (in \"/objects/0/name\"): invalid surrogate pair `\\ud800\"}]}` in string"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			items, err := DecodeEnvelope([]byte(tc.body))
			if err == nil {
				t.Fatalf("DecodeEnvelope: got %d items and no error, want %q", len(items), tc.err)
			}
			if items != nil {
				t.Errorf("DecodeEnvelope returned %d items with its error, want none", len(items))
			}
			if k := ctigate.KindOf(err); k != ctigate.Invalid {
				t.Errorf("error kind %v, want %v", k, ctigate.Invalid)
			}
			if got := ctigate.MessageOf(err); got != tc.err {
				t.Errorf("got error\n\t%s\nwant\n\t%s", got, tc.err)
			}
		})
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

func TestEnvelopeIgnoresOtherMembers(t *testing.T) {
	obj := objectJSON(indicator)
	for _, body := range []string{
		`{"more":false,"next":"abc","objects":[` + obj + `]}`,
		`{"objects":[` + obj + `],"more":true,"next":"2"}`,
		`{"x_custom":{"a":[1,{"b":null}]},"objects":[` + obj + `],"spec_version":"2.1","id":"bundle--5330e3e3-8f58-4d21-9f4b-793a054c0d33"}`,
		`{"type":"not-a-bundle","objects":[` + obj + `]}`,
		`{"x":{"a":1,"a":2},"objects":[` + obj + `]}`, // duplicates outside "objects" do not matter
	} {
		items, err := DecodeEnvelope([]byte(body))
		if err != nil {
			t.Errorf("DecodeEnvelope(%s): %v", body, err)
			continue
		}
		if len(items) != 1 || items[0].Err != nil {
			t.Errorf("DecodeEnvelope(%s): got %d items, first error %v; want one valid item", body, len(items), items[0].Err)
		}
	}
}

func TestNonObjectElementsFailAlone(t *testing.T) {
	obj := objectJSON(indicator)
	body := `{"objects":[` + obj + `, 42, "indicator", [` + obj + `], null, true, {}, ` + obj + `]}`
	items, err := DecodeEnvelope([]byte(body))
	if err != nil {
		t.Fatalf("DecodeEnvelope: %v", err)
	}
	want := []string{
		"",
		"objects[1]: must be a JSON object, got number",
		"objects[2]: must be a JSON object, got string",
		"objects[3]: must be a JSON object, got array",
		"objects[4]: must be a JSON object, got null",
		"objects[5]: must be a JSON object, got boolean",
		"objects[6]: type: required",
		"",
	}
	if len(items) != len(want) {
		t.Fatalf("got %d items, want %d", len(items), len(want))
	}
	for i, it := range items {
		if it.Index != i {
			t.Errorf("items[%d].Index = %d", i, it.Index)
		}
		checkItemErr(t, it, want[i])
	}
	if string(items[3].Raw) != `[`+obj+`]` || string(items[1].Raw) != `42` {
		t.Errorf("Raw of non-objects = %s, %s; want them as sent", items[1].Raw, items[3].Raw)
	}
}

// TestRawBytesPreserved checks that each Item.Raw is exactly the element as
// sent — whitespace, member order, escapes, number spelling — and is a copy.
func TestRawBytesPreserved(t *testing.T) {
	elems := []string{
		"{\n\t\"type\" :\t\"indicator\",\r\n  \"spec_version\": \"2.1\", \"id\": \"" + indicatorID + "\",\n" +
			"  \"created\": \"2016-01-20T12:31:12.123Z\", \"modified\": \"2016-01-20T12:31:12.123Z\",\n" +
			"  \"name\": \"caf\\u00e9 \\ud83d\\ude00 \\\"quoted\\\" \\/ \\u002F é 😀\",\n" +
			"  \"pattern\": \"[ipv4-addr:value = '198.51.100.1']\", \"pattern_type\": \"stix\", \"valid_from\": \"2016-01-20T12:31:12Z\",\n" +
			"  \"confidence\": 8.50e1, \"labels\": [ \"x\" ] , \"x_empty\" : { }\n}",
		`{"value":"198.51.100.3","id":"ipv4-addr--ff26c055-6336-5bc5-b98d-13d6226742dd","type":"ipv4-addr"}`,
		"{ \"type\":\"x-acme-widget\" }",
		"-0.0e+0",
	}
	body := "\n {  \"objects\" :\n[ " + strings.Join(elems, " ,\n\t") + "\r\n] , \"more\" : false }\n"
	data := []byte(body)
	items, err := DecodeEnvelope(data)
	if err != nil {
		t.Fatalf("DecodeEnvelope: %v", err)
	}
	if len(items) != len(elems) {
		t.Fatalf("got %d items, want %d", len(items), len(elems))
	}
	checkItemErr(t, items[0], "")
	checkItemErr(t, items[1], "")
	for i, it := range items {
		if string(it.Raw) != elems[i] {
			t.Errorf("items[%d].Raw =\n%s\nwant\n%s", i, it.Raw, elems[i])
		}
	}
	// The items own their bytes: reusing the input buffer changes nothing.
	for i := range data {
		data[i] = 'X'
	}
	for i, it := range items {
		if string(it.Raw) != elems[i] {
			t.Errorf("items[%d].Raw changed when the input buffer was overwritten", i)
		}
	}
}

func TestRealEnvelopes(t *testing.T) {
	t.Run("TLP markings envelope", func(t *testing.T) {
		data := readFile(t, "testdata/tlp-all.taxii-envelope.json")
		items := decodeAll(t, data)
		if len(items) != 10 {
			t.Fatalf("got %d items, want 10", len(items))
		}
		for _, it := range items {
			checkItemErr(t, it, "")
			if !bytes.Contains(data, it.Raw) {
				t.Errorf("%s: Raw is not part of the file", it.ID)
			}
			if it.Object.Type == "marking-definition" && (!it.Object.Modified.IsZero() || !it.Object.Version.Equal(it.Object.Created)) {
				t.Errorf("%s: Object = %+v, want Version = Created and no Modified", it.ID, it.Object)
			}
		}
	})
	t.Run("TLP 2.0 green example", func(t *testing.T) {
		items := decodeAll(t, bundleToEnvelope(t, readFile(t, "testdata/using-tlp2.0-green.invalid.json")))
		if len(items) != 3 {
			t.Fatalf("got %d items, want 3", len(items))
		}
		checkItemErr(t, items[0], "")
		checkItemErr(t, items[1], "")
		checkItemErr(t, items[2], `relationship--1621d4d4-b67d-11e3-9670-f01faf20d111: created: must be a STIX timestamp, `+
			`YYYY-MM-DDTHH:MM:SS[.s+]Z in UTC, got "2022-101-27T13:49:54.326Z"`)
		if items[2].ID != "relationship--1621d4d4-b67d-11e3-9670-f01faf20d111" || items[2].Version != "2022-10-27T13:49:54.326Z" {
			t.Errorf("invalid relationship: ID, Version = %q, %q", items[2].ID, items[2].Version)
		}
	})
	t.Run("OASIS infrastructure example", func(t *testing.T) {
		items := decodeAll(t, bundleToEnvelope(t, readFile(t, "testdata/infrastructure.json")))
		if len(items) != 10 {
			t.Fatalf("got %d items, want 10", len(items))
		}
		for _, it := range items { // one id has an upper-case UUID: accepted
			checkItemErr(t, it, "")
		}
		sco := items[4]
		if sco.Object.Type != "ipv4-addr" || sco.Object.SpecVersion != "2.1" || !sco.Object.Version.IsZero() || sco.Version != "" {
			t.Errorf("SCO without spec_version: Item = %+v", sco)
		}
	})
	t.Run("statement marking with modified", func(t *testing.T) {
		items := decodeAll(t, bundleToEnvelope(t, readFile(t, "testdata/marking-definition--62fd3f9b-15f3-4ebc-802c-91fce9536bcf.statement-bsd3.json")))
		checkItemErr(t, items[0], "")
		if items[0].Version != "2021-12-01T16:19:51.601791Z" || FormatTimestamp(items[0].Object.Version) != "2021-12-01T16:19:51.601791Z" {
			t.Errorf("Version = %q, Object.Version = %v; want modified", items[0].Version, items[0].Object.Version)
		}
	})
}

func TestBundleIsReadAsEnvelope(t *testing.T) {
	obj := `{"type":"indicator","spec_version":"2.1","id":"indicator--e2e1a340-4415-4ba8-9671-f7343fbf0836","created":"2016-04-06T20:03:48.000Z","modified":"2016-04-06T20:03:48.000Z","pattern":"[ipv4-addr:value = '198.51.100.1']","pattern_type":"stix","valid_from":"2016-01-01T00:00:00Z"}`
	for _, body := range []string{
		`{"type":"bundle","id":"bundle--5330e3e3-8f58-4d21-9f4b-793a054c0d33","objects":[` + obj + `]}`,
		`{"objects":[` + obj + `],"type":"bundle"}`,
	} {
		items, err := DecodeEnvelope([]byte(body))
		if err != nil || len(items) != 1 || items[0].Err != nil || string(items[0].Raw) != obj {
			t.Errorf("bundle %.40s…: items %+v, err %v", body, items, err)
		}
	}
}

func TestTooManyObjects(t *testing.T) {
	body := []byte(`{"objects":[` + strings.Repeat("1,", MaxObjects) + `1]}`)
	if _, err := DecodeEnvelope(body); err == nil || !strings.Contains(err.Error(), "more than 100000") {
		t.Errorf("got %v, want a too-many-objects error", err)
	}
}
