package load

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// push sends envs from producers goroutines, each taking the next unsent
// envelope, and checks that every object of every envelope was accepted.
func push(ctx context.Context, c *client, envs []envelope, producers int, timeout time.Duration, report reporter) (*PushResult, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)

	var (
		next    atomic.Int64
		wg      sync.WaitGroup
		lat     = make([][]time.Duration, producers)
		objects atomic.Int64
		sent    atomic.Int64
	)
	var total int64
	for _, e := range envs {
		total += int64(e.objects)
	}
	start := time.Now()
	defer report.start("push", total, &objects)()
	for p := range producers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var buf bytes.Buffer
			mine := make([]time.Duration, 0, len(envs)/producers+1)
			defer func() { lat[p] = mine }()
			for {
				i := int(next.Add(1) - 1)
				if i >= len(envs) || ctx.Err() != nil {
					return
				}
				e := envs[i]
				t0 := time.Now()
				st, err := c.post(ctx, e.body, &buf)
				mine = append(mine, time.Since(t0))
				if err == nil && st.Status != "complete" {
					st, err = c.waitStatus(ctx, st, timeout, &buf)
				}
				if err == nil {
					err = checkStatus(st, e.objects)
				}
				if err != nil {
					cancel(fmt.Errorf("envelope %d: %w", i, err))
					return
				}
				objects.Add(int64(e.objects))
				sent.Add(int64(len(e.body)))
			}
		}()
	}
	wg.Wait()
	took := time.Since(start)
	if err := context.Cause(ctx); err != nil {
		return nil, err
	}

	r := &PushResult{
		Objects:   int(objects.Load()),
		Envelopes: len(envs),
		Bytes:     sent.Load(),
		Seconds:   took.Seconds(),
		Latency:   latencyOf(lat...),
	}
	r.ObjectsPerSec = float64(r.Objects) / took.Seconds()
	r.MiBPerSec = float64(r.Bytes) / (1 << 20) / took.Seconds()
	return r, nil
}

// checkStatus verifies that a complete status accepted all want objects.
func checkStatus(st statusInfo, want int) error {
	if st.SuccessCount == want && st.FailureCount == 0 && st.PendingCount == 0 {
		return nil
	}
	msg := fmt.Sprintf("status %s: %d of %d objects accepted, %d failed, %d pending",
		st.ID, st.SuccessCount, want, st.FailureCount, st.PendingCount)
	if len(st.Failures) > 0 {
		msg += fmt.Sprintf(" (first failure: %s: %s)", st.Failures[0].ID, st.Failures[0].Message)
	}
	return errors.New(msg)
}
