package stix

import (
	"testing"

	"github.com/go-json-experiment/json"
)

// revokedDecoded is Revoked by decoding raw: what Revoked must answer.
func revokedDecoded(raw []byte) bool {
	var v struct {
		Revoked bool `json:"revoked"`
	}
	return json.Unmarshal(raw, &v) == nil && v.Revoked
}

var revokedCases = []struct {
	raw  string
	want bool
}{
	{`{"type":"indicator","revoked":true}`, true},
	{`{"type":"indicator", "revoked" :	true }`, true},
	{"{\"revoked\"\r\n:\n true}", true},
	{`{"type":"indicator","revoked":false}`, false},
	{`{"type":"indicator"}`, false},
	{`{"revok\u0065d":true}`, true}, // the name spelt with an escape
	{`{"revoked":"true"}`, false},
	{`{"revoked":true,"revoked":true}`, false},     // not JSON an object can be
	{`{"x":{"revoked":true}}`, false},              // not top level
	{`{"description":"\"revoked\": true"}`, false}, // inside a string
	{`{"description":"revoked","revoked":false}`, false},
	{`{"revoked":tru}`, false},
	{`{"Revoked":true}`, false}, // names are matched exactly
	{`{"revoked":true`, false},
	{`"revoked":true`, false},
}

// TestRevoked: Revoked answers as decoding the object does, for the
// spellings a producer can send.
func TestRevoked(t *testing.T) {
	for _, c := range revokedCases {
		if got := Revoked([]byte(c.raw)); got != c.want {
			t.Errorf("Revoked(%s) = %v, want %v", c.raw, got, c.want)
		}
		if got := revokedDecoded([]byte(c.raw)); got != c.want {
			t.Errorf("decoded %s: %v, want %v (the case is wrong)", c.raw, got, c.want)
		}
	}
}

// TestRevokedSharedData: Revoked agrees with decoding on every object of
// the shared test data.
func TestRevokedSharedData(t *testing.T) {
	objs := sharedObjects(t)
	revoked := 0
	for _, o := range objs {
		want := revokedDecoded(o)
		if got := Revoked(o); got != want {
			t.Fatalf("Revoked = %v, decoding says %v: %.200s", got, want, o)
		}
		if want {
			revoked++
		}
	}
	if revoked == 0 {
		t.Fatal("no revoked object in the shared test data: the test proves little")
	}
	t.Logf("%d objects, %d revoked", len(objs), revoked)
}

func FuzzRevoked(f *testing.F) {
	for _, c := range revokedCases {
		f.Add([]byte(c.raw))
	}
	f.Add(benchIndicator)
	f.Fuzz(func(t *testing.T, raw []byte) {
		if got, want := Revoked(raw), revokedDecoded(raw); got != want {
			t.Fatalf("Revoked = %v, decoding says %v", got, want)
		}
	})
}
