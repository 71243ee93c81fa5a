//go:build !unix

package stix

import "testing"

// cpuTimer reports nothing where the process's CPU time is not available
// (see canonical_cpu_unix_test.go).
type cpuTimer struct{}

func startCPU(b *testing.B) cpuTimer {
	b.Helper()
	b.ResetTimer()
	return cpuTimer{}
}

func (cpuTimer) report(*testing.B, int) {}
