package client

import (
	"context"
	"net/url"
	"strconv"
)

// WithdrawnPage is one page of GET /api/v1/collections/{id}/withdrawn.
type WithdrawnPage struct {
	Collection string      `json:"collection"`
	Withdrawn  []Withdrawn `json:"withdrawn"`
	More       bool        `json:"more"`
	Next       string      `json:"next,omitempty"`
}

// Withdrawn is one object version that left a collection.
type Withdrawn struct {
	ID          string `json:"id"`
	Version     string `json:"version,omitempty"`
	DateAdded   string `json:"date_added"`
	WithdrawnAt string `json:"withdrawn_at"`
	Reason      string `json:"reason"`
}

// Withdrawals reads one page of the versions withdrawn from collection
// (id or alias) after addedAfter (exclusive; "" for all), at most limit
// (0: the server's default).
func (c *Client) Withdrawals(ctx context.Context, collection, addedAfter string, limit int) (*WithdrawnPage, error) {
	q := url.Values{}
	if addedAfter != "" {
		q.Set("added_after", addedAfter)
	}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	u := c.Base + "/api/v1/collections/" + url.PathEscape(collection) + "/withdrawn"
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	var p WithdrawnPage
	if err := c.getJSON(ctx, u, "withdrawals", &p); err != nil {
		return nil, err
	}
	return &p, nil
}
