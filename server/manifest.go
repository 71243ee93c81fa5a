package server

import (
	"bytes"
	"strconv"

	"github.com/labstack/echo/v4"

	"github.com/ctigate/ctigate/gateway"
	"github.com/ctigate/ctigate/store"
)

// getManifest serves GET …/collections/{id}/manifest/ (TAXII 2.1 §5.3).
func (s *Server) getManifest(c echo.Context) error {
	_, page, done, err := s.readPage(c, paramsObjects, func(q *store.Query) { q.WithoutRaw = true })
	if err != nil {
		return err
	}
	defer done()
	return s.writePage(c, page, pageItems{member: "objects", write: writeManifestRecord})
}

func writeManifestRecord(b *bytes.Buffer, o *store.Object) {
	b.WriteString(`{"id":`)
	b.WriteString(strconv.Quote(o.ID))
	b.WriteString(`,"date_added":"`)
	b.WriteString(formatDateAdded(o.DateAdded))
	b.WriteString(`","version":"`)
	b.WriteString(gateway.VersionString(o))
	b.WriteString(`","media_type":"` + stixMediaType + `"}`)
}
