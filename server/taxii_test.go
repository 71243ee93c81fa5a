package server_test

import (
	"bytes"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/ctigate/ctigate/stix"
)

func TestDiscoveryAndAPIRoot(t *testing.T) {
	g := newGateway(t)

	var d struct {
		Title    string   `json:"title"`
		Default  string   `json:"default"`
		APIRoots []string `json:"api_roots"`
	}
	g.get("/taxii2/", "police").expect(t, 200, &d)
	if d.Title != "test gateway" || d.Default != "/exchange/" || !slices.Equal(d.APIRoots, []string{"/exchange/"}) {
		t.Errorf("discovery: got %+v", d)
	}

	var r struct {
		Title            string   `json:"title"`
		Versions         []string `json:"versions"`
		MaxContentLength int64    `json:"max_content_length"`
	}
	g.get(root, "police").expect(t, 200, &r)
	if r.Title != "Exchange" || !slices.Equal(r.Versions, []string{"application/taxii+json;version=2.1"}) || r.MaxContentLength != 64<<10 {
		t.Errorf("api root: got %+v", r)
	}
	// Without the trailing slash the same resource is served.
	g.get("/exchange", "police").expect(t, 200, &r)

	g.get("/nosuchroot/", "police").expectError(t, 404)
	g.get("/nosuchroot/collections/", "police").expectError(t, 404)
	g.get("/exchange/no/such/endpoint/at/all/", "police").expectError(t, 404)
}

func TestCollectionsAccess(t *testing.T) {
	g := newGateway(t)
	type col struct {
		ID         string   `json:"id"`
		Alias      string   `json:"alias"`
		CanRead    bool     `json:"can_read"`
		CanWrite   bool     `json:"can_write"`
		MediaTypes []string `json:"media_types"`
	}
	var list struct {
		Collections []col `json:"collections"`
	}
	g.get(root+"collections/", "cert-a").expect(t, 200, &list)
	got := map[string]col{}
	for _, c := range list.Collections {
		got[c.ID] = c
	}
	if len(got) != 2 || !got[inboundID].CanRead || !got[inboundID].CanWrite || got[publishedID].CanRead || !got[publishedID].CanWrite {
		t.Errorf("cert-a collections: got %+v", list.Collections)
	}

	list.Collections = nil
	g.get(root+"collections/", "police").expect(t, 200, &list)
	if len(list.Collections) != 1 || list.Collections[0].ID != publishedID || !list.Collections[0].CanRead || list.Collections[0].CanWrite {
		t.Errorf("police collections: got %+v", list.Collections)
	}

	// The outsider sees no collection: the member is omitted (TAXII 2.1 §5.1.1).
	r := g.get(root+"collections/", "outsider")
	r.expect(t, 200, nil)
	if string(r.Body) != "{}" {
		t.Errorf("outsider collections: got %s, want {}", r.Body)
	}

	var c col
	g.get(published, "police").expect(t, 200, &c)
	if c.ID != publishedID || c.Alias != "law-enforcement" || !c.CanRead || c.CanWrite || len(c.MediaTypes) != 1 {
		t.Errorf("collection: got %+v", c)
	}
	// The alias names the same collection.
	g.get(root+"collections/law-enforcement/", "police").expect(t, 200, &c)
	if c.ID != publishedID {
		t.Errorf("by alias: got id %s", c.ID)
	}
	// A collection the user may neither read nor write does not exist for
	// them (TAXII 2.1 §5.7's rule, used on every endpoint).
	g.get(root+"collections/"+closedID+"/", "police").expectError(t, 404)
	g.get(root+"collections/00000000-0000-4000-8000-000000000000/", "police").expectError(t, 404)
	g.get(inbound+"objects/", "police").expectError(t, 404)
	g.get(published+"objects/", "outsider").expectError(t, 404)
	g.post(published+"objects/", "police", env(indicator(1, "2026-01-01T00:00:00.000Z"))).expectError(t, 403)
	// A writer that may not read is refused reads.
	g.get(published+"objects/", "cert-a").expectError(t, 403)
}

