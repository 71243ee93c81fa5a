package gateway

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ctigate/ctigate/custody"
	"github.com/ctigate/ctigate/store/bolt"
	"golang.org/x/mod/sumdb/tlog"
)

// TestTreeHeadSkipsLateCheckpoint: an evidence package is proven against
// the checkpoint that signs the most entries, not a late one appended
// after it (signing an earlier entry, as replicas of earlier builds could
// append), whose tree would leave the entries between out.
func TestTreeHeadSkipsLateCheckpoint(t *testing.T) {
	st, err := bolt.Open(filepath.Join(t.TempDir(), "ctigate.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	ctx := t.Context()
	signer := custody.NewSigner(ed25519.NewKeyFromSeed(bytes.Repeat([]byte{3}, 32)))
	at := time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC)
	delivered := func() custody.Entry {
		at = at.Add(time.Second)
		return custody.Entry{Action: custody.Delivered, User: "police", Org: "Police", Collection: "c", Count: 1,
			FirstAdded: custody.FormatTime(at), LastAdded: custody.FormatTime(at), Filter: custody.FilterDigest(nil),
			ItemsRoot: custody.HexRoot(tlog.Hash(sha256.Sum256([]byte(at.String()))))}
	}
	zero := strings.Repeat("0", 64)
	var heads []custody.Head
	add := func(e custody.Entry) {
		t.Helper()
		out, err := st.AppendEntries(ctx, []custody.Entry{e})
		if err != nil {
			t.Fatal(err)
		}
		heads = append(heads, custody.Head{Seq: out[0].Seq, Hash: out[0].Hash})
	}
	for range 3 {
		add(delivered())
	}
	add(signer.Checkpoint(heads[2], zero)) // seq 4 signs 3
	add(delivered())                       // seq 5
	add(signer.Checkpoint(heads[4], zero)) // seq 6 signs 5
	add(signer.Checkpoint(heads[3], zero)) // seq 7, late: signs 4
	th, err := treeHead(ctx, EvidenceSource{Ledger: st})
	if err != nil {
		t.Fatal(err)
	}
	if th.Seq != 6 || th.SignedSeq != 5 {
		t.Fatalf("tree head: checkpoint %d signing %d, want 6 signing 5", th.Seq, th.SignedSeq)
	}
}
