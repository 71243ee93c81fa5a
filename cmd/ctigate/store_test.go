package main

import (
	"context"
	"log/slog"
	"testing"

	"github.com/ctigate/ctigate/config"
	"github.com/ctigate/ctigate/custody"
	"github.com/ctigate/ctigate/store"
)

// TestBackendPassesLedgerFeed: the embedded store's backend hands the
// ledger's index the entries the store keeps in memory
// (store.RecentLedger), as serve's checkpointer uses it; a ledger that
// keeps none leaves the index to read the lines.
func TestBackendPassesLedgerFeed(t *testing.T) {
	ctx := context.Background()
	st, err := openStore(ctx, &config.Config{DataDir: t.TempDir()}, slog.New(slog.DiscardHandler), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := st.AppendEntries(ctx, []custody.Entry{{Action: "user-added", User: "admin", Org: "CERT-A"}, {Action: "user-added", User: "analyst", Org: "CERT-A"}}); err != nil {
		t.Fatal(err)
	}
	var l store.IndexedLedger = st
	r, ok := l.(store.RecentLedger)
	if !ok {
		t.Fatal("the backend hides the store's ledger feed")
	}
	if es, ok := r.RecentIndexed(0, 2, nil); !ok || len(es) != 2 || es[1].Seq != 2 {
		t.Fatalf("RecentIndexed(0, 2) = %+v, %v", es, ok)
	}
	hidden := &backend{Store: st.Store, ledgerLines: struct{ ledgerLines }{st.ledgerLines}}
	if es, ok := hidden.RecentIndexed(0, 2, nil); ok || len(es) != 0 {
		t.Fatalf("a ledger without a feed: RecentIndexed(0, 2) = %+v, %v", es, ok)
	}
}
