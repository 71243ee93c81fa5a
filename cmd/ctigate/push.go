package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/go-json-experiment/json/jsontext"
	"golang.org/x/term"

	"github.com/ctigate/ctigate/client"
)

// clientFlags are the connection flags push and poll share.
type clientFlags struct {
	server, collection, apiRoot, user, netrc string
	attempts                                 int
	noCollection                             bool // the command reads no collection (search)
}

func (f *clientFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.server, "server", "", "gateway URL, e.g. https://taxii.example:8443 (required)")
	fs.StringVar(&f.collection, "collection", "", "collection id or alias (required)")
	fs.StringVar(&f.apiRoot, "api-root", "exchange", "API root name")
	fs.StringVar(&f.user, "user", "", "user for HTTP Basic; password from $CTIGATE_PASSWORD or the netrc file")
	fs.StringVar(&f.netrc, "netrc", "", "netrc-style file with 'machine HOST login U password P' (default ~/.netrc)")
	fs.IntVar(&f.attempts, "attempts", 6, "attempts per request on 429, 5xx and network errors")
}

// client builds the TAXII client. Credentials, in order: --user with
// $CTIGATE_PASSWORD or the netrc password for that login; else
// $CTIGATE_TOKEN (bearer); else the netrc entry for the server's host.
// No secret is ever put in an error.
func (f *clientFlags) client(getenv func(string) string) (*client.Client, error) {
	if f.server == "" || (f.collection == "" && !f.noCollection) {
		return nil, errors.New("--server and --collection are required")
	}
	host := client.Host(f.server)
	var creds client.Credentials
	switch {
	case f.user != "":
		creds.User = f.user
		creds.Password = getenv("CTIGATE_PASSWORD")
		if creds.Password == "" {
			login, pass, err := f.netrcEntry(getenv, host)
			if err != nil {
				return nil, err
			}
			if login != f.user || pass == "" {
				return nil, fmt.Errorf("no password for %s: set CTIGATE_PASSWORD or add it to the netrc file", f.user)
			}
			creds.Password = pass
		}
	case getenv("CTIGATE_TOKEN") != "":
		creds.Token = getenv("CTIGATE_TOKEN")
	default:
		login, pass, err := f.netrcEntry(getenv, host)
		if err != nil {
			return nil, err
		}
		creds.User, creds.Password = login, pass
	}
	c, err := client.New(f.server, f.apiRoot, creds)
	if err != nil {
		return nil, err
	}
	c.MaxAttempts = f.attempts
	return c, nil
}

// netrcEntry finds the login and password for host (or the default
// entry). A missing default file is not an error; a missing --netrc is.
func (f *clientFlags) netrcEntry(getenv func(string) string, host string) (login, pass string, err error) {
	path := f.netrc
	if path == "" {
		home := getenv("HOME")
		if home == "" {
			return "", "", nil
		}
		path = filepath.Join(home, ".netrc")
	}
	b, err := os.ReadFile(path)
	if err != nil {
		if f.netrc == "" && errors.Is(err, os.ErrNotExist) {
			return "", "", nil
		}
		return "", "", fmt.Errorf("netrc: cannot read %s", path)
	}
	return parseNetrc(string(b), host)
}

func parseNetrc(text, host string) (login, pass string, err error) {
	var lines []string
	for _, l := range strings.Split(text, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "#") {
			lines = append(lines, l)
		}
	}
	tok := strings.Fields(strings.Join(lines, "\n"))
	var dLogin, dPass string
	inHost, inDefault, found := false, false, false
	for i := 0; i < len(tok); i++ {
		val := func() string {
			if i+1 < len(tok) {
				i++
				return tok[i]
			}
			return ""
		}
		switch tok[i] {
		case "machine":
			if found {
				return login, pass, nil
			}
			inHost, inDefault = val() == host, false
			found = inHost
		case "default":
			if found {
				return login, pass, nil
			}
			inHost, inDefault = false, true
		case "login":
			v := val()
			if inHost {
				login = v
			} else if inDefault {
				dLogin = v
			}
		case "password":
			v := val()
			if inHost {
				pass = v
			} else if inDefault {
				dPass = v
			}
		case "account", "macdef":
			val()
		}
	}
	if found {
		return login, pass, nil
	}
	return dLogin, dPass, nil
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// progress prints a status line every interval until stopped: plain lines
// on a non-terminal, one rewritten line on a terminal.
type progress struct {
	w    io.Writer
	tty  bool
	line func() string
	stop chan struct{}
	done chan struct{}
}

func startProgress(w io.Writer, every time.Duration, line func() string) *progress {
	p := &progress{w: w, tty: isTerminal(w), line: line, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(p.done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-p.stop:
				if p.tty {
					fmt.Fprintln(p.w)
				}
				return
			case <-t.C:
				if p.tty {
					fmt.Fprintf(p.w, "\r\033[K%s", p.line())
				} else {
					fmt.Fprintln(p.w, p.line())
				}
			}
		}
	}()
	return p
}

func (p *progress) Stop() { close(p.stop); <-p.done }

