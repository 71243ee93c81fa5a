package load

import (
	"bytes"
	"context"
	"fmt"
	"net/url"
	"time"
)

// CeilingResult is the ceiling's figures for the same workload (see
// ceiling.go), and the gateway's as a share of them.
type CeilingResult struct {
	Push      *PushResult `json:"push"`
	Poll      *PollResult `json:"poll"`
	PushRatio float64     `json:"push_ratio,omitempty"` // gateway objects/s ÷ ceiling objects/s
	PollRatio float64     `json:"poll_ratio,omitempty"`
}

// PropagationResult is how long a route took to publish what was pushed.
type PropagationResult struct {
	Published int     `json:"published"` // versions the route published (all but TLP:RED)
	Seconds   float64 `json:"seconds"`   // after the last POST answered, until the last was published
	// ObjectsPerSec is the pushed objects over the time from the first
	// POST to the last publication: ingest with publication.
	ObjectsPerSec float64 `json:"objects_per_sec"`
}

// runCeiling pushes envs to an in-process ceiling server and polls them
// back, with cfg's producers, consumers and pages.
func runCeiling(ctx context.Context, cfg Config, envs []envelope, res *Result, logf func(string, ...any)) error {
	cctx, stop := context.WithCancel(ctx)
	defer stop()
	base, err := startCeiling(cctx)
	if err != nil {
		return err
	}
	c := newClient(base, cfg.APIRoot, "ceiling", "", "", cfg.Producers+cfg.Consumers, cfg.Timeout)
	defer c.close()
	report := reporter{logf: logf, every: reportEvery}
	res.Ceiling = &CeilingResult{}
	logf("ceiling: push, then poll, on an in-process best-case server")
	if res.Ceiling.Push, err = push(ctx, c, envs, cfg.Producers, cfg.Timeout, report); err != nil {
		return err
	}
	res.Ceiling.Poll, err = poll(ctx, c, cfg.Consumers, cfg.PageSize, cfg.Objects, cfg.Objects, report)
	return err
}

// catchUp waits until the published collection c reads holds want
// versions (counting its manifest), at most timeout after the push.
func catchUp(ctx context.Context, c *client, want int, pushed *PushResult, timeout time.Duration) (*PropagationResult, error) {
	start := time.Now()
	deadline := start.Add(timeout)
	manifest := c.colURL + "manifest/?limit=10000"
	var buf bytes.Buffer
	seen, after := 0, ""
	for seen < want {
		u := manifest
		if after != "" {
			u += "&added_after=" + url.QueryEscape(after) // exclusive: read on from the last version counted
		}
		resp, err := c.get(ctx, u, &buf)
		if err != nil {
			return nil, err
		}
		p, err := countEnvelope(buf.Bytes())
		if err != nil {
			return nil, fmt.Errorf("manifest: %w", err)
		}
		seen += p.objects
		if last := resp.Header.Get("X-TAXII-Date-Added-Last"); p.objects > 0 && last != "" {
			after = last
		}
		if p.more || seen >= want {
			continue
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("the route published %d of %d versions in %v", seen, want, timeout)
		}
		t := time.NewTimer(10 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
	}
	if seen != want {
		return nil, fmt.Errorf("the route published %d versions, want %d (every generated object but the TLP:RED ones)", seen, want)
	}
	r := &PropagationResult{Published: want, Seconds: time.Since(start).Seconds()}
	if pushed != nil && pushed.Seconds+r.Seconds > 0 {
		r.ObjectsPerSec = float64(pushed.Objects) / (pushed.Seconds + r.Seconds)
	}
	return r, nil
}
