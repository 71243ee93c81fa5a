package policy

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/go-json-experiment/json/jsontext"
)

// node is a JSON value as an ordered tree, so that properties can be
// removed while the remaining members keep their order and their scalars
// their original bytes.
type node struct {
	kind  jsontext.Kind // '{', '[', or a scalar's kind
	raw   []byte        // written verbatim when set: a scalar's bytes, or an added value
	names []string      // an object's member names, in order
	kids  []*node       // an object's member values or a list's items, in order
	gone  bool          // removed
}

// parseTree parses raw, which must be exactly one JSON object without
// repeated member names (at any depth: a repeated name could hide a value
// from redaction). It checks the structure of raw, not every detail of
// JSON (such as the UTF-8 of strings or the digits of numbers): raw is
// published as it is or not at all, and what redaction makes of it is
// validated again (see Evaluate).
//
// The tree's nodes and member lists come from p, which release recycles:
// the tree must not be used after that.
func parseTree(raw []byte) (*node, *parser, error) {
	p := parsers.Get().(*parser)
	p.b, p.i, p.err = raw, 0, nil
	p.space()
	if p.i >= len(raw) || raw[p.i] != '{' {
		p.release()
		return nil, nil, errors.New("not a JSON object")
	}
	n := p.value(0)
	if p.err != nil {
		err := p.err
		p.release()
		return nil, nil, err
	}
	if p.space(); p.i != len(raw) {
		err := fmt.Errorf("trailing data at offset %d", p.i)
		p.release()
		return nil, nil, err
	}
	return n, p, nil
}

// maxDepth bounds nesting, as jsontext does.
const maxDepth = 10000

// parsers recycles parsers: a tree lives only for one Evaluate, so the
// next parse reuses its nodes and member lists instead of allocating them
// (a typical indicator is some forty nodes and lists).
var parsers = sync.Pool{New: func() any { return new(parser) }}

// Bounds on what a recycled parser keeps: an object larger than these
// (rare) leaves its parser to the collector.
const (
	maxKeptNodes    = 4096
	maxKeptNames    = 4096 // interned member names
	maxInternedName = 64   // longer names (no STIX property's) are not interned, so a pooled parser keeps at most 256 KiB of them
)

// parser is a recursive-descent JSON parser building nodes whose scalars
// are slices of the input.
type parser struct {
	b   []byte
	i   int
	err error

	slab      []node            // nodes handed out: slab[:used]
	used      int               // nodes of slab in use
	names     []string          // the member names of the lists handed out, and room for more
	kids      []*node           // the member values and items handed out, and room for more
	nameStack []string          // member names of the objects being parsed
	kidStack  []*node           // member values and items of the containers being parsed
	intern    map[string]string // member names seen, so that each is one string
}

// release clears what p handed out and returns it to parsers.
func (p *parser) release() {
	clear(p.slab[:p.used])
	clear(p.names)
	clear(p.kids)
	clear(p.nameStack)
	clear(p.kidStack)
	p.b, p.err, p.used = nil, nil, 0
	p.names, p.kids, p.nameStack, p.kidStack = p.names[:0], p.kids[:0], p.nameStack[:0], p.kidStack[:0]
	if len(p.slab) > maxKeptNodes || cap(p.names) > maxKeptNodes || cap(p.kids) > maxKeptNodes {
		return
	}
	parsers.Put(p)
}

func (p *parser) fail(format string, args ...any) *node {
	if p.err == nil {
		p.err = fmt.Errorf(format+" at offset %d", append(args, p.i)...)
	}
	return nil
}

func (p *parser) space() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

func (p *parser) newNode(kind jsontext.Kind) *node {
	if p.used == len(p.slab) {
		// Nodes handed out keep the old slab alive; release keeps the
		// new one, which is as large as the last object needed.
		p.slab, p.used = make([]node, max(32, 2*len(p.slab))), 0
	}
	n := &p.slab[p.used]
	p.used++
	n.kind = kind
	return n
}

// take copies items into a list of its own carved from *arena (cap =
// len, so that appending to it never writes into another node's list),
// starting a new arena when the current one is full.
func take[T any](arena *[]T, items []T) []T {
	if len(items) == 0 {
		return nil
	}
	if cap(*arena)-len(*arena) < len(items) {
		*arena = make([]T, 0, max(256, 2*cap(*arena), len(items)))
	}
	start := len(*arena)
	*arena = append(*arena, items...)
	return (*arena)[start:len(*arena):len(*arena)]
}

