package server_test

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/ctigate/ctigate/stix"
)

func TestObjectsFilters(t *testing.T) {
	g := newGateway(t)
	addVersions(t, g, inbound, 3, 3) // 3 ids × 3 versions (Jan 1, 2, 3)
	// One more object of another type.
	var st status
	malware := `{"type":"malware","spec_version":"2.1","id":"malware--` + uuidN(7) + `","created":"2026-01-05T00:00:00.000Z","modified":"2026-01-05T00:00:00.000Z","name":"x","is_family":false}`
	g.post(inbound+"objects/", "cert-a", env(malware)).expect(t, 202, &st)

	i0, i1, i2, m := "indicator--"+uuidN(0), "indicator--"+uuidN(1), "indicator--"+uuidN(2), "malware--"+uuidN(7)
	cases := []struct {
		query string
		want  []string
	}{
		{"", []string{i0 + "@2026-01-03", i1 + "@2026-01-03", i2 + "@2026-01-03", m + "@2026-01-05"}},
		{"match[version]=last", []string{i0 + "@2026-01-03", i1 + "@2026-01-03", i2 + "@2026-01-03", m + "@2026-01-05"}},
		{"match[version]=first", []string{i0 + "@2026-01-01", i1 + "@2026-01-01", i2 + "@2026-01-01", m + "@2026-01-05"}},
		{"match[version]=first,last", []string{i0 + "@2026-01-01", i1 + "@2026-01-01", i2 + "@2026-01-01", i0 + "@2026-01-03", i1 + "@2026-01-03", i2 + "@2026-01-03", m + "@2026-01-05"}},
		{"match[version]=all&match[id]=" + i1, []string{i1 + "@2026-01-01", i1 + "@2026-01-02", i1 + "@2026-01-03"}},
		{"match[version]=2026-01-02T00:00:00.000Z", []string{i0 + "@2026-01-02", i1 + "@2026-01-02", i2 + "@2026-01-02"}},
		{"match[version]=2026-01-02T00:00:00Z,2026-01-05T00:00:00.000000Z", []string{i0 + "@2026-01-02", i1 + "@2026-01-02", i2 + "@2026-01-02", m + "@2026-01-05"}},
		{"match[type]=malware", []string{m + "@2026-01-05"}},
		{"match[type]=malware,indicator&match[id]=" + i2 + "," + m, []string{i2 + "@2026-01-03", m + "@2026-01-05"}},
		{"match[id]=" + i0 + "&match[id]=" + i2, []string{i0 + "@2026-01-03", i2 + "@2026-01-03"}},
		{"match[type]=campaign", nil},
		{"match[spec_version]=2.1&match[type]=malware", []string{m + "@2026-01-05"}},
		{"match[spec_version]=2.0", nil},
		{"match[unknown]=x&match[type]=malware", []string{m + "@2026-01-05"}},
	}
	for _, c := range cases {
		t.Run(c.query, func(t *testing.T) {
			var e envelope
			r := g.get(inbound+"objects/?"+c.query, "cert-a")
			r.expect(t, 200, &e)
			if got := ids(t, e.Objects); !slices.Equal(got, c.want) {
				t.Errorf("got %v, want %v", got, c.want)
			}
			if e.More {
				t.Error("more is true")
			}
			if len(c.want) == 0 {
				if r.Header.Get("X-TAXII-Date-Added-First") != "" {
					t.Error("date-added header on an empty page")
				}
				if strings.Contains(string(r.Body), `"objects"`) {
					t.Errorf("empty page has an objects member: %s", r.Body)
				}
			}
		})
	}
	for _, q := range []string{"limit=0", "limit=-1", "limit=x", "added_after=yesterday", "added_after=2026-01-01T00:00:00+01:00",
		"match[version]=all,last", "match[version]=newest", "match[version]=first,first", "next=garbage!!", "match[id]=", "limit=1&limit=2"} {
		t.Run("bad "+q, func(t *testing.T) {
			g.get(inbound+"objects/?"+q, "cert-a").expectError(t, 400)
		})
	}
}

