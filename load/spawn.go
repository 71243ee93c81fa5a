package load

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/google/uuid"
	"go.yaml.in/yaml/v3"

	"github.com/ctigate/ctigate/auth"
	"github.com/ctigate/ctigate/config"
	"github.com/ctigate/ctigate/policy"
)

// The line `ctigate serve` prints on stdout once it listens.
const servingPrefix = "ctigate: serving TAXII 2.1 at "

const (
	// startTimeout bounds the wait for the gateway to open its store and
	// listen: opening the embedded store reads every version's index
	// entry (the id index is rebuilt from them), a minute or more at ten
	// million versions when the page cache is cold or busy writing back.
	startTimeout = 10 * time.Minute
	startReport  = 15 * time.Second // how often bench says it is still waiting
	stopTimeout  = time.Minute      // for it to finish requests and close the store after SIGTERM
)

type spawnOptions struct {
	executable string // "" means os.Executable()
	dataDir    string // "" means a temporary directory
	apiRoot    string
	collection string
	maxContent int64 // largest envelope to accept, bytes
	maxLimit   int   // largest page size to serve
	// redisURL and redisPrefix select the Redis store; "" means bbolt.
	redisURL, redisPrefix string
	// routes adds a published collection (PublishedCollection) and a
	// route into it from the inbound collection, as the demo topology has.
	routes bool
	logf   func(format string, args ...any)
}

// spawned is a gateway bench started as a child process. Its methods are
// safe on a nil *spawned (no gateway started).
type spawned struct {
	url, user, password string
	dataDir             string

	cmd     *exec.Cmd
	tmp     string // holds the config, and the data unless dataDir was given
	stderr  *tail
	sampler *rssSampler
	exited  chan struct{} // closed when the process has exited
	exitErr error         // valid after exited is closed
	early   bool          // it exited before stop asked it to

	stopOnce sync.Once
	stopErr  error
}

// benchConfig is the gateway configuration bench runs: one API root with
// an inbound collection that one user, bench, may write and read, and,
// with routes, a published collection bench reads, filled by a route
// (ceiling TLP:AMBER+STRICT, the demo's defaults otherwise).
func benchConfig(o spawnOptions, passwordHash string) (*config.Config, error) {
	id, alias := DefaultCollection, "csirt-inbound"
	if u, err := uuid.Parse(o.collection); err == nil {
		id = u.String()
		if id != DefaultCollection {
			alias = ""
		}
	} else {
		alias = o.collection
	}
	c := config.Default()
	c.Listen = "127.0.0.1:0"
	c.DataDir = o.dataDir
	c.Paging = config.Paging{DefaultLimit: 1000, MaxLimit: max(10000, o.maxLimit)}
	c.Discovery = config.Discovery{Title: "ctigate bench", Default: o.apiRoot}
	c.APIRoots = []config.APIRoot{{
		Name:             o.apiRoot,
		Title:            "ctigate bench",
		MaxContentLength: max(config.DefaultMaxContentLength, 2*o.maxContent),
		Collections: []config.Collection{{
			ID: id, Alias: alias, Title: "bench inbound",
			Writers: []string{"role:producer"}, Readers: []string{"role:producer"},
		}},
	}}
	if o.routes {
		c.APIRoots[0].Collections = append(c.APIRoots[0].Collections, config.Collection{
			ID: PublishedCollection, Alias: "bench-published", Title: "bench published", Readers: []string{"bench"},
		})
		c.Routes = []policy.RouteConfig{{Name: "bench", ID: PublishedCollection, Sources: []string{id}, Ceiling: "TLP:AMBER+STRICT"}}
	}
	c.Users = []config.User{{Name: "bench", Organisation: "CERT-A", Roles: []string{"producer"}, PasswordHash: passwordHash}}
	if o.redisURL != "" {
		c.Store = "redis"
		c.Redis.URL = o.redisURL
		if o.redisPrefix != "" {
			c.Redis.Prefix = o.redisPrefix
		}
	}
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("gateway configuration: %w", err)
	}
	return &c, nil
}

