package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/ctigate/ctigate/config"
	"github.com/ctigate/ctigate/gateway"
	"github.com/ctigate/ctigate/policy"
	"github.com/ctigate/ctigate/stix"
)

const policyUsage = `Usage:
  ctigate policy check --route R [--config FILE] [--producer ORG] [--json] FILE|-
  ctigate policy check --route R --server URL [--user U] [--producer ORG] [--json] FILE|-
`

const policyCheckHelp = `Usage: ctigate policy check --route R [--config FILE] [--producer ORG] [--json] FILE|-
       ctigate policy check --route R --server URL [--user U] [--producer ORG] [--json] FILE|-

Dry-run a STIX bundle or TAXII envelope (FILE, or - for stdin) against one
sharing route and print, for each object in file order, what the route would
do with it: publish, publish redacted (with the removed properties) or
withhold, with a reason code and a detail. Objects that ingest would refuse
are listed as "rejected at ingest" with the validation error. A summary line
(counts per decision and per reason, and the policy version) ends the output.

The file is read as ingest would read it: its marking definitions are
registered first, then the objects are decided as one set, as fan-out
decides them: a reference counts as published when it points to an object
the route publishes (possibly redacted) from the same file, wherever it is
in the file, so the order of the objects does not matter. Offline (from
--config), a reference to an object not in the file is to something the
route has not published (fan-out would wait for it for the route's
reference_wait), and a revoked version is judged as if the route had never
received the object: the route's state is not seen (a note says so). With --server the running gateway checks the file against
the route's live state, deciding exactly as fan-out does, for your
organisation (its marking definitions, what the route published of its
objects, and its earlier submissions a reference names); an object that
refers to something neither the file nor your earlier submissions hold is
marked as one fan-out would first wait for. Nothing is stored.

The exit status is 0 whenever the check ran, whatever the decisions; it is
1 for a bad route name, an unreadable file or a file that is not an envelope.

Flags:
`

// runPolicy dispatches the policy subcommands.
func runPolicy(args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, policyUsage)
		return errUsage
	}
	switch args[0] {
	case "check":
		return runPolicyCheck(args[1:], getenv, stdin, stdout, stderr, time.Now)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, policyUsage)
		return nil
	default:
		fmt.Fprintf(stderr, "ctigate policy: unknown command %q\n\n%s", args[0], policyUsage)
		return errUsage
	}
}

// runPolicyCheck implements `ctigate policy check`; now is the clock
// (valid_until is compared with it).
func runPolicyCheck(args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer, now func() time.Time) error {
	fs := flag.NewFlagSet("policy check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, policyCheckHelp)
		fs.PrintDefaults()
	}
	routeName := fs.String("route", "", "the route: its name, or the id or alias of the collection it publishes into (required)")
	cfgPath := fs.String("config", "configs/ctigate.yaml", "configuration file")
	producer := fs.String("producer", "", "organisation the objects are taken to come from (checked by routes that list producers)")
	jsonOut := fs.Bool("json", false, "print JSON Lines: one decision per line, then a summary object")
	cf := clientFlags{noCollection: true}
	fs.StringVar(&cf.server, "server", "", "check against the running gateway at this URL, with the route's live state (POST /api/v1/routes/ROUTE/dry-run; producer or policy-admin role)")
	fs.StringVar(&cf.user, "user", "", "with --server: user for HTTP Basic; password from $CTIGATE_PASSWORD or the netrc file (else $CTIGATE_TOKEN)")
	fs.StringVar(&cf.netrc, "netrc", "", "with --server: netrc-style file with 'machine HOST login U password P' (default ~/.netrc)")
	cf.attempts = 3

	// Flags may come before or after FILE.
	var files []string
	for rest := args; ; {
		if err := fs.Parse(rest); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil
			}
			return errUsage
		}
		if fs.NArg() == 0 {
			break
		}
		files = append(files, fs.Arg(0))
		rest = fs.Args()[1:]
	}
	switch {
	case *routeName == "":
		fmt.Fprint(stderr, "policy check: --route is required\n\n"+policyUsage)
		return errUsage
	case len(files) != 1:
		fmt.Fprint(stderr, "policy check: give exactly one FILE (or - for stdin)\n\n"+policyUsage)
		return errUsage
	}

	var data []byte
	var err error
	if files[0] == "-" {
		data, err = io.ReadAll(stdin)
	} else {
		data, err = os.ReadFile(files[0])
	}
	if err != nil {
		return fmt.Errorf("policy check: %w", err)
	}
	name := files[0]
	if name == "-" {
		name = "stdin"
	}
	var results []gateway.Result
	var sum gateway.Summary
	if cf.server != "" {
		results, sum, err = dryRunServer(&cf, getenv, *routeName, *producer, data)
		if err != nil {
			return err
		}
	} else {
		cfg, err := config.Load(*cfgPath, getenv)
		if err != nil {
			return err
		}
		route, err := findRoute(cfg, *routeName)
		if err != nil {
			return err
		}
		items, err := stix.DecodeEnvelope(data)
		if err != nil {
			return fmt.Errorf("policy check: %s: %w", name, err)
		}
		// Offline: no route state (Holds nil).
		results, sum, err = gateway.DryRun(items, gateway.Decider{Markings: stix.NewMarkings(), Route: route, Now: now()}, *producer)
		if err != nil {
			return err
		}
	}

	w := bufio.NewWriter(stdout)
	var out checkWriter = &textCheck{w: w}
	if *jsonOut {
		out = &jsonCheck{enc: jsontext.NewEncoder(w)}
	}
	for i := range results {
		_ = out.result(&results[i]) // write errors surface at Flush
	}
	if err := out.summary(&sum); err != nil {
		return err
	}
	return w.Flush()
}

