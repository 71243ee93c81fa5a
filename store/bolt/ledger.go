package bolt

import (
	"context"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/go-json-experiment/json"
	"go.etcd.io/bbolt"

	"github.com/ctigate/ctigate"
	"github.com/ctigate/ctigate/custody"
	"github.com/ctigate/ctigate/store"
)

var _ store.Ledger = (*Store)(nil)

// The custody ledger. bucketLedger maps seq (8 bytes, big-endian) to the
// entry's JSON text exactly as an export line holds it; it only grows at
// its end. bucketLedgerByObject finds the entries about an object that the
// index (ledgerindex.go, built behind the chain) does not hold yet,
// without a random write per entry, which would dirty an index page per
// stored object: it maps the seq of the first entry of each append to the
// 8-byte objectTag of each entry's object id, in order (zero for none). A
// query compares tags, then reads and checks the candidates.
// meta/keyLedgerHead is the head: seq (8 bytes), time (Unix microseconds,
// 8 bytes), hash (64 hex characters). All three change in the transaction
// that appends, so the chain advances with the writes it records.
var (
	bucketLedger         = []byte("ledger")
	bucketLedgerByObject = []byte("ledger-by-object")
	keyLedgerHead        = []byte("ledger-head")
)

// systemUser is the actor of entries written without an Actor in the
// context (fan-out decisions, deletions by maintenance).
const systemUser = "ctigate"

type ledgerHead struct {
	seq    uint64
	micros int64
	hash   string
}

func readHead(tx *bbolt.Tx) (ledgerHead, error) {
	v := tx.Bucket(bucketMeta).Get(keyLedgerHead)
	if v == nil {
		return ledgerHead{}, nil
	}
	if len(v) != 16+64 {
		return ledgerHead{}, fmt.Errorf("ledger head: %w", errCorrupt)
	}
	return ledgerHead{
		seq:    binary.BigEndian.Uint64(v),
		micros: int64(binary.BigEndian.Uint64(v[8:])),
		hash:   string(v[16:]),
	}, nil
}

// appendLedger appends the prepared entries ps in tx and, when out is not
// nil, stores the sealed entries in out[i]. It may run more than once
// (group commit): it recomputes all of it. The entries were encoded
// outside the transaction; here they are only placed, hashed and put,
// and what the ledger's index needs of them noted in w for the feed.
func appendLedger(w *writeTx, ps []*custody.Prepared, out []custody.Entry, now time.Time) error {
	if len(ps) == 0 {
		return nil
	}
	tx := w.tx
	head, err := readHead(tx)
	if err != nil {
		return err
	}
	b := tx.Bucket(bucketLedger)
	b.FillPercent = 1
	byObj := tx.Bucket(bucketLedgerByObject)
	byObj.FillPercent = 1
	tags := make([]byte, 0, 8*len(ps))
	// Entry times never go backwards, whatever the clock does.
	micros := max(now.UnixMicro(), head.micros)
	ts := custody.FormatTime(time.UnixMicro(micros))
	prev := custody.Head{Seq: head.seq, Hash: head.hash}
	for i, p := range ps {
		line, e := p.Seal(prev, ts)
		if out != nil {
			out[i] = e
		}
		if err := b.Put(seqKey(e.Seq), line); err != nil {
			return err
		}
		var tag uint64
		if e.ObjectID != "" {
			tag = objectTag(e.ObjectID)
		}
		tags = binary.BigEndian.AppendUint64(tags, tag)
		w.ledger = append(w.ledger, indexedOf(&e))
		prev = custody.Head{Seq: e.Seq, Hash: e.Hash}
	}
	if err := byObj.Put(seqKey(head.seq+1), tags); err != nil {
		return err
	}
	v := make([]byte, 0, 16+64)
	v = binary.BigEndian.AppendUint64(v, prev.Seq)
	v = binary.BigEndian.AppendUint64(v, uint64(micros))
	v = append(v, prev.Hash...)
	return tx.Bucket(bucketMeta).Put(keyLedgerHead, v)
}

// prepare encodes entries for appendLedger, outside the transaction.
func prepare(entries []custody.Entry) ([]*custody.Prepared, error) {
	ps := make([]*custody.Prepared, len(entries))
	for i := range entries {
		p, err := custody.Prepare(&entries[i])
		if err != nil {
			return nil, fmt.Errorf("entry %d: %v", i, err)
		}
		ps[i] = p
	}
	return ps, nil
}

func validEntries(entries []custody.Entry) error {
	for i := range entries {
		if err := entries[i].Valid(); err != nil {
			return fmt.Errorf("entry %d: %v", i, err)
		}
	}
	return nil
}