// TestPaging walks objects, manifest and versions page by page, with and
// without limit, checking more/next, the date-added headers and added_after.
func TestPaging(t *testing.T) {
	g := newGateway(t)
	addVersions(t, g, inbound, 25, 2)

	type page struct {
		More    bool     `json:"more"`
		Next    string   `json:"next"`
		Objects []any    `json:"objects"`
		Vers    []string `json:"versions"`
	}
	walk := func(t *testing.T, path, query string, limit int) (n int, firsts, lasts []string) {
		t.Helper()
		next := ""
		for range 100 {
			q := url.Values{}
			if limit > 0 {
				q.Set("limit", fmt.Sprint(limit))
			}
			if next != "" {
				q.Set("next", next)
			}
			qs := q.Encode()
			if query != "" {
				qs += "&" + query
			}
			var p page
			r := g.get(path+"?"+qs, "cert-a")
			r.expect(t, 200, &p)
			got := len(p.Objects) + len(p.Vers)
			if limit > 0 && got > limit {
				t.Fatalf("page of %d with limit %d", got, limit)
			}
			n += got
			first, last := r.Header.Get("X-TAXII-Date-Added-First"), r.Header.Get("X-TAXII-Date-Added-Last")
			if got > 0 {
				for _, h := range []string{first, last} {
					if _, err := stix.ParseTimestamp(h); err != nil || len(h) != len("2026-01-01T00:00:00.000000Z") {
						t.Fatalf("date-added header %q: want microseconds and Z", h)
					}
				}
				if len(lasts) > 0 && first <= lasts[len(lasts)-1] {
					t.Fatalf("pages overlap: first %s after last %s", first, lasts[len(lasts)-1])
				}
				firsts, lasts = append(firsts, first), append(lasts, last)
			}
			if !p.More {
				if p.Next != "" {
					t.Errorf("next %q with more false", p.Next)
				}
				return n, firsts, lasts
			}
			if p.Next == "" {
				t.Fatal("more without next")
			}
			next = p.Next
		}
		t.Fatal("paging did not end")
		return
	}
	for _, lim := range []int{0, 1, 7, 25, 50, 1000} {
		t.Run(fmt.Sprint("limit ", lim), func(t *testing.T) {
			if n, _, _ := walk(t, inbound+"objects/", "", lim); n != 25 {
				t.Errorf("objects: %d, want 25", n)
			}
			if n, _, _ := walk(t, inbound+"objects/", "match[version]=all", lim); n != 50 {
				t.Errorf("all versions: %d, want 50", n)
			}
			if n, _, _ := walk(t, inbound+"manifest/", "match[version]=all", lim); n != 50 {
				t.Errorf("manifest: %d, want 50", n)
			}
			if n, _, _ := walk(t, inbound+"objects/indicator--"+uuidN(3)+"/versions/", "", lim); n != 2 {
				t.Errorf("versions: %d, want 2", n)
			}
			if n, _, _ := walk(t, inbound+"objects/indicator--"+uuidN(3)+"/", "match[version]=all", lim); n != 2 {
				t.Errorf("object versions: %d, want 2", n)
			}
		})
	}
	// next without limit (taxii2-client always sends limit; others may not).
	var p page
	g.get(inbound+"objects/?limit=10", "cert-a").expect(t, 200, &p)
	if !p.More || p.Next == "" {
		t.Fatalf("first page: %+v", p)
	}
	var rest page
	g.get(inbound+"objects/?next="+url.QueryEscape(p.Next), "cert-a").expect(t, 200, &rest)
	if len(rest.Objects) != 15 || rest.More {
		t.Errorf("rest after next without limit: %d objects, more %v; want 15, false", len(rest.Objects), rest.More)
	}

	// added_after is exclusive: paging by the Last header also works (§3.5).
	_, _, lasts := walk(t, inbound+"objects/", "match[version]=all", 20)
	r := g.get(inbound+"objects/?match[version]=all&added_after="+lasts[0], "cert-a")
	var after page
	r.expect(t, 200, &after)
	if len(after.Objects) != 30 {
		t.Errorf("added_after %s: %d objects, want 30", lasts[0], len(after.Objects))
	}
	if f := r.Header.Get("X-TAXII-Date-Added-First"); f <= lasts[0] {
		t.Errorf("added_after not exclusive: first %s, after %s", f, lasts[0])
	}
}

func TestManifestAndVersions(t *testing.T) {
	g := newGateway(t)
	addVersions(t, g, inbound, 2, 3)
	var m struct {
		More    bool `json:"more"`
		Objects []struct {
			ID        string `json:"id"`
			DateAdded string `json:"date_added"`
			Version   string `json:"version"`
			MediaType string `json:"media_type"`
		} `json:"objects"`
	}
	r := g.get(inbound+"manifest/?match[version]=all&match[id]=indicator--"+uuidN(1), "cert-a")
	r.expect(t, 200, &m)
	if len(m.Objects) != 3 {
		t.Fatalf("manifest: %+v", m)
	}
	for i, rec := range m.Objects {
		if rec.ID != "indicator--"+uuidN(1) || rec.Version != fmt.Sprintf("2026-01-0%dT00:00:00.000Z", i+1) ||
			rec.MediaType != "application/stix+json;version=2.1" || len(rec.DateAdded) != len("2026-01-01T00:00:00.000000Z") {
			t.Errorf("record %d: %+v", i, rec)
		}
	}
	if r.Header.Get("X-TAXII-Date-Added-First") != m.Objects[0].DateAdded || r.Header.Get("X-TAXII-Date-Added-Last") != m.Objects[2].DateAdded {
		t.Errorf("headers %s..%s do not match records", r.Header.Get("X-TAXII-Date-Added-First"), r.Header.Get("X-TAXII-Date-Added-Last"))
	}

	var v struct {
		More     bool     `json:"more"`
		Versions []string `json:"versions"`
	}
	r = g.get(inbound+"objects/indicator--"+uuidN(0)+"/versions/", "cert-a")
	r.expect(t, 200, &v)
	if !slices.Equal(v.Versions, []string{"2026-01-01T00:00:00.000Z", "2026-01-02T00:00:00.000Z", "2026-01-03T00:00:00.000Z"}) {
		t.Errorf("versions: %+v", v)
	}
	if r.Header.Get("X-TAXII-Date-Added-Last") == "" {
		t.Error("versions without date-added headers")
	}
	g.get(inbound+"objects/indicator--"+uuidN(99)+"/versions/", "cert-a").expectError(t, 404)
	// A known object whose filters select nothing is an empty 200, not 404.
	r = g.get(inbound+"objects/indicator--"+uuidN(0)+"/versions/?match[spec_version]=2.0", "cert-a")
	r.expect(t, 200, nil)
	if string(r.Body) != `{"more":false}` {
		t.Errorf("spec 2.0 versions: %s", r.Body)
	}
}

