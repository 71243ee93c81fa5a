package store

import "testing"

// TestCompact: ids and times in the gateway's forms are recognised and
// given back whole; near misses are not recognised.
func TestCompact(t *testing.T) {
	for _, id := range []string{"indicator--6ba7b810-9dad-41d1-80b4-00c04fd430c8", "x-my-type--00000000-0000-0000-0000-000000000000"} {
		var u [16]byte
		typ, ok := CutCanonicalID(id, &u)
		if !ok || string(AppendCanonicalID(nil, typ, &u)) != id {
			t.Errorf("CutCanonicalID(%q) = %q, %v", id, typ, ok)
		}
	}
	for _, id := range []string{"--6ba7b810-9dad-41d1-80b4-00c04fd430c8", "indicator--6BA7B810-9dad-41d1-80b4-00c04fd430c8",
		"indicator-6ba7b810-9dad-41d1-80b4-00c04fd430c8", "indicator--6ba7b8109dad-41d1-80b4-00c04fd430c8a", "indicator--"} {
		var u [16]byte
		if _, ok := CutCanonicalID(id, &u); ok {
			t.Errorf("CutCanonicalID(%q) recognised", id)
		}
	}
	for _, s := range []string{"2026-12-06T19:11:02Z", "2026-12-06T19:11:02.3Z", "2026-12-06T19:11:02.387Z", "2026-12-06T21:56:55.214821Z",
		"1969-12-31T23:59:59.000000001Z", "0001-01-01T00:00:00.000Z", "9999-12-31T23:59:59.999999999Z"} {
		secs, frac, digits, ok := CutUTCTime(s)
		if !ok || string(AppendUTCTime(nil, secs, frac, digits)) != s {
			t.Errorf("CutUTCTime(%q) = %d, %d, %d, %v", s, secs, frac, digits, ok)
		}
	}
	for _, s := range []string{"2026-02-30T00:00:00Z", "2026-12-06T19:11:02.Z", "2026-12-06T19:11:02.1234567890Z", "2026-12-06 19:11:02Z",
		"2026-12-06T19:11:02+00:00", "2026-12-06T19:11:02.38aZ", "2026-12-06T24:00:00Z", "+026-12-06T19:11:02Z"} {
		if _, _, _, ok := CutUTCTime(s); ok {
			t.Errorf("CutUTCTime(%q) recognised", s)
		}
	}
}

// FuzzCompact: whatever the Cuts recognise, the Appends give back.
func FuzzCompact(f *testing.F) {
	f.Add("indicator--6ba7b810-9dad-41d1-80b4-00c04fd430c8")
	f.Add("2026-12-06T21:56:55.214821Z")
	f.Fuzz(func(t *testing.T, s string) {
		var u [16]byte
		if typ, ok := CutCanonicalID(s, &u); ok && string(AppendCanonicalID(nil, typ, &u)) != s {
			t.Fatalf("id %q given back as %q", s, AppendCanonicalID(nil, typ, &u))
		}
		if secs, frac, digits, ok := CutUTCTime(s); ok && string(AppendUTCTime(nil, secs, frac, digits)) != s {
			t.Fatalf("time %q given back differently", s)
		}
	})
}
