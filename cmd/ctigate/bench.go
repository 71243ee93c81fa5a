package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/pprof"

	"github.com/ctigate/ctigate/load"
)

const benchUsage = `Usage: ctigate bench [flags]

Pushes n generated STIX indicators in envelopes of b objects from p
producers, then pages through the collection with c consumers, and prints
objects/s, request latency p50/p99/max and, when bench started the gateway
itself (no --server), the gateway's peak RSS and (on Linux) its CPU time
per pushed object (from the first POST until the route published the
push) and per object read: on a shared machine CPU time per object varies
less than throughput.

Without --server, bench runs "ctigate serve" on a loopback port with a
configuration of its own, as the demo topology is made (an inbound
collection producers post to, a route into a published collection that
consumers read once fan-out has caught up, a bench user with a random
password) and stops it at the end; --routeless leaves the route out
(consumers read the inbound collection). Before the poll it waits until
that gateway's background work (search index, ledger checkpoints) has
ended: its CPU use under 5% of a processor for a second, two minutes at
most; it reports how long that took ("settled") and the CPU per pushed
object until then. Only loopback servers are loaded.

A push-and-poll run first measures the same workload on the ceiling: an
in-process server that only splits envelopes, hashes each object's
canonical form and appends it in memory, and serves pages of the stored
bytes (no authentication, validation, policy, store or ledger). The
gateway's figures are then also given as a share of the ceiling's, on
this machine, in this sitting (--no-ceiling skips it).

The password for --server comes from --password, else the environment
variable CTIGATE_BENCH_PASSWORD, else the demo password of cert-a. It is
never printed.

With --redis URL, the started gateway keeps its data in Redis at URL
(store: redis) under a fresh key prefix, and bench reports, per pushed
object, Redis's used_memory growth, its CPU time (INFO cpu) and its
commands' time (INFO commandstats, with the commands that took most);
the keys are deleted at the end. Use a Redis of its own: its growth and
time are attributed to the objects.

With --against OTHER, bench is paired: it runs the workload (--phase
both, or push) alternately on this binary (or --ctigate) and on OTHER, another ctigate binary,
--rounds times each (the first of a round alternating between them),
after one run of OTHER that is not counted (a first run on a machine that
was quiet is slower), each run on a gateway of its own and fresh data,
without the ceiling, and prints each figure's median for both and the
median of the rounds' ratios with their range. Runs on a shared machine
vary by 15–30%: compare builds this way, not by single runs.

Examples:
  ctigate bench -n 1000000
  ctigate bench -n 200000 --redis redis://127.0.0.1:6390/0
  ctigate bench -n 200000 --redis redis://127.0.0.1:6390/0 --against /tmp/ctigate-before
  ctigate bench --phase push -n 60000 -b 10 -p 16 --against /tmp/ctigate-before
  ctigate bench --phase push -n 1000000 --data /var/tmp/bench1m
  ctigate bench --phase poll --data /var/tmp/bench1m -c 8
  CTIGATE_BENCH_PASSWORD=… ctigate bench --server http://127.0.0.1:8080 --user cert-a

Flags:
`

