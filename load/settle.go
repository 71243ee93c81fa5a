package load

import (
	"context"
	"time"
)

// How bench tells that a gateway it started has finished its background
// work (the search index, the ledger's checkpoints, fan-out): over the
// last settleWindow its CPU time grew by less than settleIdle (5% of a
// processor), sampled every settleStep; it waits at most settleMax.
const (
	settleWindow = time.Second
	settleStep   = 100 * time.Millisecond
	settleIdle   = 50 * time.Millisecond
	settleMax    = 2 * time.Minute
	// settleIdlePercent is settleIdle as a share of one processor, for
	// the report.
	settleIdlePercent = int(100 * settleIdle / settleWindow)
)

// SettleResult is how long the gateway's background work went on after
// the route published the push (after the last POST answered,
// route-less), before the poll began.
type SettleResult struct {
	Seconds float64 `json:"seconds"`
	// Settled is false when the gateway was still busy after settleMax;
	// the poll then ran beside its background work.
	Settled bool `json:"settled"`
	// MicrosPerObject is the gateway's CPU time from the first POST until
	// it settled, per pushed object (0 without a push).
	MicrosPerObject float64 `json:"us_per_pushed_object,omitempty"`
}

// waitIdle samples cpu (a process's CPU time so far) every step until it
// grew by less than idle over the last window, or max passed; it returns
// how long it waited and whether the process went idle. A cpu that cannot
// be read returns at once, not idle.
func waitIdle(ctx context.Context, cpu func() (time.Duration, bool), step, window, idle, max time.Duration) (time.Duration, bool, error) {
	start := time.Now()
	type sample struct {
		at  time.Time
		cpu time.Duration
	}
	var samples []sample
	t := time.NewTicker(step)
	defer t.Stop()
	for {
		c, ok := cpu()
		if !ok {
			return time.Since(start), false, nil
		}
		now := time.Now()
		samples = append(samples, sample{now, c})
		// The oldest sample at least window old, and those after it.
		i := 0
		for i+1 < len(samples) && now.Sub(samples[i+1].at) >= window {
			i++
		}
		samples = samples[i:]
		if now.Sub(samples[0].at) >= window && c-samples[0].cpu < idle {
			return now.Sub(start), true, nil
		}
		if now.Sub(start) >= max {
			return now.Sub(start), false, nil
		}
		select {
		case <-ctx.Done():
			return time.Since(start), false, ctx.Err()
		case <-t.C:
		}
	}
}
