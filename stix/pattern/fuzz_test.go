package pattern

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzParse checks that Parse never panics, that every error is an *Error
// with an offset inside the input and a UTF-8 message, and that whatever
// parses round-trips through String.
func FuzzParse(f *testing.F) {
	patterns, _ := corpus(f)
	for _, s := range patterns {
		f.Add(s)
	}
	for _, s := range []string{
		``,
		`[`,
		`[a`,
		`[aaa:`,
		`[aaa:b`,
		`[aaa:b =`,
		`[aaa:b = '`,
		`[aaa:b = 't'`,
		`[aaa:b = t'`,
		`[aaa:b = h'`,
		`[aaa:b = b'`,
		`[aaa:b = -`,
		`[aaa:b = .`,
		`[aaa:b[`,
		`[aaa:b[-0]`,
		`[aaa:b = 1] /`,
		`[aaa:b = 1] /*/`,
		`[aaa:b = 1] //`,
		`[aaa:b = -9223372036854775808 OR aaa:b = 9223372036854775807]`,
		`[aaa:b = 1] WITHIN 1 SECONDS REPEATS 1 TIMES START t'0000-01-01T00:00:00Z' STOP t'9999-12-31T23:59:60.999999999Z'`,
		`(([aaa:b = 1]) WITHIN 1 SECONDS) WITHIN 1 SECONDS`,
		`([aaa:b = 1]) WITHIN 1 SECONDS WITHIN 1.0 SECONDS`,
		`[aaa:'' = '' AND aaa:'\'\\'.'\\' = '\\\'']`,
		"[aaa:b\u2028=\u00851]\u3000",
		strings.Repeat("(", 64) + `[aaa:b = 1]` + strings.Repeat(")", 64),
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := Parse(s)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("Parse(%q) error %T is not *Error", s, err)
			}
			if p != nil {
				t.Fatalf("Parse(%q) returned a pattern and an error", s)
			}
			if e.Offset < 0 || e.Offset > len(s) {
				t.Fatalf("Parse(%q) error offset %d outside [0, %d]", s, e.Offset, len(s))
			}
			if msg := err.Error(); !utf8.ValidString(msg) {
				t.Fatalf("Parse(%q) error message is not UTF-8: %q", s, msg)
			}
			return
		}
		checkRoundTrip(t, s, p)
		n := 0
		for range p.Comparisons() {
			n++
		}
		if obs := p.Observables(); len(obs) != n || n == 0 {
			t.Fatalf("Parse(%q): %d observables for %d comparisons", s, len(obs), n)
		}
	})
}
