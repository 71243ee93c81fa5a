package main

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/go-json-experiment/json"

	"github.com/ctigate/ctigate"
	"github.com/ctigate/ctigate/config"
	"github.com/ctigate/ctigate/custody"
	"github.com/ctigate/ctigate/gateway"
	"github.com/ctigate/ctigate/policy"
	"github.com/ctigate/ctigate/store"
	"github.com/ctigate/ctigate/store/bolt"
)

const auditUsage = `Usage:
  ctigate audit keygen [--out FILE] [--config FILE]
        write a new Ed25519 checkpoint signing key (PEM, PKCS #8) to FILE,
        readable by its owner only, and its public key (base64) to FILE.pub;
        prints the public key to pin. FILE defaults to
        checkpoint-signing.pem in the user's configuration directory
        (ctigate/ under $XDG_CONFIG_HOME or ~/.config); one inside the
        configuration's data_dir is refused, as serve would refuse it
  ctigate audit verify [--key KEY]... [--config FILE] [--anchored] FILE|-
        verify a JSON Lines ledger export: the hash chain and the checkpoint
        signatures; names the first entry that does not verify
  ctigate audit verify --evidence [--key KEY]... FILE|-
        verify an evidence package offline, re-hashing the original bytes
  ctigate audit verify --data DIR [--config FILE] [--key KEY]...
        verify the ledger in the data file (gateway stopped), and re-hash
        every stored object version against the entry that recorded it;
        with store: redis, the Redis deployment's (DIR is not read; stop
        the replicas, or retention and deletes during the check fail it)
  ctigate audit export [--config FILE] [--data DIR] [--after N] [--through N] [--out FILE]
        export the ledger from the data file (gateway stopped) as JSON Lines
  ctigate audit evidence [--config FILE] [--data DIR] --object ID [--out FILE]
        make the evidence package of one object from the data file (gateway
        stopped), with the original bytes of every version still held

KEY is a base64 Ed25519 public key or a file of them (FILE.pub of keygen, or
one key a line, # comments); --key repeats. Checkpoints must be signed by a
pinned key: after a key rotation, pin the earlier keys too. With --config,
the configuration's custody.trusted_keys are pinned as well (with --data,
always). Without pinned keys, checkpoints are checked against the key each
one carries, and the keys are printed, to be compared with a trusted copy.
`

func runAudit(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, auditUsage)
		return errUsage
	}
	switch args[0] {
	case "keygen":
		return runAuditKeygen(args[1:], getenv, stdout, stderr)
	case "verify":
		return runAuditVerify(args[1:], getenv, stdin, stdout, stderr)
	case "export":
		return runAuditExport(ctx, args[1:], getenv, stdout, stderr)
	case "evidence":
		return runAuditEvidence(ctx, args[1:], getenv, stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, auditUsage)
		return nil
	}
	fmt.Fprintf(stderr, "ctigate audit: unknown command %q\n\n%s", args[0], auditUsage)
	return errUsage
}

func runAuditKeygen(args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("audit keygen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("out", "", "file to write the private key to (default: checkpoint-signing.pem in the user's configuration directory)")
	cfgPath := fs.String("config", "configs/ctigate.yaml", "configuration whose data_dir the key must stay out of (ignored when the default is absent)")
	if err := fs.Parse(args); err != nil || fs.NArg() > 0 {
		fmt.Fprint(stderr, auditUsage)
		return errUsage
	}
	explicit := false
	fs.Visit(func(f *flag.Flag) { explicit = explicit || f.Name == "config" })
	path := *out
	if path == "" {
		p, err := defaultKeyFile()
		if err != nil {
			return fmt.Errorf("audit keygen: %w", err)
		}
		path = p
	}
	// The key's place is checked against the data directory of the
	// configuration, as serve will check it.
	if cfg, err := config.Load(*cfgPath, getenv); err == nil {
		inside, err := within(path, cfg.DataDir)
		if err != nil {
			return fmt.Errorf("audit keygen: %w", err)
		}
		if inside {
			return fmt.Errorf("audit keygen: %s lies inside data_dir %s of %s: serve refuses a signing key there; write it elsewhere (--out)", path, cfg.DataDir, *cfgPath)
		}
	} else if explicit {
		return fmt.Errorf("audit keygen: %w", err)
	}
	// A directory made here is its owner's only.
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("audit keygen: %w", err)
	}
	pub, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return err
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("audit keygen: %w", err)
	}
	// Exactly 0600, whatever the umask (O_EXCL: nothing is overwritten).
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return fmt.Errorf("audit keygen: %w", err)
	}
	if err := pem.Encode(f, &pem.Block{Type: "PRIVATE KEY", Bytes: der}); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	p := base64.StdEncoding.EncodeToString(pub)
	if err := os.WriteFile(path+".pub", []byte(p+"\n"), 0o644); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "private key: %s (mode 0600: custody.signing_key_file, outside data_dir)\n", path)
	fmt.Fprintf(stdout, "public key:  %s (also in %s.pub)\n", p, path)
	fmt.Fprintf(stdout, "pin it:      ctigate audit verify --key %s …, or custody.trusted_keys: [%s]\n", p, p)
	return nil
}

