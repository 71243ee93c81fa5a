package server

import (
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

// writePage writes an envelope-shaped page: {"more":…,"next":…,"<member>":[…]}
// where each element is produced by item. The whole body is assembled
// before the status line, so a failure mid-way is still a clean error.
func writePage(c echo.Context, page store.Page, member string, item func(*bytes.Buffer, *store.Object)) error {
	buf := bufPool.Get().(*bytes.Buffer)
	buf.Reset()
	defer func() {
		if buf.Cap() <= 4<<20 {
			bufPool.Put(buf)
		}
	}()
	if page.More {
		buf.WriteString(`{"more":true`)
		if page.Next != "" {
			buf.WriteString(`,"next":`)
			buf.WriteString(strconv.Quote(page.Next))
		}
	} else {
		buf.WriteString(`{"more":false`)
	}
	if len(page.Objects) > 0 {
		buf.WriteString(`,"`)
		buf.WriteString(member)
		buf.WriteString(`":[`)
		for i := range page.Objects {
			if i > 0 {
				buf.WriteByte(',')
			}
			item(buf, &page.Objects[i])
		}
		buf.WriteByte(']')
	}
	buf.WriteByte('}')
	dateAddedHeaders(c, page.Objects)
	return writeBody(c, http.StatusOK, buf.Bytes())
}
