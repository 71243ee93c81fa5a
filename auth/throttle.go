package auth

import (
	"container/list"
	"context"
	"fmt"
	"math"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ctigate/ctigate"
)

// ThrottleLimits bound password logins (see Throttle). A zero field takes
// its default.
type ThrottleLimits struct {
	// FailuresPerMinute is how many failed logins one user name may have
	// from one client address: a bucket of that many, refilled at that
	// many a minute. Default 10.
	FailuresPerMinute int
	// AddressFailuresPerMinute is the same for one client address, under
	// any user names (existing or not). Default 60.
	AddressFailuresPerMinute int
	// MaxHashes is how many password hashes are verified at once, over
	// all clients. Default: the number of CPUs.
	MaxHashes int
	// MaxQueued is how many verifications may wait for one of those
	// slots. Default 16.
	MaxQueued int
	// QueueWait is the longest a verification waits for a slot. Default
	// 1s.
	QueueWait time.Duration
	// MaxTracked is how many (user name, address) pairs and addresses are
	// remembered, together; past it the least recently seen is
	// forgotten. Default 20,000.
	MaxTracked int
}

// WithDefaults returns l with its zero fields set to their defaults.
func (l ThrottleLimits) WithDefaults() ThrottleLimits {
	if l.FailuresPerMinute <= 0 {
		l.FailuresPerMinute = 10
	}
	if l.AddressFailuresPerMinute <= 0 {
		l.AddressFailuresPerMinute = 60
	}
	if l.MaxHashes <= 0 {
		l.MaxHashes = runtime.NumCPU()
	}
	if l.MaxQueued <= 0 {
		l.MaxQueued = 16
	}
	if l.QueueWait <= 0 {
		l.QueueWait = time.Second
	}
	if l.MaxTracked <= 0 {
		l.MaxTracked = 20000
	}
	l.MaxTracked = max(l.MaxTracked, 2) // a pair and its address
	return l
}

// Reasons a Throttle refuses a login, as Throttled.Reason (and the reason
// attribute of the ctigate.auth.throttled metric).
const (
	ReasonUserAddress = "user_address" // the user name failed too often from the address
	ReasonAddress     = "address"      // the address failed too often, under any user names
	ReasonQueueFull   = "queue_full"   // every hash slot busy and the queue full
	ReasonQueueWait   = "queue_wait"   // no hash slot came free within QueueWait
)

// Throttled is the error of a login a Throttle refused. The password was
// not verified.
type Throttled struct {
	Reason string // one of the Reason constants
	// RetryAfter is when a retry may succeed, at the earliest.
	RetryAfter time.Duration
	// Busy reports that the gateway, not the client, is over its bound
	// (every hash slot taken): a 503 rather than a 429.
	Busy bool
	// First reports the first refusal of its client (the pair or the
	// address) in the last minute: the one worth a log line, answered at
	// once (see Hold).
	First bool
}

func (e *Throttled) Error() string {
	return fmt.Sprintf("login throttled (%s); retry after %s", e.Reason, e.RetryAfter)
}

// Outcome is how a login attempt ended, as Attempt.Done learns it.
type Outcome int

// The outcomes of a login attempt.
const (
	// LoginErrored: neither success nor wrong credentials (the client
	// went away, a hash could not be read, the attempt was throttled).
	// Nothing is counted.
	LoginErrored Outcome = iota
	LoginSucceeded
	LoginFailed
)

const (
	// maxUserKey bounds the user name part of a key. Configured names are
	// at most 128 bytes, so longer names are all unknown, and cutting
	// them at 129 merges only unknown names (one bucket is stricter).
	maxUserKey = 129
	// flagWindow is how long an address that failed a login, or was
	// refused a hash slot, waits behind the others (see class).
	flagWindow = time.Minute
	// logWindow is the least time between two log-worthy refusals of one
	// key.
	logWindow = time.Minute
	// busyRetry is the Retry-After of a refusal for want of hash slots.
	busyRetry = time.Second
	// maxHold is the longest Hold holds a refusal back, and maxHeld how
	// many it holds at once.
	maxHold = time.Second
	maxHeld = 1024
)

