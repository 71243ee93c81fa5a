package backoff

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"
)

// recorder is a slog handler that keeps the records.
type recorder struct {
	mu      sync.Mutex
	records []slog.Record
}

func (r *recorder) Enabled(context.Context, slog.Level) bool { return true }
func (r *recorder) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.records = append(r.records, rec)
	return nil
}
func (r *recorder) WithAttrs([]slog.Attr) slog.Handler { return r }
func (r *recorder) WithGroup(string) slog.Handler      { return r }

// above returns the messages logged at level info or above.
func (r *recorder) above() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, rec := range r.records {
		if rec.Level >= slog.LevelInfo {
			out = append(out, rec.Level.String()+" "+rec.Message)
		}
	}
	return out
}

func TestBackoffDelay(t *testing.T) {
	lo, hi := 200*time.Millisecond, 30*time.Second
	prev := time.Duration(0)
	for n := 1; n <= 20; n++ {
		least, most := Delay(n, lo, hi, 0), Delay(n, lo, hi, 0.999999)
		if least < lo/2 || most > hi || least > most {
			t.Fatalf("failure %d: waits %v to %v, outside [%v, %v]", n, least, most, lo/2, hi)
		}
		if n <= 8 && least != lo<<(n-1)/2 {
			t.Errorf("failure %d: least wait %v, want %v (doubling)", n, least, lo<<(n-1)/2)
		}
		if least < prev {
			t.Errorf("failure %d: least wait %v shorter than the one before, %v", n, least, prev)
		}
		prev = least
	}
	if got := Delay(100, lo, hi, 0); got != hi/2 {
		t.Errorf("capped: least wait %v, want %v", got, hi/2)
	}
	if got := Delay(1000, lo, hi, 0.5); got > hi {
		t.Errorf("after 1000 failures: %v", got)
	}
}

// TestBackoffLogsOncePerStateChange: a run of failures is logged once,
// with its error, and the recovery once; each failure in between only at
// debug level. The wait grows with the failures and starts again from
// Min after a success.
func TestBackoffLogsOncePerStateChange(t *testing.T) {
	rec := &recorder{}
	r := Retry{What: "worker: pass", Log: slog.New(rec), Min: 10 * time.Millisecond, Max: time.Second,
		Rand: func() float64 { return 0 }}
	errFull := errors.New("write ctigate.db: no space left on device")

	r.Succeeded() // nothing to recover from
	var waits []time.Duration
	for range 12 {
		waits = append(waits, r.Failed(errFull))
	}
	if !r.Failing() {
		t.Error("not failing after failures")
	}
	r.Succeeded()
	r.Succeeded()
	if r.Failing() {
		t.Error("failing after a success")
	}
	again := r.Failed(errFull)
	r.Succeeded()

	want := []string{
		"ERROR worker: pass failed; retrying with backoff, logging again once it succeeds",
		"INFO worker: pass recovered",
		"ERROR worker: pass failed; retrying with backoff, logging again once it succeeds",
		"INFO worker: pass recovered",
	}
	got := rec.above()
	if len(got) != len(want) {
		t.Fatalf("logged %q, want %q", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("record %d: %q, want %q", i, got[i], want[i])
		}
	}
	// The error is in the first record, and every failure at debug level.
	var debug int
	for _, rec := range rec.records {
		if rec.Level == slog.LevelDebug {
			debug++
		}
	}
	if debug != 11 {
		t.Errorf("%d debug records, want 11 (the failures after the first)", debug)
	}
	var logged string
	rec.records[0].Attrs(func(a slog.Attr) bool {
		if a.Key == "err" {
			logged = a.Value.String()
		}
		return true
	})
	if logged != errFull.Error() {
		t.Errorf("first record's err = %q", logged)
	}

	if waits[0] != 5*time.Millisecond || waits[1] != 10*time.Millisecond || waits[2] != 20*time.Millisecond {
		t.Errorf("first waits %v, want doubling from Min/2 (no jitter)", waits[:3])
	}
	if last := waits[len(waits)-1]; last != 500*time.Millisecond {
		t.Errorf("last wait %v, want Max/2 (capped, no jitter)", last)
	}
	if again != waits[0] {
		t.Errorf("after a success the wait is %v, want %v again", again, waits[0])
	}
}

// TestBackoffDefaults: the zero Retry waits from 200 ms to 30 s and logs
// nowhere.
func TestBackoffDefaults(t *testing.T) {
	var r Retry
	err := errors.New("x")
	if d := r.Failed(err); d < DefaultMin/2 || d > DefaultMin {
		t.Errorf("first wait %v", d)
	}
	for range 30 {
		if d := r.Failed(err); d > DefaultMax {
			t.Fatalf("wait %v over %v", d, DefaultMax)
		}
	}
	r.Succeeded()
}
