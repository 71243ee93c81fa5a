package stix_test

import (
	"fmt"

	"github.com/ctigate/ctigate/stix"
)

func ExampleHash() {
	a, _ := stix.Hash([]byte(`{"name":"caf\u00e9", "confidence":85.0}`))
	b, _ := stix.Hash([]byte(`{"confidence":85,"name":"café"}`))
	c, _ := stix.Canonical([]byte(`{"name":"caf\u00e9", "confidence":85.0}`))
	fmt.Println(a == b)
	fmt.Println(string(c))
	_, err := stix.Hash([]byte(`{"confidence":85,"confidence":86}`))
	fmt.Println(err)
	// Output:
	// true
	// {"confidence":85,"name":"café"}
	// invalid JSON at byte offset 17 (in "confidence"): duplicate member name
}
