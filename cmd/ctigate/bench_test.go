package main

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/ctigate/ctigate/load"
)

func TestBenchConfig(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	noEnv := env(nil)

	cfg, prof, err := benchConfig([]string{"-n", "5000", "-b", "250", "-p", "3", "-c", "5", "-l", "700", "--phase", "push", "--data", "/tmp/x", "--json", "--cpuprofile", "cpu.out"}, noEnv, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Objects != 5000 || cfg.Envelope != 250 || cfg.Producers != 3 || cfg.Consumers != 5 || cfg.PageSize != 700 ||
		cfg.Phase != load.PhasePush || cfg.DataDir != "/tmp/x" || !cfg.JSON || prof != "cpu.out" {
		t.Errorf("got %+v, profile %q", cfg, prof)
	}

	def := load.DefaultConfig()
	cfg, _, err = benchConfig(nil, noEnv, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Server != "" || cfg.APIRoot != "exchange" || cfg.Collection != load.DefaultCollection || cfg.User != "cert-a" || cfg.Password != def.Password || cfg.Phase != load.PhaseBoth {
		t.Errorf("defaults: got server %q, %s/%s, user %q, phase %s", cfg.Server, cfg.APIRoot, cfg.Collection, cfg.User, cfg.Phase)
	}

	// The password: flag, else environment, else the demo one.
	cfg, _, _ = benchConfig(nil, env(map[string]string{"CTIGATE_BENCH_PASSWORD": "from-env"}), &bytes.Buffer{})
	if cfg.Password != "from-env" {
		t.Error("CTIGATE_BENCH_PASSWORD was not used")
	}
	cfg, _, _ = benchConfig([]string{"--password", "from-flag"}, env(map[string]string{"CTIGATE_BENCH_PASSWORD": "from-env"}), &bytes.Buffer{})
	if cfg.Password != "from-flag" {
		t.Error("--password did not win over the environment")
	}

	cfg, _, err = benchConfig([]string{"--against", "/tmp/other", "--rounds", "3", "--redis", "redis://127.0.0.1:6391/0"}, noEnv, &bytes.Buffer{})
	if err != nil || cfg.against != "/tmp/other" || cfg.rounds != 3 {
		t.Errorf("--against: %+v, %v", cfg, err)
	}
	cfg, _, err = benchConfig([]string{"--against", "/tmp/other", "--phase", "push", "-b", "10", "-p", "16"}, noEnv, &bytes.Buffer{})
	if err != nil || cfg.against != "/tmp/other" || cfg.Phase != load.PhasePush {
		t.Errorf("--against --phase push: %+v, %v", cfg, err)
	}
	for _, args := range [][]string{
		{"--against", "x", "--server", "http://127.0.0.1:8080"},
		{"--against", "x", "--data", "/tmp/x"},
		{"--against", "x", "--phase", "poll"}, // fresh data: nothing to poll
		{"--against", "x", "--json"},
		{"--against", "x", "--rounds", "0"},
		{"--phase", "poll"}, // nothing to poll
		{"--server", "http://127.0.0.1:8080", "--data", "/tmp/x"},
		{"--server", "http://192.0.2.7:8080"},
		{"-n", "0"},
		{"extra"},
	} {
		if _, _, err := benchConfig(args, noEnv, &bytes.Buffer{}); err == nil {
			t.Errorf("%q: accepted", args)
		}
	}
	var stderr bytes.Buffer
	if _, _, err := benchConfig([]string{"-h"}, noEnv, &stderr); !errors.Is(err, errUsage) {
		t.Errorf("-h: got %v, want errUsage", err)
	}
	if !strings.Contains(stderr.String(), "Usage: ctigate bench") || strings.Contains(stderr.String(), def.Password) {
		t.Errorf("-h: usage missing, or it shows the demo password:\n%s", stderr.String())
	}
}
