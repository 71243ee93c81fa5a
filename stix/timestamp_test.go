package stix

import (
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/ctigate/ctigate"
)

func TestParseTimestamp(t *testing.T) {
	valid := []struct {
		in   string
		want time.Time
	}{
		{"2016-01-20T12:31:12.123Z", time.Date(2016, 1, 20, 12, 31, 12, 123e6, time.UTC)},
		{"2016-01-20T12:31:12Z", time.Date(2016, 1, 20, 12, 31, 12, 0, time.UTC)},
		{"2016-01-20T12:31:12.1Z", time.Date(2016, 1, 20, 12, 31, 12, 100e6, time.UTC)},
		{"2021-03-13T20:09:20.886268Z", time.Date(2021, 3, 13, 20, 9, 20, 886268e3, time.UTC)},
		{"2021-03-13T20:09:20.123456789Z", time.Date(2021, 3, 13, 20, 9, 20, 123456789, time.UTC)},
		{"2021-03-13T20:09:20.1234567891234Z", time.Date(2021, 3, 13, 20, 9, 20, 123456789, time.UTC)}, // truncated
		{"2024-02-29T00:00:00.000Z", time.Date(2024, 2, 29, 0, 0, 0, 0, time.UTC)},
		{"2000-02-29T23:59:59.999Z", time.Date(2000, 2, 29, 23, 59, 59, 999e6, time.UTC)},
		{"0000-01-01T00:00:00Z", time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC)},
		{"9999-12-31T23:59:59.999999999Z", time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC)},
	}
	for _, tc := range valid {
		got, err := ParseTimestamp(tc.in)
		if err != nil {
			t.Errorf("ParseTimestamp(%q): unexpected error %v", tc.in, err)
			continue
		}
		if !got.Equal(tc.want) || got.Location() != time.UTC {
			t.Errorf("ParseTimestamp(%q) = %v, want %v in UTC", tc.in, got, tc.want)
		}
	}

	invalid := []struct {
		in, problem string
	}{
		{"2022-101-27T13:49:54.326Z", "must be a STIX timestamp"}, // from the TLP 2.0 example
		{"", "must be a STIX timestamp"},
		{"2016-01-20", "must be a STIX timestamp"},
		{"2016-01-20T12:31:12", "must be a STIX timestamp"},
		{"2016-01-20T12:31:12.123", "must be a STIX timestamp"},
		{"2016-01-20T12:31:12.123+00:00", "not a numeric offset"},
		{"2016-01-20T12:31:12-05:00", "not a numeric offset"},
		{"2016-01-20T12:31:12.123z", "must be a STIX timestamp"},
		{"2016-01-20t12:31:12.123Z", "must be a STIX timestamp"},
		{"2016-01-20 12:31:12.123Z", "must be a STIX timestamp"},
		{"2016-01-20T12:31:12.Z", "must be a STIX timestamp"},
		{"2016-01-20T12:31:12,123Z", "must be a STIX timestamp"},
		{"2016-01-20T12:31:12.12aZ", "must be a STIX timestamp"},
		{"2016-01-20T12:31:12.123ZZ", "must be a STIX timestamp"},
		{" 2016-01-20T12:31:12.123Z", "must be a STIX timestamp"},
		{"2016-01-20T12:31:12.123Z ", "must be a STIX timestamp"},
		{"2016-1-20T12:31:12.123Z", "must be a STIX timestamp"},
		{"+2016-01-20T12:31:12Z", "must be a STIX timestamp"},
		{"20160-01-20T12:31:12Z", "must be a STIX timestamp"},
		{"2016-01-2xT12:31:12Z", "must be a STIX timestamp"},
		{"２０１６-01-20T12:31:12Z", "must be a STIX timestamp"},
		{"2016-00-20T12:31:12Z", "month out of range"},
		{"2016-13-20T12:31:12Z", "month out of range"},
		{"2016-01-00T12:31:12Z", "day out of range"},
		{"2016-01-32T12:31:12Z", "day out of range"},
		{"2016-04-31T12:31:12Z", "day out of range"},
		{"2023-02-29T12:31:12Z", "day out of range"},
		{"1900-02-29T12:31:12Z", "day out of range"},
		{"2016-01-20T24:00:00Z", "hour out of range"},
		{"2016-01-20T12:60:12Z", "minute out of range"},
		{"2016-12-31T23:59:60Z", "second out of range"},
	}
	for _, tc := range invalid {
		got, err := ParseTimestamp(tc.in)
		if err == nil {
			t.Errorf("ParseTimestamp(%q) = %v, want error containing %q", tc.in, got, tc.problem)
			continue
		}
		if k := ctigate.KindOf(err); k != ctigate.Invalid {
			t.Errorf("ParseTimestamp(%q): error kind %v, want %v", tc.in, k, ctigate.Invalid)
		}
		if msg := ctigate.MessageOf(err); !strings.Contains(msg, tc.problem) || !strings.Contains(msg, quoteValue(tc.in)) {
			t.Errorf("ParseTimestamp(%q): message %q, want it to quote the input and contain %q", tc.in, msg, tc.problem)
		}
		if !got.IsZero() {
			t.Errorf("ParseTimestamp(%q) returned %v with its error, want the zero time", tc.in, got)
		}
	}
}