// name returns the member name of the JSON string q, one string for every
// occurrence of a name in the objects p parses.
func (p *parser) name(q []byte) (string, bool) {
	if bytes.IndexByte(q, '\\') >= 0 {
		return unquote(q)
	}
	if s, ok := p.intern[string(q[1:len(q)-1])]; ok {
		return s, true
	}
	s := string(q[1 : len(q)-1])
	if len(s) > maxInternedName || len(p.intern) >= maxKeptNames {
		return s, true
	}
	if p.intern == nil {
		p.intern = make(map[string]string)
	}
	p.intern[s] = s
	return s, true
}

// str scans the string at p.i and returns it, quotes included.
func (p *parser) str() []byte {
	start := p.i
	for j := p.i + 1; j < len(p.b); {
		k := bytes.IndexByte(p.b[j:], '"')
		if k < 0 {
			break
		}
		j += k
		bs := 0 // backslashes before the quote
		for m := j - 1; m > start && p.b[m] == '\\'; m-- {
			bs++
		}
		j++
		if bs%2 == 0 {
			p.i = j
			return p.b[start:j]
		}
	}
	p.fail("unterminated string")
	return nil
}

func (p *parser) value(depth int) *node {
	if depth > maxDepth {
		return p.fail("nesting too deep")
	}
	p.space()
	if p.i >= len(p.b) {
		return p.fail("unexpected end of input")
	}
	switch c := p.b[p.i]; c {
	case '{':
		n := p.newNode('{')
		p.i++
		p.space()
		if p.i < len(p.b) && p.b[p.i] == '}' {
			p.i++
			return n
		}
		// The members go on the stacks while they are parsed (a member's
		// own members above them, and gone by the time it returns), then
		// into lists of their own.
		nmark, kmark := len(p.nameStack), len(p.kidStack)
		var seen map[string]bool
		for {
			p.space()
			if p.i >= len(p.b) || p.b[p.i] != '"' {
				return p.fail("expected a member name")
			}
			q := p.str()
			if q == nil {
				return nil
			}
			name, ok := p.name(q)
			if !ok {
				return p.fail("invalid member name")
			}
			if repeated(p.nameStack[nmark:], &seen, name) {
				return p.fail("member %q repeated", name)
			}
			p.space()
			if p.i >= len(p.b) || p.b[p.i] != ':' {
				return p.fail("expected ':'")
			}
			p.i++
			kid := p.value(depth + 1)
			if kid == nil {
				return nil
			}
			p.nameStack = append(p.nameStack, name)
			p.kidStack = append(p.kidStack, kid)
			p.space()
			if p.i < len(p.b) && p.b[p.i] == ',' {
				p.i++
				continue
			}
			if p.i < len(p.b) && p.b[p.i] == '}' {
				p.i++
				n.names = take(&p.names, p.nameStack[nmark:])
				n.kids = take(&p.kids, p.kidStack[kmark:])
				p.nameStack, p.kidStack = p.nameStack[:nmark], p.kidStack[:kmark]
				return n
			}
			return p.fail("expected ',' or '}'")
		}
	case '[':
		n := p.newNode('[')
		p.i++
		p.space()
		if p.i < len(p.b) && p.b[p.i] == ']' {
			p.i++
			return n
		}
		mark := len(p.kidStack)
		for {
			kid := p.value(depth + 1)
			if kid == nil {
				return nil
			}
			p.kidStack = append(p.kidStack, kid)
			p.space()
			if p.i < len(p.b) && p.b[p.i] == ',' {
				p.i++
				continue
			}
			if p.i < len(p.b) && p.b[p.i] == ']' {
				p.i++
				n.kids = take(&p.kids, p.kidStack[mark:])
				p.kidStack = p.kidStack[:mark]
				return n
			}
			return p.fail("expected ',' or ']'")
		}
	case '"':
		q := p.str()
		if q == nil {
			return nil
		}
		n := p.newNode('"')
		n.raw = q
		return n
	default:
		start := p.i
		for p.i < len(p.b) {
			switch p.b[p.i] {
			case ',', ']', '}', ' ', '\t', '\n', '\r':
				goto done
			}
			p.i++
		}
	done:
		v := p.b[start:p.i]
		var kind jsontext.Kind
		switch {
		case string(v) == "true":
			kind = 't'
		case string(v) == "false":
			kind = 'f'
		case string(v) == "null":
			kind = 'n'
		case len(v) > 0 && (v[0] == '-' || '0' <= v[0] && v[0] <= '9'):
			kind = '0'
		default:
			return p.fail("invalid value")
		}
		n := p.newNode(kind)
		n.raw = v
		return n
	}
}

// repeated reports whether name is among names, the member names of one
// object so far; seen indexes long objects.
func repeated(names []string, seen *map[string]bool, name string) bool {
	if len(names) < 32 {
		return slices.Contains(names, name)
	}
	if *seen == nil {
		*seen = make(map[string]bool, 2*len(names))
		for _, m := range names {
			(*seen)[m] = true
		}
	}
	if (*seen)[name] {
		return true
	}
	(*seen)[name] = true
	return false
}

