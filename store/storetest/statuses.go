package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/ctigate/ctigate"
	"github.com/ctigate/ctigate/store"
)

// statusSweeper is a backend that removes expired statuses by a sweep
// (bbolt); one that does not (Redis, whose keys expire by themselves)
// needs none.
type statusSweeper interface {
	SweepStatuses(ctx context.Context, limit int) (int, error)
}

func statusExpiryTests() []struct {
	name string
	fn   func(*testing.T, *env)
} {
	return []struct {
		name string
		fn   func(*testing.T, *env)
	}{
		{"StatusExpires", testStatusExpires},
		{"StatusExpiresOnReplace", testStatusExpiresOnReplace},
		{"StatusExpiredWhenPut", testStatusExpiredWhenPut},
	}
}

// expiringStatus is sampleStatus under id, expiring at expires (never
// when zero).
func expiringStatus(id string, expires time.Time) store.Status {
	st := sampleStatus()
	st.ID = id
	st.Expires = expires
	return st
}

// sweep runs the backend's status sweep, if it has one, until it removes
// no more, and returns how many it removed (-1 when it has none).
func (e *env) sweep() int {
	e.t.Helper()
	sw, ok := e.s.(statusSweeper)
	if !ok {
		return -1
	}
	total := 0
	for {
		n, err := sw.SweepStatuses(e.ctx, 2)
		if err != nil {
			e.t.Fatalf("SweepStatuses: %v", err)
		}
		total += n
		if n < 2 {
			return total
		}
	}
}

// wantStatus reads id and checks it against want, Expires included.
func (e *env) wantStatus(what string, want store.Status) {
	e.t.Helper()
	got, err := e.s.Status(e.ctx, want.ID)
	if err != nil {
		e.t.Fatalf("%s: Status(%s) at %s: %v", what, want.ID, fmtTime(e.clock.Now()), err)
	}
	checkStatus(e.t, what, got, want)
	if !got.Expires.Equal(want.Expires) {
		e.t.Fatalf("%s: Expires = %s, want %s", what, fmtTime(got.Expires), fmtTime(want.Expires))
	}
}

// wantNoStatus checks that id reads as an unknown status.
func (e *env) wantNoStatus(what, id string) {
	e.t.Helper()
	_, err := e.s.Status(e.ctx, id)
	wantKind(e.t, what+": Status("+id+") at "+fmtTime(e.clock.Now()), err, ctigate.NotFound)
}

// testStatusExpires: a status is readable until its Expires, by the
// store's clock, and from then on reads as an unknown id, before and
// after the backend removes it and after a restart; a status without
// Expires does not expire. A backend's sweep removes exactly the expired
// ones, the earliest first, in batches.
func testStatusExpires(t *testing.T, e *env) {
	day := t0.Add(24 * time.Hour)
	sts := []store.Status{
		expiringStatus("5f6a3c1e-0000-4000-8000-000000000001", day.Add(time.Nanosecond)),
		expiringStatus("5f6a3c1e-0000-4000-8000-000000000002", day.Add(-time.Second)),
		expiringStatus("5f6a3c1e-0000-4000-8000-000000000003", day),
		expiringStatus("5f6a3c1e-0000-4000-8000-000000000004", day.Add(-time.Microsecond)),
		expiringStatus("5f6a3c1e-0000-4000-8000-000000000005", day.Add(24*time.Hour)),
		expiringStatus("5f6a3c1e-0000-4000-8000-000000000006", time.Time{}),
	}
	for _, st := range sts {
		if err := e.s.PutStatus(e.ctx, st); err != nil {
			t.Fatalf("PutStatus(%s): %v", st.ID, err)
		}
	}
	if n := e.sweep(); n > 0 {
		t.Fatalf("sweep before any expiry removed %d statuses", n)
	}
	e.clock.Set(day.Add(-2 * time.Second))
	for _, st := range sts {
		e.wantStatus("before any expiry", st)
	}

	// At day: sts[1], [2] and [3] have expired, sts[0] expires a
	// nanosecond later.
	e.clock.Set(day)
	expired, kept := sts[1:4], []store.Status{sts[0], sts[4], sts[5]}
	for _, st := range expired {
		e.wantNoStatus("expired, not yet swept", st.ID)
	}
	for _, st := range kept {
		e.wantStatus("not expired", st)
	}
	if n := e.sweep(); n != -1 && n != len(expired) {
		t.Fatalf("sweep at %s removed %d statuses, want %d", fmtTime(day), n, len(expired))
	}
	for _, st := range expired {
		e.wantNoStatus("expired and swept", st.ID)
	}
	for _, st := range kept {
		e.wantStatus("not expired, after the sweep", st)
	}

	if e.reopen != nil {
		e.restart()
		for _, st := range expired {
			e.wantNoStatus("expired, after a restart", st.ID)
		}
		for _, st := range kept {
			e.wantStatus("not expired, after a restart", st)
		}
	}

	e.clock.Set(day.Add(365 * 24 * time.Hour))
	for _, st := range kept[:2] {
		e.wantNoStatus("expired a year ago", st.ID)
	}
	e.wantStatus("a status without Expires, a year on", sts[5])
	if n := e.sweep(); n != -1 && n != 2 {
		t.Fatalf("sweep a year on removed %d statuses, want 2", n)
	}
	e.wantStatus("a status without Expires, after the last sweep", sts[5])
}

