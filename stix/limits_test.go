package stix

import (
	"bytes"
	"io/fs"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/ctigate/ctigate"
	"github.com/ctigate/ctigate/internal/shared"
)

// patternOfLength returns a valid STIX pattern of exactly n bytes (n ≥ 30).
func patternOfLength(n int) string {
	const head, tail = "[domain-name:value = '", ".example']"
	return head + strings.Repeat("a", n-len(head)-len(tail)) + tail
}

// withPattern returns a valid indicator whose pattern is the JSON string
// value v (raw JSON, quotes included), of pattern_type typ.
func withPattern(v, typ string) string {
	return validObject("indicator", member{"pattern", v}, member{"pattern_type", strconv.Quote(typ)})
}

// decodeLimited decodes the envelope of obj under lim and returns its item.
func decodeLimited(t *testing.T, obj string, lim Limits) Item {
	t.Helper()
	items, err := DecodeEnvelopeLimited([]byte(`{"objects":[`+obj+`]}`), lim)
	if err != nil {
		t.Fatal(err)
	}
	return items[0]
}

// checkOverLimit checks that it failed for being over a limit, with
// message want after "<id>: ".
func checkOverLimit(t *testing.T, it Item, want string) {
	t.Helper()
	if it.Err == nil {
		t.Fatalf("accepted; want refused with %q", want)
	}
	if k := ctigate.KindOf(it.Err); k != ctigate.TooLarge {
		t.Errorf("kind %v, want %v (%v)", k, ctigate.TooLarge, it.Err)
	}
	if got, want := ctigate.MessageOf(it.Err), idOf("indicator")+": "+want; got != want {
		t.Errorf("message\n\t%s\nwant\n\t%s", got, want)
	}
	if it.Object != (Object{}) || it.Warnings != nil {
		t.Errorf("refused item has Object %+v, Warnings %q", it.Object, it.Warnings)
	}
}

func TestPatternLimit(t *testing.T) {
	lim := Limits{MaxPatternBytes: 1000, MaxPatternBytesKey: "ingest.max_pattern_bytes"}

	t.Run("at the limit", func(t *testing.T) {
		it := decodeLimited(t, withPattern(strconv.Quote(patternOfLength(1000)), "stix"), lim)
		checkItemErr(t, it, "")
	})
	t.Run("one byte over", func(t *testing.T) {
		it := decodeLimited(t, withPattern(strconv.Quote(patternOfLength(1001)), "stix"), lim)
		checkOverLimit(t, it, "pattern: 1,001 bytes is over the limit of 1,000 bytes (ingest.max_pattern_bytes)")
	})
	t.Run("counted after unescaping", func(t *testing.T) {
		// 1,000 bytes of pattern written as over 5,000 bytes of JSON.
		p := patternOfLength(1000)
		v := `"` + strings.ReplaceAll(p, "a", `\u0061`) + `"`
		checkItemErr(t, decodeLimited(t, withPattern(v, "stix"), lim), "")
		// Multi-byte UTF-8 counts its bytes: 999 + 2.
		v = `"` + strings.Replace(p[:len(p)-1], "a", "é", 1) + `'"`
		checkOverLimit(t, decodeLimited(t, withPattern(v, "stix"), lim),
			"pattern: 1,001 bytes is over the limit of 1,000 bytes (ingest.max_pattern_bytes)")
	})
	t.Run("not parsed when over", func(t *testing.T) {
		// An unparsable pattern over the limit is refused for its size:
		// the parser never sees it.
		it := decodeLimited(t, withPattern(strconv.Quote("["+strings.Repeat("(", 2000)), "stix"), lim)
		checkOverLimit(t, it, "pattern: 2,001 bytes is over the limit of 1,000 bytes (ingest.max_pattern_bytes)")
	})
	t.Run("STIX rules come first", func(t *testing.T) {
		obj := validObject("indicator", member{"pattern", strconv.Quote(patternOfLength(2000))}, member{"valid_from", ""})
		checkItemErr(t, decodeLimited(t, obj, lim), idOf("indicator")+": valid_from: required")
	})
	t.Run("other pattern languages", func(t *testing.T) {
		it := decodeLimited(t, withPattern(strconv.Quote("alert tcp any any -> any any (content:\""+strings.Repeat("A", 5000)+"\";)"), "snort"), lim)
		checkItemErr(t, it, "")
	})
	t.Run("setting named by default", func(t *testing.T) {
		it := decodeLimited(t, withPattern(strconv.Quote(patternOfLength(1001)), "stix"), Limits{MaxPatternBytes: 1000})
		checkOverLimit(t, it, "pattern: 1,001 bytes is over the limit of 1,000 bytes (max_pattern_bytes)")
	})
	t.Run("no limit", func(t *testing.T) {
		long := withPattern(strconv.Quote(patternOfLength(1<<20)), "stix")
		checkItemErr(t, decodeLimited(t, long, Limits{}), "")
		items, err := DecodeEnvelope([]byte(`{"objects":[` + long + `]}`))
		if err != nil || items[0].Err != nil {
			t.Fatalf("DecodeEnvelope: %v, %v", err, items[0].Err)
		}
	})
	t.Run("the others in the envelope", func(t *testing.T) {
		body := `{"objects":[` + validObject("malware") + `,` + withPattern(strconv.Quote(patternOfLength(5000)), "stix") +
			`,` + withPattern(strconv.Quote(patternOfLength(500)), "stix") + `]}`
		items, err := DecodeEnvelopeLimited([]byte(body), lim)
		if err != nil {
			t.Fatal(err)
		}
		checkItemErr(t, items[0], "")
		checkOverLimit(t, items[1], "pattern: 5,000 bytes is over the limit of 1,000 bytes (ingest.max_pattern_bytes)")
		checkItemErr(t, items[2], "")
	})
	t.Run("both decoding paths", func(t *testing.T) {
		// A duplicate member anywhere sends the envelope down the careful
		// path, which applies the limits alike.
		body := `{"objects":[{"a":1,"a":2},` + withPattern(strconv.Quote(patternOfLength(1001)), "stix") + `]}`
		items, err := DecodeEnvelopeLimited([]byte(body), lim)
		if err != nil {
			t.Fatal(err)
		}
		checkOverLimit(t, items[1], "pattern: 1,001 bytes is over the limit of 1,000 bytes (ingest.max_pattern_bytes)")
	})
}

