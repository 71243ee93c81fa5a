package bolt

import (
	"encoding/binary"
	"errors"
	"math/bits"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"

	"go.etcd.io/bbolt"

	"github.com/ctigate/ctigate/store"
)

// The keydir: the id -> versions lookup, kept in memory.
//
// The file holds, per collection, only buckets keyed by date_added (index
// and raw), so every write appends at the right edge of two B+trees and a
// commit rewrites a handful of pages whatever the collection's size. A
// bucket keyed by id would receive each commit's versions at random
// positions and copy-on-write one leaf per version (about 10 KiB written per
// object at a million versions). What needs an id's versions (AddObjects'
// "already stored?" and first/last flags, DeleteObject, match[id], and
// first/last among some spec_versions) asks the keydir for the date_added
// keys of the id's versions and reads their index entries, which hold
// everything else (flags, version, id, type, spec_version). Open rebuilds
// the keydir by scanning the index buckets, which is sequential.
//
// Memory (outside the Go heap, see offHeap): an id is one 32-byte head (UUID, interned type, date_added of one
// version, link to the others) and one 4-byte slot of an open-addressing
// table kept at most 3/4 full; each further version is 16 bytes (date_added,
// link). Values live in chunks that never move, with no pointers for the
// garbage collector to follow. That is about 39 bytes per version for the
// usual mix (90% of ids with one version). The heads and further versions
// (about 35 of those bytes) are mapped from a file of their own beside the
// store (pagedFile), so the kernel pages them like the store's file rather
// than holding them as anonymous memory; the slots stay anonymous, and
// OffHeapBytes counts them for a caller that bounds the process (serve
// lowers the Go runtime's soft memory limit for them). Ids
// that are not "<type>--<lowercase canonical UUID>" (never produced by
// conforming producers, but accepted) are kept in a map by their string.
//
// Consistency. The keydir only ever holds committed versions: a write
// transaction records what it changes (writeTx.ops) and the committer
// applies that after the commit and before the next transaction begins, so
// every write transaction sees exactly the state it starts from; a
// transaction that fails or is retried changes nothing. Within a
// transaction, versions added earlier in the same transaction are found in
// the transaction's overlay (writeTx.lastAdd, see Store.versions), and
// versions deleted earlier are skipped because their index entries are gone
// from the transaction.
//
// Readers hold a bbolt snapshot, while the keydir moves on. keys.applied is
// the id of the last write transaction applied; a read transaction's ID()
// is that of the last transaction committed before it began. A reader that
// consults the keydir first waits until applied >= its ID(), so the keydir
// lists every version its snapshot holds (an applier is never far behind: it
// applies right after its commit returns). Versions the keydir lists beyond
// the snapshot (committed later) are simply not found in the snapshot's
// index and are skipped, so a version is either wholly visible (present in
// the snapshot) or not at all; first and last are computed among the
// versions found, never from the keydir alone. Deletes are the one change
// that removes from the keydir what an older snapshot still holds: each
// collection records the transaction of its last delete, and a reader whose
// snapshot is older than that fails its lookup with errStaleSnapshot and
// starts again on a fresh snapshot. Deletes are rare, so this costs nothing
// in practice.
//
// Waiting cannot deadlock: the applier holds no bbolt lock when it applies,
// and the next write transaction (the only thing that could wait for the
// reader, to remap the file) begins only after the apply.
type keys struct {
	mu      sync.RWMutex
	changed *sync.Cond // signalled (on mu.RLocker()) when applied moves
	applied int        // the last write transaction applied
	colls   map[string]*keydir

	// Interned types of canonical ids; only ever grows.
	types     map[string]uint32
	typeNames []string

	k0, k1 uint64 // hash keys, random per store, so crafted ids cannot collide on purpose

	// file backs the keydirs' arenas (heads and further versions), so
	// that they are paged like a file, not anonymous memory; nil: they
	// are anonymous (offHeap). Set before the first keydir is made.
	file *pagedFile
}

func newKeys() *keys {
	k := &keys{
		colls: make(map[string]*keydir),
		types: make(map[string]uint32),
		k0:    rand.Uint64(),
		k1:    rand.Uint64(),
	}
	k.changed = sync.NewCond(k.mu.RLocker())
	return k
}

// errStaleSnapshot reports that a collection had versions deleted after the
// reader's snapshot was taken; the reader must retry on a new snapshot.
var errStaleSnapshot = errors.New("snapshot older than a delete")

// keyOp is one change to the keydir made by a write transaction.
type keyOp struct {
	coll, id string
	date     int64
	del      bool
	prev     int32 // index+1 in writeTx.ops of the id's previous add in this transaction
}

