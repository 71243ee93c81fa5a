package server_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	neturl "net/url"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-json-experiment/json"

	"github.com/ctigate/ctigate/auth"
	"github.com/ctigate/ctigate/config"
	"github.com/ctigate/ctigate/custody"
	"github.com/ctigate/ctigate/server"
	"github.com/ctigate/ctigate/store"
	"github.com/ctigate/ctigate/store/bolt"
)

const decisionSecret = "SECRET-CONTENT-198.51.100.7"

// ledgerStore is a backend with the custody ledger, where decisions are
// recorded.
type ledgerStore interface {
	store.Store
	store.Ledger
}

// eachBackend runs fn on a fresh store of each backend: a bbolt file, and
// Redis (CTIGATE_TEST_REDIS_URL; skipped when it does not answer, unless
// CTIGATE_REQUIRE_REDIS=1).
func eachBackend(t *testing.T, fn func(t *testing.T, st ledgerStore)) {
	t.Run("bolt", func(t *testing.T) {
		st, err := bolt.Open(filepath.Join(t.TempDir(), "ctigate.db"), bolt.Options{NoSync: true})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if err := st.Close(); err != nil {
				t.Error(err)
			}
		})
		fn(t, st)
	})
	t.Run("redis", func(t *testing.T) {
		st, _, _ := redisStore(t)
		fn(t, st)
	})
}

