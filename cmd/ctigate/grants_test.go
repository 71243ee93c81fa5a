package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-json-experiment/json"
	goredis "github.com/redis/go-redis/v9"

	"github.com/ctigate/ctigate/access"
	"github.com/ctigate/ctigate/auth"
	"github.com/ctigate/ctigate/config"
	"github.com/ctigate/ctigate/custody"
	"github.com/ctigate/ctigate/store/bolt"
	"github.com/ctigate/ctigate/store/redis/redistest"
)

const (
	lawEnforcementID = "1dae5e88-4b59-4503-a9cf-2e649dd6544c"
	// policeToken's SHA-256 is what configuration A lists for police.
	policeToken = "ctg_police-token-of-configuration-a"
)

// accessConfigs returns two variants of the demo, each with an auditor of
// the police and an oversight auditor of every organisation: in A the
// police also hold a bearer token; B lets the prosecutor read the
// law-enforcement collection, revokes the police token and removes the
// admin.
func accessConfigs(t *testing.T) (a, b string) {
	t.Helper()
	common := func(cfg map[string]any) {
		for _, u := range []struct{ name, org string }{{"police-auditor", "National Police"}, {"oversight", "Oversight"}} {
			h, err := auth.HashPassword(u.name + "-demo")
			if err != nil {
				t.Fatal(err)
			}
			cfg["users"] = append(cfgList(cfg, "users"), map[string]any{
				"name": u.name, "organisation": u.org, "roles": []any{"auditor"}, "password_hash": h,
			})
		}
		cfg["custody"].(map[string]any)["all_organisations"] = []any{"oversight"}
	}
	a = demoVariant(t, func(cfg map[string]any) {
		common(cfg)
		for _, u := range cfgList(cfg, "users") {
			if u := u.(map[string]any); u["name"] == "police" {
				u["token_sha256"] = []any{auth.TokenDigest(policeToken)}
			}
		}
	})
	b = demoVariant(t, func(cfg map[string]any) {
		common(cfg)
		col := cfgCollection(cfg, lawEnforcementID)
		col["readers"] = append(cfgList(col, "readers"), "prosecutor")
		cfg["users"] = slices.DeleteFunc(cfgList(cfg, "users"), func(u any) bool { return u.(map[string]any)["name"] == "admin" })
	})
	return a, b
}

// describeChange writes an access change in one line.
func describeChange(e custody.Entry) string {
	s := e.Action + " " + e.User + "@" + e.Org
	for _, v := range []string{e.Permission, e.Collection, e.Role, e.TokenID} {
		if v != "" {
			s += " " + v
		}
	}
	return s
}

// TestAccessChangesRecorded runs the access change test on the embedded
// store.
func TestAccessChangesRecorded(t *testing.T) {
	testAccessChanges(t, nil)
}

// TestAccessChangesRecordedRedis runs it on the shared test Redis.
func TestAccessChangesRecordedRedis(t *testing.T) {
	u := redistest.URL(t)
	opts, _ := goredis.ParseURL(u)
	admin := goredis.NewClient(opts)
	t.Cleanup(func() { admin.Close() })
	testAccessChanges(t, map[string]string{"CTIGATE_STORE": "redis", "CTIGATE_REDIS_URL": u, "CTIGATE_REDIS_PREFIX": redistest.Prefix(t, admin)})
}

