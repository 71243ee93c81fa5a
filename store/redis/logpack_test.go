package redis

import (
	"crypto/sha256"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ctigate/ctigate/custody"
	"github.com/ctigate/ctigate/store"
)

// sealedAppend returns the lines of an append of n entries as the
// sequencer seals them: received entries of an envelope, then a
// decision, a delivery and a redaction (an array: kept whole), after an
// entry whose hash is prev.
func sealedAppend(t testing.TB, n int) []string {
	t.Helper()
	prev := custody.Head{Seq: 41, Hash: strings.Repeat("ab", 32)}
	ts := custody.FormatTime(time.Date(2026, 12, 6, 21, 56, 55, 214821000, time.UTC))
	var out []string
	for i := range n {
		h := sha256.Sum256(fmt.Appendf(nil, "object %d", i))
		e := custody.Entry{Action: custody.Received, User: "bench", Org: "CERT-A", Collection: "24f70a31-7be5-4fdd-8353-9784877646c1",
			ObjectID: fmt.Sprintf("indicator--%08x-380c-4929-8d7d-e5603a32fa%02x", i*7919, i%256), ObjectVersion: "2026-12-06T19:11:02.387Z",
			SHA256: custody.HexHash(h)}
		switch i % 50 {
		case 47:
			e = custody.Entry{Action: custody.Published, User: "ctigate", ObjectID: e.ObjectID, ObjectVersion: e.ObjectVersion, SHA256: e.SHA256,
				Collection: "1dae5e88-4b59-4503-a9cf-2e649dd6544c", Source: e.Collection, Route: "police", PolicyVersion: strings.Repeat("0f", 32),
				Reason: "tlp-allowed", Detail: "TLP:GREEN ≤ TLP:AMBER+STRICT \"quoted\" \\ \u2028", PublishedSHA256: e.SHA256}
		case 48:
			e = custody.Entry{Action: custody.Delivered, User: "police", Org: "Police", Collection: "1dae5e88-4b59-4503-a9cf-2e649dd6544c", Count: 1000,
				FirstAdded: ts, LastAdded: "2026-12-06T21:56:59.000001Z", Filter: strings.Repeat("1", 64), View: strings.Repeat("2", 64), ItemsRoot: strings.Repeat("3", 64)}
		case 49:
			e = custody.Entry{Action: custody.Redacted, User: "ctigate", ObjectID: e.ObjectID, Collection: "c", Route: "r", Removed: []string{"description", "x_a"}}
		}
		p, err := custody.Prepare(&e)
		if err != nil {
			t.Fatal(err)
		}
		line, s := p.Seal(prev, ts)
		prev = custody.Head{Seq: s.Seq, Hash: s.Hash}
		out = append(out, string(line))
	}
	return out
}

func pack(lines []string) string {
	p := newLogPacker(512 * len(lines))
	for _, l := range lines {
		p.add(l)
	}
	return string(p.bytes())
}

// TestLogPack: an append of sealed entries packs into less than 40% of
// its text and unpacks to the same lines, byte for byte; an append stored
// as text (as earlier builds did) reads as its lines.
func TestLogPack(t *testing.T) {
	lines := sealedAppend(t, 500)
	text := strings.Join(lines, "\n")
	packed := pack(lines)
	if len(packed)*10 > len(text)*4 {
		t.Errorf("500 sealed entries: %d bytes of text packed into %d, want less than 40%%", len(text), len(packed))
	}
	t.Logf("%d bytes of text, %d packed (%.0f and %.0f bytes an entry)", len(text), len(packed), float64(len(text))/500, float64(len(packed))/500)
	got, err := logLines(packed)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(lines) {
		t.Fatalf("%d lines unpacked, want %d", len(got), len(lines))
	}
	for i := range lines {
		if got[i] != lines[i] {
			t.Fatalf("line %d unpacked as\n%s\nwant\n%s", i, got[i], lines[i])
		}
	}
	if got, err := logLines(text); err != nil || strings.Join(got, "\n") != text {
		t.Fatalf("an append stored as text: %d lines, %v", len(got), err)
	}
	for _, bad := range []string{"\x00", "\x00\x02e\x00", "\x00\x01e\x01\x00\x00", "\x00\x01e\x01\x22\x04", "\x00\x01r\x05ab", "\x00\x01x"} {
		if _, err := logLines(bad); err == nil {
			t.Errorf("logLines(%q): no error", bad)
		}
	}
}