// AppendEntries appends entries in one write transaction (shared with
// concurrent writers by group commit).
func (s *Store) AppendEntries(ctx context.Context, entries []custody.Entry) ([]custody.Entry, error) {
	const op = "bolt.AppendEntries"
	if err := validEntries(entries); err != nil {
		return nil, ctigate.E(op, ctigate.Invalid, err.Error())
	}
	if err := s.enter(op); err != nil {
		return nil, err
	}
	defer s.leave()
	if err := ctx.Err(); err != nil {
		return nil, ctxErr(op, err)
	}
	ps, err := prepare(entries)
	if err != nil {
		return nil, ctigate.E(op, ctigate.Invalid, err.Error())
	}
	out := make([]custody.Entry, len(entries))
	err = s.write(len(out), 0, func(w *writeTx) error {
		return appendLedger(w, ps, out, s.clock())
	})
	if err != nil {
		return nil, ctigate.E(op, err)
	}
	return out, nil
}

// LedgerHead returns the newest entry's seq, hash and time.
func (s *Store) LedgerHead(ctx context.Context) (custody.Head, error) {
	const op = "bolt.LedgerHead"
	if err := s.enter(op); err != nil {
		return custody.Head{}, err
	}
	defer s.leave()
	var h ledgerHead
	err := s.db.View(func(tx *bbolt.Tx) (err error) {
		h, err = readHead(tx)
		return err
	})
	if err != nil {
		return custody.Head{}, ctigate.E(op, err)
	}
	if h.seq == 0 {
		return custody.Head{}, nil
	}
	return custody.Head{Seq: h.seq, Hash: h.hash, Time: custody.FormatTime(time.UnixMicro(h.micros))}, nil
}

// LedgerEntry returns the entry seq.
func (s *Store) LedgerEntry(ctx context.Context, seq uint64) (custody.Entry, error) {
	const op = "bolt.LedgerEntry"
	es, err := s.LedgerEntries(ctx, store.LedgerQuery{After: seq - 1, Through: seq, Limit: 1})
	if err != nil {
		return custody.Entry{}, err
	}
	if seq == 0 || len(es) == 0 {
		return custody.Entry{}, ctigate.E(op, ctigate.NotFound, "no such ledger entry")
	}
	return es[0], nil
}

// LedgerEntries returns entries matching q in Seq order.
func (s *Store) LedgerEntries(ctx context.Context, q store.LedgerQuery) ([]custody.Entry, error) {
	var out []custody.Entry
	if q.ObjectID == "" && q.Through > q.After {
		// A range (the indexer's batches): sized once, not grown (an
		// entry is large).
		out = make([]custody.Entry, 0, min(q.Through-q.After, uint64(ledgerLimit(q.Limit))))
	}
	err := s.ledgerScan(ctx, "bolt.LedgerEntries", q, func(seq uint64, line []byte) error {
		var e custody.Entry
		if err := json.Unmarshal(line, &e); err != nil {
			return fmt.Errorf("ledger entry %d: %w", seq, errCorrupt)
		}
		if q.Match(&e) {
			out = append(out, e)
		}
		return nil
	}, func() bool { return len(out) >= ledgerLimit(q.Limit) })
	return out, err
}

// LedgerLines calls fn with the JSON text of each entry in (after,
// through] (through 0: to the head), in order, unfiltered: an export. The
// text is valid only during the call.
func (s *Store) LedgerLines(ctx context.Context, after, through uint64, fn func(seq uint64, line []byte) error) error {
	return s.ledgerScan(ctx, "bolt.LedgerLines", store.LedgerQuery{After: after, Through: through}, fn, func() bool { return false })
}

// objectTag is a 64-bit digest of an object id for bucketLedgerByObject
// (FNV-1a; a collision only costs a candidate read). Never zero.
func objectTag(id string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(id); i++ {
		h ^= uint64(id[i])
		h *= 1099511628211
	}
	return h | 1
}

func ledgerLimit(n int) int {
	if n <= 0 {
		return store.DefaultLedgerLimit
	}
	return min(n, store.MaxLedgerLimit)
}

