package load

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/ctigate/ctigate/stix"
)

// ceiling is the best a TAXII server could do on this machine for bench's
// workload, run in the same sitting so that the gateway's figures can be
// given as a share of it. It does what no server can skip, with the
// gateway's own JSON library and canonical hash: it reads each envelope,
// splits it into objects, hashes each object's RFC 8785 form (stix.Hash)
// and appends the bytes in memory with a date_added; pages are the stored
// bytes written back without re-encoding, with the TAXII headers bench
// checks. It has no authentication, validation, markings, policy, store,
// ledger or telemetry.
//
// Its design is frozen: a change to it changes every ratio bench reports,
// so a commit that changes it says so.
type ceiling struct {
	mu    sync.RWMutex
	objs  [][]byte
	added []string // date_added of objs[i], RFC 3339 with microseconds
	last  time.Time
}

// startCeiling serves a ceiling on a loopback port until ctx ends; it
// returns the base URL.
func startCeiling(ctx context.Context) (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	hs := &http.Server{Handler: &ceiling{}, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = hs.Serve(ln) }()
	go func() {
		<-ctx.Done()
		_ = hs.Close()
	}()
	return "http://" + ln.Addr().String(), nil
}

func (c *ceiling) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	// /{root}/collections/{id}/ and /{root}/collections/{id}/objects/
	switch {
	case len(parts) == 3 && parts[1] == "collections" && r.Method == http.MethodGet:
		w.Header().Set("Content-Type", "application/taxii+json;version=2.1")
		fmt.Fprintf(w, `{"id":%q,"title":"ceiling","can_read":true,"can_write":true}`, parts[2])
	case len(parts) == 4 && parts[1] == "collections" && parts[3] == "objects" && r.Method == http.MethodPost:
		c.post(w, r)
	case len(parts) == 4 && parts[1] == "collections" && parts[3] == "objects" && r.Method == http.MethodGet:
		c.page(w, r)
	default:
		http.Error(w, `{"title":"not found"}`, http.StatusNotFound)
	}
}

func (c *ceiling) post(w http.ResponseWriter, r *http.Request) {
	var body bytes.Buffer
	if _, err := body.ReadFrom(r.Body); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	objs, err := splitObjects(body.Bytes())
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	for _, o := range objs {
		if _, err := stix.Hash(o); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
	}
	c.mu.Lock()
	for _, o := range objs {
		t := time.Now().UTC().Truncate(time.Microsecond)
		if !t.After(c.last) {
			t = c.last.Add(time.Microsecond)
		}
		c.last = t
		c.objs = append(c.objs, o)
		c.added = append(c.added, t.Format("2006-01-02T15:04:05.000000Z"))
	}
	c.mu.Unlock()
	w.Header().Set("Content-Type", "application/taxii+json;version=2.1")
	w.WriteHeader(http.StatusAccepted)
	fmt.Fprintf(w, `{"id":"ceiling","status":"complete","total_count":%d,"success_count":%d,"failure_count":0,"pending_count":0}`, len(objs), len(objs))
}

// splitObjects returns the objects of an envelope, as their bytes.
func splitObjects(b []byte) ([][]byte, error) {
	dec := jsontext.NewDecoder(bytes.NewReader(b))
	if tok, err := dec.ReadToken(); err != nil || tok.Kind() != '{' {
		return nil, errors.New("not an envelope")
	}
	var out [][]byte
	for dec.PeekKind() == '"' {
		name, err := dec.ReadToken()
		if err != nil {
			return nil, err
		}
		if name.String() != "objects" {
			if err := dec.SkipValue(); err != nil {
				return nil, err
			}
			continue
		}
		if tok, err := dec.ReadToken(); err != nil || tok.Kind() != '[' {
			return nil, errors.New("objects is not an array")
		}
		for dec.PeekKind() == '{' {
			v, err := dec.ReadValue()
			if err != nil {
				return nil, err
			}
			out = append(out, bytes.Clone(v))
		}
		if _, err := dec.ReadToken(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func (c *ceiling) page(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit, _ := strconv.Atoi(q.Get("limit"))
	if limit <= 0 {
		limit = 1000
	}
	from, _ := strconv.Atoi(q.Get("next"))
	c.mu.RLock()
	n := len(c.objs)
	from = min(max(from, 0), n)
	to := min(from+limit, n)
	var b bytes.Buffer
	more := to < n
	fmt.Fprintf(&b, `{"more":%t`, more)
	if more {
		fmt.Fprintf(&b, `,"next":"%d"`, to)
	}
	b.WriteString(`,"objects":[`)
	for i := from; i < to; i++ {
		if i > from {
			b.WriteByte(',')
		}
		b.Write(c.objs[i])
	}
	b.WriteString("]}")
	h := w.Header()
	if to > from {
		h.Set("X-TAXII-Date-Added-First", c.added[from])
		h.Set("X-TAXII-Date-Added-Last", c.added[to-1])
	}
	c.mu.RUnlock()
	h.Set("Content-Type", "application/taxii+json;version=2.1")
	_, _ = w.Write(b.Bytes())
}
