package stix

import (
	"bytes"
	"errors"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/ctigate/ctigate"
)

func FuzzDecodeEnvelope(f *testing.F) {
	// Seeds: the real fixtures, as envelopes, and hand-written edge cases.
	files, err := filepath.Glob("testdata/*.json")
	if err != nil {
		f.Fatal(err)
	}
	for _, name := range files {
		data := readFile(f, name)
		if !strings.HasSuffix(name, ".taxii-envelope.json") {
			data = bundleToEnvelope(f, data)
		}
		f.Add(data)
	}
	obj := objectJSON(indicator)
	for _, s := range []string{
		``,
		`{}`,
		`[]`,
		`{"objects":[]}`,
		`{"objects":[` + obj + `]}`,
		`{"objects":[` + obj + `,` + objectJSON(ipv4) + `,` + objectJSON(marking) + `,` + objectJSON(custom) + `]}`,
		`{"objects":[` + strings.TrimSuffix(obj, "}") + `,"id":"x"}]}`,
		`{"objects":[{"a":{"b":1,"b":2}}, 1, "s", null, [{}]],"more":true}`,
		`{"objects":[` + obj + `],"objects":[]}`,
		`{"type":"bundle","objects":[` + obj + `]}`,
		`{"objects":[{"type":"x-custom","extensions":` + newSCOExt + `,"id":"x-custom--4527e5de-8572-446a-a57a-706f15467461"}]}`,
		`{"objects":[{"t\u0079pe":"indicator","type":"indicator"}]} `,
		`{"objects":[{"type":"indicator","id":"indicator--e2e1a340-4415-4ba8-9671-f7343fbf0836","created":"2016-01-20T12:31:12.123Z","modified":"2016-01-20T12:31:12.123Z","spec_version":"2.1","name":"\"}\\"}]}`,
		string(benchEnvelope(3)),
	} {
		f.Add([]byte(s))
	}

	f.Fuzz(func(t *testing.T, data []byte) {
		input := bytes.Clone(data)
		items, err := DecodeEnvelope(data)
		if !bytes.Equal(data, input) {
			t.Fatal("DecodeEnvelope modified its input")
		}
		if err != nil {
			var e *ctigate.Error
			if !errors.As(err, &e) || ctigate.KindOf(err) != ctigate.Invalid || ctigate.MessageOf(err) == "" {
				t.Fatalf("envelope error %#v is not an Invalid *ctigate.Error with a message", err)
			}
			if items != nil {
				t.Fatalf("%d items returned with an envelope error", len(items))
			}
			return
		}
		if len(items) == 0 {
			t.Fatal("no items and no error")
		}

		// Both decoding paths agree (the fast one is normally taken).
		careful, cerr := decodeEnvelope(data, false, Limits{})
		if cerr != nil {
			t.Fatalf("careful path failed where DecodeEnvelope succeeded: %v", cerr)
		}
		if !reflect.DeepEqual(items, careful) {
			for i := range items {
				if !reflect.DeepEqual(items[i], careful[i]) {
					t.Fatalf("paths disagree on item %d:\nfast:    %+v\ncareful: %+v", i, items[i], careful[i])
				}
			}
			t.Fatal("paths disagree")
		}

		pos := 0
		for i, it := range items {
			if it.Index != i {
				t.Fatalf("items[%d].Index = %d", i, it.Index)
			}
			if !jsontext.Value(it.Raw).IsValid(jsontext.AllowDuplicateNames(true)) {
				t.Fatalf("items[%d].Raw is not valid JSON: %q", i, it.Raw)
			}
			checkScanKnown(t, it.Raw)
			at := bytes.Index(data[pos:], it.Raw)
			if at < 0 {
				t.Fatalf("items[%d].Raw %q is not part of the input after the previous item", i, it.Raw)
			}
			pos += at + len(it.Raw)

			if it.Err != nil {
				if ctigate.KindOf(it.Err) != ctigate.Invalid || ctigate.MessageOf(it.Err) == "" {
					t.Fatalf("items[%d].Err %#v is not Invalid with a message", i, it.Err)
				}
				if it.Object != (Object{}) {
					t.Fatalf("items[%d] is invalid but has Object %+v", i, it.Object)
				}
				continue
			}
			checkValidItem(t, it)
		}
	})
}

// checkValidItem checks what a valid Item promises.
func checkValidItem(t *testing.T, it Item) {
	t.Helper()
	o := it.Object
	if !jsontext.Value(it.Raw).IsValid() || it.Raw[0] != '{' {
		t.Fatalf("valid item %q is not a JSON object free of duplicate names", it.Raw)
	}
	if o.ID != it.ID || o.ID == "" {
		t.Fatalf("Object.ID %q, Item.ID %q", o.ID, it.ID)
	}
	typ, uuid, ok := splitID([]byte(o.ID))
	if !ok || string(typ) != o.Type || typeProblem(typ) != "" || uuidProblem(uuid) != "" {
		t.Fatalf("Object.ID %q does not match Object.Type %q", o.ID, o.Type)
	}
	if o.SpecVersion != "2.1" {
		t.Fatalf("Object.SpecVersion = %q", o.SpecVersion)
	}
	switch {
	case !o.Modified.IsZero():
		if !o.Version.Equal(o.Modified) || (!o.Created.IsZero() && o.Modified.Before(o.Created)) {
			t.Fatalf("Object %+v: Version must be Modified, Modified >= Created", o)
		}
	case !o.Created.IsZero():
		if !o.Version.Equal(o.Created) {
			t.Fatalf("Object %+v: Version must be Created", o)
		}
	default:
		if !o.Version.IsZero() || classOf(typ) == classDomain && isSpecType(typ) {
			t.Fatalf("Object %+v: no Version, so it must be an SCO", o)
		}
	}
	if it.Version != "" {
		v, err := ParseTimestamp(it.Version)
		if err != nil || !v.Equal(o.Version) {
			t.Fatalf("Item.Version %q does not parse to Object.Version %v (%v)", it.Version, o.Version, err)
		}
	} else if !o.Version.IsZero() {
		t.Fatalf("Object.Version %v but Item.Version empty", o.Version)
	}
}

// checkScanKnown checks the light member scan against the strict one on
// every JSON object free of duplicate names: it must succeed and find the
// same values (it may stop before extensions, which it then leaves nil).
func checkScanKnown(t *testing.T, raw []byte) {
	t.Helper()
	if !jsontext.Value(raw).IsValid() || raw[0] != '{' {
		return
	}
	var known, strict members
	if !scanKnown(raw, &known) {
		t.Fatalf("scanKnown failed on the valid object %q", raw)
	}
	var v validator
	if err := v.scan(raw, &strict); err != nil {
		t.Fatalf("scan failed on the valid object %q: %v", raw, err)
	}
	for idx := range known {
		if known[idx] != nil && !bytes.Equal(known[idx], strict[idx]) ||
			known[idx] == nil && strict[idx] != nil && (idx != mExtensions || !known.complete()) {
			t.Fatalf("scanKnown found %s = %q, scan found %q in %q", memberNames[idx], known[idx], strict[idx], raw)
		}
	}
}