// testAccessChanges: the gateway starts with configuration A, then with
// B, then with B again. The ledger holds, before the first config-loaded
// entry, every user and what they may do; between the first and the
// second, exactly what B changed (a user gained read on a collection, a
// token was revoked, a user was removed with their role), once; between
// the second and the third, nothing. Each config-loaded entry carries the
// digest of the access in force, which the changes add up to. No entry
// holds a token or its hash. An auditor scoped to an organisation reads
// only the changes about its users or the collections it reads; the
// oversight auditor reads them all.
func testAccessChanges(t *testing.T, env map[string]string) {
	cfgA, cfgB := accessConfigs(t)
	data := t.TempDir()
	getenv := func(k string) string { return env[k] }
	for _, cfg := range []string{cfgA, cfgB} {
		gw := startServe(t, getenv, "--config", cfg, "--data", data, "--listen", "127.0.0.1:0")
		gw.stop(t)
	}
	gw := startServe(t, getenv, "--config", cfgB, "--data", data, "--listen", "127.0.0.1:0")
	client := &http.Client{Timeout: 10 * time.Second}

	res, export, err := request(t, client, "GET", gw.base+"/api/v1/audit/export", "oversight", nil)
	if err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("export as oversight: %v %v %s", res, err, export)
	}
	if strings.Contains(string(export), auth.TokenDigest(policeToken)) || strings.Contains(string(export), policeToken) {
		t.Fatal("the ledger holds the police token or its hash")
	}
	exportFile := filepath.Join(t.TempDir(), "ledger.jsonl")
	if err := os.WriteFile(exportFile, export, 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := auditCmd(t, nil, "verify", exportFile); err != nil {
		t.Fatalf("verify: %v %s", err, out)
	}

	// The access changes between config-loaded entries.
	var loaded []custody.Entry
	segments := [][]custody.Entry{nil}
	replay := access.NewGrants()
	for _, e := range parseLines(t, export) {
		switch {
		case e.Action == custody.ConfigLoaded:
			if e.GrantsSHA256 != replay.Digest() {
				t.Errorf("config-loaded %d records grants %s; the changes before it add up to %s", e.Seq, e.GrantsSHA256, replay.Digest())
			}
			loaded = append(loaded, e)
			segments = append(segments, nil)
		case custody.AccessChange(e.Action):
			replay.Apply(&e)
			segments[len(segments)-1] = append(segments[len(segments)-1], e)
		}
	}
	if len(loaded) != 3 || len(segments[3]) != 0 {
		t.Fatalf("%d config-loaded entries, %d access changes after the last", len(loaded), len(segments[3]))
	}
	added := 0
	for _, e := range segments[0] {
		if e.Action == custody.UserAdded {
			added++
		}
		if e.Action != custody.UserAdded && e.Action != custody.AccessGranted && e.Action != custody.TokenCreated {
			t.Errorf("at the first start: %s", describeChange(e))
		}
	}
	a, err := config.Load(cfgA, nil)
	if err != nil {
		t.Fatal(err)
	}
	if added != len(a.Users) {
		t.Errorf("the first start records %d users, want %d", added, len(a.Users))
	}
	var changed []string
	for _, e := range segments[1] {
		changed = append(changed, describeChange(e))
	}
	tokenID := access.TokenID(auth.TokenDigest(policeToken))
	want := []string{
		"access-revoked admin@CERT-A policy-admin",
		"user-removed admin@CERT-A",
		"token-revoked police@National Police " + tokenID,
		"access-granted prosecutor@Prosecution Service read " + lawEnforcementID,
	}
	if !slices.Equal(changed, want) {
		t.Errorf("changes from A to B:\n%s\nwant\n%s", strings.Join(changed, "\n"), strings.Join(want, "\n"))
	}
	if len(segments[2]) != 0 {
		t.Errorf("B again records %d changes", len(segments[2]))
	}
	if loaded[1].GrantsSHA256 != loaded[2].GrantsSHA256 || loaded[0].GrantsSHA256 == loaded[1].GrantsSHA256 {
		t.Errorf("grants digests %s %s %s", loaded[0].GrantsSHA256, loaded[1].GrantsSHA256, loaded[2].GrantsSHA256)
	}

	// What each auditor reads of the changes from A to B.
	for auditor, sees := range map[string][]string{
		"auditor":        want[:2],
		"police-auditor": want[2:],
		"oversight":      want,
	} {
		u := fmt.Sprintf("%s/api/v1/audit/entries?after=%d&through=%d&limit=1000", gw.base, loaded[0].Seq, loaded[1].Seq)
		res, b, err := request(t, client, "GET", u, auditor, nil)
		if err != nil || res.StatusCode != http.StatusOK {
			t.Fatalf("entries as %s: %v %v %s", auditor, res, err, b)
		}
		var page struct {
			Entries []custody.Entry `json:"entries"`
		}
		if err := json.Unmarshal(b, &page); err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, e := range page.Entries {
			if custody.AccessChange(e.Action) {
				got = append(got, describeChange(e))
			}
		}
		if !slices.Equal(got, sees) {
			t.Errorf("%s reads\n%s\nwant\n%s", auditor, strings.Join(got, "\n"), strings.Join(sees, "\n"))
		}
	}
}