func TestAuthentication(t *testing.T) {
	g := newGateway(t)
	for name, hdr := range map[string]string{
		"none":           "",
		"wrong password": basic("police", "nope"),
		"unknown user":   basic("ghost", "ghost-pw"),
		"malformed":      "Basic !!!",
		"bad token":      "Bearer not-a-token",
		"other scheme":   "Digest x",
	} {
		t.Run(name, func(t *testing.T) {
			r := g.get("/taxii2/", "", "Authorization", hdr)
			r.expectError(t, 401)
			if !strings.Contains(strings.Join(r.Header.Values("WWW-Authenticate"), ","), `Basic realm="ctigate"`) {
				t.Errorf("WWW-Authenticate: got %q", r.Header.Values("WWW-Authenticate"))
			}
			if bytes.Contains(r.Body, []byte("nope")) {
				t.Error("the error echoes the credential")
			}
		})
	}
	// Bearer tokens, also in taxii2-client's "Token" form.
	for _, scheme := range []string{"Bearer ", "Token "} {
		var c struct {
			ID string `json:"id"`
		}
		g.get(published, "", "Authorization", scheme+testToken).expect(t, 200, &c)
		if c.ID != publishedID {
			t.Errorf("%stoken: got %+v", scheme, c)
		}
	}
	// A right password after a wrong one, and a wrong one after a right one.
	g.get("/taxii2/", "police").expect(t, 200, nil)
	g.get("/taxii2/", "", "Authorization", basic("police", "police-pw-wrong")).expectError(t, 401)
	g.get("/taxii2/", "police").expect(t, 200, nil)
}

func TestContentNegotiation(t *testing.T) {
	g := newGateway(t)
	for _, accept := range []string{"application/taxii+json;version=2.1", "application/taxii+json", "*/*",
		"application/json, application/taxii+json;version=2.1;q=0.5", "APPLICATION/TAXII+JSON; version=2.1", ""} {
		g.get("/taxii2/", "police", "Accept", accept).expect(t, 200, nil)
	}
	for _, accept := range []string{"application/json", "application/taxii+json;version=2.0", "text/html", "application/taxii+json;version=2.1;q=0"} {
		g.get("/taxii2/", "police", "Accept", accept).expectError(t, 406)
		g.get(published+"objects/", "police", "Accept", accept).expectError(t, 406)
	}
	body := env(indicator(1, "2026-01-01T00:00:00.000Z"))
	for _, ct := range []string{"application/json", "application/stix+json;version=2.1", "application/taxii+json;version=2.0", "text/plain", ""} {
		g.post(inbound+"objects/", "cert-a", body, "Content-Type", ct).expectError(t, 415)
	}
	g.post(inbound+"objects/", "cert-a", body, "Content-Type", "application/taxii+json").expect(t, 202, nil)
}

