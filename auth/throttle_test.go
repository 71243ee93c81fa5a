package auth

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"testing"
	"time"
)

// fakeClock is a clock the test moves by hand.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }

func (c *fakeClock) Add(d time.Duration) { c.mu.Lock(); c.now = c.now.Add(d); c.mu.Unlock() }

func ip(s string) netip.Addr { return netip.MustParseAddr(s) }

// login runs one attempt through th, the hash slot taken and given back
// at once, ending in outcome o. It returns Begin's or Gate's refusal.
func login(th *Throttle, user string, addr netip.Addr, o Outcome) error {
	att, err := th.Begin(user, addr)
	if err != nil {
		return err
	}
	release, err := att.Gate(context.Background())
	if err != nil {
		att.Done(LoginErrored)
		return err
	}
	release()
	att.Done(o)
	return nil
}

func throttledAs(t *testing.T, err error, reason string) *Throttled {
	t.Helper()
	var th *Throttled
	if !errors.As(err, &th) || th.Reason != reason {
		t.Fatalf("got %v, want a refusal for %s", err, reason)
	}
	return th
}

func TestThrottleFailuresPerUserAndAddress(t *testing.T) {
	clock := newFakeClock()
	th := NewThrottle(ThrottleLimits{FailuresPerMinute: 3, AddressFailuresPerMinute: 100}, clock.Now)
	a, b := ip("192.0.2.1"), ip("192.0.2.2")
	for i := range 3 {
		if err := login(th, "police", a, LoginFailed); err != nil {
			t.Fatalf("failure %d: %v", i+1, err)
		}
	}
	// The fourth is refused before anything is verified, with the time
	// one failure takes to come back (3 a minute: 20 s).
	_, err := th.Begin("police", a)
	if r := throttledAs(t, err, ReasonUserAddress); r.RetryAfter != 20*time.Second || r.Busy || !r.First {
		t.Errorf("refusal %+v, want RetryAfter 20s, not Busy, First", r)
	}
	// Logged once a minute, however often the client retries.
	for range 5 {
		_, err := th.Begin("police", a)
		if r := throttledAs(t, err, ReasonUserAddress); r.First {
			t.Error("second refusal within a minute is First")
		}
	}
	// Other pairs are not affected: the same name from another address
	// (no lock-out of a user from everywhere), another name from a.
	if err := login(th, "police", b, LoginSucceeded); err != nil {
		t.Errorf("police from another address: %v", err)
	}
	if err := login(th, "cert-a", a, LoginFailed); err != nil {
		t.Errorf("another user from a: %v", err)
	}
	// The bucket refills at the limit per minute.
	clock.Add(20 * time.Second)
	if err := login(th, "police", a, LoginFailed); err != nil {
		t.Fatalf("after 20s: %v", err)
	}
	_, err = th.Begin("police", a)
	throttledAs(t, err, ReasonUserAddress)
	clock.Add(time.Minute)
	if _, err := th.Begin("police", a); err != nil {
		t.Fatalf("after a minute: %v", err)
	}
	// After a minute, a refusal is log-worthy again.
	for range 3 {
		if err := login(th, "police", a, LoginFailed); err != nil {
			t.Fatal(err)
		}
	}
	_, err = th.Begin("police", a)
	if r := throttledAs(t, err, ReasonUserAddress); !r.First {
		t.Error("first refusal after a minute is not First")
	}
}

func TestThrottleSuccessResetsPairNotAddress(t *testing.T) {
	clock := newFakeClock()
	th := NewThrottle(ThrottleLimits{FailuresPerMinute: 3, AddressFailuresPerMinute: 5}, clock.Now)
	a := ip("192.0.2.1")
	for range 2 {
		if err := login(th, "police", a, LoginFailed); err != nil {
			t.Fatal(err)
		}
	}
	if err := login(th, "police", a, LoginSucceeded); err != nil {
		t.Fatal(err)
	}
	// Reset: three failures allowed again…
	for i := range 3 {
		if err := login(th, "police", a, LoginFailed); err != nil {
			t.Fatalf("failure %d after the success: %v", i+1, err)
		}
	}
	// …but the address kept its five failures: a valid account does
	// not buy its address more guesses at other names.
	_, err := th.Begin("cert-a", a)
	throttledAs(t, err, ReasonAddress)
	_, err = th.Begin("police", a)
	throttledAs(t, err, ReasonUserAddress)
}

func TestThrottleUnknownNamesCountAgainstAddress(t *testing.T) {
	clock := newFakeClock()
	th := NewThrottle(ThrottleLimits{FailuresPerMinute: 3, AddressFailuresPerMinute: 10}, clock.Now)
	a := ip("2001:db8:1:2:3:4:5:6")
	for i := range 10 {
		if err := login(th, fmt.Sprintf("ghost-%d", i), a, LoginFailed); err != nil {
			t.Fatal(err)
		}
	}
	// Any name from the address is refused now, and from the rest of its
	// /64, with the time one failure takes to come back (10 a minute).
	for _, addr := range []netip.Addr{a, ip("2001:db8:1:2::99")} {
		_, err := th.Begin("police", addr)
		if r := throttledAs(t, err, ReasonAddress); r.RetryAfter != 6*time.Second {
			t.Errorf("%s: RetryAfter %s, want 6s", addr, r.RetryAfter)
		}
	}
	if err := login(th, "police", ip("2001:db8:1:3::1"), LoginSucceeded); err != nil {
		t.Errorf("another /64: %v", err)
	}
}

