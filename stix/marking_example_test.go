package stix_test

import (
	"fmt"

	"github.com/ctigate/ctigate/stix"
)

func ExampleMarkings_Resolve() {
	m := stix.NewMarkings()
	// A producer's copyright statement, posted before the objects it marks.
	err := m.Add([]byte(`{"type":"marking-definition","spec_version":"2.1",
		"id":"marking-definition--3cd55916-d34b-4747-a8e0-dedec14b711b","created":"2020-12-22T00:00:00.000Z",
		"definition_type":"statement","definition":{"statement":"Copyright 2020-22 - The MITRE Corporation, Inc."}}`))
	if err != nil {
		fmt.Println(err)
		return
	}

	r, err := m.Resolve([]byte(`{"type":"indicator","spec_version":"2.1",
		"id":"indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f",
		"created":"2025-03-14T09:26:53.589Z","modified":"2025-03-14T09:26:53.589Z",
		"description":"C2 server of the campaign","pattern":"[ipv4-addr:value = '198.51.100.23']",
		"pattern_type":"stix","valid_from":"2025-03-14T09:26:53Z",
		"object_marking_refs":[
			"marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da",
			"marking-definition--3cd55916-d34b-4747-a8e0-dedec14b711b"],
		"granular_markings":[{"selectors":["description"],
			"marking_ref":"marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1"}]}`))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("object:", r.TLP, "within TLP:AMBER:", r.TLP.Within(stix.TLPAmber))
	fmt.Println("statements:", r.Statements, "unknown:", len(r.Unknown))
	for _, g := range r.Granular {
		fmt.Println("granular:", g.Selectors, g.TLP)
	}

	_, err = m.Resolve([]byte(`{"id":"indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f","name":"x",
		"granular_markings":[{"selectors":["name","foo.bar"],"lang":"de"}]}`))
	fmt.Println(err)
	// Output:
	// object: TLP:GREEN within TLP:AMBER: true
	// statements: [marking-definition--3cd55916-d34b-4747-a8e0-dedec14b711b] unknown: 0
	// granular: [description] TLP:RED
	// indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f: granular_markings[0].selectors[1]: "foo.bar" selects nothing in the object
}
