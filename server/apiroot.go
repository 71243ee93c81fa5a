package server

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/ctigate/ctigate"
)

type apiRootResource struct {
	Title            string   `json:"title"`
	Description      string   `json:"description,omitempty"`
	Versions         []string `json:"versions"`
	MaxContentLength int64    `json:"max_content_length"`
}

// getAPIRoot serves GET /{api-root}/ (TAXII 2.1 §4.2).
func (s *Server) getAPIRoot(c echo.Context) error {
	r, err := s.apiRoot(c)
	if err != nil {
		return err
	}
	return writeJSON(c, http.StatusOK, apiRootResource{
		Title:            r.cfg.Title,
		Description:      r.cfg.Description,
		Versions:         []string{taxiiMediaType},
		MaxContentLength: r.cfg.MaxContentLength,
	})
}

func (s *Server) apiRoot(c echo.Context) (*apiRoot, error) {
	r := s.viewOf(c).rootsByID[c.Param("root")]
	if r == nil {
		return nil, ctigate.E("server", ctigate.NotFound, "no such API root")
	}
	return r, nil
}