func (s *Store) ledgerScan(ctx context.Context, op string, q store.LedgerQuery, fn func(seq uint64, line []byte) error, full func() bool) error {
	if len(q.ObjectID) > maxIDLen {
		return ctigate.E(op, ctigate.Invalid, "object id too long")
	}
	if err := s.enter(op); err != nil {
		return err
	}
	defer s.leave()
	if err := ctx.Err(); err != nil {
		return ctxErr(op, err)
	}
	if q.After == ^uint64(0) {
		return nil
	}
	inRange := func(seq uint64) bool { return q.Through == 0 || seq <= q.Through }
	err := s.db.View(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketLedger)
		if q.ObjectID == "" {
			// A scan may read the whole ledger (an export, a replay at
			// start): the trimmer hears of it as it goes.
			var read int64
			defer func() { s.noteRead(read) }()
			c := b.Cursor()
			for k, v := c.Seek(seqKey(q.After + 1)); k != nil; k, v = c.Next() {
				seq := binary.BigEndian.Uint64(k)
				if !inRange(seq) {
					return nil
				}
				if read += int64(len(k) + len(v)); read >= 1<<20 {
					s.noteRead(read)
					read = 0
				}
				if err := fn(seq, v); err != nil {
					return err
				}
				if full() {
					return nil
				}
			}
			return nil
		}
		// Entries about the object: from the index as far as it is built,
		// then from the tags of the appends after it.
		emit := func(seq uint64) (bool, error) {
			v := b.Get(seqKey(seq))
			if v == nil {
				return false, fmt.Errorf("ledger entry %d: %w", seq, errCorrupt)
			}
			if err := fn(seq, v); err != nil {
				return false, err
			}
			return full(), nil
		}
		indexed := readIndexed(tx)
		if q.Through != 0 {
			indexed = min(indexed, q.Through)
		}
		seqs, err := objectSeqs(tx, q.ObjectID, q.After, indexed)
		if err != nil {
			return err
		}
		for _, seq := range seqs {
			if done, err := emit(seq); done || err != nil {
				return err
			}
		}
		after := max(q.After, indexed)
		tag := objectTag(q.ObjectID)
		c := tx.Bucket(bucketLedgerByObject).Cursor()
		// The append holding after+1 starts at or before it.
		k, tags := c.Seek(seqKey(after + 1))
		switch {
		case k == nil:
			k, tags = c.Last()
		case binary.BigEndian.Uint64(k) > after+1:
			if k, tags = c.Prev(); k == nil {
				k, tags = c.First()
			}
		}
		for ; k != nil; k, tags = c.Next() {
			if len(k) != 8 || len(tags)%8 != 0 {
				return errCorrupt
			}
			first := binary.BigEndian.Uint64(k)
			for i := range len(tags) / 8 {
				seq := first + uint64(i)
				if seq <= after || binary.BigEndian.Uint64(tags[8*i:]) != tag {
					continue
				}
				if !inRange(seq) {
					return nil
				}
				if done, err := emit(seq); done || err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return ctigate.E(op, err)
	}
	return nil
}

// receivedEntries appends to out the received entries (tmpl, of
// receivedTemplates) of the objects results report new.
func receivedEntries(results []store.AddResult, tmpl []*custody.Prepared, out []*custody.Prepared) []*custody.Prepared {
	for i := range results {
		if results[i].Existed {
			continue
		}
		out = append(out, tmpl[i])
	}
	return out
}

// receivedTemplates prepares, outside the write transaction, the received
// entry of each object.
func receivedTemplates(actor store.Actor, collection string, objs []store.Object) ([]*custody.Prepared, error) {
	out := make([]*custody.Prepared, len(objs))
	for i := range objs {
		o := &objs[i]
		p, err := custody.Prepare(&custody.Entry{
			Action: custody.Received, User: actor.User, Org: actor.Org,
			ObjectID: o.ID, ObjectVersion: custody.FormatVersion(o.Version), SHA256: custody.HexHash(o.Hash),
			Collection: collection,
		})
		if err != nil {
			return nil, fmt.Errorf("object %d: %v", i, err)
		}
		out[i] = p
	}
	return out, nil
}

// decisionEntries returns the ledger entries of decisions.
func decisionEntries(actor store.Actor, ds []store.Decision) []custody.Entry {
	user := actor.User
	if user == "" {
		user = systemUser
	}
	out := make([]custody.Entry, len(ds))
	for i := range ds {
		d := &ds[i]
		out[i] = custody.Entry{
			Action: d.Action, User: user, Org: actor.Org,
			ObjectID: d.ObjectID, ObjectVersion: custody.FormatVersion(d.ObjectVersion), SHA256: custody.HexHash(d.OriginalSHA256),
			Collection: d.Collection, Source: d.Source, Route: d.Route, PolicyVersion: d.PolicyVersion,
			Reason: d.Reason, Detail: d.Detail, Removed: d.Removed, PublishedSHA256: custody.HexHash(d.PublishedSHA256),
		}
	}
	return out
}
