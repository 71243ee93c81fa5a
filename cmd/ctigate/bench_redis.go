package main

import (
	"bufio"
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// redisMemory measures Redis's memory growth and its own time (INFO
// commandstats) over a bench run and removes the run's keys at the end.
type redisMemory struct {
	c      *goredis.Client
	prefix string
	before int64
	stats  map[string]commandStat // commandstats at the start
	cpu    float64                // used_cpu_user + used_cpu_sys at the start, seconds
	// the same when the poll began (markPoll), -1 when not read
	cpuPoll float64
}

// commandStat is one command's line of INFO commandstats.
type commandStat struct {
	calls, usec int64
}

func startRedisMemory(ctx context.Context, url string) (*redisMemory, error) {
	opts, err := goredis.ParseURL(url)
	if err != nil {
		return nil, err
	}
	m := &redisMemory{c: goredis.NewClient(opts), cpuPoll: -1}
	var b [6]byte
	rand.Read(b[:])
	m.prefix = "ctigate-bench-" + hex.EncodeToString(b[:])
	if m.before, err = m.used(ctx); err != nil {
		m.c.Close()
		return nil, err
	}
	if m.stats, err = m.commandStats(ctx); err != nil {
		m.c.Close()
		return nil, err
	}
	if m.cpu, err = m.cpuTime(ctx); err != nil {
		m.c.Close()
		return nil, err
	}
	return m, nil
}

// cpuTime returns INFO cpu's used_cpu_user + used_cpu_sys: the Redis
// process's CPU time in seconds, which unlike commandstats' usec does not
// grow while Redis waits for a processor.
func (m *redisMemory) cpuTime(ctx context.Context) (float64, error) {
	info, err := m.c.Info(ctx, "cpu").Result()
	if err != nil {
		return 0, err
	}
	var sum float64
	found := 0
	sc := bufio.NewScanner(strings.NewReader(info))
	for sc.Scan() {
		k, v, _ := strings.Cut(strings.TrimSpace(sc.Text()), ":")
		if k != "used_cpu_user" && k != "used_cpu_sys" {
			continue
		}
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return 0, fmt.Errorf("INFO cpu %s: %w", k, err)
		}
		sum += f
		found++
	}
	if found != 2 {
		return 0, fmt.Errorf("no used_cpu_user and used_cpu_sys in INFO cpu")
	}
	return sum, nil
}

// commandStats returns INFO commandstats by command.
func (m *redisMemory) commandStats(ctx context.Context) (map[string]commandStat, error) {
	info, err := m.c.Info(ctx, "commandstats").Result()
	if err != nil {
		return nil, err
	}
	return parseCommandStats(info), nil
}

// parseCommandStats reads lines "cmdstat_NAME:calls=N,usec=N,…".
func parseCommandStats(info string) map[string]commandStat {
	out := make(map[string]commandStat)
	sc := bufio.NewScanner(strings.NewReader(info))
	for sc.Scan() {
		name, rest, ok := strings.Cut(strings.TrimSpace(sc.Text()), ":")
		name, ok2 := strings.CutPrefix(name, "cmdstat_")
		if !ok || !ok2 {
			continue
		}
		var st commandStat
		for _, f := range strings.Split(rest, ",") {
			k, v, _ := strings.Cut(f, "=")
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				continue
			}
			switch k {
			case "calls":
				st.calls = n
			case "usec":
				st.usec = n
			}
		}
		out[name] = st
	}
	return out
}

// used returns INFO memory's used_memory.
func (m *redisMemory) used(ctx context.Context) (int64, error) {
	return m.memoryField(ctx, "used_memory")
}

// memoryField returns the integer field name of INFO memory.
func (m *redisMemory) memoryField(ctx context.Context, name string) (int64, error) {
	info, err := m.c.Info(ctx, "memory").Result()
	if err != nil {
		return 0, err
	}
	sc := bufio.NewScanner(strings.NewReader(info))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), name+":"); ok {
			return strconv.ParseInt(v, 10, 64)
		}
	}
	return 0, fmt.Errorf("no %s in INFO memory", name)
}

// markPoll reads Redis's CPU time as the poll begins, to split the run's
// between ingest (push and publication) and poll.
func (m *redisMemory) markPoll(ctx context.Context) {
	if t, err := m.cpuTime(ctx); err == nil {
		m.cpuPoll = t
	}
}

// redisFigures are what a run cost Redis (report).
type redisFigures struct {
	used, keys int64        // used_memory growth, the run's keys
	usedErr    error        // used_memory unknown
	cpu        float64      // INFO cpu growth, s
	cpuPoll    float64      // of which before the poll, s; -1 unknown
	cpuErr     error        // INFO cpu unknown
	rows       []commandRow // INFO commandstats' growth, the commands that took most first
	commands   int64        // their total usec
	statsErr   error
}

// figures reads what the run cost Redis so far.
func (m *redisMemory) figures(ctx context.Context) redisFigures {
	var f redisFigures
	stats, err := m.commandStats(ctx) // before the SCAN below
	if f.statsErr = err; err == nil {
		f.rows, f.commands = m.commandDeltas(stats)
	}
	cpu, cpuErr := m.cpuTime(ctx)
	f.cpu, f.cpuErr, f.cpuPoll = cpu-m.cpu, cpuErr, -1
	if m.cpuPoll >= 0 {
		f.cpuPoll = m.cpuPoll - m.cpu
	}
	after, err := m.used(ctx)
	if f.usedErr = err; err != nil {
		return f
	}
	f.used = after - m.before
	iter := m.c.Scan(ctx, 0, m.prefix+":*", 1000).Iterator()
	for iter.Next(ctx) {
		f.keys++
	}
	return f
}