// testStatusExpiresOnReplace: a replaced status expires at the
// replacement's Expires, later or earlier than the one it replaces, and
// never when the replacement has none.
func testStatusExpiresOnReplace(t *testing.T, e *env) {
	put := func(st store.Status) {
		t.Helper()
		if err := e.s.PutStatus(e.ctx, st); err != nil {
			t.Fatalf("PutStatus(%s): %v", st.ID, err)
		}
	}
	later := expiringStatus("5f6a3c1e-0000-4000-8000-00000000000a", t0.Add(time.Hour))
	put(later)
	later.Status = "complete"
	later.Expires = t0.Add(3 * time.Hour)
	put(later)

	earlier := expiringStatus("5f6a3c1e-0000-4000-8000-00000000000b", t0.Add(3*time.Hour))
	put(earlier)
	earlier.Status = "complete"
	earlier.Expires = t0.Add(time.Hour)
	put(earlier)

	never := expiringStatus("5f6a3c1e-0000-4000-8000-00000000000c", t0.Add(time.Hour))
	put(never)
	never.Expires = time.Time{}
	put(never)

	e.clock.Set(t0.Add(2 * time.Hour))
	if n := e.sweep(); n != -1 && n != 1 {
		t.Fatalf("sweep after two hours removed %d statuses, want 1", n)
	}
	e.wantStatus("extended by its replacement", later)
	e.wantNoStatus("shortened by its replacement", earlier.ID)
	e.wantStatus("replaced without Expires", never)

	e.clock.Set(t0.Add(4 * time.Hour))
	e.wantNoStatus("past the replacement's Expires", later.ID)
	if n := e.sweep(); n != -1 && n != 1 {
		t.Fatalf("sweep after four hours removed %d statuses, want 1", n)
	}
	e.wantStatus("replaced without Expires, after the sweeps", never)
}

// testStatusExpiredWhenPut: a status written with an Expires that has
// already passed is not readable, and hides no earlier status of its id.
func testStatusExpiredWhenPut(t *testing.T, e *env) {
	st := expiringStatus("5f6a3c1e-0000-4000-8000-000000000010", t0.Add(time.Hour))
	if err := e.s.PutStatus(e.ctx, st); err != nil {
		t.Fatalf("PutStatus: %v", err)
	}
	st.Expires = t0.Add(-time.Hour)
	if err := e.s.PutStatus(e.ctx, st); err != nil {
		t.Fatalf("PutStatus of an expired status: %v", err)
	}
	e.wantNoStatus("written expired over an unexpired one", st.ID)
	gone := expiringStatus("5f6a3c1e-0000-4000-8000-000000000011", t0)
	if err := e.s.PutStatus(e.ctx, gone); err != nil {
		t.Fatalf("PutStatus of a status expiring now: %v", err)
	}
	e.wantNoStatus("written expiring now", gone.ID)
	e.sweep()
	e.wantNoStatus("written expired, after a sweep", st.ID)
}
