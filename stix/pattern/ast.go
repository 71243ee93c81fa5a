package pattern

import (
	"strconv"
	"strings"
)

// Pattern is a parsed STIX pattern: one observation expression.
//
// The tree keeps the structure the grammar gives the pattern, minus
// parentheses that change nothing: "[a] AND [b] AND [c]" is one
// ObservationOp with three operands, while "([a] AND [b]) AND [c]" is an
// ObservationOp whose first operand is another ObservationOp. Trees hold no
// source positions, so two patterns that differ only in spacing, comments,
// redundant parentheses or literal spelling (see Value) have equal trees
// (reflect.DeepEqual).
type Pattern struct {
	Expr ObservationExpr
}

// ObservationExpr is an observation expression: *Observation, *ObservationOp
// or *Qualified.
type ObservationExpr interface {
	observationExpr()
}

// Observation is a bracketed comparison expression, "[ ... ]".
type Observation struct {
	Expr ComparisonExpr
}

// ObservationOp joins two or more observation expressions with one of And,
// Or or FollowedBy. Within observation expressions AND binds tighter than
// OR, and OR tighter than FOLLOWEDBY; all are left-associative.
type ObservationOp struct {
	Op       Join
	Operands []ObservationExpr
}

// Qualified is an observation expression followed by one or more
// qualifiers, applied in order. Qualifiers bind tighter than any operator.
type Qualified struct {
	Expr       ObservationExpr
	Qualifiers []Qualifier
}

// ComparisonExpr is a comparison expression inside brackets: *Comparison or
// *ComparisonOp.
type ComparisonExpr interface {
	comparisonExpr()
}

// ComparisonOp joins two or more comparison expressions with And or Or;
// AND binds tighter than OR, and both are left-associative.
type ComparisonOp struct {
	Op       Join
	Operands []ComparisonExpr
}

// Comparison tests one object path: "path [NOT] op value", or "EXISTS path".
type Comparison struct {
	Path    ObjectPath
	Negated bool     // the operator is preceded by NOT
	Op      Operator // == is read as Eq and <> as Ne
	// Values holds the right-hand side: one value, the members of an IN
	// set in order, or nothing for Exists.
	Values []Value
}

func (*Observation) observationExpr()   {}
func (*ObservationOp) observationExpr() {}
func (*Qualified) observationExpr()     {}
func (*Comparison) comparisonExpr()     {}
func (*ComparisonOp) comparisonExpr()   {}

// Join is a logical operator between expressions.
type Join string

// The joins. FollowedBy joins observation expressions only.
const (
	And        Join = "AND"
	Or         Join = "OR"
	FollowedBy Join = "FOLLOWEDBY"
)

// Operator is a comparison operator, spelled as in canonical patterns.
type Operator string

// The comparison operators. Every one but Exists takes an optional NOT.
const (
	Eq         Operator = "="
	Ne         Operator = "!="
	Lt         Operator = "<"
	Le         Operator = "<="
	Gt         Operator = ">"
	Ge         Operator = ">="
	In         Operator = "IN"
	Like       Operator = "LIKE"
	Matches    Operator = "MATCHES"
	IsSubset   Operator = "ISSUBSET"
	IsSuperset Operator = "ISSUPERSET"
	Exists     Operator = "EXISTS"
)

// QualifierKind says which qualifier a Qualifier is.
type QualifierKind string

// The qualifiers.
const (
	Within    QualifierKind = "WITHIN"
	Repeats   QualifierKind = "REPEATS"
	StartStop QualifierKind = "START" // START … STOP …
)

// Qualifier is one of "WITHIN n SECONDS", "REPEATS n TIMES" or
// "START t'…' STOP t'…'"; only the fields of its Kind are set.
type Qualifier struct {
	Kind QualifierKind
	// Seconds is the WITHIN duration: a positive KindInt or KindFloat value
	// (the grammar allows fractional seconds).
	Seconds Value
	// Times is the REPEATS count, at least 1.
	Times int64
	// Start and Stop are the START/STOP timestamps as written (RFC 3339,
	// UTC); Start is before Stop.
	Start, Stop string
}

// ObjectPath names a property of a cyber-observable object, as in
// "file:extensions.'windows-pebinary-ext'.sections[*].entropy".
type ObjectPath struct {
	Type  string     // the object type, before the colon
	Steps []PathStep // at least one; the first is a KeyStep
}

// StepKind says what a PathStep selects.
type StepKind uint8

// The path steps.
const (
	KeyStep      StepKind = iota + 1 // a property or dictionary key
	IndexStep                        // a list element, [n]
	AnyIndexStep                     // any list element, [*]
)

// PathStep is one step of an ObjectPath.
type PathStep struct {
	Kind  StepKind
	Key   string // KeyStep: the key, unquoted and unescaped
	Index int64  // IndexStep: the index as written (the grammar allows negatives)
}

