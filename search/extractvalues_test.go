package search

import (
	"reflect"
	"testing"

	"github.com/ctigate/ctigate/internal/shared"
	"github.com/ctigate/ctigate/stix"
)

// extractOnePass is what the indexer does with an object's bytes: one
// pass that resolves its markings and finds objectMembers, then
// extractValues; ok is false where the markings do not resolve (the
// indexer then uses Extract).
func extractOnePass(raw []byte) (ex Extracted, err error, ok bool) {
	_, vals, rerr := stix.NewMarkings().ResolveMembers(raw, objectMembers)
	if rerr != nil {
		return Extracted{}, nil, false
	}
	ex, err = extractValues(vals)
	return ex, err, true
}

// sameExtraction fails t unless the one-pass extraction of raw, where it
// applies, is Extract's: the same observables, labels and refs, or an
// error for both.
func sameExtraction(t *testing.T, raw []byte) bool {
	t.Helper()
	got, gerr, ok := extractOnePass(raw)
	if !ok {
		return false
	}
	want, werr := Extract(raw)
	if (gerr == nil) != (werr == nil) {
		t.Fatalf("one pass: error %v; Extract: error %v\n%.300s", gerr, werr, raw)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("one pass: %+v\nExtract:  %+v\n%.300s", got, want, raw)
	}
	return true
}

var onePassCases = []string{
	`{"type":"indicator","pattern_type":"stix","pattern":"[ipv4-addr:value = '198.51.100.7'] OR [domain-name:value = 'evil.example']","labels":["c2","x"]}`,
	`{"type":"indicator","pattern_type":"stix","pattern":"[url:value = 'http:\/\/x.example\/a\u0041']"}`,
	`{"type":"ipv4-addr","value":"10.0.0.1"}`,
	`{"type":"file","hashes":{"MD5":"d41d8cd98f00b204e9800998ecf8427e","SHA-256":"AEC070645FE53EE3B3763059376134F058CC337247C978ADD178B6CCDFB0019F"}}`,
	`{"type":"observed-data","object_refs":["ipv4-addr--1"],"objects":{"1":{"type":"domain-name","value":"a.example"},"0":{"type":"url","value":"http://b.example/"}}}`,
	`{"type":"indicator","labels":null,"value":null,"hashes":null,"objects":null}`,
	`{"type":"indicator","labels":[]}`,
	`{"type":"ipv4-addr","value":5}`,                  // wrong type: both fail
	`{"type":"indicator","labels":"c2"}`,              // wrong type: both fail
	`{"type":"file","hashes":{"MD5":1}}`,              // wrong type: both fail
	`{"typ\u0065":"domain-name","value":"e.example"}`, // an escaped name
	`{"Type":"domain-name","value":"e.example"}`,      // names compare exactly
	`{"type":"domain-name","x":{"value":"nested.example"},"value":"top.example"}`,
	`{"type":"indicator","pattern_type":"stix","pattern":"[ipv4-addr:value = '10.0.0.1']","object_marking_refs":["marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da"]}`,
}

// TestExtractOnePass: the indexer's one-pass extraction is Extract's, for
// the cases above and for every object of the shared test data.
func TestExtractOnePass(t *testing.T) {
	for _, c := range onePassCases {
		if !sameExtraction(t, []byte(c)) {
			t.Errorf("the markings of %s do not resolve: the case tests nothing", c)
		}
	}
	n, indexed := 0, 0
	for _, raw := range shared.Objects(t) {
		if sameExtraction(t, raw) {
			n++
			if ex, _ := Extract(raw); len(ex.Observables) > 0 {
				indexed++
			}
		}
	}
	if n < 1000 || indexed < 20 {
		t.Fatalf("%d objects of the shared test data resolved, %d with observables: the test proves little", n, indexed)
	}
	t.Logf("%d objects of the shared test data, %d with observables", n, indexed)
}

func FuzzExtractOnePass(f *testing.F) {
	for _, c := range onePassCases {
		f.Add([]byte(c))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		sameExtraction(t, raw)
	})
}
