// Package ctigate holds the domain vocabulary shared by every layer of the
// gateway: typed errors whose Kind the HTTP layer maps to TAXII error
// resources in exactly one place.
package ctigate

import (
	"errors"
	"fmt"
)

// Kind classifies an error by what the caller can do about it.
type Kind uint8

// The kinds of error. The zero value is Internal: an error nobody classified
// is never shown to a client in detail.
const (
	Internal     Kind = iota // unexpected failure; details are logged, never sent
	Invalid                  // the request or an object in it is malformed
	NotFound                 // no such API root, collection, object or status
	Unauthorized             // missing or wrong credentials
	Forbidden                // authenticated, but not allowed
	Conflict                 // the request conflicts with stored state
	TooLarge                 // the request body exceeds a limit
	Unsupported              // media type or feature not supported
	Unavailable              // a dependency is down; retry later
)

var kindNames = [...]string{
	Internal:     "internal",
	Invalid:      "invalid",
	NotFound:     "not found",
	Unauthorized: "unauthorized",
	Forbidden:    "forbidden",
	Conflict:     "conflict",
	TooLarge:     "too large",
	Unsupported:  "unsupported",
	Unavailable:  "unavailable",
}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", k)
}

// Error is the error type used across ctigate. Op names the operation that
// failed ("bolt.AddObjects"), Kind its class, Msg a message safe to show to a
// client, and Err the underlying cause (never shown to clients for Internal).
type Error struct {
	Op   string
	Kind Kind
	Msg  string
	Err  error
}

// E builds an *Error. Arguments may be, in any order: a string Op (the first
// string), a Kind, an error (the cause), and a second string (the message).
func E(args ...any) error {
	e := &Error{}
	for _, a := range args {
		switch a := a.(type) {
		case Kind:
			e.Kind = a
		case error:
			e.Err = a
		case string:
			if e.Op == "" {
				e.Op = a
			} else {
				e.Msg = a
			}
		default:
			panic(fmt.Sprintf("ctigate.E: bad argument %T", a))
		}
	}
	return e
}

// Errorf returns an error of kind k whose client-safe message is formatted.
func Errorf(k Kind, format string, args ...any) error {
	return &Error{Kind: k, Msg: fmt.Sprintf(format, args...)}
}

func (e *Error) Error() string {
	s := e.Op
	add := func(part string) {
		if part == "" {
			return
		}
		if s != "" {
			s += ": "
		}
		s += part
	}
	add(e.Msg)
	if e.Err != nil {
		add(e.Err.Error())
	} else if e.Msg == "" {
		add(e.Kind.String())
	}
	return s
}

func (e *Error) Unwrap() error { return e.Err }

// KindOf reports the kind of err: the Kind of the outermost *Error in its
// chain that has one set, Internal otherwise.
func KindOf(err error) Kind {
	for err != nil {
		var e *Error
		if !errors.As(err, &e) {
			return Internal
		}
		if e.Kind != Internal {
			return e.Kind
		}
		err = e.Err
	}
	return Internal
}

// MessageOf returns the client-safe message of err: the Msg of the first
// *Error in the chain that has one. For Internal errors it returns "".
func MessageOf(err error) string {
	if KindOf(err) == Internal {
		return ""
	}
	for err != nil {
		var e *Error
		if !errors.As(err, &e) {
			return ""
		}
		if e.Msg != "" {
			return e.Msg
		}
		err = e.Err
	}
	return ""
}
