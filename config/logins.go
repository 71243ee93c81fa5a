package config

import (
	"time"

	"github.com/ctigate/ctigate/auth"
)

// Auth bounds password logins, whose hashes are slow to verify on
// purpose, against floods of guesses (see auth.Throttle): failures are
// counted per user name and client address and per address, and hashes
// are verified a few at a time.
type Auth struct {
	// MaxFailuresPerMinute is how many failed logins one user name may
	// have from one client address before it is refused (429): a bucket
	// of that many, refilled at that many a minute. A success resets it.
	MaxFailuresPerMinute int `yaml:"max_failures_per_minute"`
	// MaxAddressFailuresPerMinute is the same for one client address
	// under any user names, existing or not. At least
	// max_failures_per_minute.
	MaxAddressFailuresPerMinute int `yaml:"max_address_failures_per_minute"`
	// MaxConcurrentHashes is how many password hashes are verified at
	// once; 0: the number of CPUs.
	MaxConcurrentHashes int `yaml:"max_concurrent_hashes"`
	// MaxQueuedHashes is how many logins may wait for a hash slot; more
	// are refused (503).
	MaxQueuedHashes int `yaml:"max_queued_hashes"`
	// HashQueueWait is the longest a login waits for a hash slot before
	// it is refused (503).
	HashQueueWait time.Duration `yaml:"hash_queue_wait"`
	// MaxTrackedClients is how many (user name, address) pairs and
	// addresses the gateway remembers failures of, together; past it the
	// least recently seen is forgotten.
	MaxTrackedClients int `yaml:"max_tracked_clients"`
}

// DefaultAuth is the auth section before the file is read.
func DefaultAuth() Auth {
	return Auth{
		MaxFailuresPerMinute:        10,
		MaxAddressFailuresPerMinute: 60,
		MaxQueuedHashes:             16,
		HashQueueWait:               time.Second,
		MaxTrackedClients:           20000,
	}
}

// Limits returns the auth section as auth.Throttle limits.
func (a Auth) Limits() auth.ThrottleLimits {
	return auth.ThrottleLimits{
		FailuresPerMinute:        a.MaxFailuresPerMinute,
		AddressFailuresPerMinute: a.MaxAddressFailuresPerMinute,
		MaxHashes:                a.MaxConcurrentHashes,
		MaxQueued:                a.MaxQueuedHashes,
		QueueWait:                a.HashQueueWait,
		MaxTracked:               a.MaxTrackedClients,
	}
}

// validate checks the auth section. A zero field (as in a Config not
// made from Default) takes its default.
func (a Auth) validate(bad func(key, format string, args ...any)) {
	l := a.Limits().WithDefaults()
	if a.MaxFailuresPerMinute < 0 || a.MaxFailuresPerMinute > 10000 {
		bad("auth.max_failures_per_minute", "must be from 1 to 10000 (0: the default, 10)")
	}
	if a.MaxAddressFailuresPerMinute < 0 || a.MaxAddressFailuresPerMinute > 100000 {
		bad("auth.max_address_failures_per_minute", "must be from 1 to 100000 (0: the default, 60)")
	} else if l.AddressFailuresPerMinute < l.FailuresPerMinute {
		bad("auth.max_address_failures_per_minute", "must be at least auth.max_failures_per_minute (%d)", l.FailuresPerMinute)
	}
	if a.MaxConcurrentHashes < 0 || a.MaxConcurrentHashes > 1024 {
		bad("auth.max_concurrent_hashes", "must be from 0 (the number of CPUs) to 1024")
	}
	if a.MaxQueuedHashes < 0 || a.MaxQueuedHashes > 100000 {
		bad("auth.max_queued_hashes", "must be from 1 to 100000 (0: the default, 16)")
	}
	if a.HashQueueWait != 0 && (a.HashQueueWait < 10*time.Millisecond || a.HashQueueWait > time.Minute) {
		bad("auth.hash_queue_wait", "must be from 10ms to 1m (0: the default, 1s)")
	}
	if a.MaxTrackedClients != 0 && (a.MaxTrackedClients < 100 || a.MaxTrackedClients > 10000000) {
		bad("auth.max_tracked_clients", "must be from 100 to 10000000 (0: the default, 20000)")
	}
}
