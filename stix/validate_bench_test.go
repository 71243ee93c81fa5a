package stix

import "testing"

// BenchmarkValidateIndicator measures per-object validation alone (common
// properties and the indicator's rules) on the ~450-byte indicators of
// benchEnvelope, as DecodeEnvelope's fast path runs it.
func BenchmarkValidateIndicator(b *testing.B) {
	const n = 500
	items, err := DecodeEnvelope(benchEnvelope(n))
	if err != nil {
		b.Fatal(err)
	}
	size := 0
	for _, it := range items {
		if it.Err != nil {
			b.Fatal(it.Err)
		}
		size += len(it.Raw)
	}
	var (
		v  validator
		it Item
	)
	b.SetBytes(int64(size))
	b.ReportAllocs()
	for b.Loop() {
		for i := range items {
			v.item(&it, i, items[i].Raw, true)
		}
	}
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "objects/s")
}
