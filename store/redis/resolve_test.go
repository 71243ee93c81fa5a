package redis_test

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/ctigate/ctigate/store"
)

// BenchmarkResolveAdded resolves the 1,000 date_added of a delivered page
// in a collection of 100,000 versions, a tenth of which were deleted: a
// page of consecutive versions, one of every 50th (a filtered page),
// 1,000 values in random order all over the collection, and a page of
// consecutive versions that have all expired since. One op is one call.
func BenchmarkResolveAdded(b *testing.B) {
	const n, page = 100_000, 1000
	s := benchStore(b)
	rng := rand.New(rand.NewPCG(1, 2))
	var das []time.Time
	for start := 0; start < n; start += 1000 {
		objs := benchObjects(start, 1000)
		res, err := s.AddObjects(b.Context(), "bench", objs)
		if err != nil {
			b.Fatal(err)
		}
		for i, r := range res {
			das = append(das, r.DateAdded)
			if rng.IntN(10) == 0 {
				if _, err := s.DeleteObject(b.Context(), "bench", objs[i].ID, nil, nil); err != nil {
					b.Fatal(err)
				}
			}
		}
	}
	// A last page, all expired.
	objs := benchObjects(n, page)
	res, err := s.AddObjects(b.Context(), "bench", objs)
	if err != nil {
		b.Fatal(err)
	}
	expired := make([]time.Time, page)
	ctx := store.WithRemoval(b.Context(), store.Removal{Kind: store.RemovalExpired})
	for i, r := range res {
		expired[i] = r.DateAdded
		if _, err := s.DeleteObject(ctx, "bench", objs[i].ID, nil, nil); err != nil {
			b.Fatal(err)
		}
	}
	var sparse, random []time.Time
	for i := range page {
		sparse = append(sparse, das[n/4+50*i])
		random = append(random, das[rng.IntN(n)])
	}
	for _, p := range []struct {
		name string
		das  []time.Time
	}{{"consecutive", das[n/2 : n/2+page]}, {"every50th", sparse}, {"random", random}, {"expired", expired}} {
		b.Run(p.name, func(b *testing.B) {
			for b.Loop() {
				got, err := s.ResolveAdded(b.Context(), "bench", p.das)
				if err != nil {
					b.Fatal(err)
				}
				if !got[0].Found || !got[len(got)-1].Found {
					b.Fatalf("unresolved: %+v", got[0])
				}
			}
		})
	}
}
