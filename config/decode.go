package config

import (
	"bytes"
	"encoding"
	"errors"
	"fmt"
	"io"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// This file reads the YAML text of a configuration into a Config and
// places every problem found, in reading or in validation, at its line:
// "FILE:LINE: config: KEY: problem", KEY being the key path
// (routes[0].ceiling). The YAML is first read into a yaml.Node tree,
// which keeps positions; that tree is checked against the yaml tags of
// Config before it is decoded, so that an unknown key or a value of the
// wrong kind is reported with its path and line, in the configuration's
// words rather than Go's.

// fieldError is a problem with one key (Validate's errors).
type fieldError struct {
	key, msg string
}

func (e *fieldError) Error() string { return "config: " + e.key + ": " + e.msg }

// problem is a fieldError found in the YAML tree, at a line.
type problem struct {
	line int
	fieldError
}

// source names where configuration text came from: a file name, or ""
// for text given to Parse.
type source struct {
	name string
}

// at returns the location prefix of a message: "FILE:LINE: ", "FILE: ",
// "line LINE: " or nothing.
func (s source) at(line int) string {
	switch {
	case s.name != "" && line > 0:
		return fmt.Sprintf("%s:%d: ", s.name, line)
	case s.name != "":
		return s.name + ": "
	case line > 0:
		return fmt.Sprintf("line %d: ", line)
	}
	return ""
}

// errorf is one located error.
func (s source) errorf(line int, format string, args ...any) error {
	return errors.New(s.at(line) + "config: " + fmt.Sprintf(format, args...))
}

// yamlLine reads the line of a YAML syntax error ("yaml: line 3: …").
var yamlLine = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)

// document reads data as one YAML document holding a mapping, and
// returns that mapping.
func (s source) document(data []byte) (*yaml.Node, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, s.errorf(0, "the file is empty")
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil && err != io.EOF {
		return nil, s.syntax(err)
	}
	var next yaml.Node
	if err := dec.Decode(&next); err != io.EOF {
		if err != nil {
			return nil, s.syntax(err)
		}
		return nil, s.errorf(next.Line, "a second YAML document (after ---): the file must hold one")
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 || isNull(doc.Content[0]) {
		return nil, s.errorf(0, "the file holds no settings (only comments or an empty document)")
	}
	root := resolve(doc.Content[0])
	if root.Kind != yaml.MappingNode {
		return nil, s.errorf(root.Line, "the file must hold settings as key: value lines, not %s", describe(root))
	}
	return root, nil
}

// parserProblems are the messages of yaml.v3's parser (as opposed to its
// scanner), whose errors give the line counted from 0: of the construct
// the problem is in (an unclosed [ or {, a block mapping), or else of the
// problem.
var parserProblems = []string{
	"did not find expected ',' or ']'", "did not find expected ',' or '}'", "did not find expected '-' indicator",
	"did not find expected <document start>", "did not find expected <stream-start>", "did not find expected key",
	"did not find expected node content", "found duplicate %TAG directive", "found duplicate %YAML directive",
	"found incompatible YAML document", "found undefined tag handle",
}

// syntax reports a YAML syntax error at its line.
func (s source) syntax(err error) error {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		n, _ := strconv.Atoi(m[1])
		if slices.Contains(parserProblems, m[2]) {
			n++
		}
		return s.errorf(n, "not valid YAML: %s", m[2])
	}
	return s.errorf(0, "not valid YAML: %s", msg)
}

// goWords are the parts of yaml.v3's decoding errors that name Go types
// and YAML tags (" into []config.Route", "!!str ").
var goWords = regexp.MustCompile(` into \S+$|!!\w+ `)

// decodeErrors reports errors of yaml.v3's own decoding, which check has
// not foreseen, at their lines and without Go type names.
func (s source) decodeErrors(err error) error {
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		return s.syntax(err)
	}
	var errs []error
	for _, e := range te.Errors {
		msg := goWords.ReplaceAllString(e, "")
		msg = strings.Replace(msg, "cannot unmarshal", "unexpected value", 1)
		if m := yamlLine.FindStringSubmatch(msg); m != nil {
			n, _ := strconv.Atoi(m[1])
			errs = append(errs, s.errorf(n, "%s", m[2]))
		} else {
			errs = append(errs, s.errorf(0, "%s", msg))
		}
	}
	return errors.Join(errs...)
}

