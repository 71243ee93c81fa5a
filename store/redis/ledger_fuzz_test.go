package redis

import (
	"testing"

	"github.com/ctigate/ctigate/custody"
)

// FuzzLedgerParse: the decoders of what the ledger keeps in Redis (head,
// pending batches) reject malformed values with an error, never a panic,
// and accept what the writers produce.
func FuzzLedgerParse(f *testing.F) {
	s := &Store{prefix: "p"}
	l, _, err := s.encodePending(receivedEntry("indicator--a"), true)
	if err != nil {
		f.Fatal(err)
	}
	f.Add("3:1700000000000000\n" + l + "\n" + l)
	f.Add("1:0\n")
	f.Add("12:" + ledgerHead{seq: 7, micros: 5, hash: "0123456789012345678901234567890123456789012345678901234567890123"}.String())
	f.Add("x:y\n{")
	f.Fuzz(func(t *testing.T, v string) {
		if b, ins, err := s.parseBatch(v); err == nil {
			if n, err := batchNumber(v); err != nil || n != b {
				t.Fatalf("batchNumber(%q) = %d, %v; parseBatch says %d", v, n, err, b)
			}
			for _, in := range ins {
				if in.p == nil {
					t.Fatalf("parseBatch(%q): entry without its prepared form", v)
				}
			}
		}
		if h, err := parseHead(v); err == nil && h.seq != 0 {
			if g, err := parseHead(h.String()); err != nil || g != h {
				t.Fatalf("head %q does not round-trip: %+v, %v", v, g, err)
			}
		}
	})
}

func receivedEntry(id string) *custody.Entry {
	return &custody.Entry{Action: custody.Received, User: "cert-a", ObjectID: id, Collection: "in"}
}
