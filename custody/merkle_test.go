package custody

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/go-json-experiment/json"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/ctigate/ctigate/stix"
)

func leaves(n int) []tlog.Hash {
	out := make([]tlog.Hash, n)
	for i := range out {
		out[i] = tlog.RecordHash([]byte(fmt.Sprint("leaf ", i)))
	}
	return out
}

// mth is RFC 9162 §2.1.1's definition, written out recursively.
func mth(ls []tlog.Hash) tlog.Hash {
	switch len(ls) {
	case 0:
		return sha256.Sum256(nil)
	case 1:
		return ls[0]
	}
	k := 1
	for k*2 < len(ls) {
		k *= 2
	}
	return tlog.NodeHash(mth(ls[:k]), mth(ls[k:]))
}

// TestTreeRoot: the compact range, the in-memory tree and tlog agree with
// the RFC's recursive definition for every size up to 300.
func TestTreeRoot(t *testing.T) {
	for n := 0; n <= 300; n++ {
		ls := leaves(n)
		want := mth(ls)
		if got := TreeRoot(ls); got != want {
			t.Fatalf("size %d: compact root %v, want %v", n, got, want)
		}
		if n == 0 {
			continue
		}
		mt, err := NewMemoryTree(ls)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := mt.Root(); err != nil || got != want {
			t.Fatalf("size %d: memory tree root %v, %v", n, got, err)
		}
		for _, i := range []int{0, n / 2, n - 1} {
			root, direct := ProveLeaf(ls, i)
			if root != want || tlog.CheckRecord(direct, int64(n), want, int64(i), ls[i]) != nil {
				t.Fatalf("size %d leaf %d: ProveLeaf gives root %v and a proof that does not check", n, i, root)
			}
			p, err := mt.Prove(int64(i))
			if err != nil {
				t.Fatal(err)
			}
			hs, err := DecodeProof(p)
			if err != nil {
				t.Fatal(err)
			}
			if err := tlog.CheckRecord(hs, int64(n), want, int64(i), ls[i]); err != nil {
				t.Fatalf("size %d leaf %d: %v", n, i, err)
			}
			if n > 1 {
				other := ls[(i+1)%n]
				if tlog.CheckRecord(hs, int64(n), want, int64(i), other) == nil {
					t.Fatalf("size %d: the proof of leaf %d proves another leaf", n, i)
				}
			}
		}
	}
}

func TestManifestRoundTrip(t *testing.T) {
	base := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	das := []time.Time{base, base.Add(time.Microsecond), base.Add(3 * time.Hour), base.Add(3*time.Hour + 7*time.Microsecond)}
	b := EncodeManifest(das)
	if len(b) > 8+3*4 {
		t.Fatalf("manifest of 4 items is %d bytes", len(b))
	}
	got, err := DecodeManifest(b)
	if err != nil || len(got) != len(das) {
		t.Fatalf("%v %v", got, err)
	}
	for i := range das {
		if !got[i].Equal(das[i]) {
			t.Fatalf("item %d: %v, want %v", i, got[i], das[i])
		}
	}
	if _, err := DecodeManifest(append(b, 0)); err == nil {
		t.Fatal("a repeated date_added decoded")
	}
}

func FuzzDecodeManifest(f *testing.F) {
	f.Add(EncodeManifest([]time.Time{time.UnixMicro(1), time.UnixMicro(5)}))
	f.Add([]byte{0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		das, err := DecodeManifest(b)
		if err != nil {
			return
		}
		if !bytes.Equal(EncodeManifest(das), b) && len(b) > 0 {
			// Non-minimal varints decode too; what they decode to must
			// encode and decode to the same times.
			again, err := DecodeManifest(EncodeManifest(das))
			if err != nil || len(again) != len(das) {
				t.Fatalf("round trip: %v", err)
			}
		}
	})
}

func TestItemLeafCanonical(t *testing.T) {
	for _, it := range []Item{
		{ID: "indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f", Salt: "c2FsdHNhbHRzYWx0c2FsdA==", SHA256: strings.Repeat("ab", 32), Version: "2026-01-01T00:00:00.000Z"},
		{ID: "x--ü", Salt: "s", SHA256: ""},
	} {
		j, err := json.Marshal(it)
		if err != nil {
			t.Fatal(err)
		}
		canon, err := stix.Canonical(j)
		if err != nil {
			t.Fatal(err)
		}
		got, err := it.Leaf()
		if err != nil || got != tlog.RecordHash(canon) {
			t.Fatalf("%+v: leaf %v, want the record hash of %s (%v)", it, got, canon, err)
		}
	}
}

// TestExportChecksRoots: read from seq 1, every checkpoint's root is
// recomputed; a checkpoint that signs another root (validly) fails,
// naming it.
func TestExportChecksRoots(t *testing.T) {
	s, pub := newSigner(t)
	lines := chain(t, 12, s)
	rep, err := VerifyJSONL(join(lines), VerifyOptions{Keys: []ed25519.PublicKey{pub}})
	if err != nil || rep.RootsChecked != 3 {
		t.Fatalf("report %+v, %v", rep, err)
	}
	// Re-sign checkpoint 8 over a wrong root and re-seal the rest.
	var head Head
	var out [][]byte
	for i, l := range lines {
		var e Entry
		if err := json.Unmarshal(l, &e); err != nil {
			t.Fatal(err)
		}
		if i == 7 {
			e = s.Checkpoint(Head{Seq: e.SignedSeq, Hash: e.SignedHash}, strings.Repeat("00", 32))
		}
		e.Hash = ""
		b, err := SealJSON(&e, head)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
		head = Head{Seq: e.Seq, Hash: e.Hash}
	}
	_, err = VerifyJSONL(join(out), VerifyOptions{Keys: []ed25519.PublicKey{pub}})
	if err == nil || !strings.Contains(err.Error(), "entry 8") || !strings.Contains(err.Error(), "root") {
		t.Fatalf("error %v, want entry 8's root named", err)
	}
}

// TestPageLeaves: the read path's leaves are Item.Leaf's.
func TestPageLeaves(t *testing.T) {
	s := NewSalter([32]byte{9})
	base := time.Date(2026, 12, 6, 10, 0, 0, 123000000, time.UTC)
	for i, c := range []struct {
		id      string
		version time.Time
		sum     *[32]byte
	}{
		{"indicator--6ba7b810-9dad-41d1-80b4-000000000001", base, &[32]byte{1, 2, 3}},
		{"indicator--6ba7b810-9dad-41d1-80b4-000000000001", base.Add(time.Nanosecond), nil},
		{"ipv4-addr--ff26c055-6336-5bc5-b98d-13d6226742dd", time.Time{}, &[32]byte{4}},
		{"x--ü\"", base, &[32]byte{5}},
		{"indicator--a", base, &[32]byte{}},
	} {
		da := base.Add(time.Duration(i) * time.Microsecond)
		got, err := s.Page("coll").Leaf(c.id, c.version, da, c.sum)
		if err != nil {
			t.Fatal(err)
		}
		it := Item{ID: c.id, Version: FormatVersion(c.version), Salt: s.Salt("coll", da)}
		if c.sum != nil {
			it.SHA256 = HexHash(*c.sum)
		}
		want, err := it.Leaf()
		if err != nil || got != want {
			t.Fatalf("case %d: leaf %v, Item.Leaf %v (%v)", i, got, want, err)
		}
	}
	if s.Salt("coll", base) == s.Salt("other", base) || s.Salt("coll", base) == NewSalter([32]byte{8}).Salt("coll", base) {
		t.Fatal("salts do not depend on the collection and the key")
	}
}
