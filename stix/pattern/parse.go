package pattern

import (
	"strconv"
	"strings"
)

// maxDepth bounds the nesting of brackets and parentheses, so that a
// hostile pattern cannot make the parser recurse without limit.
const maxDepth = 64

// parser is a recursive-descent parser over a hand-written lexer with one
// token of lookahead.
type parser struct {
	src   string
	pos   int   // where the lexer resumes
	tok   token // the current token
	depth int

	checkedType string // the last object type found valid
}

// Parse parses a STIX 2.1 pattern and checks the rules of STIX 2.1 §9 that
// need no knowledge of object types:
//
//   - the grammar of the OASIS STIXPattern.g4 for STIX 2.1, including
//     EXISTS, NOT before any operator but EXISTS, == and <> as spellings of
//     = and !=, comments (/* */, //) and Unicode white space; keywords are
//     upper case, true and false lower case;
//   - object types are STIX type names (3–250 characters of a–z, 0–9 and
//     hyphen, starting with a letter, no "--", no trailing hyphen); property
//     names with other characters are quoted ('SHA-256');
//   - string literals allow only the escapes \' and \\ and must be UTF-8;
//     timestamps t'…' are valid RFC 3339 UTC date-times (day of month and
//     leap second checked); h'…' has an even number of hex digits; b'…' is
//     non-empty padded base64; integers fit in 64 bits, without leading zeros;
//   - <, <=, >, >= take no boolean; LIKE, MATCHES, ISSUBSET and ISSUPERSET
//     take a string; IN takes a non-empty set of literals of one kind;
//   - WITHIN takes a positive number of seconds (integer or decimal, as the
//     grammar allows), REPEATS a positive integer, and START is before STOP;
//   - as in the OASIS pattern validator, the same qualifier may not be
//     applied twice directly to a bracketed observation ("[…] WITHIN 5
//     SECONDS WITHIN 6 SECONDS"); after parentheses it may;
//   - brackets and parentheses nest at most 64 deep.
//
// It does not check that object types or properties exist (custom ones are
// legal), nor MATCHES regular expressions.
//
// Every error is an *Error.
func Parse(s string) (*Pattern, error) {
	p := parser{src: s}
	if err := p.next(); err != nil {
		return nil, err
	}
	e, err := p.observations(0)
	if err != nil {
		return nil, err
	}
	if p.tok.kind != tEOF {
		return nil, p.unexpected("AND, OR, FOLLOWEDBY, a qualifier or the end of the pattern")
	}
	return &Pattern{Expr: e}, nil
}

func (p *parser) errAt(pos int, msg string) *Error {
	return &Error{Offset: pos, Msg: msg}
}

// unexpected reports the current token where what was expected.
func (p *parser) unexpected(what string) *Error {
	return p.errAt(p.tok.pos, "expected "+what+", found "+p.describe())
}

// describe names the current token for an error message.
func (p *parser) describe() string {
	t := p.tok
	raw := clip(p.src[t.pos:p.pos])
	switch t.kind {
	case tEOF:
		return "end of pattern"
	case tString:
		return "string " + raw
	case tInt:
		return "integer " + raw
	case tFloat:
		return "number " + raw
	case tTimestamp:
		return "timestamp " + raw
	case tHex:
		return "hex literal " + raw
	case tBinary:
		return "binary literal " + raw
	case tIdent:
		if keyword(strings.ToUpper(raw)) != tIdent {
			return "'" + raw + "' (keywords are written in upper case)"
		}
	}
	return "'" + raw + "'"
}

// enter notes one more level of nesting for the bracket or parenthesis
// that is the current token.
func (p *parser) enter() error {
	p.depth++
	if p.depth > maxDepth {
		return p.errAt(p.tok.pos, "brackets and parentheses nested more than "+strconv.Itoa(maxDepth)+" deep")
	}
	return nil
}

// closing checks that the current token closes what opened at open, and
// moves past it.
func (p *parser) closing(kind tokKind, open int) error {
	if p.tok.kind != kind {
		c, o := "']'", "'['"
		if kind == tRParen {
			c, o = "')'", "'('"
		}
		return p.unexpected(c + " to close " + o + " at offset " + strconv.Itoa(open))
	}
	p.depth--
	return p.next()
}