func TestAddObjectsMixedAndStatus(t *testing.T) {
	g := newGateway(t)
	dupKey := `{"type":"indicator","spec_version":"2.1","id":"indicator--` + uuidN(90) + `","created":"2026-01-01T00:00:00.000Z","modified":"2026-01-01T00:00:00.000Z","pattern":"[a:b = 'c']","pattern":"[x:y = 'z']","pattern_type":"stix","valid_from":"2026-01-01T00:00:00Z"}`
	badTime := strings.Replace(indicator(91, "2026-01-01T00:00:00.000Z"), `"created":"2026-01-01T00:00:00.000Z"`, `"created":"2026-101-01T00:00:00.000Z"`, 1)
	body := env(indicator(1, "2026-01-01T00:00:00.000Z"), dupKey, indicator(2, "2026-01-01T00:00:00.000Z"), badTime, `42`)
	var st status
	g.post(inbound+"objects/", "cert-a", body).expect(t, 202, &st)
	if st.Status != "complete" || st.TotalCount != 5 || st.SuccessCount != 2 || st.FailureCount != 3 || st.PendingCount != 0 ||
		len(st.Successes) != 2 || len(st.Failures) != 3 {
		t.Fatalf("status: got %+v", st)
	}
	if st.Successes[0].ID != "indicator--"+uuidN(1) || st.Successes[0].Version != "2026-01-01T00:00:00.000Z" {
		t.Errorf("success: got %+v", st.Successes[0])
	}
	for i, wantID := range []string{"indicator--" + uuidN(90), "indicator--" + uuidN(91), "objects[4]"} {
		if f := st.Failures[i]; f.ID != wantID || f.Message == "" {
			t.Errorf("failure %d: got %+v, want id %s and a reason", i, f, wantID)
		}
	}
	if !strings.Contains(strings.ToLower(st.Failures[0].Message), "duplicate") {
		t.Errorf("duplicate-key failure reason: got %q", st.Failures[0].Message)
	}

	// The status is where taxii2-client looks: ../../status/<id>/ from the collection.
	u, _ := url.Parse(g.URL + inbound)
	statusURL := u.ResolveReference(&url.URL{Path: "../../status/" + st.ID + "/"})
	var again status
	g.get(statusURL.Path, "cert-a").expect(t, 200, &again)
	if again.ID != st.ID || again.SuccessCount != 2 || again.FailureCount != 3 {
		t.Errorf("status again: got %+v", again)
	}
	// Others do not see it; unknown ids are 404.
	g.get(statusURL.Path, "police").expectError(t, 404)
	g.get(root+"status/7d4bdc05-4a26-4c4d-9a39-5c3bd3e8f8e4/", "cert-a").expectError(t, 404)

	// Only the valid objects were stored, byte for byte.
	var e envelope
	g.get(inbound+"objects/", "cert-a").expect(t, 200, &e)
	if len(e.Objects) != 2 || string(e.Objects[0]) != indicator(1, "2026-01-01T00:00:00.000Z") || string(e.Objects[1]) != indicator(2, "2026-01-01T00:00:00.000Z") {
		t.Errorf("stored objects: got %s", e.Objects)
	}

	// Re-posting is idempotent: success again, nothing added.
	g.post(inbound+"objects/", "cert-a", env(indicator(1, "2026-01-01T00:00:00.000Z"))).expect(t, 202, &st)
	if st.SuccessCount != 1 {
		t.Errorf("re-post: got %+v", st)
	}
	g.get(inbound+"objects/", "cert-a").expect(t, 200, &e)
	if len(e.Objects) != 2 {
		t.Errorf("after re-post: got %d objects, want 2", len(e.Objects))
	}
}

func TestAddObjectsRejectsBadEnvelopes(t *testing.T) {
	g := newGateway(t)
	for name, body := range map[string]string{
		"malformed json":        `{"objects":[`,
		"not an object":         `[1,2]`,
		"duplicate objects key": `{"objects":[` + indicator(1, "2026-01-01T00:00:00.000Z") + `],"objects":[]}`,
		"objects not an array":  `{"objects":{}}`,
		"invalid utf-8":         "{\"objects\":[{\"type\":\"x\xff\"}]}",
		"trailing garbage":      `{"objects":[` + indicator(1, "2026-01-01T00:00:00.000Z") + `]} {}`,
	} {
		t.Run(name, func(t *testing.T) {
			e := g.post(inbound+"objects/", "cert-a", []byte(body)).expectError(t, 400)
			if e.Description == "" {
				t.Error("no description")
			}
		})
	}
	var e envelope
	g.get(inbound+"objects/", "cert-a").expect(t, 200, &e)
	if len(e.Objects) != 0 {
		t.Errorf("bad envelopes stored %d objects", len(e.Objects))
	}
}