const pushUsage = `Usage: ctigate push --server URL --collection ID|ALIAS [flags] FILE|DIR|- ...

Reads STIX bundles, TAXII envelopes or JSON Lines (one object per line)
from files, every *.json and *.jsonl in a directory, or stdin (-), splits
them into envelopes under the API root's max_content_length and adds them
to the collection. Retries on 429, 5xx and network errors with backoff.
Exits non-zero when any object was rejected or not sent.

With --wait, it then waits (up to --wait-timeout) until every route that
reads the collection has decided about every object it sent, and prints
for each route how many it published, redacted and withheld, and why
(GET /api/v1/statuses/{id}/decisions); objects still undecided, say
waiting for objects they refer to, are counted as pending. With
--fail-withheld, an object a route withheld makes the exit status 3.

Credentials: --user with $CTIGATE_PASSWORD, or a netrc file entry
(machine HOST login U password P), or a bearer token in $CTIGATE_TOKEN.

Flags:
`

type rejection struct{ id, reason string }

// runPush implements `ctigate push`.
func runPush(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("push", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cf clientFlags
	cf.register(fs)
	every := fs.Duration("progress", 5*time.Second, "interval between progress lines on stderr")
	wait := fs.Bool("wait", false, "wait for the routes' decisions and print them per route")
	waitTimeout := fs.Duration("wait-timeout", time.Minute, "with --wait: how long to wait for decisions")
	failWithheld := fs.Bool("fail-withheld", false, "with --wait: exit 3 when a route withheld an object")
	fs.Usage = func() { fmt.Fprint(stderr, pushUsage); fs.PrintDefaults() }
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return errUsage
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return errUsage
	}
	c, err := cf.client(getenv)
	if err != nil {
		return fmt.Errorf("push: %w", err)
	}
	objs, err := readInputs(fs.Args(), stdin)
	if err != nil {
		return fmt.Errorf("push: %w", err)
	}
	if len(objs) == 0 {
		return errors.New("push: no objects in input")
	}
	limit, err := c.MaxContentLength(ctx)
	if err != nil {
		return fmt.Errorf("push: %w", err)
	}
	envs, tooBig := client.Split(objs, limit, 100000)

	var (
		mu                       sync.Mutex
		sent, accepted, envsDone int
		rejected                 []rejection
		failed                   int
		statuses                 []string
	)
	for _, i := range tooBig {
		rejected = append(rejected, rejection{client.ObjectID(objs[i]), fmt.Sprintf("object is %d bytes, larger than max_content_length (%d) allows; not sent", len(objs[i]), limit)})
	}
	start := time.Now()
	prog := startProgress(stderr, *every, func() string {
		mu.Lock()
		defer mu.Unlock()
		return fmt.Sprintf("push: %d/%d envelopes, %d/%d objects sent, %d accepted, %d rejected, %d retried, %s",
			envsDone, len(envs), sent, len(objs), accepted, len(rejected), c.Retries(), time.Since(start).Round(time.Second))
	})
	var fatal error
	for _, env := range envs {
		st, err := c.Post(ctx, cf.collection, client.Envelope(env), time.Second, 300)
		mu.Lock()
		envsDone++
		sent += len(env)
		var he *client.HTTPError
		switch {
		case st != nil:
			// The server answered; a status still pending after polling
			// counts its pending objects as failed.
			accepted += st.SuccessCount
			if st.ID != "" && st.SuccessCount > 0 {
				statuses = append(statuses, st.ID)
			}
			for _, f := range st.Failures {
				rejected = append(rejected, rejection{f.ID, f.Message})
			}
			if unlisted := st.FailureCount - len(st.Failures); unlisted > 0 {
				// The status lists a bounded number of failures: the
				// others are the envelope's objects it lists nowhere.
				listed := map[string]bool{}
				for _, d := range append(slices.Clone(st.Successes), st.Failures...) {
					listed[d.ID] = true
				}
				for i, o := range env {
					if id := client.ObjectID(o); !listed[id] && unlisted > 0 {
						if id == "" {
							id = fmt.Sprintf("objects[%d]", i)
						}
						rejected = append(rejected, rejection{id, fmt.Sprintf("refused; the status (%s) lists the first %d failures with their reasons, and counts %d: the custody ledger records every refusal of the envelope", st.ID, len(st.Failures), st.FailureCount)})
						unlisted--
					}
				}
			}
			if n := st.TotalCount - st.SuccessCount - st.FailureCount; n > 0 {
				failed += n
			}
			if err != nil {
				fmt.Fprintf(stderr, "push: %v\n", err)
			}
		case errors.As(err, &he) && (he.Status == 401 || he.Status == 403 || he.Status == 404):
			fatal = err
		case errors.As(err, &he) && !client.Retryable(he.Status):
			for _, o := range env {
				rejected = append(rejected, rejection{client.ObjectID(o), err.Error()})
			}
		case ctx.Err() != nil:
			fatal = ctx.Err()
		default:
			failed += len(env)
			fmt.Fprintf(stderr, "push: envelope of %d objects not sent: %v\n", len(env), err)
		}
		mu.Unlock()
		if fatal != nil {
			break
		}
	}
	prog.Stop()

	notSent := len(objs) - sent - len(tooBig)
	fmt.Fprintf(stdout, "sent %d objects in %d envelopes (max_content_length %d) in %s\n", sent, envsDone, limit, time.Since(start).Round(time.Millisecond))
	fmt.Fprintf(stdout, "accepted %d, rejected %d, failed %d, not sent %d, retried requests %d\n", accepted, len(rejected), failed, notSent, c.Retries())
	sort.SliceStable(rejected, func(i, j int) bool { return rejected[i].id < rejected[j].id })
	for _, r := range rejected {
		fmt.Fprintf(stdout, "rejected %s: %s\n", r.id, r.reason)
	}
	withheld := 0
	if *wait && fatal == nil && len(statuses) > 0 {
		var err error
		if withheld, err = waitForDecisions(ctx, c, statuses, *waitTimeout, stdout); err != nil {
			return fmt.Errorf("push: %w", err)
		}
	}
	switch {
	case fatal != nil:
		return fmt.Errorf("push: %w", fatal)
	case len(rejected) > 0 || failed > 0 || notSent > 0:
		return fmt.Errorf("push: %d rejected, %d failed, %d not sent", len(rejected), failed, notSent)
	case *failWithheld && withheld > 0:
		return errWithheld{withheld}
	}
	return nil
}

