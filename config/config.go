// Package config reads the gateway's configuration in four steps: defaults,
// then a YAML file and CTIGATE_* environment overrides, then validation with
// errors that name the offending key.
package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/ctigate/ctigate"
	"github.com/ctigate/ctigate/auth"
	"github.com/ctigate/ctigate/custody"
	"github.com/ctigate/ctigate/policy"
	"github.com/ctigate/ctigate/search"
	"github.com/ctigate/ctigate/stix"
)

// Config is the whole gateway configuration.
type Config struct {
	Listen    string    `yaml:"listen"`   // host:port of the TAXII listener
	DataDir   string    `yaml:"data_dir"` // where the embedded store keeps its file
	Store     string    `yaml:"store"`    // storage backend: "bolt" (embedded, default) or "redis"
	Redis     Redis     `yaml:"redis"`    // the Redis backend, when store is "redis"
	TLS       TLS       `yaml:"tls"`
	Log       Log       `yaml:"log"`
	Paging    Paging    `yaml:"paging"`
	Discovery Discovery `yaml:"discovery"`
	APIRoots  []APIRoot `yaml:"api_roots"`
	Users     []User    `yaml:"users"`
	// Routes are the sharing policies: each fills one published
	// collection from inbound ones (see policy.RouteConfig).
	Routes []policy.RouteConfig `yaml:"routes"`
	// Ops is the operations listener: /metrics, /healthz, /readyz.
	Ops Ops `yaml:"ops"`
	// Custody configures the custody ledger's signed checkpoints.
	Custody Custody `yaml:"custody"`
	// Ingest bounds what one posted object may cost.
	Ingest Ingest `yaml:"ingest"`
	// Search bounds what one object may add to the search index.
	Search Search `yaml:"search"`
	// TrustedProxies are the addresses (CIDR ranges or single IPs) of
	// the reverse proxies in front of the TAXII listener. Only a request
	// whose direct peer is in one of them has its client address taken
	// from X-Forwarded-For: the right-most address there that is not
	// itself a trusted proxy. Empty: the client is the direct peer.
	TrustedProxies []string `yaml:"trusted_proxies"`
	// Auth bounds password logins against floods of guesses.
	Auth Auth `yaml:"auth"`
	// Server bounds how slowly a client may send a request body.
	Server ServerLimits `yaml:"server"`
	// StatusRetention is how long the status resource of a POST is kept
	// after it is complete; then GET …/status/{id}/ and the request's
	// feedback are 404, as for an unknown id. At least
	// MinStatusRetention.
	StatusRetention time.Duration `yaml:"status_retention"`
}

// Status retention bounds: TAXII 2.1 (§4.3.1) has servers keep a status
// for at least 24 hours after it is complete. The default, a week, also
// lets a producer that posts before a weekend read its receipts and the
// routes' decisions (feedback) after it; a status of 500 objects takes
// about 12 KiB in bbolt and 55 KiB in Redis, so a week of them stays
// small.
const (
	MinStatusRetention     = 24 * time.Hour
	DefaultStatusRetention = 7 * 24 * time.Hour
)

// ServerLimits bounds request bodies on the TAXII listener. A body must
// bring at least MinBodyRate bytes per second, counted over each
// MinBodyRateWindow; the first window is longer by MinBodyRateGrace. A
// body that falls short fails its request (408) and closes its
// connection. MinBodyRate 0 turns the check off. A reload changes these
// from the next request on.
type ServerLimits struct {
	MinBodyRate       int64         `yaml:"min_body_rate"` // bytes per second
	MinBodyRateGrace  time.Duration `yaml:"min_body_rate_grace"`
	MinBodyRateWindow time.Duration `yaml:"min_body_rate_window"`
}

// Ingest bounds what one posted object may cost. An object over a bound
// is refused on its own, with a status failure naming the bound and its
// setting. A reload changes them from the next request on.
type Ingest struct {
	// MaxPatternBytes is the longest STIX pattern (pattern_type stix) an
	// indicator may have, in bytes.
	MaxPatternBytes int `yaml:"max_pattern_bytes"`
}

// Search bounds the search index. A reload changes them from the next
// indexing pass on.
type Search struct {
	// MaxObservablesPerObject is the most index entries one object
	// version gets: one with more observables is stored whole and indexed
	// by the first this many (logged and counted).
	MaxObservablesPerObject int `yaml:"max_observables_per_object"`
}

