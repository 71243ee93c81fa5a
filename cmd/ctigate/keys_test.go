package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ctigate/ctigate/custody"
	"github.com/ctigate/ctigate/stix"
)

// keygen runs `ctigate audit keygen --out path` and returns the public key.
func keygen(t *testing.T, path string) string {
	t.Helper()
	if out, err := auditCmd(t, nil, "keygen", "--out", path); err != nil {
		t.Fatalf("keygen: %v %s", err, out)
	}
	b, err := os.ReadFile(path + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// serveErr runs `ctigate serve args…` and returns its error when it
// refuses to start; it fails the test when serve runs.
func serveErr(t *testing.T, env map[string]string, args ...string) error {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	errc := make(chan error, 1)
	go func() {
		errc <- run(ctx, append([]string{"serve"}, args...), opsPort0(func(k string) string { return env[k] }), nil, io.Discard, io.Discard)
	}()
	select {
	case err := <-errc:
		if err == nil {
			t.Fatal("serve stopped without an error")
		}
		return err
	case <-time.After(20 * time.Second):
		cancel()
		<-errc
		t.Fatal("serve started")
		return nil
	}
}

// copyKey writes the private key at src to dst with mode perm.
func copyKey(t *testing.T, src, dst string, perm os.FileMode) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dst, perm); err != nil {
		t.Fatal(err)
	}
}

// TestServeRefusesMisplacedSigningKey: serve does not start with a
// checkpoint signing key inside data_dir (directly, in a directory below
// it, through a relative path, through a symbolic link to the key or to
// data_dir) or readable or writable by the file's group or others, and
// says which file and why; a key of its own directory, mode 0600, is
// used.
func TestServeRefusesMisplacedSigningKey(t *testing.T) {
	cfg, err := filepath.Abs(demoConfig)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	t.Chdir(dir)
	key := filepath.Join(dir, "keys", "custody.pem")
	keygen(t, key)
	data := filepath.Join(dir, "data")
	if err := os.MkdirAll(data, 0o700); err != nil {
		t.Fatal(err)
	}
	copyKey(t, key, filepath.Join(data, "custody.pem"), 0o600)
	copyKey(t, key, filepath.Join(data, "keys", "deeper", "custody.pem"), 0o600)
	if err := os.Symlink(filepath.Join(data, "custody.pem"), filepath.Join(dir, "keys", "link.pem")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(data, filepath.Join(dir, "data-link")); err != nil {
		t.Fatal(err)
	}
	copyKey(t, key, filepath.Join(dir, "keys", "group.pem"), 0o640)
	copyKey(t, key, filepath.Join(dir, "keys", "others.pem"), 0o602)

	for _, c := range []struct {
		name, key, data, want string
	}{
		{"in data_dir", filepath.Join(data, "custody.pem"), data, "lies inside data_dir"},
		{"below data_dir", filepath.Join(data, "keys", "deeper", "custody.pem"), data, "lies inside data_dir"},
		{"relative paths", "data/keys/deeper/../../custody.pem", "./data/", "lies inside data_dir"},
		{"a link to a key in data_dir", filepath.Join(dir, "keys", "link.pem"), data, "lies inside data_dir"},
		{"data_dir through a link", filepath.Join(data, "custody.pem"), filepath.Join(dir, "data-link"), "lies inside data_dir"},
		{"the key through data_dir's link", filepath.Join(dir, "data-link", "custody.pem"), data, "lies inside data_dir"},
		{"readable by the group", filepath.Join(dir, "keys", "group.pem"), data, "readable or writable by its group or others (mode 0640)"},
		{"writable by others", filepath.Join(dir, "keys", "others.pem"), data, "readable or writable by its group or others (mode 0602)"},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := serveErr(t, map[string]string{"CTIGATE_CUSTODY_SIGNING_KEY_FILE": c.key},
				"--config", cfg, "--data", c.data, "--listen", "127.0.0.1:0")
			if !strings.Contains(err.Error(), "custody.signing_key_file: "+c.key+" ") || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("serve: %v\nwant an error naming %s and saying %q", err, c.key, c.want)
			}
		})
	}

	// The key where it belongs: serve starts and signs with it.
	gw := startServe(t, func(k string) string {
		if k == "CTIGATE_CUSTODY_SIGNING_KEY_FILE" {
			return "keys/custody.pem"
		}
		return ""
	}, "--config", cfg, "--data", "data", "--listen", "127.0.0.1:0")
	gw.stop(t)
	export := filepath.Join(dir, "ledger.jsonl")
	if out, err := auditCmd(t, nil, "export", "--config", cfg, "--data", data, "--out", export); err != nil {
		t.Fatalf("export: %v %s", err, out)
	}
	out, err := auditCmd(t, nil, "verify", "--key", key+".pub", export)
	if err != nil || checkpointsOf(out) < 1 {
		t.Fatalf("verify: %v %s", err, out)
	}
}

