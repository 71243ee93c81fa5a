package auth

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/ctigate/ctigate"
)

// User is an identity known to the gateway.
type User struct {
	Name         string
	Organisation string
	Roles        []string
	PasswordHash string   // argon2id or bcrypt; empty disables Basic for this user
	TokenDigests []string // hex SHA-256 of each bearer token
}

// HasRole reports whether u holds role.
func (u *User) HasRole(role string) bool { return slices.Contains(u.Roles, role) }

// Options tune an Authenticator. The zero value is usable.
type Options struct {
	CacheTTL  time.Duration    // how long a verified Basic credential is remembered; default 2m, negative: not at all
	CacheSize int              // most remembered credentials; default 10,000
	MaxHashes int              // slow hash verifications at once (without a HashGate); default 2
	Clock     func() time.Time // default time.Now
}

// Authenticator checks credentials against a fixed set of users. It is safe
// for concurrent use.
type Authenticator struct {
	users  map[string]*User
	tokens map[[32]byte]*User
	opts   Options
	secret []byte        // HMAC key for the success cache, new at every start
	sem    chan struct{} // bounds concurrent slow hash verifications
	dummy  string        // hash verified for unknown users, so timing does not reveal names

	mu      sync.Mutex
	cache   map[[32]byte]cached
	flights map[[32]byte]*flight // verifications under way, by cache key
}

// flight is one password verification under way: requests with the same
// credentials meanwhile wait for its verdict instead of hashing again (a
// burst of first logins by one client costs one hash, not one each).
type flight struct {
	done chan struct{}
	user *User
	err  error // errBadCredentials is a verdict; other errors are not shared
}

type cached struct {
	user    *User
	expires time.Time
}

// New returns an Authenticator for users. It fails on duplicate user names,
// unusable password hashes or malformed token digests.
func New(users []User, opts Options) (*Authenticator, error) {
	if opts.CacheTTL == 0 {
		opts.CacheTTL = 2 * time.Minute
	}
	if opts.CacheSize <= 0 {
		opts.CacheSize = 10000
	}
	if opts.MaxHashes <= 0 {
		opts.MaxHashes = 2
	}
	if opts.Clock == nil {
		opts.Clock = time.Now
	}
	a := &Authenticator{
		users:   make(map[string]*User, len(users)),
		tokens:  make(map[[32]byte]*User),
		opts:    opts,
		secret:  make([]byte, 32),
		sem:     make(chan struct{}, opts.MaxHashes),
		cache:   make(map[[32]byte]cached),
		flights: make(map[[32]byte]*flight),
	}
	if _, err := rand.Read(a.secret); err != nil {
		return nil, err
	}
	for i := range users {
		u := users[i]
		if _, dup := a.users[u.Name]; dup {
			return nil, fmt.Errorf("user %q defined twice", u.Name)
		}
		if u.PasswordHash != "" {
			if err := CheckHash(u.PasswordHash); err != nil {
				return nil, fmt.Errorf("user %q: %v", u.Name, err)
			}
		}
		a.users[u.Name] = &u
		for _, d := range u.TokenDigests {
			b, err := hex.DecodeString(d)
			if err != nil || len(b) != sha256.Size {
				return nil, fmt.Errorf("user %q: token digest must be 64 hex digits (SHA-256)", u.Name)
			}
			k := [32]byte(b)
			if _, dup := a.tokens[k]; dup {
				return nil, fmt.Errorf("user %q: token digest used twice", u.Name)
			}
			a.tokens[k] = &u
		}
	}
	dummy, err := HashPassword("unknown user")
	if err != nil {
		return nil, err
	}
	a.dummy = dummy
	return a, nil
}

var errBadCredentials = ctigate.E("auth", ctigate.Unauthorized, "invalid credentials")

// errNoVerdict is a shared verification's outcome until it has one.
var errNoVerdict = ctigate.E("auth", ctigate.Unavailable, "password verification did not finish")

