package retention

import (
	"context"
	"log/slog"
	"time"
)

// StatusStore is a store that removes expired TAXII status resources by
// a sweep (bolt.Store.SweepStatuses): each call removes up to limit of
// them in one write and returns how many it removed. A store whose
// statuses expire by themselves (Redis keys with a TTL) needs no sweep.
type StatusStore interface {
	SweepStatuses(ctx context.Context, limit int) (int, error)
}

// DefaultStatusBatch is StatusSweeper.Batch when it is not set.
const DefaultStatusBatch = 1000

// StatusSweeper removes the status resources whose Expires has passed
// (store.Status.Expires, set from status_retention), in batches, so that
// no single write holds many of them. Until it does, the store already
// reads them as not found.
type StatusSweeper struct {
	Store  StatusStore
	Batch  int // statuses removed per write; <= 0 means DefaultStatusBatch
	Logger *slog.Logger
}

// Sweep removes every expired status, a batch per write, and returns how
// many it removed.
func (s *StatusSweeper) Sweep(ctx context.Context) (int, error) {
	batch := s.Batch
	if batch <= 0 {
		batch = DefaultStatusBatch
	}
	total := 0
	for {
		n, err := s.Store.SweepStatuses(ctx, batch)
		total += n
		if err != nil || n < batch {
			return total, err
		}
		if err := ctx.Err(); err != nil {
			return total, err
		}
	}
}

// Run sweeps every interval until ctx ends.
func (s *StatusSweeper) Run(ctx context.Context, interval time.Duration) {
	log := s.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if n, err := s.Sweep(ctx); err != nil {
			if ctx.Err() != nil {
				return
			}
			log.Error("retention: status sweep failed", "err", err)
		} else if n > 0 {
			log.Info("retention: removed expired statuses", "statuses", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