func TestThrottleTrackedKeysCapped(t *testing.T) {
	th := NewThrottle(ThrottleLimits{MaxTracked: 1000}, nil)
	for i := range 50000 {
		addr := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		if err := login(th, fmt.Sprintf("name-%d", i), addr, LoginFailed); err != nil {
			t.Fatal(err)
		}
		if n := th.Tracked(); n > 1000 {
			t.Fatalf("after %d failures, %d keys tracked (cap 1000)", i+1, n)
		}
	}
	// Lowering the cap forgets at once.
	th.SetLimits(ThrottleLimits{MaxTracked: 100})
	if n := th.Tracked(); n > 100 {
		t.Errorf("after SetLimits: %d keys tracked, want ≤ 100", n)
	}
	// An address spreading its guesses over many names keeps its own
	// bucket: it is touched at each failure, so its pairs go first.
	th = NewThrottle(ThrottleLimits{FailuresPerMinute: 1, AddressFailuresPerMinute: 1000, MaxTracked: 100}, nil)
	a := ip("192.0.2.1")
	for i := range 999 {
		if err := login(th, fmt.Sprintf("ghost-%d", i), a, LoginFailed); err != nil {
			t.Fatal(err)
		}
	}
	if err := login(th, "ghost-999", a, LoginFailed); err != nil {
		t.Fatal(err)
	}
	_, err := th.Begin("police", a)
	throttledAs(t, err, ReasonAddress)
}

// queued waits until n logins wait for a slot.
func queued(th *Throttle, n int) {
	for {
		th.mu.Lock()
		q := len(th.queue)
		th.mu.Unlock()
		if q == n {
			return
		}
		time.Sleep(time.Millisecond)
	}
}

