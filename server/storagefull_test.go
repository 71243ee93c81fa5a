package server_test

import (
	"context"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/ctigate/ctigate"
	"github.com/ctigate/ctigate/custody"
	"github.com/ctigate/ctigate/server"
	"github.com/ctigate/ctigate/store"
	"github.com/ctigate/ctigate/store/bolt"
)

// fullStore is a real bbolt store whose chosen writes fail as they do on
// a full disk, with the errors bbolt gives: ENOSPC from a write of its
// file, or, when the file cannot grow, EFBIG flattened into text.
type fullStore struct {
	*bolt.Store
	mu   sync.Mutex
	full map[string]bool // "add", "status", "delivery", "ledger"
	// apart makes ingest write the objects and their status in two
	// writes, as with Redis (AddObjectsStatus is unsupported).
	apart bool
}

func (f *fullStore) setFull(writes ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.full = map[string]bool{}
	for _, w := range writes {
		f.full[w] = true
	}
}

func (f *fullStore) fail(write, op string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.full[write] {
		return nil
	}
	if write == "add" {
		grow := &fs.PathError{Op: "truncate", Path: "ctigate.db", Err: syscall.EFBIG}
		return ctigate.E(op, fmt.Errorf("file resize error: %s", grow))
	}
	return ctigate.E(op, &fs.PathError{Op: "write", Path: "ctigate.db", Err: syscall.ENOSPC})
}

func (f *fullStore) AddObjects(ctx context.Context, collection string, objs []store.Object) ([]store.AddResult, error) {
	if err := f.fail("add", "bolt.AddObjects"); err != nil {
		return nil, err
	}
	return f.Store.AddObjects(ctx, collection, objs)
}

// AddObjectsStatus is one write: it fails when either part would.
func (f *fullStore) AddObjectsStatus(ctx context.Context, collection string, objs []store.Object, status func([]store.AddResult) store.Status) ([]store.AddResult, error) {
	if f.apart {
		return nil, ctigate.E("test.AddObjectsStatus", ctigate.Unsupported, "apart")
	}
	for _, w := range []string{"add", "status"} {
		if err := f.fail(w, "bolt.AddObjectsStatus"); err != nil {
			return nil, err
		}
	}
	return f.Store.AddObjectsStatus(ctx, collection, objs, status)
}

func (f *fullStore) PutStatus(ctx context.Context, s store.Status) error {
	if err := f.fail("status", "bolt.PutStatus"); err != nil {
		return err
	}
	return f.Store.PutStatus(ctx, s)
}

func (f *fullStore) RecordDelivery(ctx context.Context, e custody.Entry, manifest []byte) (custody.Entry, error) {
	if err := f.fail("delivery", "bolt.RecordDelivery"); err != nil {
		return custody.Entry{}, err
	}
	return f.Store.RecordDelivery(ctx, e, manifest)
}

func (f *fullStore) AppendEntries(ctx context.Context, entries []custody.Entry) ([]custody.Entry, error) {
	if err := f.fail("ledger", "bolt.AppendEntries"); err != nil {
		return nil, err
	}
	return f.Store.AppendEntries(ctx, entries)
}

