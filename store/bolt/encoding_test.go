package bolt

import (
	"bytes"
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

func TestVersionKeyOrder(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	fixed := []time.Time{
		{},
		time.Date(1, 1, 1, 0, 0, 0, 1, time.UTC),
		time.Date(1601, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Unix(-1, 999999999),
		time.Unix(0, 0),
		time.Unix(0, 1),
		time.Date(2026, 3, 1, 12, 0, 0, 123456789, time.UTC),
		time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC),
	}
	times := append([]time.Time(nil), fixed...)
	for range 1000 {
		times = append(times, time.Unix(rng.Int64N(400e9)-200e9, rng.Int64N(1e9)))
	}
	for i, a := range times {
		ka := encodeVersion(a)
		if got := ka.time(); !got.Equal(a) || got.Location() != time.UTC {
			t.Fatalf("round trip of %v: got %v", a, got)
		}
		b := times[(i+1)%len(times)]
		kb := encodeVersion(b)
		if got, want := bytes.Compare(ka[:], kb[:]), a.Compare(b); got != want {
			t.Fatalf("compare(%v, %v): keys say %d, times say %d", a, b, got, want)
		}
	}
}

func TestDateKeyOrder(t *testing.T) {
	vals := []int64{math.MinInt64, -1e15, -1, 0, 1, 1e15, math.MaxInt64}
	for i := 1; i < len(vals); i++ {
		if bytes.Compare(dateKey(vals[i-1]), dateKey(vals[i])) >= 0 {
			t.Fatalf("dateKey(%d) >= dateKey(%d)", vals[i-1], vals[i])
		}
		if got := dateMicros(dateKey(vals[i])); got != vals[i] {
			t.Fatalf("dateMicros(dateKey(%d)) = %d", vals[i], got)
		}
	}
}

func TestHeaderRoundTrip(t *testing.T) {
	v := encodeVersion(time.Date(2026, 3, 1, 12, 0, 0, 5, time.UTC))
	b := appendHeader(nil, flagNotFirst|flagMixedSpec, v, "indicator--x", "indicator", "2.1")
	h, err := decodeHeader(b)
	if err != nil {
		t.Fatalf("decodeHeader: %v", err)
	}
	if h.flags != flagNotFirst|flagMixedSpec || h.version != v || string(h.id) != "indicator--x" ||
		string(h.typ) != "indicator" || string(h.spec) != "2.1" {
		t.Fatalf("decodeHeader: got %+v", h)
	}
	// Every truncation that cuts into the id or type is corrupt.
	for n := range 1 + versionKeyLen + 1 + len("indicator--x") + 1 + len("indicator") {
		if _, err := decodeHeader(b[:n]); err == nil {
			t.Fatalf("decodeHeader of the first %d bytes: got no error", n)
		}
	}
}

func TestCursorRoundTrip(t *testing.T) {
	for _, micros := range []int64{math.MinInt64 + 1, -1, 0, 1, time.Now().UnixMicro(), math.MaxInt64 - 1} {
		c := encodeCursor(micros)
		if len(c) != cursorTextLen {
			t.Fatalf("encodeCursor(%d) = %q: length %d, want %d", micros, c, len(c), cursorTextLen)
		}
		got, ok := decodeCursor(c)
		if !ok || got != micros {
			t.Fatalf("decodeCursor(encodeCursor(%d)) = %d, %v", micros, got, ok)
		}
	}
	good := encodeCursor(12345)
	for _, bad := range []string{
		"", good[:len(good)-1], good + "A", "+" + good[1:], "/" + good[1:],
		good[:len(good)-1] + "=", good[:8] + "====",
		encodeCursor(math.MaxInt64), encodeCursor(math.MinInt64),
		"AgAAAAAAAAAA", // format 2
	} {
		if _, ok := decodeCursor(bad); ok {
			t.Fatalf("decodeCursor(%q) accepted a malformed cursor", bad)
		}
	}
}

func FuzzDecodeCursor(f *testing.F) {
	f.Add(encodeCursor(0))
	f.Add(encodeCursor(time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC).UnixMicro()))
	f.Add("AQAAAAAAAAAA")
	f.Fuzz(func(t *testing.T, s string) {
		micros, ok := decodeCursor(s)
		if ok && encodeCursor(micros) != s {
			t.Fatalf("decodeCursor(%q) accepted a non-canonical cursor (canonical %q)", s, encodeCursor(micros))
		}
	})
}

func FuzzDecodeHeader(f *testing.F) {
	f.Add(appendHeader(nil, 0, encodeVersion(time.Unix(0, 0)), "indicator--x", "indicator", "2.1"))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := decodeHeader(b)
		if err != nil {
			return
		}
		again := appendHeader(nil, h.flags, h.version, string(h.id), string(h.typ), string(h.spec))
		if h2, err := decodeHeader(again); err != nil || !bytes.Equal(h2.id, h.id) || !bytes.Equal(h2.spec, h.spec) {
			t.Fatalf("re-encoding %x: %v", b, err)
		}
	})
}
