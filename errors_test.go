package ctigate_test

import (
	"errors"
	"fmt"
	"io/fs"
	"syscall"
	"testing"

	"github.com/ctigate/ctigate"
)

// TestKindOfStorageFull: a write refused for want of space is Full however
// it is wrapped (bbolt returns the *fs.PathError of a failed write as is,
// but flattens the failed growth of its file into text), unless a kind
// was set on the way; other errors keep their kinds.
func TestKindOfStorageFull(t *testing.T) {
	write := &fs.PathError{Op: "write", Path: "/data/ctigate.db", Err: syscall.ENOSPC}
	grow := fmt.Errorf("file resize error: %s", &fs.PathError{Op: "truncate", Path: "/data/ctigate.db", Err: syscall.EFBIG})
	quota := fmt.Errorf("fdatasync: %w", syscall.EDQUOT)
	for _, c := range []struct {
		name string
		err  error
		want ctigate.Kind
	}{
		{"bare ENOSPC", syscall.ENOSPC, ctigate.Full},
		{"write wrapped by the store", ctigate.E("bolt.AddObjects", write), ctigate.Full},
		{"growth flattened into text", ctigate.E("bolt.PutStatus", grow), ctigate.Full},
		{"quota", ctigate.E("bolt.AppendEntries", fmt.Errorf("commit: %w", quota)), ctigate.Full},
		{"twice wrapped", fmt.Errorf("route %q: %w", "r", ctigate.E("bolt.AddObjectsCheckpoint", write)), ctigate.Full},
		{"kind set on the way", ctigate.E("x", ctigate.Unavailable, write, "store down"), ctigate.Unavailable},
		{"other I/O error", ctigate.E("bolt.AddObjects", &fs.PathError{Op: "write", Path: "f", Err: syscall.EIO}), ctigate.Internal},
		{"plain error", errors.New("boom"), ctigate.Internal},
		{"nil", nil, ctigate.Internal},
	} {
		if got := ctigate.KindOf(c.err); got != c.want {
			t.Errorf("%s: KindOf(%v) = %v, want %v", c.name, c.err, got, c.want)
		}
	}
	if got := ctigate.Full.String(); got != "storage full" {
		t.Errorf("Full.String() = %q", got)
	}
	// No message of its own: the HTTP layer describes it.
	if msg := ctigate.MessageOf(ctigate.E("bolt.AddObjects", write)); msg != "" {
		t.Errorf("MessageOf = %q, want none", msg)
	}
}