// Custody configures the custody ledger. The ledger itself is always kept,
// for as long as the data file: it holds hashes and metadata only, and a
// court may ask about any object ever shared.
type Custody struct {
	// SigningKeyFile is the PEM (PKCS #8) Ed25519 key that signs
	// checkpoints (`ctigate audit keygen`). Empty: serve makes an
	// ephemeral key, warns loudly, and listens on loopback only. Serve
	// refuses a key inside DataDir or one its group or others may read
	// or write.
	SigningKeyFile string `yaml:"signing_key_file"`
	// TrustedKeys are the Ed25519 public keys (base64, as `ctigate audit
	// keygen` prints them) checkpoints may be signed by: the signing
	// key's and, after a rotation, the earlier ones, so that the whole
	// ledger verifies against them (`ctigate audit verify --data`). When
	// set, serve refuses a signing key that is not among them.
	TrustedKeys []string `yaml:"trusted_keys"`
	// The chain head is signed every CheckpointEvery entries or every
	// CheckpointInterval, whichever comes first.
	CheckpointEvery    int           `yaml:"checkpoint_every"`
	CheckpointInterval time.Duration `yaml:"checkpoint_interval"`
	// AllOrganisations are the principals (auditors, policy admins) who
	// read every organisation's custody entries and decisions; everyone
	// else reads their own organisation's (see package access).
	AllOrganisations []string `yaml:"all_organisations"`
}

// Ops configures the operations listener (plain HTTP, no
// authentication: metrics carry only route and organisation names and
// counts). An empty Listen turns it off.
type Ops struct {
	Listen string `yaml:"listen"` // host:port
	// AllowRemote permits a Listen address that is not loopback (the
	// unauthenticated endpoints are then reachable from the network).
	AllowRemote bool `yaml:"allow_remote"`
}

// TLS configures HTTPS. TAXII 2.1 requires HTTPS; plain HTTP is allowed only
// on a loopback address.
type TLS struct {
	CertFile     string `yaml:"cert_file"`
	KeyFile      string `yaml:"key_file"`
	ClientCAFile string `yaml:"client_ca_file"` // when set, client certificates are verified against it
	ClientAuth   string `yaml:"client_auth"`    // "none", "verify_if_given" or "require" (default "require" when client_ca_file is set)
}

// Enabled reports whether TLS is configured.
func (t TLS) Enabled() bool { return t.CertFile != "" }

// Redis says how to reach Redis (store: redis): a url, or addrs for a
// Cluster (several addresses, or cluster: true) or Sentinel (master_name).
type Redis struct {
	URL        string   `yaml:"url"`         // redis://[user:password@]host:port/db or rediss://… (TLS)
	Addrs      []string `yaml:"addrs"`       // host:port of Cluster nodes or Sentinels
	Cluster    bool     `yaml:"cluster"`     // Cluster mode even with one address
	MasterName string   `yaml:"master_name"` // Sentinel: the master's name
	Username   string   `yaml:"username"`    // ACL user (overrides the url's)
	Password   string   `yaml:"password"`    // overrides the url's
	DB         int      `yaml:"db"`          // database (not in Cluster)
	Prefix     string   `yaml:"prefix"`      // start of every key; replicas of one gateway share it
	TLS        RedisTLS `yaml:"tls"`
}

// RedisTLS configures TLS to Redis.
type RedisTLS struct {
	Enabled    bool   `yaml:"enabled"`     // also implied by a rediss:// url
	CAFile     string `yaml:"ca_file"`     // verify the server against this CA (default: system roots)
	CertFile   string `yaml:"cert_file"`   // client certificate, with key_file
	KeyFile    string `yaml:"key_file"`    //
	ServerName string `yaml:"server_name"` // name to verify, when not the address's host
}

// Log configures logging.
type Log struct {
	Level  string `yaml:"level"`  // debug, info, warn, error
	Format string `yaml:"format"` // text or json
}

// Paging bounds TAXII pages.
type Paging struct {
	DefaultLimit int `yaml:"default_limit"` // objects per page when the client sends no limit
	MaxLimit     int `yaml:"max_limit"`     // larger client limits are reduced to this
	// MaxBytes bounds a page by the bytes of the objects it holds, as
	// MaxLimit bounds their count: a page that reaches it ends there
	// (more, with a next cursor); an object larger than it is a page of
	// its own. InflightBytes and UserInflightBytes bound the memory of
	// the pages being read and written at once, of all users and of one
	// user: a read that finds no room within a moment is refused, 503 and
	// 429, with Retry-After. WriteTimeout is the longest the response
	// of one page may take to be written: a client that reads slower is
	// cut off and its page's memory freed. Zero means the default
	// (DefaultPaging).
	MaxBytes          int64         `yaml:"max_bytes"`
	InflightBytes     int64         `yaml:"inflight_bytes"`
	UserInflightBytes int64         `yaml:"user_inflight_bytes"`
	WriteTimeout      time.Duration `yaml:"write_timeout"`
}

