package main

import (
	"bytes"
	"context"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/ctigate/ctigate/store/redis/redistest"
)

func TestPairValues(t *testing.T) {
	for _, tc := range []struct {
		v    []float64
		want float64
	}{{nil, 0}, {[]float64{3}, 3}, {[]float64{5, 1, 3}, 3}, {[]float64{4, 1, 3, 2}, 2.5}} {
		if got := median(tc.v); got != tc.want {
			t.Errorf("median(%v) = %v, want %v", tc.v, got, tc.want)
		}
	}
	a := []map[string]float64{{"push": 10, "poll": 4}, {"push": 30}, {"push": 20, "poll": 6}}
	b := []map[string]float64{{"push": 5, "poll": 2}, {"push": 10, "poll": 3}, {"push": 40}}
	av, bv, ratios := pairValues(a, b, "push")
	if !slices.Equal(av, []float64{10, 30, 20}) || !slices.Equal(bv, []float64{5, 10, 40}) || !slices.Equal(ratios, []float64{2, 3, 0.5}) {
		t.Errorf("push: %v %v %v", av, bv, ratios)
	}
	// A round missing a figure on either side has no ratio.
	if _, _, ratios := pairValues(a, b, "poll"); !slices.Equal(ratios, []float64{2}) {
		t.Errorf("poll ratios %v, want [2]", ratios)
	}
}

// TestBenchAgainst: a paired bench runs each build once a round, the
// first of a round alternating, after a warm-up run, and reports every figure for both with
// the rounds' ratios; on Redis, Redis's figures too; with --phase push,
// the push's figures without the poll's.
func TestBenchAgainst(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs the gateway four times")
	}
	exe := filepath.Join(t.TempDir(), "ctigate")
	if out, err := exec.Command("go", "build", "-o", exe, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	t.Setenv("TMPDIR", t.TempDir())
	for _, tc := range []struct{ withRedis, pushOnly bool }{{false, false}, {true, false}, {false, true}} {
		withRedis := tc.withRedis
		args := []string{"--against", exe, "--ctigate", exe, "--rounds", "2", "-n", "400", "-b", "100", "-p", "2", "-c", "1"}
		if withRedis {
			args = append(args, "--redis", redistest.URL(t), "--rounds", "1")
		}
		if tc.pushOnly {
			args = append(args, "--phase", "push")
		}
		var stdout, stderr bytes.Buffer
		if err := runBench(context.Background(), args, func(string) string { return "" }, &stdout, &stderr); err != nil {
			t.Fatalf("%v: %v\n%s", args, err, stderr.String())
		}
		rounds := 2
		if withRedis {
			rounds = 1
		}
		var order []string
		for _, m := range regexp.MustCompile(`bench: round \d+ of \d+, ([AB]):`).FindAllStringSubmatch(stderr.String(), -1) {
			order = append(order, m[1])
		}
		if want := []string{"A", "B", "B", "A"}[:2*rounds]; !slices.Equal(order, want) {
			t.Fatalf("runs in the order %v, want %v\n%s", order, want, stderr.String())
		}
		if i := strings.Index(stderr.String(), "warm-up run"); i < 0 || i > strings.Index(stderr.String(), "round 1") {
			t.Fatalf("no warm-up run before the rounds:\n%s", stderr.String())
		}
		out := stdout.String()
		labels := []string{"push, objects/s", "push and publication, objects/s", "poll, objects/s", "gateway peak RSS, MiB",
			"gateway CPU, µs per pushed object", "  until it settled"}
		if tc.pushOnly {
			// Nothing is read: no poll rows, in the report or the rounds.
			labels = slices.DeleteFunc(labels, func(l string) bool { return l == "poll, objects/s" || l == "  until it settled" })
			if strings.Contains(out, "poll") || strings.Contains(stderr.String(), ", poll") {
				t.Errorf("poll figures in a push-only pair:\n%s\n%s", out, stderr.String())
			}
		}
		if withRedis {
			labels = append(labels, "Redis CPU, µs per pushed object", "Redis commands' time, µs per pushed object", "Redis memory, bytes per pushed object")
		} else if strings.Contains(out, "Redis") {
			t.Errorf("Redis rows without --redis:\n%s", out)
		}
		for _, label := range labels {
			i := strings.Index(out, label)
			if i < 0 {
				t.Fatalf("no row %q:\n%s", label, out)
			}
			// A median, B median, the ratio, its range: the ratio is
			// positive and within its range.
			f := strings.Fields(strings.SplitN(out[i+len(label):], "\n", 2)[0])
			if len(f) != 4 {
				t.Fatalf("row %q: %q", label, f)
			}
			ratio, err := strconv.ParseFloat(f[2], 64)
			lo, hi, ok := strings.Cut(f[3], "–")
			l, err1 := strconv.ParseFloat(lo, 64)
			h, err2 := strconv.ParseFloat(hi, 64)
			if err != nil || err1 != nil || err2 != nil || !ok || ratio <= 0 || ratio < l || ratio > h {
				t.Errorf("row %q: ratio %q, range %q", label, f[2], f[3])
			}
		}
	}
}
