package bolt

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/bbolt"
	bberrors "go.etcd.io/bbolt/errors"

	"github.com/ctigate/ctigate"
	"github.com/ctigate/ctigate/store"
)

var _ store.Index = (*Index)(nil)

// Index is a store.Index in a bbolt file of its own, beside the store's:
// the index's large, randomly keyed writes then neither wait for nor hold
// up the store's writes (bbolt has one writer per file), and the index,
// which is derived data, can be deleted and rebuilt alone. It is safe for
// concurrent use.
//
// Write cost. Index keys are observables, random with respect to the order
// in which they are written. One B+tree over every entry would make each
// batch of a few thousand entries dirty as many leaf pages all over the
// file (megabytes written, and copied through the heap, per batch). The
// entries are therefore written into segments: a segment takes entries
// until it holds IndexOptions.SegmentEntries, then the next one starts. A
// batch dirties only pages of the current, small segment, while a lookup
// seeks each key in every segment (a few microseconds per segment), so
// lookups would slow down as segments accumulate: a background merger
// keeps their number logarithmic in the index's size (indexmerge.go).
//
// Durability. Commits are not fsynced: the index is derived data, which
// the indexer rebuilds from the store by its checkpoints. A process crash
// loses nothing (the kernel holds the written pages), but after a power
// loss or a crash of the machine the file may be torn, with checkpoints
// that claim entries that never reached the disk. OpenIndex detects that:
// while the index is open, a marker file (path + ".open") holds the
// machine's boot id, and a clean Close syncs the file and removes the
// marker. If OpenIndex finds a marker from another boot (or one it cannot
// read), or bbolt finds the file invalid, it deletes the file and starts an
// empty index, which the indexer fills again from the start.
type Index struct {
	db     *bbolt.DB
	path   string
	segMax uint64
	mu     sync.RWMutex // held shared by operations, exclusively by Close
	closed bool
	// Rebuilt is true when OpenIndex discarded a file left by an unclean
	// shutdown of the machine, or an invalid one.
	rebuilt bool

	// Segment merging (indexmerge.go).
	fanIn      int           // segments of one level merged at once; < 2: never
	gen        atomic.Uint64 // moved on by DropIndex, inside its write
	mergeMu    sync.Mutex    // one merge at a time
	mergeWake  chan struct{} // a segment was started
	stopMerger chan struct{} // closed by Close
	stopOnce   sync.Once
	mergerDone chan struct{} // closed when the merger has returned; nil: none runs

	trimmer // drops the file mapping from the page tables (trim.go)
}

// DefaultSegmentEntries is the default of IndexOptions.SegmentEntries.
const DefaultSegmentEntries = 25_000

// IndexOptions configure an Index. The zero value is ready for use.
type IndexOptions struct {
	// NoSync has no effect: commits are never fsynced (see Index,
	// "Durability"). It is kept for callers that set it.
	NoSync bool
	// OpenTimeout bounds how long OpenIndex waits for another process to
	// release the file; zero means DefaultOpenTimeout.
	OpenTimeout time.Duration
	// SegmentEntries is the number of entries written into one segment
	// before the next one starts; zero means DefaultSegmentEntries.
	SegmentEntries int
	// MergeFanIn is the number of segments of one level merged into one
	// of the next (indexmerge.go); zero means DefaultMergeFanIn, a
	// negative number never merges.
	MergeFanIn int
	// Logger receives background errors (trimming); nil discards them.
	Logger *slog.Logger
	// TrimInterval, TrimAfterBytes and TrimAbove are as in Options.
	TrimInterval   time.Duration
	TrimAfterBytes int64
	TrimAbove      int64
}

