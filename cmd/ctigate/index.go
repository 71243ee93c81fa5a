package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"time"

	"github.com/ctigate/ctigate/config"
	"github.com/ctigate/ctigate/gateway"
	"github.com/ctigate/ctigate/search"
	"github.com/ctigate/ctigate/store/bolt"
)

const indexUsage = `Usage: ctigate index rebuild [--config FILE] [--data DIR]

Drops the observable search index and its checkpoints and indexes every
configured collection again, then reports the build rate. The gateway
keeps the index up to date by itself; rebuild after changing how
observables are extracted, or if the index is suspected damaged. Run it
while the gateway is stopped (the store file is locked while it runs).

Flags:
`

// runIndex implements `ctigate index rebuild`.
func runIndex(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("index rebuild", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "configs/ctigate.yaml", "configuration file")
	dataDir := fs.String("data", "", "data directory (overrides data_dir)")
	fs.Usage = func() { fmt.Fprint(stderr, indexUsage); fs.PrintDefaults() }
	if len(args) == 0 || args[0] != "rebuild" {
		fs.Usage()
		return errUsage
	}
	if err := fs.Parse(args[1:]); err != nil || fs.NArg() > 0 {
		return errUsage
	}
	cfg, err := config.Load(*cfgPath, func(k string) string {
		if k == "CTIGATE_DATA_DIR" && *dataDir != "" {
			return *dataDir
		}
		return getenv(k)
	})
	if err != nil {
		return err
	}
	st, err := bolt.Open(filepath.Join(cfg.DataDir, "ctigate.db"), bolt.Options{OpenTimeout: 2e9})
	if err != nil {
		return offlineErr("index rebuild", err)
	}
	defer st.Close()
	ix, err := bolt.OpenIndex(filepath.Join(cfg.DataDir, "search.db"), bolt.IndexOptions{})
	if err != nil {
		return offlineErr("index rebuild", err)
	}
	defer ix.Close()
	markings, err := gateway.LoadMarkings(ctx, st, cfg)
	if err != nil {
		return fmt.Errorf("loading marking definitions: %w", err)
	}
	var colls []string
	for _, r := range cfg.APIRoots {
		for _, c := range r.Collections {
			colls = append(colls, c.ID)
		}
	}
	if err := ix.DropIndex(ctx); err != nil {
		return fmt.Errorf("index rebuild: dropping the index: %w", err)
	}
	start := time.Now()
	x := search.NewIndexer(search.IndexerOptions{Store: search.Join(st, ix), Collections: colls, Markings: markings, BatchSize: 5000,
		MaxObservables: cfg.Search.MaxObservablesPerObject})
	stats, err := x.RunOnce(ctx)
	d := time.Since(start)
	if err != nil {
		return fmt.Errorf("index rebuild: %w", err)
	}
	secs := max(d.Seconds(), 1e-9)
	fmt.Fprintf(stdout, "index rebuilt: %d object versions in %d collections, %d entries in %s (%.0f versions/s, %.0f entries/s)\n",
		stats.Versions, len(colls), stats.Entries, d.Round(time.Millisecond), float64(stats.Versions)/secs, float64(stats.Entries)/secs)
	if stats.Partial > 0 {
		fmt.Fprintf(stdout, "%d object versions indexed partially: more than %d observables each (search.max_observables_per_object)\n",
			stats.Partial, cfg.Search.MaxObservablesPerObject)
	}
	if err := ix.Close(); err != nil {
		return err
	}
	return st.Close()
}
