package server

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/ctigate/ctigate"
	"github.com/ctigate/ctigate/custody"
	"github.com/ctigate/ctigate/stix"
	"github.com/ctigate/ctigate/store"
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
	q, err := s.parseQuery(c.QueryParams(), allow)
	if err != nil {
		return nil, store.Page{}, err
	}
	if adjust != nil {
		adjust(&q)
	}
	sctx, span := s.tracer.Start(c.Request().Context(), spanStoreRead)
	page, err := s.store.Objects(sctx, col.cfg.ID, q)
	endSpan(span, err)
	if err != nil {
		s.metrics.StoreError(c.Request().Context(), "objects")
		return col, page, err
	}
	return col, page, s.recordDelivery(c, col, &page)
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
	if !s.access.CanDelete(u, col.cfg.ID) {
		return ctigate.E("server", ctigate.Forbidden, "deleting needs read and write access to the collection")
	}
	q, err := s.parseQuery(c.QueryParams(), paramsDelete)
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
	return writeBody(c, http.StatusOK, nil)
}

// addObjects serves POST …/collections/{id}/objects/ (TAXII 2.1 §5.5).
// Ingest is synchronous: the status returned is complete. One invalid
// object fails only itself.
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
	received := s.now().UTC()
	_, span := s.tracer.Start(req.Context(), spanDecode)
	items, err := stix.DecodeEnvelope(body)
	span.SetAttributes(attrObjects.Int(len(items)))
	endSpan(span, err)
	if err != nil {
		return err
	}
	org := userOf(c).Organisation
	rejectCounts := map[string]int{} // by reason, for the metrics

	st := store.Status{
		ID:               uuid.NewString(),
		APIRoot:          col.root.cfg.Name,
		Collection:       col.cfg.ID,
		Owner:            userOf(c).Name,
		Status:           "complete",
		RequestTimestamp: received,
		TotalCount:       len(items),
	}
	// Marking definitions join the registry first, so that an object may
	// refer to one defined later in the same envelope (as policy check and
	// fan-out read them).
	refused := map[int]error{}
	_, span = s.tracer.Start(req.Context(), spanMarkings)
	for i := range items {
		if it := &items[i]; it.Err == nil && it.Object.Type == "marking-definition" {
			if err := s.markings.Of(org).Add(it.Raw); err != nil && ctigate.KindOf(err) != ctigate.Unsupported {
				refused[i] = err
			}
		}
	}
	guard := s.newRouteGuard(c.Request().Context(), col, userOf(c).Organisation)
	actor := store.Actor{User: userOf(c).Name, Org: userOf(c).Organisation}
	var rejected []custody.Entry // what the ledger records of the failures
	objs := make([]store.Object, 0, len(items))
	notes := make([]string, 0, len(items)) // how the gateway read each object's markings
	for i := range items {
		it := &items[i]
		if it.Err == nil {
			it.Err = refused[i]
		}
		if it.Err != nil {
			st.Failures = append(st.Failures, store.StatusDetail{
				ID: failureID(it), Version: it.Version, Message: ctigate.MessageOf(it.Err),
			})
			rejectCounts[rejectReason(it.Err)]++
			rejected = append(rejected, rejectedEntry(actor, col, st.ID, failureID(it), it.Version, it.Raw, it.Err))
			continue
		}
		o, note, err := s.admit(it, s.markings.Of(org), guard)
		if err != nil {
			st.Failures = append(st.Failures, store.StatusDetail{ID: it.ID, Version: it.Version, Message: ctigate.MessageOf(err)})
			rejectCounts[rejectReason(err)]++
			rejected = append(rejected, rejectedEntry(actor, col, st.ID, it.ID, it.Version, it.Raw, err))
			continue
		}
		o.Producer = userOf(c).Organisation
		objs = append(objs, o)
		notes = append(notes, note)
	}
	span.End()
	// Rejections are recorded before what is stored, so that they precede
	// the decisions fan-out makes about the rest of the envelope.
	if s.ledger != nil && len(rejected) > 0 {
		if _, err := s.ledger.AppendEntries(req.Context(), rejected); err != nil {
			return err
		}
		rejected = rejected[:0]
	}
	if len(objs) > 0 {
		sctx, span := s.tracer.Start(store.WithActor(req.Context(), actor), spanStoreAdd)
		span.SetAttributes(attrObjects.Int(len(objs)))
		res, err := s.store.AddObjects(sctx, col.cfg.ID, objs)
		endSpan(span, err)
		if err != nil {
			s.metrics.StoreError(req.Context(), "add_objects")
			return err
		}
		s.ingestSpan(req.Context(), col.cfg.ID, res) // before waking fan-out, so that it can link to this request
		if s.onIngest != nil && slices.ContainsFunc(res, func(r store.AddResult) bool { return !r.Existed }) {
			s.onIngest(col.cfg.ID)
		}
		for j, r := range res {
			o := &objs[j]
			d := store.StatusDetail{ID: o.ID, Version: versionString(&store.Object{Version: o.Version, DateAdded: r.DateAdded})}
			// The message is the producer's receipt: how the gateway read
			// the markings, and the SHA-256 of the RFC 8785 canonical form
			// of what is stored.
			switch {
			case !r.Existed:
				d.Message = fmt.Sprintf("added; %s; sha256 %x", notes[j], o.Hash)
			case r.Hash == o.Hash || r.Hash == ([32]byte{}):
				d.Message = fmt.Sprintf("already stored; %s; sha256 %x", notes[j], o.Hash)
			default:
				// Same id and modified, different content: STIX requires a
				// new modified for every change, and the evidence already
				// stored must not be silently shadowed.
				d.Message = fmt.Sprintf("conflict: a different object with this id and version is already stored (sha256 %x); "+
					"change modified to publish a new version", r.Hash)
				st.Failures = append(st.Failures, d)
				rejectCounts["conflict"]++
				e := rejectedEntry(actor, col, st.ID, o.ID, d.Version, nil, nil)
				e.SHA256, e.Reason = custody.HexHash(o.Hash), "conflict"
				e.Detail += fmt.Sprintf("; a different object with this id and version is stored (sha256 %x)", r.Hash)
				rejected = append(rejected, e)
				continue
			}
			st.Successes = append(st.Successes, d)
		}
	}
	if s.ledger != nil && len(rejected) > 0 {
		if _, err := s.ledger.AppendEntries(req.Context(), rejected); err != nil {
			return err
		}
	}
	s.metrics.Ingest(req.Context(), org, len(items), len(st.Successes), rejectCounts)
	sctx, span := s.tracer.Start(req.Context(), spanStoreStat)
	err = s.store.PutStatus(sctx, st)
	endSpan(span, err)
	if err != nil {
		s.metrics.StoreError(req.Context(), "put_status")
		return err
	}
	return writeJSON(c, http.StatusAccepted, statusOf(st))
}

