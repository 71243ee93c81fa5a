package load

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// reportEvery is how often a phase reports its progress.
const reportEvery = 5 * time.Second

// reporter writes progress lines during a phase: objects so far, the rate
// over the last interval (which shows a gateway slowing down as its store
// grows) and the gateway's current RSS when bench started it.
type reporter struct {
	logf   func(format string, args ...any)
	every  time.Duration
	server *spawned
}

// start reports on done every r.every until the returned stop is called.
// total is the number of objects expected, or -1.
func (r reporter) start(phase string, total int64, done *atomic.Int64) (stop func()) {
	if r.logf == nil || r.every <= 0 {
		return func() {}
	}
	quit := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(r.every)
		defer t.Stop()
		var last int64
		lastAt := time.Now()
		for {
			select {
			case <-quit:
				return
			case now := <-t.C:
				n := done.Load()
				line := fmt.Sprintf("%s: %s objects", phase, Group(n))
				if total > 0 {
					line += fmt.Sprintf(" of %s (%.0f%%)", Group(total), 100*float64(n)/float64(total))
				}
				line += fmt.Sprintf(", %s/s over the last %.0f s", Group(int64(float64(n-last)/now.Sub(lastAt).Seconds())), now.Sub(lastAt).Seconds())
				if m := r.server.current(); m.rss > 0 {
					line += fmt.Sprintf("; gateway RSS %s (file %s)", mib(m.rss), mib(m.file))
				}
				r.logf("%s", line)
				last, lastAt = n, now
			}
		}
	}()
	return func() {
		close(quit)
		wg.Wait()
	}
}
