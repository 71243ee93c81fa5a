package server_test

import (
	"testing"

	goredis "github.com/redis/go-redis/v9"

	"github.com/ctigate/ctigate/auth"
	"github.com/ctigate/ctigate/config"
	"github.com/ctigate/ctigate/store/redis"
	"github.com/ctigate/ctigate/store/redis/redistest"
)

// authOf returns the authenticator of cfg's users.
func authOf(t testing.TB, cfg *config.Config) *auth.Authenticator {
	t.Helper()
	var users []auth.User
	for _, u := range cfg.Users {
		users = append(users, auth.User{Name: u.Name, Organisation: u.Organisation, Roles: u.Roles, PasswordHash: u.PasswordHash, TokenDigests: u.TokenSHA256})
	}
	a, err := auth.New(users, auth.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// redisStore opens a store on the test Redis under a fresh key prefix,
// closed at the end of the test, with a client of its own for the test
// to look at the keys (admin) and the prefix. set, when given, adjusts
// the store's options.
func redisStore(t testing.TB, set ...func(*redis.Options)) (st *redis.Store, admin goredis.UniversalClient, prefix string) {
	t.Helper()
	url := redistest.URL(t)
	admin, err := redis.NewClient(redis.Config{URL: url})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Close() })
	prefix = redistest.Prefix(t, admin)
	c, err := redis.NewClient(redis.Config{URL: url})
	if err != nil {
		t.Fatal(err)
	}
	opts := redis.Options{Prefix: prefix, CloseClient: true}
	for _, f := range set {
		f(&opts)
	}
	st, err = redis.New(c, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := st.Close(); err != nil {
			t.Error(err)
		}
	})
	return st, admin, prefix
}
