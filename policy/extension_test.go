package policy

import (
	"testing"

	"github.com/ctigate/ctigate/stix"
)

// The gateway's own objects are valid STIX as the gateway's strict
// validation reads it, TLP:CLEAR, and the definition's creator is the
// identity published with it.
func TestGatewayObjectsValid(t *testing.T) {
	objs := GatewayObjects()
	env := []byte(`{"objects":[` + string(objs[0]) + `,` + string(objs[1]) + `]}`)
	items, err := stix.DecodeEnvelope(env)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{GatewayIdentity, RedactionExtension}
	for i, it := range items {
		if it.Err != nil || it.ID != want[i] {
			t.Fatalf("object %d: %s %v", i, it.ID, it.Err)
		}
		res, err := stix.NewMarkings().Resolve(it.Raw)
		if err != nil || res.TLP != stix.TLPClear {
			t.Fatalf("object %d: TLP %v %v", i, res.TLP, err)
		}
	}
}
