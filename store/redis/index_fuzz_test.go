package redis

import (
	"slices"
	"testing"
)

// FuzzIxList: a search index bucket field read from Redis decodes to
// items that pack to a field decoding to the same, and a malformed one is
// an error, never a panic; merging an item into it keeps each field once,
// with the item's entry.
func FuzzIxList(f *testing.F) {
	f.Add(packIxList([]ixItem{{"indicator--a\x00\x80\x00\x00\x00\x00\x00\x00\x01", "\x01\x01entry"}}), "indicator--b", "x")
	f.Add(packIxList(nil), "f", "e")
	f.Add("\x03\xff\xff", "", "")
	f.Add(ixSpilled, "f", "e")
	f.Fuzz(func(t *testing.T, v, field, entry string) {
		items, err := unpackIxList(v)
		if err == nil {
			if again, err := unpackIxList(packIxList(items)); err != nil || !slices.Equal(again, items) {
				t.Fatalf("%q decodes to %q, which packs to what decodes to %q, %v", v, items, again, err)
			}
		}
		merged, spill, err := mergeIxField(v, []ixItem{{field, entry}})
		if err != nil {
			return
		}
		all := spill
		if merged != ixSpilled {
			if all, err = unpackIxList(merged); err != nil {
				t.Fatalf("merged field %q does not decode: %v", merged, err)
			}
		} else if v != ixSpilled && len(spill) <= ixSpillAt {
			t.Fatalf("spilled %d items", len(spill))
		}
		if hasRepeats(items) {
			return // not what a writer makes
		}
		n := 0
		for _, it := range all {
			if it.field == field {
				n++
				if it.entry != entry {
					t.Fatalf("merged %q kept %q", field, it.entry)
				}
			}
		}
		if n != 1 || hasRepeats(all) {
			t.Fatalf("merged field %q found %d times in %q", field, n, all)
		}
	})
}

func hasRepeats(items []ixItem) bool {
	fields := make([]string, len(items))
	for i := range items {
		fields[i] = items[i].field
	}
	slices.Sort(fields)
	return len(slices.Compact(fields)) != len(items)
}
