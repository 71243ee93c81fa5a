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
		rd, wr := s.viewOf(c).access.CanRead(u, col.cfg.ID), s.viewOf(c).access.CanWrite(u, col.cfg.ID)
		if rd || wr {
			out.Collections = append(out.Collections, col.describe(rd, wr))
		}
	}
	return writeJSON(c, http.StatusOK, out)
}

// getCollection serves GET /{api-root}/collections/{id}/ (TAXII 2.1 §5.2).
func (s *Server) getCollection(c echo.Context) error {
	col, err := s.collection(c, needs{})
	if err != nil {
		return err
	}
	u := userOf(c)
	return writeJSON(c, http.StatusOK, col.describe(s.viewOf(c).access.CanRead(u, col.cfg.ID), s.viewOf(c).access.CanWrite(u, col.cfg.ID)))
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

// needs says what a handler needs of a collection.
type needs struct{ read, write bool }

var (
	errNoCollection = ctigate.E("server", ctigate.NotFound, "no such collection")
	errCannotRead   = ctigate.E("server", ctigate.Forbidden, "you may not read this collection")
	errCannotWrite  = ctigate.E("server", ctigate.Forbidden, "you may not write to this collection")
)

// collection resolves {api-root} and {id} (a collection id or its alias)
// and checks the user's access (package access). A collection the user may
// neither read nor write does not exist for them: 404, the answer for a
// missing one, as TAXII 2.1 §5.7 requires and §5.1–5.8 allow, so that no
// response tells whether it exists. One the user may see but lacks the
// access the handler needs for: 403.
func (s *Server) collection(c echo.Context, need needs) (*collection, error) {
	r, err := s.apiRoot(c)
	if err != nil {
		return nil, err
	}
	col := r.byKey[c.Param("collection")]
	if col == nil {
		return nil, errNoCollection
	}
	u := userOf(c)
	rd, wr := s.viewOf(c).access.CanRead(u, col.cfg.ID), s.viewOf(c).access.CanWrite(u, col.cfg.ID)
	switch {
	case !rd && !wr:
		return nil, errNoCollection
	case need.read && !rd:
		return nil, errCannotRead
	case need.write && !wr:
		return nil, errCannotWrite
	}
	return col, nil
}