// FuzzLogPack: any lines pack and unpack to themselves; any packed
// value unpacks or fails, never panics.
func FuzzLogPack(f *testing.F) {
	lines := sealedAppend(f, 60)
	f.Add(strings.Join(lines[:3], "\n"))
	f.Add(strings.Join(lines[45:52], "\n"))
	f.Add(`{"seq":1,"x":"a\"b","y":-1.5e+3,"z":true}` + "\n" + `{"seq":2,"x":"a\"b","y":null}`)
	f.Add(`{"a":"2026-02-30T00:00:00Z","b":"0000-01-01T00:00:00.000000000Z","c":"AAAAAAAAAAAAAAAAAAAAAA","d":"x--00000000-0000-0000-0000-000000000000"}`)
	f.Add(`{}` + "\n" + `{"a":1 }` + "\n" + `{"seq":18446744073709551615}` + "\n" + `{"seq":18446744073709551616}`)
	f.Fuzz(func(t *testing.T, v string) {
		in := strings.Split(v, "\n")
		packed := pack(in)
		got, err := logLines(packed)
		if err != nil {
			t.Fatalf("%q: %v", v, err)
		}
		if strings.Join(got, "\n") != v {
			t.Fatalf("%q unpacked as %q", v, strings.Join(got, "\n"))
		}
		_, _ = logLines("\x00\x01" + v)
	})
}

func BenchmarkLogPack(b *testing.B) {
	lines := sealedAppend(b, 500)
	packed := pack(lines)
	b.Run("pack", func(b *testing.B) {
		for b.Loop() {
			pack(lines)
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(lines)), "ns/entry")
	})
	b.Run("unpack", func(b *testing.B) {
		for b.Loop() {
			if _, err := logLines(packed); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(lines)), "ns/entry")
	})
}

// TestIxEntryPack: index entries pack and unpack whole (an observable that
// is the key's value is not stored), entries stored as JSON by earlier
// builds still read, and truncated or padded values are refused.
func TestIxEntryPack(t *testing.T) {
	for _, e := range []store.IndexEntry{
		{Value: "x.example", Type: "indicator", TLP: "TLP:GREEN", Producer: "CERT-A", Observable: "x.example", Labels: []string{"malicious-activity"}, DateAdded: time.UnixMicro(1796595322080123)},
		{Value: "x.example", Type: "indicator", TLP: "TLP:none", Observable: "X.Example.", DateAdded: time.UnixMicro(-5)},
		{Value: "x.example", Type: "observed-data", TLP: "TLP:RED", Producer: "é \x00 \"", Observable: "", Labels: []string{"", "b"}},
	} {
		v := string(packIxEntry(&e))
		r, err := unpackIxEntry(v, e.Value)
		if err != nil {
			t.Fatalf("%+v: %v", e, err)
		}
		want := ixEntry{Type: e.Type, DateAdded: e.DateAdded.UnixMicro(), TLP: e.TLP, Producer: e.Producer, Observable: e.Observable, Labels: e.Labels}
		if fmt.Sprintf("%#v", r) != fmt.Sprintf("%#v", want) {
			t.Errorf("unpacked %#v, want %#v", r, want)
		}
		for _, bad := range []string{v[:len(v)-1], v + "x"} {
			if _, err := unpackIxEntry(bad, e.Value); err == nil {
				t.Errorf("%q: no error", bad)
			}
		}
	}
	r, err := unpackIxEntry(`{"t":"indicator","d":7,"l":"TLP:AMBER","p":"CERT-A","o":"x.example","b":["a"]}`, "x.example")
	if err != nil || r.Type != "indicator" || r.DateAdded != 7 || r.Observable != "x.example" || len(r.Labels) != 1 {
		t.Fatalf("an entry stored as JSON: %+v, %v", r, err)
	}
}

// FuzzIxEntryUnpack: any stored value unpacks or fails, never panics.
func FuzzIxEntryUnpack(f *testing.F) {
	f.Add(string(packIxEntry(&store.IndexEntry{Value: "v", Type: "t", Labels: []string{"a"}})))
	f.Add("\x01\x00\x09")
	f.Fuzz(func(t *testing.T, v string) {
		_, _ = unpackIxEntry(v, "v")
	})
}
