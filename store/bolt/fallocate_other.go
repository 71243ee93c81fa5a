//go:build unix && !linux

package bolt

import (
	"errors"
	"os"
)

// fallocate is not done here: without it a write to a page of a mapped
// sparse file could fault on a full disk, so the keydir stays anonymous.
func fallocate(f *os.File, off, size int64) error {
	return errors.New("fallocate: not supported")
}