func TestFormatTimestamp(t *testing.T) {
	cet := time.FixedZone("CET", 3600)
	tests := []struct {
		in   time.Time
		want string
	}{
		{time.Date(2016, 1, 20, 12, 31, 12, 0, time.UTC), "2016-01-20T12:31:12.000Z"},
		{time.Date(2016, 1, 20, 12, 31, 12, 120e6, time.UTC), "2016-01-20T12:31:12.120Z"},
		{time.Date(2016, 1, 20, 12, 31, 12, 123456e3, time.UTC), "2016-01-20T12:31:12.123456Z"},
		{time.Date(2016, 1, 20, 12, 31, 12, 100e3, time.UTC), "2016-01-20T12:31:12.000100Z"},
		{time.Date(2016, 1, 20, 12, 31, 12, 1, time.UTC), "2016-01-20T12:31:12.000000001Z"},
		{time.Date(2016, 1, 20, 13, 31, 12, 5e6, cet), "2016-01-20T12:31:12.005Z"},
		{time.Date(2016, 1, 1, 0, 30, 0, 0, cet), "2015-12-31T23:30:00.000Z"},
	}
	for _, tc := range tests {
		if got := FormatTimestamp(tc.in); got != tc.want {
			t.Errorf("FormatTimestamp(%v) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// TestTimestampRoundTrip checks that ParseTimestamp inverts FormatTimestamp
// and that what FormatTimestamp produces is valid for created and modified.
func TestTimestampRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	minSec := time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC).Unix()
	maxSec := time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC).Unix()
	for range 10000 {
		in := time.Unix(minSec+r.Int64N(maxSec-minSec+1), 0)
		switch r.IntN(3) {
		case 0:
			in = in.Add(time.Duration(r.IntN(1000)) * time.Millisecond)
		case 1:
			in = in.Add(time.Duration(r.IntN(1e6)) * time.Microsecond)
		case 2:
			in = in.Add(time.Duration(r.IntN(1e9)))
		}
		s := FormatTimestamp(in)
		got, frac, problem := parseTimestamp(s)
		if problem != "" {
			t.Fatalf("parseTimestamp(FormatTimestamp(%v) = %q): %s", in, s, problem)
		}
		if !got.Equal(in) {
			t.Fatalf("parseTimestamp(FormatTimestamp(%v) = %q) = %v", in, s, got)
		}
		if frac < 3 {
			t.Fatalf("FormatTimestamp(%v) = %q has %d fraction digits, want at least 3", in, s, frac)
		}
	}
}
