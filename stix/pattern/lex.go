package pattern

import (
	"strings"
	"unicode/utf8"
)

// tokKind is the kind of a lexical token.
type tokKind uint8

const (
	tEOF tokKind = iota
	tLBrack
	tRBrack
	tLParen
	tRParen
	tColon
	tDot
	tComma
	tStar
	tEq // = or ==
	tNe // != or <>
	tLt
	tLe
	tGt
	tGe
	tIdent     // [A-Za-z_][A-Za-z0-9_-]*, not a keyword
	tString    // '...'
	tInt       // [+-]?(0|[1-9][0-9]*)
	tFloat     // [+-]?[0-9]*\.[0-9]+
	tBool      // true, false
	tTimestamp // t'...'
	tHex       // h'...'
	tBinary    // b'...'

	// Keywords, which the grammar spells in upper case only.
	tAnd
	tOr
	tNot
	tFollowedBy
	tLike
	tMatches
	tIsSubset
	tIsSuperset
	tExists
	tLast // reserved by the grammar, used nowhere
	tIn
	tStart
	tStop
	tSeconds
	tWithin
	tRepeats
	tTimes
)

// token is one lexical token. For literals, val holds the canonical value
// (see Value); for identifiers and keywords it is the text as written.
type token struct {
	kind   tokKind
	pos    int    // byte offset of the token's first byte; it ends at parser.pos
	val    string // see above
	num    int64  // the value of a tInt
	hyphen bool   // a tIdent contains '-'
}

// keyword returns the keyword kind of an identifier, or tIdent.
func keyword(s string) tokKind {
	switch s {
	case "AND":
		return tAnd
	case "OR":
		return tOr
	case "NOT":
		return tNot
	case "FOLLOWEDBY":
		return tFollowedBy
	case "LIKE":
		return tLike
	case "MATCHES":
		return tMatches
	case "ISSUBSET":
		return tIsSubset
	case "ISSUPERSET":
		return tIsSuperset
	case "EXISTS":
		return tExists
	case "LAST":
		return tLast
	case "IN":
		return tIn
	case "START":
		return tStart
	case "STOP":
		return tStop
	case "SECONDS":
		return tSeconds
	case "WITHIN":
		return tWithin
	case "REPEATS":
		return tRepeats
	case "TIMES":
		return tTimes
	case "true", "false":
		return tBool
	}
	return tIdent
}

