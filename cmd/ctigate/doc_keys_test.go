package main

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ctigate/ctigate/store/redis/redistest"
)

// readmeBlock returns the ```sh block of docs/custody.md holding marker.
func readmeBlock(t *testing.T, marker string) string {
	t.Helper()
	s := readRepoFile(t, "docs/custody.md")
	k := strings.Index(s, marker)
	if k < 0 {
		t.Fatalf("docs/custody.md has no %q", marker)
	}
	i := strings.LastIndex(s[:k], "```sh\n")
	j := strings.Index(s[k:], "```")
	if i < 0 || j < 0 {
		t.Fatalf("%q is not in a ```sh block of docs/custody.md", marker)
	}
	return s[i+len("```sh\n") : k+j]
}

// What changes from one run of a walk-through to the next: public keys,
// hashes, paths, numbers and durations.
var (
	varKey  = regexp.MustCompile(`[A-Za-z0-9+/]{43}=`)
	varHash = regexp.MustCompile(`\b[0-9a-f]{64}\b`)
	varPath = regexp.MustCompile(`/[^\s),]+`)
	varNum  = regexp.MustCompile(`\d+(\.\d+)?(ms|µs|s)?`)
)

func invariant(line string) string {
	line = varKey.ReplaceAllString(line, "KEY")
	line = varHash.ReplaceAllString(line, "HASH")
	line = varPath.ReplaceAllString(line, "PATH")
	return varNum.ReplaceAllString(line, "N")
}

// TestDocCheckpointKeys runs the checkpoint key walk-through of
// docs/custody.md as written, with the built binary, from the repository root (only the
// binary's path and the two listen addresses are replaced, by free
// ones): keygen, serve with the key, a push, a clean stop, an export
// verified against the pinned key (at least one checkpoint, signed by
// the key keygen made) and refused against another key, naming the
// entry. Its output is the one the document shows but for keys, hashes,
// paths and numbers.
func TestDocCheckpointKeys(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	var script, shown []string
	for _, line := range strings.Split(readmeBlock(t, "audit keygen --out $W/keys/checkpoint.pem"), "\n") {
		if out, ok := strings.CutPrefix(line, "# → "); ok {
			shown = append(shown, out)
		} else {
			script = append(script, line)
		}
	}
	tmp := t.TempDir()
	exe := filepath.Join(tmp, "ctigate")
	listen := "127.0.0.1:" + strconv.Itoa(redistest.FreePort(t))
	ops := "127.0.0.1:" + strconv.Itoa(redistest.FreePort(t))
	text := strings.Join(script, "\n")
	for from, to := range map[string]string{"/tmp/ctigate": exe, "127.0.0.1:8080": listen, "127.0.0.1:9464": ops} {
		if !strings.Contains(text, from) {
			t.Fatalf("the walk-through no longer holds %s", from)
		}
		text = strings.ReplaceAll(text, from, to)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "sh", "-c", text)
	cmd.Dir = repoRoot
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "CTIGATE_") && !strings.HasPrefix(kv, "TMPDIR=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, "TMPDIR="+tmp, "CTIGATE_LISTEN="+listen, "CTIGATE_OPS_LISTEN="+ops)
	// The script and the gateway it starts in the background are one
	// process group, ended together if the script does not finish.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	b, err := cmd.CombinedOutput()
	if cmd.Process != nil {
		if kerr := syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); kerr == nil {
			t.Error("a process of the walk-through was still running after it")
		} else if !errors.Is(kerr, syscall.ESRCH) {
			t.Error(kerr)
		}
	}
	out := string(b)
	t.Logf("walk-through (%v):\n%s", err, out)
	if ctx.Err() != nil {
		t.Fatal("the walk-through did not finish within 3 minutes")
	}

	got := strings.Split(strings.TrimRight(out, "\n"), "\n")
	if len(got) != len(shown) {
		t.Fatalf("the walk-through prints %d lines; docs/custody.md shows %d", len(got), len(shown))
	}
	for i := range got {
		if invariant(got[i]) != invariant(shown[i]) {
			t.Errorf("line %d of the output:\n%s\ndocs/custody.md shows\n%s", i+1, got[i], shown[i])
		}
	}
	m := regexp.MustCompile(`public key:  (\S+) `).FindStringSubmatch(out)
	if m == nil {
		t.Fatal("keygen printed no public key")
	}
	if n := checkpointsOf(out); n < 1 {
		t.Errorf("verify reports %d checkpoints", n)
	}
	if !strings.Contains(out, "\nsigned by pinned key "+m[1]+"\n") {
		t.Errorf("verify does not report the pinned key %s", m[1])
	}
	if !regexp.MustCompile(`audit verify: entry \d+ \(line \d+\) does not verify: checkpoint signed by key ` + regexp.QuoteMeta(m[1]) + `, which is not pinned`).MatchString(out) {
		t.Error("verify pinned to another key does not fail naming the entry")
	}
}
