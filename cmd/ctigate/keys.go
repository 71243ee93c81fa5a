package main

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/ctigate/ctigate/config"
)

// checkSigningKeyFile refuses a checkpoint signing key kept where it
// should not be: inside data_dir (or a directory below it), however the
// path is written (relative, through symbolic links), since whoever
// copies, backs up or reads the data would carry the key that vouches for
// it; or readable or writable by the file's group or others.
func checkSigningKeyFile(path, dataDir string) error {
	const key = "config: custody.signing_key_file"
	fi, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("%s: %w", key, err)
	}
	if fi.IsDir() {
		return fmt.Errorf("%s: %s is a directory", key, path)
	}
	inside, err := within(path, dataDir)
	if err != nil {
		return fmt.Errorf("%s: %w", key, err)
	}
	if inside {
		return fmt.Errorf("%s: %s lies inside data_dir %s: keep the private key that signs the ledger apart from the data it vouches for "+
			"(copies and backups of the data directory would carry it); move it elsewhere, readable by the gateway's user only", key, path, dataDir)
	}
	if perm := fi.Mode().Perm(); runtime.GOOS != "windows" && perm&0o077 != 0 {
		return fmt.Errorf("%s: %s is readable or writable by its group or others (mode %04o): only the gateway's user may read it; run chmod 600 %s",
			key, path, perm, path)
	}
	return nil
}

// within reports whether file lies inside dir or a directory below it,
// after making both absolute and resolving symbolic links. dir need not
// exist.
func within(file, dir string) (bool, error) {
	f, err := resolvePath(file)
	if err != nil {
		return false, err
	}
	d, err := resolvePath(dir)
	if err != nil {
		return false, err
	}
	if rel, err := filepath.Rel(d, f); err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return true, nil
	}
	// The same directory under another name (a bind mount, a
	// case-insensitive file system) is found by identity.
	di, err := os.Stat(d)
	if err != nil {
		return false, nil // a directory that does not exist holds nothing
	}
	for p := filepath.Dir(f); ; p = filepath.Dir(p) {
		if pi, err := os.Stat(p); err == nil && os.SameFile(pi, di) {
			return true, nil
		}
		if filepath.Dir(p) == p {
			return false, nil
		}
	}
}

// resolvePath returns p absolute with its symbolic links resolved; of a
// path that does not exist (yet), the longest existing prefix is
// resolved and the rest joined to it.
func resolvePath(p string) (string, error) {
	abs, err := filepath.Abs(p)
	if err != nil {
		return "", err
	}
	r, err := filepath.EvalSymlinks(abs)
	if err == nil {
		return r, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return "", err
	}
	parent := filepath.Dir(abs)
	if parent == abs {
		return abs, nil
	}
	rp, err := resolvePath(parent)
	if err != nil {
		return "", err
	}
	return filepath.Join(rp, filepath.Base(abs)), nil
}

// defaultKeyFile is where `ctigate audit keygen` writes without --out: a
// directory of the user's configuration, away from any data directory.
func defaultKeyFile() (string, error) {
	dir, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("no --out, and no configuration directory for the default: %w", err)
	}
	return filepath.Join(dir, "ctigate", "checkpoint-signing.pem"), nil
}

// checkTrustedSigner refuses a signing key that custody.trusted_keys,
// when set, does not list.
func checkTrustedSigner(cfg *config.Config, pub string) error {
	trusted := cfg.Custody.PublicKeys()
	if len(trusted) == 0 {
		return nil
	}
	k, err := base64.StdEncoding.DecodeString(pub)
	if err != nil {
		return err
	}
	for _, t := range trusted {
		if bytes.Equal(t, k) {
			return nil
		}
	}
	return fmt.Errorf("config: custody.trusted_keys: the signing key's public key %s is not among them: add it (and keep the earlier keys the ledger's checkpoints are signed by)", pub)
}

// keysFlag collects pinned public keys: --key KEY, where KEY is a base64
// Ed25519 public key or a file of them (config.ParsePublicKeys: one a
// line, # comments), repeatable.
type keysFlag []ed25519.PublicKey

func (k *keysFlag) String() string { return fmt.Sprint(len(*k), " keys") }

func (k *keysFlag) Set(v string) error {
	if pub, err := config.ParsePublicKey(v); err == nil {
		*k = append(*k, pub)
		return nil
	}
	b, err := os.ReadFile(v)
	if err != nil {
		return fmt.Errorf("%q is neither a base64 Ed25519 public key nor a readable file of them", v)
	}
	keys, err := config.ParsePublicKeys(string(b))
	if err != nil {
		return fmt.Errorf("%s: %w", v, err)
	}
	*k = append(*k, keys...)
	return nil
}
