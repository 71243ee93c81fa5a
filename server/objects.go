package server

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/ctigate/ctigate"
	"github.com/ctigate/ctigate/gateway"
	"github.com/ctigate/ctigate/store"
	"github.com/ctigate/ctigate/telemetry"
)

// getObjects serves GET …/collections/{id}/objects/ (TAXII 2.1 §5.4).
func (s *Server) getObjects(c echo.Context) error {
	_, page, done, err := s.readPage(c, paramsObjects, nil)
	if err != nil {
		return err
	}
	defer done()
	s.served(c, len(page.Objects))
	return s.writePage(c, page, rawItems)
}

// readPage is the common part of the read endpoints: it resolves the
// collection for reading, parses the endpoint's filters, lets adjust fix
// some of them, and reads one page, admitted first (admission.go) and
// recorded as delivered before it is returned. The caller calls done once
// the response is written (or failed), giving the page's memory back to
// the admission budget and to the store (store.Page.Release): nothing of
// the page may be used after done.
func (s *Server) readPage(c echo.Context, allow params, adjust func(*store.Query)) (col *collection, page store.Page, done func(), err error) {
	col, err = s.collection(c, needs{read: true})
	if err != nil {
		return nil, store.Page{}, nil, err
	}
	q, err := s.parseQuery(s.viewOf(c).paging, c.QueryParams(), allow)
	if err != nil {
		return nil, store.Page{}, nil, err
	}
	if adjust != nil {
		adjust(&q)
	}
	p, err := s.admitRead(c, col.cfg.ID, &q)
	if err != nil {
		return nil, store.Page{}, nil, refused(c, err)
	}
	defer func() {
		if err != nil {
			p.release()
		}
	}()
	d, page, err := s.readTurn(c, p, col, &q)
	if err != nil {
		return col, store.Page{}, nil, err
	}
	// The durable write waits outside the turn: it needs no processor,
	// and the delivered entries of pages read meanwhile share its commit.
	if err = s.record(c, d); err != nil {
		return col, store.Page{}, nil, err
	}
	return col, page, func() {
		if writesDone(c) {
			page.Release()
		}
		p.release()
	}, nil
}

// readTurn reads the page admitted by p and makes its delivered entry
// ready, in the page's turn (admission.go): the processor's part of a
// read.
func (s *Server) readTurn(c echo.Context, p *permit, col *collection, q *store.Query) (*delivery, store.Page, error) {
	turn, err := p.read(c.Request().Context())
	if err != nil {
		return nil, store.Page{}, err
	}
	defer turn()
	sctx, span := s.tracer.Start(c.Request().Context(), spanStoreRead)
	page, err := s.store.Objects(sctx, col.cfg.ID, *q)
	telemetry.EndSpan(span, err)
	if err != nil {
		s.metrics.StoreError(c.Request().Context(), "objects")
		return nil, store.Page{}, err
	}
	if err = s.settle(c, p, col.cfg.ID, q, &page); err != nil {
		return nil, store.Page{}, refused(c, err)
	}
	d, err := s.prepareDelivery(c, col, q, &page)
	if err != nil {
		return nil, store.Page{}, err
	}
	return d, page, nil
}

// readObjectPage is readPage for the endpoints of one object: 404 when the
// collection holds no version of it, an empty page when it does but the
// filters select none.
func (s *Server) readObjectPage(c echo.Context, allow params, adjust func(*store.Query)) (store.Page, func(), error) {
	id := c.Param("object")
	col, page, done, err := s.readPage(c, allow, func(q *store.Query) {
		q.IDs = []string{id}
		if adjust != nil {
			adjust(q)
		}
	})
	if err != nil {
		return page, nil, err
	}
	if len(page.Objects) == 0 && !page.More {
		if err := s.mustExist(c, col, id); err != nil {
			done()
			return page, nil, err
		}
	}
	return page, done, nil
}

// getObject serves GET …/objects/{object-id}/ (TAXII 2.1 §5.6).
func (s *Server) getObject(c echo.Context) error {
	page, done, err := s.readObjectPage(c, paramsObject, nil)
	if err != nil {
		return err
	}
	defer done()
	s.served(c, len(page.Objects))
	return s.writePage(c, page, rawItems)
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
	body, err := s.readBody(c, col.root.cfg.MaxContentLength)
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
	s.noteUnrecorded(c, col, u.Name, out)
	s.metrics.Ingest(req.Context(), u.Organisation, out.Received, len(out.Status.Successes), out.Rejected)
	return writeJSON(c, http.StatusAccepted, statusOf(out.Status))
}

// readBody reads the request body of c, of at most limit bytes: 413
// above it. It must arrive at the rate server.min_body_rate sets (408
// otherwise).
func (s *Server) readBody(c echo.Context, limit int64) ([]byte, error) {
	r := c.Request()
	tooLarge := ctigate.E("server", ctigate.TooLarge,
		fmt.Sprintf("request body is larger than this API root's max_content_length (%d bytes)", limit))
	if r.ContentLength > limit {
		return nil, tooLarge
	}
	n := r.ContentLength
	if n < 0 || n > limit {
		n = 0
	}
	var body io.Reader = r.Body
	if l := s.viewOf(c).cfg.Server; l.MinBodyRate > 0 {
		body = newRateReader(r.Body, controllerOf(r), l, time.Now)
	}
	buf := bytes.NewBuffer(make([]byte, 0, n+1))
	if _, err := buf.ReadFrom(io.LimitReader(body, limit+1)); err != nil {
		var se *statusError
		if errors.As(err, &se) {
			return nil, se
		}
		return nil, ctigate.E("server", ctigate.Invalid, err, "reading request body failed")
	}
	if int64(buf.Len()) > limit {
		return nil, tooLarge
	}
	return buf.Bytes(), nil
}
