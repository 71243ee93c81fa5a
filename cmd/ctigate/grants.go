package main

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"sync"

	"github.com/go-json-experiment/json"

	"github.com/ctigate/ctigate/access"
	"github.com/ctigate/ctigate/config"
	"github.com/ctigate/ctigate/custody"
)

// grantsLedger records in the custody ledger what each configuration put
// in force changes in access (access.Grants): the access changes that
// lead from the state the ledger last recorded to the configuration's,
// then its config-loaded entry carrying the digest of the new state. The
// last recorded state is read from the ledger, never remembered: the
// first record replays every access change since the ledger's start;
// later ones read only the entries appended since (their own included).
//
// So that a start does not replay a ledger of tens of millions of entries,
// each record leaves a memo (store.Memos) of the state it put in force and
// the seq of its config-loaded entry; the first record of the next start
// replays from there, once the ledger's entry at that seq is a
// config-loaded entry whose grants_sha256 is the memo state's digest (the
// chain, not the memo, is the evidence). Otherwise it replays from the
// start.
type grantsLedger struct {
	ledger ledgerLines
	log    *slog.Logger

	mu      sync.Mutex
	grants  *access.Grants // what the entries through seq through add up to
	through uint64
	memoed  bool // the memo was tried
}

// grantsMemoName names the memo of the access state.
const grantsMemoName = "grants"

// grantsMemo is the access state in force at a config-loaded entry.
type grantsMemo struct {
	Through uint64          `json:"through"` // the config-loaded entry's seq
	Facts   []custody.Entry `json:"facts"`   // the state, as the changes that lead to it from none
}

// fromMemo starts the replay from the memo, when the ledger confirms it.
func (g *grantsLedger) fromMemo(ctx context.Context) {
	b, err := g.ledger.Memo(ctx, grantsMemoName)
	if err != nil || b == nil {
		if err != nil {
			g.log.Warn("custody: the access state's memo could not be read; replaying the ledger", "err", err)
		}
		return
	}
	var memo grantsMemo
	if err := json.Unmarshal(b, &memo); err != nil || memo.Through == 0 {
		g.log.Warn("custody: the access state's memo is malformed; replaying the ledger", "err", err)
		return
	}
	state := access.NewGrants()
	for i := range memo.Facts {
		state.Apply(&memo.Facts[i])
	}
	e, err := g.ledger.LedgerEntry(ctx, memo.Through)
	if err != nil || e.Action != custody.ConfigLoaded || e.GrantsSHA256 != state.Digest() {
		g.log.Warn("custody: the access state's memo does not match the ledger; replaying the ledger", "seq", memo.Through, "err", err)
		return
	}
	g.grants, g.through = state, memo.Through
}

// putMemo leaves the memo of state, in force from the config-loaded entry
// seq. A failure costs only a longer replay at the next start.
func (g *grantsLedger) putMemo(ctx context.Context, state *access.Grants, seq uint64) {
	b, err := json.Marshal(grantsMemo{Through: seq, Facts: access.NewGrants().Changes(state)})
	if err == nil {
		err = g.ledger.PutMemo(ctx, grantsMemoName, b)
	}
	if err != nil {
		g.log.Warn("custody: the access state's memo was not stored; the next start replays the ledger", "err", err)
	}
}

func newGrantsLedger(l ledgerLines, log *slog.Logger) *grantsLedger {
	return &grantsLedger{ledger: l, log: log, grants: access.NewGrants()}
}

// actionKey is how an entry's JSON text starts its action member. A
// quote inside a string member is escaped, so it occurs nowhere else.
var actionKey = []byte(`"action":"`)

// accessActions are how the actions mayBeAccess looks for begin.
var accessActions = [][]byte{[]byte(custody.ConfigLoaded + `"`), []byte("user-"), []byte("access-"), []byte("token-")}

// mayBeAccess reports, without decoding it, whether an entry's JSON text
// may be an access change or a config-loaded entry.
func mayBeAccess(line []byte) bool {
	i := bytes.Index(line, actionKey)
	if i < 0 {
		return false
	}
	rest := line[i+len(actionKey):]
	for _, a := range accessActions {
		if bytes.HasPrefix(rest, a) {
			return true
		}
	}
	return false
}

// catchUp applies the access changes of the entries appended since the
// last call and checks the state against each config-loaded entry's
// grants_sha256, warning when they differ (another replica appended
// between reading and recording, or the ledger predates such entries).
func (g *grantsLedger) catchUp(ctx context.Context) error {
	return g.ledger.LedgerLines(ctx, g.through, 0, func(seq uint64, line []byte) error {
		g.through = seq
		if !mayBeAccess(line) {
			return nil
		}
		var e custody.Entry
		if err := json.Unmarshal(line, &e); err != nil {
			return fmt.Errorf("ledger entry %d: %w", seq, err)
		}
		if e.Action == custody.ConfigLoaded {
			if e.GrantsSHA256 != "" && e.GrantsSHA256 != g.grants.Digest() {
				g.log.Warn("custody: the access changes recorded through this config-loaded entry do not add up to the access state it records; changes are recorded from what they add up to",
					"seq", seq, "recorded", e.GrantsSHA256)
			}
			return nil
		}
		g.grants.Apply(&e)
		return nil
	})
}

// record appends the access changes from the last recorded state to
// cfg's, then loaded (a config-loaded entry) with the digest of cfg's
// state, in one atomic write, and returns the entries as recorded.
func (g *grantsLedger) record(ctx context.Context, cfg *config.Config, loaded custody.Entry) ([]custody.Entry, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.memoed {
		g.memoed = true
		g.fromMemo(ctx)
	}
	if err := g.catchUp(ctx); err != nil {
		return nil, fmt.Errorf("reading the access state the ledger records: %w", err)
	}
	next := access.GrantsOf(cfg)
	entries := g.grants.Changes(next)
	loaded.GrantsSHA256 = next.Digest()
	out, err := g.ledger.AppendEntries(ctx, append(entries, loaded))
	// The replay through the config-loaded entry gives next only when no
	// other replica's entries came between the catch-up and this append;
	// otherwise no memo (an earlier one stays true of its own entry).
	if err == nil && len(out) > 0 && out[0].Seq == g.through+1 {
		g.putMemo(ctx, next, out[len(out)-1].Seq)
	}
	return out, err
}
