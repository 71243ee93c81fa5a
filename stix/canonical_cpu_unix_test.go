//go:build unix

package stix

import (
	"syscall"
	"testing"
	"time"
)

// processCPU returns the CPU time the process has used so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// cpuTimer measures the CPU time of a benchmark. On a shared machine the
// wall time per operation grows with the other processes' load; with -cpu 1
// the process's CPU time does not (much), so benchmarks report both.
type cpuTimer struct{ start time.Duration }

func startCPU(b *testing.B) cpuTimer {
	b.Helper()
	b.ResetTimer()
	return cpuTimer{processCPU()}
}

// report adds cpu-ns/op and objects/cpu-s (objects per second of CPU
// time, one object per operation times perOp) to the benchmark's metrics.
func (c cpuTimer) report(b *testing.B, perOp int) {
	b.Helper()
	used := processCPU() - c.start
	if used <= 0 || b.N == 0 {
		return
	}
	b.ReportMetric(float64(used.Nanoseconds())/float64(b.N), "cpu-ns/op")
	b.ReportMetric(float64(b.N*perOp)/used.Seconds(), "objects/cpu-s")
}
