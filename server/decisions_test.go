package server_test

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/go-json-experiment/json"

	"github.com/ctigate/ctigate/auth"
	"github.com/ctigate/ctigate/config"
	"github.com/ctigate/ctigate/server"
	"github.com/ctigate/ctigate/store"
	"github.com/ctigate/ctigate/store/bolt"
)

const decisionSecret = "SECRET-CONTENT-198.51.100.7"

// decisionsGateway serves a bolt store holding n decisions (and the
// published objects they are about) to users with bearer tokens
// "<name>-token-0123456789abcdef".
func decisionsGateway(t *testing.T, n int) string {
	t.Helper()
	cfg := testConfig(t)
	for _, u := range []struct{ name, role string }{{"auditor", "auditor"}, {"padmin", "policy-admin"}, {"analyst", "analyst"}} {
		cfg.Users = append(cfg.Users, config.User{
			Name: u.name, Organisation: "Gateway", Roles: []string{u.role},
			TokenSHA256: []string{auth.TokenDigest(u.name + "-token-0123456789abcdef")},
		})
	}
	// The gateway operator's own: every organisation's decisions.
	cfg.Custody.AllOrganisations = []string{"org:Gateway"}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	st, err := bolt.Open(filepath.Join(t.TempDir(), "ctigate.db"), bolt.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	var objs []store.Object
	var ds []store.Decision
	for i := range n {
		id := fmt.Sprintf("indicator--00000000-0000-4000-8000-%012d", i%3)
		ver := time.Date(2026, 1, 1, 0, 0, i, 0, time.UTC)
		raw := fmt.Sprintf(`{"type":"indicator","id":%q,"modified":%q,"description":%q}`, id, ver.Format(time.RFC3339), decisionSecret)
		o := store.Object{ID: id, Type: "indicator", SpecVersion: "2.1", Version: ver, Raw: []byte(raw)}
		o.Hash[0] = byte(i + 1)
		d := store.Decision{
			Route: []string{"police", "judiciary"}[i%2], Collection: publishedID, PolicyVersion: "pv1",
			ObjectID: id, ObjectVersion: ver, Source: inboundID, Action: store.ActionPublished,
			OriginalSHA256: o.Hash, PublishedSHA256: o.Hash,
		}
		if i%4 == 3 {
			d.Action, d.Reason, d.Detail, d.PublishedSHA256 = store.ActionWithheld, "tlp_red", "TLP:RED", [32]byte{}
		} else {
			objs = append(objs, o)
		}
		ds = append(ds, d)
	}
	if _, err := st.AddObjectsCheckpoint(t.Context(), publishedID, objs, ds, "fanout/test", time.Time{}, time.Now()); err != nil {
		t.Fatal(err)
	}
	var users []auth.User
	for _, u := range cfg.Users {
		users = append(users, auth.User{Name: u.Name, Organisation: u.Organisation, Roles: u.Roles, PasswordHash: u.PasswordHash, TokenDigests: u.TokenSHA256})
	}
	a, err := auth.New(users, auth.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(server.New(server.Options{Config: cfg, Store: st, Auth: a}))
	t.Cleanup(func() {
		ts.Close()
		if err := st.Close(); err != nil {
			t.Error(err)
		}
	})
	return ts.URL
}

type decisionsResp struct {
	Decisions []map[string]any `json:"decisions"`
	Next      string           `json:"next"`
}

func getDecisions(t *testing.T, url, query, user string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url+"/api/v1/decisions"+query, nil)
	if err != nil {
		t.Fatal(err)
	}
	switch user {
	case "":
	case "police":
		req.SetBasicAuth("police", "police-pw")
	default:
		req.Header.Set("Authorization", "Bearer "+user+"-token-0123456789abcdef")
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(res.Body); err != nil {
		t.Fatal(err)
	}
	if res.StatusCode == http.StatusOK {
		if ct := res.Header.Get("Content-Type"); ct != "application/json" {
			t.Fatalf("GET decisions%s: Content-Type %q, want application/json", query, ct)
		}
	}
	return res.StatusCode, buf.Bytes()
}

func TestDecisionsRoles(t *testing.T) {
	url := decisionsGateway(t, 5)
	for _, tc := range []struct {
		user string
		want int
	}{{"auditor", 200}, {"padmin", 200}, {"analyst", 403}, {"police", 403}, {"", 401}} {
		code, body := getDecisions(t, url, "", tc.user)
		if code != tc.want {
			t.Fatalf("GET decisions as %q = %d %s; want %d", tc.user, code, body, tc.want)
		}
		if code != 200 {
			var e struct {
				Title      string `json:"title"`
				HTTPStatus string `json:"http_status"`
			}
			if err := json.Unmarshal(body, &e); err != nil || e.HTTPStatus != strconv.Itoa(tc.want) {
				t.Fatalf("GET decisions as %q: error body %s is not the error mapper's (%v)", tc.user, body, err)
			}
			continue
		}
		var r decisionsResp
		if err := json.Unmarshal(body, &r); err != nil || len(r.Decisions) != 5 {
			t.Fatalf("GET decisions as %q: %s, %v; want 5 decisions", tc.user, body, err)
		}
	}
	for _, q := range []string{"?after=x", "?limit=0", "?limit=-1", "?after=-1"} {
		if code, body := getDecisions(t, url, q, "auditor"); code != 400 {
			t.Fatalf("GET decisions%s = %d %s; want 400", q, code, body)
		}
	}
}

func TestDecisionsPagingAndFilters(t *testing.T) {
	const n = 23
	url := decisionsGateway(t, n)
	var seqs []float64
	q := "?limit=5"
	for range n {
		code, body := getDecisions(t, url, q, "auditor")
		if code != 200 {
			t.Fatalf("GET decisions%s = %d %s", q, code, body)
		}
		var r decisionsResp
		if err := json.Unmarshal(body, &r); err != nil {
			t.Fatal(err)
		}
		if len(r.Decisions) > 5 {
			t.Fatalf("page of %d decisions, limit 5", len(r.Decisions))
		}
		for _, d := range r.Decisions {
			seqs = append(seqs, d["seq"].(float64))
		}
		if r.Next == "" {
			break
		}
		q = "?limit=5&after=" + r.Next
	}
	if len(seqs) != n {
		t.Fatalf("paged through %d decisions, want %d", len(seqs), n)
	}
	for i, s := range seqs {
		if s != float64(i+1) {
			t.Fatalf("decision %d has seq %v, want %d", i, s, i+1)
		}
	}
	id := "indicator--00000000-0000-4000-8000-000000000001"
	code, body := getDecisions(t, url, "?object="+id+"&route=judiciary", "padmin")
	var r decisionsResp
	if err := json.Unmarshal(body, &r); code != 200 || err != nil {
		t.Fatalf("GET by object and route = %d %s", code, body)
	}
	want := 0
	for i := range n {
		if i%3 == 1 && i%2 == 1 {
			want++
		}
	}
	if len(r.Decisions) != want {
		t.Fatalf("by object and route: %d decisions, want %d", len(r.Decisions), want)
	}
	for _, d := range r.Decisions {
		if d["object_id"] != id || d["route"] != "judiciary" {
			t.Fatalf("by object and route: got %v", d)
		}
	}
}

func TestDecisionsNeverContent(t *testing.T) {
	url := decisionsGateway(t, 8)
	code, body := getDecisions(t, url, "?limit=1000", "auditor")
	if code != 200 {
		t.Fatalf("GET decisions = %d %s", code, body)
	}
	if bytes.Contains(body, []byte(decisionSecret)) || bytes.Contains(body, []byte("description")) {
		t.Fatalf("decisions response carries object content: %s", body)
	}
	var r decisionsResp
	if err := json.Unmarshal(body, &r); err != nil || len(r.Decisions) != 8 {
		t.Fatalf("%s, %v; want 8 decisions", body, err)
	}
	allowed := map[string]bool{"seq": true, "time": true, "route": true, "collection": true, "policy_version": true,
		"object_id": true, "object_version": true, "source": true, "action": true, "reason": true, "detail": true,
		"removed": true, "original_sha256": true, "published_sha256": true}
	for _, d := range r.Decisions {
		for k := range d {
			if !allowed[k] {
				t.Fatalf("decision carries unexpected field %q: %v", k, d)
			}
		}
		h, _ := d["original_sha256"].(string)
		if len(h) != 64 {
			t.Fatalf("original_sha256 = %q, want 64 hex digits", h)
		}
		if d["action"] == store.ActionWithheld {
			if _, ok := d["published_sha256"]; ok || d["reason"] != "tlp_red" {
				t.Fatalf("withheld decision = %v; want a reason and no published hash", d)
			}
		}
	}
}
