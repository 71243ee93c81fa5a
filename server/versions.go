package server

import (
	"bytes"

	"github.com/labstack/echo/v4"

	"github.com/ctigate/ctigate/store"
)

// getVersions serves GET …/objects/{object-id}/versions/ (TAXII 2.1 §5.8).
func (s *Server) getVersions(c echo.Context) error {
	col, err := s.collection(c, access{read: true})
	if err != nil {
		return err
	}
	q, err := s.parseQuery(c.QueryParams(), paramsVersions)
	if err != nil {
		return err
	}
	id := c.Param("object")
	q.IDs = []string{id}
	q.Versions = []store.VersionMatch{{Kind: store.All}}
	q.WithoutRaw = true
	page, err := s.store.Objects(c.Request().Context(), col.cfg.ID, q)
	if err != nil {
		return err
	}
	if len(page.Objects) == 0 && !page.More {
		if err := s.mustExist(c, col, id); err != nil {
			return err
		}
	}
	return writePage(c, page, "versions", func(b *bytes.Buffer, o *store.Object) {
		b.WriteByte('"')
		b.WriteString(versionString(o))
		b.WriteByte('"')
	})
}
