package server_test

import (
	"cmp"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/ctigate/ctigate/config"
	"github.com/ctigate/ctigate/stix"

	"github.com/ctigate/ctigate/internal/shared"
)

// sharedTestdata returns the path of <name> in the shared test data
// (package shared: skipped when absent, failing in CI).
func sharedTestdata(t *testing.T, name string) string {
	t.Helper()
	return shared.Path(t, name)
}

// TestPostRealDatasets posts real STIX 2.1 bundles (MITRE ATT&CK, the
// OASIS examples) as they are: every object must be accepted, and reading
// the collections back gives every object's original bytes. ATT&CK ICS
// 17.1 goes to a collection of its own: see TestConflictingRereleases.
func TestPostRealDatasets(t *testing.T) {
	g := newGateway(t, func(c *config.Config) {
		c.APIRoots[0].MaxContentLength = 16 << 20
		c.Paging.MaxLimit = 5000
	})
	var files []string
	for _, pat := range []string{"attack/*.json", "oasis-examples/*.json"} {
		m, _ := filepath.Glob(filepath.Join(sharedTestdata(t, ""), pat))
		files = append(files, m...)
	}
	if len(files) < 10 {
		t.Fatalf("found only %d dataset files", len(files))
	}
	want := map[string]map[string]string{inbound: {}, published: {}} // collection → id@version → raw bytes
	for _, f := range files {
		coll := inbound
		if strings.HasSuffix(f, "ics-attack-17.1.json") {
			coll = published
		}
		if strings.HasSuffix(f, "interop-objectmarking-test.json") {
			continue // a single object, not a bundle; posted below in an envelope
		}
		body, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var bundle struct {
			Objects []jsontext.Value `json:"objects"`
		}
		if err := json.Unmarshal(body, &bundle); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		var st status
		g.post(coll+"objects/", "cert-a", body).expect(t, 202, &st)
		if st.TotalCount != len(bundle.Objects) || st.FailureCount != 0 {
			for _, fl := range st.Failures {
				t.Errorf("%s: rejected %s: %s", filepath.Base(f), fl.ID, fl.Message)
			}
			t.Fatalf("%s: total %d, successes %d, failures %d; want %d successes", filepath.Base(f), st.TotalCount, st.SuccessCount, st.FailureCount, len(bundle.Objects))
		}
		for _, o := range bundle.Objects {
			key := versionKey(t, o)
			if _, dup := want[coll][key]; !dup {
				want[coll][key] = string(o) // the first copy is kept
			}
		}
	}
	single, err := os.ReadFile(filepath.Join(sharedTestdata(t, "oasis-examples"), "interop-objectmarking-test.json"))
	if err != nil {
		t.Fatal(err)
	}
	var st status
	g.post(inbound+"objects/", "cert-a", env(strings.TrimSpace(string(single)))).expect(t, 202, &st)
	if st.SuccessCount != 1 {
		t.Errorf("interop-objectmarking-test.json: %+v", st)
	}
	want[inbound]["campaign--"] = "" // counted below

	// Read everything back, every version, page by page.
	for coll, w := range want {
		got := readAll(t, g, coll)
		for k, raw := range w {
			if k != "campaign--" && got[k] != raw {
				t.Errorf("%s: stored bytes differ from the first posted copy", k)
			}
		}
		if len(got) != len(w) {
			t.Errorf("%s: read back %d versions, want %d", coll, len(got), len(w))
		}
	}
}

// versionKey is "<id>@<version>" of a STIX object: its modified, else created.
func versionKey(t *testing.T, o jsontext.Value) string {
	t.Helper()
	var x struct {
		ID       string `json:"id"`
		Modified string `json:"modified"`
		Created  string `json:"created"`
	}
	if err := json.Unmarshal(o, &x); err != nil {
		t.Fatal(err)
	}
	return x.ID + "@" + cmp.Or(x.Modified, x.Created)
}

// readAll reads every version in a collection, by versionKey.
func readAll(t *testing.T, g *gateway, coll string) map[string]string {
	t.Helper()
	got := map[string]string{}
	next := ""
	for {
		q := "?match[version]=all&limit=5000"
		if next != "" {
			q += "&next=" + next
		}
		var e envelope
		user := "cert-a"
		if coll == published {
			user = "police"
		}
		g.get(coll+"objects/"+q, user).expect(t, 200, &e)
		for _, o := range e.Objects {
			got[versionKey(t, o)] = string(o)
		}
		if !e.More {
			return got
		}
		next = e.Next
	}
}

// TestConflictingRereleases: MITRE's ICS 18.1 re-releases some 17.1
// objects with changed content but the same id and modified. STIX requires
// a new modified for every change, and what is stored is evidence: the
// second copy is reported as a failure naming the stored hash, and the
// first copy stays. Every other object of 18.1 is accepted.
func TestConflictingRereleases(t *testing.T) {
	g := newGateway(t, func(c *config.Config) { c.APIRoots[0].MaxContentLength = 16 << 20 })
	dir := sharedTestdata(t, "attack")
	hashes := map[string][32]byte{}
	var conflicts int
	for i, name := range []string{"ics-attack-17.1.json", "ics-attack-18.1.json"} {
		body, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		var bundle struct {
			Objects []jsontext.Value `json:"objects"`
		}
		if err := json.Unmarshal(body, &bundle); err != nil {
			t.Fatal(err)
		}
		for _, o := range bundle.Objects {
			h, err := stix.Hash(o)
			if err != nil {
				t.Fatal(err)
			}
			key := versionKey(t, o)
			if prev, ok := hashes[key]; ok && i == 1 && prev != h {
				conflicts++
			} else if !ok {
				hashes[key] = h
			}
		}
		var st status
		g.post(inbound+"objects/", "cert-a", body).expect(t, 202, &st)
		wantFailures := 0
		if i == 1 {
			wantFailures = conflicts
		}
		if st.FailureCount != wantFailures || st.SuccessCount != len(bundle.Objects)-wantFailures {
			t.Fatalf("%s: %d successes, %d failures; want %d failures (changed content under an unchanged version)",
				name, st.SuccessCount, st.FailureCount, wantFailures)
		}
		for _, f := range st.Failures {
			if h := hashes[f.ID+"@"+f.Version]; !strings.Contains(f.Message, "conflict") || !strings.Contains(f.Message, fmt.Sprintf("%x", h)) {
				t.Errorf("%s: %s", f.ID, f.Message)
			}
		}
	}
	if conflicts == 0 {
		t.Fatal("the datasets have no conflicting re-releases any more: this test checks nothing")
	}
	t.Logf("%d objects of ICS 18.1 change content without a new modified", conflicts)
}

// TestPostNegativeExample: the upstream TLP 2.0 example with real defects
// is rejected where it is wrong, with reasons.
func TestPostNegativeExample(t *testing.T) {
	g := newGateway(t)
	body, err := os.ReadFile(filepath.Join(sharedTestdata(t, "negative"), "using-tlp2.0-green.invalid.json"))
	if err != nil {
		t.Fatal(err)
	}
	var st status
	g.post(inbound+"objects/", "cert-a", body).expect(t, 202, &st)
	if st.FailureCount != 1 || !strings.Contains(st.Failures[0].Message, "created") {
		t.Fatalf("negative example: %+v", st)
	}
	t.Logf("rejected %s: %s", st.Failures[0].ID, st.Failures[0].Message)
}
