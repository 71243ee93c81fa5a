// Package server is the HTTP layer of the gateway: the TAXII 2.1 API on
// echo, authentication, content negotiation, the single TAXII error mapper
// and the operational endpoints.
package server

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/go-json-experiment/json"
	"github.com/labstack/echo/v4"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/ctigate/ctigate/access"
	"github.com/ctigate/ctigate/auth"
	"github.com/ctigate/ctigate/config"
	"github.com/ctigate/ctigate/custody"
	"github.com/ctigate/ctigate/gateway"
	"github.com/ctigate/ctigate/policy"
	"github.com/ctigate/ctigate/stix"
	"github.com/ctigate/ctigate/store"
	"github.com/ctigate/ctigate/telemetry"
)

// Store is what the server needs from storage.
type Store interface {
	AddObjects(ctx context.Context, collection string, objs []store.Object) ([]store.AddResult, error)
	Objects(ctx context.Context, collection string, q store.Query) (store.Page, error)
	ResolveAdded(ctx context.Context, collection string, das []time.Time) ([]store.AddedVersion, error)
	DeleteObject(ctx context.Context, collection, id string, versions []store.VersionMatch, specVersions []string) (int, error)
	Tombstones(ctx context.Context, collection string, after time.Time, limit int) ([]store.Tombstone, bool, error)
	Checkpoint(ctx context.Context, name string) (time.Time, error)
	PutStatus(ctx context.Context, s store.Status) error
	Status(ctx context.Context, id string) (store.Status, error)
	// LedgerEntries reads the store's custody ledger (store.Ledger), the
	// record of the routes' decisions: the decisions API and producer
	// feedback read them there.
	LedgerEntries(ctx context.Context, q store.LedgerQuery) ([]custody.Entry, error)
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
	// Markings knows the marking definitions: the standard TLP ones and
	// those producers posted (see LoadMarkings). Default: TLP only.
	Markings *stix.Markings
	Logger   *slog.Logger     // default: discard
	Clock    func() time.Time // default: time.Now
	// OnIngest, when set, is called with the collection's id after a POST
	// stored new object versions (e.g. to wake fan-out). It must not block.
	OnIngest func(collection string)
	// OnIngestSpan, when set, is called before OnIngest with the
	// request's context (holding its server span) and the date_added
	// range of the new versions, so that fan-out can link its spans to
	// the POST that brought them. It must not block.
	OnIngestSpan func(ctx context.Context, collection string, first, last time.Time)
	// Ready, when set, is checked by /readyz after the store (e.g. that
	// the fan-out worker runs); an error makes the gateway unready.
	Ready func(ctx context.Context) error
	// TracerProvider, MeterProvider and Propagator are the telemetry
	// providers (see package telemetry). Default: no-op, W3C trace context.
	TracerProvider trace.TracerProvider
	MeterProvider  metric.MeterProvider
	Propagator     propagation.TextMapPropagator
	// Ledger, when set, records rejections and deliveries and serves the
	// auditor API. (Receptions, decisions and deletions are recorded by a
	// store that implements store.Ledger, given the actor in the context.)
	Ledger Ledger
	// Checkpoints, when set, signs the ledger head before an evidence
	// package is made.
	Checkpoints interface {
		Sign(ctx context.Context) (custody.Head, error)
	}
	// Search answers GET /api/v1/search; nil makes it unavailable.
	Search Searcher
	// Current, when set, is the configuration in force (and Config is
	// ignored): replacing its snapshot changes what the server serves
	// from the next request on.
	Current *gateway.Current
}

// Server serves the TAXII 2.1 API.
type Server struct {
	echo     *echo.Echo
	store    Store
	auth     Authenticator
	markings *stix.Markings
	onIngest func(collection string)
	search   Searcher
	log      *slog.Logger
	now      func() time.Time
	current  *gateway.Current     // the configuration in force
	views    atomic.Pointer[view] // what the server made of it
	admits   admissions           // each view's page admission, kept while its limits stay

	onIngestSpan func(ctx context.Context, collection string, first, last time.Time)
	ready        func(ctx context.Context) error
	tracer       trace.Tracer
	metrics      *telemetry.Metrics
	otelHandler  http.Handler
	ledger       Ledger
	roots        custody.RootCache             // delivered entries' items_root (audit.go)
	throttle     *auth.Throttle                // password logins (throttle.go)
	throttleCfg  atomic.Pointer[config.Config] // the configuration its limits come from
	checkpoints  interface {
		Sign(ctx context.Context) (custody.Head, error)
	}
}