// A Throttle protects password verification, slow on purpose, from
// floods of guesses. It is safe for concurrent use.
//
// Failures are counted in token buckets: one per (user name, client
// address) pair and one per address (any user name, existing or not, so
// unknown names, which are verified against a dummy hash, count against
// the address too, and their refusals look like any other). A client
// over either limit is refused before its password is looked at (not even
// the success cache: otherwise refused guesses could still be checked
// against it). A success resets its pair, not its address: one valid
// account must not buy an address more guesses at others. Nothing is
// counted per user name alone, so a flood of guesses at a user's name
// from other addresses never locks that user out from its own.
//
// The buckets, pairs and addresses together, are kept in an LRU list of
// at most MaxTracked: an evicted bucket was the least recently touched,
// and an address is touched at each of its pairs' failures, so an address
// that spreads its guesses over many names loses its pairs' buckets
// before its own. IPv6 addresses are counted by /64 (what one host
// usually gets).
//
// Verifications that are to run (the success cache missed) take one of
// MaxHashes slots; an address runs at most one at a time, so a single
// address cannot take them all. Others wait in a bounded queue, served
// best class first, then first come:
//
//	0  the pair's last verified login succeeded (a known user at a known place)
//	1  the address failed no login and was refused no slot in the last minute
//	2  any other
//
// Class 2 may use all slots but one (when there are several), and starts
// none while a verification of class 0 or 1 runs: a user who logs in
// while a flood of guesses waits neither waits for one of them to be
// verified first nor has its own verification share the CPU (and the
// memory bandwidth, which argon2 is bound by) with more than the one
// already under way.
//
// When the queue is full, a newcomer of a better class takes the place of
// the newest waiter of the worst class, which is refused; otherwise the
// newcomer is. A waiter not served within QueueWait is refused too. Those
// refusals say the gateway is Busy (503) and flag the address (class 2)
// for a minute. So a flood, once it has failed or been refused, waits
// behind users who log in from where they did before, or from addresses
// with a clean record (and while those keep every slot busy, it waits
// QueueWait and is refused).
//
// A client refused again within the minute, which did not wait for its
// Retry-After, gets its answer a moment later (Hold).
type Throttle struct {
	clock func() time.Time

	mu      sync.Mutex
	lim     ThrottleLimits
	keys    map[throttleKey]*list.Element // of *tracked
	lru     list.List                     // front: most recently touched
	running int                           // slots taken
	prio    int                           // of which by classes 0 and 1
	busy    map[netip.Prefix]bool         // addresses with a verification running
	queue   []*waiter
	seq     uint64

	held atomic.Int64 // refusals Hold holds back
}

// throttleKey names a pair (pair true) or an address (user "").
type throttleKey struct {
	addr netip.Prefix
	user string
	pair bool
}

type tracked struct {
	key     throttleKey
	tokens  float64   // failures still allowed; refills at the limit per minute, up to it
	at      time.Time // when tokens was brought up to date
	good    bool      // pair: its last verified login succeeded
	flagged time.Time // address: its last failure or refused slot
	logged  time.Time // the last log-worthy refusal
}

type waiter struct {
	att     *Attempt
	seq     uint64
	ready   chan struct{} // closed when granted or refused
	granted bool
	err     error // the refusal
}

// NewThrottle returns a Throttle with limits l (zero fields take their
// defaults) that reads the time from clock (time.Now when nil).
func NewThrottle(l ThrottleLimits, clock func() time.Time) *Throttle {
	if clock == nil {
		clock = time.Now
	}
	return &Throttle{clock: clock, lim: l.WithDefaults(), keys: map[throttleKey]*list.Element{}, busy: map[netip.Prefix]bool{}}
}

// SetLimits puts l in force (zero fields take their defaults) for the
// next requests: buckets keep what they hold, up to the new sizes.
func (t *Throttle) SetLimits(l ThrottleLimits) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.lim = l.WithDefaults()
	for t.lru.Len() > t.lim.MaxTracked {
		t.evict()
	}
	t.dispatch()
}

// Limits returns the limits in force, defaults filled in.
func (t *Throttle) Limits() ThrottleLimits {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.lim
}

