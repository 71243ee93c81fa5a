package custody

import (
	"bytes"
	"crypto/ed25519"
	"strings"
	"testing"
	"time"

	"github.com/go-json-experiment/json"
	"golang.org/x/mod/sumdb/tlog"
)

// evidenceFixture builds a small ledger — X received and published, Y
// received, a page of the route's collection holding Y, X and Z
// delivered, a checkpoint — and the evidence package of X from it.
func evidenceFixture(t *testing.T) (*Evidence, ed25519.PublicKey) {
	ev, pub, _ := evidenceFixtureY(t)
	return ev, pub
}

// evidenceFixtureY also returns Y's received entry with its proof.
func evidenceFixtureY(t *testing.T) (*Evidence, ed25519.PublicKey, ProvenEntry) {
	t.Helper()
	s, pub := newSigner(t)
	salter := NewSalter([32]byte{7})
	hx, hy := strings.Repeat("a1", 32), strings.Repeat("b2", 32)
	at := time.Date(2026, 12, 6, 9, 0, 0, 0, time.UTC)
	page := []Item{
		{ID: "indicator--y", Version: "2026-01-01T00:00:00.000Z", SHA256: hy, Salt: salter.Salt("le", at)},
		{ID: "indicator--x", Version: "2026-01-01T00:00:00.000Z", SHA256: hx, Salt: salter.Salt("le", at.Add(time.Microsecond))},
		{ID: "indicator--z", Version: "2026-01-01T00:00:00.000Z", SHA256: strings.Repeat("c3", 32), Salt: salter.Salt("le", at.Add(2*time.Microsecond))},
	}
	var pageLeaves []tlog.Hash
	for i := range page {
		l, err := page[i].Leaf()
		if err != nil {
			t.Fatal(err)
		}
		pageLeaves = append(pageLeaves, l)
	}
	entries := []Entry{
		{Action: Received, User: "cert-a", Org: "CERT-A", ObjectID: "indicator--x", ObjectVersion: "2026-01-01T00:00:00.000Z", SHA256: hx, Collection: "inbound"},
		{Action: Received, User: "cert-b", Org: "CERT-B", ObjectID: "indicator--y", ObjectVersion: "2026-01-01T00:00:00.000Z", SHA256: hy, Collection: "inbound-b"},
		{Action: Published, User: "ctigate", ObjectID: "indicator--x", ObjectVersion: "2026-01-01T00:00:00.000Z", SHA256: hx, PublishedSHA256: hx, Collection: "le", Source: "inbound", Route: "r", PolicyVersion: "v1"},
		{Action: Delivered, User: "police", Org: "National Police", Collection: "le", Count: 3, FirstAdded: FormatTime(at), LastAdded: FormatTime(at.Add(2 * time.Microsecond)),
			Filter: FilterDigest(nil), ItemsRoot: HexRoot(TreeRoot(pageLeaves))},
	}
	var head Head
	var ledgerLeaves []tlog.Hash
	var lines [][]byte
	for i := range entries {
		entries[i].Time = FormatTime(at)
		p, err := Prepare(&entries[i])
		if err != nil {
			t.Fatal(err)
		}
		line, e := p.Seal(head, entries[i].Time)
		entries[i] = e
		lines = append(lines, line)
		head = Head{Seq: e.Seq, Hash: e.Hash}
		l, err := LeafHash(e.Hash)
		if err != nil {
			t.Fatal(err)
		}
		ledgerLeaves = append(ledgerLeaves, l)
	}
	tree, err := NewMemoryTree(ledgerLeaves)
	if err != nil {
		t.Fatal(err)
	}
	root, _ := tree.Root()
	cp := s.Checkpoint(head, HexRoot(root))
	cp.Time = FormatTime(at)
	cpLine, err := SealJSON(&cp, head)
	if err != nil {
		t.Fatal(err)
	}
	ev := &Evidence{Format: EvidenceFormat, ObjectID: "indicator--x", Created: FormatTime(at), TreeHead: cpLine, Versions: []Version{}}
	for _, i := range []int{0, 2, 3} {
		p, err := tree.Prove(int64(i))
		if err != nil {
			t.Fatal(err)
		}
		ev.Entries = append(ev.Entries, ProvenEntry{Entry: lines[i], Proof: p})
	}
	pt, err := NewMemoryTree(pageLeaves)
	if err != nil {
		t.Fatal(err)
	}
	pp, err := pt.Prove(1)
	if err != nil {
		t.Fatal(err)
	}
	ev.Deliveries = []DeliveryProof{{Seq: 4, Position: 1, Item: page[1], Proof: pp}}
	py, err := tree.Prove(1)
	if err != nil {
		t.Fatal(err)
	}
	return ev, pub, ProvenEntry{Entry: lines[1], Proof: py}
}

