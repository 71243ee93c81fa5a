package main

import (
	"bufio"
	"debug/elf"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"

	"go.yaml.in/yaml/v3"
)

const repoRoot = "../.."

func readRepoFile(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// goBuildFlags returns the environment and flags of the `go build` in
// text, without the output path and with $(GO) and make variables
// resolved from vars.
func goBuildFlags(t *testing.T, text string, vars map[string]string) string {
	t.Helper()
	m := regexp.MustCompile(`(CGO_ENABLED=0) (?:\$\(GO\)|go) build (.*?) -o \S+ (\./cmd/ctigate)`).FindStringSubmatch(text)
	if m == nil {
		t.Fatalf("no go build of ./cmd/ctigate in:\n%s", text)
	}
	s := m[1] + " " + m[2] + " " + m[3]
	for k, v := range vars {
		s = strings.ReplaceAll(s, "$("+k+")", v)
	}
	return s
}

// TestDockerfileMirrorsMakefile: the image is built with the same
// command as `make build`, and its health check is the one
// docker-compose.yml runs.
func TestDockerfileMirrorsMakefile(t *testing.T) {
	mk, df := readRepoFile(t, "Makefile"), readRepoFile(t, "Dockerfile")
	ld := regexp.MustCompile(`(?m)^LDFLAGS \?= (.*)$`).FindStringSubmatch(mk)
	if ld == nil {
		t.Fatal("Makefile: no LDFLAGS")
	}
	if got, want := goBuildFlags(t, df, nil), goBuildFlags(t, mk, map[string]string{"LDFLAGS": ld[1]}); got != want {
		t.Errorf("Dockerfile builds with %q, make build with %q", got, want)
	}
	hc := regexp.MustCompile(`HEALTHCHECK .* CMD (\[.*\])`).FindStringSubmatch(df)
	if hc == nil {
		t.Fatal("Dockerfile: no HEALTHCHECK")
	}
	var image []string
	if err := yaml.Unmarshal([]byte(hc[1]), &image); err != nil {
		t.Fatal(err)
	}
	var compose struct {
		Services map[string]struct {
			Environment map[string]string `yaml:"environment"`
			Healthcheck struct {
				Test []string `yaml:"test"`
			} `yaml:"healthcheck"`
		} `yaml:"services"`
	}
	if err := yaml.Unmarshal([]byte(readRepoFile(t, "docker-compose.yml")), &compose); err != nil {
		t.Fatal(err)
	}
	if got := compose.Services["ctigate"].Healthcheck.Test; strings.Join(got, " ") != "CMD "+strings.Join(image, " ") {
		t.Errorf("compose health check %q, image %q", got, image)
	}
}

// TestComposeTelemetry: the gateway in docker-compose.yml sends OTLP to
// the collector's OTLP receiver, the collector scrapes the port the
// container configuration gives ops.listen, and every pipeline uses only
// components the collector configuration defines.
func TestComposeTelemetry(t *testing.T) {
	var compose struct {
		Services map[string]struct {
			Image       string            `yaml:"image"`
			Environment map[string]string `yaml:"environment"`
			Volumes     []string          `yaml:"volumes"`
		} `yaml:"services"`
	}
	if err := yaml.Unmarshal([]byte(readRepoFile(t, "docker-compose.yml")), &compose); err != nil {
		t.Fatal(err)
	}
	col, ok := compose.Services["otel-collector"]
	if !ok {
		t.Fatal("docker-compose.yml: no otel-collector service")
	}
	if !strings.Contains(strings.Join(col.Volumes, " "), "./configs/otel-collector.yaml:") {
		t.Errorf("the collector does not mount configs/otel-collector.yaml: %v", col.Volumes)
	}
	env := compose.Services["ctigate"].Environment
	endpoint := strings.TrimPrefix(env["OTEL_EXPORTER_OTLP_ENDPOINT"], "http://")
	if env["OTEL_TRACES_EXPORTER"] != "otlp" || !strings.HasPrefix(endpoint, "otel-collector:") {
		t.Errorf("the gateway does not export traces to the collector: %v", env)
	}

	type pipeline struct{ Receivers, Processors, Exporters []string }
	var cc struct {
		Receivers map[string]struct {
			Protocols map[string]struct {
				Endpoint string `yaml:"endpoint"`
			} `yaml:"protocols"`
			Config struct {
				ScrapeConfigs []struct {
					StaticConfigs []struct {
						Targets []string `yaml:"targets"`
					} `yaml:"static_configs"`
				} `yaml:"scrape_configs"`
			} `yaml:"config"`
		} `yaml:"receivers"`
		Processors map[string]any `yaml:"processors"`
		Exporters  map[string]any `yaml:"exporters"`
		Service    struct {
			Pipelines map[string]pipeline `yaml:"pipelines"`
		} `yaml:"service"`
	}
	if err := yaml.Unmarshal([]byte(readRepoFile(t, "configs/otel-collector.yaml")), &cc); err != nil {
		t.Fatal(err)
	}
	proto := map[string]string{"http/protobuf": "http", "grpc": "grpc"}[env["OTEL_EXPORTER_OTLP_PROTOCOL"]]
	_, port, _ := net.SplitHostPort(endpoint)
	if ep := cc.Receivers["otlp"].Protocols[proto].Endpoint; !strings.HasSuffix(ep, ":"+port) {
		t.Errorf("the gateway sends OTLP/%s to port %s; the collector listens at %q", proto, port, ep)
	}
	cfg := readRepoFile(t, "configs/docker.yaml")
	ops := regexp.MustCompile(`(?m)^ops:\n  listen: (\S+)`).FindStringSubmatch(cfg)
	if ops == nil {
		t.Fatal("configs/docker.yaml: no ops.listen")
	}
	_, opsPort, _ := net.SplitHostPort(ops[1])
	sc := cc.Receivers["prometheus"].Config.ScrapeConfigs
	if len(sc) != 1 || len(sc[0].StaticConfigs) != 1 || strings.Join(sc[0].StaticConfigs[0].Targets, ",") != "ctigate:"+opsPort {
		t.Errorf("the collector scrapes %+v, want ctigate:%s", sc, opsPort)
	}
	for _, name := range []string{"traces", "metrics"} {
		p, ok := cc.Service.Pipelines[name]
		if !ok {
			t.Errorf("no %s pipeline", name)
		}
		for _, r := range p.Receivers {
			if _, ok := cc.Receivers[r]; !ok {
				t.Errorf("%s pipeline: receiver %q is not defined", name, r)
			}
		}
		for _, r := range p.Processors {
			if _, ok := cc.Processors[r]; !ok {
				t.Errorf("%s pipeline: processor %q is not defined", name, r)
			}
		}
		for _, r := range p.Exporters {
			if _, ok := cc.Exporters[r]; !ok {
				t.Errorf("%s pipeline: exporter %q is not defined", name, r)
			}
		}
	}
}

// TestMakeBuild: `make build` (the Dockerfile's build) makes a static
// binary that serves, passes the image's health check, and stops cleanly
// on SIGTERM.
func TestMakeBuild(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	if _, err := exec.LookPath("make"); err != nil {
		t.Skip("no make")
	}
	exe := filepath.Join(t.TempDir(), "ctigate")
	if out, err := exec.Command("make", "-C", repoRoot, "build", "BINARY="+exe).CombinedOutput(); err != nil {
		t.Fatalf("make build: %v\n%s", err, out)
	}
	f, err := elf.Open(exe)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Error("the binary is dynamically linked (it has an ELF interpreter)")
		}
	}
	f.Close()

	cmd := exec.Command(exe, "serve", "--config", demoConfig, "--data", t.TempDir(), "--listen", "127.0.0.1:0")
	cmd.Env = childEnv()
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	ops := ""
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if _, u, ok := strings.Cut(sc.Text(), "serving operations at "); ok {
			ops = strings.TrimSuffix(u, "/")
			break
		}
	}
	if ops == "" {
		t.Fatal("the binary did not print its operations listener")
	}
	go func() {
		for sc.Scan() {
		}
	}()
	if b, err := exec.Command(exe, "health", "--url", ops+"/readyz").CombinedOutput(); err != nil {
		t.Errorf("health check: %v\n%s", err, b)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Errorf("serve after SIGTERM: %v", err)
	}
}