// OpenIndex opens or creates the index file at path.
func OpenIndex(path string, opts IndexOptions) (*Index, error) {
	const op = "bolt.OpenIndex"
	timeout := opts.OpenTimeout
	if timeout <= 0 {
		timeout = DefaultOpenTimeout
	}
	marker := path + ".open"
	boot := bootID()
	rebuilt := false
	if m, err := os.ReadFile(marker); err == nil && (boot == "" || string(m) != boot) {
		// The machine stopped while the index was open: unsynced
		// commits may be lost or torn.
		if err := removeIndexFile(path); err != nil {
			return nil, ctigate.E(op, err)
		}
		rebuilt = true
	}
	// Pages as large as the store's (filePageSize); a file keeps its own.
	bopts := &bbolt.Options{Timeout: timeout, NoSync: true, FreelistType: bbolt.FreelistMapType, PageSize: filePageSize}
	db, err := bbolt.Open(path, 0o600, bopts)
	if err != nil && !errors.Is(err, bberrors.ErrTimeout) && isCorrupt(err) {
		if rerr := removeIndexFile(path); rerr != nil {
			return nil, ctigate.E(op, rerr)
		}
		rebuilt = true
		db, err = bbolt.Open(path, 0o600, bopts)
	}
	if err != nil {
		if errors.Is(err, bberrors.ErrTimeout) {
			return nil, ctigate.E(op, ctigate.Unavailable, err, "index file is locked by another process")
		}
		return nil, ctigate.E(op, err)
	}
	// The file is locked by this process: the marker is ours.
	if err := writeMarker(marker, boot); err != nil {
		db.Close()
		return nil, ctigate.E(op, err)
	}
	if err := upgradeIndex(db); err != nil {
		db.Close()
		return nil, ctigate.E(op, err)
	}
	if err := dropLeftoverMerge(db); err != nil {
		db.Close()
		return nil, ctigate.E(op, err)
	}
	s := &Index{db: db, path: path, segMax: uint64(opts.SegmentEntries), rebuilt: rebuilt, fanIn: opts.MergeFanIn,
		mergeWake: make(chan struct{}, 1), stopMerger: make(chan struct{})}
	if opts.SegmentEntries <= 0 {
		s.segMax = DefaultSegmentEntries
	}
	if opts.MergeFanIn == 0 {
		s.fanIn = DefaultMergeFanIn
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s.startTrimmer(db, log, "search index", opts.TrimAfterBytes, opts.TrimAbove, opts.TrimInterval)
	if s.fanIn >= 2 {
		s.mergerDone = make(chan struct{})
		go s.runMerger(log)
		s.wakeMerger() // segments an earlier process left unmerged
	}
	return s, nil
}

// Rebuilt reports whether OpenIndex discarded the file (left by an
// unclean shutdown of the machine, or invalid) and started an empty index.
func (s *Index) Rebuilt() bool { return s.rebuilt }

func isCorrupt(err error) bool {
	return errors.Is(err, bberrors.ErrInvalid) || errors.Is(err, bberrors.ErrChecksum) ||
		errors.Is(err, bberrors.ErrVersionMismatch) || errors.Is(err, bberrors.ErrInvalidMapping)
}

func removeIndexFile(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("removing the index left by an unclean shutdown: %w", err)
	}
	return nil
}

// writeMarker writes the open marker durably: it must be on disk before
// any unsynced commit.
func writeMarker(path, boot string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("index open marker: %w", err)
	}
	_, err = f.WriteString(boot)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("index open marker: %w", err)
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

// bootID identifies the running boot of the machine; "" when unknown, and
// then every marker counts as left by another boot.
func bootID() string {
	b, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return ""
	}
	return string(bytes.TrimSpace(b))
}

// Close waits for operations under way, syncs and closes the file, and
// removes the open marker. Closing twice is harmless.
func (s *Index) Close() error {
	const op = "bolt.Index.Close"
	s.stopOnce.Do(func() { close(s.stopMerger) })
	if s.mergerDone != nil {
		<-s.mergerDone
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	s.stopTrimmer()
	serr := s.db.Sync()
	if err := s.db.Close(); err != nil {
		return ctigate.E(op, err)
	}
	if serr != nil {
		return ctigate.E(op, serr)
	}
	if err := os.Remove(s.path + ".open"); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return ctigate.E(op, err)
	}
	return nil
}

func (s *Index) enter(op string) error {
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return ctigate.E(op, ctigate.Unavailable, "index is closed")
	}
	return nil
}

func (s *Index) leave() { s.mu.RUnlock() }

// The search index lives in the top-level bucket "search", created by its
// first write and removed whole by DropIndex:
//
//	search/segments     segment (8 bytes, big-endian) -> bucket:
//	                      key(class, value) collection id version -> entry fields
//	search/current      "seg" -> current segment (8 bytes), entries in it (8 bytes)
//	search/classes      class -> ""
//	search/checkpoints  name -> time (time.MarshalBinary)
//
// Key components are length-prefixed (uvarint), so no value can be read as
// another; a lookup is a prefix scan over key(class, value) in each
// segment. The version is 8 bytes, big-endian, sign bit flipped (0 when
// unversioned), so a key's entries sort by collection, id, then version.
// An entry written again is found in its newest segment.
//
// An index of the first layout (search/entries, one B+tree) is dropped on
// open, with its checkpoints, and so rebuilt by the indexer.
var (
	bucketSearch          = []byte("search")
	bucketSearchSegments  = []byte("segments")
	bucketSearchCurrent   = []byte("current")
	bucketSearchClasses   = []byte("classes")
	bucketSearchCPs       = []byte("checkpoints")
	bucketSearchEntriesV1 = []byte("entries")

	keySearchSeg = []byte("seg")
)