// checkpointsOf returns the number of checkpoints `audit verify` reports.
func checkpointsOf(out string) int {
	m := regexp.MustCompile(`; (\d+) checkpoints, signed through seq`).FindStringSubmatch(out)
	if m == nil {
		return -1
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// TestKeygen: keygen writes the private key readable by its owner only,
// by default in the user's configuration directory (made owner-only too),
// prints the public key to pin, never overwrites a key, and refuses a
// file inside the configuration's data_dir.
func TestKeygen(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("XDG_CONFIG_HOME", filepath.Join(dir, "config-home"))
	out, err := auditCmd(t, nil, "keygen")
	if err != nil {
		t.Fatalf("keygen: %v %s", err, out)
	}
	path := filepath.Join(dir, "config-home", "ctigate", "checkpoint-signing.pem")
	for p, want := range map[string]os.FileMode{path: 0o600, filepath.Dir(path): 0o700} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%s: mode %04o, want %04o", p, fi.Mode().Perm(), want)
		}
	}
	pub, err := os.ReadFile(path + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := loadSigningKey(path); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "public key:  "+strings.TrimSpace(string(pub))) || !strings.Contains(out, "--key "+strings.TrimSpace(string(pub))) {
		t.Errorf("keygen does not print the public key to pin:\n%s", out)
	}
	if out, err := auditCmd(t, nil, "keygen"); err == nil {
		t.Fatalf("keygen overwrote %s: %s", path, out)
	}

	data := filepath.Join(dir, "data")
	cfg := demoVariant(t, func(cfg map[string]any) { cfg["data_dir"] = data })
	inside := filepath.Join(data, "custody.pem")
	if out, err := auditCmd(t, nil, "keygen", "--config", cfg, "--out", inside); err == nil || !strings.Contains(err.Error(), "inside data_dir") {
		t.Fatalf("keygen into data_dir: %v %s", err, out)
	}
	if _, err := os.Stat(inside); err == nil {
		t.Fatal("keygen wrote into data_dir")
	}
	if out, err := auditCmd(t, nil, "keygen", "--config", cfg, "--out", filepath.Join(dir, "keys", "k.pem")); err != nil {
		t.Fatalf("keygen outside data_dir: %v %s", err, out)
	}
}

// firstCheckpointBy returns the seq of the first checkpoint of an export
// signed by pub.
func firstCheckpointBy(t *testing.T, export []byte, pub string) uint64 {
	t.Helper()
	for _, e := range parseLines(t, export) {
		if e.Action == custody.Checkpoint && e.PublicKey == pub {
			return e.Seq
		}
	}
	t.Fatalf("no checkpoint signed by %s", pub)
	return 0
}