// commandRow is one command's growth in commandstats over the run.
type commandRow struct {
	name string
	commandStat
}

// commandDeltas returns the growth of commandstats from the start to
// after, the commands that took most first, and their total usec.
func (m *redisMemory) commandDeltas(after map[string]commandStat) ([]commandRow, int64) {
	var rows []commandRow
	var total int64
	for name, a := range after {
		b := m.stats[name]
		d := commandStat{calls: a.calls - b.calls, usec: a.usec - b.usec}
		if d.calls <= 0 || d.usec < 0 {
			continue
		}
		rows = append(rows, commandRow{name, d})
		total += d.usec
	}
	slices.SortFunc(rows, func(a, b commandRow) int { return cmp.Compare(b.usec, a.usec) })
	return rows, total
}

// perObject returns f per pushed object (and the poll's CPU per object
// read), by pairMetrics key; what is unknown is left out.
func (f *redisFigures) perObject(objects, read int) map[string]float64 {
	out := map[string]float64{}
	if objects <= 0 {
		return out
	}
	n := float64(objects)
	if f.usedErr == nil {
		out["redis_bytes"] = float64(f.used) / n
	}
	if f.cpuErr == nil {
		out["redis_cpu"] = 1e6 * f.cpu / n
		if f.cpuPoll >= 0 && read > 0 {
			// The split is when the gateway had settled after the push
			// (publication, search index and ledger caught up).
			out["redis_ingest"] = 1e6 * f.cpuPoll / n
			out["redis_poll"] = 1e6 * (f.cpu - f.cpuPoll) / float64(read)
		}
	}
	if f.statsErr == nil {
		out["redis_commands"] = float64(f.commands) / n
	}
	return out
}

// report prints f, the figures of a run that pushed objects and read
// read.
func (m *redisMemory) report(w io.Writer, f redisFigures, objects, read int) {
	per := f.perObject(objects, read)
	if f.usedErr != nil {
		fmt.Fprintf(w, "redis memory   unknown: %v\n", f.usedErr)
		return
	}
	fmt.Fprintf(w, "redis memory   used_memory %d -> %d bytes (+%.1f MiB, %d keys)", m.before, m.before+f.used, float64(f.used)/(1<<20), f.keys)
	if objects > 0 {
		fmt.Fprintf(w, ", %.0f bytes per pushed object (its bytes and, unless --routeless, the route's copy; index entries, version lists, statuses, custody ledger, search index, the poll's delivered entries)", per["redis_bytes"])
	}
	fmt.Fprintln(w)
	if f.cpuErr != nil {
		fmt.Fprintf(w, "redis cpu      unknown: %v\n", f.cpuErr)
	} else {
		fmt.Fprintf(w, "redis cpu      %.2f s (INFO cpu, user and system)", f.cpu)
		if v, ok := per["redis_cpu"]; ok {
			fmt.Fprintf(w, ", %.1f µs per pushed object", v)
			if ingest, ok := per["redis_ingest"]; ok {
				fmt.Fprintf(w, ": push and publication %.1f µs per pushed object, poll %.1f µs per object read", ingest, per["redis_poll"])
			}
		}
		fmt.Fprintln(w)
	}
	if f.statsErr != nil {
		fmt.Fprintf(w, "redis time     unknown: %v\n", f.statsErr)
		return
	}
	fmt.Fprintf(w, "redis time     %.3f s of commands", float64(f.commands)/1e6)
	if v, ok := per["redis_commands"]; ok {
		fmt.Fprintf(w, ", %.1f µs per pushed object", v)
	}
	for i, r := range f.rows {
		if i == 5 || f.commands == 0 {
			break
		}
		fmt.Fprintf(w, "; %s %.0f%% (%d calls)", strings.ToLower(r.name), 100*float64(r.usec)/float64(f.commands), r.calls)
	}
	fmt.Fprintln(w)
}

// close deletes the run's keys, telling notes (when not nil) when the
// wait for Redis to free them is long.
func (m *redisMemory) close(ctx context.Context, notes io.Writer) {
	defer m.c.Close()
	iter := m.c.Scan(ctx, 0, m.prefix+":*", 1000).Iterator()
	var batch []string
	for iter.Next(ctx) {
		batch = append(batch, iter.Val())
		if len(batch) == 500 {
			m.c.Unlink(ctx, batch...)
			batch = batch[:0]
		}
	}
	if len(batch) > 0 {
		m.c.Unlink(ctx, batch...)
	}
	// Redis frees unlinked values in a thread of its own, whose CPU and
	// memory the next run on this Redis would count as its own: wait
	// until it is done.
	start, told := time.Now(), false
	for deadline := start.Add(2 * time.Minute); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		n, err := m.memoryField(ctx, "lazyfree_pending_objects")
		if err != nil || n == 0 {
			if told {
				fmt.Fprintf(notes, "bench: Redis freed them in %.1f s\n", time.Since(start).Seconds())
			}
			return
		}
		if !told && notes != nil && time.Since(start) > 2*time.Second {
			fmt.Fprintf(notes, "bench: waiting (at most 2 minutes) for Redis to free the run's keys, %d values left, before the next run\n", n)
			told = true
		}
	}
	if notes != nil {
		fmt.Fprintln(notes, "bench: Redis has not freed the run's keys after 2 minutes; going on (the next run on it may count some of their memory and CPU)")
	}
}
