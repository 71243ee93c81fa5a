package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"strconv"
	"strings"

	goredis "github.com/redis/go-redis/v9"
)

// redisMemory measures Redis's memory growth over a bench run and removes
// the run's keys at the end.
type redisMemory struct {
	c      *goredis.Client
	prefix string
	before int64
}

func startRedisMemory(ctx context.Context, url string) (*redisMemory, error) {
	opts, err := goredis.ParseURL(url)
	if err != nil {
		return nil, err
	}
	m := &redisMemory{c: goredis.NewClient(opts)}
	var b [6]byte
	rand.Read(b[:])
	m.prefix = "ctigate-bench-" + hex.EncodeToString(b[:])
	if m.before, err = m.used(ctx); err != nil {
		m.c.Close()
		return nil, err
	}
	return m, nil
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

func (m *redisMemory) report(ctx context.Context, w io.Writer, objects int) {
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