func isLetter(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || c == '_' }
func isDigit(c byte) bool  { return '0' <= c && c <= '9' }
func isHex(c byte) bool    { return isDigit(c) || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F' }
func isBase64(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || isDigit(c) || c == '+' || c == '/'
}

// isSpaceRune reports whether r is one of the non-ASCII white-space
// characters the grammar skips.
func isSpaceRune(r rune) bool {
	switch r {
	case 0x85, 0xa0, 0x1680, 0x2028, 0x2029, 0x202f, 0x205f, 0x3000:
		return true
	}
	return 0x2000 <= r && r <= 0x200a
}

// skip advances p.pos over white space and comments.
func (p *parser) skip() error {
	for p.pos < len(p.src) {
		c := p.src[p.pos]
		switch {
		case c == ' ' || '\t' <= c && c <= '\r': // \t \n \v \f \r
			p.pos++
		case c == '/' && p.pos+1 < len(p.src) && p.src[p.pos+1] == '*':
			end := strings.Index(p.src[p.pos+2:], "*/")
			if end < 0 {
				return p.errAt(p.pos, "unterminated comment")
			}
			p.pos += 2 + end + 2
		case c == '/' && p.pos+1 < len(p.src) && p.src[p.pos+1] == '/':
			end := strings.IndexAny(p.src[p.pos:], "\r\n")
			if end < 0 {
				p.pos = len(p.src)
			} else {
				p.pos += end
			}
		case c >= utf8.RuneSelf:
			r, n := utf8.DecodeRuneInString(p.src[p.pos:])
			if !isSpaceRune(r) {
				return nil // next reports it
			}
			p.pos += n
		default:
			return nil
		}
	}
	return nil
}

// next scans the next token into p.tok.
func (p *parser) next() error {
	if err := p.skip(); err != nil {
		return err
	}
	start := p.pos
	p.tok = token{pos: start}
	if start >= len(p.src) {
		p.tok.kind = tEOF
		return nil
	}
	s := p.src
	c := s[start]
	kind, n := tEOF, 1
	switch c {
	case '[':
		kind = tLBrack
	case ']':
		kind = tRBrack
	case '(':
		kind = tLParen
	case ')':
		kind = tRParen
	case ':':
		kind = tColon
	case ',':
		kind = tComma
	case '*':
		kind = tStar
	case '=':
		kind = tEq
		if start+1 < len(s) && s[start+1] == '=' {
			n = 2
		}
	case '!':
		if start+1 < len(s) && s[start+1] == '=' {
			kind, n = tNe, 2
		} else {
			return p.errAt(start, "unexpected character '!' (did you mean '!='?)")
		}
	case '<':
		kind = tLt
		if start+1 < len(s) {
			switch s[start+1] {
			case '=':
				kind, n = tLe, 2
			case '>':
				kind, n = tNe, 2
			}
		}
	case '>':
		kind = tGt
		if start+1 < len(s) && s[start+1] == '=' {
			kind, n = tGe, 2
		}
	case '\'':
		return p.lexString(start)
	case '.':
		if start+1 < len(s) && isDigit(s[start+1]) {
			return p.lexNumber(start)
		}
		kind = tDot
	case '+', '-':
		if start+1 < len(s) && (isDigit(s[start+1]) || s[start+1] == '.') {
			return p.lexNumber(start)
		}
		return p.errAt(start, "unexpected character '"+string(c)+"'")
	default:
		switch {
		case isDigit(c):
			return p.lexNumber(start)
		case isLetter(c):
			return p.lexWord(start)
		case c >= utf8.RuneSelf:
			r, _ := utf8.DecodeRuneInString(s[start:])
			if r == utf8.RuneError {
				return p.errAt(start, "invalid UTF-8")
			}
			return p.errAt(start, "unexpected character "+quoteRune(r))
		default:
			return p.errAt(start, "unexpected character "+quoteRune(rune(c)))
		}
	}
	p.pos = start + n
	p.tok.kind = kind
	return nil
}

// lexWord scans an identifier, a keyword, or a timestamp, hex or binary
// literal (t, h or b before a quote).
func (p *parser) lexWord(start int) error {
	s := p.src
	i := start + 1
	hyphen := false
	for i < len(s) {
		c := s[i]
		if isLetter(c) || isDigit(c) {
			i++
		} else if c == '-' {
			hyphen = true
			i++
		} else {
			break
		}
	}
	if i == start+1 && i < len(s) && s[i] == '\'' {
		switch s[start] {
		case 't':
			return p.lexTimestamp(start)
		case 'h':
			return p.lexHex(start)
		case 'b':
			return p.lexBinary(start)
		}
	}
	word := s[start:i]
	kind := tIdent
	if !hyphen {
		kind = keyword(word)
	}
	p.pos = i
	p.tok = token{kind: kind, pos: start, val: word, hyphen: hyphen}
	return nil
}

// lexNumber scans an integer or a float, with an optional sign.
func (p *parser) lexNumber(start int) error {
	s := p.src
	i := start
	neg := false
	if s[i] == '+' || s[i] == '-' {
		neg = s[i] == '-'
		i++
	}
	digits := i
	for i < len(s) && isDigit(s[i]) {
		i++
	}
	intPart := s[digits:i]
	if i+1 < len(s) && s[i] == '.' && isDigit(s[i+1]) {
		i++
		frac := i
		for i < len(s) && isDigit(s[i]) {
			i++
		}
		p.pos = i
		p.tok = token{kind: tFloat, pos: start, val: canonicalFloat(s[start:i], neg, intPart, s[frac:i])}
		return nil
	}
	if intPart == "" {
		return p.errAt(start, "malformed number")
	}
	if len(intPart) > 1 && intPart[0] == '0' {
		return p.errAt(start, "integer "+clip(s[start:i])+" has a leading zero")
	}
	// Accumulate as a negative number so that the int64 minimum fits.
	var v int64
	const minInt64 = -1 << 63
	for j := 0; j < len(intPart); j++ {
		d := int64(intPart[j] - '0')
		if v < (minInt64+d)/10 {
			return p.errAt(start, "integer "+clip(s[start:i])+" is out of range")
		}
		v = v*10 - d
	}
	if !neg {
		if v == minInt64 {
			return p.errAt(start, "integer "+clip(s[start:i])+" is out of range")
		}
		v = -v
	}
	text := s[start:i]
	switch {
	case v == 0:
		text = "0"
	case text[0] == '+':
		text = text[1:]
	}
	p.pos = i
	p.tok = token{kind: tInt, pos: start, val: text, num: v}
	return nil
}

// canonicalFloat returns the canonical text of a float literal (see Value),
// allocating only when it differs from what was written.
func canonicalFloat(written string, neg bool, intPart, frac string) string {
	changed := written[0] == '+'
	for len(intPart) > 1 && intPart[0] == '0' {
		intPart, changed = intPart[1:], true
	}
	for len(frac) > 1 && frac[len(frac)-1] == '0' {
		frac, changed = frac[:len(frac)-1], true
	}
	if intPart == "" {
		intPart, changed = "0", true
	}
	if neg && intPart == "0" && frac == "0" {
		neg, changed = false, true
	}
	if !changed {
		return written
	}
	var b strings.Builder
	b.Grow(len(intPart) + len(frac) + 2)
	if neg {
		b.WriteByte('-')
	}
	b.WriteString(intPart)
	b.WriteByte('.')
	b.WriteString(frac)
	return b.String()
}

// lexString scans a string literal whose opening quote is at q.
func (p *parser) lexString(q int) error {
	s := p.src
	i := q + 1
	escaped, ascii := false, true
	for {
		// Find the closing quote fast, then look for what needs care.
		j := strings.IndexByte(s[i:], '\'')
		if j < 0 {
			return p.errAt(q, "unterminated string literal")
		}
		end := i + j
		for ; i < end; i++ {
			c := s[i]
			if c >= utf8.RuneSelf {
				ascii = false
			} else if c == '\\' {
				if i+1 >= len(s) {
					return p.errAt(q, "unterminated string literal")
				}
				if e := s[i+1]; e != '\'' && e != '\\' {
					var esc string
					switch r, _ := utf8.DecodeRuneInString(s[i+1:]); {
					case r == utf8.RuneError:
						esc = "\\ followed by " + quoteByte(e)
					case r < 0x20 || r >= 0x7f:
						esc = "\\ followed by " + quoteRune(r)
					default:
						esc = "\\" + string(r)
					}
					return p.errAt(i, "invalid escape sequence "+esc+" in string literal: only \\' and \\\\ are allowed")
				}
				escaped = true
				i++ // the escaped byte; an escaped quote may be end
			}
		}
		if i == end {
			break // end is the closing quote
		}
		i = end + 1 // the quote at end was escaped: search on
	}
	raw := s[q+1 : i]
	if !ascii && !utf8.ValidString(raw) {
		return p.errAt(q, "invalid UTF-8 in string literal")
	}
	val := raw
	if escaped {
		var b strings.Builder
		b.Grow(len(raw))
		for j := 0; j < len(raw); j++ {
			if raw[j] == '\\' {
				j++
			}
			b.WriteByte(raw[j])
		}
		val = b.String()
	}
	p.pos = i + 1
	p.tok = token{kind: tString, pos: q, val: val}
	return nil
}

// quotedBody returns the text between the quotes of the timestamp, hex or
// binary literal that starts at start (prefix letter, quote, body, quote)
// and the offset just past its closing quote.
func (p *parser) quotedBody(start int, what string) (body string, end int, err error) {
	j := strings.IndexByte(p.src[start+2:], '\'')
	if j < 0 {
		return "", 0, p.errAt(start, "unterminated "+what+" literal")
	}
	end = start + 2 + j
	return p.src[start+2 : end], end + 1, nil
}

func (p *parser) lexTimestamp(start int) error {
	body, end, err := p.quotedBody(start, "timestamp")
	if err != nil {
		return err
	}
	if msg := timestampProblem(body); msg != "" {
		return p.errAt(start, "invalid timestamp "+clip(p.src[start:end])+": "+msg)
	}
	p.pos = end
	p.tok = token{kind: tTimestamp, pos: start, val: body}
	return nil
}

func (p *parser) lexHex(start int) error {
	body, end, err := p.quotedBody(start, "hex")
	if err != nil {
		return err
	}
	upper := false
	for i := 0; i < len(body); i++ {
		c := body[i]
		if !isHex(c) {
			return p.errAt(start+2+i, "invalid hex literal: "+quoteByte(c)+" is not a hexadecimal digit")
		}
		if c >= 'A' && c <= 'F' {
			upper = true
		}
	}
	if len(body)%2 != 0 {
		return p.errAt(start, "invalid hex literal: odd number of hexadecimal digits")
	}
	if upper {
		body = strings.ToLower(body)
	}
	p.pos = end
	p.tok = token{kind: tHex, pos: start, val: body}
	return nil
}

func (p *parser) lexBinary(start int) error {
	body, end, err := p.quotedBody(start, "binary")
	if err != nil {
		return err
	}
	if msg := base64Problem(body); msg != "" {
		return p.errAt(start, "invalid binary literal: "+msg)
	}
	p.pos = end
	p.tok = token{kind: tBinary, pos: start, val: body}
	return nil
}

// base64Problem returns why s is not padded standard base64 as the grammar
// requires (at least one group of four), or "".
func base64Problem(s string) string {
	if s == "" {
		return "empty (a binary literal holds at least one byte)"
	}
	if len(s)%4 != 0 {
		return "base64 length must be a multiple of 4"
	}
	pad := 0
	for pad < 2 && s[len(s)-1-pad] == '=' {
		pad++
	}
	for i := 0; i < len(s)-pad; i++ {
		if !isBase64(s[i]) {
			return quoteByte(s[i]) + " is not a base64 character"
		}
	}
	return ""
}

// timestampProblem returns why s is not an RFC 3339 UTC timestamp of the
// form YYYY-MM-DDTHH:MM:SS[.fraction]Z, or "".
func timestampProblem(s string) string {
	const form = "must be YYYY-MM-DDTHH:MM:SS[.s+]Z (RFC 3339, UTC)"
	if len(s) < 20 || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' || s[16] != ':' {
		return form
	}
	for _, i := range [...]int{0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18} {
		if !isDigit(s[i]) {
			return form
		}
	}
	rest := s[19:]
	if rest[0] == '.' {
		j := 1
		for j < len(rest) && isDigit(rest[j]) {
			j++
		}
		if j == 1 {
			return form
		}
		rest = rest[j:]
	}
	if rest != "Z" {
		return form
	}
	num := func(i int) int { return int(s[i]-'0')*10 + int(s[i+1]-'0') }
	year := num(0)*100 + num(2)
	month, day, hour, minute, sec := num(5), num(8), num(11), num(14), num(17)
	switch {
	case month < 1 || month > 12:
		return "month out of range"
	case day < 1 || day > daysIn(year, month):
		return "day out of range"
	case hour > 23:
		return "hour out of range"
	case minute > 59:
		return "minute out of range"
	case sec > 60 || sec == 60 && (hour != 23 || minute != 59):
		return "second out of range"
	}
	return ""
}