// observationJoins lists the observation operators from the loosest.
var observationJoins = [...]struct {
	tok  tokKind
	join Join
}{{tFollowedBy, FollowedBy}, {tOr, Or}, {tAnd, And}}

// observations parses the observation expressions joined at level and
// tighter.
func (p *parser) observations(level int) (ObservationExpr, error) {
	if level == len(observationJoins) {
		return p.qualified()
	}
	first, err := p.observations(level + 1)
	j := observationJoins[level]
	if err != nil || p.tok.kind != j.tok {
		return first, err
	}
	operands := []ObservationExpr{first}
	for p.tok.kind == j.tok {
		if err := p.next(); err != nil {
			return nil, err
		}
		e, err := p.observations(level + 1)
		if err != nil {
			return nil, err
		}
		operands = append(operands, e)
	}
	return &ObservationOp{Op: j.join, Operands: operands}, nil
}

// qualified parses a bracketed or parenthesised observation expression and
// the qualifiers after it.
func (p *parser) qualified() (ObservationExpr, error) {
	var e ObservationExpr
	grouped := false
	switch p.tok.kind {
	case tLBrack:
		open := p.tok.pos
		if err := p.enter(); err != nil {
			return nil, err
		}
		if err := p.next(); err != nil {
			return nil, err
		}
		c, err := p.comparisons(0)
		if err != nil {
			return nil, err
		}
		if err := p.closing(tRBrack, open); err != nil {
			return nil, err
		}
		e = &Observation{Expr: c}
	case tLParen:
		open := p.tok.pos
		if err := p.enter(); err != nil {
			return nil, err
		}
		if err := p.next(); err != nil {
			return nil, err
		}
		var err error
		if e, err = p.observations(0); err != nil {
			return nil, err
		}
		if err := p.closing(tRParen, open); err != nil {
			return nil, err
		}
		grouped = true
	default:
		return nil, p.unexpected("'[' or '(' to start an observation expression")
	}
	var quals []Qualifier
	for p.tok.kind == tWithin || p.tok.kind == tRepeats || p.tok.kind == tStart {
		at := p.tok.pos
		q, err := p.qualifier()
		if err != nil {
			return nil, err
		}
		if !grouped {
			for _, prev := range quals {
				if prev.Kind == q.Kind {
					return nil, p.errAt(at, "second "+string(q.Kind)+" qualifier on one observation expression (parenthesise to qualify it again)")
				}
			}
		}
		quals = append(quals, q)
	}
	if quals != nil {
		e = &Qualified{Expr: e, Qualifiers: quals}
	}
	return e, nil
}

// qualifier parses the qualifier at the current token.
func (p *parser) qualifier() (Qualifier, error) {
	kw := p.tok.kind
	if err := p.next(); err != nil {
		return Qualifier{}, err
	}
	t := p.tok
	switch kw {
	case tWithin:
		var v Value
		switch {
		case t.kind == tInt && t.num > 0:
			v = Value{Kind: KindInt, Text: t.val}
		case t.kind == tFloat && t.val[0] != '-' && t.val != "0.0":
			v = Value{Kind: KindFloat, Text: t.val}
		default:
			return Qualifier{}, p.unexpected("a positive number of seconds after WITHIN")
		}
		if err := p.next(); err != nil {
			return Qualifier{}, err
		}
		if p.tok.kind != tSeconds {
			return Qualifier{}, p.unexpected("SECONDS after the WITHIN duration")
		}
		return Qualifier{Kind: Within, Seconds: v}, p.next()
	case tRepeats:
		if t.kind != tInt || t.num <= 0 {
			return Qualifier{}, p.unexpected("a positive integer after REPEATS")
		}
		if err := p.next(); err != nil {
			return Qualifier{}, err
		}
		if p.tok.kind != tTimes {
			return Qualifier{}, p.unexpected("TIMES after the REPEATS count")
		}
		return Qualifier{Kind: Repeats, Times: t.num}, p.next()
	default: // tStart
		if t.kind != tTimestamp {
			return Qualifier{}, p.unexpected("a timestamp t'…' after START")
		}
		startText := p.src[t.pos:p.pos]
		if err := p.next(); err != nil {
			return Qualifier{}, err
		}
		if p.tok.kind != tStop {
			return Qualifier{}, p.unexpected("STOP after the START timestamp")
		}
		if err := p.next(); err != nil {
			return Qualifier{}, err
		}
		if p.tok.kind != tTimestamp {
			return Qualifier{}, p.unexpected("a timestamp t'…' after STOP")
		}
		if compareTimestamps(t.val, p.tok.val) >= 0 {
			return Qualifier{}, p.errAt(t.pos, "START "+startText+" is not before STOP "+p.src[p.tok.pos:p.pos])
		}
		q := Qualifier{Kind: StartStop, Start: t.val, Stop: p.tok.val}
		return q, p.next()
	}
}