// loadSigningKey reads a PEM PKCS #8 Ed25519 private key.
func loadSigningKey(path string) (ed25519.PrivateKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: custody.signing_key_file: %w", err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("config: custody.signing_key_file: %s holds no PEM PRIVATE KEY", path)
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("config: custody.signing_key_file: %w", err)
	}
	key, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("config: custody.signing_key_file: %s is not an Ed25519 key", path)
	}
	return key, nil
}

func runAuditVerify(args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("audit verify", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var keys keysFlag
	fs.Var(&keys, "key", "pinned checkpoint public key (base64, or a file of them); repeatable")
	evidence := fs.Bool("evidence", false, "FILE is an evidence package")
	anchored := fs.Bool("anchored", false, "the export is a range: accept a first entry other than seq 1")
	dataDir := fs.String("data", "", "verify the store's ledger and objects (the data file in this directory; with store: redis, the Redis deployment) instead of an export")
	cfgPath := fs.String("config", "configs/ctigate.yaml", "configuration file (with --data)")
	if err := fs.Parse(args); err != nil || (fs.NArg() != 1) == (*dataDir == "") {
		fmt.Fprint(stderr, auditUsage)
		return errUsage
	}
	if *dataDir != "" {
		return verifyData(*cfgPath, *dataDir, keys, getenv, stdout, stderr)
	}
	// An export is verified against the trusted keys of a configuration
	// only when one is named.
	explicit := false
	fs.Visit(func(f *flag.Flag) { explicit = explicit || f.Name == "config" })
	if explicit {
		cfg, err := config.Load(*cfgPath, getenv)
		if err != nil {
			return fmt.Errorf("audit verify: %w", err)
		}
		keys = append(keys, cfg.Custody.PublicKeys()...)
	}
	var r io.Reader = stdin
	if name := fs.Arg(0); name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return err
		}
		defer f.Close()
		r = bufio.NewReaderSize(f, 1<<20)
	}
	opts := custody.VerifyOptions{Keys: keys, Anchored: *anchored}
	if *evidence {
		rep, err := custody.VerifyEvidence(r, opts)
		if err != nil {
			return fmt.Errorf("audit verify: evidence does not verify: %w", err)
		}
		fmt.Fprintf(stdout, "OK: evidence package verifies: %d ledger entries (%s) proven in the signed tree of %d entries, %d deliveries proven to have held the object, %d original versions re-hashed\n",
			rep.Entries, countActions(rep.Actions), rep.TreeSize, rep.Deliveries, rep.Versions)
		printKeys(stdout, custody.Report{Keys: []string{rep.Key}}, len(keys) > 0)
		return nil
	}
	rep, err := custody.VerifyJSONL(r, opts)
	if err != nil {
		return fmt.Errorf("audit verify: %w", err)
	}
	fmt.Fprintf(stdout, "OK: %d entries (seq %d–%d) verify; head %s; %d checkpoints, signed through seq %d\n",
		rep.Entries, rep.First, rep.Last, rep.Head, rep.Checkpoints, rep.SignedThrough)
	if rep.SignedThrough < rep.Last {
		fmt.Fprintf(stdout, "note: entries after seq %d are not covered by a checkpoint signature\n", rep.SignedThrough)
	}
	if rep.Elided > 0 {
		fmt.Fprintf(stdout, "note: %d entries about other organisations are elided (their place in the chain checked, not their content)\n", rep.Elided)
	}
	printLate(stdout, rep)
	printKeys(stdout, rep, len(keys) > 0)
	return nil
}

