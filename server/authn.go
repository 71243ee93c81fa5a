package server

import (
	"encoding/base64"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/ctigate/ctigate"
	"github.com/ctigate/ctigate/auth"
)

const userKey = "ctigate.user"

var errNoCredentials = ctigate.E("authenticate", ctigate.Unauthorized, "authentication required (HTTP Basic or Bearer token)")

// authenticate resolves the Authorization header to a user: HTTP Basic,
// or a bearer token ("Bearer" or, as taxii2-client sends it, "Token").
func (s *Server) authenticate(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		h := c.Request().Header.Get("Authorization")
		scheme, cred, _ := strings.Cut(h, " ")
		cred = strings.TrimSpace(cred)
		var (
			u   *auth.User
			err error
		)
		switch strings.ToLower(scheme) {
		case "basic":
			raw, derr := base64.StdEncoding.DecodeString(cred)
			name, pass, ok := strings.Cut(string(raw), ":")
			if derr != nil || !ok {
				return ctigate.E("authenticate", ctigate.Unauthorized, "malformed Basic credentials")
			}
			u, err = s.basicLogin(c, name, pass)
		case "bearer", "token":
			u, err = s.auth.Bearer(cred)
		default:
			return errNoCredentials
		}
		if err != nil {
			return err
		}
		c.Set(userKey, u)
		return next(c)
	}
}

func userOf(c echo.Context) *auth.User {
	u, _ := c.Get(userKey).(*auth.User)
	return u
}

// recoverPanics turns a panic in a handler into a 500 without detail.
func (s *Server) recoverPanics(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) (err error) {
		defer func() {
			if r := recover(); r != nil {
				if r == http.ErrAbortHandler {
					panic(r)
				}
				s.log.Error("panic in handler", "path", c.Path(), "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
				err = ctigate.E("server", ctigate.Internal, fmt.Errorf("panic: %v", r))
			}
		}()
		return next(c)
	}
}

// accessLog writes one line per request: who and from which address
// (c.RealIP(): the peer, or the address trusted proxies forwarded), which
// route, status, size, duration. Never credentials, never content.
func (s *Server) accessLog(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := s.now()
		err := next(c)
		if err != nil {
			c.Error(err)
		}
		req, res := c.Request(), c.Response()
		attrs := []slog.Attr{
			slog.String("method", req.Method),
			slog.String("route", c.Path()),
			slog.Int("status", res.Status),
			slog.Int64("bytes", res.Size),
			slog.Duration("duration", time.Since(start)),
			slog.String("client", c.RealIP()),
		}
		if u := userOf(c); u != nil {
			attrs = append(attrs, slog.String("user", u.Name), slog.String("org", u.Organisation))
		}
		s.log.LogAttrs(req.Context(), slog.LevelInfo, "request", attrs...)
		return nil
	}
}
