// Package bolt implements store.Store on a single bbolt file, the gateway's embedded backend.
package bolt

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/bbolt"
	bberrors "go.etcd.io/bbolt/errors"

	"github.com/ctigate/ctigate"
	"github.com/ctigate/ctigate/custody"
	"github.com/ctigate/ctigate/store"
)

var _ store.Store = (*Store)(nil)

// Top-level buckets and keys. Each collection is a nested bucket of
// bucketCollections named after the collection, holding keySeq and the
// sub-buckets described in encoding.go.
var (
	bucketMeta        = []byte("meta")
	bucketCollections = []byte("collections")
	bucketStatuses    = []byte("statuses")
	bucketCheckpoints = []byte("checkpoints") // name -> time (time.MarshalBinary), see Store.AddObjectsCheckpoint

	keyFormat = []byte("format")
	keySeq    = []byte("seq") // the last date_added assigned in the collection
	keyCount  = []byte("n")   // versions stored in the collection (uint64), to size the keydir

	bucketIndex = []byte("index")
	bucketRaw   = []byte("raw")
	bucketHash  = []byte("hash")
	bucketProd  = []byte("producer")
	bucketTomb  = []byte("tombstones") // removal time (dateKey) -> store.EncodeTombstone
)

// seqKey is the key of a ledger entry (and of an append in
// bucketLedgerByObject): seq, 8 bytes big-endian, so keys sort by seq.
func seqKey(seq uint64) []byte { return binary.BigEndian.AppendUint64(nil, seq) }

// fileFormat is the on-disk layout version stored under meta/format: 4,
// in which the id lookup is rebuilt in memory at Open (keydir.go),
// statuses are binary (status.go), the ledger is indexed as a Merkle tree
// and deliveries are recorded by reference (ledgerindex.go), a
// ledger-tree value holds up to treeChunk hashes, and new collections keep
// each version in one body value (body.go). Format 3 stored one tree hash
// to a value, which format 4 reads as it is (a chunk of one), and its
// collections keep their raw, hash and producer buckets: Open marks such a
// file format 4, so that a build that reads only format 3 refuses it
// instead of failing to find its tree hashes or a new collection's
// versions. (Formats 1 and 2 were never released.)
const fileFormat = 4

// upgradableFormat is the format Open upgrades to fileFormat in place.
const upgradableFormat = 3

// filePageSize is the page size of a store file this build creates; a file
// keeps the page size it was created with. bbolt writes each dirty page
// with a call of its own, and a commit of envelopes of 500 dirties hundreds
// of pages of 4 KiB (the system's page size, bbolt's default): with pages of
// 16 KiB, a quarter of the calls (see docs/performance.md).
const filePageSize = 16 << 10

// Defaults for Options.
const (
	DefaultTrimInterval   = time.Second
	DefaultTrimAfterBytes = 8 << 20
	DefaultTrimAbove      = 256 << 20
	DefaultOpenTimeout    = 5 * time.Second
)

// Options configure a Store. The zero value is ready for production use.
type Options struct {
	// Clock is the source of date_added and the time statuses expire by
	// (store.Status.Expires); nil means time.Now.
	Clock func() time.Time
	// Logger receives background errors (trimming); nil discards them.
	Logger *slog.Logger
	// NoSync skips fsync on commit. It is for tests and bulk loads only: a
	// crash may lose or corrupt the file.
	NoSync bool
	// ReadOnly opens the file for reading only, as an auditor verifying a
	// data directory needs: nothing is written to the file or beside it
	// (the keydir's file goes to the system's temporary directory), a
	// file of an earlier format is read as it is, and every write fails.
	// Several read-only opens may share the file; none while a writer
	// holds it. A file missing what this build's Open would add (written
	// by a much earlier build) is refused.
	ReadOnly bool
	// OpenTimeout bounds how long Open waits for another process to release
	// the file; zero means DefaultOpenTimeout.
	OpenTimeout time.Duration
	// TrimInterval is how often the process's resident file pages are
	// checked against TrimAbove, and the file mapping dropped from the
	// page tables when over it (see trim.go); zero means DefaultTrimInterval,
	// negative disables periodic checks.
	TrimInterval time.Duration
	// TrimAfterBytes triggers a check once reads have returned, or writes
	// committed, this many bytes since the last one; zero means
	// DefaultTrimAfterBytes, negative disables it.
	TrimAfterBytes int64
	// TrimAbove is the process's resident file-backed memory over which a
	// trim drops the mapping; below it, checks leave the mapping alone. Zero
	// means DefaultTrimAbove, negative trims at every check.
	TrimAbove int64

	// legacyLayout makes new collections keep their versions in raw, hash
	// and producer buckets, as earlier builds did (body.go): for tests of
	// files those builds wrote.
	legacyLayout bool
}