// verifyData verifies the ledger of a data file and the stored objects.
func verifyData(cfgPath, dataDir string, keys keysFlag, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, st, _, err := openOffline([]string{"--config", cfgPath, "--data", dataDir}, "audit verify", true, getenv, stderr, func(*flag.FlagSet) {})
	if err != nil {
		return err
	}
	defer st.Close()
	keys = append(keys, cfg.Custody.PublicKeys()...)
	ctx := context.Background()
	v := custody.NewVerifier(custody.VerifyOptions{Keys: keys})
	oc := custody.NewObjectChecker()
	err = st.LedgerLines(ctx, 0, 0, func(_ uint64, line []byte) error {
		e, err := v.Add(line)
		if err != nil {
			return err
		}
		oc.Add(e)
		return nil
	})
	if err != nil {
		return fmt.Errorf("audit verify: %w", err)
	}
	n, err := oc.Check(func(coll string, fn func(id, version string, raw []byte) error) error {
		return store.EachVersion(ctx, st, coll, func(o store.Object) error {
			return fn(o.ID, custody.FormatVersion(o.Version), o.Raw)
		})
	})
	if err != nil {
		return fmt.Errorf("audit verify: %w", err)
	}
	rep := v.Report()
	fmt.Fprintf(stdout, "OK: %d entries (seq %d–%d) verify; head %s; %d checkpoints, signed through seq %d; %d stored object versions match their entries\n",
		rep.Entries, rep.First, rep.Last, rep.Head, rep.Checkpoints, rep.SignedThrough, n)
	printLate(stdout, rep)
	printKeys(stdout, rep, len(keys) > 0)
	return nil
}

// printLate says how many checkpoints sign an earlier entry than the one
// before them (custody.Report.Late).
func printLate(w io.Writer, rep custody.Report) {
	if rep.Late > 0 {
		fmt.Fprintf(w, "note: %d of the checkpoints sign an earlier entry than the checkpoint before them (gateway replicas signing at once); each verified against the entries it signs\n", rep.Late)
	}
}

// countActions lists actions in order of first appearance, each with its
// count when more than one: "received, published ×2, delivered ×1000".
func countActions(actions []string) string {
	var order []string
	n := map[string]int{}
	for _, a := range actions {
		if n[a] == 0 {
			order = append(order, a)
		}
		n[a]++
	}
	for i, a := range order {
		if n[a] > 1 {
			order[i] = fmt.Sprintf("%s ×%d", a, n[a])
		}
	}
	return strings.Join(order, ", ")
}

func printKeys(w io.Writer, rep custody.Report, pinned bool) {
	for _, k := range rep.Keys {
		if pinned {
			fmt.Fprintf(w, "signed by pinned key %s\n", k)
		} else {
			fmt.Fprintf(w, "signed by key %s (not pinned: compare it with a trusted copy, or pass --key)\n", k)
		}
	}
}

// auditStore is a store with its custody ledger, read by the audit
// commands.
type auditStore interface {
	store.Store
	ledgerLines
}

// openOffline opens the data file named by the configuration (the gateway
// must be stopped: the file is locked while it runs), or, with store:
// redis, the Redis deployment (shared: the gateway may run). With
// readOnly the data file is opened for reading only (bolt.Options.ReadOnly),
// so that verifying or exporting a data directory leaves it as it was.
func openOffline(args []string, name string, readOnly bool, getenv func(string) string, stderr io.Writer, more func(*flag.FlagSet)) (*config.Config, auditStore, *flag.FlagSet, error) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "configs/ctigate.yaml", "configuration file")
	dataDir := fs.String("data", "", "data directory (overrides data_dir)")
	more(fs)
	if err := fs.Parse(args); err != nil || fs.NArg() > 0 {
		fmt.Fprint(stderr, auditUsage)
		return nil, nil, nil, errUsage
	}
	cfg, err := config.Load(*cfgPath, func(k string) string {
		if k == "CTIGATE_DATA_DIR" && *dataDir != "" {
			return *dataDir
		}
		return getenv(k)
	})
	if err != nil {
		return nil, nil, nil, err
	}
	if cfg.Store == "redis" {
		st, err := openStore(context.Background(), cfg, slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn})), nil)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("%s: %w", name, err)
		}
		return cfg, st, fs, nil
	}
	path := filepath.Join(cfg.DataDir, "ctigate.db")
	if _, err := os.Stat(path); err != nil {
		return nil, nil, nil, fmt.Errorf("%s: %w", name, err)
	}
	st, err := bolt.Open(path, bolt.Options{OpenTimeout: 2e9, ReadOnly: readOnly})
	if err != nil {
		return nil, nil, nil, offlineErr(name, err)
	}
	return cfg, st, fs, nil
}