// TestCheckpointKeyRotation: a ledger signed first with one key, then,
// after a rotation, with another, verifies when both are pinned (as
// repeated --key, as one file of keys, or as the configuration's
// custody.trusted_keys) and fails, naming the first checkpoint signed by
// the other key, when only one is. Serve refuses a signing key the
// configuration's trusted keys do not list.
func TestCheckpointKeyRotation(t *testing.T) {
	dir := t.TempDir()
	oldKey, newKey := filepath.Join(dir, "keys", "2025.pem"), filepath.Join(dir, "keys", "2026.pem")
	oldPub, newPub := keygen(t, oldKey), keygen(t, newKey)
	data := filepath.Join(dir, "data")
	trusting := func(keys ...string) string {
		return demoVariant(t, func(cfg map[string]any) {
			cfg["custody"].(map[string]any)["trusted_keys"] = keys
		})
	}
	before, after := trusting(oldPub), trusting(oldPub, newPub)
	client := &http.Client{Timeout: 10 * time.Second}
	post := func(cfg, key string, n int) {
		t.Helper()
		gw := startServe(t, func(k string) string {
			if k == "CTIGATE_CUSTODY_SIGNING_KEY_FILE" {
				return key
			}
			return ""
		}, "--config", cfg, "--data", data, "--listen", "127.0.0.1:0")
		id := "indicator--d0d0d0d0-0000-4000-8000-00000000000" + strconv.Itoa(n)
		if res, b, err := request(t, client, "POST", gw.base+inboundPath+"objects/", "cert-a",
			[]byte(`{"objects":[`+isoIndicator(id, "rotation.example", stix.TLP2Green)+`]}`)); err != nil || res.StatusCode != http.StatusAccepted {
			t.Fatalf("POST: %v %v %s", res, err, b)
		}
		gw.stop(t) // signs the head
	}
	post(before, oldKey, 1)
	err := serveErr(t, map[string]string{"CTIGATE_CUSTODY_SIGNING_KEY_FILE": newKey}, "--config", before, "--data", data, "--listen", "127.0.0.1:0")
	if !strings.Contains(err.Error(), "custody.trusted_keys") || !strings.Contains(err.Error(), newPub) {
		t.Fatalf("serve with a key the configuration does not trust: %v", err)
	}
	post(after, newKey, 2)

	exportFile := filepath.Join(dir, "ledger.jsonl")
	if out, err := auditCmd(t, nil, "export", "--config", after, "--data", data, "--out", exportFile); err != nil {
		t.Fatalf("export: %v %s", err, out)
	}
	export, err := os.ReadFile(exportFile)
	if err != nil {
		t.Fatal(err)
	}
	pinFile := filepath.Join(dir, "pinned-keys")
	if err := os.WriteFile(pinFile, []byte("# the exchange's checkpoint keys\n"+oldPub+"  # 2025, retired\n\n"+newPub+"  # 2026\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"--key", oldKey + ".pub", "--key", newPub},
		{"--key", pinFile},
		{"--config", after},
		{"--data", data, "--config", after},
	} {
		if args[0] != "--data" {
			args = append(args, exportFile)
		}
		out, err := auditCmd(t, nil, append([]string{"verify"}, args...)...)
		if err != nil || !strings.Contains(out, "signed by pinned key "+oldPub) || !strings.Contains(out, "signed by pinned key "+newPub) {
			t.Errorf("verify %v: %v\n%s", args, err, out)
		}
	}
	oldSeq, newSeq := firstCheckpointBy(t, export, oldPub), firstCheckpointBy(t, export, newPub)
	for _, c := range []struct {
		args []string
		seq  uint64
		key  string
	}{
		{[]string{"--key", newKey + ".pub", exportFile}, oldSeq, oldPub},
		{[]string{"--key", oldPub, exportFile}, newSeq, newPub},
		{[]string{"--config", before, exportFile}, newSeq, newPub},
		{[]string{"--data", data, "--config", before}, newSeq, newPub},
	} {
		_, err := auditCmd(t, nil, append([]string{"verify"}, c.args...)...)
		want := "entry " + strconv.FormatUint(c.seq, 10) + " "
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), c.key+", which is not pinned") {
			t.Errorf("verify %v: %v, want entry %d named, signed by %s", c.args, err, c.seq, c.key)
		}
	}
	if bytes.Contains(export, []byte("PRIVATE")) {
		t.Error("the export holds a private key")
	}
}
