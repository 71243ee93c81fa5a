package stix

import (
	"time"

	"github.com/ctigate/ctigate"
)

// The layouts FormatTimestamp chooses from: the shortest of millisecond,
// microsecond and nanosecond precision that represents t exactly.
const (
	layoutMilli = "2006-01-02T15:04:05.000Z"
	layoutMicro = "2006-01-02T15:04:05.000000Z"
	layoutNano  = "2006-01-02T15:04:05.000000000Z"
)

// FormatTimestamp returns t as a STIX 2.1 timestamp (STIX 2.1 §2.16): RFC
// 3339 in UTC with a literal "Z", with millisecond digits, or microsecond or
// nanosecond digits when t needs them to be represented exactly. The result
// satisfies the millisecond minimum precision that STIX requires of created
// and modified, and ParseTimestamp returns t (in UTC) for it.
//
// Times outside the years 0000–9999 have no RFC 3339 form; for them the
// result is what time.Format produces, which ParseTimestamp rejects.
func FormatTimestamp(t time.Time) string {
	t = t.UTC()
	switch ns := t.Nanosecond(); {
	case ns%int(time.Millisecond) == 0:
		return t.Format(layoutMilli)
	case ns%int(time.Microsecond) == 0:
		return t.Format(layoutMicro)
	default:
		return t.Format(layoutNano)
	}
}

// ParseTimestamp parses a STIX 2.1 timestamp (STIX 2.1 §2.16) strictly:
// YYYY-MM-DDTHH:MM:SS[.s+]Z, that is RFC 3339 with an upper-case "T", in UTC
// with a literal upper-case "Z" (no numeric offsets), and an optional
// fraction of one or more digits. Every field is range-checked, including
// the day against the month and leap years; leap seconds (":60") are
// rejected because time.Time cannot represent them. Fraction digits beyond
// the ninth (nanoseconds) are accepted and truncated.
//
// The result is in UTC. The error is a *ctigate.Error of kind Invalid whose
// message quotes s and names the problem.
func ParseTimestamp(s string) (time.Time, error) {
	t, _, problem := parseTimestamp(s)
	if problem != "" {
		return time.Time{}, ctigate.Errorf(ctigate.Invalid, "%s: %s", quoteValue(s), problem)
	}
	return t, nil
}

// timestampForm describes the accepted syntax in error messages.
const timestampForm = "must be a STIX timestamp, YYYY-MM-DDTHH:MM:SS[.s+]Z in UTC"

// parseTimestamp parses s as ParseTimestamp documents. It returns the time,
// the number of fraction digits, and a non-empty problem (with the time
// zero) when s is not a valid timestamp. It does not allocate.
func parseTimestamp[S string | []byte](s S) (t time.Time, fracDigits int, problem string) {
	// 0123456789012345678901
	// YYYY-MM-DDTHH:MM:SS.sZ
	const minLen = len("YYYY-MM-DDTHH:MM:SSZ")
	if len(s) < minLen || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' || s[16] != ':' {
		return time.Time{}, 0, timestampForm
	}
	year, ok1 := digits(s[0:4])
	month, ok2 := digits(s[5:7])
	day, ok3 := digits(s[8:10])
	hour, ok4 := digits(s[11:13])
	minute, ok5 := digits(s[14:16])
	sec, ok6 := digits(s[17:19])
	if !ok1 || !ok2 || !ok3 || !ok4 || !ok5 || !ok6 {
		return time.Time{}, 0, timestampForm
	}

	// The rest is "Z" or "." digit+ "Z".
	rest := s[19:]
	nsec := 0
	switch {
	case len(rest) == 1 && rest[0] == 'Z':
	case len(rest) >= 3 && rest[0] == '.' && rest[len(rest)-1] == 'Z':
		frac := rest[1 : len(rest)-1]
		for i := 0; i < len(frac); i++ {
			c := frac[i]
			if c < '0' || c > '9' {
				return time.Time{}, 0, timestampForm
			}
			if i < 9 {
				nsec = nsec*10 + int(c-'0')
			}
		}
		for i := len(frac); i < 9; i++ {
			nsec *= 10
		}
		fracDigits = len(frac)
	default:
		if n := len(rest); n >= 6 && (rest[n-6] == '+' || rest[n-6] == '-') && rest[n-3] == ':' {
			return time.Time{}, 0, "must be in UTC with a literal \"Z\", not a numeric offset"
		}
		return time.Time{}, 0, timestampForm
	}

	switch {
	case month < 1 || month > 12:
		return time.Time{}, 0, "month out of range"
	case day < 1 || day > daysIn(month, year):
		return time.Time{}, 0, "day out of range"
	case hour > 23:
		return time.Time{}, 0, "hour out of range"
	case minute > 59:
		return time.Time{}, 0, "minute out of range"
	case sec > 59:
		return time.Time{}, 0, "second out of range (leap seconds are not supported)"
	}
	return time.Date(year, time.Month(month), day, hour, minute, sec, nsec, time.UTC), fracDigits, ""
}

// digits parses s, which must be all ASCII digits.
func digits[S string | []byte](s S) (int, bool) {
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

// daysIn returns the number of days of month in year (proleptic Gregorian).
func daysIn(month, year int) int {
	switch month {
	case 2:
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	default:
		return 31
	}
}
