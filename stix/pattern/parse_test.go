package pattern

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

// mustParse parses s or fails the test.
func mustParse(t testing.TB, s string) *Pattern {
	t.Helper()
	p, err := Parse(s)
	if err != nil {
		t.Fatalf("Parse(%q): %v", s, err)
	}
	return p
}

// checkRoundTrip checks that p's canonical form parses back to p and is a
// fixed point.
func checkRoundTrip(t testing.TB, input string, p *Pattern) {
	t.Helper()
	canon := p.String()
	q, err := Parse(canon)
	if err != nil {
		t.Fatalf("Parse(%q).String() = %q, which does not parse: %v", input, canon, err)
	}
	if !reflect.DeepEqual(p, q) {
		t.Fatalf("Parse(%q) and Parse(its String() %q) differ:\n got %#v\nwant %#v", input, canon, q, p)
	}
	if again := q.String(); again != canon {
		t.Fatalf("String() is not stable for %q: %q, then %q", input, canon, again)
	}
}

func TestParseCanonical(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{`[ipv4-addr:value = '198.51.100.7']`, `[ipv4-addr:value = '198.51.100.7']`},
		{`[ ipv4-addr:value='10.0.0.0' ]`, `[ipv4-addr:value = '10.0.0.0']`},
		{"\t[ipv4-addr : value\n==\u00a0'10.0.0.0']\u3000", `[ipv4-addr:value = '10.0.0.0']`},
		{`/* a */ [file:name = 'x'] // b`, `[file:name = 'x']`},
		{`[file:name <> 'x']`, `[file:name != 'x']`},
		// Path keys: quotes only where needed, escapes kept.
		{`[file:hashes.'SHA-256' = 'e3b0']`, `[file:hashes.'SHA-256' = 'e3b0']`},
		{`[file:hashes.'MD5' = 'a']`, `[file:hashes.MD5 = 'a']`},
		{`[file:'name' = 'a']`, `[file:name = 'a']`},
		{`[x-acme:'AND'.'true'.'a b'.'it\'s'[ -3 ][*] = 1]`, `[x-acme:'AND'.'true'.'a b'.'it\'s'[-3][*] = 1]`},
		{`[file:extensions.'windows-pebinary-ext'.sections[*].entropy > 7.0]`, `[file:extensions.'windows-pebinary-ext'.sections[*].entropy > 7.0]`},
		// Literals in canonical spelling.
		{`[aaa:b = +5 OR aaa:b = -0 OR aaa:b = 0]`, `[aaa:b = 5 OR aaa:b = 0 OR aaa:b = 0]`},
		{`[aaa:b = .5 OR aaa:b = -00.50 OR aaa:b = +7.0 OR aaa:b = -0.000]`, `[aaa:b = 0.5 OR aaa:b = -0.5 OR aaa:b = 7.0 OR aaa:b = 0.0]`},
		{`[aaa:b = h'CAFEbabe' AND aaa:c = h'']`, `[aaa:b = h'cafebabe' AND aaa:c = h'']`},
		{`[aaa:b = 'O\'Brien \\ co' AND aaa:c = true AND aaa:d != false]`, `[aaa:b = 'O\'Brien \\ co' AND aaa:c = true AND aaa:d != false]`},
		{`[aaa:b = t'2016-02-29T23:59:60.50Z']`, `[aaa:b = t'2016-02-29T23:59:60.50Z']`},
		// NOT and the operators.
		{`[aaa:b NOT= 1 AND aaa:b NOT != 1 AND aaa:b NOT<1 AND aaa:b NOT <= 1 AND aaa:b NOT > 1 AND aaa:b NOT >= 1]`,
			`[aaa:b NOT = 1 AND aaa:b NOT != 1 AND aaa:b NOT < 1 AND aaa:b NOT <= 1 AND aaa:b NOT > 1 AND aaa:b NOT >= 1]`},
		{`[aaa:b NOT IN('a','b') AND aaa:c IN (1) AND aaa:d NOT LIKE 'x%' AND aaa:e NOT MATCHES '^x' AND aaa:f NOT ISSUBSET '10.0.0.0/8' AND aaa:g NOT ISSUPERSET '10.0.0.1']`,
			`[aaa:b NOT IN ('a', 'b') AND aaa:c IN (1) AND aaa:d NOT LIKE 'x%' AND aaa:e NOT MATCHES '^x' AND aaa:f NOT ISSUBSET '10.0.0.0/8' AND aaa:g NOT ISSUPERSET '10.0.0.1']`},
		{`[EXISTS aaa:b.c[*] OR EXISTS aaa:d]`, `[EXISTS aaa:b.c[*] OR EXISTS aaa:d]`},
		// Comparison precedence: AND over OR; only needed parentheses kept.
		{`[(aaa:a = 1 AND aaa:b = 2) OR aaa:c = 3]`, `[aaa:a = 1 AND aaa:b = 2 OR aaa:c = 3]`},
		{`[aaa:a = 1 AND (aaa:b = 2 OR aaa:c = 3)]`, `[aaa:a = 1 AND (aaa:b = 2 OR aaa:c = 3)]`},
		{`[((aaa:a = 1))]`, `[aaa:a = 1]`},
		{`[(aaa:a = 1 OR aaa:b = 2) OR aaa:c = 3]`, `[(aaa:a = 1 OR aaa:b = 2) OR aaa:c = 3]`},
		// Observation precedence: AND over OR over FOLLOWEDBY.
		{`([aaa:a = 1] AND [aaa:b = 2]) OR [aaa:c = 3]`, `[aaa:a = 1] AND [aaa:b = 2] OR [aaa:c = 3]`},
		{`[aaa:a = 1] AND ([aaa:b = 2] OR [aaa:c = 3])`, `[aaa:a = 1] AND ([aaa:b = 2] OR [aaa:c = 3])`},
		{`([aaa:a = 1] OR [aaa:b = 2]) FOLLOWEDBY [aaa:c = 3]`, `[aaa:a = 1] OR [aaa:b = 2] FOLLOWEDBY [aaa:c = 3]`},
		{`[aaa:a = 1] FOLLOWEDBY ([aaa:b = 2] FOLLOWEDBY [aaa:c = 3])`, `[aaa:a = 1] FOLLOWEDBY ([aaa:b = 2] FOLLOWEDBY [aaa:c = 3])`},
		{`(([aaa:a = 1]))`, `[aaa:a = 1]`},
		// Qualifiers bind tighter than any operator.
		{`[aaa:a = 1] AND [aaa:b = 2] WITHIN 5 SECONDS`, `[aaa:a = 1] AND [aaa:b = 2] WITHIN 5 SECONDS`},
		{`([aaa:a = 1] AND [aaa:b = 2]) WITHIN 5 SECONDS`, `([aaa:a = 1] AND [aaa:b = 2]) WITHIN 5 SECONDS`},
		{`([aaa:a = 1]) WITHIN +5 SECONDS REPEATS 2 TIMES`, `[aaa:a = 1] WITHIN 5 SECONDS REPEATS 2 TIMES`},
		{`[aaa:a = 1] WITHIN .50 SECONDS`, `[aaa:a = 1] WITHIN 0.5 SECONDS`},
		{`([aaa:a = 1]) REPEATS 2 TIMES REPEATS 3 TIMES`, `([aaa:a = 1]) REPEATS 2 TIMES REPEATS 3 TIMES`},
		{`([aaa:a = 1] REPEATS 2 TIMES) REPEATS 3 TIMES`, `([aaa:a = 1] REPEATS 2 TIMES) REPEATS 3 TIMES`},
		{`[aaa:a = 1] START t'2016-01-01T00:00:00Z' STOP t'2016-01-01T00:00:00.000001Z'`,
			`[aaa:a = 1] START t'2016-01-01T00:00:00Z' STOP t'2016-01-01T00:00:00.000001Z'`},
	}
	for _, tt := range tests {
		p := mustParse(t, tt.in)
		if got := p.String(); got != tt.want {
			t.Errorf("Parse(%q).String()\n got %s\nwant %s", tt.in, got, tt.want)
			continue
		}
		checkRoundTrip(t, tt.in, p)
	}
}

