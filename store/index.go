package store

import (
	"context"
	"time"
)

// IndexEntry says that one stored object version in one collection
// mentions one observable. The search index is a set of entries, keyed by
// (Key, Collection, ID, Version); writing an entry again replaces it.
type IndexEntry struct {
	// Class and Value make the entry's key: Class names the kind of
	// observable ("domain", "sha256", "ipv4/24", …) and Value its
	// normalised text. Lookups are by exact (Class, Value).
	Class, Value string
	Collection   string    // the id of the collection holding the version
	ID           string    // STIX id of the object
	Type         string    // STIX type of the object
	Version      time.Time // the object version (modified, else created); zero when unversioned
	DateAdded    time.Time // the version's date_added in Collection
	TLP          string    // the version's TLP as resolved at index time, e.g. "TLP:AMBER", "TLP:none"
	Producer     string    // organisation that submitted the version ("" when unknown)
	Labels       []string  // the object's labels
	Observable   string    // the value as the object gave it, for people
}

// IndexKey is one exact index key.
type IndexKey struct{ Class, Value string }

// MaxIndexLookup bounds the entries one IndexLookup returns.
const MaxIndexLookup = 100_000

// Index is the observable search index a backend may keep beside its
// store.Store. It is separate from Store: a backend that keeps no index
// does not implement it. Entries are derived data: dropping them (with
// their checkpoints) and indexing the collections again rebuilds them.
type Index interface {
	// AddIndexEntries writes entries, all of collection, and sets the
	// index checkpoint name of collection to at, never before all entries
	// are written: a write that fails leaves the checkpoint where it was,
	// and may have written some of the entries (a backend may write
	// entries ahead of the checkpoint; an entry written again replaces
	// itself, so doing the write again is harmless). (One collection per
	// write lets a clustered backend keep a collection's index in one
	// shard.) entries may be empty, to move the checkpoint alone. The
	// classes of the entries join the set IndexClasses returns. An entry
	// without Class, Value or ID, or of another collection, is Invalid
	// and fails the whole write.
	AddIndexEntries(ctx context.Context, collection string, entries []IndexEntry, name string, at time.Time) error

	// IndexCheckpoint returns the time last set under (collection, name)
	// by AddIndexEntries, or the zero time when none was set (or the index
	// was dropped since).
	IndexCheckpoint(ctx context.Context, collection, name string) (time.Time, error)

	// IndexClasses returns every class written since the index was last
	// dropped, in ascending order. The set stays small (a few dozen), so
	// a caller can probe, say, every IPv4 prefix length present.
	IndexClasses(ctx context.Context) ([]string, error)

	// IndexLookup returns the entries under keys, ordered by key (in
	// the order given), then Collection, ID and Version. More than
	// MaxIndexLookup entries is TooLarge.
	IndexLookup(ctx context.Context, keys []IndexKey) ([]IndexEntry, error)

	// DropIndex removes every entry, class and index checkpoint.
	DropIndex(ctx context.Context) error
}
