package load

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"time"

	"github.com/go-json-experiment/json"
)

const taxiiMediaType = "application/taxii+json;version=2.1"

// client talks TAXII 2.1 to one collection over keep-alive connections.
type client struct {
	hc        *http.Client
	tr        *http.Transport
	base      string // scheme://host[:port][/prefix]
	apiRoot   string
	objects   string // URL of the collection's objects endpoint
	colURL    string // URL of the collection resource
	user, pwd string
}

func newClient(base, apiRoot, collection, user, password string, conns int, timeout time.Duration) *client {
	dialer := &net.Dialer{
		Timeout:   10 * time.Second,
		KeepAlive: 30 * time.Second,
		Control:   loopbackOnly,
	}
	tr := &http.Transport{
		Proxy:                 nil,
		DialContext:           dialer.DialContext,
		MaxIdleConns:          conns,
		MaxIdleConnsPerHost:   conns,
		MaxConnsPerHost:       conns,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: timeout,
		DisableCompression:    true,
		WriteBufferSize:       64 << 10,
		ReadBufferSize:        64 << 10,
	}
	col := base + "/" + url.PathEscape(apiRoot) + "/collections/" + url.PathEscape(collection) + "/"
	return &client{
		hc: &http.Client{
			Transport: tr,
			Timeout:   timeout,
			// A TAXII server answers; it does not send clients elsewhere.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		tr:      tr,
		base:    base,
		apiRoot: apiRoot,
		colURL:  col,
		objects: col + "objects/",
		user:    user,
		pwd:     password,
	}
}

// loopbackOnly refuses connections to anything but a loopback address,
// whatever a host name resolved to.
func loopbackOnly(_, address string, _ syscall.RawConn) error {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return err
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("refusing to connect to %s: not a loopback address", address)
	}
	return nil
}

func (c *client) close() { c.tr.CloseIdleConnections() }

func (c *client) newRequest(ctx context.Context, method, u string, body []byte) (*http.Request, error) {
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, r)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", taxiiMediaType)
	if body != nil {
		req.Header.Set("Content-Type", taxiiMediaType)
	}
	req.SetBasicAuth(c.user, c.pwd)
	return req, nil
}

// httpError describes an unexpected response, with the TAXII error
// resource's title and description when there is one. Never credentials.
func httpError(method, u string, resp *http.Response, body []byte) error {
	var te struct {
		Title       string `json:"title"`
		Description string `json:"description"`
	}
	msg := resp.Status
	if json.Unmarshal(body, &te) == nil && (te.Title != "" || te.Description != "") {
		msg += ": " + te.Title
		if te.Description != "" {
			msg += ": " + te.Description
		}
	}
	if resp.StatusCode == http.StatusUnauthorized {
		msg += " (check --user and the password)"
	}
	return fmt.Errorf("%s %s: %s", method, redactQuery(u), msg)
}

// redactQuery drops the query (cursors are long and say nothing useful).
func redactQuery(u string) string {
	if i := strings.IndexByte(u, '?'); i >= 0 {
		return u[:i]
	}
	return u
}

// get fetches u and reads the whole body into buf.
func (c *client) get(ctx context.Context, u string, buf *bytes.Buffer) (*http.Response, error) {
	req, err := c.newRequest(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	buf.Reset()
	if resp.ContentLength > 0 && resp.ContentLength < 1<<30 {
		buf.Grow(int(resp.ContentLength))
	}
	if _, err := buf.ReadFrom(resp.Body); err != nil {
		return nil, fmt.Errorf("GET %s: reading the response: %w", redactQuery(u), err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, httpError(http.MethodGet, u, resp, buf.Bytes())
	}
	return resp, nil
}

// collectionInfo is the part of the TAXII collection resource bench reads.
type collectionInfo struct {
	ID       string `json:"id"`
	CanRead  bool   `json:"can_read"`
	CanWrite bool   `json:"can_write"`
}

// describe fetches the collection resource: it checks the credentials and
// the collection before any load is applied.
func (c *client) describe(ctx context.Context) (collectionInfo, error) {
	var (
		buf  bytes.Buffer
		info collectionInfo
	)
	if _, err := c.get(ctx, c.colURL, &buf); err != nil {
		return info, err
	}
	if err := json.Unmarshal(buf.Bytes(), &info); err != nil {
		return info, fmt.Errorf("GET %s: %w", c.colURL, err)
	}
	return info, nil
}

// empty reports whether the collection holds no object.
func (c *client) empty(ctx context.Context) (bool, error) {
	var buf bytes.Buffer
	if _, err := c.get(ctx, c.objects+"?limit=1", &buf); err != nil {
		return false, err
	}
	p, err := countEnvelope(buf.Bytes())
	if err != nil {
		return false, fmt.Errorf("GET %s: %w", c.objects, err)
	}
	return p.objects == 0 && !p.more, nil
}

// statusInfo is the part of the TAXII status resource bench reads.
type statusInfo struct {
	ID           string `json:"id"`
	Status       string `json:"status"`
	TotalCount   int    `json:"total_count"`
	SuccessCount int    `json:"success_count"`
	FailureCount int    `json:"failure_count"`
	PendingCount int    `json:"pending_count"`
	Failures     []struct {
		ID      string `json:"id"`
		Message string `json:"message"`
	} `json:"failures"`
}

// status fetches a status resource.
func (c *client) status(ctx context.Context, id string, buf *bytes.Buffer) (statusInfo, error) {
	var st statusInfo
	u := c.base + "/" + url.PathEscape(c.apiRoot) + "/status/" + url.PathEscape(id) + "/"
	if _, err := c.get(ctx, u, buf); err != nil {
		return st, err
	}
	err := json.Unmarshal(buf.Bytes(), &st)
	return st, err
}

// post sends one envelope and returns the status resource of the 202.
func (c *client) post(ctx context.Context, body []byte, buf *bytes.Buffer) (statusInfo, error) {
	var st statusInfo
	req, err := c.newRequest(ctx, http.MethodPost, c.objects, body)
	if err != nil {
		return st, err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return st, err
	}
	defer resp.Body.Close()
	buf.Reset()
	if _, err := buf.ReadFrom(resp.Body); err != nil {
		return st, fmt.Errorf("POST %s: reading the response: %w", c.objects, err)
	}
	if resp.StatusCode != http.StatusAccepted {
		return st, httpError(http.MethodPost, c.objects, resp, buf.Bytes())
	}
	if err := json.Unmarshal(buf.Bytes(), &st); err != nil {
		return st, fmt.Errorf("POST %s: the status resource: %w", c.objects, err)
	}
	return st, nil
}

// waitStatus polls a pending status until it is complete, for at most
// timeout.
func (c *client) waitStatus(ctx context.Context, st statusInfo, timeout time.Duration, buf *bytes.Buffer) (statusInfo, error) {
	deadline := time.Now().Add(timeout)
	delay := 20 * time.Millisecond
	for st.Status != "complete" {
		if time.Now().After(deadline) {
			return st, fmt.Errorf("status %s still %q after %v", st.ID, st.Status, timeout)
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return st, ctx.Err()
		case <-t.C:
		}
		delay = min(2*delay, time.Second)
		var err error
		if st, err = c.status(ctx, st.ID, buf); err != nil {
			return st, err
		}
	}
	return st, nil
}
