// Package redis implements store.Store on Redis (standalone, Sentinel or Cluster) through go-redis's UniversalClient, so that gateway replicas share one state.
package redis

// Key layout. Every key starts with the configured prefix P. The keys of
// one collection X share the hash tag {c:X}, so every multi-key write of a
// collection (a MULTI/EXEC transaction, or the delete script) is in one
// Cluster slot:
//
//	P:{c:X}:z     sorted set: one member per stored version, its record
//	              (record.go: date_added, id, type, spec_version,
//	              version, hash, producer, raw bytes), scored by its
//	              date_added in microseconds (exact in a float64). A page
//	              is one ZRANGE BYSCORE, without the scores (the records
//	              hold them; those of earlier builds do not, and their
//	              chunk is read again with the scores); a version is
//	              found by its date_added.
//	P:{c:X}:n     hash: object id -> its versions, "da,version,spec;" each
//	              (version is the hex of a sortable 12-byte time key; spec
//	              is followed by ",t" when the type is not the id's
//	              prefix), used for "first copy wins", for match[version]
//	              first/last, and as the whole answer of reads by id
//	              without the objects' bytes
//	P:{c:X}:mv    set once some id of X has had two versions; until then
//	              reads need no version lists for match[version]
//	P:{c:X}:last  the last date_added assigned in X (never reused, not even
//	              after a delete)
//	P:{c:X}:ck    hash: checkpoint name -> time in microseconds
//
// date_added is assigned by the add's transaction (add.go), as
// max(caller's clock, last+1µs) with last read under WATCH, so it is
// strictly increasing per collection whatever the number of gateway
// processes writing and however their clocks differ. Objects, version
// lists, checkpoint and pending ledger entries (decisions among them) are
// written by one MULTI/EXEC: a crash never leaves a version list entry
// without its object or the reverse. Everything is checked before EXEC,
// so it never stops half-way.
//
// Decisions are recorded only in the custody ledger (ledger.go): their
// entries are pending ledger lines of the transaction that publishes
// what they decided and moves the route's checkpoint, so a decision is
// recorded iff its effect happened.
//
// Checkpoints live in the slot of the collection written with them (their
// move is part of its transaction). P:{k}:where maps a checkpoint name to
// that collection, so Checkpoint(name) finds it; it is written before the
// transaction, and a name whose transaction did not run reads as unset.
//
// A write names the checkpoint it started from: when the stored one is no
// longer that (another replica wrote from there first), it changes nothing
// and is a Conflict, so that work done twice is recorded once.
//
// Statuses are single keys P:st:ID (JSON, deflated when over 1 kB:
// status.go).

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/ctigate/ctigate"
	"github.com/ctigate/ctigate/custody"
	"github.com/ctigate/ctigate/store"
)

var _ store.Store = (*Store)(nil)

// DefaultPrefix is the key prefix used when Options.Prefix is empty.
const DefaultPrefix = "ctigate"

// Options configure a Store.
type Options struct {
	// Prefix starts every key; "" means DefaultPrefix. It must not contain
	// '{' or '}' (they would change the hash tags).
	Prefix string
	// Clock is the source of date_added and the time statuses expire by
	// (store.Status.Expires); nil means time.Now.
	Clock func() time.Time
	// Logger receives background errors; nil discards them.
	Logger *slog.Logger
	// CloseClient makes Close close the client too.
	CloseClient bool
	// TracerProvider, when set, traces every Redis command (a client span
	// under the caller's span, without the command's arguments).
	TracerProvider trace.TracerProvider
	// MeterProvider, when set, receives go-redis's command-duration and
	// connection-pool metrics (until Close).
	MeterProvider metric.MeterProvider
}

// Store is a store.Store over a Redis deployment.
type Store struct {
	c      goredis.UniversalClient
	prefix string
	clock  func() time.Time
	log    *slog.Logger
	own    bool

	closeOnce sync.Once
	closeErr  error

	led ledgerState // the custody ledger's sequencer (ledger.go)

	addTurns sync.Map // collection -> *addQueue: this process's adds take turns (add.go)
	// earlierBelow: collection -> the date_added below which earlier
	// builds' records may lie, once a read met one (readChunk).
	earlierBelow sync.Map
	addRestarts  atomic.Int64 // turns started over: another process wrote first
	addTurnsRun  atomic.Int64 // turns run (transactions written or failed)

	saltMu sync.Mutex
	salter *custody.Salter // of the delivery key, once read (ledgerindex.go)

	telDone chan struct{} // closed by Close: unregisters the client's metrics
}