// Store is a store.Store kept in one bbolt file. It is safe for concurrent
// use.
type Store struct {
	db    *bbolt.DB
	clock func() time.Time
	log   *slog.Logger

	// mu is held shared by every operation and exclusively by Close, so
	// Close waits for operations under way.
	mu     sync.RWMutex
	closed bool

	w       committer
	commits atomic.Int64 // write transactions committed
	keys    *keys        // id -> versions of every collection, in memory
	feed    ledgerFeed   // the newest ledger entries, for the ledger's index

	// idLookupMax is the largest number of match[id] values for which a
	// query walks the versions of those ids instead of scanning the
	// collection in date_added order.
	idLookupMax int

	trimmer // drops the file mapping from the page tables (trim.go)

	legacyLayout bool // Options.legacyLayout

	// salter derives the delivery items' salts (ledgerindex.go) from the
	// file's delivery key, made at Open when the file has none.
	salter *custody.Salter
}

// Open opens or creates the store file at path.
func Open(path string, opts Options) (*Store, error) {
	const op = "bolt.Open"
	timeout := opts.OpenTimeout
	if timeout <= 0 {
		timeout = DefaultOpenTimeout
	}
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{
		Timeout:      timeout,
		NoSync:       opts.NoSync,
		ReadOnly:     opts.ReadOnly,
		FreelistType: bbolt.FreelistMapType,
		PageSize:     filePageSize,
	})
	if err != nil {
		if errors.Is(err, bberrors.ErrTimeout) {
			return nil, ctigate.E(op, ctigate.Unavailable, err, "store file is locked by another process")
		}
		return nil, ctigate.E(op, err)
	}
	init, keydirDir := initFile, filepath.Dir(path)
	if opts.ReadOnly {
		init, keydirDir = checkFile, os.TempDir()
	}
	deliveryKey, err := init(db)
	if err != nil {
		db.Close()
		return nil, ctigate.E(op, err)
	}
	keys := newKeys()
	keys.file = openPagedFile(keydirDir)
	s := &Store{
		db:           db,
		keys:         keys,
		clock:        opts.Clock,
		log:          opts.Logger,
		idLookupMax:  10000,
		salter:       custody.NewSalter(deliveryKey),
		legacyLayout: opts.legacyLayout,
	}
	if s.clock == nil {
		s.clock = time.Now
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	// The trimmer runs during the rebuild, which reads every version's
	// header (gigabytes of the file at ten million versions).
	s.startTrimmer(db, s.log, "store", opts.TrimAfterBytes, opts.TrimAbove, opts.TrimInterval)
	if err := s.db.View(func(tx *bbolt.Tx) error { return s.keys.rebuild(tx, s.noteRead) }); err != nil {
		s.stopTrimmer()
		s.keys.drop()
		db.Close()
		return nil, ctigate.E(op, fmt.Errorf("rebuilding the id index: %w", err))
	}
	return s, nil
}

// fileBuckets are the top-level buckets besides meta that initFile makes
// and checkFile requires.
var fileBuckets = append([][]byte{bucketCollections, bucketStatuses, bucketStatusExpiry, bucketCheckpoints, bucketLedger, bucketLedgerByObject}, indexBuckets...)

