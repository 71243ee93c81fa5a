package main

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/ctigate/ctigate/config"
	"github.com/ctigate/ctigate/store"
	"github.com/ctigate/ctigate/store/bolt"
	"github.com/ctigate/ctigate/store/redis"
	"github.com/ctigate/ctigate/telemetry"
)

// openStore opens the backend cfg.Store names: the embedded bbolt file in
// data_dir, or Redis, whose client is traced (when tel exports spans) and
// measured with tel's providers (tel nil: neither).
func openStore(ctx context.Context, cfg *config.Config, log *slog.Logger, tel *telemetry.Providers) (store.Store, error) {
	if cfg.Store != "redis" {
		if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
			return nil, fmt.Errorf("data_dir: %w", err)
		}
		return bolt.Open(filepath.Join(cfg.DataDir, "ctigate.db"), bolt.Options{Logger: log})
	}
	r := cfg.Redis
	rc := redis.Config{URL: r.URL, Addrs: r.Addrs, Cluster: r.Cluster, MasterName: r.MasterName,
		Username: r.Username, Password: r.Password, DB: r.DB}
	if r.TLS.Enabled || r.TLS.CAFile != "" || r.TLS.CertFile != "" {
		t, err := redisTLS(r.TLS)
		if err != nil {
			return nil, err
		}
		rc.TLS = t
	}
	c, err := redis.NewClient(rc)
	if err != nil {
		return nil, fmt.Errorf("config: redis: %w", err)
	}
	ro := redis.Options{Prefix: r.Prefix, Logger: log, CloseClient: true,
		Events: true, EventMaxLen: r.Queue.MaxLen}
	if tel != nil {
		ro.MeterProvider = tel.MeterProvider
		if tel.Tracing {
			ro.TracerProvider = tel.TracerProvider
		}
	}
	st, err := redis.New(c, ro)
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("config: redis: %w", err)
	}
	// Redis may still be starting (containers): wait a little for it.
	deadline := time.Now().Add(15 * time.Second)
	for {
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		err = st.Ping(pctx)
		cancel()
		if err == nil {
			break
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			st.Close()
			return nil, fmt.Errorf("redis unreachable: %w", err)
		}
		log.Warn("waiting for redis", "err", err)
		time.Sleep(500 * time.Millisecond)
	}
	log.Info("store: redis", "prefix", r.Prefix)
	return newRedisBackend(st, cfg, log), nil
}

// redisBackend is the Redis store with its event-stream trimmer, which
// Close stops first.
type redisBackend struct {
	*redis.Store
	stop func()
}

// trimEvery is how often the event streams are trimmed.
const trimEvery = 10 * time.Second

func newRedisBackend(st *redis.Store, cfg *config.Config, log *slog.Logger) *redisBackend {
	var colls []string
	for _, root := range cfg.APIRoots {
		for _, c := range root.Collections {
			colls = append(colls, c.ID)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(trimEvery)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			for _, c := range colls {
				if _, err := st.TrimEvents(ctx, c); err != nil && ctx.Err() == nil {
					log.Warn("redis: trimming event stream", "collection", c, "err", err)
				}
			}
		}
	}()
	return &redisBackend{Store: st, stop: func() { cancel(); <-done }}
}

// Close stops the trimmer, then closes the store.
func (b *redisBackend) Close() error {
	b.stop()
	return b.Store.Close()
}

// redisTLS builds the TLS configuration of Redis connections.
func redisTLS(c config.RedisTLS) (*tls.Config, error) {
	t := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: c.ServerName}
	if c.CAFile != "" {
		pem, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, fmt.Errorf("config: redis.tls.ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("config: redis.tls.ca_file: no PEM certificate in %s", c.CAFile)
		}
		t.RootCAs = pool
	}
	if c.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("config: redis.tls.cert_file/key_file: %w", err)
		}
		t.Certificates = []tls.Certificate{cert}
	}
	return t, nil
}

// fanoutLease returns the lease fan-out workers of replicas share routes
// with (fanout.Options.Lease): nil for the embedded store, which one
// process owns.
func fanoutLease(st store.Store) func(ctx context.Context, name string, ttl time.Duration) (bool, error) {
	b, ok := st.(*redisBackend)
	if !ok {
		return nil
	}
	var id [8]byte
	rand.Read(id[:])
	holder := hex.EncodeToString(id[:])
	return func(ctx context.Context, name string, ttl time.Duration) (bool, error) {
		return b.Lease(ctx, name, holder, ttl)
	}
}

// openIndex opens the search index beside st: in its own bbolt file
// (search.db) for the embedded store, under the store's prefix for Redis
// (whose client the store owns: closing that index is a no-op).
func openIndex(cfg *config.Config, st store.Store) (store.Index, func() error, error) {
	if rs, ok := st.(*redisBackend); ok {
		ix, err := redis.NewIndex(rs.Client(), rs.Prefix())
		if err != nil {
			return nil, nil, fmt.Errorf("search index: %w", err)
		}
		return ix, func() error { return nil }, nil
	}
	ix, err := bolt.OpenIndex(filepath.Join(cfg.DataDir, "search.db"), bolt.IndexOptions{})
	if err != nil {
		return nil, nil, fmt.Errorf("search index: %w", err)
	}
	return ix, sync.OnceValue(ix.Close), nil
}
