package server

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/ctigate/ctigate"
	"github.com/ctigate/ctigate/auth"
)

// taxiiError is the TAXII 2.1 error message resource (§3.6.1).
type taxiiError struct {
	Title       string         `json:"title"`
	Description string         `json:"description,omitempty"`
	ErrorID     string         `json:"error_id,omitempty"`
	ErrorCode   string         `json:"error_code,omitempty"`
	HTTPStatus  string         `json:"http_status,omitempty"`
	Details     map[string]any `json:"details,omitempty"`
}

var kindStatus = map[ctigate.Kind]int{
	ctigate.Internal:     http.StatusInternalServerError,
	ctigate.Invalid:      http.StatusBadRequest,
	ctigate.NotFound:     http.StatusNotFound,
	ctigate.Unauthorized: http.StatusUnauthorized,
	ctigate.Forbidden:    http.StatusForbidden,
	ctigate.Conflict:     http.StatusConflict,
	ctigate.TooLarge:     http.StatusRequestEntityTooLarge,
	ctigate.Unsupported:  http.StatusUnsupportedMediaType,
	ctigate.Unavailable:  http.StatusServiceUnavailable,
	ctigate.Full:         http.StatusInsufficientStorage,
}

// storageFull is the description of a Full error that says nothing more
// specific: every write of the gateway is atomic, so a request refused
// for want of space left nothing behind.
const storageFull = "the gateway's storage is full; nothing of this request was stored. Retry once an operator has freed space"

// Seconds a client is asked to wait before it retries: a store that is
// down comes back by itself; a full one needs an operator.
const (
	retryUnavailable = "5"
	retryFull        = "30"
)

// statusError carries an HTTP status that no Kind expresses (406, 422).
type statusError struct {
	code int
	msg  string
}

func (e *statusError) Error() string { return e.msg }

// handleError is the one place where errors become HTTP responses: every
// error is a TAXII error message, and internal detail never reaches the
// client (it is logged with an error_id the client can quote).
func (s *Server) handleError(err error, c echo.Context) {
	if c.Response().Committed {
		s.log.Error("error after response started", "path", c.Path(), "err", err)
		return
	}
	var (
		code int
		msg  string
		he   *echo.HTTPError
		se   *statusError
		th   *auth.Throttled
	)
	switch {
	case errors.As(err, &th):
		// A refused login: logged by the throttle, once per client and
		// minute, never here at each request.
		writeThrottled(c, th)
		return
	case errors.As(err, &se):
		code, msg = se.code, se.msg
	case errors.As(err, &he):
		code = he.Code
		if m, ok := he.Message.(string); ok {
			msg = m
		}
		if code >= 500 {
			msg = ""
		}
	default:
		k := ctigate.KindOf(err)
		code = kindStatus[k]
		msg = ctigate.MessageOf(err)
		if k == ctigate.Full && msg == "" {
			msg = storageFull
		}
	}
	if code == 0 {
		code = http.StatusInternalServerError
	}
	body := taxiiError{
		Title:      http.StatusText(code),
		HTTPStatus: strconv.Itoa(code),
	}
	if msg != "" {
		body.Description = msg
	}
	if code >= 500 {
		body.ErrorID = newErrorID()
		s.log.Error("request failed", "error_id", body.ErrorID, "method", c.Request().Method, "path", c.Path(), "err", err)
		switch code {
		case http.StatusServiceUnavailable:
			c.Response().Header().Set("Retry-After", retryUnavailable)
		case http.StatusInsufficientStorage:
			c.Response().Header().Set("Retry-After", retryFull)
		}
	}
	if req := c.Request(); req.ContentLength != 0 {
		// The request came with a body, perhaps unread: closing the
		// connection after the answer spares reading the rest of it, at
		// the client's pace, before answering (as net/http would to keep
		// the connection).
		c.Response().Header().Set("Connection", "close")
	}
	if code == http.StatusUnauthorized {
		h := c.Response().Header()
		h.Set("WWW-Authenticate", `Basic realm="ctigate", charset="UTF-8"`)
		h.Add("WWW-Authenticate", `Bearer realm="ctigate"`)
	}
	if c.Request().Method == http.MethodHead {
		_ = c.NoContent(code)
		return
	}
	if err := writeJSON(c, code, body); err != nil {
		s.log.Error("writing error response", "err", err)
	}
}

// writeThrottled answers a login the throttle refused: 429 when the
// client is over its failure limits, 503 when the gateway has no hash slot
// for it, with Retry-After in whole seconds and a TAXII error message.
func writeThrottled(c echo.Context, th *auth.Throttled) {
	code, msg := http.StatusTooManyRequests, "too many failed logins from this address; retry later"
	if th.Busy {
		code, msg = http.StatusServiceUnavailable, "too many logins at once; retry later"
	}
	secs := max(int64((th.RetryAfter+time.Second-1)/time.Second), 1)
	c.Response().Header().Set("Retry-After", strconv.FormatInt(secs, 10))
	if c.Request().ContentLength != 0 {
		c.Response().Header().Set("Connection", "close") // its body is not read, as for any error (handleError)
	}
	if c.Request().Method == http.MethodHead {
		_ = c.NoContent(code)
		return
	}
	_ = writeJSON(c, code, taxiiError{Title: http.StatusText(code), Description: msg, HTTPStatus: strconv.Itoa(code)})
}

func newErrorID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Errors the handlers share.
var (
	errNotAcceptable = &statusError{http.StatusNotAcceptable, "this endpoint serves application/taxii+json;version=2.1"}
)

func invalidf(format string, args ...any) error {
	return ctigate.E(ctigate.Invalid, "request", fmt.Sprintf(format, args...))
}