// comparisonJoins lists the comparison operators from the loosest.
var comparisonJoins = [...]struct {
	tok  tokKind
	join Join
}{{tOr, Or}, {tAnd, And}}

// comparisons parses the comparison expressions joined at level and
// tighter.
func (p *parser) comparisons(level int) (ComparisonExpr, error) {
	if level == len(comparisonJoins) {
		return p.comparison()
	}
	first, err := p.comparisons(level + 1)
	j := comparisonJoins[level]
	if err != nil || p.tok.kind != j.tok {
		return first, err
	}
	operands := []ComparisonExpr{first}
	for p.tok.kind == j.tok {
		if err := p.next(); err != nil {
			return nil, err
		}
		e, err := p.comparisons(level + 1)
		if err != nil {
			return nil, err
		}
		operands = append(operands, e)
	}
	return &ComparisonOp{Op: j.join, Operands: operands}, nil
}

// comparison parses one comparison or a parenthesised comparison
// expression.
func (p *parser) comparison() (ComparisonExpr, error) {
	switch p.tok.kind {
	case tLParen:
		open := p.tok.pos
		if err := p.enter(); err != nil {
			return nil, err
		}
		if err := p.next(); err != nil {
			return nil, err
		}
		e, err := p.comparisons(0)
		if err != nil {
			return nil, err
		}
		return e, p.closing(tRParen, open)
	case tExists:
		if err := p.next(); err != nil {
			return nil, err
		}
		c := &Comparison{Op: Exists}
		return c, p.path(&c.Path) // path allocates the steps
	}
	// One allocation holds the comparison and room for a short path and
	// one value; longer ones grow out of it with append.
	a := new(struct {
		c     Comparison
		steps [2]PathStep
		vals  [1]Value
	})
	c := &a.c
	c.Path.Steps = a.steps[:0]
	if err := p.path(&c.Path); err != nil {
		return nil, err
	}
	if p.tok.kind == tNot {
		c.Negated = true
		if err := p.next(); err != nil {
			return nil, err
		}
	}
	var need Kind // the kind the operator requires, if only one
	switch p.tok.kind {
	case tEq:
		c.Op = Eq
	case tNe:
		c.Op = Ne
	case tLt:
		c.Op = Lt
	case tLe:
		c.Op = Le
	case tGt:
		c.Op = Gt
	case tGe:
		c.Op = Ge
	case tIn:
		c.Op = In
		c.Values = a.vals[:0]
		return c, p.set(c)
	case tLike:
		c.Op, need = Like, KindString
	case tMatches:
		c.Op, need = Matches, KindString
	case tIsSubset:
		c.Op, need = IsSubset, KindString
	case tIsSuperset:
		c.Op, need = IsSuperset, KindString
	default:
		if c.Negated {
			return nil, p.unexpected("a comparison operator after NOT")
		}
		return nil, p.unexpected("a comparison operator after the object path")
	}
	if err := p.next(); err != nil {
		return nil, err
	}
	v, ok := p.literal()
	switch {
	case !ok:
		return nil, p.unexpected("a literal after " + string(c.Op))
	case need != "" && v.Kind != need:
		return nil, p.unexpected("a string literal after " + string(c.Op))
	case v.Kind == KindBool && c.Op != Eq && c.Op != Ne:
		return nil, p.unexpected("an orderable literal (not a boolean) after " + string(c.Op))
	}
	a.vals[0] = v
	c.Values = a.vals[:1]
	return c, p.next()
}

