package search

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"testing"

	"github.com/ctigate/ctigate/store"
)

// BenchmarkEntriesRoutes measures the index entries of a batch of 500
// indicators as the gateway makes them: for the inbound collection, then
// for two routes' unchanged copies (the same bytes). One op is the batch
// in the three collections.
//
//	go test ./search -run '^$' -bench EntriesRoutes
func BenchmarkEntriesRoutes(b *testing.B) {
	objs := make([]store.Object, 500)
	for i := range objs {
		id := fmt.Sprintf("indicator--8e2e2d2b-17d4-4cbf-938f-%012d", i)
		raw := fmt.Appendf(nil, `{"type":"indicator","spec_version":"2.1","id":%q,"created":"2026-01-01T00:00:00.000Z","modified":"2026-01-01T00:00:00.000Z",`+
			`"name":"C2 %d","pattern":"[ipv4-addr:value = '198.51.%d.%d'] OR [url:value = 'http://evil%d.example/a']","pattern_type":"stix","valid_from":"2026-01-01T00:00:00Z",`+
			`"object_marking_refs":["marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb"]}`, id, i, i/256, i%256, i)
		objs[i] = store.Object{ID: id, Type: "indicator", Raw: raw, Hash: sha256.Sum256(raw), Producer: "CERT-A"}
	}
	ctx := context.Background()
	x := NewIndexer(IndexerOptions{})
	b.ReportAllocs()
	n := uint64(0)
	for b.Loop() {
		// New bytes each batch, as in a push: hashes the cache has not seen.
		n++
		for i := range objs {
			binary.BigEndian.PutUint64(objs[i].Hash[:8], n)
		}
		for _, coll := range []string{"inbound", "law-enforcement", "judiciary"} {
			if _, err := x.Entries(ctx, coll, objs); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(objs)), "ns/object")
}
