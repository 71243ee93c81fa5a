package load

import (
	"sync"
	"time"
)

// sampleInterval is how often the gateway's memory is read.
const sampleInterval = 100 * time.Millisecond

// procMemory is what bench reads from /proc/<pid>/status, in bytes.
type procMemory struct {
	rss, anon, file, hwm int64
}

// rssSampler reads a process's memory every sampleInterval until stopped,
// keeping the peaks overall and per phase.
type rssSampler struct {
	pid  int
	quit chan struct{}
	done chan struct{}

	mu      sync.Mutex
	phase   string
	last    procMemory
	res     RSSResult
	lastErr error
}

func startSampler(pid int) *rssSampler {
	s := &rssSampler{pid: pid, phase: "start", quit: make(chan struct{}), done: make(chan struct{})}
	s.sample()
	go s.loop()
	return s
}

func (s *rssSampler) loop() {
	defer close(s.done)
	t := time.NewTicker(sampleInterval)
	defer t.Stop()
	for {
		select {
		case <-s.quit:
			return
		case <-t.C:
			s.sample()
		}
	}
}

func (s *rssSampler) sample() {
	m, err := readProcMemory(s.pid)
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		s.lastErr = err
		return
	}
	s.last = m
	r := &s.res
	r.Samples++
	r.PeakBytes = max(r.PeakBytes, m.rss)
	r.PeakAnon = max(r.PeakAnon, m.anon)
	r.PeakFile = max(r.PeakFile, m.file)
	r.HWMBytes = max(r.HWMBytes, m.hwm)
	switch s.phase {
	case "start":
		r.IdlePeak = max(r.IdlePeak, m.rss)
	case "push":
		r.PushPeak = max(r.PushPeak, m.rss)
	case "poll":
		r.PollPeak = max(r.PollPeak, m.rss)
	}
}

// setPhase takes a sample for the phase ending, then attributes later
// samples to name.
func (s *rssSampler) setPhase(name string) {
	s.sample()
	s.mu.Lock()
	s.phase = name
	s.mu.Unlock()
}

// result takes a last sample (VmHWM included) and returns the figures, or
// nil when the memory could never be read.
func (s *rssSampler) result() *RSSResult {
	s.sample()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.res.Samples == 0 {
		return nil
	}
	r := s.res
	return &r
}

// current returns the last sample.
func (s *rssSampler) current() procMemory {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.last
}

// stop ends sampling and waits for the sampling goroutine. Idempotent only
// through spawned.stop, which calls it once.
func (s *rssSampler) stop() {
	close(s.quit)
	<-s.done
}
