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

	"github.com/ctigate/ctigate"
	"github.com/ctigate/ctigate/config"
	"github.com/ctigate/ctigate/custody"
	"github.com/ctigate/ctigate/retention"
	"github.com/ctigate/ctigate/store"
	"github.com/ctigate/ctigate/store/bolt"
	"github.com/ctigate/ctigate/store/redis"
	"github.com/ctigate/ctigate/telemetry"
)

// backend is the storage a gateway runs on, whatever the technology:
// the store with its custody ledger, the lease replicas share routes by
// (nil on one machine) and the search index beside it. serve and the
// commands use it through these fields, never by asking which
// technology it is.
type backend struct {
	store.Store
	ledgerLines
	lease     func(ctx context.Context, name string, ttl time.Duration) (bool, error)
	release   func(ctx context.Context, name string) error // gives a lease up (a clean stop)
	openIndex func() (store.Index, func() error, error)
	// statuses removes expired status resources, which serve sweeps
	// every minute; nil when the backend expires them itself (Redis).
	statuses retention.StatusStore
}

// RecentIndexed passes the ledger's newest entries (store.RecentLedger)
// through to the index from a ledger that keeps them.
func (b *backend) RecentIndexed(from, to uint64, out []store.IndexedEntry) ([]store.IndexedEntry, bool) {
	if r, ok := b.ledgerLines.(store.RecentLedger); ok {
		return r.RecentIndexed(from, to, out)
	}
	return out, false
}

// AddObjectsStatus passes ingest's one-write path (store.StatusAdder)
// through to a store that has it; the embedded interface would hide it.
func (b *backend) AddObjectsStatus(ctx context.Context, collection string, objs []store.Object, status func([]store.AddResult) store.Status) ([]store.AddResult, error) {
	if sa, ok := b.Store.(store.StatusAdder); ok {
		return sa.AddObjectsStatus(ctx, collection, objs, status)
	}
	return nil, ctigate.E("backend.AddObjectsStatus", ctigate.Unsupported, "the store writes the status resource apart")
}

// ledgerLines is the custody ledger with its index, its deliveries, its
// memos and its raw lines (the export).
type ledgerLines interface {
	store.IndexedLedger
	store.Deliveries
	store.Memos
	LedgerLines(ctx context.Context, after, through uint64, fn func(seq uint64, line []byte) error) error
}

// newCheckpointer returns the checkpointer of l's chain: it indexes the
// ledger and signs its Merkle tree's root with the head.
func newCheckpointer(l store.IndexedLedger, signer *custody.Signer) *custody.Checkpointer {
	return &custody.Checkpointer{Chain: l, Signer: signer, Root: func(ctx context.Context, size uint64) (string, error) {
		return store.TreeRoot(ctx, l, size)
	}}
}

// openStore opens the backend cfg.Store names: the embedded bbolt file in
// data_dir, or Redis.
func openStore(ctx context.Context, cfg *config.Config, log *slog.Logger, tel *telemetry.Providers) (*backend, error) {
	if cfg.Store != "redis" {
		if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
			return nil, fmt.Errorf("data_dir: %w", err)
		}
		path := filepath.Join(cfg.DataDir, "ctigate.db")
		log.Info("store: opening the embedded store (its id index is rebuilt from every stored version)", "file", path)
		start := time.Now()
		b, err := bolt.Open(path, bolt.Options{Logger: log})
		if err != nil {
			return nil, err
		}
		log.Info("store: bolt", "file", path, "opened_in", time.Since(start).Round(time.Millisecond))
		return &backend{Store: b, ledgerLines: b, statuses: b, openIndex: func() (store.Index, func() error, error) {
			ix, err := bolt.OpenIndex(filepath.Join(cfg.DataDir, "search.db"), bolt.IndexOptions{})
			if err != nil {
				return nil, nil, fmt.Errorf("search index: %w", err)
			}
			return ix, sync.OnceValue(ix.Close), nil
		}}, nil
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
	ro := redis.Options{Prefix: r.Prefix, Logger: log, CloseClient: true}
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
	var id [8]byte
	rand.Read(id[:])
	holder := hex.EncodeToString(id[:])
	return &backend{Store: st, ledgerLines: st,
		// Replicas share fan-out by a lease per route in Redis.
		lease: func(ctx context.Context, name string, ttl time.Duration) (bool, error) {
			return st.Lease(ctx, name, holder, ttl)
		},
		release: func(ctx context.Context, name string) error {
			return st.ReleaseLease(ctx, name, holder)
		},
		// The index lives under the store's prefix, with the store's
		// client, which the store closes.
		openIndex: func() (store.Index, func() error, error) {
			ix, err := redis.NewIndex(st.Client(), st.Prefix())
			if err != nil {
				return nil, nil, fmt.Errorf("search index: %w", err)
			}
			return ix, func() error { return nil }, nil
		},
	}, nil
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