// located returns the problems, each at its line.
func (s source) located(ps []problem) error {
	errs := make([]error, len(ps))
	for i, p := range ps {
		errs[i] = errors.New(s.at(p.line) + p.Error())
	}
	return errors.Join(errs...)
}

// locate puts each of Validate's errors at the line of its key in root,
// or of the nearest enclosing key the file sets. A key some environment
// variable set (envSet) is not placed in the file.
func (s source) locate(err error, root *yaml.Node, envSet []string) error {
	var out []error
	var walk func(err error)
	walk = func(err error) {
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			for _, e := range j.Unwrap() {
				walk(e)
			}
			return
		}
		fe, ok := err.(*fieldError)
		switch {
		case !ok:
			out = append(out, errors.New(s.at(0)+err.Error()))
		case slices.ContainsFunc(envSet, func(k string) bool { return within(fe.key, k) }):
			out = append(out, fe)
		default:
			out = append(out, errors.New(s.at(lineOf(root, fe.key))+fe.Error()))
		}
	}
	walk(err)
	return errors.Join(out...)
}

// within reports whether key is k or lies below it.
func within(key, k string) bool {
	return key == k || strings.HasPrefix(key, k+".") || strings.HasPrefix(key, k+"[")
}

// keySegment is one step of a key path: a name or an [index].
var keySegment = regexp.MustCompile(`\[(\d+)\]|([^.\[\]]+)`)

// lineOf returns the line of key (a path such as api_roots[0].title) in
// the mapping root, or of its deepest part present; 0 when not even its
// first part is.
func lineOf(root *yaml.Node, key string) int {
	n, line := root, 0
	for _, m := range keySegment.FindAllStringSubmatch(key, -1) {
		n = resolve(n)
		if m[1] != "" {
			i, _ := strconv.Atoi(m[1])
			if n.Kind != yaml.SequenceNode || i >= len(n.Content) {
				return line
			}
			n = n.Content[i]
			line = n.Line
			continue
		}
		k, v := lookup(n, m[2])
		if k == nil {
			return line
		}
		n, line = v, k.Line
	}
	return line
}

// lookup returns the key and value nodes of name in the mapping n,
// following merge keys (<<).
func lookup(n *yaml.Node, name string) (key, value *yaml.Node) {
	if n.Kind != yaml.MappingNode {
		return nil, nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == name {
			return n.Content[i], n.Content[i+1]
		}
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == "<<" {
			for _, m := range merged(n.Content[i+1]) {
				if k, v := lookup(m, name); k != nil {
					return k, v
				}
			}
		}
	}
	return nil, nil
}

// merged returns the mappings a merge key's value names.
func merged(v *yaml.Node) []*yaml.Node {
	v = resolve(v)
	if v.Kind == yaml.SequenceNode {
		var out []*yaml.Node
		for _, c := range v.Content {
			out = append(out, resolve(c))
		}
		return out
	}
	return []*yaml.Node{v}
}

// resolve follows aliases (*name) to the node they name.
func resolve(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	n = resolve(n)
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

var (
	yamlUnmarshaler = reflect.TypeFor[yaml.Unmarshaler]()
	textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()
)

// check compares the node n with the Go type t it will be decoded into,
// naming it path, and returns what does not fit: keys t has no field for
// (with the nearest known one), keys given twice, and values of the wrong
// kind, each with what was expected.
func check(n *yaml.Node, t reflect.Type, path string) []problem {
	n = resolve(n)
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if isNull(n) || t.Kind() == reflect.Interface {
		return nil // an empty value leaves the setting at its zero value
	}
	mismatch := func() []problem {
		return []problem{{n.Line, fieldError{path, fmt.Sprintf("expected %s, got %s", expected(t), describe(n))}}}
	}
	if p := reflect.PointerTo(t); p.Implements(yamlUnmarshaler) || p.Implements(textUnmarshaler) {
		// A type that reads itself: it says what fits.
		if err := n.Decode(reflect.New(t).Interface()); err != nil {
			msg := describe(n) + " is not valid here"
			if te := (*yaml.TypeError)(nil); !errors.As(err, &te) {
				msg += ": " + err.Error() // the type's own words
			}
			return []problem{{n.Line, fieldError{path, msg}}}
		}
		return nil
	}
	switch t.Kind() {
	case reflect.Struct:
		if t == reflect.TypeFor[time.Time]() {
			break
		}
		if n.Kind != yaml.MappingNode {
			return mismatch()
		}
		return checkMapping(n, t, path, map[string]int{})
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			return mismatch()
		}
		var ps []problem
		for i := 0; i+1 < len(n.Content); i += 2 {
			ps = append(ps, check(n.Content[i+1], t.Elem(), join(path, n.Content[i].Value))...)
		}
		return ps
	case reflect.Slice, reflect.Array:
		if n.Kind != yaml.SequenceNode {
			return mismatch()
		}
		var ps []problem
		for i, item := range n.Content {
			ps = append(ps, check(item, t.Elem(), fmt.Sprintf("%s[%d]", path, i))...)
		}
		return ps
	}
	if n.Kind != yaml.ScalarNode {
		return mismatch()
	}
	// A scalar: yaml.v3 itself says whether it fits.
	if err := n.Decode(reflect.New(t).Interface()); err != nil {
		return mismatch()
	}
	return nil
}

