package bolt

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/ctigate/ctigate/store"
)

// TestStorageDeliveryKeyLeavesReadsByID: reading the delivery key of a
// store that has one (after a restart) writes nothing, so a read of an id
// right after it does not wait for a write: on a full disk, where the
// delivery's record then fails, no write may come.
func TestStorageDeliveryKeyLeavesReadsByID(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ctigate.db")
	ctx := store.WithActor(context.Background(), store.Actor{User: "u", Org: "o"})
	st, err := Open(path, Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	o := stixObject(t, 1)
	if _, err := st.AddObjects(ctx, "c", []store.Object{o}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.DeliverySalter(ctx); err != nil { // made here
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}

	st, err = Open(path, Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	before := st.commits.Load()
	for range 2 {
		if _, err := st.DeliverySalter(ctx); err != nil { // read here
			t.Fatal(err)
		}
	}
	if n := st.commits.Load() - before; n != 0 {
		t.Errorf("reading the delivery key committed %d transactions", n)
	}
	done := make(chan error, 1)
	go func() {
		p, err := st.Objects(ctx, "c", store.Query{IDs: []string{o.ID}, Limit: 10})
		if err == nil && len(p.Objects) != 1 {
			t.Errorf("read %d objects, want 1", len(p.Objects))
		}
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			st.Close()
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		// Not closed: Close would wait for the read.
		t.Fatal("a read by id after the delivery key waits for a write")
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
}
