package server

import (
	"net/http"

	"github.com/labstack/echo/v4"
)

type discoveryResource struct {
	Title       string   `json:"title"`
	Description string   `json:"description,omitempty"`
	Contact     string   `json:"contact,omitempty"`
	Default     string   `json:"default,omitempty"`
	APIRoots    []string `json:"api_roots,omitempty"`
}

// getDiscovery serves GET /taxii2/ (TAXII 2.1 §4.1).
func (s *Server) getDiscovery(c echo.Context) error {
	d := discoveryResource{
		Title:       s.viewOf(c).discovery.Title,
		Description: s.viewOf(c).discovery.Description,
		Contact:     s.viewOf(c).discovery.Contact,
	}
	if d.Title == "" {
		d.Title = "ctigate"
	}
	if s.viewOf(c).discovery.Default != "" {
		d.Default = "/" + s.viewOf(c).discovery.Default + "/"
	}
	for _, r := range s.viewOf(c).roots {
		d.APIRoots = append(d.APIRoots, "/"+r.cfg.Name+"/")
	}
	return writeJSON(c, http.StatusOK, d)
}
