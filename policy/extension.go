package policy

import "github.com/ctigate/ctigate/stix"

// GatewayIdentity is the id of the gateway's own identity object, which
// GatewayObjects holds: the creator of the extension definition.
const GatewayIdentity = "identity--c7a5b4e1-0d2b-4c6e-9a1f-5e3b8d7c2a10"

// The gateway's own objects, published (TLP:CLEAR) into a route's
// collection with the first copy that uses the extension, so a consumer
// can resolve every identifier in what it receives: the extension
// definition RedactionExtension names, and the identity that created it.
var (
	gatewayIdentityJSON = `{"type":"identity","spec_version":"2.1","id":"` + GatewayIdentity + `",` +
		`"created":"2026-12-01T00:00:00.000Z","modified":"2026-12-01T00:00:00.000Z","name":"ctigate sharing gateway",` +
		`"description":"The gateway that published this collection's objects from what its producers submitted, as its routes allow.",` +
		`"identity_class":"system","object_marking_refs":["` + stix.TLP2Clear + `"]}`

	extensionJSON = `{"type":"extension-definition","spec_version":"2.1","id":"` + RedactionExtension + `",` +
		`"created_by_ref":"` + GatewayIdentity + `","created":"2026-12-01T00:00:00.000Z","modified":"2026-12-01T00:00:00.000Z",` +
		`"name":"ctigate gateway-modified copy",` +
		`"description":"Marks an object the sharing gateway published in a form other than its producer's: the producer's version with properties removed, with a TLP marking the route assumed for an unmarked object, or naming the gateway as its creator to protect the producer. The object keeps its id and modified; the producer's own hash stays in the gateway's custody ledger.",` +
		`"schema":"A property extension with these members, each optional: redacted_properties (list of STIX 2.1 selectors, section 7.2.3.1, into the producer's object: what was removed); assumed_tlp (string, a TLP 2.0 label such as TLP:GREEN: the level the route assumed for an object without a TLP marking, whose marking the copy carries in object_marking_refs); source_protected (boolean: created_by_ref names the gateway instead of the producer, whom the route does not reveal).",` +
		`"version":"1.2.0","extension_types":["property-extension"],"object_marking_refs":["` + stix.TLP2Clear + `"]}`
)

// GatewayObjects returns the gateway's own objects to publish with a copy
// that carries RedactionExtension: the identity, then the extension
// definition (creator first).
func GatewayObjects() [][]byte {
	return [][]byte{[]byte(gatewayIdentityJSON), []byte(extensionJSON)}
}