// Kind is the kind of a literal, named as the search index stores it.
type Kind string

// The literal kinds.
const (
	KindString    Kind = "string"
	KindInt       Kind = "int"
	KindFloat     Kind = "float"
	KindBool      Kind = "bool"
	KindTimestamp Kind = "timestamp"
	KindHex       Kind = "hex"
	KindBinary    Kind = "binary"
)

// Value is a literal. Text is its value in a canonical spelling, so that
// equal literals have equal Text:
//
//   - KindString: the string, quotes removed and \' and \\ unescaped;
//   - KindInt: decimal with no '+' and no leading zeros ("-0" is "0");
//   - KindFloat: decimal with no '+', at least one digit before the point
//     (".5" is "0.5"), no leading zeros, no trailing zeros after the first
//     fractional digit ("7.50" is "7.5", "7.0" stays) and no "-0.0";
//   - KindBool: "true" or "false";
//   - KindTimestamp: the RFC 3339 UTC timestamp between t' and ', as
//     written (its precision is kept);
//   - KindHex: the hexadecimal digits in lower case (h'FFD8' is "ffd8");
//     decode with encoding/hex;
//   - KindBinary: the standard, padded base64 text as written; decode with
//     encoding/base64.StdEncoding.
//
// Hex and binary values keep their encoding because the bytes they denote
// need not be text.
type Value struct {
	Kind Kind
	Text string
}

// String returns v in pattern syntax, e.g. 'O\'Brien', 42, t'2016-01-01T00:00:00Z'.
func (v Value) String() string {
	var b strings.Builder
	writeValue(&b, v)
	return b.String()
}

// String returns the canonical form of p. Parse(p.String()) returns a
// pattern equal to p for every p that Parse returned.
//
// The canonical form puts one space around every operator and keyword,
// none inside brackets or parentheses, writes only the parentheses the
// structure needs, quotes path keys only where the grammar requires it,
// writes = and != for == and <>, and writes literals as described at Value.
func (p *Pattern) String() string {
	if p == nil || p.Expr == nil {
		return ""
	}
	var b strings.Builder
	writeObservation(&b, p.Expr)
	return b.String()
}

// String returns the path as "type:steps" in the canonical spelling
// described at PropertyPath.
func (o ObjectPath) String() string {
	var b strings.Builder
	b.WriteString(o.Type)
	b.WriteByte(':')
	writeSteps(&b, o.Steps)
	return b.String()
}

// PropertyPath returns the part of the path after the colon, normalised:
// keys are joined with '.', list steps are written [n] or [*], and a key is
// quoted ('x509-v3-extensions', escaping ' and \) exactly when it is not a
// bare identifier ([A-Za-z_][A-Za-z0-9_]*) or is a reserved word (AND,
// true, …). So file:hashes.'MD5' and file:hashes.MD5 both give
// "hashes.MD5", and file:hashes.'SHA-256' gives "hashes.'SHA-256'". Keys
// are case-sensitive and kept as written.
func (o ObjectPath) PropertyPath() string {
	if len(o.Steps) == 1 && o.Steps[0].Kind == KeyStep && isBareKey(o.Steps[0].Key) {
		return o.Steps[0].Key // the common case, without allocating
	}
	var b strings.Builder
	writeSteps(&b, o.Steps)
	return b.String()
}

// String returns the comparison in canonical pattern syntax.
func (c *Comparison) String() string {
	var b strings.Builder
	writeComparison(&b, c)
	return b.String()
}

// String returns the qualifier in canonical pattern syntax.
func (q Qualifier) String() string {
	var b strings.Builder
	writeQualifier(&b, q)
	return b.String()
}

// Binding strength of joins: a looser operand needs parentheses.
func joinPrec(j Join) int {
	switch j {
	case FollowedBy:
		return 1
	case Or:
		return 2
	case And:
		return 3
	}
	return 0
}

func writeObservation(b *strings.Builder, e ObservationExpr) {
	switch e := e.(type) {
	case *Observation:
		b.WriteByte('[')
		writeComparisonExpr(b, e.Expr, 0)
		b.WriteByte(']')
	case *ObservationOp:
		prec := joinPrec(e.Op)
		for i, o := range e.Operands {
			if i > 0 {
				b.WriteByte(' ')
				b.WriteString(string(e.Op))
				b.WriteByte(' ')
			}
			// An operand with the same join came from parentheses: the parser
			// folds an unparenthesised chain into one list.
			op, ok := o.(*ObservationOp)
			paren := ok && joinPrec(op.Op) <= prec
			writeObservationParen(b, o, paren)
		}
	case *Qualified:
		paren := true
		if _, ok := e.Expr.(*Observation); ok {
			// A repeated qualifier kind is only accepted after a
			// parenthesised observation (see Parse).
			paren = hasDuplicateKind(e.Qualifiers)
		}
		writeObservationParen(b, e.Expr, paren)
		for _, q := range e.Qualifiers {
			b.WriteByte(' ')
			writeQualifier(b, q)
		}
	}
}

