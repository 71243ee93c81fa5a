//go:build linux

package bolt

import (
	"bytes"
	"fmt"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/ctigate/ctigate/custody"
	"github.com/ctigate/ctigate/store"
)

// rss returns a size field of /proc/self/status, skipping the test where
// it is unknown.
func rss(t *testing.T, field string) int64 {
	t.Helper()
	n := procStatus(field)
	if n == 0 {
		t.Skipf("no %s in /proc/self/status", field)
	}
	return n
}

// scanAll pages through every version of c and returns how many it read.
func scanAll(t *testing.T, s *Store, c string) int {
	t.Helper()
	n := 0
	q := store.Query{Limit: 1000, Versions: []store.VersionMatch{{Kind: store.All}}}
	for {
		p, err := s.Objects(t.Context(), c, q)
		if err != nil {
			t.Errorf("Objects: %v", err)
			return n
		}
		n += len(p.Objects)
		if !p.More {
			return n
		}
		q.Next = p.Next
	}
}

// TestTrimDropsRSS shows that reading the whole file maps it into the
// process's RSS, and that a trim gives that memory back.
func TestTrimDropsRSS(t *testing.T) {
	const (
		objects = 40000
		size    = 1000 // about 40 MB of raw bytes
		mb      = 1 << 20
	)
	s := openTest(t, filepath.Join(t.TempDir(), "s.db"), Options{NoSync: true, TrimInterval: -1, TrimAfterBytes: -1})
	fillStore(t, s, "c", objects, size)
	if err := s.trim(); err != nil {
		t.Fatalf("trim: %v", err)
	}
	debug.FreeOSMemory()
	fileBefore, rssBefore := rss(t, "RssFile"), rss(t, "VmRSS")

	if n := scanAll(t, s, "c"); n != objects {
		t.Fatalf("scan read %d objects, want %d", n, objects)
	}
	debug.FreeOSMemory()
	fileScanned, rssScanned := rss(t, "RssFile"), rss(t, "VmRSS")

	if err := s.trim(); err != nil {
		t.Fatalf("trim: %v", err)
	}
	fileTrimmed, rssTrimmed := rss(t, "RssFile"), rss(t, "VmRSS")
	t.Logf("RssFile MB: before %d, after scan %d, after trim %d", fileBefore/mb, fileScanned/mb, fileTrimmed/mb)
	t.Logf("VmRSS   MB: before %d, after scan %d, after trim %d", rssBefore/mb, rssScanned/mb, rssTrimmed/mb)

	if grew := fileScanned - fileBefore; grew < 30*mb {
		t.Fatalf("a full scan grew RssFile by %d MB, want at least 30 MB (test no longer shows the effect)", grew/mb)
	}
	if dropped := rssScanned - rssTrimmed; dropped < 30*mb {
		t.Fatalf("trim lowered VmRSS by %d MB, want at least 30 MB", dropped/mb)
	}
	if fileTrimmed > fileBefore+5*mb {
		t.Fatalf("RssFile after trim = %d MB, want about the %d MB before the scan", fileTrimmed/mb, fileBefore/mb)
	}
}

// TestTrimAutomatic checks that the store trims by itself once enough bytes
// were read.
func TestTrimAutomatic(t *testing.T) {
	s := openTest(t, filepath.Join(t.TempDir(), "s.db"), Options{NoSync: true, TrimInterval: -1, TrimAfterBytes: 4 << 20, TrimAbove: -1})
	fillStore(t, s, "c", 10000, 1000)
	before := s.trimsCount.Load()
	scanAll(t, s, "c")
	awaitChange(t, &s.trimsCount, before, "no trim after reading 10 MB with TrimAfterBytes = 4 MB")
}

// awaitChange waits up to 5 s for n to move from before, failing with
// msg if it does not.
func awaitChange(t *testing.T, n *atomic.Int64, before int64, msg string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for n.Load() == before {
		if time.Now().After(deadline) {
			t.Fatal(msg)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestTrimOnlyOverBudget checks that reads below the budget leave the
// mapping alone (each trim costs a page fault per page read again), and
// that the same reads trim once the process's file pages are over it.
func TestTrimOnlyOverBudget(t *testing.T) {
	for _, c := range []struct {
		name  string
		above int64
		trims bool
	}{
		{"under", 1 << 40, false},
		{"over", 1 << 20, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := openTest(t, filepath.Join(t.TempDir(), "s.db"), Options{NoSync: true, TrimInterval: -1, TrimAfterBytes: 4 << 20, TrimAbove: c.above})
			fillStore(t, s, "c", 10000, 1000)
			trims, checks := s.trimsCount.Load(), s.checks.Load()
			scanAll(t, s, "c")
			awaitChange(t, &s.checks, checks, "no budget check after reading 10 MB with TrimAfterBytes = 4 MB")
			if got := s.trimsCount.Load() > trims; got != c.trims {
				t.Fatalf("trimmed = %v with TrimAbove = %d (resident file pages %d MB), want %v", got, c.above, procStatus("RssFile")>>20, c.trims)
			}
		})
	}
}

// TestTrimConcurrentReaders trims continuously while readers and a writer
// work, and checks every read.
func TestTrimConcurrentReaders(t *testing.T) {
	s := openTest(t, filepath.Join(t.TempDir(), "s.db"), Options{NoSync: true, TrimInterval: -1, TrimAfterBytes: -1})
	fillStore(t, s, "c", 5000, 500)
	stop := make(chan struct{})
	var trimmer, wg sync.WaitGroup
	trimmer.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			if err := s.trim(); err != nil {
				t.Errorf("trim: %v", err)
				return
			}
		}
	})
	wg.Go(func() {
		// The writer grows the file, so bbolt remaps it now and then.
		for i := range 20 {
			o := testObject(100000 + i)
			o.Raw = bytes.Repeat([]byte("y"), 256<<10)
			if _, err := s.AddObjects(t.Context(), "w", []store.Object{o}); err != nil {
				t.Errorf("AddObjects: %v", err)
				return
			}
		}
	})
	for r := range 2 {
		wg.Go(func() {
			for range 5 {
				q := store.Query{Limit: 700 + r}
				n := 0
				for {
					p, err := s.Objects(t.Context(), "c", q)
					if err != nil {
						t.Errorf("Objects: %v", err)
						return
					}
					for _, o := range p.Objects {
						if !bytes.Contains(o.Raw, []byte(o.ID)) {
							t.Errorf("object %s: raw bytes %.60q are not its own", o.ID, o.Raw)
							return
						}
					}
					n += len(p.Objects)
					if !p.More {
						break
					}
					q.Next = p.Next
				}
				if n != 5000 {
					t.Errorf("reader %d read %d objects, want 5000", r, n)
				}
			}
		})
	}
	wg.Wait()
	close(stop)
	trimmer.Wait()
}

