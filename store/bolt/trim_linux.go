//go:build linux

package bolt

import "golang.org/x/sys/unix"

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
