package main

import (
	"bufio"
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"time"

	"github.com/go-json-experiment/json"
	"github.com/google/uuid"

	"github.com/ctigate/ctigate/client"
	"github.com/ctigate/ctigate/stix"
)

const pollUsage = `Usage: ctigate poll --server URL --collection ID|ALIAS [flags]

Pulls what was added to the collection since the last run. The state file
remembers the last X-TAXII-Date-Added-Last written; the next run asks for
objects added after it, and follows "next" within a run. The state only
advances after the page's objects are written and flushed, so an
interrupted poll resumes with no gap and no duplicate.

Output: JSON Lines, appended (default), or one STIX bundle per run
holding that run's objects (written when the run completes).

Outages: each request is retried a few times (network errors, 429, 5xx),
waiting up to --retry-max between attempts. Without --follow, poll then
gives up. With --follow it keeps trying, waiting longer each time up to
--retry-max, says so once per outage, and resumes from its cursor when
the gateway answers again: nothing is skipped or written twice.

Withdrawals: each run first asks the gateway what was withdrawn from the
collection since the last run (GET /api/v1/collections/{id}/withdrawn:
versions its producer deleted, or that the route no longer publishes),
removes those versions from a JSON Lines output file (rewritten
atomically), appends them to the --withdrawn file when given, and reports
them. Standard TAXII clients cannot learn of withdrawals.

Credentials: --user with $CTIGATE_PASSWORD, or a netrc file entry
(machine HOST login U password P), or a bearer token in $CTIGATE_TOKEN.

Flags:
`

// pollState is what the state file holds.
type pollState struct {
	Server     string `json:"server"`
	Collection string `json:"collection"`
	AddedAfter string `json:"added_after"`
	// WithdrawnAfter is the withdrawn_at of the last withdrawal applied.
	WithdrawnAfter string `json:"withdrawn_after,omitempty"`
}

// runPoll implements `ctigate poll`.
func runPoll(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("poll", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cf clientFlags
	cf.register(fs)
	statePath := fs.String("state", "", "state file (default: none, every run starts from the beginning)")
	out := fs.String("out", "-", "output file, or - for stdout")
	format := fs.String("format", "jsonl", "output format: jsonl (appended) or bundle (one per run)")
	follow := fs.Bool("follow", false, "poll again every --interval until interrupted")
	interval := fs.Duration("interval", 10*time.Second, "interval between runs with --follow")
	retryMax := fs.Duration("retry-max", 30*time.Second, "longest wait between attempts while the gateway cannot be reached")
	limit := fs.Int("limit", 1000, "objects per page")
	withdrawn := fs.String("withdrawn", "", "append each withdrawal, as a JSON line, to this file")
	fs.Usage = func() { fmt.Fprint(stderr, pollUsage); fs.PrintDefaults() }
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return errUsage
	}
	if fs.NArg() != 0 || (*format != "jsonl" && *format != "bundle") || *limit <= 0 || *interval <= 0 || *retryMax <= 0 {
		fs.Usage()
		return errUsage
	}
	c, err := cf.client(getenv)
	if err != nil {
		return fmt.Errorf("poll: %w", err)
	}
	c.MaxDelay = *retryMax
	c.BaseDelay = min(500*time.Millisecond, *retryMax)
	st := pollState{Server: c.Base, Collection: cf.collection}
	if *statePath != "" {
		b, err := os.ReadFile(*statePath)
		switch {
		case err == nil:
			if err := json.Unmarshal(b, &st); err != nil {
				return fmt.Errorf("poll: state file %s: %w", *statePath, err)
			}
			if st.Collection != cf.collection {
				return fmt.Errorf("poll: state file %s is for collection %q, not %q", *statePath, st.Collection, cf.collection)
			}
		case !errors.Is(err, os.ErrNotExist):
			return fmt.Errorf("poll: %w", err)
		}
	}
	p := &poller{c: c, collection: cf.collection, statePath: *statePath, out: *out, bundle: *format == "bundle", limit: *limit, stdout: stdout, stderr: stderr, state: st, withdrawn: *withdrawn}
	var (
		down     time.Time // when the gateway stopped answering (zero: it answers)
		failures int       // runs failed since
	)
	for {
		n, err := p.runOnce(ctx)
		if err != nil {
			if ctx.Err() != nil && *follow {
				return nil
			}
			if !*follow || !unreachable(err) {
				return fmt.Errorf("poll: %w", err)
			}
			// The cursor stays where the last page written left it: the
			// next run starts from there.
			if down.IsZero() {
				down = time.Now()
				fmt.Fprintf(stderr, "poll: the gateway cannot be reached (%v); retrying until it can (waits up to %s), from added_after %s\n",
					err, *retryMax, cmp.Or(p.state.AddedAfter, "unset"))
			}
			d := client.Backoff(failures, c.BaseDelay, *retryMax, rand.Float64)
			failures++
			if !sleepCtx(ctx, d) {
				return nil
			}
			continue
		}
		if !down.IsZero() {
			fmt.Fprintf(stderr, "poll: the gateway answers again after %s; resumed\n", time.Since(down).Round(time.Millisecond))
			down, failures = time.Time{}, 0
		}
		fmt.Fprintf(stderr, "poll: %d objects; added_after now %s\n", n, cmp.Or(p.state.AddedAfter, "unset (nothing received yet)"))
		if !*follow {
			return nil
		}
		if !sleepCtx(ctx, *interval) {
			return nil
		}
	}
}

