package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"reflect"
	"strings"
	"sync/atomic"
	"time"

	"github.com/ctigate/ctigate/auth"
	"github.com/ctigate/ctigate/config"
	"github.com/ctigate/ctigate/custody"
	"github.com/ctigate/ctigate/gateway"
)

// authn is the authenticator in force; a reload replaces it (users,
// roles, organisations, credentials) for the next request.
type authn struct {
	p atomic.Pointer[auth.Authenticator]
}

func newAuthn(cfg *config.Config) (*authn, error) {
	n, err := buildAuth(cfg)
	if err != nil {
		return nil, err
	}
	a := &authn{}
	a.p.Store(n)
	return a, nil
}

func buildAuth(cfg *config.Config) (*auth.Authenticator, error) {
	users := make([]auth.User, len(cfg.Users))
	for i, u := range cfg.Users {
		users[i] = auth.User{Name: u.Name, Organisation: u.Organisation, Roles: u.Roles, PasswordHash: u.PasswordHash, TokenDigests: u.TokenSHA256}
	}
	n, err := auth.New(users, auth.Options{})
	if err != nil {
		return nil, fmt.Errorf("config: users: %w", err)
	}
	return n, nil
}

func (a *authn) Basic(ctx context.Context, name, password string) (*auth.User, error) {
	return a.p.Load().Basic(ctx, name, password)
}

func (a *authn) Bearer(token string) (*auth.User, error) { return a.p.Load().Bearer(token) }

// restartKeys are what a reload cannot change: where and how the gateway
// listens, stores and signs, whether it speaks HTTPS and its log format.
// (Collections, routes, users, paging, discovery, request limits and the
// log level change at once; the TLS certificate, key and client CA files
// are read again.)
func restartKeys(old, cfg *config.Config) []string {
	var keys []string
	for _, k := range []struct {
		name string
		a, b any
	}{
		{"listen", old.Listen, cfg.Listen}, {"data_dir", old.DataDir, cfg.DataDir}, {"store", old.Store, cfg.Store},
		{"redis", old.Redis, cfg.Redis}, {"tls (turning HTTPS on or off)", old.TLS.Enabled(), cfg.TLS.Enabled()}, {"ops", old.Ops, cfg.Ops},
		{"log.format", old.Log.Format, cfg.Log.Format}, {"custody", old.Custody.SigningKeyFile, cfg.Custody.SigningKeyFile},
	} {
		if !reflect.DeepEqual(k.a, k.b) {
			keys = append(keys, k.name)
		}
	}
	return keys
}

// reloader re-reads the configuration on SIGHUP and puts it in force:
// the snapshot server and fan-out read, the users, the log level and the
// TLS configuration (its files read again). What it cannot
// change without a restart is refused, naming the keys; a configuration
// that does not validate is refused and the one in force stays. Each
// reload is recorded in the custody ledger (config-loaded, after the
// changes in access it makes).
type reloader struct {
	load    func() (*config.Config, error) // reads the file as serve did
	path    string
	current *gateway.Current
	authn   *authn
	grants  *grantsLedger // records the configuration and its access changes
	signer  *custody.Signer
	log     *slog.Logger
	hup     <-chan os.Signal // SIGHUP, caught by serve for its whole run
	level   *slog.LevelVar   // the log level in force
	tls     *liveTLS         // the TLS configuration in force (unused with plain HTTP)
}

// Run reloads on every SIGHUP until ctx ends.
func (r *reloader) Run(ctx context.Context) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-r.hup:
			if err := r.reload(ctx); err != nil {
				r.log.Error("configuration not reloaded; the one in force stays", "err", err)
			}
		}
	}
}

func (r *reloader) reload(ctx context.Context) error {
	cfg, err := r.load()
	if err != nil {
		return err
	}
	old := r.current.Load()
	if keys := restartKeys(old.Config, cfg); len(keys) > 0 {
		return fmt.Errorf("config: %s changed: restart the gateway for that", strings.Join(keys, ", "))
	}
	if demo := demoUsers(cfg.Users); len(demo) > 0 {
		host := cfg.Listen
		if i := strings.LastIndex(host, ":"); i >= 0 {
			host = host[:i]
		}
		if !config.IsLoopback(host) {
			return fmt.Errorf("config: users: demo credentials (%s) on the non-loopback address %s", strings.Join(demo, ", "), cfg.Listen)
		}
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	if err := checkTrustedSigner(cfg, r.signer.PublicKey()); err != nil {
		return err
	}
	users, err := buildAuth(cfg) // checked before anything changes
	if err != nil {
		return err
	}
	// The certificate, key and client CA files are read again, whether
	// or not their names changed (a renewed certificate keeps its file).
	newTLS, err := tlsConfig(cfg.TLS)
	if err != nil {
		return err
	}
	snap, err := r.current.Replace(cfg)
	if err != nil {
		return err
	}
	r.authn.p.Store(users)
	r.level.Set(logLevel(cfg.Log.Level))
	attrs := []any{"version", snap.Version, "routes", len(snap.Routes), "users", len(cfg.Users), "log_level", cfg.Log.Level}
	if newTLS != nil {
		r.tls.p.Store(newTLS)
		if leaf := newTLS.Certificates[0].Leaf; leaf != nil {
			fp := sha256.Sum256(leaf.Raw)
			attrs = append(attrs, "tls_certificate", hex.EncodeToString(fp[:8]), "tls_not_after", leaf.NotAfter.UTC().Format(time.RFC3339))
		}
	}
	entry, err := configLoaded(r.path, snap.Routes, r.signer)
	if err == nil {
		_, err = r.grants.record(ctx, cfg, entry)
	}
	if err != nil {
		r.log.Error("custody: recording the reloaded configuration", "err", err)
	}
	r.log.Info("configuration reloaded", attrs...)
	return nil
}
