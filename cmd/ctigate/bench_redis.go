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
	info, err := m.c.Info(ctx, "memory").Result()
	if err != nil {
		return 0, err
	}
	sc := bufio.NewScanner(strings.NewReader(info))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "used_memory:"); ok {
			return strconv.ParseInt(v, 10, 64)
		}
	}
	return 0, fmt.Errorf("no used_memory in INFO memory")
}

// markPoll reads Redis's CPU time as the poll begins, to split the run's
// between ingest (push and publication) and poll.
func (m *redisMemory) markPoll(ctx context.Context) {
	if t, err := m.cpuTime(ctx); err == nil {
		m.cpuPoll = t
	}
}

func (m *redisMemory) report(ctx context.Context, w io.Writer, objects, read int) {
	stats, statsErr := m.commandStats(ctx) // before the SCAN below
	cpu, cpuErr := m.cpuTime(ctx)
	after, err := m.used(ctx)
	if err != nil {
		fmt.Fprintf(w, "redis memory   unknown: %v\n", err)
		return
	}
	keys := int64(0)
	iter := m.c.Scan(ctx, 0, m.prefix+":*", 1000).Iterator()
	for iter.Next(ctx) {
		keys++
	}
	fmt.Fprintf(w, "redis memory   used_memory %d -> %d bytes (+%.1f MiB, %d keys)", m.before, after, float64(after-m.before)/(1<<20), keys)
	if objects > 0 {
		fmt.Fprintf(w, ", %.0f bytes per pushed object (its bytes and, unless --routeless, the route's copy; index entries, version lists, statuses, custody ledger, search index, the poll's delivered entries)", float64(after-m.before)/float64(objects))
	}
	fmt.Fprintln(w)
	if cpuErr != nil {
		fmt.Fprintf(w, "redis cpu      unknown: %v\n", cpuErr)
	} else {
		fmt.Fprintf(w, "redis cpu      %.2f s (INFO cpu, user and system)", cpu-m.cpu)
		if objects > 0 {
			fmt.Fprintf(w, ", %.1f µs per pushed object", 1e6*(cpu-m.cpu)/float64(objects))
			if m.cpuPoll >= 0 && read > 0 {
				// The split is when publication had caught up; the
				// search indexer and the ledger's index may still be
				// behind, and count as the poll's.
				fmt.Fprintf(w, ": push and publication %.1f µs per pushed object, poll %.1f µs per object read", 1e6*(m.cpuPoll-m.cpu)/float64(objects), 1e6*(cpu-m.cpuPoll)/float64(read))
			}
		}
		fmt.Fprintln(w)
	}
	if statsErr != nil {
		fmt.Fprintf(w, "redis time     unknown: %v\n", statsErr)
		return
	}
	m.reportTime(w, stats, objects)
}

// reportTime prints Redis's own time over the run (the growth of INFO
// commandstats' usec from the start to after, every client's commands
// included), per pushed object, and the commands that took most of it.
func (m *redisMemory) reportTime(w io.Writer, after map[string]commandStat, objects int) {
	type row struct {
		name string
		commandStat
	}
	var rows []row
	var total int64
	for name, a := range after {
		b := m.stats[name]
		d := commandStat{calls: a.calls - b.calls, usec: a.usec - b.usec}
		if d.calls <= 0 || d.usec < 0 {
			continue
		}
		rows = append(rows, row{name, d})
		total += d.usec
	}
	slices.SortFunc(rows, func(a, b row) int { return cmp.Compare(b.usec, a.usec) })
	fmt.Fprintf(w, "redis time     %.3f s of commands", float64(total)/1e6)
	if objects > 0 {
		fmt.Fprintf(w, ", %.1f µs per pushed object", float64(total)/float64(objects))
	}
	for i, r := range rows {
		if i == 5 || total == 0 {
			break
		}
		fmt.Fprintf(w, "; %s %.0f%% (%d calls)", strings.ToLower(r.name), 100*float64(r.usec)/float64(total), r.calls)
	}
	fmt.Fprintln(w)
}

// close deletes the run's keys.
func (m *redisMemory) close(ctx context.Context) {
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
}
