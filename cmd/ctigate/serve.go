package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"go.opentelemetry.io/otel"

	"github.com/ctigate/ctigate/auth"
	"github.com/ctigate/ctigate/config"
	"github.com/ctigate/ctigate/custody"
	"github.com/ctigate/ctigate/fanout"
	"github.com/ctigate/ctigate/gateway"
	"github.com/ctigate/ctigate/retention"
	"github.com/ctigate/ctigate/search"
	"github.com/ctigate/ctigate/server"
	"github.com/ctigate/ctigate/store/bolt"
	"github.com/ctigate/ctigate/telemetry"
)

// defaultMemoryLimit is the Go runtime's soft memory limit unless
// GOMEMLIMIT is set or the id index's slots need room (heapLimit).
const defaultMemoryLimit = 200 << 20

// memoryBudget bounds the Go runtime's memory and the embedded store's id
// index slots together (anonymous memory outside the Go heap, 4 bytes a
// slot, 64 MiB from about 6.3 to 12.6 million ids): heapLimit lowers the
// runtime's limit once the slots pass memoryBudget-defaultMemoryLimit. A
// variable for tests.
var memoryBudget int64 = 240 << 20

// heapLimit is the Go runtime's soft memory limit when the process's
// stores hold offHeap bytes of slots: what memoryBudget leaves, at most
// defaultMemoryLimit and at least half of it, below which the collector
// would run too often to keep the heap in. At ten million versions it is
// 176 MiB, still above what the collector aims at by GOGC during a push
// (about three times the 45 MiB live): a lower limit made the runtime
// return pages and take them back, about 5% of the CPU.
func heapLimit(offHeap int64) int64 {
	return min(defaultMemoryLimit, max(memoryBudget-offHeap, defaultMemoryLimit/2))
}

// defaultGCPercent is the Go collector's target when no memory limit is
// in force (GOMEMLIMIT=off): the heap may grow to three times what is live
// between collections.
const defaultGCPercent = 200

// gcPercent is the Go collector's target unless GOGC is set, for a soft
// memory limit of limit bytes. Under a limit the collector runs when the
// heap reaches it and not before (GOGC=off): ingest allocates fast and
// keeps little (15–40 MB live during a push of envelopes of 10), so a
// target relative to what is live ran the collector 34 times a second,
// marking for about half of the time, well inside the memory the limit
// grants (docs/performance.md); reclaimIdle returns the garbage once the
// gateway idles. Without a limit that would let the heap grow without
// bound: then defaultGCPercent.
func gcPercent(limit int64) int {
	if limit <= 0 || limit == math.MaxInt64 {
		return defaultGCPercent
	}
	return -1
}