// rejectedEntry is the ledger's record of an object refused at ingest:
// its id and version as sent, the kind of error, the status resource that
// holds the message (messages may quote the object, and auditors see no
// content), and the canonical hash of its bytes when they have one.
func rejectedEntry(actor store.Actor, col *collection, status, id, version string, raw []byte, err error) custody.Entry {
	e := custody.Entry{Action: custody.Rejected, User: actor.User, Org: actor.Org, ObjectID: id, ObjectVersion: version,
		Collection: col.cfg.ID, Detail: "status " + status}
	if err != nil {
		e.Reason = ctigate.KindOf(err).String()
	}
	if len(raw) > 0 {
		if h, err := stix.Hash(raw); err == nil {
			e.SHA256 = custody.HexHash(h)
		}
	}
	return e
}

// admit prepares one valid object for the store: its markings are
// resolved (granular selectors must select something) and its canonical
// hash computed, in one pass; a write into a routed collection must pass
// the route unchanged. note says how its markings were read, for the
// producer's receipt.
func (s *Server) admit(it *stix.Item, markings *stix.Markings, guard *routeGuard) (o store.Object, note string, err error) {
	res, hash, err := markings.ResolveHash(it.Raw)
	if err != nil {
		return o, "", err
	}
	if err := guard.check(it, res, hash); err != nil {
		return o, "", err
	}
	note = res.TLP.String()
	if len(res.Unknown) > 0 {
		note += fmt.Sprintf(" (unknown markings: %s)", strings.Join(res.Unknown, ", "))
	}
	if len(res.Granular) > 0 {
		note += fmt.Sprintf(", %d granular markings", len(res.Granular))
	}
	return store.Object{
		ID: it.Object.ID, Type: it.Object.Type, SpecVersion: it.Object.SpecVersion,
		Version: it.Object.Version, Raw: it.Raw, Hash: hash,
	}, note, nil
}

// failureID names a rejected object in a status resource: its id when it
// had a usable one, else its position in the envelope.
func failureID(it *stix.Item) string {
	if it.ID != "" {
		return it.ID
	}
	return "objects[" + strconv.Itoa(it.Index) + "]"
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
