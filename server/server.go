// Package server is the HTTP layer of the gateway: the TAXII 2.1 API on
// echo, authentication, content negotiation, the single TAXII error mapper
// and the operational endpoints.
package server

import (
	"context"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/ctigate/ctigate/auth"
	"github.com/ctigate/ctigate/config"
	"github.com/ctigate/ctigate/store"
)

// Store is what the server needs from storage.
type Store interface {
	AddObjects(ctx context.Context, collection string, objs []store.Object) ([]store.AddResult, error)
	Objects(ctx context.Context, collection string, q store.Query) (store.Page, error)
	DeleteObject(ctx context.Context, collection, id string, versions []store.VersionMatch, specVersions []string) (int, error)
	PutStatus(ctx context.Context, s store.Status) error
	Status(ctx context.Context, id string) (store.Status, error)
	Ping(ctx context.Context) error
}

// Authenticator checks credentials.
type Authenticator interface {
	Basic(ctx context.Context, name, password string) (*auth.User, error)
	Bearer(token string) (*auth.User, error)
}

// Options are what New needs. Config, Store and Auth are required.
type Options struct {
	Config *config.Config
	Store  Store
	Auth   Authenticator
	Logger *slog.Logger     // default: discard
	Clock  func() time.Time // default: time.Now
}

// Server serves the TAXII 2.1 API.
type Server struct {
	echo      *echo.Echo
	store     Store
	auth      Authenticator
	log       *slog.Logger
	now       func() time.Time
	discovery config.Discovery
	paging    config.Paging
	roots     []*apiRoot
	rootsByID map[string]*apiRoot
}

type apiRoot struct {
	cfg         config.APIRoot
	collections []*collection
	byKey       map[string]*collection // id and alias
}

type collection struct {
	cfg  config.Collection
	root *apiRoot
}

// New builds a Server from validated configuration.
func New(opts Options) *Server {
	s := &Server{
		store:     opts.Store,
		auth:      opts.Auth,
		log:       opts.Logger,
		now:       opts.Clock,
		discovery: opts.Config.Discovery,
		paging:    opts.Config.Paging,
		rootsByID: map[string]*apiRoot{},
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	for _, rc := range opts.Config.APIRoots {
		r := &apiRoot{cfg: rc, byKey: map[string]*collection{}}
		for _, cc := range rc.Collections {
			c := &collection{cfg: cc, root: r}
			r.collections = append(r.collections, c)
			r.byKey[cc.ID] = c
			if cc.Alias != "" {
				r.byKey[cc.Alias] = c
			}
		}
		s.roots = append(s.roots, r)
		s.rootsByID[rc.Name] = r
	}
	s.echo = s.routes()
	return s
}

// ServeHTTP makes Server an http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.echo.ServeHTTP(w, r) }

// allowed reports whether u is one of principals: a user name,
// "org:<organisation>", "role:<role>" or "*".
func allowed(u *auth.User, principals []string) bool {
	if u == nil {
		return false
	}
	for _, p := range principals {
		switch {
		case p == "*":
			return true
		case strings.HasPrefix(p, "org:"):
			if p[4:] == u.Organisation {
				return true
			}
		case strings.HasPrefix(p, "role:"):
			if slices.Contains(u.Roles, p[5:]) {
				return true
			}
		case p == u.Name:
			return true
		}
	}
	return false
}

func (c *collection) canRead(u *auth.User) bool  { return allowed(u, c.cfg.Readers) }
func (c *collection) canWrite(u *auth.User) bool { return allowed(u, c.cfg.Writers) }