// newFullGateway serves a fullStore, with its ledger, over a real bbolt
// file, logging into the buffer it returns (syncBuffer, as in
// telemetry_test.go).
func newFullGateway(t *testing.T) (*gateway, *fullStore, *syncBuffer) {
	t.Helper()
	cfg := testConfig(t)
	st, err := bolt.Open(filepath.Join(t.TempDir(), "ctigate.db"), bolt.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	f := &fullStore{Store: st}
	logs := &syncBuffer{}
	ts := httptest.NewServer(server.New(server.Options{Config: cfg, Store: f, Ledger: f, Auth: authOf(t, cfg),
		Logger: slog.New(slog.NewTextHandler(logs, nil))}))
	t.Cleanup(func() {
		ts.Close()
		if err := st.Close(); err != nil {
			t.Error(err)
		}
	})
	return &gateway{t: t, URL: ts.URL}, f, logs
}

// expectFull checks that r is the TAXII error of a full storage: 507,
// Retry-After, and a description that contains want.
func expectFull(t *testing.T, r response, want string) {
	t.Helper()
	e := r.expectError(t, http.StatusInsufficientStorage)
	if !strings.Contains(e.Description, want) {
		t.Errorf("description %q does not say %q", e.Description, want)
	}
	if r.Header.Get("Retry-After") == "" {
		t.Error("no Retry-After")
	}
}

// TestStorageFullPostRefused: a POST whose objects cannot be stored for
// want of space is a TAXII 507 that says so, not a bare 500, and nothing
// of it is readable; once space is freed, the same POST succeeds. The
// embedded store writes the objects and their status in one write, so
// either failing refuses the POST.
func TestStorageFullPostRefused(t *testing.T) {
	for _, full := range []string{"add", "status"} {
		t.Run(full, func(t *testing.T) { testStorageFullPostRefused(t, full) })
	}
}

func testStorageFullPostRefused(t *testing.T, full string) {
	g, f, _ := newFullGateway(t)
	body := env(indicator(1, "2026-01-01T00:00:00.000Z"), indicator(2, "2026-01-01T00:00:00.000Z"))

	f.setFull(full)
	expectFull(t, g.post(inbound+"objects/", "cert-a", body), "nothing of this request was stored")

	f.setFull()
	var e envelope
	g.get(inbound+"objects/", "cert-a").expect(t, http.StatusOK, &e)
	if len(e.Objects) != 0 {
		t.Fatalf("the collection holds %d objects after a refused POST", len(e.Objects))
	}
	var st status
	g.post(inbound+"objects/", "cert-a", body).expect(t, http.StatusAccepted, &st)
	if st.SuccessCount != 2 {
		t.Fatalf("after space was freed: %+v", st)
	}
}

// TestStorageFullAfterObjectsStored: when the objects are stored but the
// status resource, or the ledger record of a conflict, cannot be, the POST
// still answers 202 with the stored objects as successes: its objects are
// there to read. (A store that writes the two apart, as Redis does.)
func TestStorageFullAfterObjectsStored(t *testing.T) {
	for _, c := range []struct {
		name string
		full []string
	}{
		{"status", []string{"status"}},
		{"conflicts and status", []string{"ledger", "status"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			g, f, logs := newFullGateway(t)
			f.apart = true
			// Object 3 is stored first, so that a different object with
			// its id and version in the next envelope is a conflict.
			g.post(inbound+"objects/", "cert-a", env(indicator(3, "2026-01-01T00:00:00.000Z"))).expect(t, http.StatusAccepted, nil)
			conflict := strings.Replace(indicator(3, "2026-01-01T00:00:00.000Z"), "198.51.100.3", "198.51.100.203", 1)

			f.setFull(c.full...)
			var st status
			g.post(inbound+"objects/", "cert-a", env(indicator(1, "2026-01-01T00:00:00.000Z"),
				indicator(2, "2026-01-01T00:00:00.000Z"), conflict)).expect(t, http.StatusAccepted, &st)
			if st.SuccessCount != 2 || st.FailureCount != 1 || len(st.Successes) != 2 {
				t.Fatalf("status: %+v, want 2 successes and the conflict", st)
			}
			if !strings.HasPrefix(st.Successes[0].Message, "added") {
				t.Errorf("success message %q", st.Successes[0].Message)
			}
			// The operator learns what was not recorded.
			if l := logs.String(); !strings.Contains(l, "objects stored, but their status or ledger record could not be written") ||
				!strings.Contains(l, "no space left on device") || !strings.Contains(l, st.ID) {
				t.Errorf("the log does not report the unrecorded status %s:\n%s", st.ID, l)
			}

			// The objects are readable, the reads recorded (the ledger
			// takes deliveries).
			f.setFull(slicesWithout(c.full, "ledger")...)
			var e envelope
			g.get(inbound+"objects/", "cert-a").expect(t, http.StatusOK, &e)
			if len(e.Objects) != 3 {
				t.Fatalf("the collection holds %d objects, want 3", len(e.Objects))
			}
		})
	}
}

func slicesWithout(s []string, drop string) []string {
	var out []string
	for _, x := range s {
		if x != drop {
			out = append(out, x)
		}
	}
	return out
}

// TestStorageFullRead: a read whose delivery cannot be recorded in the
// custody ledger is refused with a TAXII 507 that says why (nothing is
// delivered without its record); reads that record nothing (the API root,
// the collections) keep working, and so does the read once space is
// freed.
func TestStorageFullRead(t *testing.T) {
	g, f, _ := newFullGateway(t)
	g.post(inbound+"objects/", "cert-a", env(indicator(1, "2026-01-01T00:00:00.000Z"))).expect(t, http.StatusAccepted, nil)

	f.setFull("add", "status", "delivery", "ledger")
	for _, p := range []string{"objects/", "manifest/", "objects/indicator--" + uuidN(1) + "/", "objects/indicator--" + uuidN(1) + "/versions/"} {
		expectFull(t, g.get(inbound+p, "cert-a"), "could not be recorded in the custody ledger")
	}
	g.get(root, "cert-a").expect(t, http.StatusOK, nil)
	g.get(inbound, "cert-a").expect(t, http.StatusOK, nil)

	f.setFull()
	var e envelope
	g.get(inbound+"objects/", "cert-a").expect(t, http.StatusOK, &e)
	if len(e.Objects) != 1 {
		t.Fatalf("got %d objects, want 1", len(e.Objects))
	}
}
