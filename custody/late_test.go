package custody

import (
	"crypto/ed25519"
	"fmt"
	"strings"
	"testing"
	"time"
)

// lateChain builds a chain in which checkpoints sign the entries plan
// names: plan[i] is, for the entry at seq i+1, 0 for an ordinary entry or
// the seq a checkpoint there signs (its root computed from the entries up
// to it), with corrupt applied to that checkpoint's entry before sealing
// when it is the one at seq bad.
func lateChain(t *testing.T, s *Signer, plan []uint64, bad uint64, corrupt func(*Entry)) [][]byte {
	t.Helper()
	var (
		lines  [][]byte
		head   Head
		hashes = map[uint64]string{}
	)
	at := time.Date(2026, 12, 7, 1, 0, 0, 0, time.UTC)
	for i, signs := range plan {
		seq := uint64(i + 1)
		e := Entry{Action: Received, User: "cert-a", Org: "CERT-A", ObjectID: fmt.Sprintf("indicator--%d", i),
			ObjectVersion: "2026-01-01T00:00:00.000Z", SHA256: strings.Repeat("ab", 32), Collection: "inbound"}
		if signs > 0 {
			var tree Compact
			for k := uint64(1); k <= signs; k++ {
				leaf, err := LeafHash(hashes[k])
				if err != nil {
					t.Fatal(err)
				}
				tree.Append(leaf)
			}
			e = s.Checkpoint(Head{Seq: signs, Hash: hashes[signs]}, HexRoot(tree.Root()))
			if seq == bad {
				corrupt(&e)
			}
		}
		e.Time = FormatTime(at.Add(time.Duration(i) * time.Millisecond))
		line, err := SealJSON(&e, head)
		if err != nil {
			t.Fatal(err)
		}
		lines = append(lines, line)
		head = Head{Seq: e.Seq, Hash: e.Hash}
		hashes[seq] = e.Hash
	}
	return lines
}

// TestLateCheckpoint: a checkpoint that signs an earlier entry than the
// checkpoint before it (two replicas signing at once, as builds before
// the store refused it) verifies when its hash, root and signature are
// right, adds no coverage, and is refused when any is wrong or when it
// signs an entry before the checkpoint before the last.
func TestLateCheckpoint(t *testing.T) {
	s, pub := newSigner(t)
	// Entries 1-4, a checkpoint of 4, entries 6-8, a checkpoint of 8,
	// late checkpoints of 7 and of 4 (replicas signing at once), an
	// entry, a checkpoint of 12.
	plan := []uint64{0, 0, 0, 0, 4, 0, 0, 0, 8, 7, 4, 0, 12}
	lines := lateChain(t, s, plan, 0, nil)
	rep, err := VerifyJSONL(join(lines), VerifyOptions{Keys: []ed25519.PublicKey{pub}})
	if err != nil {
		t.Fatalf("a chain with late checkpoints: %v", err)
	}
	if rep.Checkpoints != 5 || rep.Late != 2 || rep.RootsChecked != 5 || rep.SignedThrough != 13 {
		t.Fatalf("report %+v: want 5 checkpoints, 2 late, 5 roots checked, signed through 13", rep)
	}

	// A late checkpoint signing an entry before the one the checkpoint
	// before the last signs: refused.
	wantBroken(t, "a checkpoint of 3 after checkpoints of 4 and 8", lateChain(t, s, []uint64{0, 0, 0, 0, 4, 0, 0, 0, 8, 7, 3}, 0, nil), VerifyOptions{}, 11, 11)

	// Wrong root, wrong signed hash, unpinned key: refused, naming it.
	wantBroken(t, "a late checkpoint with another root", lateChain(t, s, plan, 10, func(e *Entry) {
		*e = s.Checkpoint(Head{Seq: e.SignedSeq, Hash: e.SignedHash}, strings.Repeat("0", 64))
	}), VerifyOptions{}, 10, 10)
	wantBroken(t, "a late checkpoint with another signed hash", lateChain(t, s, plan, 10, func(e *Entry) {
		*e = s.Checkpoint(Head{Seq: e.SignedSeq, Hash: strings.Repeat("1", 64)}, e.Root)
	}), VerifyOptions{}, 10, 10)
	other, _ := newSigner(t)
	wantBroken(t, "a late checkpoint by an unpinned key", lateChain(t, s, plan, 10, func(e *Entry) {
		*e = other.Checkpoint(Head{Seq: e.SignedSeq, Hash: e.SignedHash}, e.Root)
	}), VerifyOptions{Keys: []ed25519.PublicKey{pub}}, 10, 10)
}
