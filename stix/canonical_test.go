package stix

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/ctigate/ctigate"

	"github.com/ctigate/ctigate/internal/shared"
)

// mustCanonical returns the canonical form of in, failing the test on error.
func mustCanonical(t testing.TB, in string) string {
	t.Helper()
	out, err := Canonical([]byte(in))
	if err != nil {
		t.Fatalf("Canonical(%q): %v", in, err)
	}
	return string(out)
}

// RFC 8785 §3.2.2 (and §3.2.4 for its UTF-8 bytes), the sample that shows
// number, string and literal serialisation and member ordering at once.
func TestCanonicalRFC8785Sample(t *testing.T) {
	in := `{
  "numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],
  "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
  "literals": [null, true, false]
}`
	want := `{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],"string":"€$\u000f\nA'B\"\\\\\"/"}`
	// RFC 8785 §3.2.4: the same, as UTF-8 bytes.
	wantHex := strings.Join(strings.Fields(`
		7b 22 6c 69 74 65 72 61 6c 73 22 3a 5b 6e 75 6c 6c 2c 74 72
		75 65 2c 66 61 6c 73 65 5d 2c 22 6e 75 6d 62 65 72 73 22 3a
		5b 33 33 33 33 33 33 33 33 33 2e 33 33 33 33 33 33 33 2c 31
		65 2b 33 30 2c 34 2e 35 2c 30 2e 30 30 32 2c 31 65 2d 32 37
		5d 2c 22 73 74 72 69 6e 67 22 3a 22 e2 82 ac 24 5c 75 30 30
		30 66 5c 6e 41 27 42 5c 22 5c 5c 5c 5c 5c 22 2f 22 7d`), "")

	got := mustCanonical(t, in)
	if got != want {
		t.Errorf("Canonical:\n got %s\nwant %s", got, want)
	}
	if h := hex.EncodeToString([]byte(got)); h != wantHex {
		t.Errorf("UTF-8 bytes:\n got %s\nwant %s", h, wantHex)
	}
	sum, err := Hash([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if sum != sha256.Sum256([]byte(want)) {
		t.Errorf("Hash = %x, want SHA-256 of the canonical form", sum)
	}
}

// RFC 8785 §3.2.3: members are sorted by UTF-16 code units, so U+1F600
// (surrogates D83D DE00) sorts before U+FB33, unlike UTF-8 or code point
// order; U+0440 is added to the RFC's list between U+00F6 and U+20AC.
func TestCanonicalSortsByUTF16(t *testing.T) {
	in := `{
  "\u20ac": "Euro Sign",
  "\r": "Carriage Return",
  "\ufb33": "Hebrew Letter Dalet With Dagesh",
  "1": "One",
  "\ud83d\ude00": "Emoji: Grinning Face",
  "\u0080": "Control",
  "\u00f6": "Latin Small Letter O With Diaeresis",
  "\u0440": "Cyrillic Small Letter Er"
}`
	want := "{" + strings.Join([]string{
		`"\r":"Carriage Return"`,
		`"1":"One"`,
		"\"\u0080\":\"Control\"",
		`"ö":"Latin Small Letter O With Diaeresis"`,
		`"р":"Cyrillic Small Letter Er"`,
		`"€":"Euro Sign"`,
		`"😀":"Emoji: Grinning Face"`,
		"\"\uFB33\":\"Hebrew Letter Dalet With Dagesh\"",
	}, ",") + "}"
	if got := mustCanonical(t, in); got != want {
		t.Errorf("Canonical:\n got %s\nwant %s", got, want)
	}
}

func TestCompareUTF16(t *testing.T) {
	// In UTF-16 order, each is less than the next.
	order := []string{"", "\x00", "\r", "1", "10", "A", "a", "\u0080", "ö", "р", "€", "\U00010000", "😀", "\U0010FFFF", "\uE000", "\uFB33", "\uFFFF"}
	for i := range order {
		for j := range order {
			got := compareUTF16([]byte(order[i]), []byte(order[j]))
			switch {
			case i < j && got >= 0, i > j && got <= 0, i == j && got != 0:
				t.Errorf("compareUTF16(%+q, %+q) = %d", order[i], order[j], got)
			}
		}
	}
}

// RFC 8785 Appendix B: IEEE 754 doubles (as hex) and their canonical
// serialisation.
var appendixB = []struct {
	bits uint64
	want string
}{
	{0x0000000000000000, "0"},                        // zero
	{0x8000000000000000, "0"},                        // minus zero
	{0x0000000000000001, "5e-324"},                   // min pos number
	{0x8000000000000001, "-5e-324"},                  // min neg number
	{0x7fefffffffffffff, "1.7976931348623157e+308"},  // max pos number
	{0xffefffffffffffff, "-1.7976931348623157e+308"}, // max neg number
	{0x4340000000000000, "9007199254740992"},         // max pos int
	{0xc340000000000000, "-9007199254740992"},        // max neg int
	{0x4430000000000000, "295147905179352830000"},    // ~2**68
	{0x44b52d02c7e14af5, "9.999999999999997e+22"},
	{0x44b52d02c7e14af6, "1e+23"},
	{0x44b52d02c7e14af7, "1.0000000000000001e+23"},
	{0x444b1ae4d6e2ef4e, "999999999999999700000"},
	{0x444b1ae4d6e2ef4f, "999999999999999900000"},
	{0x444b1ae4d6e2ef50, "1e+21"},
	{0x3eb0c6f7a0b5ed8c, "9.999999999999997e-7"},
	{0x3eb0c6f7a0b5ed8d, "0.000001"},
	{0x41b3de4355555553, "333333333.3333332"},
	{0x41b3de4355555554, "333333333.33333325"},
	{0x41b3de4355555555, "333333333.3333333"},
	{0x41b3de4355555556, "333333333.3333334"},
	{0x41b3de4355555557, "333333333.33333343"},
	{0xbecbf647612f3696, "-0.0000033333333333333333"},
	{0x43143ff3c1cb0959, "1424953923781206.2"}, // round to even
}

func TestCanonicalNumbersAppendixB(t *testing.T) {
	for _, c := range appendixB {
		f := math.Float64frombits(c.bits)
		if got := string(appendES6Number(nil, f)); got != c.want {
			t.Errorf("%016x: appendES6Number = %s, want %s", c.bits, got, c.want)
		}
		// The same through Canonical, from a JSON text that denotes f.
		in := strconv.FormatFloat(f, 'g', -1, 64)
		if got := mustCanonical(t, in); got != c.want {
			t.Errorf("%016x: Canonical(%s) = %s, want %s", c.bits, in, got, c.want)
		}
	}
}

func TestCanonicalNumbers(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"1e+30", "1e+30"},
		{"1E30", "1e+30"},
		{"4.50", "4.5"},
		{"2e-3", "0.002"},
		{"0.000001", "0.000001"},
		{"0.0000001", "1e-7"},
		{"1e-7", "1e-7"},
		{"1.5e-7", "1.5e-7"},
		{"-0", "0"},
		{"-0.0", "0"},
		{"0e10", "0"},
		{"-0e-10", "0"},
		{"0", "0"},
		{"-1", "-1"},
		{"100", "100"},
		{"1.0", "1"},
		{"1E2", "100"},
		{"123456789012345", "123456789012345"}, // 15 digits: copied
		{"1234567890123456", "1234567890123456"},
		{"9007199254740991", "9007199254740991"},
		{"9007199254740992", "9007199254740992"},
		{"9007199254740993", "9007199254740992"}, // 2⁵³+1 is not a double
		{"-9007199254740993", "-9007199254740992"},
		{"18446744073709551615", "18446744073709552000"},
		{"123456789012345678901234567890", "1.2345678901234568e+29"},
		{"1e20", "100000000000000000000"},
		{"1e21", "1e+21"},
		{"1.7976931348623158e308", "1.7976931348623157e+308"}, // rounds to the largest double
		{"1e-400", "0"},                                       // underflows to 0, as ECMAScript reads it
		{"-1e-400", "0"},                                      // to -0, written 0
		{"2.4703282292062328e-324", "5e-324"},
		{"0.1", "0.1"},
		{"0.30000000000000004", "0.30000000000000004"},
		{"85", "85"},
	} {
		if got := mustCanonical(t, c.in); got != c.want {
			t.Errorf("Canonical(%s) = %s, want %s", c.in, got, c.want)
		}
	}
}

