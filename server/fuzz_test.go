package server

import (
	"net/url"
	"testing"

	"github.com/ctigate/ctigate/config"
	"github.com/ctigate/ctigate/store"
)

// FuzzParseQuery feeds hostile query strings to the filter parser: it must
// never panic, and what it accepts must respect the paging bounds.
func FuzzParseQuery(f *testing.F) {
	for _, seed := range []string{
		"", "limit=10&next=abc", "match[version]=first,last", "match[version]=all",
		"added_after=2026-01-01T00:00:00.000000Z", "match[id]=a,b&match[type]=indicator",
		"match[version]=2016-01-01T01:01:01.123Z", "limit=99999999999999999999", "match%5Bid%5D=%2C",
	} {
		f.Add(seed)
	}
	s, paging := &Server{}, config.Paging{DefaultLimit: 100, MaxLimit: 500}
	f.Fuzz(func(t *testing.T, raw string) {
		v, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		for _, allow := range []params{paramsObjects, paramsObject, paramsVersions, paramsDelete} {
			q, err := s.parseQuery(paging, v, allow)
			if err != nil {
				continue
			}
			if q.Limit < 1 || q.Limit > 500 {
				t.Fatalf("limit %d outside 1..500", q.Limit)
			}
			all := 0
			for _, m := range q.Versions {
				if m.Kind == store.All {
					all++
				}
			}
			if all > 0 && len(q.Versions) > 1 {
				t.Fatalf("all combined with other versions: %v", q.Versions)
			}
		}
	})
}

// FuzzAccept: content negotiation never panics on hostile Accept headers.
func FuzzAccept(f *testing.F) {
	for _, seed := range []string{"", "*/*", "application/taxii+json;version=2.1", "a/b;q=x, application/*;q=0", ";;;,,,"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, accept string) {
		_ = acceptsTAXII([]string{accept})
	})
}