// DefaultPaging is the paging configuration by default.
var DefaultPaging = Paging{DefaultLimit: 1000, MaxLimit: 10000,
	MaxBytes: 8 << 20, InflightBytes: 64 << 20, UserInflightBytes: 16 << 20, WriteTimeout: time.Minute}

// WithDefaults returns p with each bound left at zero set to its default.
func (p Paging) WithDefaults() Paging {
	d := DefaultPaging
	for _, f := range []struct{ v, d *int64 }{{&p.MaxBytes, &d.MaxBytes}, {&p.InflightBytes, &d.InflightBytes}, {&p.UserInflightBytes, &d.UserInflightBytes}} {
		if *f.v == 0 {
			*f.v = *f.d
		}
	}
	if p.WriteTimeout == 0 {
		p.WriteTimeout = d.WriteTimeout
	}
	return p
}

// Discovery is the TAXII discovery resource.
type Discovery struct {
	Title       string `yaml:"title"`
	Description string `yaml:"description"`
	Contact     string `yaml:"contact"`
	Default     string `yaml:"default"` // name of the default API root
}

// APIRoot is one TAXII API root, served at /<name>/.
type APIRoot struct {
	Name             string       `yaml:"name"`
	Title            string       `yaml:"title"`
	Description      string       `yaml:"description"`
	MaxContentLength int64        `yaml:"max_content_length"` // largest accepted request body, bytes
	Collections      []Collection `yaml:"collections"`
}

// Collection is one TAXII collection. Readers and writers are principals
// (auth.ParsePrincipal): a user name, "org:<organisation>", "role:<role>",
// "role:<role>@<organisation>" or "*" (any authenticated user). What a
// reader sees of it is package access's to decide.
type Collection struct {
	ID          string   `yaml:"id"`
	Alias       string   `yaml:"alias"`
	Title       string   `yaml:"title"`
	Description string   `yaml:"description"`
	Readers     []string `yaml:"readers"`
	Writers     []string `yaml:"writers"`
	// Retention, when positive, is how long object versions are kept
	// after their date_added; older ones are deleted (each with a deleted
	// entry in the custody ledger, which is kept).
	Retention time.Duration `yaml:"retention"`
}

// User is one identity. Passwords are stored as argon2id or bcrypt hashes
// (`ctigate passwd`), bearer tokens as their hex SHA-256.
type User struct {
	Name         string   `yaml:"name"`
	Organisation string   `yaml:"organisation"`
	Roles        []string `yaml:"roles"`
	PasswordHash string   `yaml:"password_hash"`
	TokenSHA256  []string `yaml:"token_sha256"`
}

// Roles known to the gateway (DESIGN.md, segregation of duties).
var Roles = []string{"producer", "consumer", "analyst", "approver", "policy-admin", "auditor"}

// Default returns the configuration used before the file is read.
func Default() Config {
	return Config{
		Listen:  "127.0.0.1:8080",
		DataDir: "./data",
		Store:   "bolt",
		Redis:   Redis{Prefix: "ctigate"},
		Log:     Log{Level: "info", Format: "text"},
		Paging:  DefaultPaging,
		Ops:     Ops{Listen: "127.0.0.1:9464"},
		Custody: Custody{CheckpointEvery: 1000, CheckpointInterval: time.Minute},
		Ingest:  Ingest{MaxPatternBytes: stix.DefaultMaxPatternBytes},
		Search:  Search{MaxObservablesPerObject: search.DefaultMaxObservables},
		Auth:    DefaultAuth(),
		Server:  ServerLimits{MinBodyRate: 4096, MinBodyRateGrace: 10 * time.Second, MinBodyRateWindow: 10 * time.Second},

		StatusRetention: DefaultStatusRetention,
	}
}

// DefaultMaxContentLength is an API root's max_content_length when unset.
const DefaultMaxContentLength = 10 << 20

