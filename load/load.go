// Package load measures a TAXII 2.1 gateway under load: producers push
// generated STIX indicators in envelopes, then consumers page through the
// collection, and the tool reports throughput, latency and, when it started
// the gateway itself, the server's peak resident memory.
package load

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"regexp"
	"runtime"
	"strings"
	"time"

	"github.com/ctigate/ctigate/config"
)

// Phase selects what Run does.
type Phase string

// Phases.
const (
	PhasePush Phase = "push" // only push generated objects
	PhasePoll Phase = "poll" // only page through the collection
	PhaseBoth Phase = "both" // push, then poll
)

func (p Phase) push() bool { return p == PhasePush || p == PhaseBoth }
func (p Phase) poll() bool { return p == PhasePoll || p == PhaseBoth }

// Demo defaults (configs/ctigate.yaml): the exchange API root, the
// csirt-inbound collection and its producer cert-a.
const (
	DefaultAPIRoot    = "exchange"
	DefaultCollection = "24f70a31-7be5-4fdd-8353-9784877646c1" // csirt-inbound
	DefaultUser       = "cert-a"
	// PublishedCollection is the collection a gateway bench starts
	// publishes into through its route (the demo's law-enforcement id).
	PublishedCollection = "1dae5e88-4b59-4503-a9cf-2e649dd6544c"
	defaultPassword     = "cert-a-demo" // the published demo password; never printed
)

// Limits that keep one run within reason.
const (
	MaxObjects  = 10_000_000 // about 4.5 GB of generated envelopes in memory
	MaxWorkers  = 256        // producers or consumers
	MaxPageSize = 100_000
)

// Config describes one load run. Start from DefaultConfig.
type Config struct {
	// Server is the base URL of a running gateway (http://127.0.0.1:8080).
	// Empty means Run starts its own gateway from Executable and stops it at
	// the end. Only loopback addresses are accepted.
	Server string

	APIRoot    string // API root name
	Collection string // collection id or alias
	// User and Password authenticate producers and consumers (HTTP Basic)
	// against Server. A gateway started by Run gets its own user with a
	// random password instead.
	User     string
	Password string

	Objects   int   // N: objects to push
	Envelope  int   // B: objects per envelope
	Producers int   // P: concurrent producers
	Consumers int   // C: concurrent consumers, each reading the whole collection
	PageSize  int   // L: limit per page
	Phase     Phase // push, poll or both

	// DataDir keeps the started gateway's data after the run, so a large
	// store can be built once (PhasePush) and polled again (PhasePoll).
	// Empty means a temporary directory removed at the end. Ignored with
	// Server.
	DataDir string
	// Executable is the ctigate binary started with "serve"; empty means
	// the running program (os.Executable).
	Executable string
	// RedisURL, when set, makes the started gateway keep its data in Redis
	// at this URL (store: redis) under the key prefix RedisPrefix, instead
	// of a bbolt file in DataDir.
	RedisURL, RedisPrefix string

	// Routeless makes the gateway bench starts one collection without a
	// route, which consumers read directly (no fan-out, no published
	// copies). By default it has a route, as the demo topology: producers
	// post to the inbound collection and consumers read the route's
	// published collection once fan-out has caught up (and, before the
	// poll, the gateway has settled: see waitIdle).
	Routeless bool
	// NoCeiling skips the ceiling run (see ceiling.go) that otherwise comes
	// first in a push-and-poll run.
	NoCeiling bool

	// Timeout bounds each HTTP request, and the wait for an asynchronous
	// status to complete.
	Timeout time.Duration

	JSON     bool      // write the report as one JSON object instead of a table
	Progress io.Writer // progress lines while running; nil discards them

	// BeforePoll, when set, is called once the push (and, with a route,
	// its publication) is done, just before the poll starts: bench
	// splits Redis's CPU time there.
	BeforePoll func()
}

// DefaultConfig returns the configuration of `ctigate bench` without flags.
func DefaultConfig() Config {
	return Config{
		APIRoot:    DefaultAPIRoot,
		Collection: DefaultCollection,
		User:       DefaultUser,
		Password:   defaultPassword,
		Objects:    100_000,
		Envelope:   500,
		Producers:  4,
		Consumers:  4,
		PageSize:   1000,
		Phase:      PhaseBoth,
		Timeout:    2 * time.Minute,
	}
}

var pathSegmentRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._~-]{0,127}$`)

// String describes cfg without its password.
func (cfg Config) String() string {
	pw := "unset"
	if cfg.Password != "" {
		pw = "set"
	}
	server := cfg.Server
	if server == "" {
		server = "(started by bench)"
	}
	return fmt.Sprintf("server=%s api-root=%s collection=%s user=%s password=%s n=%d b=%d p=%d c=%d l=%d phase=%s data=%q",
		server, cfg.APIRoot, cfg.Collection, cfg.User, pw, cfg.Objects, cfg.Envelope, cfg.Producers, cfg.Consumers, cfg.PageSize, cfg.Phase, cfg.DataDir)
}

// Validate checks cfg; errors name the setting.
func (cfg *Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	switch cfg.Phase {
	case PhasePush, PhasePoll, PhaseBoth:
	default:
		bad("phase: %q is not push, poll or both", cfg.Phase)
	}
	if cfg.Server != "" {
		if _, err := baseURL(cfg.Server); err != nil {
			bad("server: %v", err)
		}
		if cfg.User == "" {
			bad("user: must not be empty")
		}
	}
	if !pathSegmentRE.MatchString(cfg.APIRoot) {
		bad("api-root: %q is not an API root name", cfg.APIRoot)
	}
	if !pathSegmentRE.MatchString(cfg.Collection) {
		bad("collection: %q is not a collection id or alias", cfg.Collection)
	}
	if cfg.Phase.push() {
		if cfg.Objects < 1 || cfg.Objects > MaxObjects {
			bad("n: %d must be from 1 to %d", cfg.Objects, MaxObjects)
		}
		if cfg.Envelope < 1 {
			bad("b: %d must be at least 1", cfg.Envelope)
		}
		if cfg.Producers < 1 || cfg.Producers > MaxWorkers {
			bad("p: %d must be from 1 to %d", cfg.Producers, MaxWorkers)
		}
	}
	if cfg.Phase.poll() {
		if cfg.Consumers < 1 || cfg.Consumers > MaxWorkers {
			bad("c: %d must be from 1 to %d", cfg.Consumers, MaxWorkers)
		}
		if cfg.PageSize < 1 || cfg.PageSize > MaxPageSize {
			bad("l: %d must be from 1 to %d", cfg.PageSize, MaxPageSize)
		}
	}
	if cfg.Timeout <= 0 {
		bad("timeout: must be positive")
	}
	return errors.Join(errs...)
}

// baseURL checks that s is an http(s) URL of a loopback host and returns it
// without a trailing "/" or "/taxii2/" (the discovery path people copy from
// the server's start-up line).
func baseURL(s string) (string, error) {
	u, err := url.Parse(s)
	if err != nil {
		return "", err
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return "", fmt.Errorf("%q: want an http:// or https:// URL", s)
	}
	if u.User != nil {
		return "", fmt.Errorf("put credentials in --user and --password (or CTIGATE_BENCH_PASSWORD), not in the URL")
	}
	if !config.IsLoopback(u.Hostname()) {
		return "", fmt.Errorf("%q is not a loopback address: bench only loads a gateway on this machine", u.Hostname())
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("%q: want a base URL without query or fragment", s)
	}
	p := strings.TrimSuffix(u.Path, "/")
	p = strings.TrimSuffix(p, "/taxii2")
	return u.Scheme + "://" + u.Host + p, nil
}

// Run performs the run cfg describes and writes the report to out: a table,
// or one JSON object when cfg.JSON is set. It returns the figures, or an
// error when the run could not be completed or a check failed; then no
// report is written and the Result holds what was measured until then.
// Cancelling ctx stops the run (and a gateway Run started) promptly.
func Run(ctx context.Context, cfg Config, out io.Writer) (Result, error) {
	if err := cfg.Validate(); err != nil {
		return Result{}, err
	}
	progress := cfg.Progress
	if progress == nil {
		progress = io.Discard
	}
	logf := func(format string, args ...any) { fmt.Fprintf(progress, "bench: "+format+"\n", args...) }

	res := Result{
		GoVersion:  runtime.Version(),
		OS:         runtime.GOOS,
		Arch:       runtime.GOARCH,
		GOMAXPROCS: runtime.GOMAXPROCS(0),
		NumCPU:     runtime.NumCPU(),
		CPUModel:   cpuModel(),
		Phase:      string(cfg.Phase),
		APIRoot:    cfg.APIRoot,
		Collection: cfg.Collection,
		Consumers:  cfg.Consumers,
		PageSize:   cfg.PageSize,
	}
	if cfg.Phase.push() {
		res.Objects, res.Envelope, res.Producers = cfg.Objects, cfg.Envelope, cfg.Producers
	}
	if l, ok := loadAverage(); ok {
		res.LoadStart = l
		if l >= 1 {
			res.Notes = append(res.Notes, fmt.Sprintf("load average %.2f on %d CPUs when the run began (the last minute: other processes or an earlier run); figures may be pessimistic", l, runtime.NumCPU()))
		}
	}

	var envs []envelope
	if cfg.Phase.push() {
		logf("generating %d indicators in envelopes of %d", cfg.Objects, cfg.Envelope)
		start := time.Now()
		var err error
		envs, err = generate(ctx, cfg.Objects, cfg.Envelope, runtime.GOMAXPROCS(0))
		if err != nil {
			return res, err
		}
		res.Generate = summarise(envs, time.Since(start))
		logf("generated %d envelopes (%s) in %.1f s", len(envs), mib(res.Generate.Bytes), res.Generate.Seconds)
	}

	// The ceiling first, in the same sitting, with the same envelopes.
	if cfg.Phase == PhaseBoth && !cfg.NoCeiling {
		if err := runCeiling(ctx, cfg, envs, &res, logf); err != nil {
			return res, fmt.Errorf("ceiling: %w", err)
		}
	}

	var target string // the gateway's base URL
	user, password := cfg.User, cfg.Password
	var srv *spawned
	if cfg.Server == "" {
		var err error
		srv, err = spawn(ctx, spawnOptions{
			executable:  cfg.Executable,
			dataDir:     cfg.DataDir,
			apiRoot:     cfg.APIRoot,
			collection:  cfg.Collection,
			maxContent:  maxEnvelopeBytes(envs),
			maxLimit:    cfg.PageSize,
			redisURL:    cfg.RedisURL,
			redisPrefix: cfg.RedisPrefix,
			routes:      !cfg.Routeless,
			logf:        logf,
		})
		if err != nil {
			return res, err
		}
		defer srv.stop() // idempotent; the normal path stops it below
		target, user, password = srv.url, srv.user, srv.password
		res.Server = ServerInfo{URL: srv.url, Started: true}
		if cfg.DataDir != "" {
			res.Server.DataDir, res.Server.Kept = srv.dataDir, true
		}
	} else {
		b, _ := baseURL(cfg.Server)
		target = b
		res.Server = ServerInfo{URL: b}
	}

	report := reporter{logf: logf, every: reportEvery, server: srv}
	c := newClient(target, cfg.APIRoot, cfg.Collection, user, password, cfg.Producers+cfg.Consumers, cfg.Timeout)
	defer c.close()

	var (
		pushCPU   time.Duration // the gateway's CPU time when the push began
		pushCPUok bool
	)
	runErr := func() error {
		col, err := c.describe(ctx)
		if err != nil {
			return err
		}
		res.Collection = col.ID
		if cfg.Phase.push() && !col.CanWrite {
			return fmt.Errorf("user %q may not write to collection %s", user, col.ID)
		}
		if cfg.Phase.poll() && !col.CanRead {
			return fmt.Errorf("user %q may not read collection %s", user, col.ID)
		}

		// Exact count check: when the collection was empty before the push,
		// every consumer must see exactly N objects.
		expected, minimum := -1, 0
		if cfg.Phase.push() {
			empty, err := c.empty(ctx)
			if err != nil {
				return err
			}
			minimum = cfg.Objects
			if empty {
				expected = cfg.Objects
			} else {
				res.Notes = append(res.Notes, "the collection was not empty before the push: consumers are checked against each other, not against n")
			}
			srv.phase("push")
			pushCPU, pushCPUok = srv.cpu()
			logf("push: %d envelopes from %d producers to %s", len(envs), cfg.Producers, target)
			res.Push, err = push(ctx, c, envs, cfg.Producers, cfg.Timeout, report)
			if err != nil {
				return err
			}
		}
		// With a route (a gateway bench started), consumers read what it
		// published, once fan-out has caught up with the push.
		if srv != nil && !cfg.Routeless {
			published := 0
			for _, e := range envs {
				published += e.objects - e.red
			}
			pc := newClient(target, cfg.APIRoot, PublishedCollection, user, password, cfg.Consumers+1, cfg.Timeout)
			defer pc.close()
			if cfg.Phase.push() {
				res.Propagation, err = catchUp(ctx, pc, published, res.Push, cfg.Timeout)
				if err != nil {
					return err
				}
				expected, minimum = published, published
			} else {
				expected, minimum = -1, 0
			}
			c = pc
			res.Collection = PublishedCollection
		}
		if now, ok := srv.cpu(); ok && pushCPUok && res.Push != nil && res.Push.Objects > 0 {
			res.CPU = &CPUResult{PushSeconds: (now - pushCPU).Seconds()}
			res.CPU.PushMicrosPerObject = 1e6 * res.CPU.PushSeconds / float64(res.Push.Objects)
		}
		// The poll measures reads, not reads beside the rest of the push's
		// work (the search index and the ledger's checkpoints go on after
		// the route published): a gateway bench started is left to settle
		// first, and how long that took is reported.
		if srv != nil && cfg.Phase.poll() {
			logf("waiting for the gateway's background work to end (under %d%% of a processor for %v)", settleIdlePercent, settleWindow)
			waited, idle, err := waitIdle(ctx, srv.cpu, settleStep, settleWindow, settleIdle, settleMax)
			if err != nil {
				return err
			}
			res.Settle = &SettleResult{Seconds: waited.Seconds(), Settled: idle}
			if now, ok := srv.cpu(); ok && pushCPUok && res.Push != nil && res.Push.Objects > 0 {
				res.Settle.MicrosPerObject = 1e6 * (now - pushCPU).Seconds() / float64(res.Push.Objects)
			}
			if !idle {
				res.Notes = append(res.Notes, fmt.Sprintf("the gateway was still busy %v after the push: the poll ran beside its background work", settleMax))
			}
		}
		envs = nil // let the collector have the generated data back
		if cfg.Phase.poll() {
			if cfg.BeforePoll != nil {
				cfg.BeforePoll()
			}
			srv.phase("poll")
			pollCPU, pollCPUok := srv.cpu()
			logf("poll: %d consumers, pages of %d", cfg.Consumers, cfg.PageSize)
			res.Poll, err = poll(ctx, c, cfg.Consumers, cfg.PageSize, expected, minimum, report)
			if err != nil {
				return err
			}
			if now, ok := srv.cpu(); ok && pollCPUok && res.Poll.Objects > 0 {
				if res.CPU == nil {
					res.CPU = &CPUResult{}
				}
				res.CPU.PollSeconds = (now - pollCPU).Seconds()
				res.CPU.PollMicrosPerObject = 1e6 * res.CPU.PollSeconds / float64(res.Poll.Objects)
			}
			if res.Poll.PerConsumer == 0 {
				res.Notes = append(res.Notes, "the collection is empty: nothing was polled (build a store with --phase push --data DIR first)")
			}
		}
		return nil
	}()

	if l, ok := loadAverage(); ok {
		res.LoadEnd = l
	}
	if srv != nil {
		srv.phase("")
		res.RSS = srv.rss()
		if err := srv.stop(); err != nil {
			res.Notes = append(res.Notes, "stopping the gateway: "+err.Error())
		}
		if srv.exitErr != nil {
			res.Notes = append(res.Notes, "the gateway exited with "+srv.exitErr.Error())
		}
	}
	if runErr != nil {
		if ctx.Err() != nil {
			runErr = fmt.Errorf("%w (%v)", ctx.Err(), runErr)
		}
		if srv.crashed() {
			runErr = fmt.Errorf("%w\nthe gateway exited during the run (%v); its last log lines:\n%s", runErr, srv.exitErr, srv.stderrTail())
		}
		return res, runErr
	}
	if c := res.Ceiling; c != nil {
		if res.Push != nil && c.Push != nil && c.Push.ObjectsPerSec > 0 {
			c.PushRatio = res.Push.ObjectsPerSec / c.Push.ObjectsPerSec
		}
		if res.Poll != nil && c.Poll != nil && c.Poll.ObjectsPerSec > 0 {
			c.PollRatio = res.Poll.ObjectsPerSec / c.Poll.ObjectsPerSec
		}
	}
	if err := res.write(out, cfg.JSON); err != nil {
		return res, err
	}
	return res, nil
}