// initFile makes the file's buckets and delivery key when missing, checks
// its format and returns its delivery key. At Open nothing else uses the
// file yet, and the keydir is rebuilt after: this transaction needs no
// committer.
func initFile(db *bbolt.DB) ([32]byte, error) {
	var key [32]byte
	err := db.Update(func(tx *bbolt.Tx) error {
		meta, err := tx.CreateBucketIfNotExists(bucketMeta)
		if err != nil {
			return err
		}
		for _, name := range fileBuckets {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return err
			}
		}
		switch f := meta.Get(keyFormat); {
		case f == nil:
			if err := meta.Put(keyFormat, []byte{fileFormat}); err != nil {
				return err
			}
		case len(f) == 1 && f[0] == fileFormat:
		case len(f) == 1 && f[0] == upgradableFormat:
			if err := meta.Put(keyFormat, []byte{fileFormat}); err != nil {
				return err
			}
		default:
			return fmt.Errorf("unsupported file format %x (this build reads format %d)", f, fileFormat)
		}
		if v := meta.Get(keyDeliveryKey); len(v) == 32 {
			copy(key[:], v)
			return nil
		}
		if _, err := rand.Read(key[:]); err != nil {
			return err
		}
		return meta.Put(keyDeliveryKey, key[:])
	})
	return key, err
}

// checkFile is initFile for a file opened read-only: it checks that the
// file holds what initFile would make or has made, and returns its
// delivery key. A file without one has never been opened by a build that
// salts deliveries, so no delivery in it is salted: a random key stands
// in.
func checkFile(db *bbolt.DB) ([32]byte, error) {
	var key [32]byte
	err := db.View(func(tx *bbolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		if meta == nil {
			return errors.New("not a store file (no meta bucket)")
		}
		for _, name := range fileBuckets {
			if tx.Bucket(name) == nil {
				return fmt.Errorf("the file lacks the %s bucket, which this build adds when it opens the file for writing: open a copy of it that way first", name)
			}
		}
		switch f := meta.Get(keyFormat); {
		case len(f) == 1 && (f[0] == fileFormat || f[0] == upgradableFormat):
		case f == nil:
			return errors.New("the file has no format mark, which this build adds when it opens the file for writing: open a copy of it that way first")
		default:
			return fmt.Errorf("unsupported file format %x (this build reads format %d)", f, fileFormat)
		}
		if v := meta.Get(keyDeliveryKey); len(v) == 32 {
			copy(key[:], v)
			return nil
		}
		_, err := rand.Read(key[:])
		return err
	})
	return key, err
}

// enter marks the start of an operation; the caller must call s.leave.
func (s *Store) enter(op string) error {
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return ctigate.E(op, ctigate.Unavailable, "store is closed")
	}
	s.active.Store(true)
	return nil
}

func (s *Store) leave() { s.mu.RUnlock() }

// Ping reports whether the file is open and readable.
func (s *Store) Ping(ctx context.Context) error {
	const op = "bolt.Ping"
	if err := s.enter(op); err != nil {
		return err
	}
	defer s.leave()
	if err := ctx.Err(); err != nil {
		return ctigate.E(op, ctigate.Unavailable, err)
	}
	err := s.db.View(func(tx *bbolt.Tx) error {
		if tx.Bucket(bucketMeta) == nil {
			return errors.New("meta bucket missing")
		}
		return nil
	})
	if err != nil {
		return ctigate.E(op, err)
	}
	return nil
}

// Close waits for operations under way, stops the background trimmer and
// closes the file. Operations after Close fail with ctigate.Unavailable.
// Closing twice is harmless.
func (s *Store) Close() error {
	const op = "bolt.Close"
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()

	s.stopTrimmer()
	err := s.db.Close()
	// No operation runs any more (mu above): the keydir's tables, outside
	// the Go heap, are given back.
	s.keys.drop()
	if err != nil {
		return ctigate.E(op, err)
	}
	return nil
}

// ctxErr wraps a context error so that callers see why the operation
// stopped.
func ctxErr(op string, err error) error {
	return ctigate.E(op, ctigate.Unavailable, err, "request cancelled")
}
