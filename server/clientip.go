package server

import (
	"net"
	"net/http"

	"github.com/labstack/echo/v4"
)

// clientIP is the echo IPExtractor (what echo.Context.RealIP returns, to
// the access log and to any middleware): the client's address under the
// trusted_proxies of the configuration in force.
func (s *Server) clientIP(r *http.Request) string {
	if s.current == nil {
		return echo.ExtractIPDirect()(r) // a Server not made by New (route-table tests)
	}
	return s.view().clientIP(r)
}

// ipExtractor returns the client address of a request: the direct peer's;
// or, when the peer is one of the trusted proxies, the right-most
// X-Forwarded-For address that is not itself a trusted proxy. Only the
// configured ranges are trusted (not, as echo would by default, every
// loopback, link-local and private address).
func ipExtractor(trusted []*net.IPNet) echo.IPExtractor {
	if len(trusted) == 0 {
		return echo.ExtractIPDirect()
	}
	opts := []echo.TrustOption{echo.TrustLoopback(false), echo.TrustLinkLocal(false), echo.TrustPrivateNet(false)}
	for _, n := range trusted {
		opts = append(opts, echo.TrustIPRange(n))
	}
	return echo.ExtractIPFromXFFHeader(opts...)
}
