package client

import (
	"context"
	"net/url"
)

// Feedback is GET /api/v1/statuses/{id}/decisions: what each route decided
// about the objects of one request.
type Feedback struct {
	Status     string          `json:"status"`
	Collection string          `json:"collection"`
	Objects    int             `json:"objects"`
	Routes     []RouteFeedback `json:"routes"`
	Withheld   []Withheld      `json:"withheld,omitempty"`
}

// RouteFeedback counts one route's decisions.
type RouteFeedback struct {
	Route     string         `json:"route"`
	Published int            `json:"published"`
	Redacted  int            `json:"redacted"`
	Withheld  int            `json:"withheld"`
	Pending   int            `json:"pending"`
	Reasons   map[string]int `json:"reasons,omitempty"`
}

// Withheld is one withheld version.
type Withheld struct {
	Route   string `json:"route"`
	ID      string `json:"id"`
	Version string `json:"version,omitempty"`
	Reason  string `json:"reason"`
	Detail  string `json:"detail,omitempty"`
}

// Feedback reads what the routes decided about the objects of status.
func (c *Client) Feedback(ctx context.Context, status string) (*Feedback, error) {
	var f Feedback
	if err := c.getJSON(ctx, c.Base+"/api/v1/statuses/"+url.PathEscape(status)+"/decisions", "decisions", &f); err != nil {
		return nil, err
	}
	return &f, nil
}
