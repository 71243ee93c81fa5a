//go:build !linux

package load

import "syscall"

// childProcAttr has nothing to add outside Linux.
func childProcAttr() *syscall.SysProcAttr { return nil }

// readProcMemory is not available without Linux's /proc.
func readProcMemory(int) (procMemory, error) { return procMemory{}, errNoProc }

// loadAverage is not read outside Linux.
func loadAverage() (float64, bool) { return 0, false }
