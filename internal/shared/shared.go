// Package shared finds the test data shared beside the repository
// (../shared/testdata: real STIX bundles, the OASIS STIX 2.1 JSON Schemas,
// the TLP definitions; see its README for sources and licences), for
// tests. A test that needs it skips when it is absent (a user's clone has
// none), except in CI (CI=true), where it fails: CI claims those tests ran.
package shared

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-json-experiment/json/jsontext"
)

// Env names the directory when set; else it is ../shared/testdata beside
// the module's root.
const Env = "CTIGATE_SHARED_TESTDATA"

// Path returns the path of elem under the shared test data directory,
// skipping t when the directory is absent (failing it when CI=true).
func Path(t testing.TB, elem ...string) string {
	t.Helper()
	dir, err := dir()
	if err == nil {
		_, err = os.Stat(dir)
	}
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("the shared test data is required in CI (CI=true): %v; set %s", err, Env)
		}
		t.Skipf("the shared test data is absent (%v): it sits beside the repository in development and CI; set %s", err, Env)
	}
	return filepath.Join(append([]string{dir}, elem...)...)
}

// Read returns the contents of elem under the shared test data directory.
func Read(t testing.TB, elem ...string) []byte {
	t.Helper()
	b, err := os.ReadFile(Path(t, elem...))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func dir() (string, error) {
	if d := os.Getenv(Env); d != "" {
		return d, nil
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for d := wd; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return filepath.Join(filepath.Dir(d), "shared", "testdata"), nil
		}
		if filepath.Dir(d) == d {
			return "", os.ErrNotExist
		}
	}
}

// JSONFiles returns the contents of every .json file of the shared test
// data, in the order of their paths (skipping or failing t as Path does
// when it is absent).
func JSONFiles(t testing.TB) [][]byte {
	t.Helper()
	var out [][]byte
	err := filepath.WalkDir(Path(t), func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".json") {
			return err
		}
		b, err := os.ReadFile(path)
		out = append(out, b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// ObjectsIn returns the members of the "objects" array of data, a bundle
// or an envelope, each with its original bytes, in order: none when data
// is not a JSON object with such an array, and those before the first
// that is not valid JSON.
func ObjectsIn(data []byte) [][]byte {
	dec := jsontext.NewDecoder(bytes.NewReader(data))
	if dec.PeekKind() != '{' {
		return nil
	}
	if _, err := dec.ReadToken(); err != nil {
		return nil
	}
	var objs [][]byte
	for dec.PeekKind() == '"' {
		name, err := dec.ReadToken()
		if err != nil {
			return nil
		}
		if name.String() != "objects" || dec.PeekKind() != '[' {
			if dec.SkipValue() != nil {
				return nil
			}
			continue
		}
		if _, err := dec.ReadToken(); err != nil {
			return nil
		}
		for dec.PeekKind() == '{' {
			v, err := dec.ReadValue()
			if err != nil {
				return objs
			}
			objs = append(objs, bytes.Clone(v))
		}
		return objs
	}
	return nil
}

// Objects returns every object of the bundles and envelopes of the
// shared test data (ObjectsIn of each JSON file).
func Objects(t testing.TB) [][]byte {
	t.Helper()
	var objs [][]byte
	for _, data := range JSONFiles(t) {
		objs = append(objs, ObjectsIn(data)...)
	}
	return objs
}
