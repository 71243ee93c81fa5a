package server

import (
	"strings"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
)

// routeTable lists the whole HTTP surface.
func (s *Server) routeTable() *echo.Echo {
	e := echo.New()
	e.HideBanner = true
	e.HidePort = true
	e.HTTPErrorHandler = s.handleError
	e.IPExtractor = s.clientIP // c.RealIP(): the client's address by trusted_proxies

	// TAXII paths end in "/" (TAXII 2.1 §3.1); accept them without it too.
	e.Pre(middleware.AddTrailingSlashWithConfig(middleware.TrailingSlashConfig{
		Skipper: func(c echo.Context) bool { return !isTAXIIPath(c.Request().URL.Path) },
	}))
	e.Use(s.traceRequests) // spans and request metrics (telemetry.go)
	e.Use(s.recoverPanics, s.accessLog)

	// Operations: no authentication, no content.
	e.GET("/healthz", s.healthz)
	e.GET("/readyz", s.readyz)

	// TAXII 2.1 (OASIS Standard, sections 4 and 5).
	t := []echo.MiddlewareFunc{s.authenticate, s.negotiate}
	e.GET("/taxii2/", s.getDiscovery, t...)
	e.GET("/:root/", s.getAPIRoot, t...)
	e.GET("/:root/status/:status/", s.getStatus, t...)
	e.GET("/:root/collections/", s.getCollections, t...)
	e.GET("/:root/collections/:collection/", s.getCollection, t...)
	e.GET("/:root/collections/:collection/manifest/", s.getManifest, t...)
	e.GET("/:root/collections/:collection/objects/", s.getObjects, t...)
	e.POST("/:root/collections/:collection/objects/", s.addObjects, t...)
	e.GET("/:root/collections/:collection/objects/:object/", s.getObject, t...)
	e.DELETE("/:root/collections/:collection/objects/:object/", s.deleteObject, t...)
	e.GET("/:root/collections/:collection/objects/:object/versions/", s.getVersions, t...)

	// Decisions, read from the custody ledger (policy admins and auditors; plain JSON).
	e.GET("/api/v1/decisions", s.getDecisions, s.authenticate)

	// What routes decided about a request's objects (its requester and the
	// collection's writers; plain JSON).
	e.GET("/api/v1/statuses/:status/decisions", s.getFeedback, s.authenticate)

	// What left a collection (its readers; plain JSON).
	e.GET("/api/v1/collections/:collection/withdrawn", s.getWithdrawn, s.authenticate)

	// Route dry run (producers and policy admins; plain JSON).
	e.POST("/api/v1/routes/:route/dry-run", s.postDryRun, s.authenticate)

	// Custody ledger (auditors; hashes and metadata, no content).
	e.GET("/api/v1/audit/entries", s.getLedgerEntries, s.authenticate)
	e.GET("/api/v1/audit/export", s.getLedgerExport, s.authenticate)
	e.GET("/api/v1/audit/evidence/:object", s.getEvidence, s.authenticate)

	// Analyst API: observable search across the collections the caller
	// may read (plain JSON), and its OpenAPI 3 description.
	e.GET("/api/v1/search", s.getSearch, s.authenticate)
	e.GET("/api/v1/openapi.json", s.getOpenAPI)
	return e
}

func isTAXIIPath(p string) bool {
	return p != "/healthz" && p != "/readyz" && !strings.HasPrefix(p, "/api/v1/") && !strings.HasSuffix(p, "/") && p != ""
}
