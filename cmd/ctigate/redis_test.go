package main

import (
	"bytes"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-json-experiment/json"
	goredis "github.com/redis/go-redis/v9"

	"github.com/ctigate/ctigate/custody"
	"github.com/ctigate/ctigate/store/redis/redistest"
)

// redisEnv returns a getenv that selects the Redis store at url (or the
// cluster at addrs) under prefix.
func redisEnv(url string, addrs []string, prefix string) func(string) string {
	env := map[string]string{"CTIGATE_STORE": "redis", "CTIGATE_REDIS_PREFIX": prefix}
	if url != "" {
		env["CTIGATE_REDIS_URL"] = url
	} else {
		env["CTIGATE_REDIS_ADDRS"] = strings.Join(addrs, ",")
	}
	return func(k string) string { return env[k] }
}

// taxiiPage is the part of an envelope the replica tests read.
type taxiiPage struct {
	More    bool   `json:"more"`
	Next    string `json:"next"`
	Objects []struct {
		ID string `json:"id"`
	} `json:"objects"`
}

func getPage(t *testing.T, client *http.Client, base, path, user string, q url.Values) taxiiPage {
	t.Helper()
	res, b, err := request(t, client, "GET", base+path+"objects/?"+q.Encode(), user, nil)
	if err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("GET %s%s?%s as %s: %v %v %s", base, path, q.Encode(), user, res, err, b)
	}
	var p taxiiPage
	if err := json.Unmarshal(b, &p); err != nil {
		t.Fatalf("GET %s: %v: %s", path, err, b)
	}
	return p
}

type decisionsPage struct {
	Decisions []struct {
		Seq           uint64 `json:"seq"`
		Route         string `json:"route"`
		ObjectID      string `json:"object_id"`
		ObjectVersion string `json:"object_version"`
	} `json:"decisions"`
	Next string `json:"next"`
}

// allDecisions reads every decision through the decisions API, which
// lists the decision entries of the custody ledger: their seqs are ledger
// seqs, increasing, with gaps where the ledger's other entries are.
func allDecisions(t *testing.T, client *http.Client, base string) map[string]int {
	t.Helper()
	out := map[string]int{}
	after := ""
	var last uint64
	for {
		u := base + "/api/v1/decisions?limit=1000"
		if after != "" {
			u += "&after=" + after
		}
		res, b, err := request(t, client, "GET", u, "auditor", nil)
		if err != nil || res.StatusCode != http.StatusOK {
			t.Fatalf("GET decisions: %v %v %s", res, err, b)
		}
		var p decisionsPage
		if err := json.Unmarshal(b, &p); err != nil {
			t.Fatalf("decisions: %v: %s", err, b)
		}
		for _, d := range p.Decisions {
			if d.Seq <= last {
				t.Fatalf("decision seq %d after %d: not increasing", d.Seq, last)
			}
			last = d.Seq
			out[d.Route+" "+d.ObjectID+" "+d.ObjectVersion]++
		}
		if p.Next == "" {
			return out
		}
		after = p.Next
	}
}

// TestRedisReplicas runs the replica test on the shared test Redis.
func TestRedisReplicas(t *testing.T) {
	u := redistest.URL(t)
	opts, _ := goredis.ParseURL(u)
	admin := goredis.NewClient(opts)
	t.Cleanup(func() { admin.Close() })
	testReplicas(t, redisEnv(u, nil, redistest.Prefix(t, admin)))
}

// TestRedisClusterReplicas runs it on a local 3-master Redis Cluster.
func TestRedisClusterReplicas(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Redis Cluster")
	}
	addrs := redistest.StartCluster(t)
	admin := goredis.NewClusterClient(&goredis.ClusterOptions{Addrs: addrs})
	t.Cleanup(func() { admin.Close() })
	testReplicas(t, redisEnv("", addrs, redistest.Prefix(t, admin)))
}

