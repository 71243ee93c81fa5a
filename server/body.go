package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/ctigate/ctigate/config"
)

// controllerKey is the request context key of the connection's
// *http.ResponseController, put there by ServeHTTP before any middleware
// wraps the response writer.
type controllerKey struct{}

// controllerOf returns the request's response controller, or nil.
func controllerOf(r *http.Request) *http.ResponseController {
	rc, _ := r.Context().Value(controllerKey{}).(*http.ResponseController)
	return rc
}

// withController prepares a request for the handlers. A request with a
// body carries its response controller, with which readBody moves the
// connection's read deadline as the body arrives. A request without one
// has its read deadline lifted: once the handler runs there is nothing
// more of it to read, and the deadline would only cut a long answer
// short (net/http cancels the request's context when a read it makes in
// the background, watching for the client to go away, times out).
func withController(w http.ResponseWriter, r *http.Request) *http.Request {
	rc := http.NewResponseController(w)
	if r.Body == nil || r.Body == http.NoBody {
		_ = rc.SetReadDeadline(time.Time{}) // not supported by every writer: then nothing to lift
		return r
	}
	return r.WithContext(context.WithValue(r.Context(), controllerKey{}, rc))
}

// rateReader reads a request body that must arrive at a minimum rate:
// each window must bring need bytes, the first window being longer by the
// grace. Before each read it sets the connection's read deadline to the
// moment the body would fall short if nothing more arrived, so a stalled
// client fails then rather than when the http.Server's ReadTimeout ends;
// a read that hits the deadline, or returns after a window that fell
// short, fails with a 408. At the end of the body the deadline is lifted.
type rateReader struct {
	r      io.Reader
	rc     *http.ResponseController // nil: deadlines cannot be set, the rate is checked as reads return
	limits config.ServerLimits
	need   int64         // bytes each window must bring
	window time.Duration // length of each window after the first
	end    time.Time     // end of the current window
	got    int64         // bytes received in the current window
	now    func() time.Time
	err    error // sticky failure
}

// newRateReader wraps r, the body of the request whose response
// controller is rc (nil when none), to the limits l, on the clock now.
func newRateReader(r io.Reader, rc *http.ResponseController, l config.ServerLimits, now func() time.Time) *rateReader {
	need := int64(float64(l.MinBodyRate) * l.MinBodyRateWindow.Seconds())
	return &rateReader{r: r, rc: rc, limits: l, need: max(need, 1), window: l.MinBodyRateWindow,
		end: now().Add(l.MinBodyRateGrace + l.MinBodyRateWindow), now: now}
}

// fail records and returns the error of a body that fell short of the
// rate: a 408.
func (b *rateReader) fail() error {
	if b.err == nil {
		b.err = &statusError{http.StatusRequestTimeout, fmt.Sprintf(
			"the request body arrived slower than %d bytes/s over %s (server.min_body_rate, server.min_body_rate_window)",
			b.limits.MinBodyRate, b.limits.MinBodyRateWindow)}
	}
	return b.err
}

// advance closes the windows that ended by now, failing if one of them
// brought less than need.
func (b *rateReader) advance(now time.Time) error {
	for !now.Before(b.end) {
		if b.got < b.need {
			return b.fail()
		}
		b.got = 0
		b.end = b.end.Add(b.window)
	}
	return nil
}

func (b *rateReader) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	if err := b.advance(b.now()); err != nil {
		return 0, err
	}
	if b.rc != nil {
		// The body falls short at the end of this window unless it has
		// brought enough already, then at the end of the next.
		deadline := b.end
		if b.got >= b.need {
			deadline = b.end.Add(b.window)
		}
		if err := b.rc.SetReadDeadline(deadline); err != nil {
			b.rc = nil
		}
	}
	n, err := b.r.Read(p)
	now := b.now()
	if n > 0 {
		// With deadlines set, bytes a read returns arrived before its
		// deadline: when that was the end of the current window (it had
		// not brought enough yet), they count for it even if the read
		// returns a moment after. Otherwise they count for the window
		// they are read in.
		early := now.Before(b.end) || (b.rc != nil && b.got < b.need)
		if early {
			b.got += int64(n)
		}
		if aerr := b.advance(now); aerr != nil && err == nil {
			err = aerr
		}
		if !early {
			b.got += int64(n)
		}
	}
	switch {
	case err == nil:
	case errors.Is(err, io.EOF):
		if b.rc != nil {
			_ = b.rc.SetReadDeadline(time.Time{}) // the body is in: nothing more to bound
		}
	case isTimeout(err):
		err = b.fail()
	}
	return n, err
}

// isTimeout reports whether err is a read that reached its deadline.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, os.ErrDeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}
