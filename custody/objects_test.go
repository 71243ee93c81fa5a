package custody

import (
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"github.com/ctigate/ctigate/stix"
)

// TestObjectCheckerScans checks stored versions against entries read in
// one scan per collection: matching bytes pass, deleted versions are not
// expected, and of an altered and a missing version the earlier entry is
// named.
func TestObjectCheckerScans(t *testing.T) {
	raw := func(n string) []byte {
		return []byte(`{"type":"note","spec_version":"2.1","id":"note--` + n + `","created":"2026-01-01T00:00:00Z","modified":"2026-01-01T00:00:00Z","content":"` + n + `"}`)
	}
	sum := func(b []byte) string {
		h, err := stix.Hash(b)
		if err != nil {
			t.Fatal(err)
		}
		return hex.EncodeToString(h[:])
	}
	const v = "2026-01-01T00:00:00Z"
	entries := func() *ObjectChecker {
		c := NewObjectChecker()
		c.Add(&Entry{Seq: 1, Action: Received, Collection: "in", ObjectID: "note--a", ObjectVersion: v, SHA256: sum(raw("a"))})
		c.Add(&Entry{Seq: 2, Action: Published, Collection: "out", ObjectID: "note--a", ObjectVersion: v, PublishedSHA256: sum(raw("a"))})
		c.Add(&Entry{Seq: 3, Action: Received, Collection: "in", ObjectID: "note--b", ObjectVersion: v, SHA256: sum(raw("b"))})
		c.Add(&Entry{Seq: 4, Action: Received, Collection: "in", ObjectID: "note--c", ObjectVersion: v, SHA256: sum(raw("c"))})
		c.Add(&Entry{Seq: 5, Action: Deleted, Collection: "in", ObjectID: "note--c", ObjectVersion: v})
		c.Add(&Entry{Seq: 6, Action: Withheld, Collection: "out", ObjectID: "note--b", ObjectVersion: v})
		return c
	}
	type stored struct{ id, raw string }
	check := func(held map[string][]stored) (int, error) {
		scans := map[string]int{}
		n, err := entries().Check(func(coll string, fn func(id, version string, raw []byte) error) error {
			scans[coll]++
			for _, s := range held[coll] {
				if err := fn(s.id, v, []byte(s.raw)); err != nil {
					return err
				}
			}
			return nil
		})
		for coll, k := range scans {
			if k != 1 {
				t.Errorf("collection %s scanned %d times", coll, k)
			}
		}
		return n, err
	}
	good := map[string][]stored{
		"in":  {{"note--a", string(raw("a"))}, {"note--b", string(raw("b"))}, {"note--x", `{}`}},
		"out": {{"note--a", string(raw("a"))}},
	}
	if n, err := check(good); err != nil || n != 3 {
		t.Fatalf("intact store: %d checked, %v; want 3, nil", n, err)
	}
	for _, tc := range []struct {
		name string
		held map[string][]stored
		seq  uint64
		says string
	}{
		{"altered", map[string][]stored{"in": {{"note--a", string(raw("a"))}, {"note--b", string(raw("z"))}}, "out": {{"note--a", string(raw("a"))}}}, 3, "was altered"},
		{"missing", map[string][]stored{"in": {{"note--a", string(raw("a"))}, {"note--b", string(raw("b"))}}}, 2, "not in collection out"},
		{"both, earlier named", map[string][]stored{"in": {{"note--b", string(raw("z"))}}, "out": {{"note--a", string(raw("a"))}}}, 1, "not in collection in"},
	} {
		_, err := check(tc.held)
		var e *Error
		if !errors.As(err, &e) || e.Seq != tc.seq || !strings.Contains(e.Reason, tc.says) {
			t.Errorf("%s: %v; want entry %d, %q", tc.name, err, tc.seq, tc.says)
		}
	}
}