// Load reads the file at path over the defaults, applies CTIGATE_*
// environment overrides read through getenv, and validates the result.
// Each line of the error names the file, the line when the file sets the
// key, and the key path: "ctigate.yaml:12: config: routes[0].ceilng:
// unknown key (did you mean ceiling?)".
func Load(path string, getenv func(string) string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return parse(source{name: path}, data, getenv)
}

// Parse is Load for configuration already in memory; its errors name
// lines as "line 12: config: …".
func Parse(data []byte, getenv func(string) string) (*Config, error) {
	return parse(source{}, data, getenv)
}

func parse(src source, data []byte, getenv func(string) string) (*Config, error) {
	root, err := src.document(data)
	if err != nil {
		return nil, err
	}
	c := Default()
	if ps := check(root, reflect.TypeFor[Config](), ""); len(ps) > 0 {
		return nil, src.located(ps)
	}
	if err := root.Decode(&c); err != nil {
		return nil, src.decodeErrors(err)
	}
	envSet, err := c.applyEnv(getenv)
	if err != nil {
		return nil, err
	}
	for i := range c.APIRoots {
		if c.APIRoots[i].MaxContentLength == 0 {
			c.APIRoots[i].MaxContentLength = DefaultMaxContentLength
		}
		for j := range c.APIRoots[i].Collections {
			c.APIRoots[i].Collections[j].ID = strings.ToLower(c.APIRoots[i].Collections[j].ID)
		}
	}
	for i := range c.Routes {
		c.Routes[i].ID = strings.ToLower(c.Routes[i].ID)
		for j := range c.Routes[i].Sources {
			c.Routes[i].Sources[j] = strings.ToLower(c.Routes[i].Sources[j])
		}
	}
	if err := c.Validate(); err != nil {
		return nil, src.locate(err, root, envSet)
	}
	return &c, nil
}

// Environment overrides: variable name → the key it sets.
var envKeys = []struct {
	env, key string
	set      func(c *Config, v string) error
}{
	{"CTIGATE_LISTEN", "listen", func(c *Config, v string) error { c.Listen = v; return nil }},
	{"CTIGATE_DATA_DIR", "data_dir", func(c *Config, v string) error { c.DataDir = v; return nil }},
	{"CTIGATE_TLS_CERT_FILE", "tls.cert_file", func(c *Config, v string) error { c.TLS.CertFile = v; return nil }},
	{"CTIGATE_TLS_KEY_FILE", "tls.key_file", func(c *Config, v string) error { c.TLS.KeyFile = v; return nil }},
	{"CTIGATE_TLS_CLIENT_CA_FILE", "tls.client_ca_file", func(c *Config, v string) error { c.TLS.ClientCAFile = v; return nil }},
	{"CTIGATE_LOG_LEVEL", "log.level", func(c *Config, v string) error { c.Log.Level = v; return nil }},
	{"CTIGATE_LOG_FORMAT", "log.format", func(c *Config, v string) error { c.Log.Format = v; return nil }},
	{"CTIGATE_STORE", "store", func(c *Config, v string) error { c.Store = v; return nil }},
	{"CTIGATE_REDIS_URL", "redis.url", func(c *Config, v string) error { c.Redis.URL = v; return nil }},
	{"CTIGATE_REDIS_ADDRS", "redis.addrs", func(c *Config, v string) error { c.Redis.Addrs = strings.Split(v, ","); return nil }},
	{"CTIGATE_REDIS_USERNAME", "redis.username", func(c *Config, v string) error { c.Redis.Username = v; return nil }},
	{"CTIGATE_REDIS_PASSWORD", "redis.password", func(c *Config, v string) error { c.Redis.Password = v; return nil }},
	{"CTIGATE_REDIS_PREFIX", "redis.prefix", func(c *Config, v string) error { c.Redis.Prefix = v; return nil }},
	{"CTIGATE_REDIS_TLS_CA_FILE", "redis.tls.ca_file", func(c *Config, v string) error { c.Redis.TLS.CAFile = v; return nil }},
	{"CTIGATE_OPS_LISTEN", "ops.listen", func(c *Config, v string) error { c.Ops.Listen = v; return nil }},
	{"CTIGATE_OPS_ALLOW_REMOTE", "ops.allow_remote", func(c *Config, v string) error {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("%q is not true or false", v)
		}
		c.Ops.AllowRemote = b
		return nil
	}},
	{"CTIGATE_TRUSTED_PROXIES", "trusted_proxies", func(c *Config, v string) error {
		c.TrustedProxies = strings.Split(v, ",")
		return nil
	}},
	{"CTIGATE_CUSTODY_SIGNING_KEY_FILE", "custody.signing_key_file", func(c *Config, v string) error { c.Custody.SigningKeyFile = v; return nil }},
	{"CTIGATE_CUSTODY_TRUSTED_KEYS", "custody.trusted_keys", func(c *Config, v string) error { c.Custody.TrustedKeys = strings.Split(v, ","); return nil }},
	{"CTIGATE_PAGING_MAX_LIMIT", "paging.max_limit", func(c *Config, v string) error {
		n, err := strconv.Atoi(v)
		if err != nil {
			return fmt.Errorf("%q is not a number", v)
		}
		c.Paging.MaxLimit = n
		return nil
	}},
}

