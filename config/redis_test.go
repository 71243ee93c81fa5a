package config

import (
	"strings"
	"testing"
)

const redisBase = `
api_roots:
  - name: exchange
    title: X
    collections:
      - id: 24f70a31-7be5-4fdd-8353-9784877646c1
        title: In
`

func TestRedisConfig(t *testing.T) {
	env := map[string]string{"CTIGATE_STORE": "redis", "CTIGATE_REDIS_URL": "rediss://u:p@redis.example:6380/2", "CTIGATE_REDIS_PREFIX": "gw1"}
	c, err := Parse([]byte(redisBase), func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if c.Store != "redis" || c.Redis.URL != env["CTIGATE_REDIS_URL"] || c.Redis.Prefix != "gw1" {
		t.Fatalf("got %+v", c.Redis)
	}
	d, err := Parse([]byte(redisBase), nil)
	if err != nil || d.Store != "bolt" || d.Redis.Prefix != "ctigate" {
		t.Fatalf("defaults: store %q, prefix %q, %v", d.Store, d.Redis.Prefix, err)
	}
	c, err = Parse([]byte(redisBase+"store: redis\nredis:\n  addrs: [a:1, b:2, c:3]\n"), nil)
	if err != nil || len(c.Redis.Addrs) != 3 {
		t.Fatalf("cluster addrs: %+v, %v", c.Redis, err)
	}
}

func TestRedisValidationNamesKeys(t *testing.T) {
	for _, tc := range []struct{ yaml, want string }{
		{"store: mongo\n", "config: store: \"mongo\" is not one of bolt, redis"},
		{"store: redis\n", "config: redis: url or addrs must be set"},
		{"store: redis\nredis:\n  url: http://x:1\n", "config: redis.url: scheme \"http\""},
		{"store: redis\nredis:\n  url: redis://x:1\n  addrs: [y:2]\n", "config: redis: url and addrs are exclusive"},
		{"store: redis\nredis:\n  addrs: [x]\n", "config: redis.addrs[0]: \"x\" is not host:port"},
		{"store: redis\nredis:\n  url: redis://x:1\n  prefix: 'a{b}'\n", "config: redis.prefix:"},
		{"store: redis\nredis:\n  url: redis://x:1\n  master_name: m\n", "config: redis.master_name: needs redis.addrs"},
		{"store: redis\nredis:\n  addrs: [a:1, b:2]\n  db: 3\n", "config: redis.db: a Redis Cluster has only database 0"},
		{"store: redis\nredis:\n  url: redis://x:1\n  tls:\n    cert_file: c.pem\n", "config: redis.tls: cert_file and key_file"},
		{"store: redis\nredis:\n  url: redis://x:1\n  queue:\n    max_len: 5\n", "queue"}, // the event streams are gone: an unknown key
	} {
		_, err := Parse([]byte(redisBase+tc.yaml), nil)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: got %v, want an error containing %q", tc.yaml, err, tc.want)
		}
	}
}
