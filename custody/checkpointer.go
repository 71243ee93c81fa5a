package custody

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/ctigate/ctigate/internal/backoff"
)

// ErrStaleCheckpoint is what a Chain's AppendEntries returns (wrapped)
// for a checkpoint that signs no later entry than a checkpoint already in
// the chain: several gateway processes sign one chain, and one whose
// tree took longer would otherwise land after a later one, which
// verifiers refuse (checkpoints sign ever later entries). Nothing was
// appended; the later checkpoint covers what it signed.
var ErrStaleCheckpoint = errors.New("custody: a later checkpoint is already in the chain")

// Chain is what the checkpointer needs from the ledger's storage.
type Chain interface {
	LedgerHead(ctx context.Context) (Head, error)
	AppendEntries(ctx context.Context, entries []Entry) ([]Entry, error)
}

// Checkpointer signs the chain head every Every entries or every Interval,
// whichever comes first, when entries were added since the last checkpoint.
type Checkpointer struct {
	Chain    Chain
	Signer   *Signer
	Every    uint64        // entries; 0 means only by time
	Interval time.Duration // > 0
	Poll     time.Duration // how often the head is looked at; 0 means min(Interval, 200ms)
	Logger   *slog.Logger
	Clock    func() time.Time // when a checkpoint is due by Interval; default time.Now
	// Root returns the Merkle tree hash (hex) of entries 1..size, building
	// what the backend stores of the tree first.
	Root func(ctx context.Context, size uint64) (string, error)
}

// Sign appends a checkpoint over the current head unless the head is a
// checkpoint already, and returns the head after it.
func (c *Checkpointer) Sign(ctx context.Context) (Head, error) {
	head, err := c.Chain.LedgerHead(ctx)
	if err != nil || head.Seq == 0 {
		return head, err
	}
	last, err := c.isCheckpoint(ctx, head)
	if err != nil || last {
		return head, err
	}
	if c.Root == nil {
		return head, errors.New("custody: a checkpointer without Root cannot sign the tree")
	}
	root, err := c.Root(ctx, head.Seq)
	if err != nil {
		return head, err
	}
	out, err := c.Chain.AppendEntries(ctx, []Entry{c.Signer.Checkpoint(head, root)})
	if errors.Is(err, ErrStaleCheckpoint) {
		return c.Chain.LedgerHead(ctx) // another process signed later entries
	}
	if err != nil {
		return head, err
	}
	e := out[0]
	return Head{Seq: e.Seq, Hash: e.Hash, Time: e.Time}, nil
}

// isCheckpoint reports whether the head entry is a checkpoint that signs
// every entry before it. A checkpoint appended while other entries were
// (its tree computed, then theirs appended before it) signs less: the
// entries between are not signed until the next checkpoint, which must
// then be made.
func (c *Checkpointer) isCheckpoint(ctx context.Context, head Head) (bool, error) {
	if r, ok := c.Chain.(interface {
		LedgerEntry(ctx context.Context, seq uint64) (Entry, error)
	}); ok {
		e, err := r.LedgerEntry(ctx, head.Seq)
		if err != nil {
			return false, err
		}
		return e.Action == Checkpoint && e.SignedSeq+1 == head.Seq, nil
	}
	return false, nil
}

// Run signs until ctx ends, then signs once more (with a short timeout of
// its own) so that a clean shutdown leaves a signed head. After a failure
// (say, the disk is full: a checkpoint is a ledger write) it waits longer
// each time, from Poll doubling up to 30 seconds, and logs the failure
// once, then once more when it succeeds again (package backoff).
func (c *Checkpointer) Run(ctx context.Context) {
	log := c.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	poll := c.Poll
	if poll <= 0 {
		poll = min(c.Interval, 200*time.Millisecond)
	}
	now := c.Clock
	if now == nil {
		now = time.Now
	}
	retry := backoff.Retry{What: "custody: checkpointing", Log: log, Min: poll}
	t := time.NewTimer(poll)
	defer t.Stop()
	var signed uint64 // seq of the last checkpoint made here
	lastAt := now()
	for {
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			if _, err := c.Sign(fctx); err != nil {
				log.Error("custody: final checkpoint failed", "err", err)
			}
			cancel()
			return
		case <-t.C:
		}
		h, err := c.poll(ctx, signed, lastAt, now)
		switch {
		case err != nil && ctx.Err() != nil:
			t.Reset(poll) // ending: the final checkpoint comes next
		case err != nil:
			t.Reset(retry.Failed(err))
		default:
			retry.Succeeded()
			if h.Seq > signed {
				lastAt = now()
				// A checkpoint that raced with other entries leaves
				// them unsigned: the next one is due as any other.
				if full, err := c.isCheckpoint(ctx, h); err == nil && full {
					signed = h.Seq
				}
			}
			t.Reset(poll)
		}
	}
}

// poll signs the head when a checkpoint is due: entries were added since
// the last one made here (at signed, lastAt), and Interval has passed or
// Every entries were added. It returns the checkpoint made, if one was.
func (c *Checkpointer) poll(ctx context.Context, signed uint64, lastAt time.Time, now func() time.Time) (Head, error) {
	head, err := c.Chain.LedgerHead(ctx)
	if err != nil {
		return Head{}, fmt.Errorf("reading the ledger head: %w", err)
	}
	if head.Seq <= signed {
		return Head{}, nil
	}
	due := now().Sub(lastAt) >= c.Interval || (c.Every > 0 && head.Seq-signed >= c.Every)
	if !due {
		return Head{}, nil
	}
	h, err := c.Sign(ctx)
	if err != nil {
		return Head{}, fmt.Errorf("signing a checkpoint: %w", err)
	}
	return h, nil
}