// applyEnv applies the environment overrides and returns the keys they
// set.
func (c *Config) applyEnv(getenv func(string) string) ([]string, error) {
	if getenv == nil {
		return nil, nil
	}
	var set []string
	for _, e := range envKeys {
		if v := getenv(e.env); v != "" {
			if err := e.set(c, v); err != nil {
				return nil, fmt.Errorf("config: %s (from %s): %v", e.key, e.env, err)
			}
			set = append(set, e.key)
		}
	}
	return set, nil
}

var (
	nameRE     = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)
	userNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._@-]{0,127}$`)
	reserved   = []string{"taxii2", "healthz", "readyz", "metrics", "api"}
	routeKey   = regexp.MustCompile(`^routes\[\d+\](\.[a-z_]+(\[\d+\])?)*$`)
)

// Validate checks the whole configuration and returns every problem found,
// each naming its key.
func (c *Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, &fieldError{key, fmt.Sprintf(format, args...)})
	}

	host, port, err := net.SplitHostPort(c.Listen)
	if err != nil {
		bad("listen", "%q is not host:port", c.Listen)
	} else if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
		bad("listen", "port %q is not a number from 0 to 65535", port)
	}
	if c.DataDir == "" {
		bad("data_dir", "must not be empty")
	}
	switch c.Store {
	case "bolt":
	case "redis":
		c.Redis.validate(bad)
	default:
		bad("store", "%q is not one of bolt, redis", c.Store)
	}
	if c.Ops.Listen != "" {
		if host, port, err := net.SplitHostPort(c.Ops.Listen); err != nil {
			bad("ops.listen", "%q is not host:port", c.Ops.Listen)
		} else if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
			bad("ops.listen", "port %q is not a number from 0 to 65535", port)
		} else if !IsLoopback(host) && !c.Ops.AllowRemote {
			bad("ops.listen", "%q is not a loopback address: /metrics, /healthz and /readyz need no authentication, so set ops.allow_remote: true to serve them there (where only your monitoring can reach them)", c.Ops.Listen)
		}
	}
	for i, p := range c.TrustedProxies {
		if n, err := ParseTrustedProxy(p); err != nil {
			bad(fmt.Sprintf("trusted_proxies[%d]", i), "%v", err)
		} else if ones, _ := n.Mask.Size(); ones == 0 {
			bad(fmt.Sprintf("trusted_proxies[%d]", i), "%q trusts every address, so any client could choose the address logged for it", p)
		}
	}
	if (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") {
		bad("tls", "cert_file and key_file must be given together")
	}
	if c.TLS.ClientCAFile != "" && !c.TLS.Enabled() {
		bad("tls.client_ca_file", "needs tls.cert_file and tls.key_file")
	}
	switch c.TLS.ClientAuth {
	case "", "none", "verify_if_given", "require":
	default:
		bad("tls.client_auth", "%q is not one of none, verify_if_given, require", c.TLS.ClientAuth)
	}
	if err == nil && !c.TLS.Enabled() && !IsLoopback(host) {
		bad("listen", "%q is not a loopback address: TAXII 2.1 requires HTTPS, so set tls.cert_file and tls.key_file", c.Listen)
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		bad("log.level", "%q is not one of debug, info, warn, error", c.Log.Level)
	}
	switch c.Log.Format {
	case "text", "json":
	default:
		bad("log.format", "%q is not one of text, json", c.Log.Format)
	}
	if c.Paging.MaxLimit < 1 {
		bad("paging.max_limit", "must be at least 1")
	}
	if c.Paging.DefaultLimit < 1 || c.Paging.DefaultLimit > c.Paging.MaxLimit {
		bad("paging.default_limit", "must be from 1 to paging.max_limit (%d)", c.Paging.MaxLimit)
	}
	if p := c.Paging.WithDefaults(); p.MaxBytes < 0 || p.InflightBytes < 0 || p.UserInflightBytes < 0 {
		for _, f := range []struct {
			key string
			v   int64
		}{{"max_bytes", p.MaxBytes}, {"inflight_bytes", p.InflightBytes}, {"user_inflight_bytes", p.UserInflightBytes}} {
			if f.v < 0 {
				bad("paging."+f.key, "must not be negative")
			}
		}
	} else if p.MaxBytes > p.UserInflightBytes {
		bad("paging.max_bytes", "must be at most paging.user_inflight_bytes (%d), or no page could be read", p.UserInflightBytes)
	} else if p.UserInflightBytes > p.InflightBytes {
		bad("paging.user_inflight_bytes", "must be at most paging.inflight_bytes (%d)", p.InflightBytes)
	} else if p.WriteTimeout < time.Second {
		bad("paging.write_timeout", "must be at least 1s")
	}

	if c.Server.MinBodyRate < 0 {
		bad("server.min_body_rate", "must not be negative (0 turns the check off)")
	}
	if c.Server.MinBodyRateGrace < 0 {
		bad("server.min_body_rate_grace", "must not be negative")
	}
	if c.Server.MinBodyRate > 0 && c.Server.MinBodyRateWindow < time.Second {
		bad("server.min_body_rate_window", "must be at least 1s")
	}

	if c.StatusRetention < MinStatusRetention {
		bad("status_retention", "%s is less than 24h: TAXII 2.1 has a status kept for at least 24 hours after it is complete", c.StatusRetention)
	}
	c.Auth.validate(bad)
	if c.Ingest.MaxPatternBytes < 1024 {
		bad("ingest.max_pattern_bytes", "must be at least 1024 bytes")
	}
	if c.Search.MaxObservablesPerObject < 1 {
		bad("search.max_observables_per_object", "must be at least 1")
	}
	if c.Custody.CheckpointEvery < 1 {
		bad("custody.checkpoint_every", "must be at least 1")
	}
	if c.Custody.CheckpointInterval < time.Second {
		bad("custody.checkpoint_interval", "must be at least 1s")
	}
	for i, k := range c.Custody.TrustedKeys {
		if _, err := ParsePublicKey(k); err != nil {
			bad(fmt.Sprintf("custody.trusted_keys[%d]", i), "%v", err)
		}
	}

	users := map[string]bool{}
	orgs := map[string]bool{}
	for i, u := range c.Users {
		key := fmt.Sprintf("users[%d]", i)
		switch {
		case !userNameRE.MatchString(u.Name):
			bad(key+".name", "%q must be 1–128 letters, digits or . _ @ -, starting with a letter or digit", u.Name)
		case users[u.Name]:
			bad(key+".name", "%q is defined twice", u.Name)
		}
		users[u.Name] = true
		switch u.Organisation {
		case "":
			bad(key+".organisation", "must not be empty")
		case custody.GatewayOrg:
			bad(key+".organisation", "%q is the gateway's own, for what it records itself", u.Organisation)
		}
		orgs[u.Organisation] = true
		for j, r := range u.Roles {
			if !slices.Contains(Roles, r) {
				bad(fmt.Sprintf("%s.roles[%d]", key, j), "%q is not one of %s", r, strings.Join(Roles, ", "))
			}
		}
		if u.PasswordHash == "" && len(u.TokenSHA256) == 0 {
			bad(key, "user %q has neither password_hash nor token_sha256, so can never log in", u.Name)
		}
		if u.PasswordHash != "" {
			if err := auth.CheckHash(u.PasswordHash); err != nil {
				bad(key+".password_hash", "%v (make one with `ctigate passwd`)", err)
			}
		}
		for j, d := range u.TokenSHA256 {
			if len(d) != 64 || strings.Trim(strings.ToLower(d), "0123456789abcdef") != "" {
				bad(fmt.Sprintf("%s.token_sha256[%d]", key, j), "must be 64 hex digits (`ctigate passwd --token` prints one)")
			}
		}
	}

	principal := func(key, s string) {
		p, err := auth.ParsePrincipal(s)
		switch {
		case err != nil:
			bad(key, "%v", err)
		case p.Role != "" && !slices.Contains(Roles, p.Role):
			bad(key, "%q is not one of %s", p.Role, strings.Join(Roles, ", "))
		case p.Org != "" && !orgs[p.Org]:
			bad(key, "no user belongs to organisation %q", p.Org)
		case p.User != "" && !users[p.User]:
			bad(key, "no user named %q (use org:NAME, role:NAME or role:NAME@ORGANISATION for groups)", p.User)
		}
	}
	for i, p := range c.Custody.AllOrganisations {
		principal(fmt.Sprintf("custody.all_organisations[%d]", i), p)
	}

	if len(c.APIRoots) == 0 {
		bad("api_roots", "at least one API root is needed")
	}
	roots := map[string]bool{}
	ids := map[string]string{}
	for i, r := range c.APIRoots {
		key := fmt.Sprintf("api_roots[%d]", i)
		switch {
		case !nameRE.MatchString(r.Name):
			bad(key+".name", "%q must be 1–63 lowercase letters, digits, _ or -", r.Name)
		case slices.Contains(reserved, r.Name):
			bad(key+".name", "%q is reserved", r.Name)
		case roots[r.Name]:
			bad(key+".name", "%q is defined twice", r.Name)
		}
		roots[r.Name] = true
		if r.Title == "" {
			bad(key+".title", "must not be empty")
		}
		if r.MaxContentLength < 1024 {
			bad(key+".max_content_length", "must be at least 1024 bytes")
		}
		aliases := map[string]bool{}
		for j, col := range r.Collections {
			ck := fmt.Sprintf("%s.collections[%d]", key, j)
			if u, err := uuid.Parse(col.ID); err != nil || u.String() != col.ID {
				bad(ck+".id", "%q is not a UUID (e.g. %s)", col.ID, uuid.NewString())
			} else if prev, dup := ids[col.ID]; dup {
				bad(ck+".id", "%q is already used by %s", col.ID, prev)
			}
			ids[col.ID] = ck
			if col.Title == "" {
				bad(ck+".title", "must not be empty")
			}
			if col.Retention < 0 {
				bad(ck+".retention", "must not be negative")
			}
			if col.Alias != "" {
				if !nameRE.MatchString(col.Alias) {
					bad(ck+".alias", "%q must be 1–63 lowercase letters, digits, _ or -", col.Alias)
				} else if aliases[col.Alias] {
					bad(ck+".alias", "%q is defined twice in this API root", col.Alias)
				}
				aliases[col.Alias] = true
			}
			for k, p := range col.Readers {
				principal(fmt.Sprintf("%s.readers[%d]", ck, k), p)
			}
			for k, p := range col.Writers {
				principal(fmt.Sprintf("%s.writers[%d]", ck, k), p)
			}
		}
	}
	// Fail closed on a collection several organisations put objects into
	// directly: its receipts, deletes and reads would each have to hide one
	// organisation's versions from another. Each producing organisation
	// gets an inbound collection of its own, and routes read several.
	owners := c.ContentOrganisations()
	for i, r := range c.APIRoots {
		for j, col := range r.Collections {
			if o := owners[col.ID]; len(col.Writers) > 0 && len(o) > 1 {
				bad(fmt.Sprintf("api_roots[%d].collections[%d].writers", i, j),
					"users of several organisations (%s) can put objects into this collection (as its writers or through its route's sources); "+
						"give each producing organisation a collection of its own (writers role:producer@ORGANISATION) and list them in the routes' sources",
					strings.Join(o, ", "))
			}
		}
	}
	if c.Discovery.Default != "" && !roots[c.Discovery.Default] {
		bad("discovery.default", "no API root named %q", c.Discovery.Default)
	}

	// Routes: policy.CompileRoutes checks each route on its own (and that
	// no two share an id, that is, publish into one collection, or a name,
	// and that none reads the collection it publishes to); what remains is
	// that the collections they name exist. Ids that are not UUIDs at all
	// are CompileRoutes' to report.
	if _, err := policy.CompileRoutes(c.Routes); err != nil {
		var ce *ctigate.Error
		msg := err.Error()
		if errors.As(err, &ce) && ce.Err != nil {
			msg = ce.Err.Error()
		}
		// Each line is "KEY: problem"; a line without a key continues
		// the one before (a CEL compiler's message).
		var last *fieldError
		for _, line := range strings.Split(msg, "\n") {
			if key, p, ok := strings.Cut(line, ": "); ok && routeKey.MatchString(key) {
				last = &fieldError{key, p}
				errs = append(errs, last)
			} else if last != nil {
				last.msg += "\n" + line
			} else {
				errs = append(errs, fmt.Errorf("config: %s", line))
			}
		}
	}
	isUUID := func(s string) bool { u, err := uuid.Parse(s); return err == nil && u.String() == s }
	for i, r := range c.Routes {
		key := fmt.Sprintf("routes[%d]", i)
		if id := strings.TrimSpace(r.ID); isUUID(id) && ids[id] == "" {
			bad(key+".id", "%q is not the id of a configured collection: a route publishes into one of api_roots[].collections[]", r.ID)
		}
		for j, s := range r.Sources {
			if s := strings.TrimSpace(s); isUUID(s) && ids[s] == "" {
				bad(fmt.Sprintf("%s.sources[%d]", key, j), "%q is not the id of a configured collection", s)
			}
		}
	}
	return errors.Join(errs...)
}

// ContentOrganisations returns, for each configured collection id, the
// organisations whose objects it can hold, sorted: those of the users its
// writers name, and, when a route publishes into it, those of the
// collections the route reads (transitively).
func (c *Config) ContentOrganisations() map[string][]string {
	users := make([]auth.User, len(c.Users))
	for i, u := range c.Users {
		users[i] = auth.User{Name: u.Name, Organisation: u.Organisation, Roles: u.Roles}
	}
	direct := map[string]map[string]bool{}
	for _, r := range c.APIRoots {
		for _, col := range r.Collections {
			set := map[string]bool{}
			for i := range users {
				if len(auth.Matching(&users[i], col.Writers)) > 0 {
					set[users[i].Organisation] = true
				}
			}
			direct[col.ID] = set
		}
	}
	sources := map[string][]string{}
	for _, r := range c.Routes {
		id := strings.TrimSpace(r.ID)
		for _, s := range r.Sources {
			sources[id] = append(sources[id], strings.TrimSpace(s))
		}
	}
	out := make(map[string][]string, len(direct))
	for id := range direct {
		set := map[string]bool{}
		seen := map[string]bool{}
		var walk func(id string)
		walk = func(id string) {
			if seen[id] {
				return
			}
			seen[id] = true
			for o := range direct[id] {
				set[o] = true
			}
			for _, s := range sources[id] {
				walk(s)
			}
		}
		walk(id)
		orgs := make([]string, 0, len(set))
		for o := range set {
			orgs = append(orgs, o)
		}
		slices.Sort(orgs)
		out[id] = orgs
	}
	return out
}

// IsLoopback reports whether host (from host:port) is a loopback address or
// "localhost". An empty host (all interfaces) is not loopback.
func IsLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// validate checks the Redis settings.
func (r *Redis) validate(bad func(key, format string, args ...any)) {
	switch {
	case r.URL == "" && len(r.Addrs) == 0:
		bad("redis", "url or addrs must be set with store: redis")
	case r.URL != "" && len(r.Addrs) > 0:
		bad("redis", "url and addrs are exclusive")
	}
	if r.URL != "" {
		u, err := url.Parse(r.URL)
		switch {
		case err != nil:
			bad("redis.url", "not a URL: %v", err)
		case u.Scheme != "redis" && u.Scheme != "rediss":
			bad("redis.url", "scheme %q is not redis or rediss", u.Scheme)
		case u.Host == "":
			bad("redis.url", "no host")
		}
	}
	for i, a := range r.Addrs {
		if _, p, err := net.SplitHostPort(a); err != nil || p == "" {
			bad(fmt.Sprintf("redis.addrs[%d]", i), "%q is not host:port", a)
		}
	}
	if r.MasterName != "" && len(r.Addrs) == 0 {
		bad("redis.master_name", "needs redis.addrs (the sentinels)")
	}
	if r.DB < 0 {
		bad("redis.db", "must not be negative")
	}
	if r.DB != 0 && (r.Cluster || (len(r.Addrs) > 1 && r.MasterName == "")) {
		bad("redis.db", "a Redis Cluster has only database 0")
	}
	if r.Prefix == "" {
		bad("redis.prefix", "must not be empty")
	} else if strings.ContainsAny(r.Prefix, "{}") {
		bad("redis.prefix", "%q must not contain { or } (they select Cluster hash slots)", r.Prefix)
	}
	if (r.TLS.CertFile == "") != (r.TLS.KeyFile == "") {
		bad("redis.tls", "cert_file and key_file must be given together")
	}
}
