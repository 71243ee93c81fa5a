package bolt

import (
	"os"

	"golang.org/x/sys/unix"
)

// fallocate allocates size bytes of f's blocks at off, growing the file.
func fallocate(f *os.File, off, size int64) error {
	return unix.Fallocate(int(f.Fd()), 0, off, size)
}
