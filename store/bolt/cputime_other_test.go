//go:build !unix

package bolt

import "time"

func cpuTime() time.Duration { return 0 }
