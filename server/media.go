package server

import (
	"bufio"
	"bytes"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-json-experiment/json"
	"github.com/labstack/echo/v4"

	"github.com/ctigate/ctigate/store"
)

// Media types (TAXII 2.1 §1.6.8).
const (
	taxiiMediaType = "application/taxii+json;version=2.1"
	stixMediaType  = "application/stix+json;version=2.1"
)

// negotiate answers 406 when the Accept header admits no TAXII 2.1 media
// type. A missing Accept header, */* and application/* are served.
func (s *Server) negotiate(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if !acceptsTAXII(c.Request().Header.Values("Accept")) {
			return errNotAcceptable
		}
		return next(c)
	}
}

func acceptsTAXII(values []string) bool {
	if len(values) == 0 {
		return true
	}
	for _, v := range values {
		for _, r := range strings.Split(v, ",") {
			if strings.TrimSpace(r) == "" {
				continue
			}
			mt, params, err := mime.ParseMediaType(r)
			if err != nil {
				continue
			}
			if q, ok := params["q"]; ok {
				if f, err := strconv.ParseFloat(q, 64); err != nil || f <= 0 {
					continue
				}
			}
			switch mt {
			case "*/*", "application/*":
				return true
			case "application/taxii+json":
				if v, ok := params["version"]; !ok || v == "2.1" {
					return true
				}
			}
		}
	}
	return false
}

// checkContentType answers 415 unless the request body is TAXII 2.1.
func checkContentType(r *http.Request) error {
	ct := r.Header.Get("Content-Type")
	mt, params, err := mime.ParseMediaType(ct)
	if err == nil && mt == "application/taxii+json" {
		if v, ok := params["version"]; !ok || v == "2.1" {
			return nil
		}
	}
	return &statusError{http.StatusUnsupportedMediaType,
		"Content-Type must be " + taxiiMediaType + ", not " + strconv.Quote(ct)}
}

// writeJSON writes v as a TAXII resource.
func writeJSON(c echo.Context, code int, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return writeBody(c, code, b)
}

func writeBody(c echo.Context, code int, b []byte) error {
	h := c.Response().Header()
	h.Set("Content-Type", taxiiMediaType)
	h.Set("Content-Length", strconv.Itoa(len(b)))
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	c.Response().WriteHeader(code)
	_, err := c.Response().Write(b)
	return err
}

// dateAddedHeaders sets X-TAXII-Date-Added-First/Last from a page (§3.2).
func dateAddedHeaders(c echo.Context, objs []store.Object) {
	if len(objs) == 0 {
		return
	}
	h := c.Response().Header()
	h.Set("X-TAXII-Date-Added-First", formatDateAdded(objs[0].DateAdded))
	h.Set("X-TAXII-Date-Added-Last", formatDateAdded(objs[len(objs)-1].DateAdded))
}

// formatDateAdded renders a TAXII timestamp: microseconds, UTC, "Z" (§2).
func formatDateAdded(t time.Time) string { return t.UTC().Format(taxiiTimeLayout) }

const taxiiTimeLayout = "2006-01-02T15:04:05.000000Z"

var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// pageWriters are the buffered writers pages are streamed through.
var pageWriters = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, 32<<10) }}

// writesDone reports whether the bytes given to c's response writer are
// no longer referenced once a Write returned, so that their memory may be
// reused (pageWriters, store.Page.Release): true over HTTP/1.x, whose
// writes are copied to the connection before they return. Over HTTP/2 a
// write cut short by the client's reset may still be in flight after the
// handler returns; such memory is left to the collector.
func writesDone(c echo.Context) bool { return c.Request().ProtoMajor == 1 }

// pageItems says how the elements of a page's array are written.
type pageItems struct {
	member string                                 // the array's name
	raw    bool                                   // each element is the object's Raw, as stored
	write  func(b *bytes.Buffer, o *store.Object) // otherwise, writes one element
}

// rawItems writes the objects as stored: the objects endpoints.
var rawItems = pageItems{member: "objects", raw: true}

// writePage writes an envelope-shaped page: {"more":…,"next":…,"<member>":[…]}.
// The response is streamed from the page's objects rather than
// assembled first, so a page is held in memory once; its length is
// computed beforehand (Content-Length), and nothing can fail part way but
// the connection. The write must end within paging.write_timeout: a
// client that reads slower (or not at all) is cut off, the connection
// closed, and the page's memory given back (admission.go).
func (s *Server) writePage(c echo.Context, page store.Page, items pageItems) error {
	scratch := bufPool.Get().(*bytes.Buffer)
	defer func() {
		if scratch.Cap() <= 64<<10 {
			bufPool.Put(scratch)
		}
	}()
	scratch.Reset()
	if page.More {
		scratch.WriteString(`{"more":true`)
		if page.Next != "" {
			scratch.WriteString(`,"next":`)
			scratch.WriteString(strconv.Quote(page.Next))
		}
	} else {
		scratch.WriteString(`{"more":false`)
	}
	if len(page.Objects) > 0 {
		scratch.WriteString(`,"`)
		scratch.WriteString(items.member)
		scratch.WriteString(`":[`)
	}
	head := strings.Clone(scratch.String())
	var joined [][]byte
	if items.raw {
		joined = page.Joined()
	}

	// The length: the head, the elements and their commas, "]" and "}".
	n := len(head) + 1
	if len(page.Objects) > 0 {
		n += len(page.Objects)
	}
	for i := range page.Objects {
		if items.raw {
			n += len(page.Objects[i].Raw)
			continue
		}
		scratch.Reset()
		items.write(scratch, &page.Objects[i])
		n += scratch.Len()
	}

	dateAddedHeaders(c, page.Objects)
	h := c.Response().Header()
	h.Set("Content-Type", taxiiMediaType)
	h.Set("Content-Length", strconv.Itoa(n))
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	// The deadline also covers what net/http writes after the handler
	// returns, and net/http lifts it once the response is finished, for
	// the next request on the connection. Not every writer takes one
	// (tests' recorders): those are written without.
	timeout := s.viewOf(c).paging.WithDefaults().WriteTimeout
	_ = http.NewResponseController(c.Response()).SetWriteDeadline(time.Now().Add(timeout))
	c.Response().WriteHeader(http.StatusOK)

	w := pageWriters.Get().(*bufio.Writer)
	w.Reset(c.Response())
	defer func() {
		w.Reset(nil)
		if writesDone(c) {
			pageWriters.Put(w)
		}
	}()
	w.WriteString(head)
	if joined != nil {
		// The objects as the store copied them, commas included: large
		// writes go to the connection without passing through w's buffer.
		for _, seg := range joined {
			w.Write(seg)
		}
	} else {
		for i := range page.Objects {
			if i > 0 {
				w.WriteByte(',')
			}
			o := &page.Objects[i]
			if items.raw {
				w.Write(o.Raw)
			} else {
				scratch.Reset()
				items.write(scratch, o)
				w.Write(scratch.Bytes())
			}
		}
	}
	if len(page.Objects) > 0 {
		w.WriteByte(']')
	}
	w.WriteByte('}')
	if err := w.Flush(); err != nil {
		// The status is sent: there is nobody left to tell.
		s.log.Info("page not delivered in full", "path", c.Path(), "bytes", n, "written", c.Response().Size,
			"user", userName(c), "err", err)
	}
	return nil
}
