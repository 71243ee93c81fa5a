package server_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ctigate/ctigate/auth"
	"github.com/ctigate/ctigate/config"
	ctgateway "github.com/ctigate/ctigate/gateway"
	"github.com/ctigate/ctigate/stix"
	"github.com/ctigate/ctigate/store"
	"github.com/ctigate/ctigate/store/bolt"
)

const statementID = "marking-definition--3cd55916-d34b-4747-a8e0-dedec14b711b"

var statement = `{"type":"marking-definition","spec_version":"2.1","id":"` + statementID + `","created":"2017-06-01T00:00:00.000Z","definition_type":"statement","definition":{"statement":"Copyright 2017, The MITRE Corporation"}}`

func marked(n int, refs ...string) string {
	return strings.Replace(indicator(n, "2026-01-01T00:00:00.000Z"), `"pattern_type"`,
		`"object_marking_refs":["`+strings.Join(refs, `","`)+`"],"pattern_type"`, 1)
}

// TestIngestResolvesMarkings: the receipt says how the gateway read each
// object's markings; TLP 1.0 is normalised to TLP 2.0, the most
// restrictive marking wins, posted statement markings become known,
// unknown ones are named, and forged TLP definitions are refused.
func TestIngestResolvesMarkings(t *testing.T) {
	g := newGateway(t)
	forged := `{"type":"marking-definition","spec_version":"2.1","id":"` + stix.TLP2Red + `","created":"2022-10-01T00:00:00.000Z","name":"TLP:CLEAR","extensions":{"extension-definition--60a3c5c5-0d10-413e-aab3-9e08dde9e88d":{"extension_type":"property-extension","tlp_2_0":"clear"}}}`
	var st status
	g.post(inbound+"objects/", "cert-a", env(
		marked(1, stix.TLP2Amber),
		marked(2, stix.TLP1White),
		marked(3, stix.TLP1Green, stix.TLP2Red),
		marked(4, statementID), // defined later in the envelope: known, definitions go first
		statement,
		marked(5, statementID, stix.TLP2Green), // known now
		forged,
	)).expect(t, 202, &st)
	want := []string{"TLP:AMBER", "TLP:CLEAR", "TLP:RED", "TLP:none", "TLP:none", "TLP:GREEN"}
	if st.SuccessCount != 6 || st.FailureCount != 1 {
		t.Fatalf("status: %+v", st)
	}
	for i, w := range want {
		if !strings.HasPrefix(st.Successes[i].Message, "added; "+w+"; sha256 ") {
			t.Errorf("object %d: %q, want the markings read as %s", i, st.Successes[i].Message, w)
		}
	}
	if f := st.Failures[0]; f.ID != stix.TLP2Red || !strings.Contains(f.Message, "TLP") {
		t.Errorf("forged TLP:RED definition: %+v", f)
	}
	// A marking nobody defined is named, never guessed.
	const unknown = "marking-definition--0f0e0d0c-0b0a-4908-8706-050403020100"
	g.post(inbound+"objects/", "cert-a", env(marked(6, unknown, stix.TLP2Green))).expect(t, 202, &st)
	if st.SuccessCount != 1 || !strings.HasPrefix(st.Successes[0].Message, "added; TLP:GREEN (unknown markings: "+unknown+"); sha256 ") {
		t.Errorf("unknown marking: %+v", st)
	}
	// Granular markings must select something in the object.
	bad := strings.Replace(indicator(9, "2026-01-01T00:00:00.000Z"), `"pattern_type"`,
		`"granular_markings":[{"marking_ref":"`+stix.TLP2Red+`","selectors":["no_such_property"]}],"pattern_type"`, 1)
	g.post(inbound+"objects/", "cert-a", env(bad)).expect(t, 202, &st)
	if st.FailureCount != 1 || !strings.Contains(st.Failures[0].Message, "no_such_property") {
		t.Errorf("granular selector selecting nothing: %+v", st)
	}
}

