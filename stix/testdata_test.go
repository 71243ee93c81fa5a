package stix

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/ctigate/ctigate/internal/shared"
)

// readFile returns the contents of the file at path.
func readFile(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// readShared returns a file of the shared test data (package shared).
func readShared(t *testing.T, name string) []byte {
	t.Helper()
	return shared.Read(t, name)
}

// bundleToEnvelope returns a TAXII envelope holding the objects of the STIX
// bundle in data, each with its original bytes.
func bundleToEnvelope(t testing.TB, data []byte) []byte {
	t.Helper()
	dec := jsontext.NewDecoder(bytes.NewReader(data), jsontext.AllowDuplicateNames(true))
	if _, err := dec.ReadToken(); err != nil {
		t.Fatalf("bundle: %v", err)
	}
	for dec.PeekKind() == '"' {
		name, err := dec.ReadToken()
		if err != nil {
			t.Fatalf("bundle: %v", err)
		}
		isObjects := name.String() == "objects"
		v, err := dec.ReadValue()
		if err != nil {
			t.Fatalf("bundle: %v", err)
		}
		if isObjects {
			return append(append([]byte(`{"objects":`), v...), '}')
		}
	}
	t.Fatal(`bundle: no "objects"`)
	return nil
}

// decodeAll decodes an envelope that must decode and checks the invariants
// every result has: Index, Raw taken from the input in order, ID and Object
// agree.
func decodeAll(t testing.TB, data []byte) []Item {
	t.Helper()
	items, err := DecodeEnvelope(data)
	if err != nil {
		t.Fatalf("DecodeEnvelope: %v", err)
	}
	pos := 0
	for i, it := range items {
		if it.Index != i {
			t.Fatalf("items[%d].Index = %d", i, it.Index)
		}
		// Each Raw is part of the input, after the one before it.
		at := bytes.Index(data[pos:], it.Raw)
		if at < 0 {
			t.Fatalf("items[%d].Raw is not part of the input after the previous item", i)
		}
		pos += at + len(it.Raw)
		if it.Err == nil && (it.Object.ID != it.ID || !strings.HasPrefix(it.ID, it.Object.Type+"--")) {
			t.Fatalf("items[%d]: ID %q, Object %+v disagree", i, it.ID, it.Object)
		}
	}
	return items
}

func TestATTACKICS(t *testing.T) {
	data := readShared(t, "attack/ics-attack-18.1.json")
	items := decodeAll(t, bundleToEnvelope(t, data))
	if len(items) != 1826 {
		t.Errorf("got %d objects, want 1826", len(items))
	}
	types := map[string]int{}
	for _, it := range items {
		if it.Err != nil {
			t.Errorf("ATT&CK ICS 18.1: %v", it.Err)
			continue
		}
		if it.Object.Version.IsZero() || it.Object.SpecVersion != "2.1" {
			t.Errorf("%s: Object = %+v", it.ID, it.Object)
		}
		types[it.Object.Type]++
	}
	if types["x-mitre-tactic"] == 0 || types["attack-pattern"] == 0 || types["marking-definition"] == 0 {
		t.Errorf("object types = %v, want custom x-mitre-* types, attack patterns and marking definitions", types)
	}
}

// defangedURLs are the url objects of attack-flow/cisa-iranian-apt.json
// whose values are defanged host names, not URLs: STIX 2.1 §6.14 says the
// value MUST conform to RFC 3986, so they fail, with these messages.
var defangedURLs = map[string]string{
	"url--5cb4ac20-de90-4aba-8467-fe57ba5af2a8": `url--5cb4ac20-de90-4aba-8467-fe57ba5af2a8: value: must be a URL per RFC 3986: no scheme, got "tunnel.us.ngrok[.]com"`,
	"url--3e9fd4ff-625f-42e3-8285-762835bd6b50": `url--3e9fd4ff-625f-42e3-8285-762835bd6b50: value: must be a URL per RFC 3986: no scheme, got "korgn.su.lennut[.]com "`,
}

func TestAttackFlow(t *testing.T) {
	for _, name := range []string{
		"attack-flow/attack-flow-extension-2.0.0.json",
		"attack-flow/attack-flow-example.json",
		"attack-flow/conti-cisa-alert.json",
		"attack-flow/cisa-iranian-apt.json", // two defanged url values fail: see defangedURLs
	} {
		t.Run(filepath.Base(name), func(t *testing.T) {
			items := decodeAll(t, bundleToEnvelope(t, readShared(t, name)))
			custom := 0
			for _, it := range items {
				if want, bad := defangedURLs[it.ID]; bad {
					checkItemErr(t, it, want)
					continue
				}
				if it.Err != nil {
					t.Errorf("%v", it.Err)
				}
				if strings.HasPrefix(it.Object.Type, "attack-") && it.Object.Type != "attack-pattern" {
					custom++
				}
			}
			if custom == 0 && !strings.Contains(name, "extension") {
				t.Errorf("no custom attack-flow SDOs among %d objects", len(items))
			}
		})
	}
}

// TestSharedBundles decodes every bundle of the shared test data and checks
// the invariants; only the known bad objects may fail.
func TestSharedBundles(t *testing.T) {
	knownBad := map[string]bool{
		"relationship--1621d4d4-b67d-11e3-9670-f01faf20d111": true, // created "2022-101-27T..."
	}
	for id := range defangedURLs {
		knownBad[id] = true
	}
	err := filepath.WalkDir(shared.Path(t), func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".json") {
			return err
		}
		data := readFile(t, path)
		if !bytes.Contains(data, []byte(`"objects"`)) || strings.Contains(path, "medallion") || strings.Contains(path, "stix2-json-schemas") {
			return nil // single objects, medallion's server layout, the JSON Schemas
		}
		body := data
		if !strings.HasSuffix(path, ".taxii-envelope.json") {
			body = bundleToEnvelope(t, data)
		}
		for _, it := range decodeAll(t, body) {
			if it.Err != nil && !knownBad[it.ID] && !strings.Contains(path, "infrastructure.json") {
				t.Errorf("%s: %v", path, it.Err)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
