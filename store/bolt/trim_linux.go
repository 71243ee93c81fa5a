//go:build linux

package bolt

import (
	"bytes"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

const trimSupported = true

// dropMapping calls madvise(MADV_DONTNEED) on the size bytes mapped at addr.
// It uses the raw system call because the mapping's address comes from bbolt
// as a uintptr; converting it back to a pointer to build a slice for
// unix.Madvise is what go vet's unsafeptr check forbids.
func dropMapping(addr uintptr, size int64) error {
	if addr == 0 || size <= 0 {
		return nil
	}
	_, _, errno := unix.Syscall(unix.SYS_MADVISE, addr, uintptr(size), unix.MADV_DONTNEED)
	if errno != 0 {
		return errno
	}
	return nil
}

// residentFileBytes returns the process's resident shared pages
// (/proc/self/statm's third field: file-backed and shared memory), in
// bytes, but for the keydirs' files (pagedBytes, counted as if wholly
// resident): they are not the mappings a trim drops.
func residentFileBytes() (int64, bool) {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0, false
	}
	f := bytes.Fields(b)
	if len(f) < 3 {
		return 0, false
	}
	pages, err := strconv.ParseInt(string(f[2]), 10, 64)
	if err != nil {
		return 0, false
	}
	return max(0, pages*int64(os.Getpagesize())-pagedBytes.Load()), true
}
