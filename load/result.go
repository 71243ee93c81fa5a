package load

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/go-json-experiment/json"
)

// Result holds the figures of one run. Durations are in milliseconds or
// seconds as the field names say; sizes in bytes.
type Result struct {
	GoVersion  string `json:"go_version"`
	OS         string `json:"os"`
	Arch       string `json:"arch"`
	GOMAXPROCS int    `json:"gomaxprocs"`
	NumCPU     int    `json:"num_cpu"`
	// CPUModel is the processor's model name (Linux only). Shares of the
	// ceiling depend on it: the ceiling is mostly the canonical hash,
	// whose speed relative to the gateway's other work differs between
	// processors.
	CPUModel string `json:"cpu_model,omitempty"`
	// LoadStart and LoadEnd are the machine's 1-minute load average when
	// the run began and ended (Linux only): a busy machine slows the
	// gateway and bench alike.
	LoadStart float64 `json:"load_avg_start,omitempty"`
	LoadEnd   float64 `json:"load_avg_end,omitempty"`

	Server     ServerInfo `json:"server"`
	Phase      string     `json:"phase"`
	APIRoot    string     `json:"api_root"`
	Collection string     `json:"collection"` // the collection's id
	Objects    int        `json:"n"`          // 0 without a push phase
	Envelope   int        `json:"b"`
	Producers  int        `json:"p"`
	Consumers  int        `json:"c"`
	PageSize   int        `json:"l"`

	Generate *GenerateResult `json:"generate,omitempty"`
	Push     *PushResult     `json:"push,omitempty"`
	Poll     *PollResult     `json:"poll,omitempty"`
	RSS      *RSSResult      `json:"server_rss,omitempty"` // only for a gateway bench started
	// CPU is the CPU time the gateway used (a gateway bench started, on
	// Linux): on a shared machine it varies less than throughput.
	CPU *CPUResult `json:"server_cpu,omitempty"`
	// Propagation is how long the route took to publish the push (a
	// gateway bench started, with its route).
	Propagation *PropagationResult `json:"propagation,omitempty"`
	// Settle is how long a gateway bench started went on with background
	// work before the poll (see SettleResult).
	Settle *SettleResult `json:"settle,omitempty"`
	// Ceiling is the same workload on the ceiling server, in the same
	// sitting, and the gateway's figures as a share of it.
	Ceiling *CeilingResult `json:"ceiling,omitempty"`

	Notes []string `json:"notes,omitempty"`
}

// ServerInfo says which gateway was measured.
type ServerInfo struct {
	URL     string `json:"url"`
	Started bool   `json:"started"`            // bench started it
	DataDir string `json:"data_dir,omitempty"` // of a started gateway, when --data kept it
	Kept    bool   `json:"data_kept,omitempty"`
}

// GenerateResult describes the generated indicators (not timed as load).
type GenerateResult struct {
	Objects        int     `json:"objects"`
	Envelopes      int     `json:"envelopes"`
	Bytes          int64   `json:"bytes"`
	AvgObjectBytes float64 `json:"avg_object_bytes"`
	Seconds        float64 `json:"seconds"`
}

// PushResult holds the figures of the push phase.
type PushResult struct {
	Objects       int     `json:"objects"`
	Envelopes     int     `json:"envelopes"`
	Bytes         int64   `json:"bytes"`
	Seconds       float64 `json:"seconds"` // wall clock, first request to last response
	ObjectsPerSec float64 `json:"objects_per_sec"`
	MiBPerSec     float64 `json:"mib_per_sec"`
	Latency       Latency `json:"post_latency"`
}

// PollResult holds the figures of the poll phase.
type PollResult struct {
	Objects            int64   `json:"objects"`              // across consumers
	PerConsumer        int     `json:"objects_per_consumer"` // each consumer saw this many
	PerConsumerObjects []int   `json:"-"`
	Expected           int     `json:"expected"` // -1: not known, consumers checked against each other
	Pages              int     `json:"pages"`
	Bytes              int64   `json:"bytes"`
	Seconds            float64 `json:"seconds"`
	ObjectsPerSec      float64 `json:"objects_per_sec"` // across consumers
	MiBPerSec          float64 `json:"mib_per_sec"`
	Latency            Latency `json:"page_latency"`
}

// Latency summarises request latencies, in milliseconds.
type Latency struct {
	Count  int     `json:"count"`
	P50ms  float64 `json:"p50_ms"`
	P99ms  float64 `json:"p99_ms"`
	Maxms  float64 `json:"max_ms"`
	Meanms float64 `json:"mean_ms"`
}

// RSSResult is the resident memory of a gateway bench started, sampled
// from /proc/<pid>/status every 100 ms.
type RSSResult struct {
	Samples   int   `json:"samples"`
	PeakBytes int64 `json:"peak_bytes"` // highest VmRSS sampled
	HWMBytes  int64 `json:"hwm_bytes"`  // VmHWM read before stopping it: the kernel's own peak
	PeakAnon  int64 `json:"peak_anon_bytes"`
	PeakFile  int64 `json:"peak_file_bytes"` // mapped file pages (the bbolt file)
	PushPeak  int64 `json:"push_peak_bytes,omitempty"`
	PollPeak  int64 `json:"poll_peak_bytes,omitempty"`
	IdlePeak  int64 `json:"start_bytes,omitempty"` // after start-up, before load
}

