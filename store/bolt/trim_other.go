//go:build !linux

package bolt

// trimSupported is false where dropping the file mapping is not implemented;
// no trimmer runs there.
const trimSupported = false

func dropMapping(addr uintptr, size int64) error { return nil }

func residentFileBytes() (int64, bool) { return 0, false }
