package gateway

import (
	"testing"

	"github.com/ctigate/ctigate/stix"
)

// TestResolveUsesKnownHash: a version read from the store carries the
// hash ingest computed (Object.Hash), and Resolve returns it without
// hashing again; without one it computes it. Either way the markings are
// read from the bytes, and bytes whose markings do not resolve are refused
// whatever hash comes with them.
func TestResolveUsesKnownHash(t *testing.T) {
	raw := []byte(`{"type":"indicator","spec_version":"2.1","id":"indicator--33fe3b22-0201-47cf-85d0-97c02164528d",` +
		`"created":"2024-05-08T09:00:00.000Z","modified":"2024-05-08T09:00:00.000Z","pattern":"[ipv4-addr:value = '198.51.100.7']",` +
		`"pattern_type":"stix","valid_from":"2024-05-08T09:00:00.000Z","object_marking_refs":["` + stix.TLP2Amber + `"]}`)
	d := &Decider{Markings: stix.NewMarkings()}
	o := Object{Raw: raw, Type: "indicator", ID: "indicator--33fe3b22-0201-47cf-85d0-97c02164528d", Producer: "CERT-A"}

	res, hash, err := d.Resolve(o)
	if err != nil {
		t.Fatal(err)
	}
	want, err := stix.Hash(raw)
	if err != nil {
		t.Fatal(err)
	}
	if hash != want || res.TLP != stix.TLPAmber {
		t.Fatalf("without a known hash: TLP %s, hash %x; want AMBER, %x", res.TLP, hash, want)
	}

	o.Hash = [32]byte{7}
	res, hash, err = d.Resolve(o)
	if err != nil {
		t.Fatal(err)
	}
	if hash != o.Hash || res.TLP != stix.TLPAmber {
		t.Fatalf("with a known hash: TLP %s, hash %x; want AMBER, the known hash", res.TLP, hash)
	}

	o.Raw = []byte(`{"type":"indicator","id":"indicator--33fe3b22-0201-47cf-85d0-97c02164528d","object_marking_refs":"not a list"}`)
	if _, _, err := d.Resolve(o); err == nil {
		t.Fatal("markings that do not resolve were accepted because a hash came with them")
	}
}
