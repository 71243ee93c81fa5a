package server

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/ctigate/ctigate"
)

type collectionResource struct {
	ID          string   `json:"id"`
	Title       string   `json:"title"`
	Description string   `json:"description,omitempty"`
	Alias       string   `json:"alias,omitempty"`
	CanRead     bool     `json:"can_read"`
	CanWrite    bool     `json:"can_write"`
	MediaTypes  []string `json:"media_types"`
}

type collectionsResource struct {
	Collections []collectionResource `json:"collections,omitempty"`
}

// getCollections serves GET /{api-root}/collections/ (TAXII 2.1 §5.1),
// listing only the collections the user may read or write.
func (s *Server) getCollections(c echo.Context) error {
	r, err := s.apiRoot(c)
	if err != nil {
		return err
	}
	u := userOf(c)
	var out collectionsResource
	for _, col := range r.collections {
		rd, wr := col.canRead(u), col.canWrite(u)
		if rd || wr {
			out.Collections = append(out.Collections, col.describe(rd, wr))
		}
	}
	return writeJSON(c, http.StatusOK, out)
}

// getCollection serves GET /{api-root}/collections/{id}/ (TAXII 2.1 §5.2).
func (s *Server) getCollection(c echo.Context) error {
	col, err := s.collection(c, access{})
	if err != nil {
		return err
	}
	u := userOf(c)
	return writeJSON(c, http.StatusOK, col.describe(col.canRead(u), col.canWrite(u)))
}

func (col *collection) describe(canRead, canWrite bool) collectionResource {
	return collectionResource{
		ID:          col.cfg.ID,
		Title:       col.cfg.Title,
		Description: col.cfg.Description,
		Alias:       col.cfg.Alias,
		CanRead:     canRead,
		CanWrite:    canWrite,
		MediaTypes:  []string{stixMediaType},
	}
}

// access says what a handler needs of a collection.
type access struct{ read, write bool }

var (
	errNoCollection = ctigate.E("server", ctigate.NotFound, "no such collection")
	errCannotRead   = ctigate.E("server", ctigate.Forbidden, "you may not read this collection")
	errCannotWrite  = ctigate.E("server", ctigate.Forbidden, "you may not write to this collection")
	errNoAccess     = ctigate.E("server", ctigate.Forbidden, "you have no access to this collection")
)

// collection resolves {api-root} and {id} (a collection id or its alias)
// and checks the user's access: 403 when the user may neither read nor
// write it, or lacks the access the handler needs.
func (s *Server) collection(c echo.Context, need access) (*collection, error) {
	r, err := s.apiRoot(c)
	if err != nil {
		return nil, err
	}
	col := r.byKey[c.Param("collection")]
	if col == nil {
		return nil, errNoCollection
	}
	u := userOf(c)
	rd, wr := col.canRead(u), col.canWrite(u)
	switch {
	case !rd && !wr:
		return nil, errNoAccess
	case need.read && !rd:
		return nil, errCannotRead
	case need.write && !wr:
		return nil, errCannotWrite
	}
	return col, nil
}