// offlineErr is the error of a command that opens the gateway's files
// itself (audit verify --data, audit export, index rebuild): it says to
// stop the gateway only when a file is locked (by a running gateway);
// for a file this build cannot read that hint would mislead.
func offlineErr(name string, err error) error {
	if ctigate.KindOf(err) == ctigate.Unavailable {
		return fmt.Errorf("%s: %w (stop the gateway first)", name, err)
	}
	return fmt.Errorf("%s: %w", name, err)
}

func createOut(path string, stdout io.Writer) (io.Writer, func() error, error) {
	if path == "" || path == "-" {
		return stdout, func() error { return nil }, nil
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, nil, err
	}
	bw := bufio.NewWriterSize(f, 1<<20)
	return bw, func() error {
		if err := bw.Flush(); err != nil {
			f.Close()
			return err
		}
		return f.Close()
	}, nil
}

func runAuditExport(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var after, through uint64
	var out string
	_, st, _, err := openOffline(args, "audit export", true, getenv, stderr, func(fs *flag.FlagSet) {
		fs.Uint64Var(&after, "after", 0, "export entries after this seq")
		fs.Uint64Var(&through, "through", 0, "export entries up to this seq (0: the head)")
		fs.StringVar(&out, "out", "", "output file (default stdout)")
	})
	if err != nil {
		return err
	}
	defer st.Close()
	w, done, err := createOut(out, stdout)
	if err != nil {
		return err
	}
	err = st.LedgerLines(ctx, after, through, func(_ uint64, line []byte) error {
		if _, err := w.Write(line); err != nil {
			return err
		}
		_, err := w.Write([]byte{'\n'})
		return err
	})
	if err != nil {
		done()
		return err
	}
	return done()
}

func runAuditEvidence(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var id, out string
	cfg, st, _, err := openOffline(args, "audit evidence", false, getenv, stderr, func(fs *flag.FlagSet) {
		fs.StringVar(&id, "object", "", "STIX id of the object")
		fs.StringVar(&out, "out", "", "output file (default stdout)")
	})
	if err != nil {
		return err
	}
	defer st.Close()
	if id == "" {
		return errors.New("audit evidence: --object is required")
	}
	src := gateway.EvidenceSource{Store: st, Ledger: st, Config: cfg}
	if cfg.Custody.SigningKeyFile != "" {
		key, err := loadSigningKey(cfg.Custody.SigningKeyFile)
		if err != nil {
			return err
		}
		src.Checkpoints = newCheckpointer(st, custody.NewSigner(key))
	} else {
		fmt.Fprintln(stderr, "audit evidence: no custody.signing_key_file: the package is covered only by checkpoints already in the ledger")
	}
	ev, err := gateway.BuildEvidence(ctx, src, id, true)
	if err != nil {
		return err
	}
	w, done, err := createOut(out, stdout)
	if err != nil {
		return err
	}
	if err := json.MarshalWrite(w, ev); err != nil {
		done()
		return err
	}
	return done()
}

// configLoaded is the ledger entry recording the configuration serve
// started with: the SHA-256 of the file's bytes, the routes and their
// policy versions, and the checkpoint key.
func configLoaded(path string, routes []*policy.Route, signer *custody.Signer) (custody.Entry, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return custody.Entry{}, err
	}
	sum := sha256.Sum256(b)
	var parts []string
	for _, r := range routes {
		parts = append(parts, r.Name()+"@"+r.Version())
	}
	return custody.Entry{
		Action: custody.ConfigLoaded, User: "ctigate", SHA256: custody.HexHash(sum),
		Detail: fmt.Sprintf("file %s (sha256 of its bytes); routes %s; checkpoint key %s", filepath.Base(path), strings.Join(parts, ", "), signer.PublicKey()),
	}, nil
}

var _ store.Ledger = (*bolt.Store)(nil)
