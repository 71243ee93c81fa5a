package client

import (
	"context"
	"fmt"
	"net/http"
	"net/url"

	"github.com/go-json-experiment/json"
)

// SearchResult is one page of GET /api/v1/search.
type SearchResult struct {
	Query struct {
		Value      string `json:"value"`
		Kind       string `json:"kind"`
		Normalised string `json:"normalised"`
	} `json:"query"`
	Hits []SearchHit `json:"hits"`
	Next string      `json:"next,omitempty"`
}

// SearchHit is one object that mentions the observable.
type SearchHit struct {
	ID         string `json:"id"`
	Type       string `json:"type"`
	Version    string `json:"version,omitempty"`
	Collection struct {
		ID      string `json:"id"`
		Title   string `json:"title"`
		APIRoot string `json:"api_root"`
	} `json:"collection"`
	TLP       string            `json:"tlp"`
	Producer  string            `json:"producer,omitempty"`
	Labels    []string          `json:"labels,omitempty"`
	Revoked   bool              `json:"revoked,omitempty"`
	FirstSeen string            `json:"first_seen"`
	LastSeen  string            `json:"last_seen"`
	Matched   []string          `json:"matched"`
	Links     map[string]string `json:"links,omitempty"`
}

// Search runs one page of an observable search: params are the query
// parameters of GET /api/v1/search (value, type, label, tlp, producer,
// added_after, added_before, limit, next).
func (c *Client) Search(ctx context.Context, params url.Values) (*SearchResult, error) {
	var r SearchResult
	if err := c.getJSON(ctx, c.Base+"/api/v1/search?"+params.Encode(), "search results", &r); err != nil {
		return nil, err
	}
	return &r, nil
}

// getJSON reads the plain-JSON resource at u (what names it in errors)
// into v.
func (c *Client) getJSON(ctx context.Context, u, what string, v any) error {
	_, b, err := c.Do(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("reading %s: %w", what, err)
	}
	return nil
}
