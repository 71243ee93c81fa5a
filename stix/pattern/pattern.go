// Package pattern parses, checks and re-renders STIX 2.1 patterns (STIX 2.1
// §9, "STIX Patterning") and lists the comparisons they make.
package pattern

import (
	"iter"
	"slices"
	"strconv"
)

// Error is the error Parse returns: what is wrong and where.
type Error struct {
	Offset int    // byte offset in the pattern of the token or byte at fault
	Msg    string // the problem, e.g. "expected ']' to close '[' at offset 0, found end of pattern"
}

func (e *Error) Error() string {
	return "pattern: offset " + strconv.Itoa(e.Offset) + ": " + e.Msg
}

// Observable is one comparison of a pattern, flattened for indexing.
type Observable struct {
	Type    string  // the object type, e.g. "ipv4-addr"
	Path    string  // the property path after the colon, as ObjectPath.PropertyPath normalises it
	Op      string  // the operator as in Operator, e.g. "=", "IN", "MATCHES", "EXISTS"
	Negated bool    // the operator is preceded by NOT
	Values  []Value // the right-hand side: one value, the IN set, or none for EXISTS
}

// Observables returns every comparison in p, left to right, one Observable
// each (duplicates included). Qualifiers and the operators that join
// comparisons and observations are not reflected: an Observable says that
// the pattern tests Type:Path against Values, not that a match needs it.
func (p *Pattern) Observables() []Observable {
	var out []Observable
	for c := range p.Comparisons() {
		out = append(out, Observable{
			Type:    c.Path.Type,
			Path:    c.Path.PropertyPath(),
			Op:      string(c.Op),
			Negated: c.Negated,
			Values:  slices.Clone(c.Values),
		})
	}
	return out
}

// Comparisons yields every comparison in p, left to right. The comparisons
// are p's own: changing one changes p.
func (p *Pattern) Comparisons() iter.Seq[*Comparison] {
	return func(yield func(*Comparison) bool) {
		if p != nil {
			walkObservation(p.Expr, yield)
		}
	}
}

func walkObservation(e ObservationExpr, yield func(*Comparison) bool) bool {
	switch e := e.(type) {
	case *Observation:
		return walkComparison(e.Expr, yield)
	case *ObservationOp:
		for _, o := range e.Operands {
			if !walkObservation(o, yield) {
				return false
			}
		}
	case *Qualified:
		return walkObservation(e.Expr, yield)
	}
	return true
}

func walkComparison(e ComparisonExpr, yield func(*Comparison) bool) bool {
	switch e := e.(type) {
	case *Comparison:
		return yield(e)
	case *ComparisonOp:
		for _, o := range e.Operands {
			if !walkComparison(o, yield) {
				return false
			}
		}
	}
	return true
}
