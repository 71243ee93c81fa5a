package server

import (
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/ctigate/ctigate/config"
	"github.com/ctigate/ctigate/stix"
	"github.com/ctigate/ctigate/store"
)

// Query parameters an endpoint accepts (TAXII 2.1 §3.4).
type params uint8

const (
	pAddedAfter params = 1 << iota
	pLimit
	pNext
	pID
	pType
	pVersion
	pSpecVersion
)

const (
	paramsObjects  = pAddedAfter | pLimit | pNext | pID | pType | pVersion | pSpecVersion
	paramsObject   = pAddedAfter | pLimit | pNext | pVersion | pSpecVersion
	paramsVersions = pAddedAfter | pLimit | pNext | pSpecVersion
	paramsDelete   = pVersion | pSpecVersion
)

// parseQuery reads the filters of one endpoint. Parameters the endpoint
// does not define are ignored (§3.4.1 allows it); malformed ones are 400.
func (s *Server) parseQuery(paging config.Paging, v url.Values, allow params) (store.Query, error) {
	q := store.Query{Limit: paging.DefaultLimit}
	one := func(name string) (string, bool, error) {
		vals := v[name]
		switch len(vals) {
		case 0:
			return "", false, nil
		case 1:
			return vals[0], true, nil
		default:
			return "", false, invalidf("%s given %d times; give it once", name, len(vals))
		}
	}
	list := func(name string) ([]string, error) {
		var out []string
		for _, val := range v[name] {
			for _, item := range strings.Split(val, ",") {
				item = strings.TrimSpace(item)
				if item == "" {
					return nil, invalidf("%s has an empty value", name)
				}
				out = append(out, item)
			}
		}
		return out, nil
	}

	if allow&pAddedAfter != 0 {
		s, ok, err := one("added_after")
		if err != nil {
			return q, err
		}
		if ok {
			t, err := stix.ParseTimestamp(s)
			if err != nil {
				return q, invalidf("added_after: %q is not a timestamp like 2026-01-02T15:04:05.000000Z", s)
			}
			q.AddedAfter = t
		}
	}
	if allow&pLimit != 0 {
		s2, ok, err := one("limit")
		if err != nil {
			return q, err
		}
		if ok {
			n, err := strconv.Atoi(s2)
			if err != nil || n < 1 {
				return q, invalidf("limit: %q is not a positive integer", s2)
			}
			q.Limit = min(n, paging.MaxLimit)
		}
	}
	if allow&pNext != 0 {
		s, _, err := one("next")
		if err != nil {
			return q, err
		}
		q.Next = s
	}
	var err error
	if allow&pID != 0 {
		if q.IDs, err = list("match[id]"); err != nil {
			return q, err
		}
	}
	if allow&pType != 0 {
		if q.Types, err = list("match[type]"); err != nil {
			return q, err
		}
	}
	if allow&pSpecVersion != 0 {
		if q.SpecVersions, err = list("match[spec_version]"); err != nil {
			return q, err
		}
	}
	if allow&pVersion != 0 {
		vals, err := list("match[version]")
		if err != nil {
			return q, err
		}
		if q.Versions, err = parseVersions(vals); err != nil {
			return q, err
		}
	}
	return q, nil
}

// parseVersions reads match[version]: first, last, all or timestamps.
func parseVersions(vals []string) ([]store.VersionMatch, error) {
	var out []store.VersionMatch
	for _, val := range vals {
		var m store.VersionMatch
		switch val {
		case "first":
			m.Kind = store.First
		case "last":
			m.Kind = store.Last
		case "all":
			m.Kind = store.All
		default:
			t, err := stix.ParseTimestamp(val)
			if err != nil {
				return nil, invalidf("match[version]: %q is not first, last, all or a timestamp", val)
			}
			m = store.VersionMatch{Kind: store.At, At: t}
		}
		if slices.ContainsFunc(out, func(o store.VersionMatch) bool { return o.Kind == m.Kind && o.At.Equal(m.At) }) {
			return nil, invalidf("match[version]: %q given twice", val)
		}
		out = append(out, m)
	}
	if len(out) > 1 && slices.ContainsFunc(out, func(o store.VersionMatch) bool { return o.Kind == store.All }) {
		return nil, invalidf("match[version]: all cannot be combined with other values")
	}
	return out, nil
}
