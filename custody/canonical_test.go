package custody

import (
	"bytes"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/go-json-experiment/json"

	"github.com/ctigate/ctigate/stix"
)

var alphabet = []string{"a", "Z", "0", " ", "\"", "\\", "/", "\b", "\f", "\n", "\r", "\t", "\x00", "\x1f", "\x7f", "é", "Zürich", "\u2028", "\u2029", "😀", "<>&", "\ufeff"}

func randString(r *rand.Rand) string {
	if r.IntN(3) == 0 {
		return ""
	}
	var b strings.Builder
	for range r.IntN(6) + 1 {
		b.WriteString(alphabet[r.IntN(len(alphabet))])
	}
	return b.String()
}

func randEntry(r *rand.Rand) Entry {
	e := Entry{
		Action: []string{Received, Delivered, Checkpoint, Withheld, AccessGranted, TokenRevoked}[r.IntN(6)],
		User:   randString(r), Org: randString(r), ObjectID: randString(r), ObjectVersion: randString(r), SHA256: randString(r),
		Collection: randString(r), Source: randString(r), Route: randString(r), PolicyVersion: randString(r), Reason: randString(r),
		Detail: randString(r), PublishedSHA256: randString(r), SignedHash: randString(r), PublicKey: randString(r), Signature: randString(r),
	}
	if r.IntN(2) == 0 {
		e.SignedSeq = r.Uint64N(1 << 53)
	}
	for range r.IntN(3) {
		e.Removed = append(e.Removed, randString(r))
	}
	if r.IntN(2) == 0 {
		e.Count = r.IntN(1 << 20)
	}
	for _, f := range []*string{&e.DateAdded, &e.FirstAdded, &e.LastAdded, &e.Filter, &e.View, &e.ItemsRoot, &e.Root,
		&e.Permission, &e.Role, &e.TokenID, &e.GrantsSHA256, &e.RejectedItems} {
		if r.IntN(2) == 0 {
			*f = randString(r)
		}
	}
	if r.IntN(3) == 0 {
		e.Nonce = randString(r)
	}
	return e
}

// TestCanonicalMatches: the direct canonical encoding of Prepare/Seal is
// the RFC 8785 form of the entry's JSON, and its hash the one ComputeHash
// and the verifier compute; the unsealed form (Prepared.JSON) reads back
// as the entry.
func TestCanonicalMatches(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 5000 {
		e := randEntry(r)
		p, err := Prepare(&e)
		if err != nil {
			t.Fatal(err)
		}
		var back Entry // what the entry's unsealed JSON reads back as
		if err := json.Unmarshal(p.JSON(), &back); err != nil || !reflect.DeepEqual(back, e) {
			t.Fatalf("entry %+v: JSON %s reads back as %+v, %v", e, p.JSON(), back, err)
		}
		prev := Head{Seq: r.Uint64N(1 << 40), Hash: strings.Repeat("ab", 32)}
		if i%7 == 0 {
			prev = Head{}
		}
		line, sealed := p.Seal(prev, FormatTime(timeAt(i)))
		want := sealed
		want.Hash = ""
		j, err := json.Marshal(&want)
		if err != nil {
			t.Fatal(err)
		}
		canon, err := stix.Canonical(j)
		if err != nil {
			t.Fatal(err)
		}
		cut := bytes.LastIndex(line, []byte(`,"hash":"`))
		if got := append(bytes.Clone(line[:cut]), '}'); !bytes.Equal(got, canon) {
			t.Fatalf("entry %+v:\n got %s\nwant %s", e, got, canon)
		}
		if h, err := ComputeHash(&sealed); err != nil || h != sealed.Hash {
			t.Fatalf("ComputeHash = %s, %v; Seal hashed %s", h, err, sealed.Hash)
		}
		v := NewVerifier(VerifyOptions{Anchored: true})
		if sealed.Action == Checkpoint {
			continue // its signature is random
		}
		if _, err := v.Add(line); err != nil {
			t.Fatalf("verifier refuses %s: %v", line, err)
		}
	}
	if _, err := Prepare(&Entry{Action: Received, User: "\xff"}); err == nil {
		t.Fatal("Prepare accepted invalid UTF-8")
	}
}

func TestFormatVersion(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for range 10000 {
		tm := time.Unix(r.Int64N(300000000000)-62135596800, r.Int64N(1e9)).UTC()
		if r.IntN(2) == 0 {
			tm = tm.Truncate(time.Millisecond)
		}
		if got, want := FormatVersion(tm), stix.FormatTimestamp(tm); got != want {
			t.Fatalf("FormatVersion(%v) = %s, want %s", tm, got, want)
		}
	}
	if FormatVersion(time.Time{}) != "" {
		t.Fatal("zero time")
	}
}
