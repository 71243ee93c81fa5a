package bolt

import (
	"math/rand/v2"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/ctigate/ctigate/store"
)

// BenchmarkResolveAdded resolves the 1,000 date_added of a delivered page
// in a collection of 200,000 versions, a tenth of which were deleted: a
// page of consecutive versions, one of every 50th (a filtered page),
// 1,000 values in random order all over the collection, and a page of
// consecutive versions that have all expired since. One op is one call.
func BenchmarkResolveAdded(b *testing.B) {
	const n, page = 200_000, 1000
	s, err := Open(filepath.Join(b.TempDir(), "s.db"), Options{NoSync: true, Clock: func() time.Time { return benchT0 }})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	rng := rand.New(rand.NewPCG(1, 2))
	var das []time.Time
	for start := 0; start < n; start += 10_000 {
		objs := make([]store.Object, 10_000)
		for i := range objs {
			objs[i] = indicator(rng, "indicator--"+uuid4(rng), benchT0)
			objs[i].Hash[0] = byte(i)
		}
		res, err := s.AddObjects(b.Context(), "c", objs)
		if err != nil {
			b.Fatal(err)
		}
		for i, r := range res {
			das = append(das, r.DateAdded)
			if rng.IntN(10) == 0 {
				if _, err := s.DeleteObject(b.Context(), "c", objs[i].ID, nil, nil); err != nil {
					b.Fatal(err)
				}
			}
		}
	}
	// A last page, all expired.
	objs := make([]store.Object, page)
	for i := range objs {
		objs[i] = indicator(rng, "indicator--"+uuid4(rng), benchT0)
	}
	res, err := s.AddObjects(b.Context(), "c", objs)
	if err != nil {
		b.Fatal(err)
	}
	var expired []time.Time
	ctx := store.WithRemoval(b.Context(), store.Removal{Kind: store.RemovalExpired})
	for i, r := range res {
		expired = append(expired, r.DateAdded)
		if _, err := s.DeleteObject(ctx, "c", objs[i].ID, nil, nil); err != nil {
			b.Fatal(err)
		}
	}
	mid := n / 2
	pages := map[string][]time.Time{
		"consecutive": das[mid : mid+page],
	}
	var sparse, random []time.Time
	for i := range page {
		sparse = append(sparse, das[n/4+50*i])
		random = append(random, das[rng.IntN(n)])
	}
	pages["every50th"], pages["random"], pages["expired"] = sparse, random, expired
	for _, name := range []string{"consecutive", "every50th", "random", "expired"} {
		b.Run(name, func(b *testing.B) {
			p := pages[name]
			for b.Loop() {
				got, err := s.ResolveAdded(b.Context(), "c", p)
				if err != nil {
					b.Fatal(err)
				}
				if !got[0].Found || !got[len(got)-1].Found {
					b.Fatalf("unresolved: %+v", got[0])
				}
			}
		})
	}
	b.Run("sorted-random", func(b *testing.B) {
		p := slices.SortedFunc(slices.Values(random), time.Time.Compare)
		for b.Loop() {
			if _, err := s.ResolveAdded(b.Context(), "c", p); err != nil {
				b.Fatal(err)
			}
		}
	})
}
