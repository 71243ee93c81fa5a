package server

import (
	"errors"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/ctigate/ctigate/config"
)

// scripted yields, at each read, the next chunk's bytes after advancing
// the fake clock by its delay; then io.EOF.
type scripted struct {
	clock  *time.Time
	chunks []chunk
}

type chunk struct {
	after time.Duration
	n     int
}

func (s *scripted) Read(p []byte) (int, error) {
	if len(s.chunks) == 0 {
		return 0, io.EOF
	}
	c := s.chunks[0]
	s.chunks = s.chunks[1:]
	*s.clock = s.clock.Add(c.after)
	return min(c.n, len(p)), nil
}

// TestBodyRateWindows: 100 bytes/s over 1 s windows, the first window
// 2 s long: each window must bring 100 bytes unless the body ends in it.
// Without a response controller the rate is checked as reads return.
func TestBodyRateWindows(t *testing.T) {
	l := config.ServerLimits{MinBodyRate: 100, MinBodyRateGrace: time.Second, MinBodyRateWindow: time.Second}
	cases := map[string]struct {
		chunks []chunk
		fails  bool
	}{
		"fast":                    {chunks: []chunk{{0, 5000}}},
		"steady at the rate":      {chunks: []chunk{{time.Second, 100}, {time.Second, 100}, {time.Second, 100}, {time.Second, 100}}},
		"slow start in the grace": {chunks: []chunk{{1900 * time.Millisecond, 100}, {900 * time.Millisecond, 100}}},
		"1 byte/s":                {chunks: []chunk{{time.Second, 1}, {time.Second, 1}, {time.Second, 1}}, fails: true},
		"burst then stall":        {chunks: []chunk{{0, 1000}, {3500 * time.Millisecond, 1}}, fails: true},
		"burst, pause, the end":   {chunks: []chunk{{0, 1000}, {2500 * time.Millisecond, 1}}},
		"burst, then the rate":    {chunks: []chunk{{0, 1000}, {1500 * time.Millisecond, 100}, {time.Second, 100}}},
		"a window short":          {chunks: []chunk{{500 * time.Millisecond, 100}, {2 * time.Second, 50}, {time.Second, 100}}, fails: true},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			clock := time.Unix(0, 0)
			now := func() time.Time { return clock }
			rd := newRateReader(&scripted{clock: &clock, chunks: c.chunks}, nil, l, now)
			_, err := io.ReadAll(rd)
			var se *statusError
			switch {
			case c.fails && (!errors.As(err, &se) || se.code != http.StatusRequestTimeout):
				t.Errorf("got %v, want a 408", err)
			case !c.fails && err != nil:
				t.Errorf("got %v, want the whole body", err)
			}
		})
	}
}