func daysIn(year, month int) int {
	switch month {
	case 2:
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// compareTimestamps compares two valid timestamps by the instant they denote.
func compareTimestamps(a, b string) int {
	if c := strings.Compare(a[:19], b[:19]); c != 0 {
		return c
	}
	fa, fb := fraction(a), fraction(b)
	for i := 0; i < len(fa) || i < len(fb); i++ {
		da, db := byte('0'), byte('0')
		if i < len(fa) {
			da = fa[i]
		}
		if i < len(fb) {
			db = fb[i]
		}
		if da != db {
			if da < db {
				return -1
			}
			return 1
		}
	}
	return 0
}

// fraction returns the digits of a timestamp's fractional seconds.
func fraction(ts string) string {
	if ts[19] == '.' {
		return ts[20 : len(ts)-1]
	}
	return ""
}

// typeProblem returns why typ is not a valid STIX 2.1 object type name, or
// "". The rule is the one package stix applies to the type property (STIX
// 2.1 §3.1, §11.2.1): 3 to 250 characters of a–z, 0–9 and hyphen, beginning
// with a letter, with no "--" and no trailing hyphen.
func typeProblem(typ string) string {
	if len(typ) < 3 || len(typ) > 250 {
		return "must be 3 to 250 characters long"
	}
	if c := typ[0]; c < 'a' || c > 'z' {
		return "must begin with a lowercase ASCII letter"
	}
	for i := 1; i < len(typ); i++ {
		switch c := typ[i]; {
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9':
		case c == '-':
			if typ[i-1] == '-' {
				return `must not contain "--"`
			}
		default:
			return "must contain only lowercase ASCII letters, digits and hyphens"
		}
	}
	if typ[len(typ)-1] == '-' {
		return "must not end with a hyphen"
	}
	return ""
}

func quoteByte(c byte) string {
	if c >= 0x20 && c < 0x7f {
		return "'" + string(c) + "'"
	}
	const hex = "0123456789abcdef"
	return "byte 0x" + string(hex[c>>4]) + string(hex[c&15])
}

func quoteRune(r rune) string {
	if r < utf8.RuneSelf {
		return quoteByte(byte(r))
	}
	const hex = "0123456789ABCDEF"
	var b [8]byte
	n := len(b)
	for v := r; v > 0 || n > len(b)-4; v >>= 4 {
		n--
		b[n] = hex[v&15]
	}
	return "U+" + string(b[n:])
}

// clip shortens s for an error message and makes it valid UTF-8, so that
// messages can be sent on in JSON.
func clip(s string) string {
	const max = 48
	if len(s) > max {
		i := max
		for i > 0 && !utf8.RuneStart(s[i]) {
			i--
		}
		s = s[:i] + "…"
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}
