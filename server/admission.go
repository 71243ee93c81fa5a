package server

import (
	"context"
	"net/http"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/labstack/echo/v4"
	"golang.org/x/sync/semaphore"

	"github.com/ctigate/ctigate/config"
	"github.com/ctigate/ctigate/store"
)

// Page admission.
//
// A page holds memory from the moment the store reads it until its
// response has been written: its objects' bytes and, per object, the
// store.Object, its share of the delivery record, and the slack of the
// slice it was collected in. A client that asks for large pages and does
// not read the responses would otherwise hold that memory for as long as
// its connection lasts, and enough of them take the gateway down. Three
// bounds hold together (config.Paging):
//
//   - paging.max_bytes bounds one page by the bytes of its objects
//     (store.Query.MaxBytes), as paging.max_limit bounds it by count;
//   - paging.user_inflight_bytes and paging.inflight_bytes bound the
//     memory of the pages in flight, of one user and of all users. A read
//     is admitted before the store reads anything, for what its page may
//     cost at most, and that is also the byte bound the store is given, so
//     a page never holds more than was admitted (but for an object larger
//     than the bound, which is a page of its own and is admitted after the
//     read). Once the page is read, the admission shrinks to what it holds;
//     it is given back when the response has been written, or the client
//     went away, or the write timed out. A read that finds no room within
//     admissionWait is refused, with Retry-After: 429 when the user's own
//     pages hold their budget, 503 when everyone's hold the gateway's;
//   - paging.write_timeout bounds how long a page's response may take to
//     be written, so a client that does not read holds its page that long
//     at most (writePage).
//
// Small pages must stay fast while large ones queue (a consumer's
// limit=1 read while others ask for 10,000 objects), so an eighth of the
// gateway's budget is kept for them: pages that may cost at most a 32nd
// of that reserve (256 KiB by default) are admitted from it, larger ones
// from the rest, each in the order they came. A user may hold a quarter
// of the reserve at most, so no one user can take it all. Large pages are
// also read and hashed a few at a time (as many as there are
// processors): reading a page of megabytes and hashing its items for the
// delivery record is work for a processor, and a burst of them would
// otherwise queue on the processors ahead of small reads. Half the
// processors left the other half idle while a read waited for its
// backend (Redis, or pages of the file coming in): four consumers on two
// processors read 248,000 objects/s from Redis with one turn, 288,000
// with two. The record's durable write is waited for outside the turn
// (it needs no processor, and the records of pages read meanwhile share
// its commit). While a page is
// read, the backend's reply and the page copied from it may briefly
// exist together, beyond what was admitted.
// The budgets count the pages' memory, not the process's: the rest
// (connections, the store's caches, garbage not yet collected) comes on
// top, which the Go runtime's soft memory limit keeps in check.

// admissionWait is how long a read may wait for room before it is
// refused: enough for the pages ahead of it to be written to a client
// that reads them, short enough that a refused client retries soon.
var admissionWait = 2 * time.Second

const (
	// retryAfterSeconds is the Retry-After of a read refused for the
	// user's own pages in flight.
	retryAfterSeconds = "2"

	// pageObjectCost is the memory a page holds per object besides its
	// raw bytes: the store.Object (about 170 bytes) and its strings, the
	// spare capacity of the slice it was collected in, and the delivery
	// record's leaf and date_added. Measured at 200 to 380 bytes on the
	// two backends (TestPageObjectCost).
	pageObjectCost = 512
	// defaultObjectBytes is the size assumed for a collection's objects
	// before a page of them was read.
	defaultObjectBytes = 4 << 10
	// minPageBytes is the least byte bound a read is given (within
	// paging.max_bytes, and within half the size of a small page, so that
	// a read of a few objects always is one), so that a few large objects
	// among small ones do not cut short pages shorter.
	minPageBytes = 64 << 10
)

// pool is a budget of bytes, given out in the order it was asked for.
type pool struct {
	sem  *semaphore.Weighted
	size int64
}

func newPool(n int64) *pool {
	n = max(n, 1)
	return &pool{sem: semaphore.NewWeighted(n), size: n}
}

// admission is the page budget of one paging configuration.
type admission struct {
	limits    config.Paging // with defaults
	bulk      *pool         // the gateway's budget but the reserve
	small     *pool         // the reserve for small pages
	smallPage int64         // pages that may cost at most this are small
	userSmall int64         // the part of the reserve one user may hold
	readers   chan struct{} // a place for each large page being read and hashed

	mu    sync.Mutex
	users map[string]*userPools // users with pages in flight or waiting

	// sizes holds, by collection id, the average bytes of its objects as
	// the pages read from it found them (*atomic.Int64).
	sizes sync.Map
}

