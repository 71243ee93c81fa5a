package redis

import (
	"context"
	"fmt"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// leaseScript takes or renews lease KEYS[1] for holder ARGV[1] for ARGV[2]
// milliseconds, unless another holder has it.
var leaseScript = goredis.NewScript(`
local cur = redis.call('GET', KEYS[1])
if cur == false or cur == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
`)

// Lease takes or renews the lease name for holder for ttl and reports
// whether holder has it: one holder at a time, until it stops renewing.
// Gateway replicas share fan-out work this way (fanout.Options.Lease).
func (s *Store) Lease(ctx context.Context, name, holder string, ttl time.Duration) (bool, error) {
	const op = "redis.Lease"
	if name == "" || holder == "" || ttl < time.Millisecond {
		return false, fmt.Errorf("%s: need a name, a holder and a ttl of at least 1ms", op)
	}
	n, err := leaseScript.Run(ctx, s.c, []string{s.prefix + ":lease:" + name}, holder, ttl.Milliseconds()).Int()
	if err != nil {
		return false, s.fail(op, err)
	}
	return n == 1, nil
}

// releaseScript deletes lease KEYS[1] if holder ARGV[1] has it.
var releaseScript = goredis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
`)

// ReleaseLease gives up the lease name if holder has it (another holder's
// lease is left alone), so that another holder may take it at once.
func (s *Store) ReleaseLease(ctx context.Context, name, holder string) error {
	const op = "redis.ReleaseLease"
	if name == "" || holder == "" {
		return fmt.Errorf("%s: need a name and a holder", op)
	}
	if err := releaseScript.Run(ctx, s.c, []string{s.prefix + ":lease:" + name}, holder).Err(); err != nil {
		return s.fail(op, err)
	}
	return nil
}