// unquote returns the content of the JSON string q.
func unquote(q []byte) (string, bool) {
	if bytes.IndexByte(q, '\\') < 0 {
		return string(q[1 : len(q)-1]), true
	}
	s, err := jsontext.AppendUnquote(nil, q)
	if err != nil {
		return "", false
	}
	return string(s), true
}

// member returns the value of the member name of the object n, or nil.
func (n *node) member(name string) *node {
	if n == nil || n.kind != '{' {
		return nil
	}
	for i, m := range n.names {
		if m == name && !n.kids[i].gone {
			return n.kids[i]
		}
	}
	return nil
}

// str returns the content of the string n, and whether n is a string.
func (n *node) str() (string, bool) {
	if n == nil || n.kind != '"' || n.raw == nil {
		return "", false
	}
	return unquote(n.raw)
}

// appendTo writes n, without the removed members and items, to b.
func (n *node) appendTo(b []byte) []byte {
	if n.raw != nil {
		return append(b, n.raw...)
	}
	switch n.kind {
	case '{':
		b = append(b, '{')
		first := true
		for i, kid := range n.kids {
			if kid.gone {
				continue
			}
			if !first {
				b = append(b, ',')
			}
			first = false
			b, _ = jsontext.AppendQuote(b, n.names[i]) // names were valid UTF-8 when parsed
			b = append(b, ':')
			b = kid.appendTo(b)
		}
		return append(b, '}')
	case '[':
		b = append(b, '[')
		first := true
		for _, kid := range n.kids {
			if kid.gone {
				continue
			}
			if !first {
				b = append(b, ',')
			}
			first = false
			b = kid.appendTo(b)
		}
		return append(b, ']')
	}
	return b
}

// splitSelector splits a selector (STIX 2.1 §7.2.3.1) into its
// components: property names and list indexes "[n]".
func splitSelector(sel string) []string { return strings.Split(sel, ".") }

// selectorIndex parses the list index component "[n]".
func selectorIndex(c string) (int, bool) {
	if len(c) < 3 || c[0] != '[' || c[len(c)-1] != ']' {
		return 0, false
	}
	n, err := strconv.Atoi(c[1 : len(c)-1])
	if err != nil || n < 0 || (len(c) > 3 && c[1] == '0') {
		return 0, false
	}
	return n, true
}

// lookup returns the node the components select in root, or nil.
func lookup(root *node, comps []string) *node {
	cur := root
	for _, c := range comps {
		if c == "" {
			return nil
		}
		if c[0] == '[' {
			i, ok := selectorIndex(c)
			if !ok || cur.kind != '[' || i >= len(cur.kids) {
				return nil
			}
			cur = cur.kids[i]
			continue
		}
		if cur.kind != '{' {
			return nil
		}
		var next *node
		for i, m := range cur.names {
			if m == c {
				next = cur.kids[i]
				break
			}
		}
		if next == nil {
			return nil
		}
		cur = next
	}
	return cur
}

// remap rewrites a selector of the original object for the object with
// its removed nodes left out: list indexes shift down past removed items.
// It returns false when the selector selects removed content.
func remap(root *node, comps []string) (string, bool) {
	cur := root
	out := make([]string, 0, len(comps))
	for _, c := range comps {
		if c != "" && c[0] == '[' {
			i, ok := selectorIndex(c)
			if !ok || cur.kind != '[' || i >= len(cur.kids) {
				return "", false
			}
			j := 0
			for _, kid := range cur.kids[:i] {
				if !kid.gone {
					j++
				}
			}
			cur = cur.kids[i]
			out = append(out, "["+strconv.Itoa(j)+"]")
		} else {
			cur = lookup(cur, []string{c})
			if cur == nil {
				return "", false
			}
			out = append(out, c)
		}
		if cur.gone {
			return "", false
		}
	}
	return strings.Join(out, "."), true
}

// collapse removes the lists that removals emptied, depth first, and
// calls emptied with the path of each.
func collapse(n *node, path string, emptied func(path string)) {
	if n.gone || n.raw != nil {
		return
	}
	for i, kid := range n.kids {
		p := path
		if n.kind == '{' {
			p = joinPath(path, n.names[i])
		} else {
			p = joinPath(path, "["+strconv.Itoa(i)+"]")
		}
		collapse(kid, p, emptied)
	}
	if n.kind == '[' && len(n.kids) > 0 && path != "" {
		for _, kid := range n.kids {
			if !kid.gone {
				return
			}
		}
		n.gone = true
		emptied(path)
	}
}

func joinPath(path, comp string) string {
	if path == "" {
		return comp
	}
	return path + "." + comp
}
