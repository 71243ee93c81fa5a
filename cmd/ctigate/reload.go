package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"reflect"
	"strings"
	"sync/atomic"
	"syscall"

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
// listens, stores and signs. (Collections, routes, users, paging and
// discovery change at once.)
func restartKeys(old, cfg *config.Config) []string {
	var keys []string
	for _, k := range []struct {
		name string
		a, b any
	}{
		{"listen", old.Listen, cfg.Listen}, {"data_dir", old.DataDir, cfg.DataDir}, {"store", old.Store, cfg.Store},
		{"redis", old.Redis, cfg.Redis}, {"tls", old.TLS, cfg.TLS}, {"ops", old.Ops, cfg.Ops},
		{"log", old.Log, cfg.Log}, {"custody", old.Custody.SigningKeyFile, cfg.Custody.SigningKeyFile},
	} {
		if !reflect.DeepEqual(k.a, k.b) {
			keys = append(keys, k.name)
		}
	}
	return keys
}

// reloader re-reads the configuration on SIGHUP and puts it in force:
// the snapshot server and fan-out read, and the users. What it cannot
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
}

// Run reloads on every SIGHUP until ctx ends.
func (r *reloader) Run(ctx context.Context) error {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-hup:
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
	snap, err := r.current.Replace(cfg)
	if err != nil {
		return err
	}
	r.authn.p.Store(users)
	entry, err := configLoaded(r.path, snap.Routes, r.signer)
	if err == nil {
		_, err = r.grants.record(ctx, cfg, entry)
	}
	if err != nil {
		r.log.Error("custody: recording the reloaded configuration", "err", err)
	}
	r.log.Info("configuration reloaded", "version", snap.Version, "routes", len(snap.Routes), "users", len(cfg.Users))
	return nil
}