// userPools is one user's budget.
type userPools struct {
	all, small *pool
	refs       int // permits and waiters holding this entry
}

func newAdmission(p config.Paging) *admission {
	p = p.WithDefaults()
	reserve := p.InflightBytes / 8
	return &admission{
		limits:    p,
		bulk:      newPool(p.InflightBytes - reserve),
		small:     newPool(reserve),
		smallPage: reserve / 32,
		userSmall: reserve / 4,
		readers:   make(chan struct{}, max(1, runtime.GOMAXPROCS(0))),
		users:     map[string]*userPools{},
	}
}

// admissions gives each view the admission of its paging limits: the same
// one while they stay the same, so that a reload that does not change them
// keeps counting the pages in flight. After a change, pages in flight give
// their memory back to the admission that admitted them; until they are
// written, both budgets may be in use.
type admissions struct {
	mu   sync.Mutex
	last *admission
}

func (a *admissions) forPaging(p config.Paging) *admission {
	p = p.WithDefaults()
	a.mu.Lock()
	defer a.mu.Unlock()
	if l := a.last; l != nil && l.limits.MaxBytes == p.MaxBytes && l.limits.InflightBytes == p.InflightBytes &&
		l.limits.UserInflightBytes == p.UserInflightBytes {
		return l
	}
	a.last = newAdmission(p)
	return a.last
}

func (a *admission) user(name string) *userPools {
	a.mu.Lock()
	defer a.mu.Unlock()
	u := a.users[name]
	if u == nil {
		u = &userPools{all: newPool(a.limits.UserInflightBytes), small: newPool(a.userSmall)}
		a.users[name] = u
	}
	u.refs++
	return u
}

func (a *admission) unref(name string, u *userPools) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if u.refs--; u.refs == 0 && a.users[name] == u {
		delete(a.users, name)
	}
}

// permit is memory admitted for one page.
type permit struct {
	a     *admission
	user  string
	u     *userPools
	holds []hold
	n     int64 // bytes admitted
}

type hold struct {
	p *pool
	n int64
}

var (
	errUserPagesBusy = &statusError{http.StatusTooManyRequests,
		"your pages in flight already hold the memory one user may use; read them first, or retry later"}
	errPagesBusy = &statusError{http.StatusServiceUnavailable,
		"the gateway is serving as many pages as its memory allows; retry later"}
)

// acquire admits n bytes for a page of user, waiting at most
// admissionWait (or until ctx ends).
func (a *admission) acquire(ctx context.Context, user string, n int64) (*permit, error) {
	ctx, cancel := context.WithTimeout(ctx, admissionWait)
	defer cancel()
	u := a.user(user)
	p := &permit{a: a, user: user, u: u, n: n}
	pools := []*pool{u.all, a.bulk}
	own := 1 // pools[:own] are the user's
	if n <= a.smallPage {
		pools, own = []*pool{u.all, u.small, a.small}, 2
	}
	for i, pl := range pools {
		// A page larger than a budget takes all of it: the semaphore
		// would never grant more than its size.
		k := min(n, pl.size)
		if err := pl.sem.Acquire(ctx, k); err != nil {
			p.release()
			if i < own {
				return nil, errUserPagesBusy
			}
			return nil, errPagesBusy
		}
		p.holds = append(p.holds, hold{pl, k})
	}
	return p, nil
}

// read waits for the page's turn to be read and hashed when it is a
// large one, and returns what ends the turn (nothing to end for a small
// page). It fails only when ctx ends first (the client went away).
func (p *permit) read(ctx context.Context) (done func(), err error) {
	if p.n <= p.a.smallPage {
		return func() {}, nil
	}
	select {
	case p.a.readers <- struct{}{}:
		return func() { <-p.a.readers }, nil
	case <-ctx.Done():
		return nil, errPagesBusy
	}
}

// shrink gives back what the permit holds beyond n bytes.
func (p *permit) shrink(n int64) {
	for i := range p.holds {
		h := &p.holds[i]
		if k := min(n, h.p.size); k < h.n {
			h.p.sem.Release(h.n - k)
			h.n = k
		}
	}
	p.n = min(p.n, n)
}

