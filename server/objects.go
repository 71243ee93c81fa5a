package server

import (
	"bytes"
	"fmt"
	"io"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/ctigate/ctigate"
	"github.com/ctigate/ctigate/gateway"
	"github.com/ctigate/ctigate/store"
	"github.com/ctigate/ctigate/telemetry"
)

// getObjects serves GET …/collections/{id}/objects/ (TAXII 2.1 §5.4).
func (s *Server) getObjects(c echo.Context) error {
	_, page, err := s.readPage(c, paramsObjects, nil)
	if err != nil {
		return err
	}
	s.served(c, len(page.Objects))
	return writePage(c, page, "objects", writeRaw)
}

// readPage is the common part of the read endpoints: it resolves the
// collection for reading, parses the endpoint's filters, lets adjust fix
// some of them, and reads one page.
func (s *Server) readPage(c echo.Context, allow params, adjust func(*store.Query)) (*collection, store.Page, error) {
	col, err := s.collection(c, needs{read: true})
	if err != nil {
		return nil, store.Page{}, err
	}
	q, err := s.parseQuery(s.viewOf(c).paging, c.QueryParams(), allow)
	if err != nil {
		return nil, store.Page{}, err
	}
	if adjust != nil {
		adjust(&q)
	}
	sctx, span := s.tracer.Start(c.Request().Context(), spanStoreRead)
	page, err := s.store.Objects(sctx, col.cfg.ID, q)
	telemetry.EndSpan(span, err)
	if err != nil {
		s.metrics.StoreError(c.Request().Context(), "objects")
		return col, page, err
	}
	return col, page, s.recordDelivery(c, col, &q, &page)
}

// readObjectPage is readPage for the endpoints of one object: 404 when the
// collection holds no version of it, an empty page when it does but the
// filters select none.
func (s *Server) readObjectPage(c echo.Context, allow params, adjust func(*store.Query)) (store.Page, error) {
	id := c.Param("object")
	col, page, err := s.readPage(c, allow, func(q *store.Query) {
		q.IDs = []string{id}
		if adjust != nil {
			adjust(q)
		}
	})
	if err != nil {
		return page, err
	}
	if len(page.Objects) == 0 && !page.More {
		if err := s.mustExist(c, col, id); err != nil {
			return page, err
		}
	}
	return page, nil
}

func writeRaw(b *bytes.Buffer, o *store.Object) { b.Write(o.Raw) }

// getObject serves GET …/objects/{object-id}/ (TAXII 2.1 §5.6).
func (s *Server) getObject(c echo.Context) error {
	page, err := s.readObjectPage(c, paramsObject, nil)
	if err != nil {
		return err
	}
	s.served(c, len(page.Objects))
	return writePage(c, page, "objects", writeRaw)
}

var errNoObject = ctigate.E("server", ctigate.NotFound, "no such object in this collection")

// mustExist returns NotFound unless the collection holds a version of id.
func (s *Server) mustExist(c echo.Context, col *collection, id string) error {
	p, err := s.store.Objects(c.Request().Context(), col.cfg.ID, store.Query{
		IDs: []string{id}, Versions: []store.VersionMatch{{Kind: store.All}}, Limit: 1, WithoutRaw: true,
	})
	if err != nil {
		return err
	}
	if len(p.Objects) == 0 {
		return errNoObject
	}
	return nil
}

// deleteObject serves DELETE …/objects/{object-id}/ (TAXII 2.1 §5.7).
func (s *Server) deleteObject(c echo.Context) error {
	col, err := s.collection(c, needs{})
	if err != nil {
		return err
	}
	u := userOf(c)
	if !s.viewOf(c).access.CanDelete(u, col.cfg.ID) {
		return ctigate.E("server", ctigate.Forbidden, "deleting needs read and write access to the collection")
	}
	q, err := s.parseQuery(s.viewOf(c).paging, c.QueryParams(), paramsDelete)
	if err != nil {
		return err
	}
	versions := q.Versions
	if len(versions) == 0 {
		versions = []store.VersionMatch{{Kind: store.All}}
	}
	id := c.Param("object")
	ctx := store.WithActor(c.Request().Context(), store.Actor{User: u.Name, Org: u.Organisation})
	n, err := s.store.DeleteObject(ctx, col.cfg.ID, id, versions, q.SpecVersions)
	if err != nil {
		return err
	}
	s.log.Info("object deleted", "collection", col.cfg.ID, "id", id, "versions", n, "user", u.Name)
	if s.onIngest != nil {
		s.onIngest(col.cfg.ID) // fan-out withdraws what routes published from it
	}
	return writeBody(c, http.StatusOK, nil)
}

// addObjects serves POST …/collections/{id}/objects/ (TAXII 2.1 §5.5).
// Ingest is synchronous (gateway.Ingester): the status returned is
// complete. One invalid object fails only itself.
func (s *Server) addObjects(c echo.Context) error {
	col, err := s.collection(c, needs{write: true})
	if err != nil {
		return err
	}
	req := c.Request()
	if err := checkContentType(req); err != nil {
		return err
	}
	body, err := readBody(req, col.root.cfg.MaxContentLength)
	if err != nil {
		return err
	}
	u := userOf(c)
	out, err := s.viewOf(c).ingest.Ingest(req.Context(), gateway.Actor{User: u.Name, Org: u.Organisation},
		gateway.Target{APIRoot: col.root.cfg.Name, Collection: col.cfg.ID}, body)
	if err != nil {
		if out.Failed != "" {
			s.metrics.StoreError(req.Context(), out.Failed)
		}
		return err
	}
	s.metrics.Ingest(req.Context(), u.Organisation, out.Received, len(out.Status.Successes), out.Rejected)
	return writeJSON(c, http.StatusAccepted, statusOf(out.Status))
}

// readBody reads a request body of at most limit bytes: 413 above it.
func readBody(r *http.Request, limit int64) ([]byte, error) {
	tooLarge := ctigate.E("server", ctigate.TooLarge,
		fmt.Sprintf("request body is larger than this API root's max_content_length (%d bytes)", limit))
	if r.ContentLength > limit {
		return nil, tooLarge
	}
	n := r.ContentLength
	if n < 0 || n > limit {
		n = 0
	}
	buf := bytes.NewBuffer(make([]byte, 0, n+1))
	if _, err := buf.ReadFrom(io.LimitReader(r.Body, limit+1)); err != nil {
		return nil, ctigate.E("server", ctigate.Invalid, err, "reading request body failed")
	}
	if int64(buf.Len()) > limit {
		return nil, tooLarge
	}
	return buf.Bytes(), nil
}
