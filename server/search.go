package server

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/go-json-experiment/json"
	"github.com/labstack/echo/v4"

	"github.com/ctigate/ctigate"
	"github.com/ctigate/ctigate/search"
	"github.com/ctigate/ctigate/stix"
)

// Searcher answers observable lookups (search.Searcher).
type Searcher interface {
	Search(ctx context.Context, q search.Query) (search.Result, error)
}

// searchRole may use the analyst API (DESIGN.md, "Roles").
const searchRole = "analyst"

var (
	errCannotSearch = ctigate.E("server.getSearch", ctigate.Forbidden, "searching requires the analyst role")
	errNoSearch     = ctigate.E("server.getSearch", ctigate.Unavailable, "search is not available on this server's store")
)

// searchPage is the response of GET /api/v1/search.
type searchPage struct {
	Query searchQueryJSON `json:"query"`
	Hits  []searchHitJSON `json:"hits"`
	// Next, when set, is the next value of the next page.
	Next string `json:"next,omitempty"`
}

type searchQueryJSON struct {
	Value      string `json:"value"`
	Kind       string `json:"kind"`
	Normalised string `json:"normalised"`
}

type searchHitJSON struct {
	ID         string            `json:"id"`
	Type       string            `json:"type"`
	Version    string            `json:"version,omitempty"`
	Collection searchCollJSON    `json:"collection"`
	TLP        string            `json:"tlp"`
	Producer   string            `json:"producer,omitempty"`
	Labels     []string          `json:"labels,omitempty"`
	Revoked    bool              `json:"revoked,omitempty"`
	FirstSeen  string            `json:"first_seen"`
	LastSeen   string            `json:"last_seen"`
	Matched    []string          `json:"matched"`
	Links      map[string]string `json:"links"`
}

type searchCollJSON struct {
	ID      string `json:"id"`
	Title   string `json:"title"`
	APIRoot string `json:"api_root"`
}

// getSearch looks an observable up across the collections the caller may
// read: ?value=V&type=T&label=L&tlp=TLP:X&producer=O&added_after=…&added_before=…&limit=N&next=C.
func (s *Server) getSearch(c echo.Context) error {
	u := userOf(c)
	if u == nil || !u.HasRole(searchRole) {
		return errCannotSearch
	}
	if s.search == nil {
		return errNoSearch
	}
	qp := c.QueryParams()
	for k := range qp {
		switch k {
		case "value", "type", "label", "tlp", "producer", "added_after", "added_before", "limit", "next":
		default:
			return invalidf("unknown parameter %q", k)
		}
	}
	for _, k := range []string{"value", "added_after", "added_before", "limit", "next"} {
		if len(qp[k]) > 1 {
			return invalidf("%s: give it once", k)
		}
	}
	q := search.Query{
		Value: c.QueryParam("value"), Next: c.QueryParam("next"),
		Types: splitList(qp["type"]), Labels: qp["label"], Producers: qp["producer"],
	}
	if q.Value == "" {
		return invalidf("value is required: an IP address or CIDR network, domain, URL, e-mail address or file hash")
	}
	for _, t := range splitList(qp["tlp"]) {
		tlp, ok := parseTLP(t)
		if !ok {
			return invalidf("tlp: %q is not a TLP level (CLEAR, GREEN, AMBER, AMBER+STRICT, RED, none)", t)
		}
		q.TLPs = append(q.TLPs, tlp)
	}
	for _, p := range []struct {
		name string
		dst  *time.Time
	}{{"added_after", &q.AddedAfter}, {"added_before", &q.AddedBefore}} {
		if v := c.QueryParam(p.name); v != "" {
			t, err := stix.ParseTimestamp(v)
			if err != nil {
				return invalidf("%s: %q is not a timestamp like 2026-01-02T15:04:05.000000Z", p.name, v)
			}
			*p.dst = t
		}
	}
	if v := c.QueryParam("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return invalidf("limit must be a positive integer")
		}
		q.Limit = min(n, search.MaxLimit)
	}
	colls := map[string]*collection{}
	acc := s.viewOf(c).access
	for _, r := range s.viewOf(c).roots {
		for _, col := range r.collections {
			// A collection that hides its producers cannot be searched by
			// producer: that would tell them.
			if acc.CanRead(u, col.cfg.ID) && !(len(q.Producers) > 0 && acc.HidesProducer(col.cfg.ID)) {
				q.Collections = append(q.Collections, col.cfg.ID)
				colls[col.cfg.ID] = col
			}
		}
	}
	res, err := s.search.Search(c.Request().Context(), q)
	if err != nil {
		return err
	}
	page := searchPage{
		Query: searchQueryJSON{Value: q.Value, Kind: res.Kind, Normalised: res.Normalised},
		Hits:  make([]searchHitJSON, 0, len(res.Hits)),
		Next:  res.Next,
	}
	for _, h := range res.Hits {
		col := colls[h.Collection]
		if col == nil {
			continue // a searcher returns only what was asked for; fail closed if not
		}
		j := searchHitJSON{
			ID: h.ID, Type: h.Type, TLP: h.TLP, Producer: h.Producer, Labels: h.Labels, Revoked: h.Revoked,
			Collection: searchCollJSON{ID: col.cfg.ID, Title: col.cfg.Title, APIRoot: col.root.cfg.Name},
			FirstSeen:  formatDateAdded(h.FirstSeen), LastSeen: formatDateAdded(h.LastSeen), Matched: h.Matched,
			Links: map[string]string{"object": "/" + col.root.cfg.Name + "/collections/" + col.cfg.ID + "/objects/" + h.ID + "/"},
		}
		if !h.Version.IsZero() {
			j.Version = stix.FormatTimestamp(h.Version)
		}
		if acc.HidesProducer(h.Collection) {
			j.Producer = ""
		}
		page.Hits = append(page.Hits, j)
	}
	b, err := json.Marshal(page)
	if err != nil {
		return ctigate.E("server.getSearch", err)
	}
	h := c.Response().Header()
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	return c.Blob(http.StatusOK, echo.MIMEApplicationJSON, b)
}

// splitList splits comma-separated parameter values.
func splitList(vals []string) []string {
	var out []string
	for _, v := range vals {
		for _, p := range strings.Split(v, ",") {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
	}
	return out
}

// parseTLP reads a TLP level as stix.TLP.String() spells it, with or
// without "TLP:", in any case; WHITE is CLEAR.
func parseTLP(s string) (string, bool) {
	v := strings.ToUpper(strings.TrimPrefix(strings.TrimPrefix(s, "TLP:"), "tlp:"))
	switch v {
	case "WHITE":
		v = "CLEAR"
	case "NONE":
		return stix.TLPNone.String(), true
	}
	for t := stix.TLPClear; t <= stix.TLPRed; t++ {
		if t.String() == "TLP:"+v {
			return t.String(), true
		}
	}
	return "", false
}
