//go:build linux

package load

import (
	"os"
	"strings"
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

// TestCPUModel: bench names the processor (the first "model name" of
// /proc/cpuinfo) in its header, and nothing where there is none.
func TestCPUModel(t *testing.T) {
	info := []byte("processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC  7B13 64-Core Processor\nflags\t\t: fpu\n\nprocessor\t: 1\nmodel name\t: Other\n")
	if got := parseCPUModel(info); got != "AMD EPYC 7B13 64-Core Processor" {
		t.Fatalf("parseCPUModel = %q", got)
	}
	if got := parseCPUModel([]byte("processor\t: 0\nmodel\t: 1\n")); got != "" {
		t.Fatalf("parseCPUModel without a model name = %q", got)
	}
	if m := cpuModel(); m == "" {
		t.Fatal("no model name read from this machine's /proc/cpuinfo")
	}
	var b strings.Builder
	r := Result{GoVersion: "go1", OS: "linux", Arch: "amd64", GOMAXPROCS: 2, NumCPU: 2, CPUModel: "AMD EPYC"}
	if err := r.writeTable(&b); err != nil {
		t.Fatal(err)
	}
	if first, _, _ := strings.Cut(b.String(), "\n"); !strings.HasSuffix(first, "CPUs=2 (AMD EPYC)") {
		t.Fatalf("header %q does not name the processor", first)
	}
}
