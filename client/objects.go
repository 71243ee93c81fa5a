package client

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
)

// ReadObjects reads STIX objects from a STIX bundle, a TAXII envelope
// (any JSON object with an "objects" array) or JSON Lines (one object per
// line; blank lines skipped). Each object is returned compacted.
func ReadObjects(data []byte) ([]jsontext.Value, error) {
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 {
		return nil, nil
	}
	if v := jsontext.Value(trimmed); v.IsValid() {
		var env struct {
			Objects *[]jsontext.Value `json:"objects"`
		}
		if err := json.Unmarshal(trimmed, &env); err != nil {
			return nil, err
		}
		if env.Objects != nil {
			return compactAll(*env.Objects)
		}
		if v.Kind() == '{' {
			return compactAll([]jsontext.Value{v}) // one line of JSON Lines
		}
		return nil, errors.New("not a bundle, envelope or JSON Lines")
	}
	var out []jsontext.Value
	sc := bufio.NewScanner(bytes.NewReader(trimmed))
	sc.Buffer(nil, len(trimmed)+1)
	for n := 1; sc.Scan(); n++ {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		v := jsontext.Value(bytes.Clone(line))
		if !v.IsValid() || v.Kind() != '{' {
			return nil, fmt.Errorf("line %d: not a JSON object", n)
		}
		out = append(out, v)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return compactAll(out)
}

func compactAll(vs []jsontext.Value) ([]jsontext.Value, error) {
	for i := range vs {
		if vs[i].Kind() != '{' {
			return nil, fmt.Errorf("object %d: not a JSON object", i)
		}
		if err := vs[i].Compact(); err != nil {
			return nil, fmt.Errorf("object %d: %w", i, err)
		}
	}
	return vs, nil
}

// ObjectID returns an object's "id" (or "" when it has none).
func ObjectID(v jsontext.Value) string {
	var o struct {
		ID string `json:"id"`
	}
	_ = json.Unmarshal(v, &o)
	return o.ID
}

const envOpen, envClose = `{"objects":[`, `]}`

// EnvelopeSize is the size of the envelope Envelope(objs) builds.
func EnvelopeSize(objs []jsontext.Value) int64 {
	n := int64(len(envOpen) + len(envClose))
	for i, o := range objs {
		if i > 0 {
			n++
		}
		n += int64(len(o))
	}
	return n
}

// Envelope builds {"objects":[...]}.
func Envelope(objs []jsontext.Value) []byte {
	b := make([]byte, 0, EnvelopeSize(objs))
	b = append(b, envOpen...)
	for i, o := range objs {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, o...)
	}
	return append(b, envClose...)
}

// Split groups objects, in order, into envelopes whose encoded size is at
// most limit bytes and that hold at most maxObjects objects (0: no
// count limit). Objects that do not fit in an envelope of their own are
// returned by index in tooBig and are in no envelope.
func Split(objs []jsontext.Value, limit int64, maxObjects int) (envs [][]jsontext.Value, tooBig []int) {
	empty := int64(len(envOpen) + len(envClose))
	var cur []jsontext.Value
	size := empty
	for i, o := range objs {
		if empty+int64(len(o)) > limit {
			tooBig = append(tooBig, i)
			continue
		}
		add := int64(len(o))
		if len(cur) > 0 {
			add++
		}
		if len(cur) > 0 && (size+add > limit || (maxObjects > 0 && len(cur) >= maxObjects)) {
			envs = append(envs, cur)
			cur, size, add = nil, empty, int64(len(o))
		}
		cur = append(cur, o)
		size += add
	}
	if len(cur) > 0 {
		envs = append(envs, cur)
	}
	return envs, tooBig
}

// Status is a TAXII 2.1 status resource.
type Status struct {
	ID           string   `json:"id"`
	Status       string   `json:"status"`
	TotalCount   int      `json:"total_count"`
	SuccessCount int      `json:"success_count"`
	Successes    []Detail `json:"successes"`
	FailureCount int      `json:"failure_count"`
	Failures     []Detail `json:"failures"`
	PendingCount int      `json:"pending_count"`
	Pendings     []Detail `json:"pendings"`
}

// Detail is one entry of a status's successes, failures or pendings.
type Detail struct {
	ID      string `json:"id"`
	Version string `json:"version"`
	Message string `json:"message"`
}

// Post adds an envelope to a collection and follows its status resource
// until it is complete (polling a pending status at most maxPolls times,
// every interval).
func (c *Client) Post(ctx context.Context, collection string, envelope []byte, interval time.Duration, maxPolls int) (*Status, error) {
	_, b, err := c.Do(ctx, http.MethodPost, c.CollectionURL(collection)+"objects/", envelope)
	if err != nil {
		return nil, err
	}
	var st Status
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("reading status: %w", err)
	}
	for polls := 0; st.Status == "pending"; polls++ {
		if polls >= maxPolls {
			return &st, fmt.Errorf("status %s still pending after %d polls", st.ID, maxPolls)
		}
		if err := c.sleep(ctx, interval); err != nil {
			return &st, err
		}
		_, b, err := c.Do(ctx, http.MethodGet, c.RootURL()+"status/"+st.ID+"/", nil)
		if err != nil {
			return &st, fmt.Errorf("reading status %s: %w", st.ID, err)
		}
		if err := json.Unmarshal(b, &st); err != nil {
			return &st, fmt.Errorf("reading status: %w", err)
		}
	}
	return &st, nil
}

// Page is one page of a collection's objects.
type Page struct {
	More          bool             `json:"more"`
	Next          string           `json:"next"`
	Objects       []jsontext.Value `json:"objects"`
	DateAddedLast string           `json:"-"` // X-TAXII-Date-Added-Last
}

// GetObjects reads one page: after next (when set) or else added after
// addedAfter (exclusive; when set), at most limit objects (0: server's).
func (c *Client) GetObjects(ctx context.Context, collection, addedAfter, next string, limit int) (*Page, error) {
	q := make([]string, 0, 2)
	if limit > 0 {
		q = append(q, fmt.Sprintf("limit=%d", limit))
	}
	if next != "" {
		q = append(q, "next="+url.QueryEscape(next))
	} else if addedAfter != "" {
		q = append(q, "added_after="+url.QueryEscape(addedAfter))
	}
	u := c.CollectionURL(collection) + "objects/"
	if len(q) > 0 {
		u += "?" + strings.Join(q, "&")
	}
	h, b, err := c.Do(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	var p Page
	if len(bytes.TrimSpace(b)) > 0 {
		if err := json.Unmarshal(b, &p); err != nil {
			return nil, fmt.Errorf("reading page: %w", err)
		}
	}
	for i := range p.Objects {
		if err := p.Objects[i].Compact(); err != nil {
			return nil, err
		}
	}
	p.DateAddedLast = h.Get("X-TAXII-Date-Added-Last")
	return &p, nil
}