// upgradeIndex drops an index of the first layout.
func upgradeIndex(db *bbolt.DB) error {
	return db.Update(func(tx *bbolt.Tx) error {
		root := tx.Bucket(bucketSearch)
		if root == nil || root.Bucket(bucketSearchEntriesV1) == nil {
			return nil
		}
		return tx.DeleteBucket(bucketSearch)
	})
}

// maxIndexField bounds each string of an index entry, so that a hostile
// object cannot make one key larger than bbolt accepts.
const maxIndexField = 4096

func appendField(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func readField(b []byte) (string, []byte, error) {
	n, k := binary.Uvarint(b)
	if k <= 0 || uint64(len(b)-k) < n {
		return "", nil, errors.New("corrupt index entry")
	}
	return string(b[k : k+int(n)]), b[k+int(n):], nil
}

func indexKeyPrefix(b []byte, class, value string) []byte {
	return appendField(appendField(b, class), value)
}

func versionBits(t time.Time) uint64 {
	if t.IsZero() {
		return 0
	}
	return uint64(t.UnixNano()) ^ (1 << 63)
}

func bitsVersion(u uint64) time.Time {
	if u == 0 {
		return time.Time{}
	}
	return time.Unix(0, int64(u^(1<<63))).UTC()
}

func encodeIndexKey(e *store.IndexEntry) []byte {
	b := make([]byte, 0, 24+len(e.Class)+len(e.Value)+len(e.Collection)+len(e.ID))
	b = indexKeyPrefix(b, e.Class, e.Value)
	b = appendField(b, e.Collection)
	b = appendField(b, e.ID)
	return binary.BigEndian.AppendUint64(b, versionBits(e.Version))
}

func encodeIndexValue(e *store.IndexEntry) []byte {
	b := make([]byte, 0, 32+len(e.Type)+len(e.TLP)+len(e.Producer)+len(e.Observable))
	b = appendField(b, e.Type)
	b = binary.AppendVarint(b, e.DateAdded.UnixMicro())
	b = appendField(b, e.TLP)
	b = appendField(b, e.Producer)
	b = appendField(b, e.Observable)
	b = binary.AppendUvarint(b, uint64(len(e.Labels)))
	for _, l := range e.Labels {
		b = appendField(b, l)
	}
	return b
}

func decodeIndexEntry(k, v []byte) (store.IndexEntry, error) {
	var e store.IndexEntry
	var err error
	if e.Class, k, err = readField(k); err != nil {
		return e, err
	}
	if e.Value, k, err = readField(k); err != nil {
		return e, err
	}
	if e.Collection, k, err = readField(k); err != nil {
		return e, err
	}
	if e.ID, k, err = readField(k); err != nil {
		return e, err
	}
	if len(k) != 8 {
		return e, errors.New("corrupt index key")
	}
	e.Version = bitsVersion(binary.BigEndian.Uint64(k))
	if e.Type, v, err = readField(v); err != nil {
		return e, err
	}
	us, n := binary.Varint(v)
	if n <= 0 {
		return e, errors.New("corrupt index entry")
	}
	e.DateAdded = time.UnixMicro(us).UTC()
	v = v[n:]
	if e.TLP, v, err = readField(v); err != nil {
		return e, err
	}
	if e.Producer, v, err = readField(v); err != nil {
		return e, err
	}
	if e.Observable, v, err = readField(v); err != nil {
		return e, err
	}
	nl, n := binary.Uvarint(v)
	if n <= 0 || nl > uint64(len(v)) {
		return e, errors.New("corrupt index entry")
	}
	v = v[n:]
	for range nl {
		var l string
		if l, v, err = readField(v); err != nil {
			return e, err
		}
		e.Labels = append(e.Labels, l)
	}
	return e, nil
}

func validIndexEntry(e *store.IndexEntry) error {
	switch {
	case e.Class == "", e.Value == "", e.Collection == "", e.ID == "":
		return errors.New("index entry without class, value, collection or id")
	case len(e.Class) > maxIndexField, len(e.Value) > maxIndexField, len(e.Collection) > maxIDLen, len(e.ID) > maxIDLen:
		return errors.New("index entry field too long")
	}
	return nil
}

// AddIndexEntries writes entries and moves the index checkpoint name to
// at, atomically.
func (s *Index) AddIndexEntries(ctx context.Context, collection string, entries []store.IndexEntry, name string, at time.Time) error {
	const op = "bolt.AddIndexEntries"
	if err := store.ValidName("checkpoint", name); err != nil {
		return ctigate.E(op, ctigate.Invalid, err.Error())
	}
	if collection == "" || len(collection) > maxIDLen {
		return ctigate.E(op, ctigate.Invalid, fmt.Sprintf("collection must be 1 to %d bytes", maxIDLen))
	}
	type kv struct{ k, v []byte }
	kvs := make([]kv, len(entries))
	classes := map[string]bool{}
	for i := range entries {
		e := &entries[i]
		if err := validIndexEntry(e); err != nil {
			return ctigate.E(op, ctigate.Invalid, fmt.Sprintf("entries[%d]: %v", i, err))
		}
		if e.Collection != collection {
			return ctigate.E(op, ctigate.Invalid, fmt.Sprintf("entries[%d]: collection %q in a write to %q", i, e.Collection, collection))
		}
		kvs[i] = kv{encodeIndexKey(e), encodeIndexValue(e)}
		classes[e.Class] = true
	}
	// Sorted puts touch each page once.
	slices.SortFunc(kvs, func(a, b kv) int { return bytes.Compare(a.k, b.k) })
	cp, err := at.UTC().MarshalBinary()
	if err != nil {
		return ctigate.E(op, ctigate.Invalid, err, "checkpoint time")
	}
	if err := s.enter(op); err != nil {
		return err
	}
	defer s.leave()
	if err := ctx.Err(); err != nil {
		return ctxErr(op, err)
	}
	var written int64
	started := false // a new segment
	err = s.db.Update(func(tx *bbolt.Tx) error {
		started = false
		root, err := tx.CreateBucketIfNotExists(bucketSearch)
		if err != nil {
			return err
		}
		segs, err := root.CreateBucketIfNotExists(bucketSearchSegments)
		if err != nil {
			return err
		}
		cur, err := root.CreateBucketIfNotExists(bucketSearchCurrent)
		if err != nil {
			return err
		}
		cb, err := root.CreateBucketIfNotExists(bucketSearchClasses)
		if err != nil {
			return err
		}
		pb, err := root.CreateBucketIfNotExists(bucketSearchCPs)
		if err != nil {
			return err
		}
		for c := range classes {
			if cb.Get([]byte(c)) == nil {
				if err := cb.Put([]byte(c), nil); err != nil {
					return err
				}
			}
		}
		if len(kvs) > 0 {
			var seg, n uint64
			if v := cur.Get(keySearchSeg); len(v) == 16 {
				seg, n = binary.BigEndian.Uint64(v), binary.BigEndian.Uint64(v[8:])
			}
			if n > 0 && n+uint64(len(kvs)) > s.segMax {
				seg, n, started = seg+1, 0, true
			}
			sb, err := segs.CreateBucketIfNotExists(binary.BigEndian.AppendUint64(nil, seg))
			if err != nil {
				return err
			}
			for _, e := range kvs {
				if err := sb.Put(e.k, e.v); err != nil {
					return err
				}
				written += int64(len(e.k) + len(e.v))
			}
			n += uint64(len(kvs))
			if err := cur.Put(keySearchSeg, binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint64(nil, seg), n)); err != nil {
				return err
			}
		}
		return pb.Put(cpKey(collection, name), cp)
	})
	if err != nil {
		return ctigate.E(op, err)
	}
	s.noteWrite(written)
	if started {
		s.wakeMerger()
	}
	return nil
}