// errWithheld is push --fail-withheld's failure: exit status 3.
type errWithheld struct{ n int }

func (e errWithheld) Error() string {
	return fmt.Sprintf("push: routes withheld %d object versions", e.n)
}
func (errWithheld) ExitCode() int { return 3 }

// waitForDecisions polls the routes' decisions about the objects of
// statuses until none is pending or timeout passes, prints them per route
// (published, redacted, withheld with reasons, pending), and returns how
// many versions routes withheld.
func waitForDecisions(ctx context.Context, c *client.Client, statuses []string, timeout time.Duration, stdout io.Writer) (int, error) {
	deadline := time.Now().Add(timeout)
	var fbs []*client.Feedback
	for {
		fbs = fbs[:0]
		pending := 0
		for _, id := range statuses {
			fb, err := c.Feedback(ctx, id)
			if err != nil {
				return 0, fmt.Errorf("reading the routes' decisions: %w", err)
			}
			fbs = append(fbs, fb)
			for _, r := range fb.Routes {
				pending += r.Pending
			}
		}
		if pending == 0 || time.Now().After(deadline) {
			break
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
	sum := map[string]*client.RouteFeedback{}
	var names []string
	for _, fb := range fbs {
		for _, r := range fb.Routes {
			t := sum[r.Route]
			if t == nil {
				t = &client.RouteFeedback{Route: r.Route, Reasons: map[string]int{}}
				sum[r.Route] = t
				names = append(names, r.Route)
			}
			t.Published += r.Published
			t.Redacted += r.Redacted
			t.Withheld += r.Withheld
			t.Pending += r.Pending
			for k, n := range r.Reasons {
				t.Reasons[k] += n
			}
		}
	}
	sort.Strings(names)
	if len(names) == 0 {
		fmt.Fprintln(stdout, "no route reads this collection")
	}
	withheld := 0
	for _, name := range names {
		t := sum[name]
		withheld += t.Withheld
		line := fmt.Sprintf("route %s: published %d, redacted %d, withheld %d", name, t.Published, t.Redacted, t.Withheld)
		if len(t.Reasons) > 0 {
			var rs []string
			for k, n := range t.Reasons {
				rs = append(rs, fmt.Sprintf("%s %d", k, n))
			}
			sort.Strings(rs)
			line += " (" + strings.Join(rs, ", ") + ")"
		}
		if t.Pending > 0 {
			line += fmt.Sprintf(", pending %d (not decided within %s: fan-out behind, or waiting for objects they refer to)", t.Pending, timeout)
		}
		fmt.Fprintln(stdout, line)
	}
	return withheld, nil
}

// readInputs reads objects from each FILE, DIR (*.json, *.jsonl) or "-".
func readInputs(paths []string, stdin io.Reader) ([]jsonValue, error) {
	var all []jsonValue
	read := func(name string, r io.Reader) error {
		b, err := io.ReadAll(bufio.NewReader(r))
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		objs, err := client.ReadObjects(b)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		all = append(all, objs...)
		return nil
	}
	for _, p := range paths {
		if p == "-" {
			if err := read("stdin", stdin); err != nil {
				return nil, err
			}
			continue
		}
		fi, err := os.Stat(p)
		if err != nil {
			return nil, err
		}
		files := []string{p}
		if fi.IsDir() {
			files = nil
			for _, pat := range []string{"*.json", "*.jsonl"} {
				m, _ := filepath.Glob(filepath.Join(p, pat))
				files = append(files, m...)
			}
			sort.Strings(files)
		}
		for _, name := range files {
			f, err := os.Open(name)
			if err != nil {
				return nil, err
			}
			err = read(name, f)
			f.Close()
			if err != nil {
				return nil, err
			}
		}
	}
	return all, nil
}

type jsonValue = jsontext.Value
