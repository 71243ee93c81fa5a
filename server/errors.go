package server

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"

	"github.com/ctigate/ctigate"
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
}

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
	)
	switch {
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
		if code == http.StatusServiceUnavailable {
			c.Response().Header().Set("Retry-After", "5")
		}
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