// runServe runs the gateway until ctx is cancelled, then shuts down
// gracefully: in-flight requests finish, the store is closed cleanly.
func runServe(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "configs/ctigate.yaml", "configuration file")
	dataDir := fs.String("data", "", "data directory (overrides data_dir)")
	listen := fs.String("listen", "", "listen address host:port (overrides listen)")
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("serve: unexpected argument %q", fs.Arg(0))
	}
	// SIGHUP is caught for as long as serve runs: while the gateway
	// serves, the reloader reads the configuration again; while it starts
	// and while it stops (finishing requests, draining fan-out) the signal
	// is ignored, where its default action would end the process at once.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)

	// Flags are the last override, after the file and the environment.
	loadConfig := func() (*config.Config, error) {
		return config.Load(*cfgPath, func(k string) string {
			switch {
			case k == "CTIGATE_LISTEN" && *listen != "":
				return *listen
			case k == "CTIGATE_DATA_DIR" && *dataDir != "":
				return *dataDir
			}
			return getenv(k)
		})
	}
	cfg, err := loadConfig()
	if err != nil {
		return err
	}
	level := new(slog.LevelVar) // a reload sets it
	log := newLogger(cfg.Log, level, stderr)
	if err := startPprof(ctx, getenv("CTIGATE_DEBUG_PPROF"), log); err != nil {
		return err
	}

	// Telemetry from the standard OTEL_* variables: no exporter unless
	// one is named; metrics always on the operations listener.
	tel, err := telemetry.New(ctx, getenv, telemetry.Options{ServiceVersion: buildVersion()})
	if err != nil {
		return err
	}
	// Exporter failures (say, the collector is down) go to our log, not
	// to the standard logger. The SDK has only a process-wide handler.
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) { log.Warn("telemetry", "err", err) }))
	stopTelemetry := func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := tel.Shutdown(sctx); err != nil {
			log.Warn("telemetry: flushing on shutdown failed", "err", err)
		}
	}
	defer stopTelemetry()

	// A soft limit keeps the garbage of large page reads from growing the
	// process. It makes room for the embedded store's id index slots,
	// anonymous memory outside the Go heap (heapLimit). GOMEMLIMIT in the
	// environment overrides it.
	if getenv("GOMEMLIMIT") == "" {
		var last int64
		bolt.OnOffHeapChange(func(n int64) {
			debug.SetMemoryLimit(heapLimit(n))
			if n-last >= 16<<20 {
				// A table of 16 MiB or more is about to be made: the
				// heap gives back the free pages it keeps now, rather
				// than as its scavenger gets to them.
				debug.FreeOSMemory()
			}
			last = n
		})
		defer bolt.OnOffHeapChange(nil)
		debug.SetMemoryLimit(heapLimit(bolt.OffHeapBytes()))
	}
	reclaim := false
	if getenv("GOGC") == "" {
		p := gcPercent(debug.SetMemoryLimit(-1))
		debug.SetGCPercent(p)
		reclaim = p < 0
	}

	demo := demoUsers(cfg.Users)
	host, _, _ := net.SplitHostPort(cfg.Listen)
	if len(demo) > 0 {
		if !config.IsLoopback(host) {
			return fmt.Errorf("config: users: demo credentials (%s) must not be used on the non-loopback address %s; set real password hashes with `ctigate passwd`",
				strings.Join(demo, ", "), cfg.Listen)
		}
		fmt.Fprintf(stderr, "\n*** WARNING: DEMO CREDENTIALS IN USE (%s): password = user name + \"-demo\". For local trials only. ***\n\n", strings.Join(demo, ", "))
		log.Warn("demo credentials in use; listening on loopback only", "users", strings.Join(demo, ","))
	}

	authn, err := newAuthn(cfg)
	if err != nil {
		return err
	}
	// The configuration in force: server and fan-out read it through one
	// pointer, which SIGHUP replaces (reload.go).
	current, err := gateway.NewCurrent(cfg)
	if err != nil {
		return err
	}

	// The TLS configuration in force: each handshake reads it, and a
	// reload replaces it with the files read again.
	var tlsCur liveTLS
	tlsCfg, err := tlsCur.start(cfg.TLS)
	if err != nil {
		return err
	}
	// The checkpoint key, checked before anything is opened.
	signer, err := checkpointSigner(cfg, host, stderr, log)
	if err != nil {
		return err
	}

	st, err := openStore(ctx, cfg, log, tel)
	if err != nil {
		return err
	}
	defer st.Close()

	markings, err := gateway.LoadMarkings(ctx, st, cfg)
	if err != nil {
		return fmt.Errorf("loading marking definitions: %w", err)
	}
	routes := current.Load().Routes
	// The custody ledger, which every backend keeps (a gateway never runs
	// without its record): record the configuration and what it changes
	// in access since the one the ledger last recorded, then sign the
	// chain head periodically until the end.
	grants := newGrantsLedger(st, log)
	loaded, err := configLoaded(*cfgPath, routes, signer)
	if err != nil {
		return fmt.Errorf("custody: %w", err)
	}
	if _, err := grants.record(ctx, cfg, loaded); err != nil {
		return fmt.Errorf("custody: recording the configuration: %w", err)
	}
	checkpoints := newCheckpointer(st, signer)
	checkpoints.Every, checkpoints.Interval, checkpoints.Logger = uint64(cfg.Custody.CheckpointEvery), cfg.Custody.CheckpointInterval, log

	// The search indexer keeps the observable index of every collection;
	// ingest and fan-out wake it. Fan-out publishes what producers post
	// into the routes' collections.
	// Which collections are indexed and swept is read from the
	// configuration in force at each pass, so a reload applies to them.
	collections := func() []string {
		var ids []string
		for _, r := range current.Load().Config.APIRoots {
			for _, c := range r.Collections {
				ids = append(ids, c.ID)
			}
		}
		return ids
	}
	retentionOf := func() map[string]time.Duration {
		keep := map[string]time.Duration{}
		for _, r := range current.Load().Config.APIRoots {
			for _, c := range r.Collections {
				if c.Retention > 0 {
					keep[c.ID] = c.Retention
				}
			}
		}
		return keep
	}
	ix, closeIndex, err := st.openIndex()
	if err != nil {
		return err
	}
	defer closeIndex()
	sst := search.Join(st, ix)
	// An inbound collection is indexed as fan-out decides it (up to
	// search.DefaultFollowWait behind), so that the routes' unchanged
	// copies reuse what the indexer read of their sources.
	idx := search.NewIndexer(search.IndexerOptions{Store: sst, CollectionsOf: collections, Markings: markings, Logger: log,
		MaxObservablesOf: func() int { return current.Load().Config.Search.MaxObservablesPerObject },
		MeterProvider:    tel.MeterProvider,
		Follow: func(ctx context.Context, coll string) (time.Time, bool, error) {
			return fanout.DecidedThrough(ctx, st, current.Load().Routes, coll)
		}})
	fan := fanout.New(fanout.Options{Store: st, Current: current, Markings: markings, Logger: log, Lease: st.lease, Release: st.release,
		TracerProvider: tel.TracerProvider, MeterProvider: tel.MeterProvider,
		OnPublish: func(string) { idx.Notify() }})
	srv := server.New(server.Options{Current: current, Store: st, Auth: authn, Markings: markings, Logger: log,
		OnIngest:     func(string) { fan.Notify(); idx.Notify() },
		OnIngestSpan: fan.Link, Ready: fan.Running,
		TracerProvider: tel.TracerProvider, MeterProvider: tel.MeterProvider, Propagator: tel.Propagator,
		Ledger: st, Checkpoints: checkpoints,
		Search: search.NewSearcher(sst)})
	// A request's headers must arrive within ReadHeaderTimeout.
	// ReadTimeout bounds headers and body together for what the handlers
	// do not read: the rest of a body net/http reads after the answer. A
	// POST body is bounded by server.min_body_rate instead (the server
	// moves the read deadline as it arrives), and a request without a body
	// has no read deadline once its handler runs, so that a long answer is
	// bounded by WriteTimeout alone.
	hs := &http.Server{
		Handler:           srv,
		TLSConfig:         tlsCfg,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       time.Minute,
		WriteTimeout:      5 * time.Minute,
		IdleTimeout:       time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	ops, err := startOps(cfg.Ops.Listen, tel.Metrics, srv, log, stdout)
	if err != nil {
		return err
	}
	defer ops.Close()
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	scheme := "http"
	if tlsCfg != nil {
		scheme = "https"
		ln = tls.NewListener(ln, tlsCfg)
	}
	url := fmt.Sprintf("%s://%s/taxii2/", scheme, ln.Addr())

	// Serve is a group of parts, stopped in this order when SIGINT/SIGTERM
	// arrives or any of them fails: configuration reloads (SIGHUP) stop;
	// the HTTP server finishes the requests
	// under way; fan-out publishes what they stored; the indexer and the
	// retention sweeper stop; the checkpointer signs the final head. Then the index, the telemetry and
	// the store close.
	g := &group{log: log}
	rl := &reloader{load: loadConfig, path: *cfgPath, current: current, authn: authn, grants: grants, signer: signer, log: log,
		hup: hup, level: level, tls: &tlsCur}
	g.add("reload", rl.Run)
	g.add("http", func(ctx context.Context) error {
		// Serving is announced once fan-out runs, so /readyz says ready
		// from the first request.
		select {
		case <-fan.Started():
		case <-ctx.Done():
			return nil
		}
		log.Info("ctigate listening", "discovery", url, "data", cfg.DataDir)
		fmt.Fprintf(stdout, "ctigate: serving TAXII 2.1 at %s\n", url)
		errc := make(chan error, 1)
		go func() { errc <- hs.Serve(ln) }()
		select {
		case err := <-errc:
			return err
		case <-ctx.Done():
		}
		log.Info("shutting down: finishing requests under way")
		sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := hs.Shutdown(sctx); err != nil {
			log.Error("shutdown", "err", err)
		}
		if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	})
	g.add("fan-out", func(ctx context.Context) error {
		_ = fan.Run(ctx)
		// Drain: one last pass publishes what the finished requests
		// stored, so a clean stop leaves no route behind.
		log.Info("shutting down: publishing what was received")
		dctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		n, err := fan.RunOnce(dctx)
		if err != nil {
			log.Warn("fan-out did not finish draining; the rest is published after the next start", "err", err)
		} else if n > 0 {
			log.Info("fan-out drained", "versions", n)
		}
		// Another replica takes the routes over at once.
		fan.ReleaseLeases(dctx)
		return nil
	})
	g.add("indexer", idx.Run)
	// Retention deletes expired object versions (the ledger keeps their
	// record).
	sweeper := &retention.Sweeper{Store: st, RetentionOf: retentionOf, Logger: log}
	g.add("retention", func(ctx context.Context) error { sweeper.Run(ctx, time.Minute); return nil })
	// Statuses past status_retention read as unknown at once; the store
	// frees them here (bbolt) or by itself (Redis keys expire).
	if st.statuses != nil {
		statuses := &retention.StatusSweeper{Store: st.statuses, Logger: log}
		g.add("status-expiry", func(ctx context.Context) error { statuses.Run(ctx, time.Minute); return nil })
	}
	g.add("checkpoints", func(ctx context.Context) error { checkpoints.Run(ctx); return nil }) // signs the final head
	if reclaim {
		// The collector waits for the limit (gcPercent): garbage is
		// returned while the gateway idles (memory.go).
		g.add("memory", func(ctx context.Context) error { reclaimIdle(ctx, reclaimEvery, onReclaim); return nil })
	}
	runErr := g.Run(ctx)

	if err := closeIndex(); err != nil {
		log.Warn("closing the search index", "err", err)
	}
	if err := ops.Close(); err != nil {
		log.Warn("closing the operations listener", "err", err)
	}
	stopTelemetry() // the last metrics are collected while the store is open
	if err := st.Close(); err != nil {
		return errors.Join(runErr, fmt.Errorf("closing store: %w", err))
	}
	if runErr != nil {
		return fmt.Errorf("serve: %w", runErr)
	}
	log.Info("stopped")
	return nil
}