// runBench is the load tool; see package load.
func runBench(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, cpuProfile, err := benchConfig(args, getenv, stderr)
	if err != nil {
		return err
	}
	if cfg.against != "" {
		return runPaired(ctx, cfg.Config, cfg.against, cfg.rounds, stdout, stderr)
	}
	cfg.Progress = stderr
	if cpuProfile != "" {
		f, err := os.Create(cpuProfile)
		if err != nil {
			return fmt.Errorf("bench: --cpuprofile: %w", err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return fmt.Errorf("bench: --cpuprofile: %w", err)
		}
		defer pprof.StopCPUProfile()
	}
	_, _, err = benchRun(ctx, cfg.Config, stdout, stderr)
	return err
}

// benchRun runs cfg once, printing its report to out (and notes of a
// long wait to notes, when not nil), and returns its result and, with
// --redis, what it cost Redis (read before the run's keys are removed).
func benchRun(ctx context.Context, cfg load.Config, out, notes io.Writer) (load.Result, *redisFigures, error) {
	var mem *redisMemory
	if cfg.RedisURL != "" {
		var err error
		if mem, err = startRedisMemory(ctx, cfg.RedisURL); err != nil {
			return load.Result{}, nil, fmt.Errorf("bench: --redis: %w", err)
		}
		cfg.RedisPrefix = mem.prefix
		cfg.BeforePoll = func() { mem.markPoll(ctx) }
		defer mem.close(ctx, notes)
	}
	res, err := load.Run(ctx, cfg, out)
	if err != nil {
		return res, nil, fmt.Errorf("bench: %w", err)
	}
	if mem == nil || res.Push == nil { // --redis is refused with --phase poll
		return res, nil, nil
	}
	read := 0
	if res.Poll != nil {
		read = int(res.Poll.Objects)
	}
	f := mem.figures(ctx)
	mem.report(out, f, res.Push.Objects, read)
	return res, &f, nil
}

// benchFlags are bench's flags: a load.Config, and the paired bench's.
type benchFlags struct {
	load.Config
	against string // --against: the other binary of a paired bench
	rounds  int
}

// benchConfig parses the flags of bench over load.DefaultConfig.
func benchConfig(args []string, getenv func(string) string, stderr io.Writer) (cfg benchFlags, cpuProfile string, err error) {
	cfg = benchFlags{Config: load.DefaultConfig(), rounds: 5}
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, benchUsage)
		fs.PrintDefaults()
	}
	var phase, password string
	fs.StringVar(&cfg.Server, "server", "", "base URL of a running gateway on this machine, e.g. http://127.0.0.1:8080 (default: start one)")
	fs.StringVar(&cfg.APIRoot, "api-root", cfg.APIRoot, "API root name")
	fs.StringVar(&cfg.Collection, "collection", cfg.Collection, "collection id or alias (default: csirt-inbound of the demo configuration)")
	fs.StringVar(&cfg.User, "user", cfg.User, "user for producers and consumers, with --server")
	fs.StringVar(&password, "password", "", "password of --user, with --server (default: $CTIGATE_BENCH_PASSWORD, else the demo password)")
	fs.IntVar(&cfg.Objects, "n", cfg.Objects, "objects to push")
	fs.IntVar(&cfg.Envelope, "b", cfg.Envelope, "objects per envelope")
	fs.IntVar(&cfg.Producers, "p", cfg.Producers, "producers (concurrent POSTs)")
	fs.IntVar(&cfg.Consumers, "c", cfg.Consumers, "consumers, each paging through the whole collection")
	fs.IntVar(&cfg.PageSize, "l", cfg.PageSize, "page size (limit) of consumers")
	fs.StringVar(&phase, "phase", string(cfg.Phase), "push, poll or both")
	fs.StringVar(&cfg.DataDir, "data", "", "keep the started gateway's data in this directory, to poll it again later (default: temporary)")
	fs.StringVar(&cfg.Executable, "ctigate", "", "ctigate binary to start (default: this one)")
	fs.StringVar(&cfg.RedisURL, "redis", "", "keep the started gateway's data in Redis at this URL (redis://host:port/db) instead of bbolt")
	fs.DurationVar(&cfg.Timeout, "timeout", cfg.Timeout, "timeout of each request")
	fs.BoolVar(&cfg.JSON, "json", false, "print one JSON object instead of a table")
	fs.BoolVar(&cfg.Routeless, "routeless", false, "start the gateway with one collection and no route (no fan-out)")
	fs.BoolVar(&cfg.NoCeiling, "no-ceiling", false, "skip the ceiling run")
	fs.StringVar(&cpuProfile, "cpuprofile", "", "write a CPU profile of bench itself (the client side) to this file")
	fs.StringVar(&cfg.against, "against", "", "another ctigate binary: run the workload alternately on it and on this one (or --ctigate), --rounds times each, and compare")
	fs.IntVar(&cfg.rounds, "rounds", cfg.rounds, "rounds of a paired bench (--against)")
	if err := fs.Parse(args); err != nil {
		return cfg, "", errUsage
	}
	if fs.NArg() > 0 {
		return cfg, "", fmt.Errorf("bench: unexpected argument %q", fs.Arg(0))
	}
	cfg.Phase = load.Phase(phase)
	switch {
	case password != "":
		cfg.Password = password
	case getenv("CTIGATE_BENCH_PASSWORD") != "":
		cfg.Password = getenv("CTIGATE_BENCH_PASSWORD")
	}
	if cfg.Server != "" && (cfg.DataDir != "" || cfg.Executable != "" || cfg.RedisURL != "") {
		return cfg, "", errors.New("bench: --data, --ctigate and --redis are for a gateway bench starts, not with --server")
	}
	if cfg.RedisURL != "" && cfg.Phase == load.PhasePoll {
		return cfg, "", errors.New("bench: --redis keys are removed after each run: use --phase both")
	}
	if cfg.Server == "" && cfg.DataDir == "" && cfg.Phase == load.PhasePoll {
		return cfg, "", errors.New("bench: --phase poll needs --server, or --data with a store built by --phase push")
	}
	if cfg.against != "" {
		switch {
		case cfg.Server != "" || cfg.DataDir != "":
			return cfg, "", errors.New("bench: --against starts each gateway itself, on fresh data: not with --server or --data")
		case cfg.JSON || cpuProfile != "":
			return cfg, "", errors.New("bench: --json and --cpuprofile are for single runs, not --against")
		case cfg.rounds < 1 || cfg.rounds > 100:
			return cfg, "", errors.New("bench: --rounds must be 1 to 100")
		}
	}
	if err := cfg.Validate(); err != nil {
		return cfg, "", fmt.Errorf("bench: %w", err)
	}
	return cfg, cpuProfile, nil
}
