package server

import (
	"bytes"

	"github.com/labstack/echo/v4"

	"github.com/ctigate/ctigate/gateway"
	"github.com/ctigate/ctigate/store"
)

// getVersions serves GET …/objects/{object-id}/versions/ (TAXII 2.1 §5.8).
func (s *Server) getVersions(c echo.Context) error {
	page, done, err := s.readObjectPage(c, paramsVersions, func(q *store.Query) {
		q.Versions = []store.VersionMatch{{Kind: store.All}}
		q.WithoutRaw = true
	})
	if err != nil {
		return err
	}
	defer done()
	return s.writePage(c, page, pageItems{member: "versions", write: func(b *bytes.Buffer, o *store.Object) {
		b.WriteByte('"')
		b.WriteString(gateway.VersionString(o))
		b.WriteByte('"')
	}})
}