func TestParseTree(t *testing.T) {
	str := func(s string) Value { return Value{Kind: KindString, Text: s} }
	cmp := func(typ, key string, op Operator, v ...Value) *Comparison {
		return &Comparison{Path: ObjectPath{Type: typ, Steps: []PathStep{{Kind: KeyStep, Key: key}}}, Op: op, Values: v}
	}
	got := mustParse(t, `([url:value = 'http://x.example/a'] OR [domain-name:value = 'x.example' AND domain-name:x != 'y']) `+
		`FOLLOWEDBY [file:hashes.'SHA-256' NOT IN ('a', 'b')] REPEATS 2 TIMES WITHIN 9.5 SECONDS`)
	sha := &Comparison{
		Path:    ObjectPath{Type: "file", Steps: []PathStep{{Kind: KeyStep, Key: "hashes"}, {Kind: KeyStep, Key: "SHA-256"}}},
		Negated: true,
		Op:      In,
		Values:  []Value{str("a"), str("b")},
	}
	want := &Pattern{Expr: &ObservationOp{Op: FollowedBy, Operands: []ObservationExpr{
		&ObservationOp{Op: Or, Operands: []ObservationExpr{
			&Observation{Expr: cmp("url", "value", Eq, str("http://x.example/a"))},
			&Observation{Expr: &ComparisonOp{Op: And, Operands: []ComparisonExpr{
				cmp("domain-name", "value", Eq, str("x.example")),
				cmp("domain-name", "x", Ne, str("y")),
			}}},
		}},
		&Qualified{
			Expr: &Observation{Expr: sha},
			Qualifiers: []Qualifier{
				{Kind: Repeats, Times: 2},
				{Kind: Within, Seconds: Value{Kind: KindFloat, Text: "9.5"}},
			},
		},
	}}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("tree:\n got %s\nwant %s", got, want)
	}

	q := mustParse(t, `[x509-certificate:x[0].y[*] = 1] START t'2016-01-01T00:00:00Z' STOP t'2017-01-01T00:00:00Z'`)
	qual := q.Expr.(*Qualified)
	if wantQ := (Qualifier{Kind: StartStop, Start: "2016-01-01T00:00:00Z", Stop: "2017-01-01T00:00:00Z"}); !reflect.DeepEqual(qual.Qualifiers[0], wantQ) {
		t.Errorf("qualifier = %#v, want %#v", qual.Qualifiers[0], wantQ)
	}
	path := qual.Expr.(*Observation).Expr.(*Comparison).Path
	wantPath := ObjectPath{Type: "x509-certificate", Steps: []PathStep{
		{Kind: KeyStep, Key: "x"}, {Kind: IndexStep, Index: 0}, {Kind: KeyStep, Key: "y"}, {Kind: AnyIndexStep},
	}}
	if !reflect.DeepEqual(path, wantPath) {
		t.Errorf("path = %#v, want %#v", path, wantPath)
	}
	if got, want := path.String(), "x509-certificate:x[0].y[*]"; got != want {
		t.Errorf("path.String() = %q, want %q", got, want)
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		// Structure.
		{``, `pattern: offset 0: expected '[' or '(' to start an observation expression, found end of pattern`},
		{`   `, `pattern: offset 3: expected '[' or '(' to start an observation expression, found end of pattern`},
		{`file:size = 1280`, `pattern: offset 0: expected '[' or '(' to start an observation expression, found 'file'`},
		{`[file:size = ]`, `pattern: offset 13: expected a literal after =, found ']'`},
		{`[file:hashes.MD5 = cead3f77f6cda6ec00f57d76c9a6879f]`, `pattern: offset 19: expected a literal after =, found 'cead3f77f6cda6ec00f57d76c9a6879f'`},
		{`[file.size = 1280]`, `pattern: offset 5: expected ':' after the object type file, found '.'`},
		{`[file:name MATCHES /.*\.dll/]`, `pattern: offset 19: unexpected character '/'`},
		{`[ipv4-addr:value = '1.2.3.4'`, `pattern: offset 28: expected ']' to close '[' at offset 0, found end of pattern`},
		{`([ipv4-addr:value = '1.2.3.4']`, `pattern: offset 30: expected ')' to close '(' at offset 0, found end of pattern`},
		{`[ipv4-addr:value = '1.2.3.4'] ]`, `pattern: offset 30: expected AND, OR, FOLLOWEDBY, a qualifier or the end of the pattern, found ']'`},
		{`[ipv4-addr:value = '1.2.3.4'] [ipv4-addr:value = '1.2.3.5']`, `pattern: offset 30: expected AND, OR, FOLLOWEDBY, a qualifier or the end of the pattern, found '['`},
		{`[ipv4-addr:value = '1.2.3.4'] AND`, `pattern: offset 33: expected '[' or '(' to start an observation expression, found end of pattern`},
		{`[ipv4-addr:value = '1.2.3.4' AND]`, `pattern: offset 32: expected an object path (type:property), found ']'`},
		{`[]`, `pattern: offset 1: expected an object path (type:property), found ']'`},
		{`()`, `pattern: offset 1: expected '[' or '(' to start an observation expression, found ')'`},
		{`[foo:bar=1] within 2 seconds`, `pattern: offset 12: expected AND, OR, FOLLOWEDBY, a qualifier or the end of the pattern, found 'within' (keywords are written in upper case)`},
		{`[foo:bar=1 and foo:baz=2]`, `pattern: offset 11: expected ']' to close '[' at offset 0, found 'and' (keywords are written in upper case)`},
		{`[foo:bar = True]`, `pattern: offset 11: expected a literal after =, found 'True'`},
		{`[foo:bar NOT EXISTS]`, `pattern: offset 13: expected a comparison operator after NOT, found 'EXISTS'`},
		{`[NOT foo:bar = 1]`, `pattern: offset 1: expected an object path (type:property), found 'NOT'`},
		{`[foo:bar LAST 1]`, `pattern: offset 9: expected a comparison operator after the object path, found 'LAST'`},
		{`[foo:bar]`, `pattern: offset 8: expected a comparison operator after the object path, found ']'`},
		{`[foo:bar =? 'x']`, `pattern: offset 10: unexpected character '?'`},
		{`[foo:bar ! 'x']`, `pattern: offset 9: unexpected character '!' (did you mean '!='?)`},
		{`[foo:bar = 'x'] # 1`, `pattern: offset 16: unexpected character '#'`},
		{"[foo:bar = 'x'] \u00e9", `pattern: offset 16: unexpected character U+00E9`},
		{"[foo:bar = 'x'] \xff", `pattern: offset 16: invalid UTF-8`},
		{`[foo:bar = 'x'] /* never closed`, `pattern: offset 16: unterminated comment`},
		{strings.Repeat("(", 65) + `[foo:bar = 1]` + strings.Repeat(")", 65), `pattern: offset 64: brackets and parentheses nested more than 64 deep`},
		{`[` + strings.Repeat("(", 64) + `foo:bar = 1` + strings.Repeat(")", 64) + `]`, `pattern: offset 64: brackets and parentheses nested more than 64 deep`},
		// Object paths.
		{`[File:name = 'x']`, `pattern: offset 1: object type "File" must begin with a lowercase ASCII letter`},
		{`[fiLe:name = 'x']`, `pattern: offset 1: object type "fiLe" must contain only lowercase ASCII letters, digits and hyphens`},
		{`[x_whatever:detected = 1]`, `pattern: offset 1: object type "x_whatever" must contain only lowercase ASCII letters, digits and hyphens`},
		{`[ab:name = 'x']`, `pattern: offset 1: object type "ab" must be 3 to 250 characters long`},
		{`[x--acme:name = 'x']`, `pattern: offset 1: object type "x--acme" must not contain "--"`},
		{`[x-acme-:name = 'x']`, `pattern: offset 1: object type "x-acme-" must not end with a hyphen`},
		{`[_xacme:name = 'x']`, `pattern: offset 1: object type "_xacme" must begin with a lowercase ASCII letter`},
		{`['file':name = 'x']`, `pattern: offset 1: expected an object path (type:property), found string 'file'`},
		{`[file:extensions.windows-pebinary-ext.sections[*].entropy > 7.0]`, `pattern: offset 17: property name windows-pebinary-ext contains '-' and must be quoted: 'windows-pebinary-ext'`},
		{`[file:hashes.SHA-256 = 'x']`, `pattern: offset 13: property name SHA-256 contains '-' and must be quoted: 'SHA-256'`},
		{`[file:IN = 'x']`, `pattern: offset 6: property name IN is a reserved word and must be quoted: 'IN'`},
		{`[file:x.true = 'x']`, `pattern: offset 8: property name true is a reserved word and must be quoted: 'true'`},
		{`[file:x. = 'x']`, `pattern: offset 9: expected a property name, found '='`},
		{`[file:x.5 = 'x']`, `pattern: offset 7: expected a comparison operator after the object path, found number .5`},
		{`[file:x[] = 'x']`, `pattern: offset 8: expected a list index (an integer or '*'), found ']'`},
		{`[file:x[1.5] = 'x']`, `pattern: offset 8: expected a list index (an integer or '*'), found number 1.5`},
		{`[file:x[1 = 'x']`, `pattern: offset 10: expected ']' to close the list index opened at offset 7, found '='`},
		// Literals.
		{`[file:name = 'x]`, `pattern: offset 13: unterminated string literal`},
		{`[file:name = 'x\`, `pattern: offset 13: unterminated string literal`},
		{`[file:name = 'C:\Windows']`, `pattern: offset 16: invalid escape sequence \W in string literal: only \' and \\ are allowed`},
		{`[file:name = 'a\nb']`, `pattern: offset 15: invalid escape sequence \n in string literal: only \' and \\ are allowed`},
		{"[file:name = 'a\xffb']", `pattern: offset 13: invalid UTF-8 in string literal`},
		{"[aaa:b = 'a\\\x82']", `pattern: offset 11: invalid escape sequence \ followed by byte 0x82 in string literal: only \' and \\ are allowed`},
		{"[aaa:b = '\\\u00e9']", `pattern: offset 10: invalid escape sequence \ followed by U+00E9 in string literal: only \' and \\ are allowed`},
		{"[aaa:b = '\\\t']", `pattern: offset 10: invalid escape sequence \ followed by byte 0x09 in string literal: only \' and \\ are allowed`},
		{`[aaa:b = 'it\'s]`, `pattern: offset 9: unterminated string literal`},
		{"[aaa:b = " + strings.Repeat("0", 100) + "]", `pattern: offset 9: integer 000000000000000000000000000000000000000000000000… has a leading zero`},
		{`[file:size = 0123]`, `pattern: offset 13: integer 0123 has a leading zero`},
		{`[file:size = -00]`, `pattern: offset 13: integer -00 has a leading zero`},
		{`[file:size = 9223372036854775808]`, `pattern: offset 13: integer 9223372036854775808 is out of range`},
		{`[file:size = -9223372036854775809]`, `pattern: offset 13: integer -9223372036854775809 is out of range`},
		{`[file:size = 1.]`, `pattern: offset 14: expected ']' to close '[' at offset 0, found '.'`},
		{`[file:size = 1e5]`, `pattern: offset 14: expected ']' to close '[' at offset 0, found 'e5'`},
		{`[file:size = +]`, `pattern: offset 13: unexpected character '+'`},
		{`[file:size = -.x]`, `pattern: offset 13: malformed number`},
		{`[x_whatever:detected == t'2457-73-22T32:81:84.1Z']`, `pattern: offset 1: object type "x_whatever" must contain only lowercase ASCII letters, digits and hyphens`},
		{`[foo:detected = t'2457-73-22T32:81:84.1Z']`, `pattern: offset 16: invalid timestamp t'2457-73-22T32:81:84.1Z': month out of range`},
		{`[foo:t = t'2016-02-30T00:00:00Z']`, `pattern: offset 9: invalid timestamp t'2016-02-30T00:00:00Z': day out of range`},
		{`[foo:t = t'2015-02-29T00:00:00Z']`, `pattern: offset 9: invalid timestamp t'2015-02-29T00:00:00Z': day out of range`},
		{`[foo:t = t'2100-02-29T00:00:00Z']`, `pattern: offset 9: invalid timestamp t'2100-02-29T00:00:00Z': day out of range`},
		{`[foo:t = t'2016-04-31T00:00:00Z']`, `pattern: offset 9: invalid timestamp t'2016-04-31T00:00:00Z': day out of range`},
		{`[foo:t = t'2016-01-01T24:00:00Z']`, `pattern: offset 9: invalid timestamp t'2016-01-01T24:00:00Z': hour out of range`},
		{`[foo:t = t'2016-01-01T00:60:00Z']`, `pattern: offset 9: invalid timestamp t'2016-01-01T00:60:00Z': minute out of range`},
		{`[foo:t = t'2016-01-01T12:00:60Z']`, `pattern: offset 9: invalid timestamp t'2016-01-01T12:00:60Z': second out of range`},
		{`[foo:t = t'2016-01-01T00:00:00+00:00']`, `pattern: offset 9: invalid timestamp t'2016-01-01T00:00:00+00:00': must be YYYY-MM-DDTHH:MM:SS[.s+]Z (RFC 3339, UTC)`},
		{`[foo:t = t'2016-01-01 00:00:00Z']`, `pattern: offset 9: invalid timestamp t'2016-01-01 00:00:00Z': must be YYYY-MM-DDTHH:MM:SS[.s+]Z (RFC 3339, UTC)`},
		{`[foo:t = t'2016-01-01T00:00:00.Z']`, `pattern: offset 9: invalid timestamp t'2016-01-01T00:00:00.Z': must be YYYY-MM-DDTHH:MM:SS[.s+]Z (RFC 3339, UTC)`},
		{`[foo:t = t'2016-01-01t00:00:00z']`, `pattern: offset 9: invalid timestamp t'2016-01-01t00:00:00z': must be YYYY-MM-DDTHH:MM:SS[.s+]Z (RFC 3339, UTC)`},
		{`[foo:t = t'2016-01-01T00:00:00Z]`, `pattern: offset 9: unterminated timestamp literal`},
		{`[foo:h = h'abc']`, `pattern: offset 9: invalid hex literal: odd number of hexadecimal digits`},
		{`[foo:h = h'abcg']`, `pattern: offset 14: invalid hex literal: 'g' is not a hexadecimal digit`},
		{`[artifact:payload_bin = b'====']`, `pattern: offset 24: invalid binary literal: '=' is not a base64 character`},
		{`[artifact:payload_bin = b'']`, `pattern: offset 24: invalid binary literal: empty (a binary literal holds at least one byte)`},
		{`[artifact:payload_bin = b'QQ=']`, `pattern: offset 24: invalid binary literal: base64 length must be a multiple of 4`},
		{`[artifact:payload_bin = b'Q=Q=']`, `pattern: offset 24: invalid binary literal: '=' is not a base64 character`},
		{`[artifact:payload_bin = b'QQ-_']`, `pattern: offset 24: invalid binary literal: '-' is not a base64 character`},
		// Operators and operands.
		{`[foo:bar < true]`, `pattern: offset 11: expected an orderable literal (not a boolean) after <, found 'true'`},
		{`[foo:bar LIKE 5]`, `pattern: offset 14: expected a string literal after LIKE, found integer 5`},
		{`[foo:bar MATCHES h'00']`, `pattern: offset 17: expected a string literal after MATCHES, found hex literal h'00'`},
		{`[network-traffic:dst_ref.value ISSUBSET ]`, `pattern: offset 40: expected a literal after ISSUBSET, found ']'`},
		{`[foo:bar ISSUPERSET t'2016-01-01T00:00:00Z']`, `pattern: offset 20: expected a string literal after ISSUPERSET, found timestamp t'2016-01-01T00:00:00Z'`},
		{`[foo:bar IN 'a']`, `pattern: offset 12: expected '(' to open the set after IN, found string 'a'`},
		{`[foo:bar IN ()]`, `pattern: offset 12: IN needs a set of at least one value, found ()`},
		{`[foo:bar IN ('a', 1)]`, `pattern: offset 18: IN set mixes string and int values: all must be of one kind`},
		{`[foo:bar IN (1, 2.5)]`, `pattern: offset 16: IN set mixes int and float values: all must be of one kind`},
		{`[foo:bar IN ('a' 'b')]`, `pattern: offset 17: expected ',' or ')' in the IN set opened at offset 12, found string 'b'`},
		{`[foo:bar IN ('a',)]`, `pattern: offset 17: expected a literal in the IN set, found ')'`},
		{`[foo:bar IN ('a'`, `pattern: offset 16: expected ',' or ')' in the IN set opened at offset 12, found end of pattern`},
		// Qualifiers.
		{`[win-registry-key:key = 'x'] WITHIN ]`, `pattern: offset 36: expected a positive number of seconds after WITHIN, found ']'`},
		{`[win-registry-key:key = 'x'] WITHIN 5 HOURS`, `pattern: offset 38: expected SECONDS after the WITHIN duration, found 'HOURS'`},
		{`[win-registry-key:key = 'x'] WITHIN -5 SECONDS`, `pattern: offset 36: expected a positive number of seconds after WITHIN, found integer -5`},
		{`[win-registry-key:key = 'x'] WITHIN 0 SECONDS`, `pattern: offset 36: expected a positive number of seconds after WITHIN, found integer 0`},
		{`[win-registry-key:key = 'x'] WITHIN 0.00 SECONDS`, `pattern: offset 36: expected a positive number of seconds after WITHIN, found number 0.00`},
		{`[win-registry-key:key = 'x'] WITHIN -0.5 SECONDS`, `pattern: offset 36: expected a positive number of seconds after WITHIN, found number -0.5`},
		{`[win-registry-key:key = 'x'] WITHIN '5' SECONDS`, `pattern: offset 36: expected a positive number of seconds after WITHIN, found string '5'`},
		{`[win-registry-key:key = 'x'] REPEATS 0 TIMES`, `pattern: offset 37: expected a positive integer after REPEATS, found integer 0`},
		{`[win-registry-key:key = 'x'] REPEATS 2.0 TIMES`, `pattern: offset 37: expected a positive integer after REPEATS, found number 2.0`},
		{`[win-registry-key:key = 'x'] REPEATS 2`, `pattern: offset 38: expected TIMES after the REPEATS count, found end of pattern`},
		{`[win-registry-key:key = 'x'] WITHIN 5 SECONDS WITHIN 6 SECONDS`, `pattern: offset 46: second WITHIN qualifier on one observation expression (parenthesise to qualify it again)`},
		{`[win-registry-key:key = 'x'] REPEATS 2 TIMES WITHIN 5 SECONDS REPEATS 3 TIMES`, `pattern: offset 62: second REPEATS qualifier on one observation expression (parenthesise to qualify it again)`},
		{`[win-registry-key:key = 'x'] START t'2016-06-01T01:30:00.123Z' STOP t'2016-06-01T02:20:00.123Z' START t'2016-06-01T01:30:00.123Z' STOP t'2016-06-01T02:20:00.123Z'`,
			`pattern: offset 96: second START qualifier on one observation expression (parenthesise to qualify it again)`},
		{`[foo:bar = 1] START t'2016-01-01T00:00:00Z' STOP t'2016-01-01T00:00:00Z'`, `pattern: offset 20: START t'2016-01-01T00:00:00Z' is not before STOP t'2016-01-01T00:00:00Z'`},
		{`[foo:bar = 1] START t'2016-01-01T00:00:00.10Z' STOP t'2016-01-01T00:00:00.1Z'`, `pattern: offset 20: START t'2016-01-01T00:00:00.10Z' is not before STOP t'2016-01-01T00:00:00.1Z'`},
		{`[foo:bar = 1] START t'2017-01-01T00:00:00Z' STOP t'2016-12-31T23:59:59.999Z'`, `pattern: offset 20: START t'2017-01-01T00:00:00Z' is not before STOP t'2016-12-31T23:59:59.999Z'`},
		{`[foo:bar = 1] START '2016-01-01T00:00:00Z' STOP '2017-01-01T00:00:00Z'`, `pattern: offset 20: expected a timestamp t'…' after START, found string '2016-01-01T00:00:00Z'`},
		{`[foo:bar = 1] START t'2016-01-01T00:00:00Z'`, `pattern: offset 43: expected STOP after the START timestamp, found end of pattern`},
		{`[foo:bar = 1] START t'2016-01-01T00:00:00Z' STOP 5`, `pattern: offset 49: expected a timestamp t'…' after STOP, found integer 5`},
		{`WITHIN 5 SECONDS [foo:bar = 1]`, `pattern: offset 0: expected '[' or '(' to start an observation expression, found 'WITHIN'`},
		{`[foo:bar = 1 WITHIN 5 SECONDS]`, `pattern: offset 13: expected ']' to close '[' at offset 0, found 'WITHIN'`},
		{`[foo:bar = 1] FOLLOWEDBY`, `pattern: offset 24: expected '[' or '(' to start an observation expression, found end of pattern`},
		{`[foo:bar = 1 FOLLOWEDBY foo:bar = 2]`, `pattern: offset 13: expected ']' to close '[' at offset 0, found 'FOLLOWEDBY'`},
	}
	for _, tt := range tests {
		p, err := Parse(tt.in)
		if err == nil {
			t.Errorf("Parse(%q) = %s, want error %q", tt.in, p, tt.want)
			continue
		}
		var e *Error
		if !errors.As(err, &e) {
			t.Errorf("Parse(%q) error %T is not *Error", tt.in, err)
			continue
		}
		if p != nil {
			t.Errorf("Parse(%q) returned a pattern with its error", tt.in)
		}
		if got := err.Error(); got != tt.want {
			t.Errorf("Parse(%q) error\n got %s\nwant %s", tt.in, got, tt.want)
		}
		if e.Offset < 0 || e.Offset > len(tt.in) {
			t.Errorf("Parse(%q) error offset %d outside the input", tt.in, e.Offset)
		}
	}
}

func TestValueString(t *testing.T) {
	tests := []struct {
		v    Value
		want string
	}{
		{Value{KindString, `it's a \ test`}, `'it\'s a \\ test'`},
		{Value{KindInt, "-3"}, `-3`},
		{Value{KindFloat, "0.5"}, `0.5`},
		{Value{KindBool, "true"}, `true`},
		{Value{KindTimestamp, "2016-01-01T00:00:00Z"}, `t'2016-01-01T00:00:00Z'`},
		{Value{KindHex, "ffd8"}, `h'ffd8'`},
		{Value{KindBinary, "AAEC"}, `b'AAEC'`},
	}
	for _, tt := range tests {
		if got := tt.v.String(); got != tt.want {
			t.Errorf("%#v.String() = %s, want %s", tt.v, got, tt.want)
		}
	}
}