// TestLoadMarkingsAfterRestart: statement markings posted before a restart
// are known after it.
func TestLoadMarkingsAfterRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ctigate.db")
	st, err := bolt.Open(path, bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(t)
	items, err := stix.DecodeEnvelope(env(statement))
	if err != nil || items[0].Err != nil {
		t.Fatal(err, items[0].Err)
	}
	o := items[0].Object
	if _, err := st.AddObjects(context.Background(), inboundID, []store.Object{{ID: o.ID, Type: o.Type, SpecVersion: o.SpecVersion, Version: o.Version, Raw: items[0].Raw}}); err != nil {
		t.Fatal(err)
	}
	st.Close()
	st, err = bolt.Open(path, bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	loaded, err := ctgateway.LoadMarkings(context.Background(), st, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if d, ok := loaded.Lookup(statementID); !ok || d.Kind != stix.StatementMarking {
		t.Errorf("statement after restart: %+v, %v", d, ok)
	}
	if _, ok := loaded.Lookup("marking-definition--00000000-0000-4000-8000-000000000000"); ok {
		t.Error("an unknown marking is known")
	}
}

// TestMarkingsPerOrganisation: statement markings are their organisation's
// own. CERT-B's receipts do not tell whether CERT-A defined a marking id
// (the MITRE statement id is public: "known" would say CERT-A pushed
// ATT&CK data), CERT-B may define the same id its own way without a
// conflict, and each organisation's objects are read with its own
// definitions.
func TestMarkingsPerOrganisation(t *testing.T) {
	const inboundB = "5b6b0f0e-3c2a-4c38-9f0e-7a1d2c3b4e5f"
	const tokenB = "ctg_test-token-for-cert-b-0123456789"
	g := newGateway(t, func(c *config.Config) {
		c.Users = append(c.Users, config.User{Name: "cert-b", Organisation: "CERT-B", Roles: []string{"producer"}, TokenSHA256: []string{auth.TokenDigest(tokenB)}})
		c.APIRoots[0].Collections[0].Writers = []string{"role:producer@CERT-A"}
		c.APIRoots[0].Collections[0].Readers = []string{"role:producer@CERT-A"}
		c.APIRoots[0].Collections = append(c.APIRoots[0].Collections,
			config.Collection{ID: inboundB, Title: "CERT-B inbound", Writers: []string{"cert-b"}, Readers: []string{"cert-b"}})
	})
	postB := func(objs ...string) status {
		t.Helper()
		var st status
		g.do("POST", "/exchange/collections/"+inboundB+"/objects/", "", []byte(env(objs...)), "Authorization", "Bearer "+tokenB).expect(t, 202, &st)
		return st
	}
	var st status
	g.post(inbound+"objects/", "cert-a", env(statement, marked(1, statementID, stix.TLP2Green))).expect(t, 202, &st)
	if st.SuccessCount != 2 || !strings.HasPrefix(st.Successes[1].Message, "added; TLP:GREEN; sha256 ") {
		t.Fatalf("CERT-A: %+v", st)
	}
	// CERT-B refers to the id: unknown to CERT-B, as if CERT-A had never
	// defined it.
	st = postB(marked(2, statementID, stix.TLP2Green))
	if st.SuccessCount != 1 || !strings.HasPrefix(st.Successes[0].Message, "added; TLP:GREEN (unknown markings: "+statementID+"); sha256 ") {
		t.Errorf("CERT-B, before defining it: %+v", st)
	}
	// CERT-B defines the same id with other words: its own, no conflict.
	other := strings.Replace(statement, "Copyright 2017, The MITRE Corporation", "CERT-B's own words", 1)
	st = postB(other, marked(3, statementID, stix.TLP2Green))
	if st.SuccessCount != 2 || st.FailureCount != 0 || !strings.HasPrefix(st.Successes[0].Message, "added;") ||
		!strings.HasPrefix(st.Successes[1].Message, "added; TLP:GREEN; sha256 ") {
		t.Errorf("CERT-B, defining it: %+v", st)
	}
	// CERT-A's definition is untouched: re-posting it is a repeat.
	g.post(inbound+"objects/", "cert-a", env(statement)).expect(t, 202, &st)
	if st.SuccessCount != 1 || !strings.HasPrefix(st.Successes[0].Message, "already stored;") {
		t.Errorf("CERT-A, again: %+v", st)
	}
}