// TestMayBeAccess: the quick test on an entry's text finds every access
// change and config-loaded entry, as the ledger writes them and as JSON
// encodes them, and not an entry whose strings merely mention them.
func TestMayBeAccess(t *testing.T) {
	entries := []custody.Entry{
		{Action: custody.ConfigLoaded, User: "ctigate", GrantsSHA256: strings.Repeat("a", 64)},
		{Action: custody.UserAdded, User: "u", Org: "O"},
		{Action: custody.UserRemoved, User: "u", Org: "O"},
		{Action: custody.AccessGranted, User: "u", Org: "O", Role: "auditor"},
		{Action: custody.AccessRevoked, User: "u", Org: "O", Permission: custody.PermRead, Collection: lawEnforcementID},
		{Action: custody.TokenCreated, User: "u", Org: "O", TokenID: "0123456789abcdef"},
		{Action: custody.TokenRevoked, User: "u", Org: "O", TokenID: "0123456789abcdef"},
		{Action: custody.Received, User: "u", Org: "O", ObjectID: "x", Detail: `{"action":"user-added","user":"u"}`},
		{Action: custody.Rejected, User: "config-loaded", Reason: `"action":"token-revoked"`},
	}
	for i := range entries {
		e := &entries[i]
		want := custody.AccessChange(e.Action) || e.Action == custody.ConfigLoaded
		p, err := custody.Prepare(e)
		if err != nil {
			t.Fatal(err)
		}
		sealed, _ := p.Seal(custody.Head{Seq: 41, Hash: strings.Repeat("b", 64)}, custody.FormatTime(time.Now()))
		encoded, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range [][]byte{sealed, encoded} {
			if mayBeAccess(line) != want {
				t.Errorf("mayBeAccess(%s) = %v", line, !want)
			}
		}
	}
}

// countingLedger records where each replay of the ledger starts.
type countingLedger struct {
	ledgerLines
	starts []uint64
}

func (c *countingLedger) LedgerLines(ctx context.Context, after, through uint64, fn func(uint64, []byte) error) error {
	c.starts = append(c.starts, after)
	return c.ledgerLines.LedgerLines(ctx, after, through, fn)
}

// TestGrantsMemo: a start replays the ledger from the memo the last
// record left, once the ledger confirms it, and the changes it records are
// those a replay from the start would record; an access change appended
// after the memo is replayed; a memo the ledger does not confirm (here, a
// state with one grant more) is ignored and the ledger replayed from the
// start.
func TestGrantsMemo(t *testing.T) {
	ctx := t.Context()
	pathA, pathB := accessConfigs(t)
	cfgA, err := config.Load(pathA, nil)
	if err != nil {
		t.Fatal(err)
	}
	cfgB, err := config.Load(pathB, nil)
	if err != nil {
		t.Fatal(err)
	}
	st, err := bolt.Open(filepath.Join(t.TempDir(), "ctigate.db"), bolt.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	log := slog.New(slog.DiscardHandler)
	loaded := custody.Entry{Action: custody.ConfigLoaded, User: "ctigate", SHA256: strings.Repeat("ab", 32)}
	record := func(cfg *config.Config) (out []custody.Entry, starts []uint64) {
		t.Helper()
		l := &countingLedger{ledgerLines: st}
		out, err := newGrantsLedger(l, log).record(ctx, cfg, loaded)
		if err != nil {
			t.Fatal(err)
		}
		return out, l.starts
	}
	first, starts := record(cfgA)
	if !slices.Equal(starts, []uint64{0}) {
		t.Fatalf("the first record replayed from %v, want from 0", starts)
	}
	// A change appended by hand after the memo: the next start must see it
	// (the police user removed, so that B's record adds them again).
	extra, err := st.AppendEntries(ctx, []custody.Entry{{Action: custody.UserRemoved, User: "police", Org: "National Police"}})
	if err != nil {
		t.Fatal(err)
	}
	out, starts := record(cfgB)
	if memoAt := first[len(first)-1].Seq; !slices.Equal(starts, []uint64{memoAt}) {
		t.Fatalf("the second record replayed from %v, want from the memo's entry %d", starts, memoAt)
	}
	var changed []string
	for _, e := range out[:len(out)-1] {
		changed = append(changed, describeChange(e))
	}
	if !slices.Contains(changed, "user-added police@National Police") {
		t.Errorf("the change appended after the memo (seq %d) was not replayed: B records %v", extra[0].Seq, changed)
	}
	if got, want := out[len(out)-1].GrantsSHA256, access.GrantsOf(cfgB).Digest(); got != want {
		t.Errorf("config-loaded grants %s, want %s", got, want)
	}

	// A memo that claims one grant more than the ledger's entry confirms.
	state := access.GrantsOf(cfgB)
	facts := access.NewGrants().Changes(state)
	facts = append(facts, custody.Entry{Action: custody.UserAdded, User: "intruder", Org: "CERT-A"})
	b, err := json.Marshal(grantsMemo{Through: out[len(out)-1].Seq, Facts: facts})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.PutMemo(ctx, grantsMemoName, b); err != nil {
		t.Fatal(err)
	}
	again, starts := record(cfgB)
	if !slices.Equal(starts, []uint64{0}) {
		t.Errorf("with a memo the ledger does not confirm, the record replayed from %v, want from 0", starts)
	}
	if len(again) != 1 {
		t.Errorf("B again records %d entries, want only its config-loaded entry", len(again))
	}
}
