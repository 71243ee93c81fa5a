package store

import (
	"testing"
	"time"
)

// FuzzDecodeTombstone: whatever bytes a backend hands back, decoding a
// tombstone never panics, and what EncodeTombstone wrote decodes to the
// same tombstone.
func FuzzDecodeTombstone(f *testing.F) {
	at := time.Date(2026, 12, 6, 10, 0, 0, 123456000, time.UTC)
	f.Add(EncodeTombstone(&Tombstone{ID: "indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f", Version: at.Add(-time.Hour + 7), DateAdded: at.Add(-time.Minute), Kind: RemovalWithdrawn, Reason: "tlp_red", Producer: "CERT-A"}))
	f.Add([]byte(`{"id":"x","da":1,"k":"deleted"}`))
	f.Add([]byte(`{"v":"not a time"}`))
	f.Add([]byte(`{"h":"zz"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		tb, err := DecodeTombstone(b, at)
		if err != nil {
			return
		}
		again, err := DecodeTombstone(EncodeTombstone(&tb), at)
		if err != nil {
			t.Fatalf("a decoded tombstone does not decode again: %v", err)
		}
		if again.ID != tb.ID || !again.Version.Equal(tb.Version) || !again.DateAdded.Equal(tb.DateAdded) || again.Kind != tb.Kind ||
			again.Reason != tb.Reason || again.Hash != tb.Hash || again.Producer != tb.Producer || !again.Removed.Equal(at) {
			t.Fatalf("round trip changed the tombstone:\n%+v\n%+v", tb, again)
		}
	})
}