// TestTrimIndex checks that the search index trims its own mapping once
// enough bytes were written.
func TestTrimIndex(t *testing.T) {
	ix, err := OpenIndex(filepath.Join(t.TempDir(), "search.db"), IndexOptions{TrimInterval: -1, TrimAfterBytes: 1 << 20, TrimAbove: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer ix.Close()
	before := ix.trimsCount.Load()
	for b := range 5 {
		var es []store.IndexEntry
		for i := range 5000 {
			es = append(es, indexEntry(fmt.Sprintf("h%d-%d.example", b, i), fmt.Sprintf("indicator--%d", i), 1))
		}
		if err := ix.AddIndexEntries(t.Context(), "c1", es, "cp", time.Unix(int64(b), 0)); err != nil {
			t.Fatal(err)
		}
	}
	awaitChange(t, &ix.trimsCount, before, "no index trim after writing 25,000 entries with TrimAfterBytes = 1 MB")
}

// TestTrimLedgerScan checks that a scan of the ledger (an export, the
// access replay at start) counts towards the trimmer's bytes, so that
// reading a large ledger does not leave it all mapped.
func TestTrimLedgerScan(t *testing.T) {
	s := openTest(t, filepath.Join(t.TempDir(), "s.db"), Options{NoSync: true, TrimInterval: -1, TrimAfterBytes: 1 << 20, TrimAbove: -1})
	pad := strings.Repeat("x", 400)
	for b := range 10 {
		var es []custody.Entry
		for i := range 1000 {
			es = append(es, custody.Entry{Action: custody.Received, User: "u", Org: "O", Collection: "c",
				ObjectID: fmt.Sprintf("indicator--%d-%d", b, i), ObjectVersion: "2026-01-01T00:00:00.000Z", SHA256: strings.Repeat("ab", 32), Detail: pad})
		}
		if _, err := s.AppendEntries(t.Context(), es); err != nil {
			t.Fatal(err)
		}
	}
	checks := s.checks.Load()
	n := 0
	if err := s.LedgerLines(t.Context(), 0, 0, func(uint64, []byte) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	if n != 10000 {
		t.Fatalf("scanned %d entries, want 10000", n)
	}
	awaitChange(t, &s.checks, checks, "no trim check after scanning a ledger of about 8 MB with TrimAfterBytes = 1 MB")
}

// TestTrimLongScan checks that one read that visits a whole collection
// and matches nothing (a type no version has) tells the trimmer of its
// bytes while it runs, not only once it returns.
func TestTrimLongScan(t *testing.T) {
	s := openTest(t, filepath.Join(t.TempDir(), "s.db"), Options{NoSync: true, TrimInterval: -1, TrimAfterBytes: -1})
	fillStore(t, s, "c", 20000, 100)
	f, err := compileQuery(store.Query{Types: []string{"marking-definition"}, Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	var noted int64
	err = s.db.View(func(tx *bbolt.Tx) error {
		cb, ok := openCollection(tx, "c")
		if !ok {
			t.Fatal("no collection c")
		}
		r := &pageReader{f: f, keys: s.keys, coll: "c", cb: cb, txid: tx.ID(), note: func(n int64) { noted += n }}
		if err := r.scan(t.Context()); err != nil {
			return err
		}
		if len(r.objs) != 0 {
			t.Errorf("the scan matched %d versions", len(r.objs))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if noted < 1<<20 {
		t.Fatalf("a scan of 20,000 headers told the trimmer of %d bytes while it ran, want at least 1 MiB", noted)
	}
}

// TestTrimDuringOpen checks that opening a store, which reads every
// version's header to rebuild the keydir, tells the trimmer as it reads.
func TestTrimDuringOpen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.db")
	s := openTest(t, path, Options{NoSync: true, TrimInterval: -1, TrimAfterBytes: -1})
	fillStore(t, s, "c", 20000, 100)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openTest(t, path, Options{NoSync: true, TrimInterval: -1, TrimAfterBytes: 1 << 20, TrimAbove: -1})
	awaitChange(t, &s.checks, 0, "no trim check while opening a store of 20,000 versions with TrimAfterBytes = 1 MB")
}
