package custody

import (
	"time"

	"github.com/go-json-experiment/json"
)

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }

func timeAt(i int) time.Time {
	return time.Date(2026, 11, 28, 0, 0, 0, 0, time.UTC).Add(time.Duration(i) * time.Microsecond)
}
