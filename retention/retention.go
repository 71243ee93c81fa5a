// Package retention deletes object versions older than their collection's
// configured retention. Each deletion goes through the store's
// DeleteObject with the actor "retention", so the custody ledger keeps a
// deleted entry with the version's hash; the ledger itself is not pruned.
package retention

import (
	"context"
	"log/slog"
	"time"

	"github.com/ctigate/ctigate/custody"
	"github.com/ctigate/ctigate/internal/backoff"
	"github.com/ctigate/ctigate/store"
)

// Actor is who the ledger records for retention deletions.
var Actor = store.Actor{User: "retention", Org: custody.GatewayOrg}

// Store is what the sweeper needs.
type Store interface {
	Objects(ctx context.Context, collection string, q store.Query) (store.Page, error)
	DeleteObject(ctx context.Context, collection, id string, versions []store.VersionMatch, specVersions []string) (int, error)
}

// Sweeper deletes versions whose date_added is older than their
// collection's retention.
type Sweeper struct {
	Store     Store
	Retention map[string]time.Duration // collection id → how long versions are kept; <= 0 keeps them
	// RetentionOf, when set, is read at each sweep instead of Retention
	// (the configuration in force, which a reload may replace).
	RetentionOf func() map[string]time.Duration
	Clock       func() time.Time // nil: time.Now
	Logger      *slog.Logger
}

// Sweep deletes what has expired, and returns how many versions it deleted.
func (s *Sweeper) Sweep(ctx context.Context) (int, error) {
	now := time.Now
	if s.Clock != nil {
		now = s.Clock
	}
	// Expiry is housekeeping, not a retraction: the tombstones it leaves
	// are of kind expired, which fan-out and consumers pass over, so routes
	// keep what they published from expired source versions.
	ctx = store.WithRemoval(store.WithActor(ctx, Actor), store.Removal{Kind: store.RemovalExpired})
	total := 0
	keeps := s.Retention
	if s.RetentionOf != nil {
		keeps = s.RetentionOf()
	}
	for coll, keep := range keeps {
		if keep <= 0 {
			continue
		}
		cutoff := now().Add(-keep)
		// Versions come in date_added order: stop at the first one kept.
		// Deleting does not move the cursor (keyset over date_added).
		q := store.Query{Versions: []store.VersionMatch{{Kind: store.All}}, WithoutRaw: true, Limit: 500}
	pages:
		for {
			p, err := s.Store.Objects(ctx, coll, q)
			if err != nil {
				return total, err
			}
			for _, o := range p.Objects {
				if !o.DateAdded.Before(cutoff) {
					break pages
				}
				n, err := s.Store.DeleteObject(ctx, coll, o.ID, []store.VersionMatch{{Kind: store.At, At: o.Version}}, []string{o.SpecVersion})
				if err != nil {
					return total, err
				}
				total += n
			}
			if !p.More {
				break
			}
			q.Next = p.Next
		}
	}
	return total, nil
}

// Run sweeps every interval until ctx ends. A failed sweep (deletions
// are writes, which a full disk refuses too) is retried after a wait that
// doubles with each failure in a row, from interval up to 30 seconds or
// interval, whichever is longer; the failure is logged once, and once more
// when a sweep succeeds again (package backoff).
func (s *Sweeper) Run(ctx context.Context, interval time.Duration) {
	log := s.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	retry := backoff.Retry{What: "retention: sweep", Log: log, Min: interval}
	wait := time.NewTimer(interval)
	defer wait.Stop()
	for {
		next := interval
		if n, err := s.Sweep(ctx); err != nil {
			if ctx.Err() != nil {
				return
			}
			next = retry.Failed(err)
		} else {
			retry.Succeeded()
			if n > 0 {
				log.Info("retention: deleted expired object versions", "versions", n)
			}
		}
		wait.Reset(next)
		select {
		case <-ctx.Done():
			return
		case <-wait.C:
		}
	}
}