func TestGroupDigits(t *testing.T) {
	for n, want := range map[int]string{
		0: "0", 7: "7", 999: "999", 1000: "1,000", 65536: "65,536", 7340032: "7,340,032",
		100000: "100,000", -1234: "-1,234", 1234567890: "1,234,567,890",
	} {
		if got := groupDigits(n); got != want {
			t.Errorf("groupDigits(%d) = %q, want %q", n, got, want)
		}
	}
}

// TestSharedBundlesWithinDefaultLimits: every object of the shared real
// data (ATT&CK, Attack Flow, the OASIS examples, the TLP envelopes)
// decodes under the default limits exactly as without limits.
func TestSharedBundlesWithinDefaultLimits(t *testing.T) {
	lim := Limits{MaxPatternBytes: DefaultMaxPatternBytes}
	files, patterns, longest := 0, 0, 0
	err := filepath.WalkDir(shared.Path(t), func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".json") {
			return err
		}
		data := readFile(t, path)
		if !bytes.Contains(data, []byte(`"objects"`)) || strings.Contains(path, "medallion") || strings.Contains(path, "stix2-json-schemas") {
			return nil
		}
		body := data
		if !strings.HasSuffix(path, ".taxii-envelope.json") {
			body = bundleToEnvelope(t, data)
		}
		plain, err := DecodeEnvelope(body)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		limited, err := DecodeEnvelopeLimited(body, lim)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if !reflect.DeepEqual(plain, limited) {
			for i := range plain {
				if !reflect.DeepEqual(plain[i], limited[i]) {
					t.Errorf("%s: %s differs under the default limits: %v", path, plain[i].ID, limited[i].Err)
				}
			}
		}
		for _, it := range plain {
			if it.Object.Type == "indicator" {
				var o struct {
					Pattern string `json:"pattern"`
				}
				if err := json.Unmarshal(it.Raw, &o); err != nil {
					t.Fatal(err)
				}
				patterns++
				longest = max(longest, len(o.Pattern))
			}
		}
		files++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files < 10 || patterns < 10 {
		t.Fatalf("only %d files, %d patterns", files, patterns)
	}
	t.Logf("%d files, %d indicators, longest pattern %d bytes (limit %d)", files, patterns, longest, DefaultMaxPatternBytes)
}

// FuzzPatternLimit: a limit only ever adds refusals of kind TooLarge, and
// only of STIX-pattern indicators longer than the limit that pass every
// other rule; every other object decodes as without the limit.
func FuzzPatternLimit(f *testing.F) {
	f.Add([]byte(withPattern(strconv.Quote(patternOfLength(40)), "stix")), uint16(40))
	f.Add([]byte(withPattern(strconv.Quote(patternOfLength(41)), "stix")), uint16(40))
	f.Add([]byte(withPattern(`"[a:b = 'x\u00e9']"`, "stix")), uint16(12))
	f.Add([]byte(withPattern(strconv.Quote("[("+strings.Repeat("(", 100)), "stix")), uint16(50))
	f.Add([]byte(withPattern(strconv.Quote(strings.Repeat("x", 100)), "sigma")), uint16(50))
	f.Add([]byte(validObject("indicator", member{"pattern", strconv.Quote(patternOfLength(100))}, member{"valid_from", ""})), uint16(50))
	f.Add([]byte(validObject("malware")), uint16(1))

	f.Fuzz(func(t *testing.T, data []byte, limit uint16) {
		if !jsontext.Value(data).IsValid(jsontext.AllowDuplicateNames(true)) {
			return
		}
		data = bytes.Trim(data, " \t\r\n")
		var plain, limited Item
		(&validator{}).item(&plain, 0, data, false)
		lim := Limits{MaxPatternBytes: int(limit), MaxPatternBytesKey: "k"}
		(&validator{lim: lim}).item(&limited, 0, data, false)
		if reflect.DeepEqual(plain, limited) {
			return
		}
		if ctigate.KindOf(limited.Err) != ctigate.TooLarge || !strings.HasSuffix(ctigate.MessageOf(limited.Err), " bytes (k)") {
			t.Fatalf("the limit changed the result otherwise than by a TooLarge refusal:\nplain:   %+v\nlimited: %+v", plain, limited)
		}
		if plain.Err != nil && !strings.Contains(ctigate.MessageOf(plain.Err), ": pattern: not a valid STIX pattern") {
			t.Fatalf("refused for size an object refused for another rule:\nplain:   %v\nlimited: %v", plain.Err, limited.Err)
		}
		if limit == 0 || limited.ID != plain.ID || limited.Version != plain.Version {
			t.Fatalf("limit %d: plain %+v, limited %+v", limit, plain, limited)
		}
	})
}