// sleepCtx waits d and reports true, or false if ctx ends first.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// remoteError is a request to the gateway that failed (after the
// client's own retries), as opposed to a failure to write the output or
// the state.
type remoteError struct{ err error }

func (e *remoteError) Error() string { return e.err.Error() }
func (e *remoteError) Unwrap() error { return e.err }

// unreachable reports whether err is the gateway not answering, or
// answering that it cannot serve now (429, 5xx): what --follow waits out.
// Other answers (401, 403, 404…) need the user.
func unreachable(err error) bool {
	var re *remoteError
	if !errors.As(err, &re) {
		return false
	}
	var he *client.HTTPError
	return !errors.As(err, &he) || client.Retryable(he.Status)
}

type poller struct {
	c          *client.Client
	collection string
	statePath  string
	out        string
	bundle     bool
	limit      int
	stdout     io.Writer
	stderr     io.Writer
	state      pollState
	withdrawn  string // file the withdrawals are appended to ("": none)
}

// runOnce pulls everything added since the state and returns how many
// objects it wrote.
func (p *poller) runOnce(ctx context.Context) (int, error) {
	if err := p.applyWithdrawals(ctx); err != nil {
		return 0, err
	}
	var (
		next, last string
		total      int
		pending    []jsonValue // bundle mode: this run's objects
	)
	for {
		page, err := p.c.GetObjects(ctx, p.collection, p.state.AddedAfter, next, p.limit)
		if err != nil {
			return total, &remoteError{err}
		}
		if len(page.Objects) > 0 {
			if page.DateAddedLast == "" {
				return total, errors.New("server sent a page without X-TAXII-Date-Added-Last")
			}
			last = page.DateAddedLast
			if p.bundle {
				pending = append(pending, page.Objects...)
			} else {
				// Write and flush, then advance the state: a crash between
				// the two repeats this page (never skips it); JSON Lines
				// readers should treat (id, version) as the key.
				if err := p.writeLines(page.Objects); err != nil {
					return total, err
				}
				if err := p.saveState(last); err != nil {
					return total, err
				}
			}
			total += len(page.Objects)
		}
		if !page.More || page.Next == "" {
			break
		}
		next = page.Next
	}
	if p.bundle && len(pending) > 0 {
		if err := p.writeBundle(pending); err != nil {
			return total, err
		}
		if err := p.saveState(last); err != nil {
			return total, err
		}
	}
	return total, nil
}

