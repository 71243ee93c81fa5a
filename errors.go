// Package ctigate holds the domain vocabulary shared by every layer of the
// gateway: typed errors whose Kind the HTTP layer maps to TAXII error
// resources in exactly one place.
package ctigate

import (
	"errors"
	"fmt"
	"strings"
	"syscall"
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
	Full                     // the storage is full: nothing more can be written until space is freed
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
	Full:         "storage full",
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
// chain that has one set; else Full when the chain shows the storage out
// of space (IsStorageFull), Internal otherwise. A store therefore need
// not classify the failures of its files: a write that failed for want
// of space is Full however it was wrapped.
func KindOf(err error) Kind {
	for e := err; e != nil; {
		ce, ok := errors.AsType[*Error](e) // As would allocate its target
		if !ok {
			break
		}
		if ce.Kind != Internal {
			return ce.Kind
		}
		e = ce.Err
	}
	if IsStorageFull(err) {
		return Full
	}
	return Internal
}

// noSpace are the errors of a write refused for want of space: the file
// system is full (ENOSPC), the process's file size limit is reached
// (EFBIG, RLIMIT_FSIZE), or the user's disk quota is (EDQUOT).
var noSpace = []syscall.Errno{syscall.ENOSPC, syscall.EFBIG, syscall.EDQUOT}

// IsStorageFull reports whether err is, or wraps, a write refused for want
// of space: ENOSPC, EFBIG or EDQUOT. Some libraries flatten the error of
// a file operation into text (bbolt reports a failed growth of its file
// as "file resize error: …" with %s), so the text of those errors counts
// too.
func IsStorageFull(err error) bool {
	if err == nil {
		return false
	}
	for _, errno := range noSpace {
		if errors.Is(err, errno) {
			return true
		}
	}
	msg := err.Error()
	for _, errno := range noSpace {
		if strings.Contains(msg, errno.Error()) {
			return true
		}
	}
	return false
}

// MessageOf returns the client-safe message of err: the Msg of the first
// *Error in the chain that has one. For Internal errors it returns "".
func MessageOf(err error) string {
	if KindOf(err) == Internal {
		return ""
	}
	for err != nil {
		e, ok := errors.AsType[*Error](err)
		if !ok {
			return ""
		}
		if e.Msg != "" {
			return e.Msg
		}
		err = e.Err
	}
	return ""
}