func verifyPackage(t *testing.T, ev *Evidence, opts VerifyOptions) (EvidenceReport, error) {
	t.Helper()
	b, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	return VerifyEvidence(bytes.NewReader(b), opts)
}

func TestEvidenceVerifies(t *testing.T) {
	ev, pub := evidenceFixture(t)
	rep, err := verifyPackage(t, ev, VerifyOptions{Keys: []ed25519.PublicKey{pub}})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Entries != 3 || rep.Deliveries != 1 || rep.TreeSize != 4 {
		t.Fatalf("report %+v", rep)
	}
	b, _ := json.Marshal(ev)
	for _, other := range []string{"indicator--y", "indicator--z", "CERT-B", "cert-b"} {
		if bytes.Contains(b, []byte(other)) {
			t.Errorf("the package of indicator--x names %s", other)
		}
	}
}

func TestEvidenceRefuses(t *testing.T) {
	other, _ := newSigner(t)
	otherPub := other.key.Public().(ed25519.PublicKey)
	for name, c := range map[string]struct {
		mutate func(ev *Evidence, y ProvenEntry)
		keys   bool // pin the other key
		want   string
	}{
		"altered entry": {mutate: func(ev *Evidence, _ ProvenEntry) {
			ev.Entries[0].Entry = bytes.Replace(ev.Entries[0].Entry, []byte("CERT-A"), []byte("CERT-C"), 1)
		}, want: "entry 1"},
		"entry re-hashed after alteration": {mutate: func(ev *Evidence, _ ProvenEntry) {
			var e Entry
			_ = json.Unmarshal(ev.Entries[0].Entry, &e)
			e.Org = "CERT-C"
			h, _ := ComputeHash(&e)
			e.Hash = h
			ev.Entries[0].Entry, _ = json.Marshal(&e)
		}, want: "inclusion proof"},
		"delivery of a version the page did not hold": {mutate: func(ev *Evidence, _ ProvenEntry) {
			ev.Deliveries[0].Item.Version = "2026-02-02T00:00:00.000Z"
		}, want: "did not hold"},
		"delivery at another position": {mutate: func(ev *Evidence, _ ProvenEntry) {
			ev.Deliveries[0].Position = 0
		}, want: "did not hold"},
		"another object's entry": {mutate: func(ev *Evidence, y ProvenEntry) {
			ev.Entries = append([]ProvenEntry{ev.Entries[0], y}, ev.Entries[1:]...)
		}, want: "not about"},
		"delivered entry without proof": {mutate: func(ev *Evidence, _ ProvenEntry) {
			ev.Deliveries = nil
		}, want: "not about"},
		"unpinned key": {mutate: func(ev *Evidence, _ ProvenEntry) {}, keys: true, want: "not pinned"},
		"forged tree head": {mutate: func(ev *Evidence, _ ProvenEntry) {
			var e Entry
			_ = json.Unmarshal(ev.TreeHead, &e)
			e.Root = strings.Repeat("00", 32)
			h, _ := ComputeHash(&e)
			e.Hash = h
			ev.TreeHead, _ = json.Marshal(&e)
		}, want: "signature"},
	} {
		t.Run(name, func(t *testing.T) {
			ev, _, y := evidenceFixtureY(t)
			c.mutate(ev, y)
			var opts VerifyOptions
			if c.keys {
				opts.Keys = []ed25519.PublicKey{otherPub}
			}
			_, err := verifyPackage(t, ev, opts)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want one saying %q", err, c.want)
			}
		})
	}
}

// FuzzVerifyEvidence: no input makes the verifier panic, and a package
// that verifies holds only entries about its object or deliveries proven
// to have held it.
func FuzzVerifyEvidence(f *testing.F) {
	t := &testing.T{}
	ev, _ := evidenceFixture(t)
	b, _ := json.Marshal(ev)
	f.Add(b)
	f.Add([]byte(`{"format":"ctigate-evidence/2","entries":[{"entry":{},"proof":["AA=="]}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		rep, err := VerifyEvidence(bytes.NewReader(b), VerifyOptions{})
		if err != nil {
			return
		}
		var got Evidence
		if json.Unmarshal(b, &got) != nil {
			t.Fatal("a package that verified does not decode")
		}
		if rep.Entries != len(got.Entries) || rep.Deliveries != len(got.Deliveries) {
			t.Fatalf("report %+v for %d entries, %d deliveries", rep, len(got.Entries), len(got.Deliveries))
		}
	})
}
