//go:build linux

package load

import (
	"os"
	"syscall"
	"testing"
	"time"
)

// TestReadProcCPU: the CPU time read from /proc for this process agrees
// with getrusage's, to /proc's 10 ms steps, and grows with work done.
func TestReadProcCPU(t *testing.T) {
	before, err := readProcCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	// Busy until /proc has counted 50 ms more (tests of other packages
	// may share the processors, so wall time says little).
	after := before
	for deadline := time.Now().Add(10 * time.Second); after-before < 50*time.Millisecond; {
		if time.Now().After(deadline) {
			t.Fatalf("10 s of busy loop read as %v of CPU", after-before)
		}
		for start := time.Now(); time.Since(start) < time.Millisecond; {
		}
		if after, err = readProcCPU(os.Getpid()); err != nil {
			t.Fatal(err)
		}
	}
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	rusage := time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	if diff := (rusage - after).Abs(); diff > 50*time.Millisecond {
		t.Errorf("/proc says %v of CPU, getrusage %v", after, rusage)
	}
	if _, err := readProcCPU(1 << 30); err == nil {
		t.Error("no error for a process that does not exist")
	}
}