// cpKey is the key of an index checkpoint.
func cpKey(collection, name string) []byte {
	return appendField(appendField(nil, collection), name)
}

// IndexCheckpoint returns the index checkpoint name, zero when none.
func (s *Index) IndexCheckpoint(ctx context.Context, collection, name string) (time.Time, error) {
	const op = "bolt.IndexCheckpoint"
	if err := store.ValidName("checkpoint", name); err != nil {
		return time.Time{}, ctigate.E(op, ctigate.Invalid, err.Error())
	}
	var at time.Time
	err := s.viewIndex(ctx, op, func(root *bbolt.Bucket) error {
		v := root.Bucket(bucketSearchCPs).Get(cpKey(collection, name))
		if v == nil {
			return nil
		}
		return at.UnmarshalBinary(v)
	})
	return at.UTC(), err
}

// IndexClasses returns the classes written since the last drop.
func (s *Index) IndexClasses(ctx context.Context) ([]string, error) {
	var out []string
	err := s.viewIndex(ctx, "bolt.IndexClasses", func(root *bbolt.Bucket) error {
		return root.Bucket(bucketSearchClasses).ForEach(func(k, _ []byte) error {
			out = append(out, string(k))
			return nil
		})
	})
	return out, err
}

// IndexLookup returns the entries under keys.
func (s *Index) IndexLookup(ctx context.Context, keys []store.IndexKey) ([]store.IndexEntry, error) {
	const op = "bolt.IndexLookup"
	var out []store.IndexEntry
	var read int64
	err := s.viewIndex(ctx, op, func(root *bbolt.Bucket) error {
		segs := root.Bucket(bucketSearchSegments)
		if segs == nil {
			return nil
		}
		// Cursors over the segments, newest first.
		var cursors []*bbolt.Cursor
		sc := segs.Cursor()
		for k, _ := sc.Last(); k != nil; k, _ = sc.Prev() {
			if b := segs.Bucket(k); b != nil {
				cursors = append(cursors, b.Cursor())
			}
		}
		type kv struct {
			k, v []byte
			age  int // index in cursors: lower is newer
		}
		var prefix []byte
		var found []kv
		for _, key := range keys {
			prefix = indexKeyPrefix(prefix[:0], key.Class, key.Value)
			found = found[:0]
			for age, c := range cursors {
				for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
					if len(found) > 2*store.MaxIndexLookup {
						return ctigate.E(op, ctigate.TooLarge, fmt.Sprintf("more than %d index entries match", store.MaxIndexLookup))
					}
					found = append(found, kv{k, v, age})
				}
			}
			slices.SortFunc(found, func(a, b kv) int {
				if c := bytes.Compare(a.k, b.k); c != 0 {
					return c
				}
				return a.age - b.age
			})
			for i, f := range found {
				if i > 0 && bytes.Equal(f.k, found[i-1].k) {
					continue // an older copy of the entry
				}
				if len(out) == store.MaxIndexLookup {
					return ctigate.E(op, ctigate.TooLarge, fmt.Sprintf("more than %d index entries match", store.MaxIndexLookup))
				}
				e, err := decodeIndexEntry(f.k, f.v)
				if err != nil {
					return err
				}
				read += int64(len(f.k) + len(f.v))
				out = append(out, e)
			}
		}
		return nil
	})
	s.noteRead(read)
	return out, err
}