// Basic authenticates a user name and password. A success is remembered for
// CacheTTL under an HMAC of both, so a changed or wrong password never hits
// the cache. Failures are never cached.
//
// A verification of the password hash waits for the HashGate in ctx (see
// WithHashGate), or else for one of MaxHashes slots; its errors are
// returned as they are. Requests with the same credentials as one being
// verified wait for its verdict (success or wrong password) instead of
// verifying again; when it ends without one (its request gave up, no
// hash slot), one of them verifies.
func (a *Authenticator) Basic(ctx context.Context, name, password string) (*User, error) {
	key := a.cacheKey(name, password)
	for {
		if u := a.cached(key); u != nil {
			return u, nil
		}
		a.mu.Lock()
		f, waiting := a.flights[key]
		if !waiting {
			f = &flight{done: make(chan struct{})}
			a.flights[key] = f
		}
		a.mu.Unlock()
		if !waiting {
			defer func() { // whatever happens, the waiters go on
				a.mu.Lock()
				delete(a.flights, key)
				a.mu.Unlock()
				close(f.done)
			}()
			f.err = errNoVerdict // until verify returns: waiters try again
			f.user, f.err = a.verify(ctx, key, name, password)
			return f.user, f.err
		}
		select {
		case <-f.done:
		case <-ctx.Done():
			return nil, ctigate.E("auth", ctigate.Unavailable, ctx.Err())
		}
		if f.err == nil || errors.Is(f.err, errBadCredentials) {
			return f.user, f.err
		}
		// The verification under way gave no verdict (its request gave
		// up, no hash slot): try again.
	}
}

// verify checks name's password by its hash (a dummy one for unknown
// names, so that timing does not reveal them) and caches a success.
func (a *Authenticator) verify(ctx context.Context, key [32]byte, name, password string) (*User, error) {
	u := a.users[name]
	hash := a.dummy
	if u != nil && u.PasswordHash != "" {
		hash = u.PasswordHash
	}
	release, err := a.admit(ctx)
	if err != nil {
		return nil, err
	}
	if cu := a.cached(key); cu != nil {
		release()
		return cu, nil
	}
	err = VerifyPassword(hash, password)
	release()
	if err != nil || u == nil || u.PasswordHash == "" {
		if err != nil && !errors.Is(err, ErrMismatch) {
			return nil, ctigate.E("auth", ctigate.Internal, err)
		}
		return nil, errBadCredentials
	}
	a.remember(key, u, a.opts.Clock())
	return u, nil
}

// cached returns the user of an unexpired cache entry under key, or nil.
func (a *Authenticator) cached(key [32]byte) *User {
	now := a.opts.Clock()
	a.mu.Lock()
	defer a.mu.Unlock()
	c, ok := a.cache[key]
	if !ok {
		return nil
	}
	if now.Before(c.expires) {
		return c.user
	}
	delete(a.cache, key)
	return nil
}

// admit waits for leave to verify a hash: from the HashGate in ctx, or
// for one of the Authenticator's own slots.
func (a *Authenticator) admit(ctx context.Context) (release func(), err error) {
	if g := hashGateOf(ctx); g != nil {
		return g(ctx)
	}
	select {
	case a.sem <- struct{}{}:
		return func() { <-a.sem }, nil
	case <-ctx.Done():
		return nil, ctigate.E("auth", ctigate.Unavailable, ctx.Err())
	}
}

// Bearer authenticates a bearer token by its SHA-256.
func (a *Authenticator) Bearer(token string) (*User, error) {
	if token == "" {
		return nil, errBadCredentials
	}
	u := a.tokens[sha256.Sum256([]byte(token))]
	if u == nil {
		return nil, errBadCredentials
	}
	return u, nil
}

// User returns the named user, or nil.
func (a *Authenticator) User(name string) *User { return a.users[name] }

func (a *Authenticator) cacheKey(name, password string) [32]byte {
	m := hmac.New(sha256.New, a.secret)
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(len(name)))
	m.Write(n[:])
	m.Write([]byte(name))
	m.Write([]byte(password))
	return [32]byte(m.Sum(nil))
}

func (a *Authenticator) remember(key [32]byte, u *User, now time.Time) {
	if a.opts.CacheTTL < 0 {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.cache) >= a.opts.CacheSize {
		for k, c := range a.cache {
			if !now.Before(c.expires) {
				delete(a.cache, k)
			}
		}
		if len(a.cache) >= a.opts.CacheSize {
			clear(a.cache)
		}
	}
	a.cache[key] = cached{user: u, expires: now.Add(a.opts.CacheTTL)}
}