// CPUResult is the gateway's CPU time (user and system, all threads, from
// /proc/<pid>/stat in steps of 10 ms) over the push and over the poll.
type CPUResult struct {
	// PushSeconds runs from the first POST until the route published the
	// push (until the last POST answered, route-less): the gateway's work
	// in the background meanwhile (search index, ledger, fan-out) counts.
	PushSeconds         float64 `json:"push_seconds,omitempty"`
	PushMicrosPerObject float64 `json:"push_us_per_object,omitempty"`
	PollSeconds         float64 `json:"poll_seconds,omitempty"`
	PollMicrosPerObject float64 `json:"poll_us_per_object_read,omitempty"`
}

// latencyOf summarises the durations in all of sets (nearest-rank
// percentiles).
func latencyOf(sets ...[]time.Duration) Latency {
	var all []time.Duration
	for _, s := range sets {
		all = append(all, s...)
	}
	if len(all) == 0 {
		return Latency{}
	}
	slices.Sort(all)
	var sum time.Duration
	for _, d := range all {
		sum += d
	}
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	return Latency{
		Count:  len(all),
		P50ms:  ms(percentile(all, 50)),
		P99ms:  ms(percentile(all, 99)),
		Maxms:  ms(all[len(all)-1]),
		Meanms: ms(sum / time.Duration(len(all))),
	}
}

// percentile returns the nearest-rank p-th percentile of sorted.
func percentile(sorted []time.Duration, p float64) time.Duration {
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	return sorted[min(max(rank, 1), len(sorted))-1]
}

func (r *Result) write(w io.Writer, asJSON bool) error {
	if asJSON {
		b, err := json.Marshal(r, json.Deterministic(true))
		if err != nil {
			return err
		}
		_, err = w.Write(append(b, '\n'))
		return err
	}
	return r.writeTable(w)
}

