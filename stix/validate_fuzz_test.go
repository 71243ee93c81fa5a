package stix

import (
	"bytes"
	"reflect"
	"testing"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/ctigate/ctigate"
)

// FuzzValidateObject feeds one object to per-object validation on both
// decoding paths: no input may panic, both paths agree, and every result
// is either valid or an Invalid error with a message.
func FuzzValidateObject(f *testing.F) {
	for typ := range minimalProperties {
		f.Add([]byte(validObject(typ)))
	}
	f.Add([]byte(objectJSON(indicator, member{"granular_markings", `[{"marking_ref":"` + markingGreen + `","selectors":["pattern","labels.[0]"]}]`}, member{"labels", `["a"]`})))
	f.Add([]byte(objectJSON(marking)))
	f.Add([]byte(objectJSON(custom, member{"extensions", newSCOExt})))
	f.Add([]byte(`{"type":"ipv4-addr","id":"ipv4-addr--28bb3599-77cd-5a82-a950-b5bc3caf07c4","value":"198.51.100.3"}`))
	f.Add([]byte(`{"type":"file","id":"file--b91bcf06-0d11-5a89-9c3a-8d4279aefe56","name":"a","hashes":{"SHA-256":"fe90a7e910cb3a4739bed9180e807e93fa70c90f25a8915476f5e4bfbac681db"},"extensions":{"archive-ext":{"contains_refs":["file--b91bcf06-0d11-4a89-9c3a-8d4279aefe56"]}}}`))
	f.Add([]byte(`{"type":"url","id":"url--5cb4ac20-de90-4aba-8467-fe57ba5af2a8","value":"http://[::1]/%41"}`))

	f.Fuzz(func(t *testing.T, data []byte) {
		if !jsontext.Value(data).IsValid(jsontext.AllowDuplicateNames(true)) {
			return
		}
		data = bytes.Trim(data, " \t\r\n") // as an element of "objects" has it
		var v validator
		var careful, fast Item
		v.item(&careful, 0, data, false)
		checkValidation(t, careful)
		if jsontext.Value(data).IsValid() {
			v.item(&fast, 0, data, true)
			if !reflect.DeepEqual(fast, careful) {
				t.Fatalf("paths disagree on %q:\nfast:    %+v\ncareful: %+v", data, fast, careful)
			}
		}
		items, err := DecodeEnvelope(append(append([]byte(`{"objects":[`), data...), ']', '}'))
		if err != nil {
			t.Fatalf("envelope of one valid JSON value failed: %v", err)
		}
		if !reflect.DeepEqual(items[0], careful) {
			t.Fatalf("DecodeEnvelope disagrees on %q:\n%+v\n%+v", data, items[0], careful)
		}
	})
}

// checkValidation checks the promises of one validated Item.
func checkValidation(t *testing.T, it Item) {
	t.Helper()
	if it.Err != nil {
		if ctigate.KindOf(it.Err) != ctigate.Invalid || ctigate.MessageOf(it.Err) == "" {
			t.Fatalf("Err %#v is not Invalid with a message", it.Err)
		}
		if it.Object != (Object{}) || it.Warnings != nil {
			t.Fatalf("invalid item has Object %+v, Warnings %q", it.Object, it.Warnings)
		}
		return
	}
	checkValidItem(t, it)
}
