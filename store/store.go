// Package store defines the storage contract of the gateway: collections of
// STIX object versions kept as the producer's original bytes, read back in
// date_added order through stateless keyset cursors, and TAXII status
// resources. Backends live in sub-packages named for their technology.
package store

import (
	"context"
	"time"
)

// Object is one stored version of a STIX object.
type Object struct {
	ID          string    // STIX id, e.g. "indicator--…"
	Type        string    // STIX type, the part of ID before "--"
	SpecVersion string    // "2.1"
	Version     time.Time // modified, else created; zero when the object has neither (e.g. SCOs)
	DateAdded   time.Time // assigned by the store on first add; microsecond precision, UTC
	Raw         []byte    // the producer's original bytes; nil in manifest reads
	Hash        [32]byte  // SHA-256 of the RFC 8785 canonical form of Raw, given by the writer; returned with Raw (zero when unknown)
}

// VersionKind selects versions of an object (TAXII match[version]).
type VersionKind uint8

// Version selectors.
const (
	Last  VersionKind = iota // the newest version (highest Version)
	First                    // the oldest version
	All                      // every version
	At                       // the version whose Version equals At
)

// VersionMatch is one entry of match[version].
type VersionMatch struct {
	Kind VersionKind
	At   time.Time // for Kind == At
}

// Query selects object versions of one collection. The empty Query selects
// the last version of every object, from the start, with the backend's
// default limit.
type Query struct {
	AddedAfter   time.Time      // exclusive; zero means from the start
	Limit        int            // maximum versions per page; <= 0 means DefaultLimit
	Next         string         // cursor from Page.Next; "" starts at the beginning
	IDs          []string       // match[id]; empty matches every id
	Types        []string       // match[type]; empty matches every type
	Versions     []VersionMatch // match[version]; empty means {Last}
	SpecVersions []string       // match[spec_version]; empty matches every spec version
	WithoutRaw   bool           // leave Object.Raw nil (manifest reads)
}

// DefaultLimit is the page size used when Query.Limit is not set.
const DefaultLimit = 1000

// Page is one page of results in ascending date_added order.
type Page struct {
	Objects []Object
	More    bool   // further matching versions exist after this page
	Next    string // cursor for the next page; set whenever More is true
}

// AddResult tells what happened to one object given to AddObjects.
type AddResult struct {
	DateAdded time.Time // the version's date_added (the original one if it existed)
	Existed   bool      // the same (id, version) was already stored; nothing changed
	Hash      [32]byte  // when Existed: the stored version's Hash, so a writer can tell a repeat from a conflicting copy
}

// Store is the storage contract every backend implements.
type Store interface {
	// AddObjects stores object versions in one collection atomically: either
	// all are stored or none. Each new version gets a date_added strictly
	// greater than every date_added already assigned in the collection, in
	// input order. Re-adding a stored (id, version) changes nothing and
	// reports Existed (the first copy wins; later bytes are ignored).
	// results[i] corresponds to objs[i].
	AddObjects(ctx context.Context, collection string, objs []Object) ([]AddResult, error)

	// AddObjectsCheckpoint is AddObjects into collection that also sets
	// the checkpoint name to at, in the same atomic write: either the
	// objects are stored and the checkpoint moved, or neither. objs may be
	// empty, to move the checkpoint alone. A consumer of a collection's
	// date_added order (fan-out) keeps its position this way, so that a
	// crash at any point neither loses nor repeats its work.
	AddObjectsCheckpoint(ctx context.Context, collection string, objs []Object, name string, at time.Time) ([]AddResult, error)

	// Checkpoint returns the time last set under name by
	// AddObjectsCheckpoint, or the zero time when none was set. Checkpoints
	// are durable and shared by every replica over the backend.
	Checkpoint(ctx context.Context, name string) (time.Time, error)

	// Objects returns one page of versions matching q, in ascending
	// date_added order. A Next cursor stays valid across restarts and on
	// any replica sharing the backend. A malformed cursor is Invalid.
	Objects(ctx context.Context, collection string, q Query) (Page, error)

	// DeleteObject removes the versions of id selected by versions and
	// specVersions (empty versions means All) and returns how many were
	// removed. Removing none is NotFound.
	DeleteObject(ctx context.Context, collection, id string, versions []VersionMatch, specVersions []string) (int, error)

	// PutStatus creates or replaces a status resource.
	PutStatus(ctx context.Context, s Status) error
	// Status returns a status resource; NotFound if there is none.
	Status(ctx context.Context, id string) (Status, error)

	// Ping reports whether the backend is reachable and usable.
	Ping(ctx context.Context) error
	// Close releases the backend; it waits for operations under way.
	Close() error
}

// Status is a TAXII status resource, with the fields the gateway needs to
// authorise access to it.
type Status struct {
	ID               string
	APIRoot          string
	Collection       string
	Owner            string // user who made the request
	Status           string // "pending" or "complete"
	RequestTimestamp time.Time
	TotalCount       int
	Successes        []StatusDetail
	Failures         []StatusDetail
	Pendings         []StatusDetail
}

// StatusDetail is one entry of a status resource's successes, failures or
// pendings.
type StatusDetail struct {
	ID      string
	Version string
	Message string
}
