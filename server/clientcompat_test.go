package server_test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/go-json-experiment/json"
)

// taxii2Client replays what the OASIS reference client, taxii2-client 2.3
// (taxii2client/v21), sends and checks, request by request: its Accept and
// Content-Type headers, its response Content-Type test, its URL derivations
// (urljoin, "../../status/<id>" from the collection URL), requests-style
// percent-encoded filters, and as_pages, which sends limit with every next.
type taxii2Client struct {
	t          *testing.T
	user, pass string
}

const clientMediaType = "application/taxii+json;version=2.1"

// validContentType is taxii2client.common._to_json's check.
func validContentType(contentType string) bool {
	accept := strings.Split(strings.ReplaceAll(clientMediaType, " ", ""), ";")
	ct := strings.Split(strings.ReplaceAll(contentType, " ", ""), ";")
	for _, a := range accept {
		found := false
		for _, c := range ct {
			found = found || a == c
		}
		if !found {
			return false
		}
	}
	return ct[0] == "application/taxii+json"
}

func (c *taxii2Client) get(u string, params url.Values) map[string]any {
	c.t.Helper()
	if len(params) > 0 {
		u += "?" + params.Encode() // requests percent-encodes [ ] , :
	}
	req, _ := http.NewRequest("GET", u, nil)
	req.Header.Set("Accept", clientMediaType)
	req.Header.Set("User-Agent", "taxii2-client/2.3.0")
	req.SetBasicAuth(c.user, c.pass)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode/100 != 2 { // raise_for_status
		c.t.Fatalf("GET %s: %d %s", u, res.StatusCode, b)
	}
	if !validContentType(res.Header.Get("Content-Type")) {
		c.t.Fatalf("GET %s: the client rejects Content-Type %q", u, res.Header.Get("Content-Type"))
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		c.t.Fatal(err)
	}
	return m
}

func (c *taxii2Client) do(method, u string, body []byte) (int, map[string]any) {
	c.t.Helper()
	req, _ := http.NewRequest(method, u, bytes.NewReader(body))
	req.Header.Set("Accept", clientMediaType)
	if body != nil {
		req.Header.Set("Content-Type", clientMediaType)
	}
	req.SetBasicAuth(c.user, c.pass)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	var m map[string]any
	if len(b) > 0 {
		if err := json.Unmarshal(b, &m); err != nil {
			c.t.Fatalf("%s %s: %v", method, u, err)
		}
	}
	return res.StatusCode, m
}

func urljoin(base, ref string) string {
	b, _ := url.Parse(base)
	r, _ := url.Parse(ref)
	return b.ResolveReference(r).String()
}

func withSlash(u string) string {
	if !strings.HasSuffix(u, "/") {
		return u + "/"
	}
	return u
}

// asPages is taxii2client.v21.as_pages.
func (c *taxii2Client) asPages(u string, perRequest int, filters url.Values, member string) int {
	c.t.Helper()
	params := func(next string) url.Values {
		p := url.Values{}
		for k, v := range filters {
			p[k] = v
		}
		if perRequest > 0 {
			p.Set("limit", fmt.Sprint(perRequest))
		}
		if next != "" {
			p.Set("next", next)
		}
		return p
	}
	env := c.get(u, params(""))
	items, _ := env[member].([]any)
	total := len(items)
	if more, _ := env["more"].(bool); more && len(items) != perRequest {
		perRequest = len(items)
	}
	for range 10000 {
		more, _ := env["more"].(bool)
		if !more {
			return total
		}
		next, _ := env["next"].(string)
		if next == "" {
			c.t.Fatal("more without next: the client would loop on the first page")
		}
		env = c.get(u, params(next))
		items, _ = env[member].([]any)
		total += len(items)
	}
	c.t.Fatal("as_pages did not end")
	return 0
}

