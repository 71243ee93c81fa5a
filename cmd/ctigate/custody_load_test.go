package main

import (
	"flag"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-json-experiment/json"

	"github.com/ctigate/ctigate/custody"
)

var custodyLoad = flag.Duration("custody.duration", 5*time.Second, "how long TestCustodyUnderLoad runs its producers and consumers (`make soak`: 10m)")

// requestRetrying is request that, as a TAXII client should, waits and
// asks again (up to 20 times) when the gateway answers 503 with
// Retry-After: on a busy machine the password hashes of 16 clients
// logging in at once can fill the gateway's queue of logins, which is
// not what this test is about.
func requestRetrying(t testing.TB, client *http.Client, method, u, user string, body []byte) (*http.Response, []byte, error) {
	t.Helper()
	for range 20 {
		res, b, err := request(t, client, method, u, user, body)
		if err != nil || res.StatusCode != http.StatusServiceUnavailable || res.Header.Get("Retry-After") == "" {
			return res, b, err
		}
		time.Sleep(time.Second)
	}
	return request(t, client, method, u, user, body)
}

// TestCustodyUnderLoad: 8 producers (each also re-posting some of what it
// posted before) and 8 consumers work for -custody.duration; the ledger
// then verifies, with exactly one received entry per object version the
// gateway reported added, and none for the repeats.
func TestCustodyUnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "custody.pem")
	if out, err := auditCmd(t, nil, "keygen", "--out", keyFile); err != nil {
		t.Fatalf("keygen: %v %s", err, out)
	}
	env := map[string]string{"CTIGATE_CUSTODY_SIGNING_KEY_FILE": keyFile}
	data := filepath.Join(dir, "data")
	gw := startServe(t, func(k string) string { return env[k] }, "--config", demoConfig, "--data", data, "--listen", "127.0.0.1:0")
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 32}}

	const producers, consumers, perEnvelope, repeats = 8, 8, 20, 4
	stop := time.Now().Add(*custodyLoad)
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		added    = map[string]int{} // id → times reported added
		polls    atomic.Int64
		failures = make(chan error, producers+consumers)
	)
	for p := range producers {
		wg.Go(func() {
			var posted []string
			for n := 0; time.Now().Before(stop); n++ {
				var objs []string
				for i := range perEnvelope - repeats {
					objs = append(objs, loadIndicator(fmt.Sprintf("%02x%02x%08x", p, i, n)))
				}
				for i := 0; i < repeats && len(posted) > 0; i++ {
					objs = append(objs, posted[(n*7+i)%len(posted)])
				}
				res, b, err := requestRetrying(t, client, "POST", gw.base+inboundPath+"objects/", "cert-a", []byte(`{"objects":[`+strings.Join(objs, ",")+`]}`))
				if err != nil || res.StatusCode != http.StatusAccepted {
					failures <- fmt.Errorf("producer %d: POST: %v %v %.200s", p, res, err, b)
					return
				}
				type detail struct {
					ID      string `json:"id"`
					Message string `json:"message"`
				}
				var st struct {
					Successes []detail `json:"successes"`
					Failures  []detail `json:"failures"`
				}
				if err := json.Unmarshal(b, &st); err != nil || len(st.Failures) > 0 {
					failures <- fmt.Errorf("producer %d: status %v %.300s", p, err, b)
					return
				}
				mu.Lock()
				for _, s := range st.Successes {
					if strings.HasPrefix(s.Message, "added") {
						added[s.ID]++
					}
				}
				mu.Unlock()
				posted = append(posted, objs[:perEnvelope-repeats]...)
			}
		})
	}
	paths := []struct{ user, path string }{{"police", lawEnforcementPath}, {"prosecutor", judiciaryPath}, {"cert-a", inboundPath}}
	for c := range consumers {
		wg.Go(func() {
			u := paths[c%len(paths)]
			for time.Now().Before(stop) {
				res, b, err := requestRetrying(t, client, "GET", gw.base+u.path+"objects/?limit=50", u.user, nil)
				if err != nil || res.StatusCode != http.StatusOK {
					failures <- fmt.Errorf("consumer %d: GET: %v %v %.200s", c, res, err, b)
					return
				}
				polls.Add(1)
			}
		})
	}
	wg.Wait()
	close(failures)
	for err := range failures {
		t.Fatal(err)
	}
	gw.stop(t)

	exportFile := filepath.Join(dir, "ledger.jsonl")
	if out, err := auditCmd(t, nil, "export", "--config", demoConfig, "--data", data, "--out", exportFile); err != nil {
		t.Fatalf("audit export: %v %s", err, out)
	}
	out, err := auditCmd(t, nil, "verify", "--key", keyFile+".pub", exportFile)
	if err != nil {
		t.Fatalf("the ledger does not verify: %v %s", err, out)
	}
	b, err := os.ReadFile(exportFile)
	if err != nil {
		t.Fatal(err)
	}
	received := map[string]int{}
	counts := map[string]int{}
	for _, e := range parseLines(t, b) {
		counts[e.Action]++
		if e.Action == custody.Received {
			received[e.ObjectID+" "+e.ObjectVersion]++
		}
	}
	total := 0
	for id, n := range added {
		if n != 1 {
			t.Errorf("%s reported added %d times", id, n)
		}
		total++
		if got := received[id+" 2026-01-01T00:00:00.000Z"]; got != 1 {
			t.Errorf("%s: %d received entries, want 1", id, got)
		}
	}
	if len(received) != total || counts[custody.Received] != total {
		t.Errorf("%d received entries for %d distinct versions, want %d (one per added version)", counts[custody.Received], len(received), total)
	}
	t.Logf("%s: %d versions added, %d polls; ledger %v; %s", *custodyLoad, total, polls.Load(), counts, strings.TrimSpace(out))
}

func loadIndicator(suffix string) string {
	return `{"type":"indicator","spec_version":"2.1","id":"indicator--3c0ffee0-0000-4000-8000-` + suffix[:12] + `","created":"2026-01-01T00:00:00.000Z","modified":"2026-01-01T00:00:00.000Z",` +
		`"name":"load ` + suffix + `","pattern":"[ipv4-addr:value = '203.0.113.9']","pattern_type":"stix","valid_from":"2026-01-01T00:00:00Z","object_marking_refs":["marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb"]}`
}