// testReplicas: two gateways over one Redis. Producers post to both at
// once; a consumer pages the inbound collection alternating replicas with
// the other's next cursor and sees everything exactly once; both fan-outs
// run on the same routes at once, and every (route, object version) gets
// exactly one decision, numbered without gaps.
func testReplicas(t *testing.T, getenv func(string) string) {
	a := startServe(t, getenv, "--config", demoConfig, "--data", t.TempDir(), "--listen", "127.0.0.1:0")
	b := startServe(t, getenv, "--config", demoConfig, "--data", t.TempDir(), "--listen", "127.0.0.1:0")
	client := &http.Client{Timeout: 20 * time.Second}

	const envelopes, per = 8, 25
	green := "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb"
	var wg sync.WaitGroup
	errs := make(chan string, envelopes)
	for e := range envelopes {
		base := []string{a.base, b.base}[e%2]
		wg.Go(func() {
			var objs []string
			for i := range per {
				n := e*per + i
				o := strings.TrimSuffix(indicatorJSON(n), "}") + `,"object_marking_refs":["` + green + `"]}`
				objs = append(objs, o)
			}
			res, body, err := request(t, client, "POST", base+inboundPath+"objects/", "cert-a", []byte(`{"objects":[`+strings.Join(objs, ",")+`]}`))
			if err != nil || res.StatusCode != http.StatusAccepted || !strings.Contains(string(body), fmt.Sprintf(`"success_count":%d`, per)) {
				errs <- fmt.Sprintf("POST to %s: %v %v %s", base, res, err, body)
			}
		})
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Fatal(e)
	}
	const total = envelopes * per

	// Page the inbound collection, each page from the other replica.
	seen := map[string]int{}
	q := url.Values{"limit": {"17"}}
	for i := 0; ; i++ {
		p := getPage(t, client, []string{a.base, b.base}[i%2], inboundPath, "cert-a", q)
		for _, o := range p.Objects {
			seen[o.ID]++
		}
		if !p.More {
			break
		}
		q.Set("next", p.Next)
	}
	if len(seen) != total {
		t.Fatalf("paging across replicas: %d objects, want %d", len(seen), total)
	}
	for id, n := range seen {
		if n != 1 {
			t.Fatalf("paging across replicas: %s seen %d times", id, n)
		}
	}

	// Both routes publish every (TLP:GREEN) object; wait until the police
	// see them all on replica b and the prosecutor on replica a.
	for _, c := range []struct{ base, user, path string }{{b.base, "police", lawEnforcementPath}, {a.base, "prosecutor", judiciaryPath}} {
		deadline := time.Now().Add(60 * time.Second)
		for {
			n := 0
			q := url.Values{"limit": {"1000"}}
			for {
				p := getPage(t, client, c.base, c.path, c.user, q)
				n += len(p.Objects)
				if !p.More {
					break
				}
				q.Set("next", p.Next)
			}
			if n == total {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s sees %d objects, want %d", c.user, n, total)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	// The search index lives in Redis too: CERT-A's analyst finds indicator
	// 7 (203.0.113.7) in CERT-A's inbound collection, through either
	// replica.
	for _, base := range []string{a.base, b.base} {
		deadline := time.Now().Add(30 * time.Second)
		for {
			code, r, body := searchHTTP(t, client, base, "analyst", "value=203.0.113.7")
			if code != http.StatusOK {
				t.Fatalf("search on %s: %d %s", base, code, body)
			}
			if len(r.Hits) == 1 && strings.HasSuffix(r.Hits[0].ID, "000000000007") && r.Hits[0].Collection.Title == "CERT-A inbound" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("search on %s: %s, want indicator 7 in CERT-A's inbound collection", base, body)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	// Stop both gateways (their fan-outs finish what they are writing),
	// then count the decisions on a fresh one.
	a.stop(t)
	b.stop(t)
	c := startServe(t, getenv, "--config", demoConfig, "--data", t.TempDir(), "--listen", "127.0.0.1:0")
	got := allDecisions(t, client, c.base)
	if len(got) != 2*total {
		t.Fatalf("%d distinct (route, object version) decisions, want %d", len(got), 2*total)
	}
	for k, n := range got {
		if n != 1 {
			t.Fatalf("decision %s recorded %d times, want once", k, n)
		}
	}

	// The custody ledger both replicas wrote verifies as one chain, with
	// exactly one received entry per version posted, a decision entry per
	// decision, and the deliveries of the polls through both.
	export := filepath.Join(t.TempDir(), "ledger.jsonl")
	var out, errOut bytes.Buffer
	if err := run(t.Context(), []string{"audit", "export", "--config", demoConfig, "--out", export}, getenv, nil, &out, &errOut); err != nil {
		t.Fatalf("audit export: %v: %s", err, errOut.String())
	}
	out.Reset()
	if err := run(t.Context(), []string{"audit", "verify", export}, getenv, nil, &out, &errOut); err != nil || !strings.Contains(out.String(), "OK:") {
		t.Fatalf("audit verify: %v: %s%s", err, out.String(), errOut.String())
	}
	raw, err := os.ReadFile(export)
	if err != nil {
		t.Fatal(err)
	}
	received, decided := map[string]int{}, map[string]int{}
	delivered := map[string]bool{}
	configs := 0
	for l := range bytes.Lines(raw) {
		var e custody.Entry
		if err := json.Unmarshal(l, &e); err != nil {
			t.Fatal(err)
		}
		switch e.Action {
		case custody.Received:
			received[e.Collection+" "+e.ObjectID+" "+e.ObjectVersion]++
		case custody.Published, custody.Redacted, custody.Withheld:
			decided[e.Route+" "+e.ObjectID+" "+e.ObjectVersion]++
		case custody.Delivered:
			delivered[e.User] = true
		case custody.ConfigLoaded:
			configs++
		}
	}
	if len(received) != total {
		t.Fatalf("%d versions with received entries, want %d", len(received), total)
	}
	for k, n := range received {
		if coll, _, _ := strings.Cut(k, " "); n != 1 || !strings.Contains(inboundPath, "/"+coll+"/") {
			t.Fatalf("received %s: %d entries, want 1 in the inbound collection", k, n)
		}
	}
	if len(decided) != 2*total {
		t.Fatalf("%d decided versions in the ledger, want %d", len(decided), 2*total)
	}
	for k, n := range decided {
		if n != 1 {
			t.Fatalf("decision entry %s: %d, want 1", k, n)
		}
	}
	if !delivered["cert-a"] || !delivered["police"] || !delivered["prosecutor"] || configs != 3 {
		t.Fatalf("deliveries to %v and %d config-loaded entries; want cert-a, police, prosecutor and 3 (one per start)", delivered, configs)
	}
}
