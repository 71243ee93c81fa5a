package search

import (
	"context"
	"crypto/sha256"
	"fmt"
	"reflect"
	"testing"

	"github.com/ctigate/ctigate/store"
)

// TestExtractCache: the indexer's entries for a version are the same
// whether its extraction came from the cache (a route's copy of a source
// version, same hash) or not; the cache holds at most extractCacheSize
// extractions and always the latest half of that, evicting the oldest; what it hands out can be appended to
// without changing what it holds.
func TestExtractCache(t *testing.T) {
	raw := []byte(`{"type":"indicator","spec_version":"2.1","id":"indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f",` +
		`"created":"2026-01-01T00:00:00.000Z","modified":"2026-01-01T00:00:00.000Z","labels":["c2"],` +
		`"pattern":"[ipv4-addr:value = '198.51.100.7'] OR [domain-name:value = 'evil.example']","pattern_type":"stix","valid_from":"2026-01-01T00:00:00Z",` +
		`"object_marking_refs":["marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb"]}`)
	o := store.Object{ID: "indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f", Type: "indicator", Raw: raw, Hash: sha256.Sum256(raw), Producer: "CERT-A"}
	x := NewIndexer(IndexerOptions{})
	ctx := context.Background()
	first, err := x.Entries(ctx, "inbound", []store.Object{o})
	if err != nil || len(first) != 2 {
		t.Fatalf("entries %v, %v; want 2", first, err)
	}
	if _, ok := x.extracts.get(o.Hash); !ok {
		t.Fatal("the extraction was not cached")
	}
	again, err := x.Entries(ctx, "route", []store.Object{o})
	if err != nil {
		t.Fatal(err)
	}
	for i := range again {
		again[i].Collection = "inbound"
	}
	if !reflect.DeepEqual(first, again) {
		t.Fatalf("from the cache: %+v\nextracted: %+v", again, first)
	}
	if first[0].TLP != "TLP:GREEN" {
		t.Fatalf("entries labelled %s, want TLP:GREEN", first[0].TLP)
	}
	// Another producer's copy (its own registry of statement markings):
	// the TLP level is the object's alone, so the cached label holds.
	o.Producer = "CERT-B"
	other, err := x.Entries(ctx, "inbound", []store.Object{o})
	if err != nil || len(other) != 2 || other[0].TLP != "TLP:GREEN" || other[1].Producer != "CERT-B" {
		t.Fatalf("another producer's copy: %+v, %v", other, err)
	}

	// Clipped: an append by a caller reallocates instead of writing
	// into the cached array.
	ex, _ := x.extracts.get(o.Hash)
	if cap(ex.Observables) != len(ex.Observables) || cap(ex.Labels) != len(ex.Labels) {
		t.Fatalf("cached slices have room to append into: observables %d/%d, labels %d/%d",
			len(ex.Observables), cap(ex.Observables), len(ex.Labels), cap(ex.Labels))
	}

	// Bounded: at most extractCacheSize, and always the latest half of
	// that; the oldest go first.
	var c extractCache
	key := func(i int) [32]byte { return sha256.Sum256(fmt.Append(nil, i)) }
	for i := range 3*extractCacheSize + 10 {
		c.put(key(i), extraction{Extracted: Extracted{Labels: []string{fmt.Sprint(i)}}})
		if n := c.len(); n > extractCacheSize {
			t.Fatalf("after %d puts the cache holds %d extractions, bound %d", i+1, n, extractCacheSize)
		}
		if i%1000 == 0 || i > 3*extractCacheSize {
			for j := max(0, i-extractCacheSize/2+1); j <= i; j += 97 {
				if ex, ok := c.get(key(j)); !ok || ex.Labels[0] != fmt.Sprint(j) {
					t.Fatalf("after %d puts, put %d of the latest %d is missing or wrong: %v %v", i+1, j, extractCacheSize/2, ex, ok)
				}
			}
		}
	}
	if _, ok := c.get(key(0)); ok {
		t.Error("the oldest extraction was not evicted")
	}
	if _, ok := c.get(key(3*extractCacheSize - extractCacheSize)); ok {
		t.Error("an extraction older than the bound is still held")
	}
}

// len returns how many extractions the cache holds.
func (c *extractCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.cur) + len(c.older)
}