// spawn starts `ctigate serve` on a loopback port with a configuration of
// its own and waits until it listens.
func spawn(ctx context.Context, o spawnOptions) (_ *spawned, err error) {
	exe := o.executable
	if exe == "" {
		if exe, err = os.Executable(); err != nil {
			return nil, fmt.Errorf("finding the ctigate binary: %w", err)
		}
	}
	s := &spawned{user: "bench", stderr: &tail{max: 16 << 10}, exited: make(chan struct{})}
	if s.tmp, err = os.MkdirTemp("", "ctigate-bench-"); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			s.stop()
		}
	}()
	s.dataDir = o.dataDir
	if s.dataDir == "" {
		s.dataDir = filepath.Join(s.tmp, "data")
	}
	if err := os.MkdirAll(s.dataDir, 0o700); err != nil {
		return nil, fmt.Errorf("data: %w", err)
	}
	o.dataDir = s.dataDir

	pw := make([]byte, 24)
	if _, err := rand.Read(pw); err != nil {
		return nil, err
	}
	s.password = base64.RawURLEncoding.EncodeToString(pw)
	hash, err := auth.HashPassword(s.password)
	if err != nil {
		return nil, err
	}
	cfg, err := benchConfig(o, hash)
	if err != nil {
		return nil, err
	}
	y, err := yaml.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	cfgPath := filepath.Join(s.tmp, "ctigate.yaml")
	if err := os.WriteFile(cfgPath, y, 0o600); err != nil {
		return nil, err
	}

	urls := make(chan string, 1)
	s.cmd = exec.Command(exe, "serve", "--config", cfgPath, "--data", s.dataDir, "--listen", "127.0.0.1:0")
	s.cmd.Env = append(childEnv(os.Environ()), "CTIGATE_OPS_LISTEN=127.0.0.1:0") // no fixed port to collide on
	s.cmd.Stdout = &lineWatcher{prefix: servingPrefix, found: urls}
	s.cmd.Stderr = s.stderr
	s.cmd.SysProcAttr = childProcAttr()
	o.logf("starting %s serve (data in %s)", exe, s.dataDir)
	if err := s.cmd.Start(); err != nil {
		close(s.exited)
		return nil, fmt.Errorf("starting the gateway: %w", err)
	}
	go func() {
		s.exitErr = s.cmd.Wait()
		close(s.exited)
	}()

	started := time.Now()
	timer := time.NewTimer(startTimeout)
	defer timer.Stop()
	report := time.NewTicker(startReport)
	defer report.Stop()
	for s.url == "" {
		select {
		case u := <-urls:
			b, err := baseURL(u)
			if err != nil {
				return nil, fmt.Errorf("the gateway announced %q: %v", u, err)
			}
			s.url = b
		case <-s.exited:
			return nil, fmt.Errorf("the gateway exited before listening (%v):\n%s", s.exitErr, s.stderrTail())
		case <-report.C:
			o.logf("the gateway is still opening its store after %.0f s (it reads every stored version's index entry; waiting up to %v)", time.Since(started).Seconds(), startTimeout)
		case <-timer.C:
			return nil, fmt.Errorf("the gateway did not listen within %v:\n%s", startTimeout, s.stderrTail())
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	s.sampler = startSampler(s.cmd.Process.Pid)
	return s, nil
}

// childEnv is the environment of the gateway: bench's own, without
// CTIGATE_* variables, so the generated configuration is what runs (and
// CTIGATE_BENCH_PASSWORD goes no further).
func childEnv(env []string) []string {
	out := make([]string, 0, len(env))
	for _, kv := range env {
		// CTIGATE_DEBUG_PPROF passes through: profiling the started gateway.
		if !strings.HasPrefix(kv, "CTIGATE_") || strings.HasPrefix(kv, "CTIGATE_DEBUG_PPROF=") {
			out = append(out, kv)
		}
	}
	return out
}

// phase attributes the following RSS samples to a phase ("" for none).
func (s *spawned) phase(name string) {
	if s != nil && s.sampler != nil {
		s.sampler.setPhase(name)
	}
}

// cpu returns the CPU time the gateway has used so far; false when it
// cannot be read (not started by bench, or not Linux).
func (s *spawned) cpu() (time.Duration, bool) {
	if s == nil || s.cmd == nil || s.cmd.Process == nil {
		return 0, false
	}
	d, err := readProcCPU(s.cmd.Process.Pid)
	return d, err == nil
}

// rss returns the memory figures so far, with VmHWM read now.
func (s *spawned) rss() *RSSResult {
	if s == nil || s.sampler == nil {
		return nil
	}
	return s.sampler.result()
}

// current returns the last memory sample, or zeros.
func (s *spawned) current() procMemory {
	if s == nil || s.sampler == nil {
		return procMemory{}
	}
	return s.sampler.current()
}

// stop sends SIGTERM, waits for the gateway to exit (killing it after
// stopTimeout) and removes temporary files. It is idempotent.
func (s *spawned) stop() error {
	if s == nil {
		return nil
	}
	s.stopOnce.Do(func() {
		if s.sampler != nil {
			s.sampler.stop()
		}
		if s.cmd != nil && s.cmd.Process != nil {
			select {
			case <-s.exited:
				s.early = true
			default:
				_ = s.cmd.Process.Signal(syscall.SIGTERM)
				t := time.NewTimer(stopTimeout)
				select {
				case <-s.exited:
				case <-t.C:
					_ = s.cmd.Process.Kill()
					<-s.exited
					s.stopErr = fmt.Errorf("the gateway did not stop within %v of SIGTERM and was killed", stopTimeout)
				}
				t.Stop()
			}
		}
		if s.tmp != "" {
			if err := os.RemoveAll(s.tmp); err != nil && s.stopErr == nil {
				s.stopErr = err
			}
		}
	})
	return s.stopErr
}

// crashed reports whether the gateway exited before stop asked it to.
func (s *spawned) crashed() bool {
	if s == nil {
		return false
	}
	s.stop()
	return s.early
}

// stderrTail returns the last lines the gateway wrote to stderr.
func (s *spawned) stderrTail() string {
	if s == nil {
		return ""
	}
	return s.stderr.String()
}

// lineWatcher is the gateway's stdout: it looks for the line starting with
// prefix and sends the rest of it on found, once.
type lineWatcher struct {
	prefix string
	found  chan<- string
	buf    []byte
	done   bool
}

func (w *lineWatcher) Write(p []byte) (int, error) {
	if w.done {
		return len(p), nil
	}
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			break
		}
		line := strings.TrimRight(string(w.buf[:i]), "\r")
		w.buf = w.buf[i+1:]
		if rest, ok := strings.CutPrefix(line, w.prefix); ok {
			w.found <- strings.TrimSpace(rest)
			w.done, w.buf = true, nil
			return len(p), nil
		}
	}
	if len(w.buf) > 64<<10 { // no line end in sight: not the line we want
		w.buf = w.buf[:0]
	}
	return len(p), nil
}

// tail keeps the last max bytes written to it.
type tail struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - t.max; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
	return len(p), nil
}

// String returns the last 20 complete lines.
func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := strings.TrimRight(string(t.buf), "\n")
	lines := strings.Split(s, "\n")
	if len(lines) > 20 {
		lines = lines[len(lines)-20:]
	}
	return strings.Join(lines, "\n")
}

var errNoProc = errors.New("no /proc on this system")