func TestGetAndDeleteObject(t *testing.T) {
	g := newGateway(t)
	addVersions(t, g, inbound, 2, 3)
	id := "indicator--" + uuidN(1)

	var e envelope
	g.get(inbound+"objects/"+id+"/", "cert-a").expect(t, 200, &e)
	if got := ids(t, e.Objects); !slices.Equal(got, []string{id + "@2026-01-03"}) {
		t.Errorf("get object: %v", got)
	}
	g.get(inbound+"objects/"+id+"/?match[version]=first", "cert-a").expect(t, 200, &e)
	if got := ids(t, e.Objects); !slices.Equal(got, []string{id + "@2026-01-01"}) {
		t.Errorf("first: %v", got)
	}
	g.get(inbound+"objects/indicator--"+uuidN(50)+"/", "cert-a").expectError(t, 404)
	r := g.get(inbound+"objects/"+id+"/?match[version]=2025-01-01T00:00:00Z", "cert-a")
	r.expect(t, 200, nil)
	if string(r.Body) != `{"more":false}` {
		t.Errorf("filtered-out object: %s", r.Body)
	}

	// Delete one version, then the rest.
	del := func(path, user string) response {
		return g.do("DELETE", path, user, nil)
	}
	r = del(inbound+"objects/"+id+"/?match[version]=first", "cert-a")
	if r.Status != 200 || len(r.Body) != 0 || r.Header.Get("Content-Type") != "application/taxii+json;version=2.1" {
		t.Fatalf("delete: %d %q %q", r.Status, r.Body, r.Header.Get("Content-Type"))
	}
	var v struct {
		Versions []string `json:"versions"`
	}
	g.get(inbound+"objects/"+id+"/versions/", "cert-a").expect(t, 200, &v)
	if len(v.Versions) != 2 || v.Versions[0] != "2026-01-02T00:00:00.000Z" {
		t.Errorf("after deleting first: %v", v.Versions)
	}
	g.get(inbound+"objects/"+id+"/?match[version]=first", "cert-a").expect(t, 200, &e)
	if got := ids(t, e.Objects); !slices.Equal(got, []string{id + "@2026-01-02"}) {
		t.Errorf("new first: %v", got)
	}
	if r := del(inbound+"objects/"+id+"/", "cert-a"); r.Status != 200 {
		t.Fatalf("delete all: %d %s", r.Status, r.Body)
	}
	g.get(inbound+"objects/"+id+"/", "cert-a").expectError(t, 404)
	del(inbound+"objects/"+id+"/", "cert-a").expectError(t, 404)
	g.get(inbound+"objects/?match[version]=all", "cert-a").expect(t, 200, &e)
	if len(e.Objects) != 3 {
		t.Errorf("after delete: %d objects, want 3", len(e.Objects))
	}
	var m envelope
	g.get(inbound+"manifest/?match[id]="+id, "cert-a").expect(t, 200, &m)
	if len(m.Objects) != 0 {
		t.Errorf("manifest still lists the deleted object")
	}
	// Readers who may not write, and writers who may not read, cannot delete.
	addVersions(t, g, published, 1, 1)
	del(published+"objects/indicator--"+uuidN(0)+"/", "police").expectError(t, 403)
	del(published+"objects/indicator--"+uuidN(0)+"/", "cert-a").expectError(t, 403)
	del(inbound+"objects/indicator--"+uuidN(0)+"/", "outsider").expectError(t, 404)
}

func TestMethodNotAllowedIsTAXIIError(t *testing.T) {
	g := newGateway(t)
	g.do("PUT", inbound+"objects/", "cert-a", []byte(`{}`)).expectError(t, 405)
}
