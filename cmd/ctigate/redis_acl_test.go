package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/ctigate/ctigate/stix"
	"github.com/ctigate/ctigate/store/redis/redistest"
)

// readmeACL returns the arguments of docs/redis.md's `ACL SETUSER ctigate`
// line (the Redis section's), as redis-cli would pass them.
func readmeACL(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile("../../docs/redis.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		rest, ok := strings.CutPrefix(line, "redis-cli ACL SETUSER ctigate ")
		if !ok {
			continue
		}
		var args []string
		for _, f := range strings.Fields(rest) {
			args = append(args, strings.Trim(f, "'"))
		}
		return args
	}
	t.Fatal("docs/redis.md has no `redis-cli ACL SETUSER ctigate …` line")
	return nil
}

// TestRedisACLFromDocs: the Redis user docs/redis.md tells operators to
// give the replicas is enough for the whole gateway (ingest, fan-out,
// ledger, search, polling) and refuses everything else: keys outside the
// gateway's prefix and dangerous commands.
func TestRedisACLFromDocs(t *testing.T) {
	admin, err := goredis.ParseURL(redistest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	ac := goredis.NewClient(admin)
	t.Cleanup(func() { ac.Close() }) // after the prefix's keys are deleted
	ctx := context.Background()
	prefix := redistest.Prefix(t, ac)

	var rb [12]byte
	rand.Read(rb[:])
	user, password := "ctigate-acl-"+hex.EncodeToString(rb[:4]), hex.EncodeToString(rb[4:])
	args := []any{"ACL", "SETUSER", user}
	for _, a := range readmeACL(t) {
		switch {
		case strings.HasPrefix(a, ">"):
			a = ">" + password
		case a == "~ctigate:*":
			a = "~" + prefix + ":*"
		}
		args = append(args, a)
	}
	if err := ac.Do(ctx, args...).Err(); err != nil {
		if strings.Contains(err.Error(), "unknown command") && !redistest.Required() {
			t.Skipf("this Redis has no ACLs: %v", err)
		}
		t.Fatalf("%v: %v", args, err)
	}
	t.Cleanup(func() { ac.Do(context.Background(), "ACL", "DELUSER", user) })

	u := *admin
	u.Username, u.Password = user, password
	gwURL := (&url.URL{Scheme: "redis", User: url.UserPassword(user, password), Host: admin.Addr, Path: "/" + strconv.Itoa(admin.DB)}).String()
	gw := startServe(t, redisEnv(gwURL, nil, prefix), "--config", demoConfig, "--data", t.TempDir(), "--listen", "127.0.0.1:0")
	client := &http.Client{Timeout: 10 * time.Second}
	const id = "indicator--acacacac-0000-4000-8000-000000000001"
	if res, b, err := request(t, client, "POST", gw.base+inboundPath+"objects/", "cert-a",
		[]byte(`{"objects":[`+isoIndicator(id, "acl.example", stix.TLP2Green)+`]}`)); err != nil || res.StatusCode != http.StatusAccepted {
		t.Fatalf("POST under the documented ACL: %v %v %s", res, err, b)
	}
	waitFor(t, "police read the indicator", 15*time.Second, func() bool {
		_, b, _ := request(t, client, "GET", gw.base+lawEnforcementPath+"objects/", "police", nil)
		return strings.Contains(string(b), id)
	})
	waitFor(t, "the analyst finds it", 15*time.Second, func() bool {
		_, b, _ := request(t, client, "GET", gw.base+"/api/v1/search?value=acl.example", "analyst", nil)
		return strings.Contains(string(b), id)
	})
	if res, b, _ := request(t, client, "GET", gw.base+"/api/v1/audit/export", "auditor", nil); res == nil || res.StatusCode != http.StatusOK || !strings.Contains(string(b), id) {
		t.Errorf("ledger export under the documented ACL: %v %.200s", res, b)
	}

	// The same user, as anyone holding its password: nothing outside the
	// prefix, no dangerous commands.
	uc := goredis.NewClient(&u)
	defer uc.Close()
	for _, cmd := range [][]any{
		{"GET", "someone-else:key"},
		{"SET", "ctigate-other:key", "x"},
		{"KEYS", "*"},
		{"CONFIG", "GET", "dir"},
		{"FLUSHALL"},
		{"ACL", "LIST"},
	} {
		if err := uc.Do(ctx, cmd...).Err(); err == nil || !strings.Contains(err.Error(), "NOPERM") {
			t.Errorf("%v as the gateway's user: %v, want NOPERM", cmd, err)
		}
	}
}
