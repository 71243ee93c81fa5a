// Package backoff paces the retries of a background worker whose passes
// fail, and keeps its log to one line per change of state: one when it
// starts failing, with the error, and one when it recovers. A worker that
// fails for as long as its store is down or full then neither hammers the
// store nor floods the log.
package backoff

import (
	"log/slog"
	"math/rand/v2"
	"time"
)

// Defaults for Retry.
const (
	DefaultMin = 200 * time.Millisecond
	DefaultMax = 30 * time.Second
)

// Retry follows the passes of one worker: the wait before the next pass
// after a failure, and what is logged. The zero value, with What set, is
// ready to use. A Retry belongs to one worker's loop: it is not safe for
// concurrent use.
type Retry struct {
	// What names what fails, at the start of the log messages
	// ("fanout: pass").
	What string
	// Log receives the changes of state (errors at error level,
	// recoveries at info level) and, at debug level, every failure.
	// Default: discard.
	Log *slog.Logger
	// Min is the wait after the first failure and Max the longest; each
	// further failure in a row doubles it. Defaults: DefaultMin and
	// DefaultMax (and Max is never below Min).
	Min, Max time.Duration
	// Rand returns the jitter, in [0, 1). Default: math/rand/v2.
	Rand func() float64
	// Clock times the failures. Default: time.Now.
	Clock func() time.Time

	failures int       // failures in a row
	since    time.Time // the first of them
}

// Failed records a failed pass and returns how long to wait before the
// next. The first failure in a row is logged, with err; the following ones
// only at debug level.
func (r *Retry) Failed(err error) time.Duration {
	r.failures++
	lo, hi := r.bounds()
	d := Delay(r.failures, lo, hi, r.rand())
	log := r.log()
	if r.failures == 1 {
		r.since = r.now()
		log.Error(r.What+" failed; retrying with backoff, logging again once it succeeds", "err", err, "retry_in", d.Round(time.Millisecond))
	} else {
		log.Debug(r.What+" failed again", "err", err, "failures", r.failures, "retry_in", d.Round(time.Millisecond))
	}
	return d
}

// Succeeded records a successful pass. After failures it logs, once, that
// the worker recovered, and the next failure starts again from Min.
func (r *Retry) Succeeded() {
	if r.failures == 0 {
		return
	}
	r.log().Info(r.What+" recovered", "failures", r.failures, "after", r.now().Sub(r.since).Round(time.Millisecond))
	r.failures = 0
}

// Failing reports whether the last pass failed.
func (r *Retry) Failing() bool { return r.failures > 0 }

// Delay is the wait after the nth failure in a row (from 1): lo doubled
// n-1 times and capped at hi, of which half is fixed and half jitter (rnd,
// in [0, 1), picks where in it), so that workers that failed together do
// not retry together.
func Delay(n int, lo, hi time.Duration, rnd float64) time.Duration {
	d := lo
	for i := 1; i < n && d < hi; i++ {
		d *= 2
	}
	d = min(d, hi)
	return d/2 + time.Duration(rnd*float64(d/2))
}

func (r *Retry) bounds() (lo, hi time.Duration) {
	lo, hi = r.Min, r.Max
	if lo <= 0 {
		lo = DefaultMin
	}
	if hi <= 0 {
		hi = DefaultMax
	}
	return lo, max(hi, lo)
}

func (r *Retry) log() *slog.Logger {
	if r.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return r.Log
}

func (r *Retry) rand() float64 {
	if r.Rand == nil {
		return rand.Float64()
	}
	return r.Rand()
}

func (r *Retry) now() time.Time {
	if r.Clock == nil {
		return time.Now()
	}
	return r.Clock()
}
