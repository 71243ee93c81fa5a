package load

import (
	"bytes"
	"errors"
	"fmt"
	"slices"

	"github.com/go-json-experiment/json/jsontext"
)

// page is what bench reads of a TAXII envelope.
type page struct {
	objects int
	more    bool
	next    string
}

var (
	errNotEnvelope = errors.New("the response is not a TAXII envelope")
	errTruncated   = errors.New("the envelope ends too early")
)

// countEnvelope reads a TAXII envelope's "more" and "next" and counts the
// elements of "objects" without decoding them: it only finds where each
// object ends, skipping string contents with bytes.IndexByte. Consumers
// share the CPU with the gateway on one machine, so they must cost far less
// per object than the gateway does; a full JSON tokenizer cost about twice
// what the gateway spends serving a page. It checks the envelope's
// structure, not the JSON grammar inside the objects.
func countEnvelope(b []byte) (page, error) {
	var (
		p    page
		s    = scanner{b: b}
		seen []string
	)
	if !s.consume('{') {
		return p, errNotEnvelope
	}
	if s.consume('}') {
		return p, s.end()
	}
	for {
		raw, err := s.str()
		if err != nil {
			return p, errNotEnvelope
		}
		name, err := unquote(raw)
		if err != nil {
			return p, err
		}
		if slices.Contains(seen, name) {
			return p, fmt.Errorf("envelope member %q appears twice", name)
		}
		seen = append(seen, name)
		if !s.consume(':') {
			return p, errNotEnvelope
		}
		switch name {
		case "more":
			switch {
			case s.literal("true"):
				p.more = true
			case s.literal("false"):
			default:
				return p, errors.New(`"more" is not a boolean`)
			}
		case "next":
			raw, err := s.str()
			if err != nil {
				return p, errors.New(`"next" is not a string`)
			}
			if p.next, err = unquote(raw); err != nil {
				return p, err
			}
		case "objects":
			if !s.consume('[') {
				return p, errors.New(`"objects" is not an array`)
			}
			if !s.consume(']') {
				for {
					if s.peek() != '{' {
						return p, fmt.Errorf("objects[%d] is not a JSON object", p.objects)
					}
					if err := s.skipNested(); err != nil {
						return p, fmt.Errorf("objects[%d]: %w", p.objects, err)
					}
					p.objects++
					if s.consume(']') {
						break
					}
					if !s.consume(',') {
						return p, fmt.Errorf("objects[%d]: want , or ] after it", p.objects-1)
					}
				}
			}
		default:
			if err := s.skip(); err != nil {
				return p, err
			}
		}
		if s.consume('}') {
			return p, s.end()
		}
		if !s.consume(',') {
			return p, errNotEnvelope
		}
	}
}

func unquote(raw []byte) (string, error) {
	if bytes.IndexByte(raw, '\\') < 0 {
		return string(raw[1 : len(raw)-1]), nil
	}
	v, err := jsontext.AppendUnquote(nil, raw)
	return string(v), err
}

// scanner walks JSON text without validating it fully.
type scanner struct {
	b []byte
	i int
}

func (s *scanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// peek returns the next byte after white space, or 0 at the end.
func (s *scanner) peek() byte {
	s.ws()
	if s.i < len(s.b) {
		return s.b[s.i]
	}
	return 0
}

// consume skips white space and c, reporting whether c was there.
func (s *scanner) consume(c byte) bool {
	if s.peek() == c {
		s.i++
		return true
	}
	return false
}

func (s *scanner) literal(lit string) bool {
	s.ws()
	if bytes.HasPrefix(s.b[s.i:], []byte(lit)) {
		s.i += len(lit)
		return true
	}
	return false
}

// end checks that nothing but white space follows.
func (s *scanner) end() error {
	if s.ws(); s.i != len(s.b) {
		return errors.New("data after the envelope")
	}
	return nil
}

// str returns the next value, which must be a string, with its quotes.
func (s *scanner) str() ([]byte, error) {
	if s.peek() != '"' {
		return nil, errors.New("want a string")
	}
	start := s.i
	end := stringEnd(s.b, s.i)
	if end < 0 {
		return nil, errTruncated
	}
	s.i = end
	return s.b[start:end], nil
}

// stringEnd returns the index just past the string that starts with the
// quote at b[i], or -1.
func stringEnd(b []byte, i int) int {
	i++
	for {
		j := bytes.IndexByte(b[i:], '"')
		if j < 0 {
			return -1
		}
		i += j
		// The quote is escaped if an odd number of backslashes precede it.
		k := i
		for k > 0 && b[k-1] == '\\' {
			k--
		}
		i++
		if (i-1-k)%2 == 0 {
			return i
		}
	}
}

// skip passes over one value of any kind.
func (s *scanner) skip() error {
	switch c := s.peek(); c {
	case '"':
		_, err := s.str()
		return err
	case '{', '[':
		return s.skipNested()
	case 0:
		return errTruncated
	default: // number or literal
		start := s.i
		for s.i < len(s.b) {
			switch s.b[s.i] {
			case ',', '}', ']', ' ', '\t', '\n', '\r':
				if s.i == start {
					return errNotEnvelope
				}
				return nil
			}
			s.i++
		}
		return errTruncated
	}
}

// skipNested passes over the object or array at s.i, matching brackets
// outside strings.
func (s *scanner) skipNested() error {
	depth := 0
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case '"':
			end := stringEnd(s.b, s.i)
			if end < 0 {
				return errTruncated
			}
			s.i = end
			continue
		case '{', '[':
			depth++
		case '}', ']':
			depth--
			if depth == 0 {
				s.i++
				return nil
			}
		}
		s.i++
	}
	return errTruncated
}