// newLogger makes the gateway's logger, at c.Level, which is set into
// level (a reload may change it there).
func newLogger(c config.Log, level *slog.LevelVar, w io.Writer) *slog.Logger {
	level.Set(logLevel(c.Level))
	opts := &slog.HandlerOptions{Level: level}
	// Records logged with a request's context carry its trace_id and
	// span_id.
	if c.Format == "json" {
		return slog.New(telemetry.LogHandler(slog.NewJSONHandler(w, opts)))
	}
	return slog.New(telemetry.LogHandler(slog.NewTextHandler(w, opts)))
}

// logLevel reads a validated log.level.
func logLevel(s string) slog.Level {
	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(s))
	return lvl
}

// demoUsers returns the users whose password is their name + "-demo".
func demoUsers(users []config.User) []string {
	var out []string
	for _, u := range users {
		if u.PasswordHash != "" && auth.VerifyPassword(u.PasswordHash, u.Name+"-demo") == nil {
			out = append(out, u.Name)
		}
	}
	return out
}

// tlsConfig builds the HTTPS configuration: TLS 1.2 minimum, optional
// client-certificate verification. nil means plain HTTP (loopback only,
// which config validation enforces).
func tlsConfig(c config.TLS) (*tls.Config, error) {
	if !c.Enabled() {
		return nil, nil
	}
	cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("config: tls.cert_file/tls.key_file: %w", err)
	}
	t := &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}
	if c.ClientCAFile != "" {
		pem, err := os.ReadFile(c.ClientCAFile)
		if err != nil {
			return nil, fmt.Errorf("config: tls.client_ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("config: tls.client_ca_file: no PEM certificate in %s", c.ClientCAFile)
		}
		t.ClientCAs = pool
		switch c.ClientAuth {
		case "verify_if_given":
			t.ClientAuth = tls.VerifyClientCertIfGiven
		case "none":
			t.ClientAuth = tls.NoClientCert
		default:
			t.ClientAuth = tls.RequireAndVerifyClientCert
		}
	}
	return t, nil
}

