// Command ctigate is the threat-information sharing gateway: a TAXII 2.1
// server between CSIRTs and criminal-justice authorities, and its tools.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdin, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		if !errors.Is(err, errUsage) {
			fmt.Fprintln(os.Stderr, "ctigate:", err)
		}
		var coded interface{ ExitCode() int }
		if errors.As(err, &coded) {
			os.Exit(coded.ExitCode())
		}
		os.Exit(1)
	}
}

var errUsage = errors.New("usage")

const usage = `ctigate — TAXII 2.1 gateway between CSIRTs and criminal-justice authorities

Usage:
  ctigate serve  [--config FILE] [--data DIR] [--listen ADDR]   run the gateway
  ctigate passwd [--token]                                      hash a password (read from stdin) or make a bearer token
  ctigate health [--url URL] [--insecure] [--wait D]            check a gateway's /healthz (container health checks)
  ctigate bench  [flags]                                        load-test a gateway (see ctigate bench -h)
  ctigate push --server URL --collection ID|ALIAS FILE|DIR|-    add STIX bundles, envelopes or JSON Lines (see ctigate push -h)
  ctigate poll --server URL --collection ID|ALIAS [--state FILE] [--follow]
                                                                pull new objects incrementally (see ctigate poll -h)
  ctigate search --server URL VALUE                             which objects you may read mention an IP, network, domain, URL,
                                                                e-mail address or hash (see ctigate search -h)
  ctigate index rebuild [--config FILE] [--data DIR]            rebuild the search index (gateway stopped)
  ctigate policy check --route R [--config FILE] [--producer ORG] [--json] FILE|-
                                                                dry-run a bundle against a sharing route
  ctigate audit keygen|verify|export|evidence ...               custody ledger tools (see ctigate audit help)

Environment overrides for serve: see docs/configuration.md.
`

// run is the whole program; main only wires the process to it.
func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errUsage
	}
	switch args[0] {
	case "serve":
		return runServe(ctx, args[1:], getenv, stdout, stderr)
	case "passwd":
		return runPasswd(args[1:], stdin, stdout, stderr)
	case "health":
		return runHealth(ctx, args[1:], stdout, stderr)
	case "bench":
		return runBench(ctx, args[1:], getenv, stdout, stderr)
	case "push":
		return runPush(ctx, args[1:], getenv, stdin, stdout, stderr)
	case "poll":
		return runPoll(ctx, args[1:], getenv, stdout, stderr)
	case "search":
		return runSearch(ctx, args[1:], getenv, stdout, stderr)
	case "index":
		return runIndex(ctx, args[1:], getenv, stdout, stderr)
	case "policy":
		return runPolicy(args[1:], getenv, stdin, stdout, stderr)
	case "audit":
		return runAudit(ctx, args[1:], getenv, stdin, stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		fmt.Fprintf(stderr, "ctigate: unknown command %q\n\n%s", args[0], usage)
		return errUsage
	}
}