// New returns a Store using c. It does not contact Redis. With a
// TracerProvider or MeterProvider it instruments c (once per client: give
// each Store its own).
func New(c goredis.UniversalClient, opts Options) (*Store, error) {
	if c == nil {
		return nil, errors.New("redis: nil client")
	}
	p := opts.Prefix
	if p == "" {
		p = DefaultPrefix
	}
	if strings.ContainsAny(p, "{}") {
		return nil, fmt.Errorf("redis: prefix %q contains a brace", p)
	}
	s := &Store{c: c, prefix: p, clock: opts.Clock, log: opts.Logger, own: opts.CloseClient}
	if s.clock == nil {
		s.clock = time.Now
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.telDone = make(chan struct{})
	if err := instrument(c, opts.TracerProvider, opts.MeterProvider, s.telDone); err != nil {
		return nil, err
	}
	return s, nil
}

// Config says how to reach Redis.
type Config struct {
	// URL is a redis:// or rediss:// URL (user, password, db and options
	// as go-redis's ParseURL reads them). Either URL or Addrs is set.
	URL string
	// Addrs are host:port pairs: several mean Cluster (or Sentinel with
	// MasterName).
	Addrs []string
	// Cluster forces Cluster mode with a single address.
	Cluster bool
	// MasterName selects Sentinel: Addrs are the sentinels.
	MasterName string
	// Username and Password authenticate (ACL); they override the URL's.
	Username, Password string
	// DB selects the database (standalone and Sentinel only).
	DB int
	// TLS, when not nil, is used for every connection.
	TLS *tls.Config
}

// NewClient returns a UniversalClient for cfg: standalone, Sentinel or
// Cluster.
func NewClient(cfg Config) (goredis.UniversalClient, error) {
	var o goredis.UniversalOptions
	if cfg.URL != "" {
		u, err := goredis.ParseURL(cfg.URL)
		if err != nil {
			return nil, fmt.Errorf("redis url: %w", err)
		}
		o.Addrs = []string{u.Addr}
		o.Username, o.Password, o.DB, o.TLSConfig = u.Username, u.Password, u.DB, u.TLSConfig
	}
	if len(cfg.Addrs) > 0 {
		o.Addrs = cfg.Addrs
	}
	if len(o.Addrs) == 0 {
		return nil, errors.New("redis: neither url nor addrs set")
	}
	if cfg.Username != "" {
		o.Username = cfg.Username
	}
	if cfg.Password != "" {
		o.Password = cfg.Password
	}
	if cfg.DB != 0 {
		o.DB = cfg.DB
	}
	if cfg.TLS != nil {
		o.TLSConfig = cfg.TLS
		if o.TLSConfig.ServerName == "" {
			// Verify the first address's host name (as ParseURL does).
			o.TLSConfig = o.TLSConfig.Clone()
			o.TLSConfig.ServerName, _, _ = net.SplitHostPort(o.Addrs[0])
		}
	}
	o.MasterName = cfg.MasterName
	o.IsClusterMode = cfg.Cluster
	o.ReadTimeout = 30 * time.Second
	o.WriteTimeout = 30 * time.Second
	o.MaxRetries = 1
	// Pages of a thousand objects are replies of about half a MiB: read
	// them in few system calls.
	o.ReadBufferSize = 512 << 10
	return goredis.NewUniversalClient(&o), nil
}

// Client returns the client the store uses.
func (s *Store) Client() goredis.UniversalClient { return s.c }

// Prefix returns the key prefix.
func (s *Store) Prefix() string { return s.prefix }

// collKey returns the key of collection coll with suffix.
func (s *Store) collKey(coll, suffix string) string {
	return s.prefix + ":{c:" + coll + "}:" + suffix
}

// Ping reports whether Redis answers.
func (s *Store) Ping(ctx context.Context) error {
	const op = "redis.Ping"
	if err := ctx.Err(); err != nil {
		return ctxErr(op, err)
	}
	if err := s.c.Ping(ctx).Err(); err != nil {
		return s.fail(op, err)
	}
	return nil
}

// Close closes the client when the store owns it. It may be called more
// than once.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		close(s.telDone)
		if s.own {
			s.closeErr = s.c.Close()
		}
	})
	return s.closeErr
}

// errOOM is in the error reply of a write Redis refuses at its maxmemory
// with the noeviction policy, on its own ("OOM command not allowed …")
// or in the reply of a script whose first write it refused. Redis refuses
// only a script's first write, so a script refused for memory has
// written nothing.
const errOOM = "OOM command not allowed"

// isOOM reports whether err is Redis refusing a write for want of memory:
// its storage is full.
func isOOM(err error) bool {
	var re goredis.Error
	return errors.As(err, &re) && strings.Contains(err.Error(), errOOM)
}

func ctxErr(op string, err error) error {
	return ctigate.E(op, ctigate.Unavailable, err, "request cancelled")
}

// errConflict is the prefix of the error reply of a checkpoint that would
// not move forward.
const errConflict = "CTIGATE_CONFLICT"

// fail classifies an error from Redis: a cancelled request, a checkpoint
// conflict, Redis out of memory (Full), Redis unreachable or not serving
// (Unavailable), or Internal.
// execErr returns the error of a MULTI/EXEC whose commands were cmds:
// when Redis refused a command as it was queued (at maxmemory: OOM) and
// so discarded the transaction (EXECABORT), that command's error, which
// says why.
func execErr(cmds []goredis.Cmder, err error) error {
	if err == nil || !strings.HasPrefix(err.Error(), "EXECABORT") {
		return err
	}
	for _, c := range cmds {
		if e := c.Err(); e != nil && !strings.HasPrefix(e.Error(), "EXECABORT") {
			return e
		}
	}
	return err
}

func (s *Store) fail(op string, err error) error {
	switch {
	case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded):
		return ctxErr(op, err)
	case strings.HasPrefix(err.Error(), errConflict):
		return ctigate.E(op, ctigate.Conflict, err, "checkpoint already moved by another writer")
	case isOOM(err):
		return ctigate.E(op, ctigate.Full, err)
	}
	var re goredis.Error
	if errors.As(err, &re) {
		msg := err.Error()
		for _, p := range []string{"LOADING", "CLUSTERDOWN", "TRYAGAIN", "READONLY", "MASTERDOWN", "MOVED", "ASK", "BUSY"} {
			if strings.HasPrefix(msg, p) {
				return ctigate.E(op, ctigate.Unavailable, err, "storage unavailable")
			}
		}
		return ctigate.E(op, ctigate.Internal, err)
	}
	var ne net.Error
	if errors.As(err, &ne) || errors.Is(err, goredis.ErrClosed) || errors.Is(err, goredis.ErrPoolTimeout) ||
		strings.Contains(err.Error(), "EOF") || strings.Contains(err.Error(), "connection") {
		return ctigate.E(op, ctigate.Unavailable, err, "storage unavailable")
	}
	return ctigate.E(op, ctigate.Unavailable, err, "storage unavailable")
}