// Tracked returns how many pairs and addresses the Throttle remembers.
func (t *Throttle) Tracked() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.keys)
}

// AddressKey is the prefix a client address is counted under: the
// address itself for IPv4, its /64 for IPv6; the zero Prefix for an
// invalid address (all such clients share it).
func AddressKey(addr netip.Addr) netip.Prefix {
	addr = addr.Unmap()
	switch {
	case addr.Is4():
		return netip.PrefixFrom(addr, 32)
	case addr.Is6():
		p, _ := addr.WithZone("").Prefix(64)
		return p
	}
	return netip.Prefix{}
}

// Begin starts a login attempt of user from client address addr. It
// returns a *Throttled error when the pair or the address is over its
// failure limit. Otherwise the caller passes the Attempt's Gate to Basic
// (WithHashGate) and then tells the Attempt how the login ended (Done).
func (t *Throttle) Begin(user string, addr netip.Addr) (*Attempt, error) {
	if len(user) > maxUserKey {
		user = user[:maxUserKey]
	}
	a := &Attempt{t: t, addr: AddressKey(addr), user: user}
	t.mu.Lock()
	defer t.mu.Unlock()
	if err := t.over(a); err != nil {
		return nil, err
	}
	return a, nil
}

// An Attempt is one login through a Throttle.
type Attempt struct {
	t    *Throttle
	addr netip.Prefix
	user string

	// Guarded by t.mu.
	w        *waiter
	slot     bool // holds one of the MaxHashes slots
	prio     bool // granted it in class 0 or 1
	addrBusy bool // holds its address's one running verification
	done     bool
}