// liveTLS is the TLS configuration in force. The listener's configuration
// hands each handshake the one in force, so that a reload that reads the
// certificate, key and client CA files again applies to the next
// connection.
type liveTLS struct {
	p atomic.Pointer[tls.Config]
}

// start reads c and returns the listener's configuration, nil for plain
// HTTP.
func (l *liveTLS) start(c config.TLS) (*tls.Config, error) {
	t, err := tlsConfig(c)
	if t == nil || err != nil {
		return nil, err
	}
	l.p.Store(t)
	return &tls.Config{MinVersion: tls.VersionTLS12, GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
		return l.p.Load(), nil
	}}, nil
}

// checkpointSigner loads custody.signing_key_file, refusing one inside
// data_dir or open to the file's group or others, and one
// custody.trusted_keys does not list. Without a key file it makes an
// ephemeral key, which only a loopback listener may use, and only with no
// trusted keys: its checkpoints prove nothing once the process is gone,
// since nobody can pin its key.
func checkpointSigner(cfg *config.Config, host string, stderr io.Writer, log *slog.Logger) (*custody.Signer, error) {
	if cfg.Custody.SigningKeyFile != "" {
		if err := checkSigningKeyFile(cfg.Custody.SigningKeyFile, cfg.DataDir); err != nil {
			return nil, err
		}
		key, err := loadSigningKey(cfg.Custody.SigningKeyFile)
		if err != nil {
			return nil, err
		}
		s := custody.NewSigner(key)
		if err := checkTrustedSigner(cfg, s.PublicKey()); err != nil {
			return nil, err
		}
		return s, nil
	}
	if !config.IsLoopback(host) {
		return nil, fmt.Errorf("config: custody.signing_key_file: required on the non-loopback address %s (make one with `ctigate audit keygen`)", cfg.Listen)
	}
	if len(cfg.Custody.TrustedKeys) > 0 {
		return nil, fmt.Errorf("config: custody.signing_key_file: required with custody.trusted_keys (an ephemeral key cannot be among them)")
	}
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	s := custody.NewSigner(key)
	fmt.Fprintf(stderr, "\n*** WARNING: NO custody.signing_key_file: ledger checkpoints are signed with an EPHEMERAL key (%s). For local trials only. ***\n\n", s.PublicKey())
	log.Warn("custody checkpoints signed with an ephemeral key; set custody.signing_key_file", "public_key", s.PublicKey())
	return s, nil
}
