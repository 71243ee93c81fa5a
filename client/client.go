// Package client is a TAXII 2.1 client for ctigate's push and poll
// commands: requests with retries and backoff, envelope splitting under
// an API root's max_content_length, status following and paging.
package client

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/go-json-experiment/json"
)

// MediaType is the TAXII 2.1 media type sent in Accept and Content-Type.
const MediaType = "application/taxii+json;version=2.1"

// Credentials authenticate requests. They are never included in errors
// or String output.
type Credentials struct {
	User, Password string
	Token          string // bearer token; used when User is empty
}

// String hides the secrets.
func (c Credentials) String() string {
	switch {
	case c.User != "":
		return "basic(" + c.User + ")"
	case c.Token != "":
		return "bearer(***)"
	}
	return "none"
}

// Client talks to one TAXII 2.1 API root.
type Client struct {
	HTTP        *http.Client
	Base        string // scheme://host[:port], no trailing slash
	APIRoot     string // API root name, e.g. "exchange"
	Creds       Credentials
	MaxAttempts int           // attempts per request (default 6)
	BaseDelay   time.Duration // first backoff (default 500ms)
	MaxDelay    time.Duration // largest backoff or honoured Retry-After (default 30s)

	retries atomic.Int64
	// Sleep waits d or until ctx ends; tests replace it.
	Sleep func(ctx context.Context, d time.Duration) error
}

// New returns a client for serverURL (scheme://host[:port], optionally
// ending in /taxii2/) and API root apiRoot. A URL carrying a password is
// refused without echoing it.
func New(serverURL, apiRoot string, creds Credentials) (*Client, error) {
	u, err := url.Parse(serverURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, errors.New("--server must be an http:// or https:// URL")
	}
	if u.User != nil {
		return nil, errors.New("--server must not contain credentials; use --user with CTIGATE_PASSWORD, a netrc file or CTIGATE_TOKEN")
	}
	p := strings.TrimSuffix(strings.TrimSuffix(u.Path, "/"), "/taxii2")
	return &Client{
		HTTP:    &http.Client{Timeout: 5 * time.Minute},
		Base:    u.Scheme + "://" + u.Host + strings.TrimSuffix(p, "/"),
		APIRoot: strings.Trim(apiRoot, "/"),
		Creds:   creds,
	}, nil
}

// Host is the server's host name (for netrc lookups).
func Host(serverURL string) string {
	u, err := url.Parse(serverURL)
	if err != nil {
		return ""
	}
	return u.Hostname()
}

// Retries is how many requests were retried so far.
func (c *Client) Retries() int64 { return c.retries.Load() }

// RootURL is the API root's URL, ending in "/".
func (c *Client) RootURL() string { return c.Base + "/" + c.APIRoot + "/" }

// CollectionURL is a collection's URL (id or alias), ending in "/".
func (c *Client) CollectionURL(col string) string {
	return c.RootURL() + "collections/" + url.PathEscape(col) + "/"
}

// HTTPError is a non-2xx response.
type HTTPError struct {
	Status      int
	Title, Desc string
}

func (e *HTTPError) Error() string {
	s := fmt.Sprintf("HTTP %d", e.Status)
	if e.Title != "" {
		s += ": " + e.Title
	}
	if e.Desc != "" {
		s += ": " + e.Desc
	}
	return s
}

// Retryable reports whether a response status is worth retrying.
func Retryable(status int) bool { return status == 429 || status >= 500 }

// Backoff is the wait before retry number attempt (0-based): exponential
// from base, capped at max, with "equal jitter" (half fixed, half random)
// so that clients that failed together do not retry together. rnd returns
// a value in [0,1).
func Backoff(attempt int, base, max time.Duration, rnd func() float64) time.Duration {
	d := base
	for i := 0; i < attempt && d < max; i++ {
		d *= 2
	}
	d = min(d, max)
	return d/2 + time.Duration(rnd()*float64(d/2))
}