// grow admits n bytes more, as acquire does.
func (p *permit) grow(ctx context.Context, n int64) error {
	more, err := p.a.acquire(ctx, p.user, n)
	if err != nil {
		return err
	}
	p.holds = append(p.holds, more.holds...)
	p.n += n
	more.a.unref(more.user, more.u)
	return nil
}

// release gives everything back; a second call does nothing.
func (p *permit) release() {
	if p == nil || p.u == nil {
		return
	}
	for _, h := range p.holds {
		h.p.sem.Release(h.n)
	}
	p.holds = nil
	p.a.unref(p.user, p.u)
	p.u = nil
}

// pageCost is the memory a page of n objects holding raw bytes costs.
func pageCost(n int, raw int64) int64 { return raw + int64(n)*pageObjectCost }

// objectBytes returns the average size of the objects of collection as
// pages found them, defaultObjectBytes before any was read.
func (a *admission) objectBytes(collection string) int64 {
	if v, ok := a.sizes.Load(collection); ok {
		return v.(*atomic.Int64).Load()
	}
	return defaultObjectBytes
}

// noteObjectBytes folds the average size of the objects of one page into
// the collection's: a quarter of the way, so that one odd page moves it
// little.
func (a *admission) noteObjectBytes(collection string, objs []store.Object) {
	if len(objs) == 0 {
		return
	}
	var raw int64
	for i := range objs {
		raw += int64(len(objs[i].Raw))
	}
	avg := max(raw/int64(len(objs)), 1)
	v, loaded := a.sizes.LoadOrStore(collection, new(atomic.Int64))
	n := v.(*atomic.Int64)
	if !loaded {
		n.Store(avg)
		return
	}
	old := n.Load()
	n.Store(old + (avg-old)/4)
}

// admitRead admits the page q will read from collection for the user of
// c, and sets q.MaxBytes to the bytes admitted for its objects
// (estimate).
func (s *Server) admitRead(c echo.Context, collection string, q *store.Query) (*permit, error) {
	a := s.viewOf(c).admit
	raw, cost := a.estimate(collection, q)
	if !q.WithoutRaw {
		q.MaxBytes = raw
	}
	return a.acquire(c.Request().Context(), userName(c), cost)
}

// estimate returns the bytes of objects a page read with q may hold, and
// what the page may cost in all. The objects: twice the collection's
// average object size per object the page may hold, at least
// minPageBytes (or half a small page), at most paging.max_bytes. A page
// may hold limit objects, or fewer when it asks for ids: one version of
// each per match[version] selector, unless it asks for all. A manifest or
// versions page holds no raw bytes and costs its count.
func (a *admission) estimate(collection string, q *store.Query) (raw, cost int64) {
	n := q.Limit
	if n <= 0 {
		n = store.DefaultLimit
	}
	if len(q.IDs) > 0 && !slices.ContainsFunc(q.Versions, func(v store.VersionMatch) bool { return v.Kind == store.All }) {
		n = min(n, len(q.IDs)*max(1, len(q.Versions)))
	}
	if !q.WithoutRaw {
		raw = min(a.limits.MaxBytes, max(int64(n)*2*a.objectBytes(collection), min(minPageBytes, a.smallPage/2)))
	}
	return raw, pageCost(n, raw)
}

// settle makes the permit what the page read holds: less than admitted,
// as a rule; more when its one object was larger than the page's bound,
// which is then admitted as any page is (or refused).
func (s *Server) settle(c echo.Context, p *permit, collection string, q *store.Query, page *store.Page) error {
	var raw int64
	for i := range page.Objects {
		raw += int64(len(page.Objects[i].Raw))
	}
	if !q.WithoutRaw {
		p.a.noteObjectBytes(collection, page.Objects)
	}
	cost := pageCost(len(page.Objects), raw)
	if cost > p.n {
		return p.grow(c.Request().Context(), cost-p.n)
	}
	p.shrink(cost)
	return nil
}

// refused sets Retry-After on the response of a read refused for the
// user's pages in flight (429); handleError sets it on every 503.
func refused(c echo.Context, err error) error {
	if err == errUserPagesBusy {
		c.Response().Header().Set("Retry-After", retryAfterSeconds)
	}
	return err
}

// userName names the budget a request's pages count against: its user.
func userName(c echo.Context) string {
	if u := userOf(c); u != nil {
		return u.Name
	}
	return ""
}