// apply applies a committed transaction's changes and marks it applied.
func (k *keys) apply(txid int, ops []keyOp) {
	k.mu.Lock()
	for i := range ops {
		op := &ops[i]
		kd := k.colls[op.coll]
		if kd == nil {
			kd = k.newKeydir()
			k.colls[op.coll] = kd
		}
		if op.del {
			k.remove(kd, op.id, op.date)
			kd.lastDelete = txid
		} else {
			k.add(kd, op.id, op.date)
		}
	}
	k.applied = max(k.applied, txid)
	k.mu.Unlock()
	k.changed.Broadcast()
}

// await waits until the keydir reflects every transaction visible to a read
// transaction with id txid.
func (k *keys) await(txid int) {
	k.mu.RLock()
	for k.applied < txid {
		k.changed.Wait()
	}
	k.mu.RUnlock()
}

// lookup appends to dst the date_added of every version of id in
// collection, in no particular order, for a reader whose snapshot is
// transaction txid (see keys), or for a writer when txid is negative. The
// caller holds k.mu (read).
func (k *keys) lookup(coll, id string, txid int, dst []int64) ([]int64, error) {
	kd := k.colls[coll]
	if kd == nil {
		return dst, nil
	}
	if txid >= 0 && kd.lastDelete > txid {
		return dst, errStaleSnapshot
	}
	if r := k.head(kd, id); r != 0 {
		h := kd.heads.at(r)
		dst = append(dst, h.date)
		for e := h.more; e != 0; e = kd.more.at(e).next {
			dst = append(dst, kd.more.at(e).date)
		}
	}
	return dst, nil
}

// idKey is the compact form of a canonical id.
type idKey struct {
	uuid [16]byte
	typ  uint32
}

// canonicalKey returns the key of id if id is "<type>--<UUID>" with the UUID
// in lowercase canonical form and its type already interned (intern adds
// it). The caller holds k.mu, exclusively if intern is set.
func canonicalKey[S string | []byte](k *keys, id S, intern bool) (idKey, bool) {
	const uuidLen = 36
	n := len(id) - uuidLen
	if n < 3 || id[n-2] != '-' || id[n-1] != '-' {
		return idKey{}, false
	}
	var key idKey
	if !store.ParseUUID(id[n:], &key.uuid) {
		return idKey{}, false
	}
	typ := id[:n-2]
	t, ok := k.types[string(typ)]
	if !ok {
		if !intern {
			return idKey{}, false
		}
		t = uint32(len(k.typeNames))
		k.types[string(typ)] = t
		k.typeNames = append(k.typeNames, string(typ))
	}
	key.typ = t
	return key, true
}

func (k *keys) hash(key *idKey) uint64 {
	a := uint64(key.uuid[0]) | uint64(key.uuid[1])<<8 | uint64(key.uuid[2])<<16 | uint64(key.uuid[3])<<24 |
		uint64(key.uuid[4])<<32 | uint64(key.uuid[5])<<40 | uint64(key.uuid[6])<<48 | uint64(key.uuid[7])<<56
	b := uint64(key.uuid[8]) | uint64(key.uuid[9])<<8 | uint64(key.uuid[10])<<16 | uint64(key.uuid[11])<<24 |
		uint64(key.uuid[12])<<32 | uint64(key.uuid[13])<<40 | uint64(key.uuid[14])<<48 | uint64(key.uuid[15])<<56
	hi, lo := bits.Mul64(a^k.k0, b^k.k1^uint64(key.typ)*0x9e3779b97f4a7c15)
	hi, lo = bits.Mul64(hi^k.k1, lo^k.k0)
	return hi ^ lo
}

// keydir is the keydir of one collection.
type keydir struct {
	slots []uint32 // open addressing, linear probing; 0 empty, else head+1
	ids   int      // occupied slots
	heads arena[head]
	more  arena[extra]
	odd   map[string]uint32 // non-canonical ids -> head+1

	versions   int // versions held
	lastDelete int // the last write transaction that deleted versions
}

// head is an id and one of its versions; further versions hang off it.
// Non-canonical ids leave uuid and typ zero.
type head struct {
	uuid [16]byte
	typ  uint32
	more uint32 // first further version+1; 0: none
	date int64
}

// extra is a further version of an id.
type extra struct {
	date int64
	next uint32 // next further version+1; 0 ends
}

// arena holds values in chunks that never move, addressed by index+1 (so
// that 0 means none), and reuses released ones.
type arena[T any] struct {
	chunks [][]T
	n      uint32 // values ever allocated
	free   []uint32
	file   *pagedFile // where chunks are mapped from; nil: anonymous memory
}

const (
	chunkBits = 12
	chunkMask = 1<<chunkBits - 1
)

func (a *arena[T]) at(r uint32) *T {
	i := r - 1
	return &a.chunks[i>>chunkBits][i&chunkMask]
}

