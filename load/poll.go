package load

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"sync"
	"time"

	"github.com/go-json-experiment/json/jsontext"
)

// poll makes consumers goroutines each page through the whole collection
// with pages of limit objects, and checks that all of them saw the same
// number of objects: exactly expected when expected >= 0, and at least
// minimum.
func poll(ctx context.Context, c *client, consumers, limit, expected, minimum int) (*PollResult, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)

	res := make([]consumerResult, consumers)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range consumers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := consume(ctx, c, limit, expected)
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
func consume(ctx context.Context, c *client, limit, expected int) (consumerResult, error) {
	var (
		r        consumerResult
		buf      bytes.Buffer
		pc       pageCounter
		next     string
		lastSeen string // X-TAXII-Date-Added-Last of the previous page
	)
	if expected > 0 {
		r.latencies = make([]time.Duration, 0, expected/limit+2)
	}
	first := c.objects + "?limit=" + itoa(limit)
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
		p, err := pc.count(buf.Bytes())
		if err != nil {
			return r, fmt.Errorf("page %d: %w", r.pages, err)
		}
		r.objects += p.objects
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

// laterTimestamp reports whether TAXII timestamp a is after b. Both are
// RFC 3339 UTC with "Z"; equal fraction lengths compare as strings.
func laterTimestamp(a, b string) bool {
	ta, errA := time.Parse(time.RFC3339Nano, a)
	tb, errB := time.Parse(time.RFC3339Nano, b)
	if errA != nil || errB != nil {
		return a > b
	}
	return ta.After(tb)
}

// page is what bench reads of a TAXII envelope.
type page struct {
	objects int
	more    bool
	next    string
}

// pageCounter reads envelopes without decoding the objects in them: it
// walks the top level with a reusable jsontext.Decoder and skips over each
// element of "objects".
type pageCounter struct {
	dec jsontext.Decoder
	rd  bytes.Reader
}

var (
	errNotEnvelope = errors.New("the response is not a TAXII envelope")
	errObjects     = errors.New(`"objects" is not an array`)
)

func (pc *pageCounter) count(body []byte) (page, error) {
	var p page
	pc.rd.Reset(body)
	// Objects are not decoded, only delimited: duplicate member names inside
	// them are not bench's concern. The envelope's own members still are.
	pc.dec.Reset(&pc.rd, jsontext.AllowDuplicateNames(true))
	if tok, err := pc.dec.ReadToken(); err != nil || tok.Kind() != '{' {
		return p, errNotEnvelope
	}
	var seen []string
	for pc.dec.PeekKind() == '"' {
		tok, err := pc.dec.ReadToken()
		if err != nil {
			return p, err
		}
		name := tok.String()
		if slices.Contains(seen, name) {
			return p, fmt.Errorf("envelope member %q appears twice", name)
		}
		seen = append(seen, name)
		switch name {
		case "more":
			tok, err := pc.dec.ReadToken()
			if err != nil {
				return p, err
			}
			if tok.Kind() != 't' && tok.Kind() != 'f' {
				return p, errors.New(`"more" is not a boolean`)
			}
			p.more = tok.Bool()
		case "next":
			tok, err := pc.dec.ReadToken()
			if err != nil {
				return p, err
			}
			if tok.Kind() != '"' {
				return p, errors.New(`"next" is not a string`)
			}
			p.next = tok.String()
		case "objects":
			tok, err := pc.dec.ReadToken()
			if err != nil {
				return p, err
			}
			if tok.Kind() != '[' {
				return p, errObjects
			}
			for pc.dec.PeekKind() != ']' {
				if pc.dec.PeekKind() != '{' {
					return p, fmt.Errorf("objects[%d] is not a JSON object", p.objects)
				}
				if err := pc.dec.SkipValue(); err != nil {
					return p, err
				}
				p.objects++
			}
			if _, err := pc.dec.ReadToken(); err != nil {
				return p, err
			}
		default:
			if err := pc.dec.SkipValue(); err != nil {
				return p, err
			}
		}
	}
	if tok, err := pc.dec.ReadToken(); err != nil || tok.Kind() != '}' {
		return p, errNotEnvelope
	}
	return p, nil
}