// Gate is a HashGate: it waits for a slot to verify the password (see
// Throttle), and returns the function that gives it back.
func (a *Attempt) Gate(ctx context.Context) (release func(), err error) {
	t := a.t
	t.mu.Lock()
	if a.w != nil || a.done {
		t.mu.Unlock()
		return nil, ctigate.E("auth.Throttle", ctigate.Internal, "a login attempt asked for a second hash slot")
	}
	if err := t.over(a); err != nil {
		t.mu.Unlock()
		return nil, err
	}
	t.seq++
	w := &waiter{att: a, seq: t.seq, ready: make(chan struct{})}
	a.w = w
	t.queue = append(t.queue, w)
	t.dispatch()
	if len(t.queue) > t.lim.MaxQueued {
		// The newest of the worst class goes: the newcomer, unless it is
		// better than someone waiting.
		now := t.clock()
		worst := t.worst(now)
		t.remove(worst)
		t.refuse(worst, t.refuseBusy(worst.att, ReasonQueueFull, now))
	}
	wait := t.lim.QueueWait
	t.mu.Unlock()

	release = func() { a.release() }
	select {
	case <-w.ready:
	default:
		timer := time.NewTimer(wait)
		defer timer.Stop()
		select {
		case <-w.ready:
		case <-timer.C:
		case <-ctx.Done():
		}
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	switch {
	case w.granted:
		if ctx.Err() != nil {
			t.releaseLocked(a)
			return nil, ctigate.E("auth", ctigate.Unavailable, ctx.Err())
		}
		return release, nil
	case w.err != nil:
		return nil, w.err
	}
	t.remove(w)
	if ctx.Err() != nil {
		return nil, ctigate.E("auth", ctigate.Unavailable, ctx.Err())
	}
	return nil, t.refuseBusy(a, ReasonQueueWait, t.clock())
}

// Hold waits before a refusal is answered, unless it is the first of its
// client in the last minute (err.First): the client came back while still
// over its limit, before its Retry-After, as a guessing bot does. Its next
// guess then comes a second later (or when it opens another connection),
// rather than at once: a bot looping on refusals would otherwise spend
// the CPU the logins of others need. At most maxHeld refusals are held at
// once (the others are answered at once); a held one is let go when ctx
// ends.
func (t *Throttle) Hold(ctx context.Context, err *Throttled) {
	if err.First || err.Reason == ReasonQueueWait { // that one has waited already
		return
	}
	if t.held.Add(1) > maxHeld {
		t.held.Add(-1)
		return
	}
	defer t.held.Add(-1)
	timer := time.NewTimer(min(err.RetryAfter, maxHold))
	defer timer.Stop()
	select {
	case <-timer.C:
	case <-ctx.Done():
	}
}

func (a *Attempt) release() {
	a.t.mu.Lock()
	defer a.t.mu.Unlock()
	a.t.releaseLocked(a)
}

// releaseLocked gives back a's slot (not its address's turn: Done does,
// after counting the outcome, so that the address's next waiter is
// judged by it).
func (t *Throttle) releaseLocked(a *Attempt) {
	if a.slot {
		t.freeSlot(a)
		t.dispatch()
	}
}

func (t *Throttle) freeSlot(a *Attempt) {
	a.slot = false
	t.running--
	if a.prio {
		a.prio = false
		t.prio--
	}
}

// Done counts the outcome of the attempt and gives back what it holds.
// Call it once Basic has returned, whatever it returned; later calls do
// nothing.
func (a *Attempt) Done(o Outcome) {
	t := a.t
	t.mu.Lock()
	defer t.mu.Unlock()
	if a.done {
		return
	}
	a.done = true
	if a.slot {
		t.freeSlot(a)
	}
	if a.addrBusy {
		a.addrBusy = false
		delete(t.busy, a.addr)
	}
	now := t.clock()
	switch o {
	case LoginSucceeded:
		// A verified success starts tracking the pair (for its class); a
		// cached one resets it only if it is tracked.
		var p *tracked
		if a.w != nil && a.w.granted {
			p = t.get(throttleKey{addr: a.addr, user: a.user, pair: true}, t.lim.FailuresPerMinute, now)
		} else if e := t.keys[throttleKey{addr: a.addr, user: a.user, pair: true}]; e != nil {
			p = e.Value.(*tracked)
			t.lru.MoveToFront(e)
		}
		if p != nil {
			p.tokens, p.at, p.good = float64(t.lim.FailuresPerMinute), now, true
		}
	case LoginFailed:
		p := t.get(throttleKey{addr: a.addr, user: a.user, pair: true}, t.lim.FailuresPerMinute, now)
		p.tokens--
		p.good = false
		ad := t.get(throttleKey{addr: a.addr}, t.lim.AddressFailuresPerMinute, now) // touched last: evicted after its pairs
		ad.tokens--
		ad.flagged = now
	}
	t.dispatch()
}

// over returns the refusal of a when its pair or address has no failure
// left, nil otherwise.
func (t *Throttle) over(a *Attempt) error {
	now := t.clock()
	var (
		err  *Throttled
		logd *tracked
	)
	for _, k := range []struct {
		key    throttleKey
		limit  int
		reason string
	}{
		{throttleKey{addr: a.addr, user: a.user, pair: true}, t.lim.FailuresPerMinute, ReasonUserAddress},
		{throttleKey{addr: a.addr}, t.lim.AddressFailuresPerMinute, ReasonAddress},
	} {
		e := t.keys[k.key]
		if e == nil {
			continue
		}
		tr := e.Value.(*tracked)
		t.refill(tr, k.limit, now)
		if tr.tokens >= 1 {
			continue
		}
		rate := float64(k.limit) / float64(time.Minute)
		wait := time.Duration(math.Ceil((1-tr.tokens)/rate/float64(time.Second))) * time.Second
		if err == nil || wait > err.RetryAfter {
			err = &Throttled{Reason: k.reason, RetryAfter: max(wait, time.Second)}
			logd = tr
		}
	}
	if err == nil {
		return nil
	}
	if now.Sub(logd.logged) >= logWindow {
		logd.logged, err.First = now, true
	}
	return err
}

// refuseBusy flags a's address and returns a Busy refusal.
func (t *Throttle) refuseBusy(a *Attempt, reason string, now time.Time) error {
	ad := t.get(throttleKey{addr: a.addr}, t.lim.AddressFailuresPerMinute, now)
	ad.flagged = now
	err := &Throttled{Reason: reason, RetryAfter: busyRetry, Busy: true}
	if now.Sub(ad.logged) >= logWindow {
		ad.logged, err.First = now, true
	}
	return err
}

// class ranks a waiter (see Throttle): lower is served first.
func (t *Throttle) class(w *waiter, now time.Time) int {
	if e := t.keys[throttleKey{addr: w.att.addr, user: w.att.user, pair: true}]; e != nil && e.Value.(*tracked).good {
		return 0
	}
	if e := t.keys[throttleKey{addr: w.att.addr}]; e == nil || now.Sub(e.Value.(*tracked).flagged) >= flagWindow {
		return 1
	}
	return 2
}

// worst returns the newest waiter of the worst class, or nil.
func (t *Throttle) worst(now time.Time) *waiter {
	var (
		worst *waiter
		wc    int
	)
	for _, w := range t.queue {
		if c := t.class(w, now); worst == nil || c > wc || (c == wc && w.seq > worst.seq) {
			worst, wc = w, c
		}
	}
	return worst
}

// dispatch grants free slots to the best waiters whose address runs no
// verification (class 2 within its bounds), refusing those whose pair or
// address has run out of failures while they waited.
func (t *Throttle) dispatch() {
	if len(t.queue) == 0 {
		return
	}
	now := t.clock()
	for t.running < t.lim.MaxHashes {
		var (
			best *waiter
			bc   int
		)
		for _, w := range t.queue {
			if t.busy[w.att.addr] {
				continue
			}
			if c := t.class(w, now); best == nil || c < bc || (c == bc && w.seq < best.seq) {
				best, bc = w, c
			}
		}
		if best == nil || (bc == 2 && (t.prio > 0 || (t.lim.MaxHashes > 1 && t.running >= t.lim.MaxHashes-1))) {
			return // nobody may run, or only suspects, who wait for the others
		}
		t.remove(best)
		if err := t.over(best.att); err != nil {
			t.refuse(best, err)
			continue
		}
		t.running++
		if bc < 2 {
			t.prio++
			best.att.prio = true
		}
		t.busy[best.att.addr] = true
		best.att.slot, best.att.addrBusy = true, true
		best.granted = true
		close(best.ready)
	}
}

func (t *Throttle) refuse(w *waiter, err error) {
	w.err = err
	close(w.ready)
}

func (t *Throttle) remove(w *waiter) {
	for i, q := range t.queue {
		if q == w {
			t.queue = append(t.queue[:i], t.queue[i+1:]...)
			return
		}
	}
}

// get returns the bucket of k (of limit a minute), brought up to date at
// now, made (full) if not tracked, and marks it most recently touched.
func (t *Throttle) get(k throttleKey, limit int, now time.Time) *tracked {
	if e := t.keys[k]; e != nil {
		t.lru.MoveToFront(e)
		tr := e.Value.(*tracked)
		t.refill(tr, limit, now)
		return tr
	}
	for t.lru.Len() >= t.lim.MaxTracked {
		t.evict()
	}
	tr := &tracked{key: k, tokens: float64(limit), at: now}
	t.keys[k] = t.lru.PushFront(tr)
	return tr
}

func (t *Throttle) evict() {
	e := t.lru.Back()
	delete(t.keys, e.Value.(*tracked).key)
	t.lru.Remove(e)
}

func (t *Throttle) refill(tr *tracked, limit int, now time.Time) {
	if d := now.Sub(tr.at); d > 0 {
		tr.tokens = min(float64(limit), tr.tokens+float64(limit)*d.Minutes())
		tr.at = now
	}
	tr.tokens = min(tr.tokens, float64(limit))
}

// HashGate admits one slow password-hash verification: it returns once
// the verification may run, with the function to call when it is over, or
// an error, and the verification is then not run.
type HashGate func(ctx context.Context) (release func(), err error)

type hashGateKey struct{}

// WithHashGate returns ctx carrying g: Basic then asks g, instead of its
// own bound (Options.MaxHashes), before verifying a password hash. A
// success found in the cache asks nothing.
func WithHashGate(ctx context.Context, g HashGate) context.Context {
	return context.WithValue(ctx, hashGateKey{}, g)
}

func hashGateOf(ctx context.Context) HashGate {
	g, _ := ctx.Value(hashGateKey{}).(HashGate)
	return g
}