func TestTAXII2ClientCompatibility(t *testing.T) {
	g := newGateway(t)
	c := &taxii2Client{t: t, user: "cert-a", pass: "cert-a-pw"}

	// Server(url) → discovery → ApiRoot(urljoin(discovery, each)).
	discovery := g.URL + "/taxii2/"
	d := c.get(discovery, nil)
	if d["title"] == "" {
		t.Fatal("discovery without title")
	}
	apiRoot := withSlash(urljoin(discovery, d["api_roots"].([]any)[0].(string)))
	ar := c.get(apiRoot, nil)
	if ar["title"] == "" || len(ar["versions"].([]any)) == 0 || ar["max_content_length"] == nil {
		t.Fatalf("api root: %v", ar)
	}

	// ApiRoot.collections → Collection(collections_url + id + "/").
	cols := c.get(apiRoot+"collections/", nil)["collections"].([]any)
	var colURL string
	for _, x := range cols {
		m := x.(map[string]any)
		if m["id"] == inboundID {
			colURL = apiRoot + "collections/" + m["id"].(string) + "/"
			if m["title"] == "" || m["can_read"] != true || m["can_write"] != true {
				t.Fatalf("collection: %v", m)
			}
		}
	}
	col := c.get(colURL, nil)
	if !strings.Contains(colURL, col["id"].(string)) {
		t.Fatal("the client requires the collection id in its URL")
	}

	// add_objects, then the status URL the client derives.
	var objs []string
	for i := range 30 {
		objs = append(objs, indicator(i, "2026-01-01T00:00:00.000Z"))
	}
	code, st := c.do("POST", colURL+"objects/", env(objs...))
	if code != 202 {
		t.Fatalf("add_objects: %d %v", code, st)
	}
	statusURL := withSlash(urljoin(colURL, "../../status/"+st["id"].(string)))
	if !strings.HasSuffix(statusURL, "/exchange/status/"+st["id"].(string)+"/") {
		t.Fatalf("derived status URL %s", statusURL)
	}
	s := c.get(statusURL, nil)
	counts := 0.0
	for _, k := range []string{"success_count", "failure_count", "pending_count"} {
		counts += s[k].(float64)
	}
	if s["status"] != "complete" || s["total_count"].(float64) != counts || s["success_count"].(float64) != 30 {
		t.Fatalf("status: %v", s)
	}
	// The client's Status checks len(list) == count for every list, even absent ones.
	for list, count := range map[string]string{"successes": "success_count", "failures": "failure_count", "pendings": "pending_count"} {
		items, _ := s[list].([]any)
		if float64(len(items)) != s[count].(float64) {
			t.Errorf("%s has %d entries, %s is %v", list, len(items), count, s[count])
		}
	}

	// as_pages over objects and manifest, with filters, several page sizes.
	f := url.Values{"match[type]": {"indicator"}, "match[version]": {"last"}}
	for _, per := range []int{0, 1, 7, 30, 100} {
		if n := c.asPages(colURL+"objects/", per, f, "objects"); n != 30 {
			t.Errorf("as_pages(get_objects, per_request=%d): %d objects, want 30", per, n)
		}
		if n := c.asPages(colURL+"manifest/", per, url.Values{}, "objects"); n != 30 {
			t.Errorf("as_pages(get_manifest, per_request=%d): %d records, want 30", per, n)
		}
	}
	id := "indicator--" + uuidN(4)
	if got := c.get(colURL+"objects/"+id+"/", url.Values{"match[version]": {"2026-01-01T00:00:00Z"}})["objects"].([]any); len(got) != 1 {
		t.Errorf("get_object: %v", got)
	}
	if v := c.get(colURL+"objects/"+id+"/versions/", nil)["versions"].([]any); len(v) != 1 {
		t.Errorf("object_versions: %v", v)
	}
	if code, _ := c.do("DELETE", colURL+"objects/"+id+"/", nil); code != 200 {
		t.Errorf("delete_object: %d", code)
	}
	if n := c.asPages(colURL+"objects/", 10, nil, "objects"); n != 29 {
		t.Errorf("after delete: %d objects, want 29", n)
	}
}
