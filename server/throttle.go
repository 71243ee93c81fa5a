package server

import (
	"context"
	"errors"
	"net/http"
	"net/netip"
	"strconv"
	"unicode/utf8"

	"github.com/labstack/echo/v4"

	"github.com/ctigate/ctigate"
	"github.com/ctigate/ctigate/auth"
	"github.com/ctigate/ctigate/config"
)

// maxLoggedUser is how many bytes of a user name a throttling log line
// shows: the name comes from the client, so it is cut and escaped.
const maxLoggedUser = 64

// basicLogin checks a Basic user name and password through the login
// throttle (auth.Throttle, limits from the auth section of the
// configuration in force): a client over its failure limits is refused
// (429) before anything is looked at, and the password hash, when it
// must be verified, waits for a slot the throttle grants fairly between
// addresses (or is refused, 503, when they stay busy).
func (s *Server) basicLogin(c echo.Context, name, password string) (*auth.User, error) {
	cfg := s.view().cfg
	s.throttleLimits(cfg)
	req := c.Request()
	addr := s.loginAddr(c)
	att, err := s.throttle.Begin(name, addr)
	if err != nil {
		s.throttled(req.Context(), err, name, addr)
		return nil, err
	}
	outcome := auth.LoginErrored
	defer func() { att.Done(outcome) }() // even on a panic: it holds a hash slot and its address's turn
	u, err := s.auth.Basic(auth.WithHashGate(req.Context(), att.Gate), name, password)
	switch {
	case err == nil:
		outcome = auth.LoginSucceeded
	case ctigate.KindOf(err) == ctigate.Unauthorized:
		outcome = auth.LoginFailed
	default:
		att.Done(outcome) // before a refusal is held back (Hold): nothing to keep meanwhile
		s.throttled(req.Context(), err, name, addr)
	}
	return u, err
}

// throttleLimits puts the auth limits of cfg in force when cfg is not the
// configuration they were last taken from (a reload changes them from the
// next login on).
func (s *Server) throttleLimits(cfg *config.Config) {
	if s.throttleCfg.Load() == cfg {
		return
	}
	s.throttle.SetLimits(cfg.Auth.Limits())
	s.throttleCfg.Store(cfg)
}

// throttled counts a refusal of the login throttle (err, if it is one)
// and logs it when it is the first of its client in a while: one line per
// client and minute, not one per request, however fast it retries. Later
// refusals are held back a moment (auth.Throttle.Hold).
func (s *Server) throttled(ctx context.Context, err error, user string, addr netip.Addr) {
	var th *auth.Throttled
	if !errors.As(err, &th) {
		return
	}
	s.metrics.Throttled(ctx, th.Reason)
	if th.First {
		s.log.WarnContext(ctx, "login throttled", "address", addr.String(), "user", loggableUser(user),
			"reason", th.Reason, "retry_after", th.RetryAfter)
	}
	s.throttle.Hold(ctx, th)
}

// loggableUser is a user name fit for a log line: at most maxLoggedUser
// bytes of it (not cutting a UTF-8 sequence), with quotes, backslashes,
// control characters, invalid UTF-8 and anything not ASCII escaped as in
// a Go string literal, and "…" appended when it was cut.
func loggableUser(name string) string {
	cut := false
	if len(name) > maxLoggedUser {
		i := maxLoggedUser
		for i > maxLoggedUser-utf8.UTFMax && i > 0 && !utf8.RuneStart(name[i]) {
			i--
		}
		name, cut = name[:i], true
	}
	q := strconv.QuoteToASCII(name)
	q = q[1 : len(q)-1]
	if cut {
		q += "..."
	}
	return q
}

// loginAddr is the client address a login is counted under: echo's
// RealIP, which the server's IPExtractor (clientip.go) makes the
// connection's peer, or the client behind one of the configured
// trusted_proxies; without an IPExtractor, the peer. Never a header from
// an untrusted peer: a client could otherwise choose the address its
// guesses count against, and make them count against someone else's.
func (s *Server) loginAddr(c echo.Context) netip.Addr {
	if s.echo != nil && s.echo.IPExtractor != nil {
		if a, err := netip.ParseAddr(c.RealIP()); err == nil {
			return a.Unmap()
		}
	}
	return remoteAddr(c.Request())
}

// remoteAddr is the address of the request's peer (the zero Addr when it
// has none, as on a Unix socket).
func remoteAddr(req *http.Request) netip.Addr {
	if ap, err := netip.ParseAddrPort(req.RemoteAddr); err == nil {
		return ap.Addr().Unmap()
	}
	if a, err := netip.ParseAddr(req.RemoteAddr); err == nil {
		return a.Unmap()
	}
	return netip.Addr{}
}
