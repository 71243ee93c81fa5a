package fanout

import (
	"context"
	"slices"
	"testing"

	"github.com/go-json-experiment/json"

	"github.com/ctigate/ctigate/custody"
	"github.com/ctigate/ctigate/policy"
	"github.com/ctigate/ctigate/stix"
	"github.com/ctigate/ctigate/store"
)

// TestRecordsEveryDecision checks that every evaluation is recorded exactly
// once, in the write that carries its effect, also when a write fails and
// the batch is evaluated again.
func TestRecordsEveryDecision(t *testing.T) {
	e := newEnv(t)
	e.add(samples()...)
	f := &failing{Store: e.st}
	f.fail.Store(1)
	w := e.worker(f)
	if _, err := w.RunOnce(context.Background()); err == nil {
		t.Fatal("RunOnce with a failing write: got no error")
	}
	e.runOnce(w)
	e.runOnce(e.worker(nil)) // nothing new: records nothing

	// The decisions are recorded in the custody ledger, which holds
	// nothing else here (the versions were added without an actor): the
	// failed write left no entry, so they are numbered 1, 2, 3, ….
	ds, err := e.st.LedgerEntries(context.Background(), store.LedgerQuery{Actions: store.DecisionActions(), Limit: store.MaxLedgerLimit})
	if err != nil {
		t.Fatal(err)
	}
	for i, d := range ds {
		if d.Seq != uint64(i+1) {
			t.Fatalf("decision %d has seq %d, want %d", i, d.Seq, i+1)
		}
	}
	src := map[string]store.Object{}
	for _, o := range append(samples(), statementDef()) {
		src[o.ID] = o
	}
	for _, raw := range policy.GatewayObjects() { // published with the redacted copy
		var head struct {
			ID       string `json:"id"`
			Type     string `json:"type"`
			Modified string `json:"modified"`
		}
		if err := json.Unmarshal(raw, &head); err != nil {
			t.Fatal(err)
		}
		v, _ := stix.ParseTimestamp(head.Modified)
		src[head.ID] = obj(head.ID, head.Type, v, string(raw))
	}
	type key struct{ route, id, action string }
	got := map[key]int{}
	for _, d := range ds {
		got[key{d.Route, d.ObjectID, d.Action}]++
		if d.Source != inbound || d.PolicyVersion == "" || d.Time == "" {
			t.Fatalf("decision lacks source, policy version or time: %+v", d)
		}
		if o, ok := src[d.ObjectID]; !ok || d.ObjectVersion != custody.FormatVersion(o.Version) || d.SHA256 != custody.HexHash(o.Hash) {
			t.Fatalf("decision %+v does not name the source version and its hash", d)
		}
	}
	for _, r := range e.routes {
		want := map[int]string{}
		published := lawWant
		if r.ID() == judiColl {
			published = judiWant
		}
		stored := map[string]store.Object{}
		for _, o := range e.all(r.ID()) {
			stored[o.ID] = o
		}
		for _, o := range samples() {
			n := 0
			for i := 1; i <= nStatement; i++ {
				if id(i) == o.ID {
					n = i
				}
			}
			switch {
			case n == nGranular:
				want[n] = store.ActionRedacted
			case slices.Contains(published, n):
				want[n] = store.ActionPublished
			default:
				want[n] = store.ActionWithheld
			}
			for _, a := range []string{store.ActionPublished, store.ActionRedacted, store.ActionWithheld} {
				c, w := got[key{r.Name(), o.ID, a}], 0
				if a == want[n] {
					w = 1
				}
				if c != w {
					t.Fatalf("route %s, object %d: %d %s decisions, want %d", r.Name(), n, c, a, w)
				}
			}
		}
		// The statement definition: withheld on its own, published once
		// with the object that refers to it.
		if got[key{r.Name(), statement, store.ActionWithheld}] != 1 || got[key{r.Name(), statement, store.ActionPublished}] != 1 {
			t.Fatalf("route %s: statement marking decisions %v", r.Name(), got)
		}
		for _, d := range ds {
			if d.Route != r.Name() {
				continue
			}
			if d.Collection != r.ID() {
				t.Fatalf("decision of %s names collection %s", r.Name(), d.Collection)
			}
			switch d.Action {
			case store.ActionRedacted:
				if !slices.Contains(d.Removed, "description") || d.PublishedSHA256 != custody.HexHash(stored[d.ObjectID].Hash) || d.PublishedSHA256 == d.SHA256 {
					t.Fatalf("redacted decision %+v: want description removed and the published copy's hash", d)
				}
			case store.ActionWithheld:
				if d.Reason == "" || d.PublishedSHA256 != "" {
					t.Fatalf("withheld decision %+v: want a reason and no published hash", d)
				}
			case store.ActionPublished:
				if d.PublishedSHA256 != d.SHA256 {
					t.Fatalf("published decision %+v: hashes differ", d)
				}
			}
			if d.ObjectID == id(nRed) && d.Reason != "tlp_red" {
				t.Fatalf("TLP:RED decision reason %q", d.Reason)
			}
		}
	}
}
