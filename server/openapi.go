package server

import (
	_ "embed"
	"net/http"

	"github.com/labstack/echo/v4"
)

// openAPI describes the /api/v1 endpoints (OpenAPI 3).
//
//go:embed openapi.json
var openAPI []byte

// getOpenAPI serves the OpenAPI description of /api/v1. It holds no
// content, so it needs no authentication.
func (s *Server) getOpenAPI(c echo.Context) error {
	c.Response().Header().Set("X-Content-Type-Options", "nosniff")
	return c.Blob(http.StatusOK, echo.MIMEApplicationJSON, openAPI)
}
