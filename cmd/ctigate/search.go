package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/ctigate/ctigate/client"
)

const searchUsage = `Usage: ctigate search --server URL [flags] VALUE

Asks the gateway which objects mention VALUE, across every collection you
may read (GET /api/v1/search; needs the analyst role): an IPv4 or IPv6
address (also finds the CIDR networks holding it) or network, a domain, a
URL, an e-mail address, or an MD5, SHA-1, SHA-256 or SHA-512 hash.

Prints one line per hit (collection, TLP, type, id, producer, first and
last seen, what matched), or with --json the hits as JSON.

Credentials: --user with $CTIGATE_PASSWORD, or a netrc file entry
(machine HOST login U password P), or a bearer token in $CTIGATE_TOKEN.

Flags:
`

// listFlag is a repeatable string flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

// runSearch implements `ctigate search`.
func runSearch(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("search", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cf := clientFlags{noCollection: true}
	fs.StringVar(&cf.server, "server", "", "gateway URL, e.g. https://taxii.example:8443 (required)")
	fs.StringVar(&cf.user, "user", "", "user for HTTP Basic; password from $CTIGATE_PASSWORD or the netrc file")
	fs.StringVar(&cf.netrc, "netrc", "", "netrc-style file with 'machine HOST login U password P' (default ~/.netrc)")
	fs.IntVar(&cf.attempts, "attempts", 6, "attempts per request on 429, 5xx and network errors")
	var types, labels, tlps, producers listFlag
	fs.Var(&types, "type", "only objects of this STIX type (repeatable)")
	fs.Var(&labels, "label", "only objects with this label (repeatable)")
	fs.Var(&tlps, "tlp", "only versions at this TLP level, e.g. GREEN (repeatable)")
	fs.Var(&producers, "producer", "only versions submitted by this organisation (repeatable)")
	after := fs.String("added-after", "", "only versions added after this time (RFC 3339)")
	before := fs.String("added-before", "", "only versions added before this time (RFC 3339)")
	max := fs.Int("max", 1000, "stop after this many hits")
	asJSON := fs.Bool("json", false, "print the hits as a JSON array")
	fs.Usage = func() { fmt.Fprint(stderr, searchUsage); fs.PrintDefaults() }
	// Flags may follow VALUE.
	var value string
	rest := args
	for {
		if err := fs.Parse(rest); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil
			}
			return errUsage
		}
		if fs.NArg() == 0 {
			break
		}
		if value != "" {
			fs.Usage()
			return errUsage
		}
		value, rest = fs.Arg(0), fs.Args()[1:]
	}
	if value == "" || *max <= 0 {
		fs.Usage()
		return errUsage
	}
	c, err := cf.client(getenv)
	if err != nil {
		return fmt.Errorf("search: %w", err)
	}
	q := url.Values{"value": {value}}
	for name, vals := range map[string]listFlag{"type": types, "label": labels, "tlp": tlps, "producer": producers} {
		for _, v := range vals {
			q.Add(name, v)
		}
	}
	if *after != "" {
		q.Set("added_after", *after)
	}
	if *before != "" {
		q.Set("added_before", *before)
	}
	q.Set("limit", strconv.Itoa(min(*max, 1000)))
	var hits []client.SearchHit
	var kind, norm string
	for {
		r, err := c.Search(ctx, q)
		if err != nil {
			return fmt.Errorf("search: %w", err)
		}
		kind, norm = r.Query.Kind, r.Query.Normalised
		hits = append(hits, r.Hits...)
		if r.Next == "" || len(hits) >= *max {
			break
		}
		q.Set("next", r.Next)
	}
	more := len(hits) > *max
	hits = hits[:min(len(hits), *max)]
	if *asJSON {
		if hits == nil {
			hits = []client.SearchHit{}
		}
		b, err := json.Marshal(hits)
		if err != nil {
			return err
		}
		_ = (*jsontext.Value)(&b).Indent()
		_, err = fmt.Fprintf(stdout, "%s\n", b)
		return err
	}
	fmt.Fprintf(stderr, "%s %s: %d hit(s)", kind, norm, len(hits))
	if more {
		fmt.Fprintf(stderr, " (more: raise --max)")
	}
	fmt.Fprintln(stderr)
	if len(hits) == 0 {
		return nil
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "COLLECTION\tTLP\tID\tPRODUCER\tFIRST SEEN\tLAST SEEN\tMATCHED")
	for _, h := range hits {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", h.Collection.Title, h.TLP, h.ID, h.Producer, h.FirstSeen, h.LastSeen, strings.Join(h.Matched, " "))
	}
	return tw.Flush()
}