func TestAddObjectsTooLarge(t *testing.T) {
	g := newGateway(t)
	big := make([]string, 0, 400)
	for i := range 400 {
		big = append(big, indicator(i, "2026-01-01T00:00:00.000Z"))
	}
	body := env(big...) // well over 64 KiB
	g.post(inbound+"objects/", "cert-a", body).expectError(t, 413)

	// Without Content-Length (chunked), the limit holds too.
	req, _ := http.NewRequest(http.MethodPost, g.URL+inbound+"objects/", struct{ *bytes.Reader }{bytes.NewReader(body)})
	req.Header.Set("Content-Type", "application/taxii+json;version=2.1")
	req.Header.Set("Accept", "application/taxii+json;version=2.1")
	req.SetBasicAuth("cert-a", "cert-a-pw")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 413 || len(req.TransferEncoding) == 0 && req.ContentLength > 0 {
		t.Errorf("chunked oversized body: got %d (content length %d), want 413", res.StatusCode, req.ContentLength)
	}
	// Just under the limit is accepted.
	g.post(inbound+"objects/", "cert-a", env(big[:100]...)).expect(t, 202, nil)
}

// addVersions posts n indicators with v versions each and returns the
// object ids in posting order.
func addVersions(t *testing.T, g *gateway, path string, n, v int) []string {
	t.Helper()
	var ids []string
	for ver := range v {
		var objs []string
		for i := range n {
			objs = append(objs, indicator(i, fmt.Sprintf("2026-01-0%dT00:00:00.000Z", ver+1)))
			if ver == 0 {
				ids = append(ids, "indicator--"+uuidN(i))
			}
		}
		var st status
		g.post(path+"objects/", "cert-a", env(objs...)).expect(t, 202, &st)
		if st.SuccessCount != n {
			t.Fatalf("post: got %+v", st)
		}
	}
	return ids
}

func ids(t *testing.T, objs []jsontext.Value) []string {
	t.Helper()
	var out []string
	for _, o := range objs {
		var x struct {
			ID       string `json:"id"`
			Modified string `json:"modified"`
		}
		if err := json.Unmarshal(o, &x); err != nil {
			t.Fatal(err)
		}
		out = append(out, x.ID+"@"+x.Modified[:10])
	}
	return out
}

// TestAddObjectsReceiptsAndConflicts: each success carries the SHA-256 of
// the object's RFC 8785 canonical form; re-posting the same version with
// other content is a failure that leaves the first copy in place.
func TestAddObjectsReceiptsAndConflicts(t *testing.T) {
	g := newGateway(t)
	orig := indicator(1, "2026-01-01T00:00:00.000Z")
	// The same object with whitespace and member order changed: same
	// canonical form, so the same hash.
	reordered := strings.Replace(strings.Replace(orig, `{"type":"indicator",`, `{ `, 1), `"pattern_type":"stix",`, `"pattern_type":"stix", "type" : "indicator",`, 1)
	changed := strings.Replace(orig, "198.51.100.1'", "198.51.100.99'", 1)
	want, err := stix.Hash([]byte(orig))
	if err != nil {
		t.Fatal(err)
	}

	var st status
	g.post(inbound+"objects/", "cert-a", env(orig)).expect(t, 202, &st)
	if st.SuccessCount != 1 || st.Successes[0].Message != fmt.Sprintf("added; TLP:none; sha256 %x", want) {
		t.Fatalf("first post: %+v", st)
	}
	g.post(inbound+"objects/", "cert-a", env(reordered)).expect(t, 202, &st)
	if st.SuccessCount != 1 || st.Successes[0].Message != fmt.Sprintf("already stored; TLP:none; sha256 %x", want) {
		t.Fatalf("same object reformatted: %+v", st)
	}
	g.post(inbound+"objects/", "cert-a", env(changed)).expect(t, 202, &st)
	if st.FailureCount != 1 || st.SuccessCount != 0 || !strings.Contains(st.Failures[0].Message, fmt.Sprintf("conflict: a different object with this id and version is already stored (sha256 %x)", want)) {
		t.Fatalf("changed content, same version: %+v", st)
	}
	var e envelope
	g.get(inbound+"objects/", "cert-a").expect(t, 200, &e)
	if len(e.Objects) != 1 || string(e.Objects[0]) != orig {
		t.Errorf("stored: %s, want the first copy", e.Objects)
	}
}