// TestCanonicalNumbersV8 checks number serialisation against values that
// Node.js (V8, whose Number::toString RFC 8785 names as the reference)
// printed; see testdata/jcs/README.md. CTIGATE_ES6_NUMBERS may name a
// larger file of the same "hex,expected" format, such as the 100-million
// line es6testfile100m.txt of cyberphone/json-canonicalization.
func TestCanonicalNumbersV8(t *testing.T) {
	path := filepath.Join("testdata", "jcs", "es6-numbers.txt")
	if p := os.Getenv("CTIGATE_ES6_NUMBERS"); p != "" {
		path = p
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	n := 0
	for sc.Scan() {
		h, want, ok := strings.Cut(sc.Text(), ",")
		if !ok {
			t.Fatalf("%s: bad line %q", path, sc.Text())
		}
		bits, err := strconv.ParseUint(h, 16, 64)
		if err != nil {
			t.Fatal(err)
		}
		fv := math.Float64frombits(bits)
		if math.IsNaN(fv) || math.IsInf(fv, 0) {
			continue
		}
		n++
		if got := string(appendES6Number(nil, fv)); got != want {
			t.Errorf("%s: got %s, want %s", h, got, want)
		}
		// And through Canonical, from Go's own shortest text.
		in := strconv.AppendFloat(nil, fv, 'g', -1, 64)
		out, err := Canonical(in)
		if err != nil || string(out) != want {
			t.Errorf("%s: Canonical(%s) = %s, %v; want %s", h, in, out, err, want)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if n < 2000 {
		t.Fatalf("only %d numbers in %s", n, path)
	}
}

func TestCanonicalStrings(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{`"plain"`, `"plain"`},
		{`"\u001F\u0000\u000b\u007f"`, "\"\\u001f\\u0000\\u000b\x7f\""}, // lowercase hex; DEL as is
		{`"\b\f\n\r\t"`, `"\b\f\n\r\t"`},
		{`"\u0008\u000C\u000A\u000D\u0009"`, `"\b\f\n\r\t"`},
		{`"\/ / \u002f"`, `"/ / /"`},            // '/' never escaped
		{`"<>&\u003c\u003E\u0026"`, `"<>&<>&"`}, // no HTML escaping
		{`"\u2028\u2029"`, "\"\u2028\u2029\""},  // no JavaScript escaping
		{`"\u0022\u005C\""`, `"\"\\\""`},
		{`"\u00e9\u00E9é"`, `"ééé"`}, // non-ASCII as UTF-8
		{`"\uD83D\uDE00\ud83d\ude00😀"`, `"😀😀😀"`},
		{`"\uDBFF\uDFFF"`, "\"\U0010FFFF\""},
		{`"\uFFFF\uFFFE\uFDD0"`, "\"\uFFFF\uFFFE\uFDD0\""}, // noncharacters are Unicode text
		{`"\u1e0d\u0307"`, "\"\u1e0d\u0307\""},             // no Unicode normalisation
		{`""`, `""`},
	} {
		if got := mustCanonical(t, c.in); got != c.want {
			t.Errorf("Canonical(%s) = %s, want %s", c.in, got, c.want)
		}
	}
}

func TestCanonicalStructure(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{" \t\r\n{ } ", `{}`},
		{`[ ]`, `[]`},
		{`[56, {"d": true, "10": null, "1": [ ]}]`, `[56,{"1":[],"10":null,"d":true}]`}, // cyberphone arrays.json
		{`{"b":[3,2,1],"a":{"z":1,"y":{"x":[{"c":1,"b":2}]}}}`, `{"a":{"y":{"x":[{"b":2,"c":1}]},"z":1},"b":[3,2,1]}`},
		{`{"a":1,"ab":2,"b":3,"B":4}`, `{"B":4,"a":1,"ab":2,"b":3}`},
		{`{"\u0061b":1,"a":2}`, `{"a":2,"ab":1}`}, // sorted by the unescaped name
		{`{"a\"":1,"a":2,"a\u0000":3}`, "{\"a\":2,\"a\\u0000\":3,\"a\\\"\":1}"},
		{`"top-level string"`, `"top-level string"`},
		{`null`, `null`},
		{` true `, `true`},
		{`false`, `false`},
		{`-12.50`, `-12.5`},
	} {
		if got := mustCanonical(t, c.in); got != c.want {
			t.Errorf("Canonical(%s) = %s, want %s", c.in, got, c.want)
		}
	}
}

// TestCanonicalRejects covers what RFC 8785 §3.1 (I-JSON) and RFC 8259
// rule out: each input fails with an Invalid error naming the problem.
func TestCanonicalRejects(t *testing.T) {
	deep := strings.Repeat("[", 10001) + strings.Repeat("]", 10001)
	for _, c := range []struct{ name, in, want string }{
		{"empty", "", "empty input"},
		{"space only", " \n", "empty input"},
		{"duplicate name", `{"a":1,"a":2}`, `byte offset 7 (in "a"): duplicate member name`},
		{"duplicate escaped name", `{"id":"x","\u0069d":"y"}`, `(in "id"): duplicate member name`},
		{"duplicate nested", `{"x":[{"b":1,"c":2,"b":3}]}`, `byte offset 19 (in "x[0].b"): duplicate member name`},
		{"duplicate after sort", `{"b":1,"a":2,"b":3}`, `byte offset 13 (in "b"): duplicate member name`},
		{"invalid UTF-8", "\"\xff\"", "invalid UTF-8"},
		{"invalid UTF-8 in name", "{\"\xc3\":1}", "invalid UTF-8"},
		{"overlong UTF-8", "\"\xc0\xaf\"", "invalid UTF-8"},
		{"UTF-8 surrogate", "\"\xed\xa0\x80\"", "invalid UTF-8"},
		{"beyond U+10FFFF", "\"\xf4\x90\x80\x80\"", "invalid UTF-8"},
		{"truncated UTF-8", "\"\xe2\x82\"", "invalid UTF-8"},
		{"lone high surrogate", `"\ud800"`, "lone surrogate U+D800"},
		{"lone high surrogate then text", `"\ud83dx"`, "lone surrogate U+D83D"},
		{"high surrogate twice", `"\ud83d\ud83d"`, "lone surrogate U+D83D"},
		{"lone low surrogate", `"\ude00"`, "lone surrogate U+DE00"},
		{"reversed pair", `"\ude00\ud83d"`, "lone surrogate U+DE00"},
		{"number too large", `[1e400]`, `byte offset 1 (in "[0]"): number "1e400" is beyond the range of an IEEE 754 double`},
		{"number too small", `{"n":-1.7976931348623159e308}`, "beyond the range"},
		{"long integer too large", strings.Repeat("9", 400), "beyond the range"},
		{"trailing comma in array", `[1,]`, "at the start of a value"},
		{"trailing comma in object", `{"a":1,}`, "where a member name was expected"},
		{"leading zero", `01`, "trailing data"},
		{"leading zero in array", `[01]`, "expected ',' or ']'"},
		{"bare fraction", `.5`, "at the start of a value"},
		{"plus sign", `+1`, "at the start of a value"},
		{"dot without digits", `[1.]`, "expected a digit after '.'"},
		{"exponent without digits", `[1e+]`, "expected a digit in the exponent"},
		{"number cut short", `1.`, "unexpected end of input"},
		{"minus alone", `-`, "unexpected end of input"},
		{"NaN", `NaN`, "at the start of a value"},
		{"Infinity", `[Infinity]`, "at the start of a value"},
		{"single quotes", `{'a':1}`, "where a member name was expected"},
		{"unquoted name", `{a:1}`, "where a member name was expected"},
		{"comment", `{"a":1 /* x */}`, "expected ',' or '}'"},
		{"missing colon", `{"a" 1}`, "expected ':'"},
		{"two values", `1 2`, "trailing data"},
		{"unterminated string", `"abc`, "unterminated string"},
		{"raw control character", "\"a\tb\"", "control character U+0009 in string"},
		{"raw newline in name", "{\"a\nb\":1}", "control character U+000A"},
		{"bad escape", `"\x41"`, `invalid escape sequence "\\x"`},
		{"short unicode escape", `"\u12"`, "invalid \\u escape"},
		{"bad unicode escape", `"\u12G4"`, "invalid \\u escape"},
		{"bad literal", `tru`, "unexpected end of input"},
		{"misspelt literal", `[nul1]`, "in literal null"},
		{"unclosed array", `[1`, "unexpected end of input"},
		{"unclosed object", `{"a":1`, "unexpected end of input"},
		{"nested too deeply", deep, "nested too deeply"},
	} {
		t.Run(c.name, func(t *testing.T) {
			out, err := Canonical([]byte(c.in))
			if err == nil {
				t.Fatalf("Canonical(%q) = %s, want an error containing %q", c.in, out, c.want)
			}
			if ctigate.KindOf(err) != ctigate.Invalid || ctigate.MessageOf(err) == "" {
				t.Errorf("error %#v is not an Invalid *ctigate.Error with a message", err)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("Canonical(%q): error %q does not contain %q", c.in, err, c.want)
			}
			if _, herr := Hash([]byte(c.in)); herr == nil || herr.Error() != err.Error() {
				t.Errorf("Hash error %v, Canonical error %v: want the same", herr, err)
			}
		})
	}
}

// TestCanonicalVectors runs the input/output pairs of
// cyberphone/json-canonicalization (testdata/jcs, see its README.md).
func TestCanonicalVectors(t *testing.T) {
	inputs, err := filepath.Glob(filepath.Join("testdata", "jcs", "input", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(inputs) < 6 {
		t.Fatalf("found %d vectors, want at least 6", len(inputs))
	}
	for _, in := range inputs {
		name := filepath.Base(in)
		t.Run(name, func(t *testing.T) {
			want := jcsReadFile(t, filepath.Join("testdata", "jcs", "output", name))
			got, err := Canonical(jcsReadFile(t, in))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("got  %s\nwant %s", got, want)
			}
		})
	}
}

// libraryCanonical canonicalises with jsontext, which DESIGN.md named.
func libraryCanonical(in []byte) ([]byte, error) {
	v := jsontext.Value(bytes.Clone(in))
	err := v.Canonicalize()
	return v, err
}

// TestCanonicalLibraryDeviation shows the one way jsontext.Value.Canonicalize
// departs from RFC 8785 and why Canonical does not use it: it writes a
// number beyond the double range as the largest double instead of failing,
// so two different documents would share a canonical form and a hash.
func TestCanonicalLibraryDeviation(t *testing.T) {
	a, b := []byte(`{"size":1e400}`), []byte(`{"size":1.7976931348623157e308}`)
	la, errA := libraryCanonical(a)
	lb, errB := libraryCanonical(b)
	if errA != nil || errB != nil || !bytes.Equal(la, lb) {
		t.Logf("jsontext no longer maps 1e400 to the largest double (%s, %v; %s, %v): Canonical could use it again", la, errA, lb, errB)
	}
	if _, err := Canonical(a); err == nil {
		t.Errorf("Canonical(%s) succeeded, want an out-of-range error", a)
	}
	if got := mustCanonical(t, string(b)); got != `{"size":1.7976931348623157e+308}` {
		t.Errorf("Canonical(%s) = %s", b, got)
	}
}

// TestCanonicalMatchesLibrary compares Canonical with jsontext on real
// STIX data and on edge cases: both must accept and reject the same texts
// and agree on every canonical form (but for out-of-range numbers).
func TestCanonicalMatchesLibrary(t *testing.T) {
	var inputs [][]byte
	for _, s := range []string{
		`{"a":1e400}`, `{"a":[1,2,{"b":"\u00e9"}],"\u00e9":0}`, `[0.1,1e21,1e-7,-0,5e-324]`,
		`{"a":1,"a":2}`, "\"\xff\"", `"\ud800"`, `[1,]`,
	} {
		inputs = append(inputs, []byte(s))
	}
	inputs = append(inputs, sharedObjects(t)...)
	for _, in := range inputs {
		checkAgainstLibrary(t, in)
	}
}

// checkAgainstLibrary checks that Canonical and jsontext agree on in.
func checkAgainstLibrary(t *testing.T, in []byte) {
	t.Helper()
	s := getJCS(true)
	defer putJCS(s)
	jerr := s.run(in)
	lib, lerr := libraryCanonical(in)
	switch {
	case jerr != nil && jerr.rangeErr:
		if lerr == nil && !bytes.Contains(lib, []byte("1.7976931348623157e+308")) {
			t.Errorf("%q: out of range for Canonical, but jsontext wrote %s", in, lib)
		}
	case (jerr == nil) != (lerr == nil):
		t.Errorf("%q: Canonical error %v, jsontext error %v", in, jerr, lerr)
	case jerr == nil && !bytes.Equal(s.out, lib):
		t.Errorf("%q:\nCanonical %s\njsontext  %s", in, s.out, lib)
	}
}

// sharedObjects returns every JSON file of the shared test data (see
// package shared) and every object of its bundles and envelopes, each with
// its original bytes.
func sharedObjects(t testing.TB) [][]byte {
	t.Helper()
	var objs [][]byte
	for _, data := range shared.JSONFiles(t) {
		objs = append(append(objs, data), shared.ObjectsIn(data)...)
	}
	return objs
}

// TestCanonicalSharedData canonicalises every object of the shared test
// data: the form is stable (canonicalising it again changes nothing) and
// parses to the same value.
func TestCanonicalSharedData(t *testing.T) {
	objs := sharedObjects(t)
	if len(objs) == 0 {
		t.Fatal("the shared test data holds no objects")
	}
	for _, obj := range objs {
		c, err := Canonical(obj)
		if err != nil {
			t.Errorf("%.80s: %v", obj, err)
			continue
		}
		again, err := Canonical(c)
		if err != nil || !bytes.Equal(again, c) {
			t.Errorf("not idempotent: %.80s", c)
		}
	}
	t.Logf("%d objects and files canonicalised", len(objs))
}

func TestHash(t *testing.T) {
	a := `{"type":"indicator","name":"caf\u00e9","confidence":85.0}`
	same := []string{
		"{\n  \"confidence\": 85,\n  \"name\": \"café\",\n  \"type\": \"indicator\"\n}\n",
		`{"name":"caf\u00E9","type":"\u0069ndicator","confidence":8.5e1}`,
	}
	different := []string{
		`{"type":"indicator","name":"cafe\u0301","confidence":85}`, // not normalised: a different string
		`{"type":"indicator","name":"café","confidence":86}`,
		`{"type":"indicator","name":"café","confidence":"85"}`,
		`{"type":"indicator","name":"café","confidence":85,"x":null}`,
	}
	ha, err := Hash([]byte(a))
	if err != nil {
		t.Fatal(err)
	}
	if want := sha256.Sum256([]byte(mustCanonical(t, a))); ha != want {
		t.Fatalf("Hash = %x, want SHA-256 of the canonical form %x", ha, want)
	}
	for _, s := range same {
		if h, err := Hash([]byte(s)); err != nil || h != ha {
			t.Errorf("Hash(%s) = %x, %v; want %x", s, h, err, ha)
		}
	}
	for _, s := range different {
		if h, err := Hash([]byte(s)); err != nil || h == ha {
			t.Errorf("Hash(%s) = %x, %v; want a different hash", s, h, err)
		}
	}
}

func TestCanonicalDoesNotModifyInput(t *testing.T) {
	in := []byte(`{"b":"\u00e9","a":[1.50, {"d":1,"c":2}]}`)
	orig := bytes.Clone(in)
	out, err := Canonical(in)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(in, orig) {
		t.Fatalf("input modified: %s", in)
	}
	out[0] = 'X' // the result is the caller's own
	if again := mustCanonical(t, string(in)); again != `{"a":[1.5,{"c":2,"d":1}],"b":"é"}` {
		t.Fatalf("second call = %s", again)
	}
}

func FuzzCanonical(f *testing.F) {
	for _, s := range []string{
		``, `{}`, `[]`, `0`, `-0`, `1e400`, `"\ud800"`, `{"a":1,"a":2}`, `{"\u0061":1,"a":2}`,
		`{"\u20ac":1,"\r":2,"\ufb33":3,"1":4,"\ud83d\ude00":5,"\u0080":6,"\u00f6":7}`,
		`[333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001]`,
		`"\u001F\u007f\/"`, "\"\xed\xa0\x80\"", `{"a":{"b":[{"c":null,"b":true}]}}`,
	} {
		f.Add([]byte(s))
	}
	for _, in := range sharedSeeds(f) {
		f.Add(in)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		orig := bytes.Clone(in)
		out, err := Canonical(in)
		if !bytes.Equal(in, orig) {
			t.Fatal("Canonical modified its input")
		}
		h, herr := Hash(in)
		if (err == nil) != (herr == nil) {
			t.Fatalf("Canonical error %v, Hash error %v", err, herr)
		}
		checkAgainstLibrary(t, in)
		if err != nil {
			if ctigate.KindOf(err) != ctigate.Invalid || ctigate.MessageOf(err) == "" {
				t.Fatalf("error %#v is not Invalid with a message", err)
			}
			return
		}
		if !jsontext.Value(out).IsValid() {
			t.Fatalf("canonical form %q is not valid I-JSON", out)
		}
		again, err := Canonical(out)
		if err != nil || !bytes.Equal(again, out) {
			t.Fatalf("not idempotent: %q -> %q (%v)", out, again, err)
		}
		if h != sha256.Sum256(out) {
			t.Fatal("Hash is not the SHA-256 of the canonical form")
		}
		if h2, _ := Hash(out); h2 != h {
			t.Fatal("Hash of the canonical form differs")
		}
	})
}

// sharedSeeds returns a few small real objects as fuzz seeds.
func sharedSeeds(t testing.TB) [][]byte {
	var seeds [][]byte
	for _, obj := range sharedObjects(t) {
		if len(obj) < 4096 {
			seeds = append(seeds, obj)
		}
		if len(seeds) == 40 {
			break
		}
	}
	return seeds
}

// benchIndicator is a realistic indicator of about 500 bytes with one
// TLP marking, as producers send them.
var benchIndicator = []byte(`{"type":"indicator","spec_version":"2.1","id":"indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f",` +
	`"created_by_ref":"identity--f431f809-377b-45e0-aa1c-6a4751cae5ff","created":"2025-03-14T09:26:53.589Z",` +
	`"modified":"2025-03-14T09:26:53.589Z","name":"C2 server 198.51.100.23","description":"Command and control server of the campaign",` +
	`"indicator_types":["malicious-activity"],"pattern":"[ipv4-addr:value = '198.51.100.23']","pattern_type":"stix",` +
	`"valid_from":"2025-03-14T09:26:53Z","confidence":85,` +
	`"object_marking_refs":["marking-definition--f88d31f6-486f-44da-b317-01333bde0b82"]}`)

func BenchmarkHash(b *testing.B) {
	b.SetBytes(int64(len(benchIndicator)))
	b.ReportAllocs()
	cpu := startCPU(b)
	for b.Loop() {
		if _, err := Hash(benchIndicator); err != nil {
			b.Fatal(err)
		}
	}
	cpu.report(b, 1)
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "objects/s")
	b.ReportMetric(float64(len(benchIndicator)), "bytes/object")
}

// BenchmarkHashLibrary is Hash as jsontext would do it, for comparison.
func BenchmarkHashLibrary(b *testing.B) {
	buf := make([]byte, 0, 1024)
	b.SetBytes(int64(len(benchIndicator)))
	b.ReportAllocs()
	cpu := startCPU(b)
	for b.Loop() {
		v := jsontext.Value(append(buf[:0], benchIndicator...))
		if err := v.Canonicalize(); err != nil {
			b.Fatal(err)
		}
		sha256.Sum256(v)
	}
	cpu.report(b, 1)
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "objects/s")
}

// jcsReadFile returns the contents of the file at path.
func jcsReadFile(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
