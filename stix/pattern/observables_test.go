package pattern

import (
	"reflect"
	"testing"
)

func TestObservables(t *testing.T) {
	str := func(s string) Value { return Value{Kind: KindString, Text: s} }
	tests := []struct {
		in   string
		want []Observable
	}{
		{`[ipv4-addr:value = '198.51.100.0/24']`, []Observable{
			{Type: "ipv4-addr", Path: "value", Op: "=", Values: []Value{str("198.51.100.0/24")}},
		}},
		{`[url:value = 'http://x.example/a'] AND [domain-name:value = 'x.example'] WITHIN 60 SECONDS`, []Observable{
			{Type: "url", Path: "value", Op: "=", Values: []Value{str("http://x.example/a")}},
			{Type: "domain-name", Path: "value", Op: "=", Values: []Value{str("x.example")}},
		}},
		// Path keys are quoted exactly when the grammar needs it, whatever was written.
		{`[file:hashes.MD5 = 'a' OR file:hashes.'MD5' = 'b' OR file:hashes.'SHA-256' = 'c' OR file:'hashes'.md5 = 'd']`, []Observable{
			{Type: "file", Path: "hashes.MD5", Op: "=", Values: []Value{str("a")}},
			{Type: "file", Path: "hashes.MD5", Op: "=", Values: []Value{str("b")}},
			{Type: "file", Path: "hashes.'SHA-256'", Op: "=", Values: []Value{str("c")}},
			{Type: "file", Path: "hashes.md5", Op: "=", Values: []Value{str("d")}},
		}},
		{`[file:extensions.'windows-pebinary-ext'.sections[*].entropy > 7.50 AND file:x[ +0 ].'it\'s' NOT IN (h'AB', h'cd')]`, []Observable{
			{Type: "file", Path: "extensions.'windows-pebinary-ext'.sections[*].entropy", Op: ">", Values: []Value{{KindFloat, "7.5"}}},
			{Type: "file", Path: `x[0].'it\'s'`, Op: "IN", Negated: true, Values: []Value{{KindHex, "ab"}, {KindHex, "cd"}}},
		}},
		{`([EXISTS process:pid] FOLLOWEDBY [process:name MATCHES '^cmd\\.exe$' AND process:created >= t'2016-01-01T00:00:00Z']) REPEATS 3 TIMES`, []Observable{
			{Type: "process", Path: "pid", Op: "EXISTS"},
			{Type: "process", Path: "name", Op: "MATCHES", Values: []Value{str(`^cmd\.exe$`)}},
			{Type: "process", Path: "created", Op: ">=", Values: []Value{{KindTimestamp, "2016-01-01T00:00:00Z"}}},
		}},
		{`[artifact:payload_bin = b'AAEC' OR artifact:x_flag != true OR artifact:size = -0]`, []Observable{
			{Type: "artifact", Path: "payload_bin", Op: "=", Values: []Value{{KindBinary, "AAEC"}}},
			{Type: "artifact", Path: "x_flag", Op: "!=", Values: []Value{{KindBool, "true"}}},
			{Type: "artifact", Path: "size", Op: "=", Values: []Value{{KindInt, "0"}}},
		}},
	}
	for _, tt := range tests {
		p := mustParse(t, tt.in)
		got := p.Observables()
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("Parse(%q).Observables()\n got %+v\nwant %+v", tt.in, got, tt.want)
		}
		// The observables are copies: changing them leaves the pattern alone.
		before := p.String()
		for i := range got {
			for j := range got[i].Values {
				got[i].Values[j].Text = "changed"
			}
		}
		if after := p.String(); after != before {
			t.Errorf("changing Observables() changed the pattern: %s, then %s", before, after)
		}
	}
}

func TestObservablesNil(t *testing.T) {
	var p *Pattern
	if got := p.Observables(); got != nil {
		t.Errorf("nil Pattern: Observables() = %v, want nil", got)
	}
	if got := p.String(); got != "" {
		t.Errorf("nil Pattern: String() = %q, want empty", got)
	}
}

func TestComparisonsBreak(t *testing.T) {
	p := mustParse(t, `[aaa:a = 1 OR aaa:b = 2] AND ([aaa:c = 3] FOLLOWEDBY [aaa:d = 4]) WITHIN 5 SECONDS`)
	var all, two []string
	for c := range p.Comparisons() {
		all = append(all, c.Path.PropertyPath())
	}
	for c := range p.Comparisons() {
		two = append(two, c.Path.String())
		if len(two) == 2 {
			break
		}
	}
	if want := []string{"a", "b", "c", "d"}; !reflect.DeepEqual(all, want) {
		t.Errorf("Comparisons() = %q, want %q", all, want)
	}
	if want := []string{"aaa:a", "aaa:b"}; !reflect.DeepEqual(two, want) {
		t.Errorf("Comparisons() with break = %q, want %q", two, want)
	}
}