func (r *Result) writeTable(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "ctigate bench  %s %s/%s  GOMAXPROCS=%d  CPUs=%d", r.GoVersion, r.OS, r.Arch, r.GOMAXPROCS, r.NumCPU)
	if r.CPUModel != "" {
		fmt.Fprintf(&b, " (%s)", r.CPUModel)
	}
	if r.LoadStart > 0 || r.LoadEnd > 0 {
		fmt.Fprintf(&b, "  load average %.2f at start, %.2f at end", r.LoadStart, r.LoadEnd)
	}
	b.WriteByte('\n')
	srv := r.Server.URL
	if r.Server.Started {
		srv += "  (started by bench"
		if r.Server.Kept {
			srv += ", data kept in " + r.Server.DataDir
		}
		srv += ")"
	}
	fmt.Fprintf(&b, "server         %s\n", srv)
	fmt.Fprintf(&b, "collection     %s/%s\n", r.APIRoot, r.Collection)
	fmt.Fprintf(&b, "workload       phase=%s", r.Phase)
	if r.Push != nil || r.Generate != nil {
		fmt.Fprintf(&b, "  n=%d b=%d p=%d", r.Objects, r.Envelope, r.Producers)
	}
	if r.Poll != nil {
		fmt.Fprintf(&b, "  c=%d l=%d", r.Consumers, r.PageSize)
	}
	b.WriteByte('\n')
	if g := r.Generate; g != nil {
		fmt.Fprintf(&b, "generated      %s indicators, %.0f B each on average, %s in %d envelopes, in %.1f s (not timed)\n",
			Group(int64(g.Objects)), g.AvgObjectBytes, mib(g.Bytes), g.Envelopes, g.Seconds)
	}
	b.WriteByte('\n')

	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "phase\tobjects\tseconds\tobjects/s\tMiB/s\trequests\tp50 ms\tp99 ms\tmax ms\t")
	if p := r.Push; p != nil {
		fmt.Fprintf(tw, "push\t%s\t%.2f\t%s\t%.1f\t%d\t%.1f\t%.1f\t%.1f\t\n",
			Group(int64(p.Objects)), p.Seconds, Group(int64(math.Round(p.ObjectsPerSec))), p.MiBPerSec,
			p.Latency.Count, p.Latency.P50ms, p.Latency.P99ms, p.Latency.Maxms)
	}
	if p := r.Poll; p != nil {
		fmt.Fprintf(tw, "poll\t%s\t%.2f\t%s\t%.1f\t%d\t%.1f\t%.1f\t%.1f\t\n",
			Group(p.Objects), p.Seconds, Group(int64(math.Round(p.ObjectsPerSec))), p.MiBPerSec,
			p.Latency.Count, p.Latency.P50ms, p.Latency.P99ms, p.Latency.Maxms)
	}
	if c := r.Ceiling; c != nil {
		for _, row := range []struct {
			name string
			p    *PushResult
			q    *PollResult
		}{{"ceiling push", c.Push, nil}, {"ceiling poll", nil, c.Poll}} {
			switch {
			case row.p != nil:
				fmt.Fprintf(tw, "%s\t%s\t%.2f\t%s\t%.1f\t%d\t%.1f\t%.1f\t%.1f\t\n", row.name,
					Group(int64(row.p.Objects)), row.p.Seconds, Group(int64(math.Round(row.p.ObjectsPerSec))), row.p.MiBPerSec,
					row.p.Latency.Count, row.p.Latency.P50ms, row.p.Latency.P99ms, row.p.Latency.Maxms)
			case row.q != nil:
				fmt.Fprintf(tw, "%s\t%s\t%.2f\t%s\t%.1f\t%d\t%.1f\t%.1f\t%.1f\t\n", row.name,
					Group(row.q.Objects), row.q.Seconds, Group(int64(math.Round(row.q.ObjectsPerSec))), row.q.MiBPerSec,
					row.q.Latency.Count, row.q.Latency.P50ms, row.q.Latency.P99ms, row.q.Latency.Maxms)
			}
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	b.WriteByte('\n')

	if c := r.Ceiling; c != nil && (c.PushRatio > 0 || c.PollRatio > 0) {
		fmt.Fprintf(&b, "vs ceiling     push %.0f%% of the ceiling, poll %.0f%% (the ceiling: the same workload on an in-process server that only splits, hashes and appends, in this sitting)\n",
			100*c.PushRatio, 100*c.PollRatio)
	}
	if p := r.Propagation; p != nil {
		fmt.Fprintf(&b, "propagation    the route published %s versions %.2f s after the last POST; push and publication together %s objects/s\n",
			Group(int64(p.Published)), p.Seconds, Group(int64(math.Round(p.ObjectsPerSec))))
	}
	if st := r.Settle; st != nil {
		after := "after the route published"
		if r.Propagation == nil {
			after = "after the push"
		}
		if r.Push == nil {
			after = "after it opened the store"
		}
		if st.Settled {
			fmt.Fprintf(&b, "settled        the gateway went idle (under %d%% of a processor for %v) %.2f s %s: the poll began then",
				settleIdlePercent, settleWindow, st.Seconds, after)
		} else {
			fmt.Fprintf(&b, "settled        no: the gateway was still busy %.0f s %s, and the poll ran beside its background work", st.Seconds, after)
		}
		if st.MicrosPerObject > 0 {
			fmt.Fprintf(&b, "; gateway CPU until then %.1f µs per pushed object", st.MicrosPerObject)
		}
		b.WriteByte('\n')
	}
	if p := r.Poll; p != nil {
		want := "consistent across consumers"
		if p.Expected >= 0 {
			want = "as expected"
		}
		fmt.Fprintf(&b, "check          each of %d consumers saw %s objects (%s)\n", r.Consumers, Group(int64(p.PerConsumer)), want)
	}
	if m := r.RSS; m != nil {
		fmt.Fprintf(&b, "server RSS     peak %s (anon %s, file %s), VmHWM %s, %d samples",
			mib(m.PeakBytes), mib(m.PeakAnon), mib(m.PeakFile), mib(m.HWMBytes), m.Samples)
		var phases []string
		if m.IdlePeak > 0 {
			phases = append(phases, "start "+mib(m.IdlePeak))
		}
		if m.PushPeak > 0 {
			phases = append(phases, "push "+mib(m.PushPeak))
		}
		if m.PollPeak > 0 {
			phases = append(phases, "poll "+mib(m.PollPeak))
		}
		if len(phases) > 0 {
			fmt.Fprintf(&b, "; peaks: %s", strings.Join(phases, ", "))
		}
		b.WriteByte('\n')
	} else if !r.Server.Started {
		b.WriteString("server RSS     n/a (bench did not start the gateway)\n")
	}
	if c := r.CPU; c != nil {
		var parts []string
		if c.PushSeconds > 0 {
			parts = append(parts, fmt.Sprintf("%.1f µs per pushed object (%.1f s from the first POST until published)", c.PushMicrosPerObject, c.PushSeconds))
		}
		if c.PollSeconds > 0 {
			parts = append(parts, fmt.Sprintf("%.2f µs per object read (%.1f s over the poll)", c.PollMicrosPerObject, c.PollSeconds))
		}
		if len(parts) > 0 {
			fmt.Fprintf(&b, "server CPU     %s\n", strings.Join(parts, "; "))
		}
	}
	for _, n := range r.Notes {
		fmt.Fprintf(&b, "note           %s\n", n)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

// Group writes n with thousands separators.
func Group(n int64) string {
	s := fmt.Sprint(n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// parseCPUModel returns the value of the first "model name" line of a
// /proc/cpuinfo text, "" when it has none.
func parseCPUModel(cpuinfo []byte) string {
	for line := range strings.Lines(string(cpuinfo)) {
		name, value, ok := strings.Cut(line, ":")
		if ok && strings.TrimSpace(name) == "model name" {
			return strings.Join(strings.Fields(value), " ")
		}
	}
	return ""
}
