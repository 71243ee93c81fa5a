package bolt

import (
	"encoding/binary"

	"go.etcd.io/bbolt"
)

// A collection created by this build keeps each version's bytes, hash and
// producer in one value of its body bucket, beside its index entry:
//
//	body     dateKey -> flags (1 byte), then the hash value (hashValueLen
//	         bytes: the SHA-256 of the canonical form, then the delivery
//	         leaf) when flags&bodyHash, then uvarint len(producer) and
//	         producer when flags&bodyProducer, then the producer's
//	         original bytes (not empty)
//
// Collections created by earlier builds keep these in three buckets
// (raw, hash, producer: encoding.go), and go on doing so; a collection
// holds one layout or the other, told apart by its raw bucket. A version
// written into three buckets cost three Puts where one does, and each
// commit wrote a leaf and its branch pages for each: with the inbound copy
// and fan-out's two routes, 12 Puts for each pushed object where 6 do now
// (docs/performance.md).
var bucketBody = []byte("body")

const (
	bodyHash     byte = 1 << iota // the hash value follows the flags
	bodyProducer                  // the producer follows
)

// appendBody appends the body value of a version to buf: hash is nil when
// the writer gave none. It returns buf, the value and, when hash is not
// nil, the hash value within it, whose leaf the transaction fills in.
func appendBody(buf []byte, hash []byte, producer string, raw []byte) (_, body, hv []byte) {
	start := len(buf)
	var flags byte
	if hash != nil {
		flags |= bodyHash
	}
	if producer != "" {
		flags |= bodyProducer
	}
	buf = append(buf, flags)
	if hash != nil {
		buf = append(buf, hash...)
		buf = append(buf, make([]byte, hashValueLen-len(hash))...)
	}
	if producer != "" {
		buf = binary.AppendUvarint(buf, uint64(len(producer)))
		buf = append(buf, producer...)
	}
	buf = append(buf, raw...)
	if hash != nil { // taken last: the appends above may move buf
		hv = buf[start+1 : start+1+hashValueLen : start+1+hashValueLen]
	}
	return buf, buf[start:len(buf):len(buf)], hv
}

// decodeBody splits a body value. Its slices alias v.
func decodeBody(v []byte) (hv, producer, raw []byte, err error) {
	if len(v) < 1 || v[0]&^(bodyHash|bodyProducer) != 0 {
		return nil, nil, nil, errCorrupt
	}
	flags, rest := v[0], v[1:]
	if flags&bodyHash != 0 {
		if len(rest) < hashValueLen {
			return nil, nil, nil, errCorrupt
		}
		hv, rest = rest[:hashValueLen:hashValueLen], rest[hashValueLen:]
	}
	if flags&bodyProducer != 0 {
		n, w := binary.Uvarint(rest)
		if w <= 0 || n == 0 || n > uint64(len(rest)-w) {
			return nil, nil, nil, errCorrupt
		}
		producer, rest = rest[w:w+int(n):w+int(n)], rest[w+int(n):]
	}
	if len(rest) == 0 {
		return nil, nil, nil, errCorrupt
	}
	return hv, producer, rest, nil
}

// hashProducer returns the hash value and the producer of the version at
// k: each nil when the collection keeps none for it.
func (cb *collectionBuckets) hashProducer(k []byte) (hv, producer []byte, err error) {
	if cb.body != nil {
		v := cb.body.Get(k)
		if v == nil {
			return nil, nil, nil
		}
		hv, producer, _, err = decodeBody(v)
		return hv, producer, err
	}
	if cb.hash != nil {
		hv = cb.hash.Get(k)
	}
	if cb.producer != nil {
		producer = cb.producer.Get(k)
	}
	return hv, producer, nil
}

// put stores the version at k: its body value in the body layout, else
// raw, hash value (when hv is not nil) and producer (when not empty) in
// their buckets.
func (cb *collectionBuckets) put(k, body, hv []byte, raw []byte, producer string) error {
	if cb.body != nil {
		return cb.body.Put(k, body)
	}
	if err := cb.raw.Put(k, raw); err != nil {
		return err
	}
	if hv != nil {
		if err := cb.hash.Put(k, hv); err != nil {
			return err
		}
	}
	if producer != "" {
		return cb.producer.Put(k, []byte(producer))
	}
	return nil
}

// del removes what put stored at k.
func (cb *collectionBuckets) del(k []byte) error {
	if cb.body != nil {
		return cb.body.Delete(k)
	}
	if err := cb.raw.Delete(k); err != nil {
		return err
	}
	for _, b := range []*bbolt.Bucket{cb.hash, cb.producer} {
		if b != nil {
			if err := b.Delete(k); err != nil {
				return err
			}
		}
	}
	return nil
}
