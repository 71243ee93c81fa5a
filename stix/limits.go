package stix

import (
	"strconv"
)

// DefaultMaxPatternBytes is the usual Limits.MaxPatternBytes: 64 KiB, over
// a hundred times the longest pattern of the public STIX 2.1 data the
// gateway is tested with (ATT&CK, Attack Flow, the OASIS examples: 452
// bytes), and room for an IN set of a few thousand addresses.
const DefaultMaxPatternBytes = 64 << 10

// Limits bound what one object may cost the gateway beyond what STIX 2.1
// itself requires. An object over a limit fails on its own, like an
// invalid one, with a *ctigate.Error of kind TooLarge whose message names
// the limit, its value and the setting that raises it. The zero Limits
// sets no bound.
type Limits struct {
	// MaxPatternBytes bounds the length in bytes (UTF-8, after JSON
	// unescaping) of the pattern of an indicator whose pattern_type is
	// "stix", checked before the pattern is parsed. It bounds the work of
	// parsing the pattern and what its comparisons can add to the search
	// index. Patterns of other languages are carried unparsed and are not
	// bounded here. 0: no bound.
	MaxPatternBytes int
	// MaxPatternBytesKey is the name of the setting that sets
	// MaxPatternBytes, quoted in messages (such as
	// "ingest.max_pattern_bytes"); "" quotes "max_pattern_bytes".
	MaxPatternBytesKey string
}

// DecodeEnvelopeLimited is DecodeEnvelope with each object also held to
// lim. An object over a limit gets an Item.Err of kind TooLarge, for
// example `indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f: pattern:
// 70,000 bytes is over the limit of 65,536 bytes
// (ingest.max_pattern_bytes)`, unless it breaks a STIX rule checked
// first; the other objects are unaffected.
func DecodeEnvelopeLimited(data []byte, lim Limits) ([]Item, error) {
	items, err := decodeEnvelope(data, true, lim)
	if err == errRetryCareful {
		items, err = decodeEnvelope(data, false, lim)
	}
	return items, err
}

// checkPattern returns why an indicator's pattern, in language
// patternType, is over the limits, or "".
func (lim *Limits) checkPattern(patternType string, pattern []byte) string {
	if patternType != "stix" || lim.MaxPatternBytes <= 0 || len(pattern) <= lim.MaxPatternBytes {
		return ""
	}
	key := lim.MaxPatternBytesKey
	if key == "" {
		key = "max_pattern_bytes"
	}
	return groupDigits(len(pattern)) + " bytes is over the limit of " + groupDigits(lim.MaxPatternBytes) + " bytes (" + key + ")"
}

// groupDigits writes n in decimal with a comma between groups of three
// digits, as in 7,340,032.
func groupDigits(n int) string {
	s := strconv.Itoa(n)
	neg := ""
	if n < 0 {
		neg, s = "-", s[1:]
	}
	out := make([]byte, 0, len(s)+len(s)/3)
	for i := range len(s) {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, ',')
		}
		out = append(out, s[i])
	}
	return neg + string(out)
}