func writeObservationParen(b *strings.Builder, e ObservationExpr, paren bool) {
	if paren {
		b.WriteByte('(')
	}
	writeObservation(b, e)
	if paren {
		b.WriteByte(')')
	}
}

func hasDuplicateKind(qs []Qualifier) bool {
	var seen [3]bool // linear, however long a list a pattern brings
	for _, q := range qs {
		i := 0
		switch q.Kind {
		case Repeats:
			i = 1
		case StartStop:
			i = 2
		}
		if seen[i] {
			return true
		}
		seen[i] = true
	}
	return false
}

func writeQualifier(b *strings.Builder, q Qualifier) {
	switch q.Kind {
	case Within:
		b.WriteString("WITHIN ")
		writeValue(b, q.Seconds)
		b.WriteString(" SECONDS")
	case Repeats:
		b.WriteString("REPEATS ")
		b.WriteString(strconv.FormatInt(q.Times, 10))
		b.WriteString(" TIMES")
	case StartStop:
		b.WriteString("START t'")
		b.WriteString(q.Start)
		b.WriteString("' STOP t'")
		b.WriteString(q.Stop)
		b.WriteByte('\'')
	}
}

func writeComparisonExpr(b *strings.Builder, e ComparisonExpr, outer int) {
	switch e := e.(type) {
	case *Comparison:
		writeComparison(b, e)
	case *ComparisonOp:
		prec := joinPrec(e.Op)
		paren := prec <= outer
		if paren {
			b.WriteByte('(')
		}
		for i, o := range e.Operands {
			if i > 0 {
				b.WriteByte(' ')
				b.WriteString(string(e.Op))
				b.WriteByte(' ')
			}
			writeComparisonExpr(b, o, prec)
		}
		if paren {
			b.WriteByte(')')
		}
	}
}

func writeComparison(b *strings.Builder, c *Comparison) {
	if c.Op == Exists {
		b.WriteString("EXISTS ")
		writePath(b, c.Path)
		return
	}
	writePath(b, c.Path)
	b.WriteByte(' ')
	if c.Negated {
		b.WriteString("NOT ")
	}
	b.WriteString(string(c.Op))
	b.WriteByte(' ')
	if c.Op == In {
		b.WriteByte('(')
		for i, v := range c.Values {
			if i > 0 {
				b.WriteString(", ")
			}
			writeValue(b, v)
		}
		b.WriteByte(')')
		return
	}
	if len(c.Values) > 0 {
		writeValue(b, c.Values[0])
	}
}

func writePath(b *strings.Builder, o ObjectPath) {
	b.WriteString(o.Type)
	b.WriteByte(':')
	writeSteps(b, o.Steps)
}

func writeSteps(b *strings.Builder, steps []PathStep) {
	for i, s := range steps {
		switch s.Kind {
		case KeyStep:
			if i > 0 {
				b.WriteByte('.')
			}
			if isBareKey(s.Key) {
				b.WriteString(s.Key)
			} else {
				writeQuoted(b, s.Key)
			}
		case IndexStep:
			b.WriteByte('[')
			b.WriteString(strconv.FormatInt(s.Index, 10))
			b.WriteByte(']')
		case AnyIndexStep:
			b.WriteString("[*]")
		}
	}
}

// isBareKey reports whether a path key can be written without quotes: it
// lexes as one identifier without hyphens that is not a reserved word.
func isBareKey(k string) bool {
	if k == "" || !isLetter(k[0]) {
		return false
	}
	for i := 1; i < len(k); i++ {
		if c := k[i]; !isLetter(c) && !isDigit(c) {
			return false
		}
	}
	return keyword(k) == tIdent
}

func writeValue(b *strings.Builder, v Value) {
	switch v.Kind {
	case KindString:
		writeQuoted(b, v.Text)
	case KindTimestamp:
		b.WriteString("t'")
		b.WriteString(v.Text)
		b.WriteByte('\'')
	case KindHex:
		b.WriteString("h'")
		b.WriteString(v.Text)
		b.WriteByte('\'')
	case KindBinary:
		b.WriteString("b'")
		b.WriteString(v.Text)
		b.WriteByte('\'')
	default: // int, float, bool
		b.WriteString(v.Text)
	}
}

// writeQuoted writes s as a string literal.
func writeQuoted(b *strings.Builder, s string) {
	b.WriteByte('\'')
	for {
		i := strings.IndexAny(s, `'\`)
		if i < 0 {
			break
		}
		b.WriteString(s[:i])
		b.WriteByte('\\')
		b.WriteByte(s[i])
		s = s[i+1:]
	}
	b.WriteString(s)
	b.WriteByte('\'')
}
