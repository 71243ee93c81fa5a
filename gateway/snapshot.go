package gateway

import (
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/ctigate/ctigate/access"
	"github.com/ctigate/ctigate/config"
	"github.com/ctigate/ctigate/policy"
)

// Snapshot is one version of the configuration with what is compiled
// from it (routes, access rules): immutable once made. Every reader loads
// the current one once per request or per pass and uses only it, so a
// request never mixes two versions.
type Snapshot struct {
	Version uint64 // 1, 2, … in the order snapshots were made
	Config  *config.Config
	Routes  []*policy.Route
	Access  *access.Policy
}

// Current is the snapshot in force, behind one atomic pointer: a new one
// replaces it at once for every later reader (runtime administration,
// a reload).
type Current struct {
	p  atomic.Pointer[Snapshot]
	mu sync.Mutex // serialises Replace
}

// NewCurrent returns a Current holding the snapshot of cfg.
func NewCurrent(cfg *config.Config) (*Current, error) {
	c := &Current{}
	if _, err := c.Replace(cfg); err != nil {
		return nil, err
	}
	return c, nil
}

// Load returns the snapshot in force.
func (c *Current) Load() *Snapshot { return c.p.Load() }

// Replace validates cfg, compiles it and makes it the snapshot in force.
// On an error the snapshot in force stays.
func (c *Current) Replace(cfg *config.Config) (*Snapshot, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	routes, err := policy.CompileRoutes(cfg.Routes)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	var v uint64 = 1
	if old := c.p.Load(); old != nil {
		v = old.Version + 1
	}
	s := &Snapshot{Version: v, Config: cfg, Routes: routes, Access: access.New(cfg)}
	c.p.Store(s)
	return s, nil
}
