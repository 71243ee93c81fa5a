package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"time"

	"github.com/ctigate/ctigate/auth"
	"github.com/ctigate/ctigate/config"
	"github.com/ctigate/ctigate/fanout"
	"github.com/ctigate/ctigate/policy"
	"github.com/ctigate/ctigate/search"
	"github.com/ctigate/ctigate/server"
	"github.com/ctigate/ctigate/store/bolt"
)

// defaultMemoryLimit is the Go heap's soft limit unless GOMEMLIMIT is set.
const defaultMemoryLimit = 200 << 20

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

	// Flags are the last override, after the file and the environment.
	cfg, err := config.Load(*cfgPath, func(k string) string {
		switch {
		case k == "CTIGATE_LISTEN" && *listen != "":
			return *listen
		case k == "CTIGATE_DATA_DIR" && *dataDir != "":
			return *dataDir
		}
		return getenv(k)
	})
	if err != nil {
		return err
	}
	log := newLogger(cfg.Log, stderr)

	// A soft heap limit keeps the garbage of large page reads from
	// growing the process; GOMEMLIMIT in the environment overrides it.
	if getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(defaultMemoryLimit)
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

	users := make([]auth.User, len(cfg.Users))
	for i, u := range cfg.Users {
		users[i] = auth.User{Name: u.Name, Organisation: u.Organisation, Roles: u.Roles, PasswordHash: u.PasswordHash, TokenDigests: u.TokenSHA256}
	}
	authn, err := auth.New(users, auth.Options{})
	if err != nil {
		return fmt.Errorf("config: users: %w", err)
	}

	tlsCfg, err := tlsConfig(cfg.TLS)
	if err != nil {
		return err
	}

	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("data_dir: %w", err)
	}
	st, err := bolt.Open(filepath.Join(cfg.DataDir, "ctigate.db"), bolt.Options{Logger: log})
	if err != nil {
		return err
	}
	defer st.Close()

	markings, err := server.LoadMarkings(ctx, st, cfg)
	if err != nil {
		return fmt.Errorf("loading marking definitions: %w", err)
	}
	routes, err := policy.CompileRoutes(cfg.Routes)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	// Fan-out publishes what producers post into the routes' collections;
	// it stops (below) before the store closes.
	// The search indexer keeps the observable index of every collection;
	// ingest and fan-out wake it.
	var colls []string
	for _, r := range cfg.APIRoots {
		for _, c := range r.Collections {
			colls = append(colls, c.ID)
		}
	}
	ix, err := bolt.OpenIndex(filepath.Join(cfg.DataDir, "search.db"), bolt.IndexOptions{})
	if err != nil {
		return err
	}
	defer ix.Close()
	sst := search.Join(st, ix)
	idx := search.NewIndexer(search.IndexerOptions{Store: sst, Collections: colls, Markings: markings, Logger: log})
	fan := fanout.New(fanout.Options{Store: st, Routes: routes, Markings: markings, Logger: log,
		OnPublish: func(string) { idx.Notify() }})
	fctx, stopFanout := context.WithCancel(context.Background())
	fanDone := make(chan struct{})
	go func() {
		defer close(fanDone)
		_ = fan.Run(fctx)
	}()
	var fanStopped bool
	stopFan := func() {
		if !fanStopped {
			fanStopped = true
			stopFanout()
			<-fanDone
		}
	}
	defer stopFan() // runs before the deferred st.Close
	ictx, stopIndexer := context.WithCancel(context.Background())
	idxDone := make(chan struct{})
	go func() {
		defer close(idxDone)
		_ = idx.Run(ictx)
	}()
	var idxStopped bool
	stopIdx := func() {
		if !idxStopped {
			idxStopped = true
			stopIndexer()
			<-idxDone
		}
	}
	defer stopIdx() // runs before the deferred st.Close
	srv := server.New(server.Options{Config: cfg, Store: st, Auth: authn, Markings: markings, Logger: log,
		OnIngest: func(string) { fan.Notify(); idx.Notify() }, Search: search.NewSearcher(sst)})
	hs := &http.Server{
		Handler:           srv,
		TLSConfig:         tlsCfg,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       5 * time.Minute,
		WriteTimeout:      5 * time.Minute,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
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
	log.Info("ctigate listening", "discovery", url, "data", cfg.DataDir)
	fmt.Fprintf(stdout, "ctigate: serving TAXII 2.1 at %s\n", url)

	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down: finishing requests under way")
	sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		log.Error("shutdown", "err", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	log.Info("shutting down: stopping fan-out and the search indexer")
	stopFan()
	stopIdx()
	if err := ix.Close(); err != nil {
		return fmt.Errorf("closing search index: %w", err)
	}
	if err := st.Close(); err != nil {
		return fmt.Errorf("closing store: %w", err)
	}
	log.Info("stopped")
	return nil
}

func newLogger(c config.Log, w io.Writer) *slog.Logger {
	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(c.Level))
	opts := &slog.HandlerOptions{Level: lvl}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
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
