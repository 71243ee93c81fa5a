package load

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// poll makes consumers goroutines each page through the whole collection
// with pages of limit objects, and checks that all of them saw the same
// number of objects: exactly expected when expected >= 0, and at least
// minimum.
func poll(ctx context.Context, c *client, consumers, limit, expected, minimum int, report reporter) (*PollResult, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)

	res := make([]consumerResult, consumers)
	var (
		wg   sync.WaitGroup
		done atomic.Int64
	)
	total := int64(-1)
	if expected >= 0 {
		total = int64(expected) * int64(consumers)
	}
	start := time.Now()
	defer report.start("poll", total, &done)()
	for i := range consumers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := consume(ctx, c, limit, expected, &done)
			res[i] = r
			if err != nil {
				cancel(fmt.Errorf("consumer %d: %w", i+1, err))
			}
		}()
	}
	wg.Wait()
	took := time.Since(start)
	if err := context.Cause(ctx); err != nil {
		return nil, err
	}

	r := &PollResult{Seconds: took.Seconds()}
	lat := make([][]time.Duration, consumers)
	for i, cr := range res {
		r.Objects += int64(cr.objects)
		r.Pages += cr.pages
		r.Bytes += cr.bytes
		r.PerConsumerObjects = append(r.PerConsumerObjects, cr.objects)
		lat[i] = cr.latencies
	}
	r.PerConsumer = res[0].objects
	for i, cr := range res {
		if cr.objects != r.PerConsumer {
			return r, fmt.Errorf("consumers disagree: consumer 1 saw %d objects, consumer %d saw %d", r.PerConsumer, i+1, cr.objects)
		}
	}
	if expected >= 0 && r.PerConsumer != expected {
		return r, fmt.Errorf("each consumer saw %d objects, want exactly %d", r.PerConsumer, expected)
	}
	if r.PerConsumer < minimum {
		return r, fmt.Errorf("each consumer saw %d objects, want at least the %d pushed", r.PerConsumer, minimum)
	}
	r.Expected = expected
	r.Latency = latencyOf(lat...)
	r.ObjectsPerSec = float64(r.Objects) / took.Seconds()
	r.MiBPerSec = float64(r.Bytes) / (1 << 20) / took.Seconds()
	return r, nil
}

var errNoProgress = errors.New("the server reported more objects but gave no usable next cursor")

type consumerResult struct {
	objects   int
	pages     int
	bytes     int64
	latencies []time.Duration
}

// consume pages through the collection once, following next until more is
// false. Every page must make progress (objects and a new cursor), pages
// must come in date_added order, and with expected >= 0 no more than
// expected objects may arrive, so the loop ends by itself even against a
// misbehaving server.
func consume(ctx context.Context, c *client, limit, expected int, done *atomic.Int64) (consumerResult, error) {
	var (
		r        consumerResult
		buf      bytes.Buffer
		next     string
		lastSeen string // X-TAXII-Date-Added-Last of the previous page
	)
	if expected > 0 {
		r.latencies = make([]time.Duration, 0, expected/limit+2)
	}
	first := c.objects + "?limit=" + strconv.Itoa(limit)
	for {
		if err := ctx.Err(); err != nil {
			return r, err
		}
		u := first
		if next != "" {
			u += "&next=" + url.QueryEscape(next)
		}
		t0 := time.Now()
		resp, err := c.get(ctx, u, &buf)
		r.latencies = append(r.latencies, time.Since(t0))
		if err != nil {
			return r, err
		}
		r.pages++
		r.bytes += int64(buf.Len())
		p, err := countEnvelope(buf.Bytes())
		if err != nil {
			return r, fmt.Errorf("page %d: %w", r.pages, err)
		}
		r.objects += p.objects
		done.Add(int64(p.objects))
		if expected >= 0 && r.objects > expected {
			return r, fmt.Errorf("page %d: %d objects so far, more than the %d in the collection", r.pages, r.objects, expected)
		}

		// Date-added order across pages: a page starting at or before the
		// end of the previous one repeats or reorders objects.
		if p.objects > 0 {
			firstAdded := resp.Header.Get("X-TAXII-Date-Added-First")
			lastAdded := resp.Header.Get("X-TAXII-Date-Added-Last")
			if firstAdded == "" || lastAdded == "" {
				return r, fmt.Errorf("page %d: X-TAXII-Date-Added-First/Last missing", r.pages)
			}
			if lastSeen != "" && !laterTimestamp(firstAdded, lastSeen) {
				return r, fmt.Errorf("page %d starts at date_added %s, not after the previous page's last %s", r.pages, firstAdded, lastSeen)
			}
			lastSeen = lastAdded
		}

		if !p.more {
			return r, nil
		}
		if p.objects == 0 || p.next == "" || p.next == next {
			return r, fmt.Errorf("page %d: %w", r.pages, errNoProgress)
		}
		next = p.next
	}
}

// laterTimestamp reports whether TAXII timestamp a is after b. Both should
// be RFC 3339; if either is not, they are compared as strings (TAXII's
// fixed-width "…000000Z" form sorts correctly that way).
func laterTimestamp(a, b string) bool {
	ta, errA := time.Parse(time.RFC3339Nano, a)
	tb, errB := time.Parse(time.RFC3339Nano, b)
	if errA != nil || errB != nil {
		return a > b
	}
	return ta.After(tb)
}
