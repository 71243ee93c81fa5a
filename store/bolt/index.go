package bolt

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sync"
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
type Index struct {
	db     *bbolt.DB
	mu     sync.RWMutex // held shared by operations, exclusively by Close
	closed bool
}

// IndexOptions configure an Index. The zero value is ready for use.
type IndexOptions struct {
	// NoSync skips fsync on commit (tests and bulk loads): a power loss
	// may then damage the file, which `ctigate index rebuild` recreates.
	NoSync bool
	// OpenTimeout bounds how long OpenIndex waits for another process to
	// release the file; zero means DefaultOpenTimeout.
	OpenTimeout time.Duration
}

// OpenIndex opens or creates the index file at path.
func OpenIndex(path string, opts IndexOptions) (*Index, error) {
	const op = "bolt.OpenIndex"
	timeout := opts.OpenTimeout
	if timeout <= 0 {
		timeout = DefaultOpenTimeout
	}
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: timeout, NoSync: opts.NoSync, FreelistType: bbolt.FreelistMapType})
	if err != nil {
		if errors.Is(err, bberrors.ErrTimeout) {
			return nil, ctigate.E(op, ctigate.Unavailable, err, "index file is locked by another process")
		}
		return nil, ctigate.E(op, err)
	}
	return &Index{db: db}, nil
}

// Close waits for operations under way and closes the file. Closing twice
// is harmless.
func (s *Index) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	if err := s.db.Close(); err != nil {
		return ctigate.E("bolt.Index.Close", err)
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
//	search/entries      key(class, value) collection id version -> entry fields
//	search/classes      class -> ""
//	search/checkpoints  name -> time (time.MarshalBinary)
//
// Key components are length-prefixed (uvarint), so no value can be read as
// another; a lookup is a prefix scan over key(class, value). The version
// is 8 bytes, big-endian, sign bit flipped (0 when unversioned), so a
// key's entries sort by collection, id, then version.
var (
	bucketSearch        = []byte("search")
	bucketSearchEntries = []byte("entries")
	bucketSearchClasses = []byte("classes")
	bucketSearchCPs     = []byte("checkpoints")
)

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
	if err := validCheckpoint(name); err != nil {
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
	err = s.db.Update(func(tx *bbolt.Tx) error {
		root, err := tx.CreateBucketIfNotExists(bucketSearch)
		if err != nil {
			return err
		}
		eb, err := root.CreateBucketIfNotExists(bucketSearchEntries)
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
		for _, e := range kvs {
			if err := eb.Put(e.k, e.v); err != nil {
				return err
			}
		}
		return pb.Put(cpKey(collection, name), cp)
	})
	if err != nil {
		return ctigate.E(op, err)
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
	if err := validCheckpoint(name); err != nil {
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
	err := s.viewIndex(ctx, op, func(root *bbolt.Bucket) error {
		c := root.Bucket(bucketSearchEntries).Cursor()
		var prefix []byte
		for _, key := range keys {
			prefix = indexKeyPrefix(prefix[:0], key.Class, key.Value)
			for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
				if len(out) == store.MaxIndexLookup {
					return ctigate.E(op, ctigate.TooLarge, fmt.Sprintf("more than %d index entries match", store.MaxIndexLookup))
				}
				e, err := decodeIndexEntry(k, v)
				if err != nil {
					return err
				}
				out = append(out, e)
			}
		}
		return nil
	})
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
