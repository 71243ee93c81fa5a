package main

import (
	"context"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"text/tabwriter"

	"github.com/ctigate/ctigate/load"
)

// A paired bench (--against): the same workload, alternately on two
// ctigate binaries, round after round, after a run not counted, each run a
// fresh gateway (and, with --redis, a fresh key prefix), so that both
// builds see the same machine in the same sitting; the report gives each
// build's median and the median of the rounds' ratios, the way this
// shared machine's figures must be compared (one run of each says little:
// runs vary by 15–30%).

// pairMetrics are the figures a paired bench compares, in the order of
// its report (a run without a figure, such as Redis's without --redis,
// leaves its row out).
var pairMetrics = []struct{ key, label string }{
	{"push", "push, objects/s"},
	{"published", "push and publication, objects/s"},
	{"poll", "poll, objects/s"},
	{"rss", "gateway peak RSS, MiB"},
	{"cpu_push", "gateway CPU, µs per pushed object"},
	{"cpu_settled", "  until it settled"},
	{"cpu_poll", "gateway CPU, µs per object read"},
	{"redis_cpu", "Redis CPU, µs per pushed object"},
	{"redis_ingest", "  of which push and publication"},
	{"redis_poll", "Redis CPU of the poll, µs per object read"},
	{"redis_commands", "Redis commands' time, µs per pushed object"},
	{"redis_bytes", "Redis memory, bytes per pushed object"},
}

// pairFigures returns the figures of one run by pairMetrics key.
func pairFigures(res load.Result, f *redisFigures) map[string]float64 {
	out := map[string]float64{}
	if res.Push != nil {
		out["push"] = res.Push.ObjectsPerSec
	}
	if res.Propagation != nil {
		out["published"] = res.Propagation.ObjectsPerSec
	}
	if res.Poll != nil {
		out["poll"] = res.Poll.ObjectsPerSec
	}
	if res.RSS != nil {
		out["rss"] = float64(res.RSS.PeakBytes) / (1 << 20)
	}
	if st := res.Settle; st != nil && st.Settled && st.MicrosPerObject > 0 {
		out["cpu_settled"] = st.MicrosPerObject
	}
	if c := res.CPU; c != nil {
		if c.PushSeconds > 0 {
			out["cpu_push"] = c.PushMicrosPerObject
		}
		if c.PollSeconds > 0 {
			out["cpu_poll"] = c.PollMicrosPerObject
		}
	}
	if f != nil && res.Push != nil {
		read := 0
		if res.Poll != nil {
			read = int(res.Poll.Objects)
		}
		maps.Copy(out, f.perObject(res.Push.Objects, read))
	}
	return out
}

// runPaired runs cfg rounds times on each of cfg's binary (this one when
// unset) and against, in alternating order, and prints the comparison.
func runPaired(ctx context.Context, cfg load.Config, against string, rounds int, stdout, stderr io.Writer) error {
	self := cfg.Executable
	if self == "" {
		var err error
		if self, err = os.Executable(); err != nil {
			return fmt.Errorf("bench: %w", err)
		}
	}
	builds := [2]string{self, against}
	var runs [2][]map[string]float64
	cfg.NoCeiling, cfg.JSON, cfg.Progress = true, false, nil
	// A first run on a machine (and a Redis) that has just been quiet is
	// slower than the ones after it: one run, not counted, goes first.
	warm := cfg
	warm.Executable = builds[1]
	if _, _, err := benchRun(ctx, warm, io.Discard, stderr); err != nil {
		return fmt.Errorf("warm-up run, %s: %w", builds[1], err)
	}
	fmt.Fprintln(stderr, "bench: warm-up run of B done (not counted)")
	for r := range rounds {
		order := [2]int{0, 1}
		if r%2 == 1 { // the first of a round has the quieter machine, or the busier: alternate
			order = [2]int{1, 0}
		}
		for _, b := range order {
			c := cfg
			c.Executable = builds[b]
			res, rf, err := benchRun(ctx, c, io.Discard, stderr)
			if err != nil {
				return fmt.Errorf("round %d, %s: %w", r+1, builds[b], err)
			}
			f := pairFigures(res, rf)
			runs[b] = append(runs[b], f)
			fmt.Fprintf(stderr, "bench: round %d of %d, %s: push %.0f objects/s", r+1, rounds, "AB"[b:b+1], f["push"])
			if v, ok := f["poll"]; ok {
				fmt.Fprintf(stderr, ", poll %.0f objects/s", v)
			}
			if v, ok := f["redis_cpu"]; ok {
				fmt.Fprintf(stderr, ", Redis CPU %.1f µs per pushed object", v)
			}
			fmt.Fprintln(stderr)
		}
	}
	fmt.Fprintf(stdout, "ctigate bench, paired: %d rounds, each build once a round, in alternating order, after a warm-up run (no ceiling run)\n", rounds)
	fmt.Fprintf(stdout, "workload  phase=%s n=%d b=%d p=%d c=%d l=%d", cfg.Phase, cfg.Objects, cfg.Envelope, cfg.Producers, cfg.Consumers, cfg.PageSize)
	if cfg.Routeless {
		fmt.Fprint(stdout, " routeless")
	}
	if cfg.RedisURL != "" {
		fmt.Fprint(stdout, " redis")
	}
	fmt.Fprintf(stdout, "\nA         %s\nB         %s\n\n", builds[0], builds[1])
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "\tA median\tB median\tA/B, median of the rounds\trange\t")
	for _, m := range pairMetrics {
		a, b, ratios := pairValues(runs[0], runs[1], m.key)
		if len(ratios) == 0 {
			continue
		}
		lo, hi := slices.Min(ratios), slices.Max(ratios)
		fmt.Fprintf(tw, "%s\t%s\t%s\t%.3f\t%.3f–%.3f\t\n", m.label, pairFormat(median(a)), pairFormat(median(b)), median(ratios), lo, hi)
	}
	return tw.Flush()
}

// pairValues returns the values of key in the runs of A and of B, and the
// ratio A/B of each round that has both.
func pairValues(a, b []map[string]float64, key string) (av, bv, ratios []float64) {
	for i := range min(len(a), len(b)) {
		x, okA := a[i][key]
		y, okB := b[i][key]
		if okA {
			av = append(av, x)
		}
		if okB {
			bv = append(bv, y)
		}
		if okA && okB && y != 0 {
			ratios = append(ratios, x/y)
		}
	}
	return av, bv, ratios
}

// median returns the median of v (the mean of the middle two for an even
// count), 0 for none.
func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Sorted(slices.Values(v))
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

func pairFormat(v float64) string {
	if v >= 1000 {
		return load.Group(int64(v + 0.5))
	}
	return fmt.Sprintf("%.1f", v)
}