func TestThrottleHashSlotsFairAndPrioritised(t *testing.T) {
	clock := newFakeClock()
	th := NewThrottle(ThrottleLimits{MaxHashes: 1, MaxQueued: 3, QueueWait: time.Hour}, clock.Now)
	known, flagged, fresh, flood := ip("192.0.2.1"), ip("192.0.2.2"), ip("192.0.2.3"), ip("192.0.2.4")
	// A known pair (its last login succeeded) and a flagged address (it
	// failed a login).
	if err := login(th, "police", known, LoginSucceeded); err != nil {
		t.Fatal(err)
	}
	if err := login(th, "police", flagged, LoginFailed); err != nil {
		t.Fatal(err)
	}

	// The flood address takes the only slot; a second login from it
	// waits though nobody else does: one verification per address.
	first, err := th.Begin("police", flood)
	if err != nil {
		t.Fatal(err)
	}
	release, err := first.Gate(context.Background())
	if err != nil {
		t.Fatal(err)
	}

	type result struct {
		name string
		err  error
	}
	order := make(chan result, 10)
	start := func(name, user string, addr netip.Addr) {
		att, err := th.Begin(user, addr)
		if err != nil {
			t.Fatal(err)
		}
		go func() {
			rel, err := att.Gate(context.Background())
			order <- result{name, err}
			if err == nil {
				rel()
				att.Done(LoginFailed)
			}
		}()
	}
	start("flood-2", "police", flood)
	queued(th, 1)
	start("flagged", "police", flagged)
	queued(th, 2)
	start("fresh", "cert-a", fresh)
	queued(th, 3)
	// The queue is full: the known pair (class 0) takes the place of
	// the newest waiter of the worst class, the flagged address (class
	// 2; flood-2 and fresh, whose addresses failed nothing yet, are 1).
	start("known", "police", known)
	if r := <-order; r.name != "flagged" {
		t.Fatalf("refused %s (%v), want flagged", r.name, r.err)
	} else if r := throttledAs(t, r.err, ReasonQueueFull); !r.Busy || r.RetryAfter != time.Second {
		t.Errorf("queue-full refusal %+v, want Busy, RetryAfter 1s", r)
	}
	queued(th, 3)
	// A newcomer no better than the worst waiter is refused itself.
	late, err := th.Begin("outsider", ip("192.0.2.5"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = late.Gate(context.Background())
	throttledAs(t, err, ReasonQueueFull)
	late.Done(LoginErrored)

	// Served in class order: known first; then fresh, whose address runs
	// nothing, before flood-2, whose address still runs first.
	release()
	if r := <-order; r.name != "known" || r.err != nil {
		t.Fatalf("first served: %s %v, want known", r.name, r.err)
	}
	if r := <-order; r.name != "fresh" || r.err != nil {
		t.Fatalf("second served: %s %v, want fresh", r.name, r.err)
	}
	first.Done(LoginFailed)
	if r := <-order; r.name != "flood-2" || r.err != nil {
		t.Fatalf("third served: %s %v, want flood-2", r.name, r.err)
	}
}

func TestThrottleQueueWaitAndCancel(t *testing.T) {
	th := NewThrottle(ThrottleLimits{MaxHashes: 1, QueueWait: 10 * time.Millisecond}, nil)
	holder, err := th.Begin("a", ip("192.0.2.1"))
	if err != nil {
		t.Fatal(err)
	}
	release, err := holder.Gate(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	waiter, err := th.Begin("b", ip("192.0.2.2"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = waiter.Gate(context.Background())
	if r := throttledAs(t, err, ReasonQueueWait); !r.Busy || !r.First {
		t.Errorf("refusal %+v, want Busy and Log", r)
	}
	waiter.Done(LoginErrored)

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	gone, err := th.Begin("c", ip("192.0.2.3"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := gone.Gate(ctx); err == nil || !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
	gone.Done(LoginErrored)
	release()
	holder.Done(LoginSucceeded)
	th.mu.Lock()
	defer th.mu.Unlock()
	if th.running != 0 || len(th.busy) != 0 || len(th.queue) != 0 {
		t.Errorf("left over: %d running, %d busy addresses, %d queued", th.running, len(th.busy), len(th.queue))
	}
}

func TestBasicThroughHashGate(t *testing.T) {
	a, _ := newTestAuth(t, nil)
	// The gate is asked for a verification, not for a cached success.
	asked := 0
	gate := func(ctx context.Context) (func(), error) { asked++; return func() {}, nil }
	ctx := WithHashGate(context.Background(), gate)
	for range 3 {
		if _, err := a.Basic(ctx, "police", "police-pw"); err != nil {
			t.Fatal(err)
		}
	}
	if asked != 1 {
		t.Errorf("gate asked %d times for 3 logins, 2 cached; want 1", asked)
	}
	// Its refusal is Basic's error, and nothing is verified.
	refuse := WithHashGate(context.Background(), func(ctx context.Context) (func(), error) {
		return nil, &Throttled{Reason: ReasonQueueFull, Busy: true}
	})
	_, err := a.Basic(refuse, "police", "other")
	throttledAs(t, err, ReasonQueueFull)
}

func TestThrottleKeepsSlotFromSuspects(t *testing.T) {
	th := NewThrottle(ThrottleLimits{MaxHashes: 2, QueueWait: time.Hour}, nil)
	s1, s2, known := ip("192.0.2.1"), ip("192.0.2.2"), ip("192.0.2.3")
	for _, a := range []netip.Addr{s1, s2} {
		if err := login(th, "police", a, LoginFailed); err != nil {
			t.Fatal(err)
		}
	}
	if err := login(th, "police", known, LoginSucceeded); err != nil {
		t.Fatal(err)
	}
	// A suspect (its address failed) takes one of the two slots…
	a1, err := th.Begin("police", s1)
	if err != nil {
		t.Fatal(err)
	}
	rel1, err := a1.Gate(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	// …but not the last: another suspect waits though it is free…
	a2, err := th.Begin("police", s2)
	if err != nil {
		t.Fatal(err)
	}
	got2 := make(chan error, 1)
	go func() {
		rel, err := a2.Gate(context.Background())
		if err == nil {
			rel()
		}
		got2 <- err
	}()
	queued(th, 1)
	// …which a known user takes at once.
	a3, err := th.Begin("police", known)
	if err != nil {
		t.Fatal(err)
	}
	rel3, err := a3.Gate(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	rel3()
	a3.Done(LoginSucceeded)
	// The suspect still waits (the kept slot is free again, not its
	// own) until the first suspect is done.
	th.mu.Lock()
	waiting := len(th.queue)
	th.mu.Unlock()
	if waiting != 1 {
		t.Fatalf("%d waiting after the known user's login, want the suspect", waiting)
	}
	rel1()
	a1.Done(LoginFailed)
	if err := <-got2; err != nil {
		t.Fatalf("second suspect: %v", err)
	}
	a2.Done(LoginFailed)
}

func TestThrottleSuspectsWaitForOthersVerifications(t *testing.T) {
	th := NewThrottle(ThrottleLimits{MaxHashes: 3, QueueWait: time.Hour}, nil)
	suspect, known := ip("192.0.2.1"), ip("192.0.2.2")
	if err := login(th, "police", suspect, LoginFailed); err != nil {
		t.Fatal(err)
	}
	// A user logs in from an address with a clean record (class 1)…
	user, err := th.Begin("police", known)
	if err != nil {
		t.Fatal(err)
	}
	rel, err := user.Gate(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	// …so the suspect waits, though two slots are free…
	guess, err := th.Begin("police", suspect)
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan error, 1)
	go func() {
		rel, err := guess.Gate(context.Background())
		if err == nil {
			rel()
		}
		got <- err
	}()
	queued(th, 1)
	// …until that verification is over.
	rel()
	if err := <-got; err != nil {
		t.Fatalf("suspect: %v", err)
	}
	user.Done(LoginSucceeded)
	guess.Done(LoginFailed)
}