func (a *arena[T]) alloc() uint32 {
	if n := len(a.free); n > 0 {
		r := a.free[n-1]
		a.free = a.free[:n-1]
		return r
	}
	if int(a.n>>chunkBits) == len(a.chunks) {
		a.chunks = append(a.chunks, pagedChunk[T](a.file, 1<<chunkBits))
	}
	a.n++
	return a.n
}

// drop gives the arena's memory back (see releaseOffHeap).
func (a *arena[T]) drop() {
	for _, c := range a.chunks {
		releaseOffHeap(c)
	}
	*a = arena[T]{}
}

func (a *arena[T]) release(r uint32) {
	var zero T
	*a.at(r) = zero
	a.free = append(a.free, r)
}

// head returns the head+1 of id, or 0.
func (k *keys) head(kd *keydir, id string) uint32 {
	key, ok := canonicalKey(k, id, false)
	if !ok {
		return kd.odd[id]
	}
	if i := k.find(kd, key); i >= 0 {
		return kd.slots[i]
	}
	return 0
}

// find returns the slot of key, or -1.
func (k *keys) find(kd *keydir, key idKey) int {
	if len(kd.slots) == 0 {
		return -1
	}
	mask := uint64(len(kd.slots) - 1)
	for i := k.hash(&key) & mask; kd.slots[i] != 0; i = (i + 1) & mask {
		if h := kd.heads.at(kd.slots[i]); h.uuid == key.uuid && h.typ == key.typ {
			return int(i)
		}
	}
	return -1
}

// add records that id has a version with date_added date. The caller
// holds k.mu exclusively.
func (k *keys) add(kd *keydir, id string, date int64) {
	if key, ok := canonicalKey(k, id, true); ok {
		k.addKey(kd, key, date)
	} else {
		k.addOdd(kd, id, date)
	}
}

func (k *keys) addOdd(kd *keydir, id string, date int64) {
	if r := kd.odd[id]; r != 0 {
		kd.addMore(r, date)
		return
	}
	if kd.odd == nil {
		kd.odd = make(map[string]uint32)
	}
	kd.versions++
	r := kd.heads.alloc()
	*kd.heads.at(r) = head{date: date}
	kd.odd[strings.Clone(id)] = r // not a view of a request's buffer
}

func (k *keys) addKey(kd *keydir, key idKey, date int64) {
	if i := k.find(kd, key); i >= 0 {
		kd.addMore(kd.slots[i], date)
		return
	}
	if (kd.ids+1)*4 > len(kd.slots)*3 {
		k.grow(kd)
	}
	kd.versions++
	r := kd.heads.alloc()
	*kd.heads.at(r) = head{uuid: key.uuid, typ: key.typ, date: date}
	mask := uint64(len(kd.slots) - 1)
	i := k.hash(&key) & mask
	for kd.slots[i] != 0 {
		i = (i + 1) & mask
	}
	kd.slots[i] = r
	kd.ids++
}

// addMore adds a version to the id whose head is r.
func (kd *keydir) addMore(r uint32, date int64) {
	kd.versions++
	h := kd.heads.at(r)
	e := kd.more.alloc()
	*kd.more.at(e) = extra{date: date, next: h.more}
	h.more = e
}

// reserve sizes an empty keydir's table for n ids, so that a rebuild does
// not rehash as it grows.
func (kd *keydir) reserve(n uint64) {
	size := 1024
	for uint64(size)*3 < n*4 && size < 1<<31 {
		size *= 2
	}
	old := len(kd.slots)
	freeOffHeap(kd.slots)
	kd.slots = offHeap[uint32](size)
	noteSlots(old, size)
}

// drop gives the keydir's memory back (see releaseOffHeap).
func (kd *keydir) drop() {
	releaseOffHeap(kd.slots)
	noteSlots(len(kd.slots), 0)
	kd.slots = nil
	kd.heads.drop()
	kd.more.drop()
}

// drop gives every keydir's memory back (the store is closed).
func (k *keys) drop() {
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, kd := range k.colls {
		kd.drop()
	}
	k.colls = map[string]*keydir{}
	k.file.close()
	k.file = nil
}

// newKeydir returns an empty keydir whose arenas are mapped from k.file.
func (k *keys) newKeydir() *keydir {
	kd := &keydir{}
	kd.heads.file, kd.more.file = k.file, k.file
	return kd
}

func (k *keys) grow(kd *keydir) {
	old := kd.slots
	n := max(1024, 2*len(old))
	// Both tables are resident while the ids move: the new one is counted
	// before it is made (see OnOffHeapChange), the old one once it is gone.
	noteSlots(0, n)
	kd.slots = offHeap[uint32](n)
	mask := uint64(len(kd.slots) - 1)
	for _, r := range old {
		if r == 0 {
			continue
		}
		h := kd.heads.at(r)
		i := k.hash(&idKey{h.uuid, h.typ}) & mask
		for kd.slots[i] != 0 {
			i = (i + 1) & mask
		}
		kd.slots[i] = r
	}
	freeOffHeap(old)
	noteSlots(len(old), 0)
}