// DropIndex removes the whole index.
func (s *Index) DropIndex(ctx context.Context) error {
	const op = "bolt.DropIndex"
	if err := s.enter(op); err != nil {
		return err
	}
	defer s.leave()
	if err := ctx.Err(); err != nil {
		return ctxErr(op, err)
	}
	err := s.db.Update(func(tx *bbolt.Tx) error {
		s.gen.Add(1) // a merge under way is abandoned
		if err := tx.DeleteBucket(bucketSearch); err != nil && !errors.Is(err, bberrors.ErrBucketNotFound) {
			return err
		}
		return nil
	})
	if err != nil {
		return ctigate.E(op, err)
	}
	return nil
}

// viewIndex runs fn in a read transaction over the search bucket; fn is
// not called when the index does not exist yet.
func (s *Index) viewIndex(ctx context.Context, op string, fn func(*bbolt.Bucket) error) error {
	if err := s.enter(op); err != nil {
		return err
	}
	defer s.leave()
	if err := ctx.Err(); err != nil {
		return ctxErr(op, err)
	}
	err := s.db.View(func(tx *bbolt.Tx) error {
		root := tx.Bucket(bucketSearch)
		if root == nil {
			return nil
		}
		return fn(root)
	})
	if err != nil {
		if ctigate.KindOf(err) != ctigate.Internal {
			return err
		}
		return ctigate.E(op, err)
	}
	return nil
}
