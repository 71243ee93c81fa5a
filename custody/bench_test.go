package custody

import (
	"testing"
	"time"

	"golang.org/x/mod/sumdb/tlog"
)

// BenchmarkPageRoot is the read path's work per page of 1,000 versions:
// each item's salt and leaf, and the page's tree hash.
func BenchmarkPageRoot(b *testing.B) {
	s := NewSalter([32]byte{1})
	base := time.Date(2026, 12, 6, 0, 0, 0, 0, time.UTC)
	leaves := make([]tlog.Hash, 1000)
	sum := [32]byte{0xab}
	for b.Loop() {
		p := s.Page("24f70a31-7be5-4fdd-8353-9784877646c1")
		for i := range leaves {
			leaves[i], _ = p.Leaf("indicator--6ba7b810-9dad-41d1-80b4-000000001234", base, base.Add(time.Duration(i)*time.Microsecond), &sum)
		}
		TreeRoot(leaves)
	}
}
