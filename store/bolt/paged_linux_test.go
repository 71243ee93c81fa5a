package bolt

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"unsafe"
)

// mappingOf returns the /proc/self/maps line of the mapping holding addr.
func mappingOf(t *testing.T, addr uintptr) string {
	t.Helper()
	f, err := os.Open("/proc/self/maps")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		lo, rest, _ := strings.Cut(sc.Text(), "-")
		hi, _, _ := strings.Cut(rest, " ")
		a, err1 := strconv.ParseUint(lo, 16, 64)
		b, err2 := strconv.ParseUint(hi, 16, 64)
		if err1 == nil && err2 == nil && uint64(addr) >= a && uint64(addr) < b {
			return sc.Text()
		}
	}
	return ""
}

// TestKeydirPaged: a store's keydir keeps its ids and versions in shared
// mappings of an unlinked file in the store's directory (paged by the
// kernel, not anonymous memory), nothing of which is left in the
// directory; lookups work; once the store is closed, the addresses read
// zeros from anonymous memory and the file is gone.
func TestKeydirPaged(t *testing.T) {
	dir := t.TempDir()
	before := pagedBytes.Load()
	k := newKeys()
	k.file = openPagedFile(dir)
	if k.file == nil {
		t.Fatal("no keydir file")
	}
	kd := k.newKeydir()
	k.colls["c"] = kd
	const n = 50_000
	id := func(i int) string { return fmt.Sprintf("indicator--00000000-0000-4000-8000-%012d", i) }
	k.mu.Lock()
	for i := range n {
		k.add(kd, id(i), int64(i+1))
		if i%10 == 0 {
			k.add(kd, id(i), int64(n+i+1))
		}
	}
	k.mu.Unlock()
	k.mu.RLock()
	for _, i := range []int{0, 7, 10, n - 1} {
		got, err := k.lookup("c", id(i), -1, nil)
		if want := 1 + btoi(i%10 == 0); err != nil || len(got) != want {
			t.Errorf("%s: %v %v, want %d versions", id(i), got, err, want)
		}
	}
	k.mu.RUnlock()
	for name, addr := range map[string]uintptr{
		"heads": uintptr(unsafe.Pointer(&kd.heads.chunks[0][0])),
		"more":  uintptr(unsafe.Pointer(&kd.more.chunks[0][0])),
	} {
		if m := mappingOf(t, addr); !strings.Contains(m, "/.keydir-") || !strings.HasSuffix(m, "(deleted)") || !strings.Contains(m, " rw-s ") {
			t.Errorf("%s mapped by %q, want a shared mapping of the deleted keydir file", name, m)
		}
	}
	if got := pagedBytes.Load() - before; got < int64(n*int(unsafe.Sizeof(head{}))) {
		t.Errorf("pagedBytes grew by %d, want at least the heads' %d", got, n*int(unsafe.Sizeof(head{})))
	}
	if es, err := os.ReadDir(dir); err != nil || len(es) != 0 {
		t.Errorf("the store's directory holds %v (%v), want nothing", es, err)
	}
	chunk := kd.heads.chunks[0]
	k.drop()
	if chunk[0].date != 0 || chunk[1].uuid != [16]byte{} {
		t.Error("a closed keydir's addresses do not read zeros")
	}
	if m := mappingOf(t, uintptr(unsafe.Pointer(&chunk[0]))); strings.Contains(m, "keydir") {
		t.Errorf("after close the addresses are still mapped from the file: %q", m)
	}
	if got := pagedBytes.Load(); got != before {
		t.Errorf("pagedBytes = %d after close, want %d", got, before)
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// TestKeydirPagedFallback: a chunk whose blocks the file cannot have (a
// full disk; here a file opened read-only) is anonymous memory, usable
// all the same.
func TestKeydirPagedFallback(t *testing.T) {
	name := t.TempDir() + "/ro"
	if err := os.WriteFile(name, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	p := &pagedFile{f: f}
	before := pagedBytes.Load()
	c := pagedChunk[head](p, 1<<chunkBits)
	c[len(c)-1].date = 42
	if m := mappingOf(t, uintptr(unsafe.Pointer(&c[0]))); strings.Contains(m, "/ro") || c[len(c)-1].date != 42 {
		t.Errorf("chunk mapped by %q", m)
	}
	if pagedBytes.Load() != before {
		t.Error("an anonymous chunk counted as paged")
	}
	p.close()
	freeOffHeap(c)
}