// view is what the server makes of one configuration snapshot: its API
// roots and collections, its routes, its access rules and the ingester
// that holds writes to them. A request pins one view (viewOf), so it never
// mixes two versions of the configuration.
type view struct {
	snap      *gateway.Snapshot
	cfg       *config.Config
	discovery config.Discovery
	paging    config.Paging
	roots     []*apiRoot
	rootsByID map[string]*apiRoot
	routes    map[string]*policy.Route // by the id of the collection a route publishes into
	access    *access.Policy           // who may read and write what: every handler asks it
	ingest    *gateway.Ingester        // what happens to what is posted
	admit     *admission               // the memory pages may hold (admission.go)
	clientIP  echo.IPExtractor         // the client's address, by trusted_proxies
	// accessDigest identifies the access configuration in force (the
	// view member of delivered entries): the first 128 bits of the
	// SHA-256 of the collections and of the users' organisations and
	// roles, secrets left out (hex).
	accessDigest string
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

// New builds a Server from validated configuration, or from the snapshot
// in force in opts.Current when set (which may then be replaced while the
// server runs).
func New(opts Options) *Server {
	s := &Server{
		store:    opts.Store,
		auth:     opts.Auth,
		markings: opts.Markings,
		onIngest: opts.OnIngest,
		search:   opts.Search,
		log:      opts.Logger,
		now:      opts.Clock,
		current:  opts.Current,

		ledger:      opts.Ledger,
		checkpoints: opts.Checkpoints,
	}
	if s.current == nil {
		// Validated configuration compiles; one that did not would be a
		// bug, and failing closed means refusing to serve.
		cur, err := gateway.NewCurrent(opts.Config)
		if err != nil {
			panic(fmt.Sprintf("server.New: a validated configuration does not compile: %v", err))
		}
		s.current = cur
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	s.throttle = auth.NewThrottle(auth.ThrottleLimits{}, s.now)
	if s.markings == nil {
		s.markings = stix.NewMarkings()
	}
	s.onIngestSpan, s.ready = opts.OnIngestSpan, opts.Ready
	s.initTelemetry(s.current.Load().Config.Listen, opts.TracerProvider, opts.MeterProvider, opts.Propagator)
	s.view()
	s.echo = s.routeTable()
	return s
}

// view returns what the server made of the snapshot in force, making it
// anew when the snapshot was replaced.
func (s *Server) view() *view {
	snap := s.current.Load()
	if v := s.views.Load(); v != nil && v.snap == snap {
		return v
	}
	cfg := snap.Config
	v := &view{snap: snap, cfg: cfg, discovery: cfg.Discovery, paging: cfg.Paging,
		rootsByID: map[string]*apiRoot{}, routes: map[string]*policy.Route{}, access: snap.Access}
	for _, rc := range cfg.APIRoots {
		r := &apiRoot{cfg: rc, byKey: map[string]*collection{}}
		for _, cc := range rc.Collections {
			c := &collection{cfg: cc, root: r}
			r.collections = append(r.collections, c)
			r.byKey[cc.ID] = c
			if cc.Alias != "" {
				r.byKey[cc.Alias] = c
			}
		}
		v.roots = append(v.roots, r)
		v.rootsByID[rc.Name] = r
	}
	for _, r := range snap.Routes {
		v.routes[r.ID()] = r
	}
	v.accessDigest = accessDigest(cfg)
	v.admit = s.admits.forPaging(cfg.Paging)
	v.clientIP = ipExtractor(cfg.TrustedProxyRanges())
	v.ingest = &gateway.Ingester{Store: s.store, Markings: s.markings, Routes: v.routes, Clock: s.now, Tracer: s.tracer,
		StatusRetention: cfg.StatusRetention,
		Limits:          gateway.IngestLimits(cfg),
		Stored: func(ctx context.Context, collection string, res []store.AddResult) {
			s.ingestSpan(ctx, collection, res) // before waking fan-out, so that it can link to this request
			if s.onIngest != nil && slices.ContainsFunc(res, func(r store.AddResult) bool { return !r.Existed }) {
				s.onIngest(collection)
			}
		}}
	if s.ledger != nil {
		v.ingest.Ledger = s.ledger
	}
	s.views.Store(v)
	return v
}

// viewOf returns the view the request c is pinned to, pinning it to the
// one in force on first use.
func (s *Server) viewOf(c echo.Context) *view {
	if v, ok := c.Get("ctigate.view").(*view); ok {
		return v
	}
	v := s.view()
	c.Set("ctigate.view", v)
	return v
}

// Route is one entry of the HTTP surface: a method and a path template
// (":name" segments), as routes.go defines it.
type Route struct{ Method, Path string }

// Routes lists the HTTP surface, so that tests can cover every path.
func (s *Server) Routes() []Route {
	var out []Route
	for _, r := range s.echo.Routes() {
		out = append(out, Route{Method: r.Method, Path: r.Path})
	}
	return out
}

// ServeHTTP makes Server an http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.echo.ServeHTTP(w, withController(w, r))
}

// accessDigest returns view.accessDigest for cfg.
func accessDigest(cfg *config.Config) string {
	type user struct {
		Name, Organisation string
		Roles              []string
	}
	a := struct {
		APIRoots []config.APIRoot
		Users    []user
	}{APIRoots: cfg.APIRoots}
	for _, u := range cfg.Users {
		a.Users = append(a.Users, user{u.Name, u.Organisation, u.Roles})
	}
	// Durations as nanoseconds: the encoding is only hashed.
	b, err := json.Marshal(a, json.WithMarshalers(json.MarshalFunc(func(d time.Duration) ([]byte, error) {
		return strconv.AppendInt(nil, int64(d), 10), nil
	})))
	if err != nil {
		// A configuration that validated always encodes; fail closed
		// with a digest no configuration has.
		return strings.Repeat("0", 32)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:16])
}
