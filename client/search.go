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
	_, b, err := c.Do(ctx, http.MethodGet, c.Base+"/api/v1/search?"+params.Encode(), nil)
	if err != nil {
		return nil, err
	}
	var r SearchResult
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("reading search results: %w", err)
	}
	return &r, nil
}