// decisionsConfig is the test configuration with users holding bearer
// tokens "<name>-token-0123456789abcdef": the gateway operator's auditor
// and policy admin, who read every organisation's decisions, an analyst,
// and auditors of CERT-A (the producer), of the National Police (the
// published collection's reader) and of an organisation with no part.
func decisionsConfig(t *testing.T) *config.Config {
	t.Helper()
	cfg := testConfig(t)
	for _, u := range []struct{ name, org, role string }{
		{"auditor", "Gateway", "auditor"}, {"padmin", "Gateway", "policy-admin"}, {"analyst", "Gateway", "analyst"},
		{"auditor-a", "CERT-A", "auditor"}, {"auditor-p", "National Police", "auditor"}, {"auditor-x", "Elsewhere", "auditor"},
	} {
		cfg.Users = append(cfg.Users, config.User{
			Name: u.name, Organisation: u.org, Roles: []string{u.role},
			TokenSHA256: []string{auth.TokenDigest(u.name + "-token-0123456789abcdef")},
		})
	}
	cfg.Custody.AllOrganisations = []string{"org:Gateway"}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// serveStore serves st under cfg; the server is given no Ledger: what it
// reads of decisions comes from the store's ledger.
func serveStore(t *testing.T, cfg *config.Config, st ledgerStore) string {
	t.Helper()
	a := authOf(t, cfg)
	ts := httptest.NewServer(server.New(server.Options{Config: cfg, Store: st, Auth: a}))
	t.Cleanup(ts.Close)
	return ts.URL
}

// decisionID is the object id of decision i.
func decisionID(i int) string { return fmt.Sprintf("indicator--00000000-0000-4000-8000-%012d", i%3) }

// writeDecisions records n decisions as fan-out does, with AddObjectsCheckpoint
// (published copies of versions cert-a submitted, every fourth withheld),
// in writes of four with other ledger entries before and between them, and
// returns the decision entries of the ledger.
func writeDecisions(t *testing.T, st ledgerStore, n int) []custody.Entry {
	t.Helper()
	ctx := context.Background()
	var src, objs []store.Object
	var ds []store.Decision
	for i := range n {
		id := decisionID(i)
		ver := time.Date(2026, 1, 1, 0, 0, i, 0, time.UTC)
		raw := fmt.Sprintf(`{"type":"indicator","id":%q,"modified":%q,"description":%q}`, id, ver.Format(time.RFC3339), decisionSecret)
		o := store.Object{ID: id, Type: "indicator", SpecVersion: "2.1", Version: ver, Raw: []byte(raw)}
		o.Hash[0] = byte(i + 1)
		src = append(src, o)
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
	// The versions as cert-a submitted them: received entries.
	if _, err := st.AddObjects(store.WithActor(ctx, store.Actor{User: "cert-a", Org: "CERT-A"}), inboundID, src); err != nil {
		t.Fatal(err)
	}
	var from time.Time
	for k := 0; k < n; k += 4 {
		end := min(k+4, n)
		var batch []store.Object
		for _, o := range objs {
			if o.Version.Second() >= k && o.Version.Second() < end {
				batch = append(batch, o)
			}
		}
		at := time.Date(2026, 1, 1, 0, 0, end, 0, time.UTC)
		if _, err := st.AddObjectsCheckpoint(ctx, publishedID, batch, ds[k:end], "fanout/test", from, at); err != nil {
			t.Fatal(err)
		}
		from = at
		if _, err := st.AppendEntries(ctx, []custody.Entry{{Action: custody.Rejected, User: "cert-a", Org: "CERT-A", ObjectID: decisionID(k), Reason: "invalid"}}); err != nil {
			t.Fatal(err)
		}
	}
	es, err := st.LedgerEntries(ctx, store.LedgerQuery{Actions: store.DecisionActions(), Limit: store.MaxLedgerLimit})
	if err != nil {
		t.Fatal(err)
	}
	if len(es) != n {
		t.Fatalf("the ledger holds %d decision entries, want %d", len(es), n)
	}
	return es
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

// decisionsPage reads one page of decisions, failing unless it is 200.
func decisionsPage(t *testing.T, url, query, user string) decisionsResp {
	t.Helper()
	code, body := getDecisions(t, url, query, user)
	var r decisionsResp
	if code != http.StatusOK {
		t.Fatalf("GET decisions%s as %s = %d %s", query, user, code, body)
	}
	if err := json.Unmarshal(body, &r); err != nil {
		t.Fatalf("GET decisions%s: %v: %s", query, err, body)
	}
	return r
}

// allDecisions pages through the decisions of query ("" or "?…") as
// user, limit per page, and returns their seqs.
func allDecisions(t *testing.T, url, query, user string, limit int) []uint64 {
	t.Helper()
	v, err := neturl.ParseQuery(strings.TrimPrefix(query, "?"))
	if err != nil {
		t.Fatal(err)
	}
	v.Set("limit", strconv.Itoa(limit))
	var seqs []uint64
	for range 1000 {
		r := decisionsPage(t, url, "?"+v.Encode(), user)
		if len(r.Decisions) > limit {
			t.Fatalf("page of %d decisions, limit %d", len(r.Decisions), limit)
		}
		for _, d := range r.Decisions {
			seqs = append(seqs, uint64(d["seq"].(float64)))
		}
		if r.Next == "" {
			return seqs
		}
		if len(r.Decisions) == limit && r.Next != strconv.FormatUint(seqs[len(seqs)-1], 10) {
			t.Fatalf("next = %s after a full page ending at seq %d", r.Next, seqs[len(seqs)-1])
		}
		v.Set("after", r.Next)
	}
	t.Fatal("paging does not end")
	return nil
}

func seqsOf(es []custody.Entry, keep func(*custody.Entry) bool) []uint64 {
	var out []uint64
	for i := range es {
		if keep(&es[i]) {
			out = append(out, es[i].Seq)
		}
	}
	return out
}

// decisionJSON is what the API answers for the decision entry e.
func decisionJSON(e *custody.Entry) map[string]any {
	m := map[string]any{
		"seq": float64(e.Seq), "time": e.Time, "route": e.Route, "collection": e.Collection,
		"policy_version": e.PolicyVersion, "object_id": e.ObjectID, "source": e.Source, "action": e.Action,
	}
	for k, v := range map[string]string{"object_version": e.ObjectVersion, "reason": e.Reason, "detail": e.Detail,
		"original_sha256": e.SHA256, "published_sha256": e.PublishedSHA256} {
		if v != "" {
			m[k] = v
		}
	}
	if len(e.Removed) > 0 {
		var rm []any
		for _, s := range e.Removed {
			rm = append(rm, s)
		}
		m["removed"] = rm
	}
	return m
}

func TestDecisionsRoles(t *testing.T) {
	eachBackend(t, func(t *testing.T, st ledgerStore) {
		writeDecisions(t, st, 5)
		url := serveStore(t, decisionsConfig(t), st)
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
	})
}

// TestDecisionsFromLedger: the API lists the decision entries of the
// custody ledger, however they were appended, each as its entry records
// it, and none of the ledger's other entries.
func TestDecisionsFromLedger(t *testing.T) {
	eachBackend(t, func(t *testing.T, st ledgerStore) {
		url := serveStore(t, decisionsConfig(t), st)
		if r := decisionsPage(t, url, "", "auditor"); len(r.Decisions) != 0 || r.Next != "" {
			t.Fatalf("decisions of an empty ledger: %+v", r)
		}
		const id = "indicator--00000000-0000-4000-8000-000000000099"
		const ver = "2026-02-01T00:00:00.123Z"
		h1, h2 := custody.HexHash([32]byte{1, 2, 3}), custody.HexHash([32]byte{4, 5, 6})
		es, err := st.AppendEntries(context.Background(), []custody.Entry{
			{Action: custody.Received, User: "cert-a", Org: "CERT-A", ObjectID: id, ObjectVersion: ver, SHA256: h1, Collection: inboundID},
			{Action: custody.Withheld, User: "ctigate", ObjectID: id, ObjectVersion: ver, SHA256: h1, Collection: publishedID,
				Source: inboundID, Route: "police", PolicyVersion: "pv7", Reason: "tlp_red", Detail: "object is TLP:RED"},
			{Action: custody.Rejected, User: "cert-a", Org: "CERT-A", ObjectID: id, Reason: "invalid"},
			{Action: custody.Redacted, User: "ctigate", ObjectID: id, ObjectVersion: ver, SHA256: h1, Collection: publishedID,
				Source: inboundID, Route: "judiciary", PolicyVersion: "pv8", Removed: []string{"description", "external_references.[0]"}, PublishedSHA256: h2},
			{Action: custody.Withdrawn, User: "ctigate", ObjectID: id, ObjectVersion: ver, Collection: publishedID,
				Source: inboundID, Route: "police", PolicyVersion: "pv7", Reason: "retracted"},
			{Action: custody.Published, User: "ctigate", ObjectID: "ipv4-addr--ff26c055-6336-5bc5-b98d-13d6226742dd", SHA256: h2, Collection: publishedID,
				Source: inboundID, Route: "police", PolicyVersion: "pv7", PublishedSHA256: h2},
		})
		if err != nil {
			t.Fatal(err)
		}
		withheld, redacted, unversioned := &es[1], &es[3], &es[5]
		for _, c := range []struct {
			query string
			want  []*custody.Entry
		}{
			{"", []*custody.Entry{withheld, redacted, unversioned}},
			{"?object=" + id, []*custody.Entry{withheld, redacted}},
			{"?object=" + id + "&route=police", []*custody.Entry{withheld}},
			{"?route=judiciary", []*custody.Entry{redacted}},
			{"?route=police", []*custody.Entry{withheld, unversioned}},
			{"?after=" + strconv.FormatUint(withheld.Seq, 10), []*custody.Entry{redacted, unversioned}},
			{"?object=" + id + "&after=" + strconv.FormatUint(redacted.Seq, 10), nil},
			{"?object=indicator--00000000-0000-4000-8000-000000000000", nil},
		} {
			r := decisionsPage(t, url, c.query, "auditor")
			var want []map[string]any
			for _, e := range c.want {
				want = append(want, decisionJSON(e))
			}
			if fmt.Sprint(r.Decisions) != fmt.Sprint(want) || r.Next != "" {
				t.Errorf("GET decisions%s:\ngot  %v (next %q)\nwant %v", c.query, r.Decisions, r.Next, want)
			}
		}
		// Appended later, with other entries before it: listed after.
		more, err := st.AppendEntries(context.Background(), []custody.Entry{
			{Action: custody.Rejected, User: "cert-a", Org: "CERT-A", ObjectID: id, Reason: "invalid"},
			{Action: custody.Published, User: "ctigate", ObjectID: id, ObjectVersion: ver, SHA256: h1, Collection: publishedID,
				Source: inboundID, Route: "police", PolicyVersion: "pv9", PublishedSHA256: h1},
		})
		if err != nil {
			t.Fatal(err)
		}
		r := decisionsPage(t, url, "?object="+id+"&route=police", "padmin")
		want := []map[string]any{decisionJSON(withheld), decisionJSON(&more[1])}
		if fmt.Sprint(r.Decisions) != fmt.Sprint(want) {
			t.Fatalf("after a later decision:\ngot  %v\nwant %v", r.Decisions, want)
		}
	})
}

// TestDecisionsPagingAndFilters: pages follow the ledger's seqs (with
// gaps where other entries are), after names a ledger seq, and the
// object and route filters select among the decision entries.
func TestDecisionsPagingAndFilters(t *testing.T) {
	const n = 23
	eachBackend(t, func(t *testing.T, st ledgerStore) {
		es := writeDecisions(t, st, n)
		url := serveStore(t, decisionsConfig(t), st)
		all := seqsOf(es, func(*custody.Entry) bool { return true })
		if all[0] == 1 || all[n-1]-all[0] == n-1 {
			t.Fatalf("decision seqs %v: want other entries before and between them", all)
		}
		for _, limit := range []int{1, 5, n, 1000} {
			if got := allDecisions(t, url, "", "auditor", limit); !slices.Equal(got, all) {
				t.Fatalf("paged with limit %d: seqs %v, want the ledger's %v", limit, got, all)
			}
		}
		// after: a decision's seq, or one between decisions.
		mid := es[10].Seq
		for _, after := range []uint64{mid, mid + 1, all[n-1], all[n-1] + 100} {
			want := seqsOf(es, func(e *custody.Entry) bool { return e.Seq > after })
			if got := allDecisions(t, url, "?after="+strconv.FormatUint(after, 10), "auditor", 4); !slices.Equal(got, want) {
				t.Fatalf("after %d: seqs %v, want %v", after, got, want)
			}
		}
		id := decisionID(1)
		for _, c := range []struct {
			query string
			keep  func(*custody.Entry) bool
		}{
			{"?object=" + id, func(e *custody.Entry) bool { return e.ObjectID == id }},
			{"?route=judiciary", func(e *custody.Entry) bool { return e.Route == "judiciary" }},
			{"?object=" + id + "&route=judiciary", func(e *custody.Entry) bool { return e.ObjectID == id && e.Route == "judiciary" }},
			{"?object=" + id + "&route=police&after=" + strconv.FormatUint(mid, 10), func(e *custody.Entry) bool {
				return e.ObjectID == id && e.Route == "police" && e.Seq > mid
			}},
		} {
			want := seqsOf(es, c.keep)
			if len(want) == 0 {
				t.Fatalf("%s selects no decision: a useless case", c.query)
			}
			if got := allDecisions(t, url, c.query, "padmin", 2); !slices.Equal(got, want) {
				t.Fatalf("GET decisions%s: seqs %v, want %v", c.query, got, want)
			}
			r := decisionsPage(t, url, c.query+"&limit=1000", "padmin")
			for _, d := range r.Decisions {
				seq := uint64(d["seq"].(float64))
				i := slices.IndexFunc(es, func(e custody.Entry) bool { return e.Seq == seq })
				if i < 0 || fmt.Sprint(d) != fmt.Sprint(decisionJSON(&es[i])) {
					t.Fatalf("GET decisions%s: %v is not the ledger's entry %d", c.query, d, seq)
				}
			}
		}
	})
}

func TestDecisionsNeverContent(t *testing.T) {
	eachBackend(t, func(t *testing.T, st ledgerStore) {
		writeDecisions(t, st, 8)
		url := serveStore(t, decisionsConfig(t), st)
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
	})
}

// TestDecisionsByOrganisation: an organisation's auditor reads the
// decisions about what it submitted (all three actions) and those of
// routes publishing into collections it reads (not the withheld ones:
// its users never received those objects); nothing of routes it has no
// part in. Reading every organisation's needs custody.all_organisations.
func TestDecisionsByOrganisation(t *testing.T) {
	eachBackend(t, func(t *testing.T, st ledgerStore) {
		writeDecisions(t, st, 12)
		// A route publishing from and into the closed collection, which
		// none of these organisations writes or reads.
		if _, err := st.AppendEntries(context.Background(), []custody.Entry{
			{Action: custody.Published, User: "ctigate", ObjectID: decisionID(0), Collection: closedID, Source: closedID, Route: "closed", PolicyVersion: "pv1"},
			{Action: custody.Withheld, User: "ctigate", ObjectID: decisionID(1), Collection: closedID, Source: closedID, Route: "closed", PolicyVersion: "pv1", Reason: "tlp_red"},
		}); err != nil {
			t.Fatal(err)
		}
		es, err := st.LedgerEntries(context.Background(), store.LedgerQuery{Actions: store.DecisionActions(), Limit: store.MaxLedgerLimit})
		if err != nil {
			t.Fatal(err)
		}
		url := serveStore(t, decisionsConfig(t), st)
		fromCERTA := func(e *custody.Entry) bool { return e.Source == inboundID }
		for _, c := range []struct {
			user string
			sees func(*custody.Entry) bool
		}{
			{"auditor", func(*custody.Entry) bool { return true }},
			{"padmin", func(*custody.Entry) bool { return true }},
			{"auditor-a", fromCERTA},
			{"auditor-p", func(e *custody.Entry) bool { return e.Collection == publishedID && e.Action != custody.Withheld }},
			{"auditor-x", func(*custody.Entry) bool { return false }},
		} {
			want := seqsOf(es, c.sees)
			for _, limit := range []int{2, 1000} {
				if got := allDecisions(t, url, "", c.user, limit); !slices.Equal(got, want) {
					t.Fatalf("%s, %d a page: seqs %v, want %v", c.user, limit, got, want)
				}
			}
			if got := allDecisions(t, url, "?object="+decisionID(1), c.user, 1); !slices.Equal(got, seqsOf(es, func(e *custody.Entry) bool {
				return e.ObjectID == decisionID(1) && c.sees(e)
			})) {
				t.Fatalf("%s: decisions about %s: seqs %v", c.user, decisionID(1), got)
			}
		}
		// The National Police's auditor does see some, and not all, of
		// CERT-A's: the withheld ones stay CERT-A's.
		if n := len(seqsOf(es, func(e *custody.Entry) bool { return e.Action == custody.Withheld && fromCERTA(e) })); n == 0 {
			t.Fatal("no withheld decision about CERT-A's objects: a useless case")
		}
	})
}