// literal returns the current token as a Value, if it is a literal.
func (p *parser) literal() (Value, bool) {
	var k Kind
	switch p.tok.kind {
	case tString:
		k = KindString
	case tInt:
		k = KindInt
	case tFloat:
		k = KindFloat
	case tBool:
		k = KindBool
	case tTimestamp:
		k = KindTimestamp
	case tHex:
		k = KindHex
	case tBinary:
		k = KindBinary
	default:
		return Value{}, false
	}
	return Value{Kind: k, Text: p.tok.val}, true
}

// set parses the parenthesised set after IN into c.Values.
func (p *parser) set(c *Comparison) error {
	if err := p.next(); err != nil {
		return err
	}
	if p.tok.kind != tLParen {
		return p.unexpected("'(' to open the set after IN")
	}
	open := p.tok.pos
	if err := p.next(); err != nil {
		return err
	}
	if p.tok.kind == tRParen {
		return p.errAt(open, "IN needs a set of at least one value, found ()")
	}
	for {
		v, ok := p.literal()
		if !ok {
			return p.unexpected("a literal in the IN set")
		}
		if len(c.Values) > 0 && v.Kind != c.Values[0].Kind {
			return p.errAt(p.tok.pos, "IN set mixes "+string(c.Values[0].Kind)+" and "+string(v.Kind)+" values: all must be of one kind")
		}
		c.Values = append(c.Values, v)
		if err := p.next(); err != nil {
			return err
		}
		switch p.tok.kind {
		case tComma:
			if err := p.next(); err != nil {
				return err
			}
		case tRParen:
			return p.next()
		default:
			return p.unexpected("',' or ')' in the IN set opened at offset " + strconv.Itoa(open))
		}
	}
}

// path parses an object path into o.
func (p *parser) path(o *ObjectPath) error {
	if p.tok.kind != tIdent {
		return p.unexpected("an object path (type:property)")
	}
	typ := p.tok.val
	if typ != p.checkedType { // patterns often repeat one type
		if msg := typeProblem(typ); msg != "" {
			return p.errAt(p.tok.pos, "object type \""+clip(typ)+"\" "+msg)
		}
		p.checkedType = typ
	}
	o.Type = typ
	if err := p.next(); err != nil {
		return err
	}
	if p.tok.kind != tColon {
		return p.unexpected("':' after the object type " + typ)
	}
	if err := p.next(); err != nil {
		return err
	}
	o.Steps = append(o.Steps, PathStep{})
	if err := p.key(&o.Steps[len(o.Steps)-1]); err != nil {
		return err
	}
	for {
		switch p.tok.kind {
		case tDot:
			if err := p.next(); err != nil {
				return err
			}
			o.Steps = append(o.Steps, PathStep{})
			if err := p.key(&o.Steps[len(o.Steps)-1]); err != nil {
				return err
			}
		case tLBrack:
			open := p.tok.pos
			if err := p.next(); err != nil {
				return err
			}
			switch p.tok.kind {
			case tInt:
				o.Steps = append(o.Steps, PathStep{Kind: IndexStep, Index: p.tok.num})
			case tStar:
				o.Steps = append(o.Steps, PathStep{Kind: AnyIndexStep})
			default:
				return p.unexpected("a list index (an integer or '*')")
			}
			if err := p.next(); err != nil {
				return err
			}
			if p.tok.kind != tRBrack {
				return p.unexpected("']' to close the list index opened at offset " + strconv.Itoa(open))
			}
			if err := p.next(); err != nil {
				return err
			}
		default:
			return nil
		}
	}
}

// key parses a property name or dictionary key into s.
func (p *parser) key(s *PathStep) error {
	t := p.tok
	switch {
	case t.kind == tString:
		*s = PathStep{Kind: KeyStep, Key: t.val}
	case t.kind == tIdent && !t.hyphen:
		*s = PathStep{Kind: KeyStep, Key: t.val}
	case t.kind == tIdent:
		return p.errAt(t.pos, "property name "+clip(t.val)+" contains '-' and must be quoted: '"+clip(t.val)+"'")
	case t.kind >= tAnd || t.kind == tBool:
		return p.errAt(t.pos, "property name "+t.val+" is a reserved word and must be quoted: '"+t.val+"'")
	default:
		return p.unexpected("a property name")
	}
	return p.next()
}