// remove forgets the version of id with date_added date, if it is known.
func (k *keys) remove(kd *keydir, id string, date int64) {
	key, canonical := canonicalKey(k, id, false)
	var r uint32
	slot := -1
	if canonical {
		if slot = k.find(kd, key); slot >= 0 {
			r = kd.slots[slot]
		}
	} else {
		r = kd.odd[id]
	}
	if r == 0 {
		return
	}
	h := kd.heads.at(r)
	if h.date == date {
		kd.versions--
		if e := h.more; e != 0 {
			// The first further version takes the head's place.
			h.date, h.more = kd.more.at(e).date, kd.more.at(e).next
			kd.more.release(e)
			return
		}
		if canonical {
			k.deleteSlot(kd, slot)
		} else {
			delete(kd.odd, id)
		}
		kd.heads.release(r)
		return
	}
	for p := &h.more; *p != 0; p = &kd.more.at(*p).next {
		if e := *p; kd.more.at(e).date == date {
			kd.versions--
			*p = kd.more.at(e).next
			kd.more.release(e)
			return
		}
	}
}

// deleteSlot empties slot i, shifting later entries of its probe run back so
// that lookups never stop early (no tombstones).
func (k *keys) deleteSlot(kd *keydir, i int) {
	mask := len(kd.slots) - 1
	kd.ids--
	j := i
	for {
		kd.slots[i] = 0
		for {
			j = (j + 1) & mask
			r := kd.slots[j]
			if r == 0 {
				return
			}
			h := kd.heads.at(r)
			home := int(k.hash(&idKey{h.uuid, h.typ})) & mask
			// Move r back to i unless its home lies cyclically in (i, j].
			if (i <= j && (home <= i || home > j)) || (i > j && home <= i && home > j) {
				kd.slots[i] = r
				i = j
				break
			}
		}
	}
}

// rebuild fills the keydir from the index buckets of every collection, as
// of read transaction tx.
func (k *keys) rebuild(tx *bbolt.Tx, note func(int64)) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	var read int64 // bytes visited, told to the trimmer as they go
	defer func() { note(read) }()
	err := tx.Bucket(bucketCollections).ForEachBucket(func(name []byte) error {
		cb, ok := openCollection(tx, string(name))
		if !ok {
			return nil
		}
		kd := k.newKeydir()
		if v := cb.coll.Get(keyCount); len(v) == 8 {
			kd.reserve(binary.BigEndian.Uint64(v))
		}
		c := cb.index.Cursor()
		for dk, v := c.First(); dk != nil; dk, v = c.Next() {
			if read += int64(len(v)); read >= 1<<20 {
				note(read)
				read = 0
			}
			id, ok := headerID(v)
			if len(dk) != dateKeyLen || !ok {
				kd.drop() // not in k.colls yet: keys.drop would miss it
				return errCorrupt
			}
			if key, ok := canonicalKey(k, id, true); ok {
				k.addKey(kd, key, dateMicros(dk))
			} else {
				k.addOdd(kd, string(id), dateMicros(dk))
			}
		}
		k.colls[string(name)] = kd
		return nil
	})
	if err != nil {
		return err
	}
	k.applied = tx.ID()
	return nil
}

// idsOfTypes returns the ids of collection's versions whose type is one
// of types, unless there are more than max or they hold more than an
// eighth of its versions (ok false: the caller scans).
// Ids committed after a reader's snapshot may be among them; the reader
// skips what its snapshot does not hold.
func (k *keys) idsOfTypes(coll string, types []string, max int) (ids []string, ok bool) {
	k.mu.RLock()
	defer k.mu.RUnlock()
	kd := k.colls[coll]
	if kd == nil {
		return nil, true
	}
	want := map[uint32]string{}
	for _, t := range types {
		if n, ok := k.types[t]; ok {
			want[n] = t
		}
	}
	if len(want) > 0 {
		for _, r := range kd.slots {
			if r == 0 {
				continue
			}
			h := kd.heads.at(r)
			typ, ok := want[h.typ]
			if !ok {
				continue
			}
			if len(ids) == max {
				return nil, false
			}
			ids = append(ids, string(store.AppendCanonicalID(nil, typ, &h.uuid)))
		}
	}
	for id := range kd.odd {
		if t, _, found := strings.Cut(id, "--"); found && slices.Contains(types, t) {
			if len(ids) == max {
				return nil, false
			}
			ids = append(ids, id)
		}
	}
	// A common type is read faster by the scan, which stops once a page
	// is full, than by looking up each of its ids for every page.
	if len(ids)*8 > kd.versions {
		return nil, false
	}
	slices.Sort(ids)
	return ids, true
}