// applyWithdrawals reads what was withdrawn from the collection since the
// last run, removes those versions from a JSON Lines output file, appends
// them to the withdrawn file, and then advances the state. A run
// interrupted before the state is saved applies them again, which changes
// nothing more. It runs before the objects are read: a version read after
// it is in the collection, even if it was withdrawn and added again.
func (p *poller) applyWithdrawals(ctx context.Context) error {
	var all []client.Withdrawn
	after := p.state.WithdrawnAfter
	for {
		page, err := p.c.Withdrawals(ctx, p.collection, after, 0)
		if err != nil {
			return &remoteError{fmt.Errorf("reading withdrawals: %w", err)}
		}
		all = append(all, page.Withdrawn...)
		if !page.More || page.Next == "" {
			break
		}
		after = page.Next
	}
	if len(all) == 0 {
		return nil
	}
	removed := 0
	if !p.bundle && p.out != "-" {
		var err error
		if removed, err = removeWithdrawn(p.out, all); err != nil {
			return fmt.Errorf("removing withdrawn objects from %s: %w", p.out, err)
		}
	}
	if p.withdrawn != "" {
		f, err := os.OpenFile(p.withdrawn, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
		if err != nil {
			return err
		}
		bw := bufio.NewWriter(f)
		for _, w := range all {
			b, _ := json.Marshal(w)
			bw.Write(b)
			bw.WriteByte('\n')
		}
		if err := cmp.Or(bw.Flush(), f.Sync()); err != nil {
			f.Close()
			return err
		}
		if err := f.Close(); err != nil {
			return err
		}
	}
	fmt.Fprintf(p.stderr, "poll: %d versions withdrawn from the collection since %s", len(all), cmp.Or(p.state.WithdrawnAfter, "the start"))
	if !p.bundle && p.out != "-" {
		fmt.Fprintf(p.stderr, "; %d lines removed from %s", removed, p.out)
	}
	fmt.Fprintln(p.stderr)
	p.state.WithdrawnAfter = all[len(all)-1].WithdrawnAt
	return p.saveState(p.state.AddedAfter)
}

// removeWithdrawn rewrites the JSON Lines file path (atomically: temp
// file, fsync, rename) without the lines holding a withdrawn version, and
// returns how many it removed. A missing file has nothing to remove.
func removeWithdrawn(path string, ws []client.Withdrawn) (int, error) {
	type key struct {
		id string
		v  time.Time
	}
	gone := map[key]bool{}
	for _, w := range ws {
		k := key{id: w.ID}
		if w.Version != "" {
			t, err := stix.ParseTimestamp(w.Version)
			if err != nil {
				return 0, fmt.Errorf("withdrawal of %s: version %q: %w", w.ID, w.Version, err)
			}
			k.v = t
		}
		gone[k] = true
	}
	in, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	defer in.Close()
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return 0, err
	}
	defer os.Remove(tmp.Name())
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 0, 64<<10), 256<<20)
	bw := bufio.NewWriter(tmp)
	removed := 0
	for sc.Scan() {
		line := sc.Bytes()
		var o struct {
			ID       string `json:"id"`
			Modified string `json:"modified"`
			Created  string `json:"created"`
		}
		if json.Unmarshal(line, &o) == nil {
			k := key{id: o.ID}
			if v := cmp.Or(o.Modified, o.Created); v != "" {
				k.v, _ = stix.ParseTimestamp(v)
			}
			if gone[k] {
				removed++
				continue
			}
		}
		bw.Write(line)
		bw.WriteByte('\n')
	}
	if err := sc.Err(); err != nil {
		tmp.Close()
		return 0, err
	}
	if err := cmp.Or(bw.Flush(), tmp.Sync()); err != nil {
		tmp.Close()
		return 0, err
	}
	if err := tmp.Close(); err != nil {
		return 0, err
	}
	if removed == 0 {
		return 0, nil
	}
	return removed, os.Rename(tmp.Name(), path)
}

func (p *poller) open(flags int) (io.Writer, func() error, error) {
	if p.out == "-" {
		return p.stdout, func() error { return nil }, nil
	}
	f, err := os.OpenFile(p.out, flags, 0o600)
	if err != nil {
		return nil, nil, err
	}
	return f, func() error {
		if err := f.Sync(); err != nil {
			f.Close()
			return err
		}
		return f.Close()
	}, nil
}

func (p *poller) writeLines(objs []jsonValue) error {
	w, done, err := p.open(os.O_WRONLY | os.O_CREATE | os.O_APPEND)
	if err != nil {
		return err
	}
	bw := bufio.NewWriter(w)
	for _, o := range objs {
		bw.Write(o)
		bw.WriteByte('\n')
	}
	if err := bw.Flush(); err != nil {
		done()
		return err
	}
	return done()
}

func (p *poller) writeBundle(objs []jsonValue) error {
	w, done, err := p.open(os.O_WRONLY | os.O_CREATE | os.O_TRUNC)
	if err != nil {
		return err
	}
	bw := bufio.NewWriter(w)
	fmt.Fprintf(bw, `{"type":"bundle","id":"bundle--%s","objects":[`, uuid.New())
	for i, o := range objs {
		if i > 0 {
			bw.WriteString(",\n")
		} else {
			bw.WriteString("\n")
		}
		bw.Write(o)
	}
	bw.WriteString("\n]}\n")
	if err := bw.Flush(); err != nil {
		done()
		return err
	}
	return done()
}

// saveState records addedAfter atomically (temp file, fsync, rename).
func (p *poller) saveState(addedAfter string) error {
	p.state.AddedAfter = addedAfter
	if p.statePath == "" {
		return nil
	}
	b, err := json.Marshal(p.state)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(p.statePath), "."+filepath.Base(p.statePath)+".tmp*")
	if err != nil {
		return err
	}
	_, err = tmp.Write(append(b, '\n'))
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), p.statePath)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("saving state: %w", err)
	}
	return nil
}
