// Package redistest gives tests a real Redis: the shared test server
// (CTIGATE_TEST_REDIS_URL), private redis-server processes, and a local
// 3-master Redis Cluster.
package redistest

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// DefaultURL is the test Redis used when CTIGATE_TEST_REDIS_URL is unset.
const DefaultURL = "redis://127.0.0.1:6379/15"

// Required reports whether Redis tests must run (CTIGATE_REQUIRE_REDIS=1,
// set by .ci/run): then a missing Redis fails them instead of skipping.
func Required() bool { return os.Getenv("CTIGATE_REQUIRE_REDIS") == "1" }

// unavailable skips the test, or fails it when Redis is required.
func unavailable(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if Required() {
		t.Fatalf("%s (CTIGATE_REQUIRE_REDIS=1)", msg)
	}
	t.Skipf("%s; set CTIGATE_TEST_REDIS_URL or CTIGATE_REQUIRE_REDIS=1 to make this a failure", msg)
}

// URL returns the test Redis URL, after checking that it answers.
func URL(t testing.TB) string {
	t.Helper()
	u := os.Getenv("CTIGATE_TEST_REDIS_URL")
	if u == "" {
		u = DefaultURL
	}
	opts, err := goredis.ParseURL(u)
	if err != nil {
		t.Fatalf("CTIGATE_TEST_REDIS_URL %q: %v", u, err)
	}
	c := goredis.NewClient(opts)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := c.Ping(ctx).Err(); err != nil {
		unavailable(t, "Redis at %s unreachable: %v", u, err)
	}
	return u
}

// Prefix returns a fresh random key prefix whose keys are deleted when the
// test ends, on every master of c.
func Prefix(t testing.TB, c goredis.UniversalClient) string {
	t.Helper()
	var b [6]byte
	rand.Read(b[:])
	p := "ctigate-test-" + hex.EncodeToString(b[:])
	t.Cleanup(func() { DeletePrefix(t, c, p) })
	return p
}

// DeletePrefix deletes every key starting with prefix+":".
func DeletePrefix(t testing.TB, c goredis.UniversalClient, prefix string) {
	t.Helper()
	ctx := context.Background()
	del := func(ctx context.Context, n *goredis.Client) error {
		iter := n.Scan(ctx, 0, prefix+":*", 1000).Iterator()
		var keys []string
		for iter.Next(ctx) {
			keys = append(keys, iter.Val())
		}
		if err := iter.Err(); err != nil {
			return err
		}
		for _, k := range keys {
			if err := n.Del(ctx, k).Err(); err != nil {
				return err
			}
		}
		return nil
	}
	var err error
	switch c := c.(type) {
	case *goredis.ClusterClient:
		err = c.ForEachMaster(ctx, del)
	case *goredis.Client:
		err = del(ctx, c)
	default:
		err = fmt.Errorf("unsupported client %T", c)
	}
	if err != nil {
		t.Logf("deleting test keys %s:*: %v", prefix, err)
	}
}

// FreePort returns a TCP port free on 127.0.0.1 at the time of the call,
// below 50000 so that port+10000 (a cluster bus) is valid too.
func FreePort(t testing.TB) int {
	t.Helper()
	for range 100 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("free port: %v", err)
		}
		p := l.Addr().(*net.TCPAddr).Port
		l.Close()
		if p < 50000 {
			if l2, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p+10000)); err == nil {
				l2.Close()
				return p
			}
		}
	}
	t.Fatal("no free port below 50000")
	return 0
}

// Server is a redis-server process of a test.
type Server struct {
	Port int
	Dir  string
	args []string
	cmd  *exec.Cmd
	t    testing.TB
}

// Addr is host:port.
func (s *Server) Addr() string { return "127.0.0.1:" + strconv.Itoa(s.Port) }

// URL is a redis:// URL of database 0.
func (s *Server) URL() string { return "redis://" + s.Addr() + "/0" }