// dryRunServer asks the gateway to dry-run data against route with the
// route's live state.
func dryRunServer(cf *clientFlags, getenv func(string) string, route, producer string, data []byte) ([]gateway.Result, gateway.Summary, error) {
	var resp struct {
		Results []gateway.Result `json:"results"`
		Summary gateway.Summary  `json:"summary"`
	}
	c, err := cf.client(getenv)
	if err != nil {
		return nil, resp.Summary, fmt.Errorf("policy check: %w", err)
	}
	u := strings.TrimRight(cf.server, "/") + "/api/v1/routes/" + url.PathEscape(route) + "/dry-run"
	if producer != "" {
		u += "?producer=" + url.QueryEscape(producer)
	}
	_, b, err := c.Do(context.Background(), "POST", u, data)
	if err != nil {
		return nil, resp.Summary, fmt.Errorf("policy check: %w", err)
	}
	if err := json.Unmarshal(b, &resp); err != nil {
		return nil, resp.Summary, fmt.Errorf("policy check: the gateway's answer: %w", err)
	}
	return resp.Results, resp.Summary, nil
}

// findRoute returns the configured route named name, or whose published
// collection has the id or alias name.
func findRoute(cfg *config.Config, name string) (*policy.Route, error) {
	routes, err := policy.CompileRoutes(cfg.Routes)
	if err != nil {
		return nil, err // config.Validate compiled them already
	}
	aliases := map[string][]string{} // collection id → aliases
	for _, r := range cfg.APIRoots {
		for _, c := range r.Collections {
			if c.Alias != "" {
				aliases[c.ID] = append(aliases[c.ID], c.Alias)
			}
		}
	}
	var found []*policy.Route
	for _, r := range routes {
		if r.Name() == name || r.ID() == strings.ToLower(name) || slices.Contains(aliases[r.ID()], name) {
			found = append(found, r)
		}
	}
	if len(found) == 1 {
		return found[0], nil
	}
	if len(routes) == 0 {
		return nil, fmt.Errorf("policy check: no route %q: the configuration has no routes", name)
	}
	var list []string
	for _, r := range routes {
		desc := r.Name() + " (collection " + r.ID()
		if a := aliases[r.ID()]; len(a) > 0 {
			desc += ", alias " + strings.Join(a, ", ")
		}
		list = append(list, desc+", ceiling "+r.Ceiling().String()+")")
	}
	what := "no route"
	if len(found) > 1 {
		what = "more than one route matches"
	}
	return nil, fmt.Errorf("policy check: %s %q; configured routes:\n  %s", what, name, strings.Join(list, "\n  "))
}

// checkSummary is a check's summary (what tests parse).
type checkSummary = gateway.Summary

// checkWriter prints a check's results.
type checkWriter interface {
	result(*gateway.Result) error
	summary(*gateway.Summary) error
}

// textCheck prints a check for people.
type textCheck struct{ w *bufio.Writer }

func (t *textCheck) result(r *gateway.Result) error {
	version, level := r.Version, r.TLP
	if version == "" {
		version = "-"
	}
	if level == "" {
		level = "-"
	}
	id := r.ID
	if id == "" {
		id = fmt.Sprintf("objects[%d]", r.Index)
	}
	line := fmt.Sprintf("%s %s  %-16s  %-18s", id, version, level, gateway.Words(r.Decision))
	switch r.Decision {
	case gateway.DecisionRejected:
		line += "  " + r.Detail
	case gateway.DecisionPublishRedacted:
		var removed []string
		for _, x := range r.Removed {
			removed = append(removed, fmt.Sprintf("%s (%s: %s)", x.Path, x.Reason, x.Detail))
		}
		line += "  removed " + strings.Join(removed, "; ")
	case gateway.DecisionWithhold:
		line += fmt.Sprintf("  %s: %s", r.Reason, r.Detail)
	}
	if len(r.Awaiting) > 0 {
		line += "  (fan-out would first wait for " + strings.Join(r.Awaiting, ", ") + ")"
	}
	t.w.WriteString(strings.TrimRight(line, " "))
	return t.w.WriteByte('\n')
}

func (t *textCheck) summary(s *checkSummary) error {
	if s.State != "live" {
		fmt.Fprintln(t.w, "note: offline check: the route's collection is not seen, so a reference to, or a revoked version of, an object the route published before is judged as if it had not been; --server checks against the running gateway")
	}
	counts := func(m map[string]int, order []string) string {
		var parts []string
		for _, k := range order {
			if m[k] > 0 {
				parts = append(parts, fmt.Sprintf("%d %s", m[k], k))
			}
		}
		if len(parts) == 0 {
			return "none"
		}
		return strings.Join(parts, ", ")
	}
	fmt.Fprintf(t.w, "summary: %d objects: %s; reasons: %s; route %s (collection %s, ceiling %s), policy version %s\n",
		s.Objects,
		counts(s.Decisions, []string{"publish", "publish redacted", "withhold", "rejected at ingest"}),
		counts(s.Reasons, slices.Sorted(maps.Keys(s.Reasons))),
		s.Route, s.Collection, s.Ceiling, s.PolicyVersion)
	return nil
}

// jsonCheck prints a check as JSON Lines.
type jsonCheck struct{ enc *jsontext.Encoder }

func (j *jsonCheck) result(r *gateway.Result) error { return json.MarshalEncode(j.enc, r) }

func (j *jsonCheck) summary(s *checkSummary) error {
	return json.MarshalEncode(j.enc, struct {
		Summary *checkSummary `json:"summary"`
	}{s})
}
