package main

import (
	"fmt"
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