// RetryAfter parses a Retry-After header (seconds or HTTP date).
func RetryAfter(h string, now time.Time) (time.Duration, bool) {
	if h == "" {
		return 0, false
	}
	if s, err := strconv.Atoi(strings.TrimSpace(h)); err == nil && s >= 0 {
		return time.Duration(s) * time.Second, true
	}
	if t, err := http.ParseTime(h); err == nil {
		return max(t.Sub(now), 0), true
	}
	return 0, false
}

func (c *Client) defaults() (int, time.Duration, time.Duration) {
	a, b, m := c.MaxAttempts, c.BaseDelay, c.MaxDelay
	if a <= 0 {
		a = 6
	}
	if b <= 0 {
		b = 500 * time.Millisecond
	}
	if m <= 0 {
		m = 30 * time.Second
	}
	return a, b, m
}

func (c *Client) sleep(ctx context.Context, d time.Duration) error {
	if c.Sleep != nil {
		return c.Sleep(ctx, d)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Do sends one request, retrying with backoff on network errors, 429 and
// 5xx (honouring Retry-After), never on other 4xx. It returns the final
// response's headers and body; a non-2xx final response is an *HTTPError.
func (c *Client) Do(ctx context.Context, method, u string, body []byte) (http.Header, []byte, error) {
	attempts, base, maxd := c.defaults()
	var lastErr error
	for attempt := 0; attempt < attempts; attempt++ {
		if attempt > 0 {
			c.retries.Add(1)
		}
		h, b, wait, err := c.once(ctx, method, u, body)
		if err == nil {
			return h, b, nil
		}
		lastErr = err
		if ctx.Err() != nil {
			return nil, nil, ctx.Err()
		}
		var he *HTTPError
		if errors.As(err, &he) && !Retryable(he.Status) {
			return h, b, err
		}
		if attempt == attempts-1 {
			break
		}
		d := Backoff(attempt, base, maxd, rand.Float64)
		if wait > 0 {
			d = min(max(d, wait), maxd)
		}
		if err := c.sleep(ctx, d); err != nil {
			return nil, nil, err
		}
	}
	return nil, nil, fmt.Errorf("%s %s: giving up after %d attempts: %w", method, u, attempts, lastErr)
}

func (c *Client) once(ctx context.Context, method, u string, body []byte) (http.Header, []byte, time.Duration, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return nil, nil, 0, err
	}
	req.Header.Set("Accept", MediaType)
	if body != nil {
		req.Header.Set("Content-Type", MediaType)
	}
	switch {
	case c.Creds.User != "":
		req.SetBasicAuth(c.Creds.User, c.Creds.Password)
	case c.Creds.Token != "":
		req.Header.Set("Authorization", "Bearer "+c.Creds.Token)
	}
	res, err := c.HTTP.Do(req)
	if err != nil {
		return nil, nil, 0, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(io.LimitReader(res.Body, 1<<30))
	if err != nil {
		return nil, nil, 0, err
	}
	if res.StatusCode/100 == 2 {
		return res.Header, b, 0, nil
	}
	he := &HTTPError{Status: res.StatusCode}
	var te struct {
		Title       string `json:"title"`
		Description string `json:"description"`
	}
	if json.Unmarshal(b, &te) == nil {
		he.Title, he.Desc = te.Title, te.Description
	}
	wait, _ := RetryAfter(res.Header.Get("Retry-After"), time.Now())
	return res.Header, b, wait, he
}

// MaxContentLength reads the API root's max_content_length.
func (c *Client) MaxContentLength(ctx context.Context) (int64, error) {
	_, b, err := c.Do(ctx, http.MethodGet, c.RootURL(), nil)
	if err != nil {
		return 0, fmt.Errorf("reading API root: %w", err)
	}
	var r struct {
		MaxContentLength int64 `json:"max_content_length"`
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return 0, fmt.Errorf("reading API root: %w", err)
	}
	if r.MaxContentLength <= 0 {
		return 0, errors.New("API root has no max_content_length")
	}
	return r.MaxContentLength, nil
}
