package auth

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/ctigate/ctigate"
)

func TestHashAndVerify(t *testing.T) {
	h, err := HashPassword("s3cret-pass")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Errorf("hash %q", h)
	}
	if err := VerifyPassword(h, "s3cret-pass"); err != nil {
		t.Errorf("right password: %v", err)
	}
	if err := VerifyPassword(h, "s3cret-pasS"); !errors.Is(err, ErrMismatch) {
		t.Errorf("wrong password: got %v, want ErrMismatch", err)
	}
	h2, _ := HashPassword("s3cret-pass")
	if h2 == h {
		t.Error("two hashes of one password are equal: no salt")
	}

	b, err := bcrypt.GenerateFromPassword([]byte("bcrypt-pass"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	if err := VerifyPassword(string(b), "bcrypt-pass"); err != nil {
		t.Errorf("bcrypt: %v", err)
	}
	if err := VerifyPassword(string(b), "other"); !errors.Is(err, ErrMismatch) {
		t.Errorf("bcrypt wrong: %v", err)
	}

	for _, bad := range []string{"", "plain", "$argon2i$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$a2V5a2V5a2V5a2V5a2V5", "$argon2id$v=18$m=19456,t=2,p=1$c2FsdHNhbHQ$a2V5a2V5a2V5a2V5a2V5",
		"$argon2id$v=19$m=99999999,t=2,p=1$c2FsdHNhbHQ$a2V5a2V5a2V5a2V5a2V5", "$argon2id$v=19$m=19456,t=2,p=1$!!$a2V5", "$2b$04$short"} {
		if CheckHash(bad) == nil {
			t.Errorf("CheckHash(%q) accepted", bad)
		}
		if VerifyPassword(bad, "x") == nil {
			t.Errorf("VerifyPassword(%q) accepted", bad)
		}
	}
}

func newTestAuth(t *testing.T, clock func() time.Time) (*Authenticator, string) {
	t.Helper()
	h, err := HashPassword("police-pw")
	if err != nil {
		t.Fatal(err)
	}
	tok, digest, err := NewToken()
	if err != nil {
		t.Fatal(err)
	}
	a, err := New([]User{
		{Name: "police", Organisation: "National Police", PasswordHash: h, TokenDigests: []string{digest}},
		{Name: "robot", Organisation: "X", TokenDigests: []string{TokenDigest("robot-token")}},
	}, Options{Clock: clock, CacheTTL: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	return a, tok
}

func TestBasicAndCache(t *testing.T) {
	var mu sync.Mutex
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	a, _ := newTestAuth(t, clock)
	ctx := context.Background()

	u, err := a.Basic(ctx, "police", "police-pw")
	if err != nil || u.Name != "police" {
		t.Fatalf("right password: %v %v", u, err)
	}
	// Cached success must not make a wrong password or another user pass.
	for _, c := range [][2]string{{"police", "police-pw2"}, {"police", ""}, {"robot", "police-pw"}, {"ghost", "police-pw"}, {"policepolice-pw", ""}} {
		if _, err := a.Basic(ctx, c[0], c[1]); ctigate.KindOf(err) != ctigate.Unauthorized {
			t.Errorf("Basic(%q, %q): got %v, want Unauthorized", c[0], c[1], err)
		}
	}
	if len(a.cache) != 1 {
		t.Errorf("cache has %d entries, want 1 (failures are not cached)", len(a.cache))
	}
	// The cached entry expires.
	mu.Lock()
	now = now.Add(2 * time.Minute)
	mu.Unlock()
	if _, err := a.Basic(ctx, "police", "police-pw"); err != nil {
		t.Fatal(err)
	}
	// A user without a password cannot log in with Basic.
	if _, err := a.Basic(ctx, "robot", ""); ctigate.KindOf(err) != ctigate.Unauthorized {
		t.Errorf("passwordless user: %v", err)
	}
}

func TestBearer(t *testing.T) {
	a, tok := newTestAuth(t, nil)
	if u, err := a.Bearer(tok); err != nil || u.Name != "police" {
		t.Errorf("token: %v %v", u, err)
	}
	if u, err := a.Bearer("robot-token"); err != nil || u.Name != "robot" {
		t.Errorf("robot token: %v %v", u, err)
	}
	for _, bad := range []string{"", tok + "x", TokenDigest(tok)} {
		if _, err := a.Bearer(bad); ctigate.KindOf(err) != ctigate.Unauthorized {
			t.Errorf("Bearer(%q): %v", bad, err)
		}
	}
}

func TestNewRejectsBadUsers(t *testing.T) {
	for name, users := range map[string][]User{
		"duplicate":  {{Name: "a", TokenDigests: []string{TokenDigest("1")}}, {Name: "a", TokenDigests: []string{TokenDigest("2")}}},
		"bad hash":   {{Name: "a", PasswordHash: "plain"}},
		"bad token":  {{Name: "a", TokenDigests: []string{"abc"}}},
		"same token": {{Name: "a", TokenDigests: []string{TokenDigest("1")}}, {Name: "b", TokenDigests: []string{TokenDigest("1")}}},
	} {
		if _, err := New(users, Options{}); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// TestBasicSharesVerification: concurrent logins with the same
// credentials wait for one password hash and share its verdict, right or
// wrong; other credentials hash on their own; a verification that gave no
// verdict (no hash slot) is not shared: the next request tries again.
func TestBasicSharesVerification(t *testing.T) {
	a, _ := newTestAuth(t, time.Now)
	var (
		mu     sync.Mutex
		hashes int
		gate   = make(chan struct{})
	)
	ctx := WithHashGate(context.Background(), func(ctx context.Context) (func(), error) {
		mu.Lock()
		hashes++
		mu.Unlock()
		<-gate // held until every request has arrived
		return func() {}, nil
	})
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for i := range 20 {
		pw := "police-pw"
		if i%2 == 1 {
			pw = "wrong"
		}
		wg.Go(func() {
			_, err := a.Basic(ctx, "police", pw)
			if (pw == "police-pw") != (err == nil) {
				errs <- fmt.Errorf("password %q: %v", pw, err)
			}
		})
	}
	time.Sleep(100 * time.Millisecond) // all twenty wait on the two hashes
	close(gate)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if hashes != 2 {
		t.Errorf("%d hashes for 20 logins with two sets of credentials, want 2", hashes)
	}

	// No verdict: a login waiting on a verification that found no hash
	// slot hashes for itself.
	release := make(chan struct{})
	busy := WithHashGate(context.Background(), func(context.Context) (func(), error) {
		<-release
		return nil, ctigate.E("auth", ctigate.Unavailable, "no hash slot")
	})
	leader, waiter := make(chan error), make(chan error)
	go func() { _, err := a.Basic(busy, "prosecutor", "x"); leader <- err }()
	time.Sleep(50 * time.Millisecond)
	go func() { _, err := a.Basic(context.Background(), "prosecutor", "x"); waiter <- err }()
	time.Sleep(50 * time.Millisecond)
	close(release)
	if err := <-leader; ctigate.KindOf(err) != ctigate.Unavailable {
		t.Fatalf("without a hash slot: %v, want Unavailable", err)
	}
	if err := <-waiter; ctigate.KindOf(err) != ctigate.Unauthorized {
		t.Fatalf("the login that waited: %v, want Unauthorized (its own verdict)", err)
	}
}
