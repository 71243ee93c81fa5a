//go:build !linux

package load

import (
	"syscall"
	"time"
)

// childProcAttr has nothing to add outside Linux.
func childProcAttr() *syscall.SysProcAttr { return nil }

// readProcMemory is not available without Linux's /proc.
func readProcMemory(int) (procMemory, error) { return procMemory{}, errNoProc }

// readProcCPU is not available without Linux's /proc.
func readProcCPU(int) (time.Duration, error) { return 0, errNoProc }

// loadAverage is not read outside Linux.
func loadAverage() (float64, bool) { return 0, false }

// cpuModel is not read outside Linux.
func cpuModel() string { return "" }
