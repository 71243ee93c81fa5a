package policy

import (
	"errors"
	"fmt"
	"strings"

	"cel.dev/cel-go/cel"
)

// A route's condition is a CEL expression (https://cel.dev) that must
// evaluate to true for an object to be published. It sees:
//
//	object    map(string, dyn)  the object as decoded JSON (numbers are doubles)
//	tlp       string            the object's effective TLP level, e.g. "TLP:GREEN"
//	producer  string            the producer organisation
//
// For example:
//
//	object.type != "identity" || object.identity_class != "individual"
//	!has(object.confidence) || object.confidence >= 50
//
// The expression is compiled and type-checked once, by Compile; it must be
// of type bool. Evaluation is bounded (conditionCostLimit); an evaluation
// error (a missing property read without has(), a cost overrun, a non-bool
// result) withholds the object: conditions fail closed.
type condition struct {
	prg cel.Program
}

// conditionCostLimit bounds the work of one evaluation, in CEL cost units
// (roughly, one per operation or element visited).
const conditionCostLimit = 100_000

var celEnv = func() *cel.Env {
	env, err := cel.NewEnv(
		cel.Variable("object", cel.MapType(cel.StringType, cel.DynType)),
		cel.Variable("tlp", cel.StringType),
		cel.Variable("producer", cel.StringType),
	)
	if err != nil {
		panic("policy: CEL environment: " + err.Error())
	}
	return env
}()

// compileCondition compiles and type-checks expr.
func compileCondition(expr string) (*condition, error) {
	ast, iss := celEnv.Compile(expr)
	if iss != nil && iss.Err() != nil {
		return nil, errors.New(strings.ReplaceAll(iss.Err().Error(), "\n", " "))
	}
	if t := ast.OutputType(); !t.IsExactType(cel.BoolType) && !t.IsExactType(cel.DynType) {
		return nil, fmt.Errorf("must be a bool expression, got %s", t)
	}
	prg, err := celEnv.Program(ast, cel.CostLimit(conditionCostLimit))
	if err != nil {
		return nil, err
	}
	return &condition{prg: prg}, nil
}

// eval evaluates the condition over obj.
func (c *condition) eval(obj map[string]any, tlp, producer string) (bool, error) {
	out, _, err := c.prg.Eval(map[string]any{"object": obj, "tlp": tlp, "producer": producer})
	if err != nil {
		return false, err
	}
	b, ok := out.Value().(bool)
	if !ok {
		return false, fmt.Errorf("the condition returned %s, not a bool", out.Type().TypeName())
	}
	return b, nil
}