// checkMapping checks the mapping n against the struct t; seen holds the
// keys already met, with their lines (shared with merged mappings).
func checkMapping(n *yaml.Node, t reflect.Type, path string, seen map[string]int) []problem {
	fields := yamlFields(t)
	var ps []problem
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		key := join(path, k.Value)
		if k.Value == "<<" {
			// Merged keys come first; the mapping's own override them.
			for _, m := range merged(v) {
				if m.Kind != yaml.MappingNode {
					ps = append(ps, problem{m.Line, fieldError{join(path, "<<"), "a merge key (<<) must name a mapping (&anchor)"}})
					continue
				}
				ps = append(ps, checkMapping(m, t, path, map[string]int{})...)
			}
			continue
		}
		if first, dup := seen[k.Value]; dup {
			ps = append(ps, problem{k.Line, fieldError{key, fmt.Sprintf("set twice (first at line %d)", first)}})
			continue
		}
		seen[k.Value] = k.Line
		f, ok := fields[k.Value]
		if !ok {
			ps = append(ps, problem{k.Line, fieldError{key, "unknown key " + suggest(k.Value, fields)}})
			continue
		}
		ps = append(ps, check(v, f, key)...)
	}
	return ps
}

// yamlFields returns the keys of struct t (yaml tags, inline structs
// flattened) with their types.
func yamlFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for f := range t.Fields() {
		if !f.IsExported() {
			continue
		}
		tag := f.Tag.Get("yaml")
		name, opts, _ := strings.Cut(tag, ",")
		if name == "-" {
			continue
		}
		if slices.Contains(strings.Split(opts, ","), "inline") {
			for k, v := range yamlFields(f.Type) {
				out[k] = v
			}
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		out[name] = f.Type
	}
	return out
}

// suggest names the known key nearest to key, or lists them.
func suggest(key string, fields map[string]reflect.Type) string {
	names := make([]string, 0, len(fields))
	for k := range fields {
		names = append(names, k)
	}
	slices.Sort(names)
	// The nearest key within about one edit in four characters.
	best, dist := "", max(1, len(key)/4)+1
	for _, k := range names {
		if d := editDistance(strings.ToLower(key), k); d < dist {
			best, dist = k, d
		}
	}
	if best != "" {
		return "(did you mean " + best + "?)"
	}
	return "(known keys here: " + strings.Join(names, ", ") + ")"
}

// editDistance is the number of single-character insertions, deletions,
// substitutions and swaps of neighbours that turn a into b (optimal
// string alignment distance).
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	d := make([][]int, len(ra)+1)
	for i := range d {
		d[i] = make([]int, len(rb)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(ra); i++ {
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(ra)][len(rb)]
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// expected says, in the configuration's terms, what a value of type t
// looks like.
func expected(t reflect.Type) string {
	if t == reflect.TypeFor[time.Duration]() {
		return "a duration with a unit, such as 30s, 15m or 720h"
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "a whole number"
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a whole number, 0 or more"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		e := t.Elem()
		for e.Kind() == reflect.Pointer {
			e = e.Elem()
		}
		if e.Kind() == reflect.Struct || e.Kind() == reflect.Map {
			return "a list of entries, each starting with \"- \""
		}
		return "a list, such as [a, b] or one \"- item\" line each"
	case reflect.Struct, reflect.Map:
		return "key: value settings (a mapping)"
	}
	return "another kind of value"
}

// describe says what a node holds, for messages.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "key: value settings (a mapping)"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		v := n.Value
		if r := []rune(v); len(r) > 40 {
			v = string(r[:40]) + "…"
		}
		if n.ShortTag() == "!!str" {
			return strconv.Quote(v)
		}
		return v
	}
	return "nothing"
}
