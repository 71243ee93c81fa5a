package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/ctigate/ctigate"
	"github.com/ctigate/ctigate/config"
	"github.com/ctigate/ctigate/policy"
	"github.com/ctigate/ctigate/stix"
)

const policyUsage = `Usage:
  ctigate policy check --route R [--config FILE] [--producer ORG] [--json] FILE|-
`

const policyCheckHelp = `Usage: ctigate policy check --route R [--config FILE] [--producer ORG] [--json] FILE|-

Dry-run a STIX bundle or TAXII envelope (FILE, or - for stdin) against one
sharing route and print, for each object in file order, what the route would
do with it: publish, publish redacted (with the removed properties) or
withhold, with a reason code and a detail. Objects that ingest would refuse
are listed as "rejected at ingest" with the validation error. A summary line
(counts per decision and per reason, and the policy version) ends the output.

The file is read as ingest would read it: its marking definitions are
registered first, then the objects are evaluated in file order, and a
reference counts as published when it points to an object published
(possibly redacted) earlier in the same file. A reference to an object
later in the file, or not in it, is to something the route has not
published. Nothing is stored or sent.

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

	cfg, err := config.Load(*cfgPath, getenv)
	if err != nil {
		return err
	}
	route, err := findRoute(cfg, *routeName)
	if err != nil {
		return err
	}

	var data []byte
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
	items, err := stix.DecodeEnvelope(data)
	if err != nil {
		return fmt.Errorf("policy check: %s: %w", name, err)
	}

	w := bufio.NewWriter(stdout)
	var out checkWriter = &textCheck{w: w}
	if *jsonOut {
		out = &jsonCheck{enc: jsontext.NewEncoder(w)}
	}
	sum := checkPolicy(items, route, *producer, now(), out)
	if err := out.summary(sum); err != nil {
		return err
	}
	return w.Flush()
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

// checkResult is the outcome for one element of the file.
type checkResult struct {
	Item     *stix.Item
	Rejected error // ingest would refuse the object; Decision is unset
	Decision policy.Decision
	TLP      stix.TLP // the object's level, for people
}

// decisionName is the word the check uses for r's outcome; json selects
// the JSON spelling.
func (r *checkResult) decisionName(json bool) string {
	switch {
	case r.Rejected != nil && json:
		return "rejected"
	case r.Rejected != nil:
		return "rejected at ingest"
	case r.Decision.Action == policy.Publish:
		return "publish"
	case r.Decision.Action == policy.PublishRedacted && json:
		return "publish_redacted"
	case r.Decision.Action == policy.PublishRedacted:
		return "publish redacted"
	}
	return "withhold"
}

// reasons returns the reason codes of r: the withholding reason, or the
// distinct reasons of a redaction's removals.
func (r *checkResult) reasons() []string {
	if r.Rejected != nil {
		return nil
	}
	if r.Decision.Reason != "" {
		return []string{string(r.Decision.Reason)}
	}
	var out []string
	for _, x := range r.Decision.Removed {
		if !slices.Contains(out, string(x.Reason)) {
			out = append(out, string(x.Reason))
		}
	}
	return out
}

// checkSummary counts what a check decided.
type checkSummary struct {
	Route         string         `json:"route"`
	Collection    string         `json:"collection"`
	Ceiling       string         `json:"ceiling"`
	PolicyVersion string         `json:"policy_version"`
	Objects       int            `json:"objects"`
	Decisions     map[string]int `json:"decisions"`
	Reasons       map[string]int `json:"reasons"`
}

// checkWriter prints a check's results.
type checkWriter interface {
	result(*checkResult) error
	summary(*checkSummary) error
}

// checkPolicy evaluates every item for route as ingest and fan-out would,
// in order, passing each result to out, and returns the counts.
func checkPolicy(items []stix.Item, route *policy.Route, producer string, now time.Time, out checkWriter) *checkSummary {
	sum := &checkSummary{
		Route: route.Name(), Collection: route.ID(), Ceiling: route.Ceiling().String(),
		PolicyVersion: route.Version(), Decisions: map[string]int{}, Reasons: map[string]int{},
	}
	// Marking definitions first, as ingest registers them; one ingest
	// would refuse is rejected when its turn comes.
	markings := stix.NewMarkings()
	refused := map[int]error{}
	for i := range items {
		it := &items[i]
		if it.Err == nil && it.Object.Type == "marking-definition" {
			if err := markings.Add(it.Raw); err != nil && ctigate.KindOf(err) != ctigate.Unsupported {
				refused[i] = err
			}
		}
	}
	published := map[string]bool{}
	for i := range items {
		it := &items[i]
		res := &checkResult{Item: it, Rejected: it.Err}
		if res.Rejected == nil {
			res.Rejected = refused[i]
		}
		if res.Rejected == nil {
			m, hash, err := markings.ResolveHash(it.Raw)
			if err != nil {
				res.Rejected = err
			} else {
				var flags struct {
					Revoked bool `json:"revoked"`
				}
				_ = json.Unmarshal(it.Raw, &flags) // valid: DecodeEnvelope checked it
				res.Decision = policy.Evaluate(policy.Input{
					Raw: it.Raw, Type: it.Object.Type, ID: it.Object.ID, SHA256: hash,
					Markings: m, Producer: producer, Revoked: flags.Revoked,
					Published: func(id string) bool { return published[id] },
				}, route, now)
				res.TLP = res.Decision.TLP
				if !res.TLP.Known() {
					res.TLP = m.TLP
				}
				if res.Decision.Action != policy.Withhold {
					published[it.Object.ID] = true
				}
			}
		}
		sum.Objects++
		sum.Decisions[res.decisionName(false)]++
		for _, r := range res.reasons() {
			sum.Reasons[r]++
		}
		_ = out.result(res) // write errors surface at Flush
	}
	return sum
}

// textCheck prints a check for people.
type textCheck struct{ w *bufio.Writer }

func (t *textCheck) result(r *checkResult) error {
	version, level := r.Item.Version, "-"
	if version == "" {
		version = "-"
	}
	if r.TLP.Known() {
		level = r.TLP.String()
	}
	id := r.Item.ID
	if id == "" {
		id = fmt.Sprintf("objects[%d]", r.Item.Index)
	}
	line := fmt.Sprintf("%s %s  %-16s  %-18s", id, version, level, r.decisionName(false))
	switch {
	case r.Rejected != nil:
		line += "  " + r.Rejected.Error()
	case r.Decision.Action == policy.PublishRedacted:
		var removed []string
		for _, x := range r.Decision.Removed {
			removed = append(removed, fmt.Sprintf("%s (%s: %s)", x.Path, x.Reason, x.Detail))
		}
		line += "  removed " + strings.Join(removed, "; ")
	case r.Decision.Action == policy.Withhold:
		line += fmt.Sprintf("  %s: %s", r.Decision.Reason, r.Decision.Detail)
	}
	t.w.WriteString(strings.TrimRight(line, " "))
	return t.w.WriteByte('\n')
}

func (t *textCheck) summary(s *checkSummary) error {
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

type jsonRemoval struct {
	Path   string `json:"path"`
	Reason string `json:"reason"`
	Detail string `json:"detail"`
}

type jsonResult struct {
	Index    int           `json:"index"`
	ID       string        `json:"id"`
	Version  string        `json:"version,omitempty"`
	Decision string        `json:"decision"`
	Reason   string        `json:"reason,omitempty"`
	Detail   string        `json:"detail,omitempty"`
	TLP      string        `json:"tlp,omitempty"`
	Removed  []jsonRemoval `json:"removed,omitempty"`
	SHA256   string        `json:"sha256,omitempty"`
}

func (j *jsonCheck) result(r *checkResult) error {
	v := jsonResult{Index: r.Item.Index, ID: r.Item.ID, Version: r.Item.Version, Decision: r.decisionName(true)}
	if r.Rejected != nil {
		v.Detail = r.Rejected.Error()
	} else {
		v.Reason = strings.Join(r.reasons(), ",")
		v.Detail = r.Decision.Detail
		v.SHA256 = fmt.Sprintf("%x", r.Decision.OriginalSHA256)
		for _, x := range r.Decision.Removed {
			v.Removed = append(v.Removed, jsonRemoval{x.Path, string(x.Reason), x.Detail})
		}
	}
	if r.TLP.Known() {
		v.TLP = r.TLP.String()
	}
	return json.MarshalEncode(j.enc, v)
}

func (j *jsonCheck) summary(s *checkSummary) error {
	return json.MarshalEncode(j.enc, struct {
		Summary *checkSummary `json:"summary"`
	}{s})
}
