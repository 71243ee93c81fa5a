package client

import (
	"context"
	"fmt"
	"net/http"
	"net/url"

	"github.com/go-json-experiment/json"
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
	_, b, err := c.Do(ctx, http.MethodGet, c.Base+"/api/v1/statuses/"+url.PathEscape(status)+"/decisions", nil)
	if err != nil {
		return nil, err
	}
	var f Feedback
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("reading decisions: %w", err)
	}
	return &f, nil
}
