package main

import (
	"bytes"
	"fmt"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/ctigate/ctigate/internal/shared"
)

// schemaBase is where the OASIS STIX 2.1 JSON Schemas say they live ($id);
// they are loaded from the shared test data under those ids, offline.
const schemaBase = "http://raw.githubusercontent.com/oasis-open/cti-stix2-json-schemas/stix2.1/schemas/"

// stixSchemas compiles the OASIS schemas, one per object type on demand.
type stixSchemas struct {
	c     *jsonschema.Compiler
	files map[string]bool // paths under schemas/
	by    map[string]*jsonschema.Schema
}

func loadSchemas(t *testing.T) *stixSchemas {
	t.Helper()
	dir := shared.Path(t, "stix2-json-schemas", "schemas")
	s := &stixSchemas{c: jsonschema.NewCompiler(), files: map[string]bool{}, by: map[string]*jsonschema.Schema{}}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".json") {
			return err
		}
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		doc, err := jsonschema.UnmarshalJSON(f)
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		rel, _ := filepath.Rel(dir, path)
		s.files[filepath.ToSlash(rel)] = true
		return s.c.AddResource(schemaBase+filepath.ToSlash(rel), doc)
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(s.files) < 50 {
		t.Fatalf("only %d schema files in %s", len(s.files), dir)
	}
	return s
}

// forType returns the schema of a STIX type: its own (an SDO, SRO, SCO or
// a common object such as marking-definition), else core.json, which
// custom objects (x-mitre-…) must meet.
func (s *stixSchemas) forType(t *testing.T, typ string) (*jsonschema.Schema, string) {
	t.Helper()
	file := "common/core.json"
	for _, d := range []string{"sdos", "sros", "observables", "common"} {
		if s.files[d+"/"+typ+".json"] {
			file = d + "/" + typ + ".json"
			break
		}
	}
	if sch := s.by[file]; sch != nil {
		return sch, file
	}
	sch, err := s.c.Compile(schemaBase + file)
	if err != nil {
		t.Fatalf("compiling %s: %v", file, err)
	}
	s.by[file] = sch
	return sch, file
}

// TestConsumersReceiveSchemaValidSTIX: every object a consumer receives
// is valid against the official OASIS STIX 2.1 JSON Schemas. MITRE ATT&CK
// (ICS 18.1, Mobile 17.1) and every OASIS example go through the demo
// topology with routes that publish unmarked data (as TLP:GREEN), so
// nearly everything is published, redacted copies included (judiciary
// drops x_ properties and individuals); both consumers read everything.
// It needs the shared test data: it fails without it in CI (CI=true).
func TestConsumersReceiveSchemaValidSTIX(t *testing.T) {
	schemas := loadSchemas(t)
	// A control: the compiled schemas do reject what STIX forbids.
	for typ, bad := range map[string]string{
		"indicator":      `{"type":"indicator","spec_version":"2.1","id":"indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f","created":"2026-01-01T00:00:00.000Z","modified":"2026-01-01T00:00:00.000Z","pattern_type":"stix","valid_from":"2026-01-01T00:00:00Z"}`,
		"x-mitre-tactic": `{"type":"x-mitre-tactic","spec_version":"2.1","id":"not-an-id","created":"2026-01-01T00:00:00.000Z","modified":"2026-01-01T00:00:00.000Z"}`,
	} {
		sch, file := schemas.forType(t, typ)
		inst, err := jsonschema.UnmarshalJSON(strings.NewReader(bad))
		if err != nil {
			t.Fatal(err)
		}
		if sch.Validate(inst) == nil {
			t.Fatalf("%s accepts an invalid %s: the schemas did not load as they should", file, typ)
		}
	}
	var files []string
	for _, pat := range []string{"attack/ics-attack-18.1.json", "attack/mobile-attack-17.1.json", "oasis-examples/*.json"} {
		m, err := filepath.Glob(shared.Path(t, pat))
		if err != nil || len(m) == 0 {
			t.Fatalf("%s: %v %v", pat, m, err)
		}
		files = append(files, m...)
	}
	config := demoVariant(t, func(cfg map[string]any) {
		cfgList(cfg, "api_roots")[0].(map[string]any)["max_content_length"] = 16 << 20
		for _, r := range cfgList(cfg, "routes") {
			r.(map[string]any)["unmarked"] = "TLP:GREEN"
		}
	})
	gw := startServe(t, nil, "--config", config, "--data", t.TempDir(), "--listen", "127.0.0.1:0")
	client := &http.Client{Timeout: 60 * time.Second}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var bundle struct {
			Objects []jsontext.Value `json:"objects"`
		}
		if err := json.Unmarshal(raw, &bundle); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if len(bundle.Objects) == 0 { // a file of one object
			bundle.Objects = []jsontext.Value{raw}
		}
		env, _ := json.Marshal(bundle)
		if res, b, err := request(t, client, "POST", gw.base+inboundPath+"objects/", "cert-a", env); err != nil || res.StatusCode != http.StatusAccepted {
			t.Fatalf("POST %s: %v %v %.300s", f, res, err, b)
		}
	}
	// Fan-out has caught up when each route has decided about every
	// version the inbound collection holds.
	inbound := len(readAll(t, client, gw.base, inboundPath, "cert-a", true))
	waitFor(t, "fan-out decides about every inbound version", 120*time.Second, func() bool {
		return len(allDecisions(t, client, gw.base)) >= 2*inbound // one per (route, version)
	})
	total, byFile := 0, map[string]int{}
	for _, c := range []struct{ user, path string }{{"police", lawEnforcementPath}, {"prosecutor", judiciaryPath}} {
		objs := readAll(t, client, gw.base, c.path, c.user, false)
		if len(objs) < inbound/2 {
			t.Fatalf("%s received %d of %d versions: the routes should publish most of them", c.user, len(objs), inbound)
		}
		for _, raw := range objs {
			var head struct {
				Type string `json:"type"`
				ID   string `json:"id"`
			}
			if err := json.Unmarshal(raw, &head); err != nil {
				t.Fatal(err)
			}
			sch, file := schemas.forType(t, head.Type)
			inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
			if err != nil {
				t.Fatal(err)
			}
			if err := sch.Validate(inst); err != nil {
				t.Errorf("%s received %s, which %s rejects: %v\n%.500s", c.user, head.ID, file, err, raw)
			}
			total++
			byFile[file]++
		}
	}
	t.Logf("%d objects received by the two consumers validated (%d inbound versions); schemas used: %v", total, inbound, byFile)
}

// readAll reads every version in a collection, page by page.
func readAll(t *testing.T, client *http.Client, base, path, user string, manifest bool) []jsontext.Value {
	t.Helper()
	var out []jsontext.Value
	q := url.Values{"match[version]": {"all"}, "limit": {"1000"}}
	endpoint := "objects/"
	if manifest {
		endpoint = "manifest/"
	}
	for {
		res, b, err := request(t, client, "GET", base+path+endpoint+"?"+q.Encode(), user, nil)
		if err != nil || res.StatusCode != http.StatusOK {
			t.Fatalf("GET %s%s: %v %v %.200s", path, endpoint, res, err, b)
		}
		var page struct {
			More    bool             `json:"more"`
			Next    string           `json:"next"`
			Objects []jsontext.Value `json:"objects"`
		}
		if err := json.Unmarshal(b, &page); err != nil {
			t.Fatal(err)
		}
		out = append(out, page.Objects...)
		if !page.More {
			return out
		}
		q.Set("next", page.Next)
	}
}
