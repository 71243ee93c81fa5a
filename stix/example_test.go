package stix_test

import (
	"fmt"

	"github.com/ctigate/ctigate/stix"
)

func ExampleDecodeEnvelope() {
	body := []byte(`{"objects": [
		{"type": "indicator", "spec_version": "2.1", "id": "indicator--e2e1a340-4415-4ba8-9671-f7343fbf0836",
		 "created": "2016-04-06T20:03:48.000Z", "modified": "2016-04-06T20:03:48.000Z",
		 "pattern": "[ipv4-addr:value = '198.51.100.1']", "pattern_type": "stix", "valid_from": "2016-01-01T00:00:00Z"},
		{"type": "ipv4-addr", "id": "ipv4-addr--ff26c055-6336-5bc5-b98d-13d6226742dd", "value": "198.51.100.1"},
		{"type": "malware", "spec_version": "2.1", "id": "malware--31b940d4-6f7f-459a-80ea-9c1f17b5891b",
		 "created": "2016-04-06T20:07:09.000Z", "modified": "2016-04-06T20:07:09Z", "name": "Poison Ivy", "is_family": true}
	]}`)
	items, err := stix.DecodeEnvelope(body)
	if err != nil {
		fmt.Println("rejected:", err)
		return
	}
	for _, it := range items {
		if it.Err != nil {
			fmt.Println("invalid:", it.Err)
			continue
		}
		version := "unversioned"
		if !it.Object.Version.IsZero() {
			version = stix.FormatTimestamp(it.Object.Version)
		}
		fmt.Println("valid:", it.Object.ID, version)
	}

	_, err = stix.DecodeEnvelope([]byte(`{"objects": []}`))
	fmt.Println("rejected:", err)
	// Output:
	// valid: indicator--e2e1a340-4415-4ba8-9671-f7343fbf0836 2016-04-06T20:03:48.000Z
	// valid: ipv4-addr--ff26c055-6336-5bc5-b98d-13d6226742dd unversioned
	// invalid: malware--31b940d4-6f7f-459a-80ea-9c1f17b5891b: modified: must have at least millisecond precision (three fraction digits), got "2016-04-06T20:07:09Z"
	// rejected: invalid TAXII envelope: "objects" at byte offset 12 is empty: an envelope must hold at least one object
}
