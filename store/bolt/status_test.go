package bolt

import (
	"encoding/json"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"github.com/ctigate/ctigate/store"
)

// envelopeStatus is the status of an envelope of n indicators, as the
// server writes it.
func envelopeStatus(n int) store.Status {
	rng := rand.New(rand.NewPCG(1, 1))
	st := store.Status{
		ID: "2d086da7-4bdc-4f91-900e-d77486753710", APIRoot: "exchange", Collection: "csirt-inbound",
		Owner: "cert-a", Status: "complete", RequestTimestamp: time.Date(2026, 3, 1, 12, 0, 0, 123456789, time.UTC),
		TotalCount: n,
	}
	for i := range n {
		msg := "added"
		if i%50 == 7 {
			msg = "this version was already in the collection"
		}
		st.Successes = append(st.Successes, store.StatusDetail{
			ID:      "indicator--" + uuid4(rng),
			Version: time.Date(2026, 3, 1, 12, 0, 0, i*1e6, time.UTC).Format("2006-01-02T15:04:05.000Z"),
			Message: msg,
		})
	}
	return st
}

func TestStatusEncoding(t *testing.T) {
	big := envelopeStatus(500)
	odd := store.Status{
		ID: "x", RequestTimestamp: time.Date(1, 1, 1, 0, 0, 0, 1, time.UTC), TotalCount: -1,
		Failures: []store.StatusDetail{
			{ID: "objects[3]", Message: "no id"},
			{ID: "indicator--3ADE5BFF-B17B-4BE5-BB26-71B00BD81ECC", Version: "2026-03-01T12:00:00.1Z"},
			{ID: "malware--3ade5bff-b17b-4be5-bb26-71b00bd81ecc", Version: "2026-03-01T12:00:00.123456789Z", Message: "ü"},
			{ID: "malware--3ade5bff-b17b-4be5-bb26-71b00bd81ecc", Version: "2026-03-01T12:00:00Z"},
			{ID: "indicator--3ade5bff-b17b-4be5-bb26-71b00bd81ecc", Version: "2026-03-01T12:00:00.000+00:00"},
			{ID: "indicator--", Version: "2026-02-30T12:00:00Z"},
			{ID: "", Version: "1969-12-31T23:59:59.999999Z"},
			{ID: "a--3ade5bff-b17b-4be5-bb26-71b00bd81ecc", Version: "0001-01-01T00:00:00Z"},
		},
		Pendings: []store.StatusDetail{{ID: "p"}},
	}
	for _, st := range []store.Status{big, odd, {ID: "empty"}} {
		b := encodeStatus(&st)
		got, err := decodeStatus(b)
		if err != nil {
			t.Fatalf("decodeStatus(encodeStatus(%s)): %v", st.ID, err)
		}
		if !reflect.DeepEqual(got, st) {
			t.Fatalf("round trip of %s:\n got %+v\nwant %+v", st.ID, got, st)
		}
		for n := range len(b) {
			if _, err := decodeStatus(b[:n]); err == nil {
				t.Fatalf("decodeStatus of %d of %d bytes of %s: got no error", n, len(b), st.ID)
			}
		}
	}
	j, _ := json.Marshal(big)
	b := encodeStatus(&big)
	t.Logf("status of 500 objects: %d bytes (JSON %d)", len(b), len(j))
	if len(b) > 16<<10 {
		t.Fatalf("status of 500 objects takes %d bytes, want at most 16 KiB", len(b))
	}
}

func FuzzDecodeStatus(f *testing.F) {
	st := envelopeStatus(3)
	f.Add(encodeStatus(&st))
	f.Fuzz(func(t *testing.T, b []byte) {
		st, err := decodeStatus(b)
		if err != nil {
			return
		}
		again, err := decodeStatus(encodeStatus(&st))
		if err != nil || !reflect.DeepEqual(again, st) {
			t.Fatalf("re-encoding %x: %v", b, err)
		}
	})
}