// serverBinary returns the redis-server path, skipping the test (failing
// under CTIGATE_REQUIRE_REDIS=1) where there is none.
func serverBinary(t testing.TB) string {
	t.Helper()
	p, err := exec.LookPath("redis-server")
	if err != nil {
		unavailable(t, "redis-server not found in PATH")
	}
	return p
}

// StartServer starts a private redis-server on a free port (no
// persistence unless args say otherwise) and stops it when the test ends.
func StartServer(t testing.TB, args ...string) *Server {
	t.Helper()
	s := &Server{Port: FreePort(t), Dir: t.TempDir(), t: t, args: args}
	s.Start()
	t.Cleanup(s.Stop)
	return s
}

// Start starts the server (again, after Stop) on its port.
func (s *Server) Start() {
	s.t.Helper()
	bin := serverBinary(s.t)
	args := append([]string{"--port", strconv.Itoa(s.Port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--dir", s.Dir, "--protected-mode", "no"}, s.args...)
	s.cmd = exec.Command(bin, args...)
	log, err := os.OpenFile(filepath.Join(s.Dir, "redis.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		s.t.Fatal(err)
	}
	s.cmd.Stdout, s.cmd.Stderr = log, log
	if err := s.cmd.Start(); err != nil {
		s.t.Fatalf("starting redis-server: %v", err)
	}
	c := goredis.NewClient(&goredis.Options{Addr: s.Addr(), MaxRetries: -1})
	defer c.Close()
	for i := 0; ; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := c.Ping(ctx).Err()
		cancel()
		if err == nil {
			return
		}
		// A server loading a large append-only file answers LOADING
		// until it is done: wait for it (up to two minutes).
		loading := strings.HasPrefix(err.Error(), "LOADING")
		if (!loading && i > 200) || i > 4800 {
			out, _ := os.ReadFile(filepath.Join(s.Dir, "redis.log"))
			s.t.Fatalf("redis-server on %d does not answer: %v\n%s", s.Port, err, out)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// Stop kills the server (SIGKILL) and waits for it.
func (s *Server) Stop() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	s.cmd.Process.Kill()
	s.cmd.Wait()
	s.cmd = nil
}

// StartCluster starts a 3-master Redis Cluster (no replicas) of private
// redis-server processes, waits for cluster_state:ok and returns the
// masters' addresses. The processes are killed when the test ends.
func StartCluster(t testing.TB) []string {
	t.Helper()
	var nodes []*Server
	for range 3 {
		nodes = append(nodes, StartServer(t, "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
			"--cluster-node-timeout", "5000"))
	}
	ctx := context.Background()
	var clients []*goredis.Client
	for _, n := range nodes {
		c := goredis.NewClient(&goredis.Options{Addr: n.Addr()})
		t.Cleanup(func() { c.Close() })
		clients = append(clients, c)
	}
	const slots = 16384
	for i, c := range clients {
		lo, hi := i*slots/3, (i+1)*slots/3-1
		if err := c.Do(ctx, "CLUSTER", "ADDSLOTSRANGE", lo, hi).Err(); err != nil {
			t.Fatalf("CLUSTER ADDSLOTSRANGE on %s: %v", nodes[i].Addr(), err)
		}
	}
	for _, c := range clients[1:] {
		if err := c.ClusterMeet(ctx, "127.0.0.1", strconv.Itoa(nodes[0].Port)).Err(); err != nil {
			t.Fatalf("CLUSTER MEET: %v", err)
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for _, c := range clients {
		for {
			info, err := c.ClusterInfo(ctx).Result()
			if err == nil && clusterOK(info) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("cluster not ok after 30s: %v %s", err, info)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	addrs := make([]string, len(nodes))
	for i, n := range nodes {
		addrs[i] = n.Addr()
	}
	return addrs
}

func clusterOK(info string) bool {
	sc := bufio.NewScanner(strings.NewReader(info))
	ok, known := false, false
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "cluster_state:ok" {
			ok = true
		}
		if line == "cluster_known_nodes:3" {
			known = true
		}
	}
	return ok && known
}
