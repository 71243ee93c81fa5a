package store

import (
	"encoding/hex"
	"strconv"
	"time"
)

// Compact forms of what stored records repeat most: STIX ids whose UUID
// is in lowercase canonical form, and UTC times in RFC 3339 as the
// gateway writes them. Each Cut recognises only text its Append gives
// back byte for byte, so a backend that stores the compact form returns
// exactly what it was given, and keeps any other text as it is.

// ParseUUID decodes a lowercase canonical UUID (8-4-4-4-12 hex digits).
func ParseUUID[S string | []byte](s S, u *[16]byte) bool {
	if len(s) != 36 || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' {
		return false
	}
	j := 0
	for i := 0; i < 36; i += 2 {
		if i == 8 || i == 13 || i == 18 || i == 23 {
			i--
			continue
		}
		hi, lo := hexValue[s[i]], hexValue[s[i+1]]
		if hi|lo == 0xff {
			return false
		}
		u[j] = hi<<4 | lo
		j++
	}
	return j == 16
}

// hexValue maps a lowercase hex digit to its value and any other byte to
// 0xff. Uppercase is not canonical.
const hexValue = "" +
	"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff" +
	"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x00\x01\x02\x03\x04\x05\x06\x07\x08\x09\xff\xff\xff\xff\xff\xff" +
	"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff" +
	"\xff\x0a\x0b\x0c\x0d\x0e\x0f\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff" +
	"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff" +
	"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff" +
	"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff" +
	"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff"

// IsLowerHex reports whether s is lowercase hex digits only.
func IsLowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if hexValue[s[i]] == 0xff {
			return false
		}
	}
	return true
}

// AppendUUID appends u in lowercase canonical form.
func AppendUUID(b []byte, u *[16]byte) []byte {
	var x [32]byte
	hex.Encode(x[:], u[:])
	b = append(b, x[0:8]...)
	b = append(b, '-')
	b = append(b, x[8:12]...)
	b = append(b, '-')
	b = append(b, x[12:16]...)
	b = append(b, '-')
	b = append(b, x[16:20]...)
	b = append(b, '-')
	return append(b, x[20:]...)
}

// CutCanonicalID splits "<type>--<UUID>", the type not empty and the UUID
// in lowercase canonical form.
func CutCanonicalID(id string, u *[16]byte) (string, bool) {
	n := len(id) - 36
	if n < 3 || id[n-2:n] != "--" || !ParseUUID(id[n:], u) {
		return "", false
	}
	return id[:n-2], true
}

// AppendCanonicalID appends "<typ>--<UUID>".
func AppendCanonicalID(b []byte, typ string, u *[16]byte) []byte {
	b = append(b, typ...)
	b = append(b, '-', '-')
	return AppendUUID(b, u)
}

// CutUTCTime recognises "YYYY-MM-DDTHH:MM:SS[.f]Z" with 0 to 9 fraction
// digits, giving its Unix seconds, the fraction's digits as a number and
// how many there are.
func CutUTCTime(s string) (secs int64, frac uint64, digits int, ok bool) {
	switch {
	case len(s) == 20:
	case len(s) >= 22 && len(s) <= 30 && s[19] == '.':
		digits = len(s) - 21
	default:
		return 0, 0, 0, false
	}
	if s[len(s)-1] != 'Z' || s[10] != 'T' {
		return 0, 0, 0, false
	}
	t, err := time.Parse("2006-01-02T15:04:05", s[:19])
	if err != nil {
		return 0, 0, 0, false
	}
	for i := 20; i < 20+digits; i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, 0, 0, false
		}
		frac = frac*10 + uint64(c-'0')
	}
	secs = t.Unix()
	var buf [32]byte
	if string(AppendUTCTime(buf[:0], secs, frac, digits)) != s {
		return 0, 0, 0, false
	}
	return secs, frac, digits, true
}

// AppendUTCTime appends the time CutUTCTime read: digits (0 to 9) fraction
// digits of value frac.
func AppendUTCTime(b []byte, secs int64, frac uint64, digits int) []byte {
	b = time.Unix(secs, 0).UTC().AppendFormat(b, "2006-01-02T15:04:05")
	if digits > 0 {
		b = append(b, '.')
		var f [20]byte
		x := strconv.AppendUint(f[:0], frac, 10)
		for range digits - len(x) {
			b = append(b, '0')
		}
		b = append(b, x...)
	}
	return append(b, 'Z')
}
