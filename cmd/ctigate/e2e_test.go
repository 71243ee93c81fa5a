package main

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/ctigate/ctigate/policy"
	"github.com/ctigate/ctigate/stix"
)

// The objects of TestEndToEndDemoTopology, by short name.
const (
	e2eClear       = "indicator--c0ffee00-0000-4000-8000-000000000001"
	e2eGreen       = "indicator--c0ffee00-0000-4000-8000-000000000002"
	e2eAmber       = "indicator--c0ffee00-0000-4000-8000-000000000003"
	e2eAmberStrict = "indicator--c0ffee00-0000-4000-8000-000000000004"
	e2eRed2        = "indicator--c0ffee00-0000-4000-8000-000000000005"
	e2eRed1        = "indicator--c0ffee00-0000-4000-8000-000000000006"
	e2eUnmarked    = "indicator--c0ffee00-0000-4000-8000-000000000007"
	e2eExpired     = "indicator--c0ffee00-0000-4000-8000-000000000008"
	e2eIndividual  = "identity--c0ffee00-0000-4000-8000-000000000009"
	e2eGranular    = "indicator--c0ffee00-0000-4000-8000-00000000000a"
	e2eCustom      = "indicator--c0ffee00-0000-4000-8000-00000000000b"
	e2eReport      = "report--c0ffee00-0000-4000-8000-00000000000c"
)

// Values only the withheld or redacted parts hold: none of them may reach
// the consumer they are kept from, in any byte of any response.
const (
	e2eRed2Secret     = "red2-secret.example"
	e2eRed1Secret     = "red1-secret.example"
	e2eGranularSecret = "granular red description e2e-7f3a"
	e2eAmberValue     = "amber-only.example"
	e2eStrictValue    = "amber-strict-only.example"
	e2eUnmarkedValue  = "unmarked-only.example"
	e2eExpiredValue   = "expired-only.example"
	e2eIndividualName = "Jane Q. Suspect-e2e"
	e2eCustomValue    = "case-4711-e2e"
)

const e2eVersion = "2026-01-01T00:00:00.000Z"

func e2eIndicator(id, domain, extra string) string {
	return `{"type":"indicator","spec_version":"2.1","id":"` + id + `","created":"` + e2eVersion + `","modified":"` + e2eVersion + `",` +
		`"name":"` + id + `","pattern":"[domain-name:value = '` + domain + `']","pattern_type":"stix","valid_from":"2026-01-01T00:00:00Z"` + extra + `}`
}

func e2eMarked(ref string) string { return `,"object_marking_refs":["` + ref + `"]` }

// e2eEnvelope is the one mixed envelope cert-a posts. The report comes
// after the objects it refers to (fan-out reads in date_added order).
func e2eEnvelope() []byte {
	objs := []string{
		e2eIndicator(e2eClear, "clear.example", e2eMarked(stix.TLP1White)),
		e2eIndicator(e2eGreen, "green.example", e2eMarked(stix.TLP2Green)),
		e2eIndicator(e2eAmber, e2eAmberValue, e2eMarked(stix.TLP1Amber)),
		e2eIndicator(e2eAmberStrict, e2eStrictValue, e2eMarked(stix.TLP2AmberStrict)),
		e2eIndicator(e2eRed2, e2eRed2Secret, e2eMarked(stix.TLP2Red)),
		e2eIndicator(e2eRed1, e2eRed1Secret, e2eMarked(stix.TLP1Red)),
		e2eIndicator(e2eUnmarked, e2eUnmarkedValue, ""),
		e2eIndicator(e2eExpired, e2eExpiredValue, e2eMarked(stix.TLP1Green)+`,"valid_until":"2026-01-02T00:00:00Z"`),
		`{"type":"identity","spec_version":"2.1","id":"` + e2eIndividual + `","created":"` + e2eVersion + `","modified":"` + e2eVersion + `",` +
			`"name":"` + e2eIndividualName + `","identity_class":"individual"` + e2eMarked(stix.TLP2Green) + `}`,
		e2eIndicator(e2eGranular, "granular.example", e2eMarked(stix.TLP2Green)+
			`,"description":"`+e2eGranularSecret+`","granular_markings":[{"marking_ref":"`+stix.TLP2Red+`","selectors":["description"]}]`),
		e2eIndicator(e2eCustom, "custom.example", e2eMarked(stix.TLP1Green)+`,"x_cert_a_case":"`+e2eCustomValue+`"`),
		`{"type":"report","spec_version":"2.1","id":"` + e2eReport + `","created":"` + e2eVersion + `","modified":"` + e2eVersion + `",` +
			`"name":"campaign report","published":"2026-01-01T00:00:00Z","object_refs":["` + e2eRed2 + `","` + e2eGreen + `"]` + e2eMarked(stix.TLP2Green) + `}`,
	}
	return []byte(`{"objects":[` + strings.Join(objs, ",") + `]}`)
}

// e2eExpect is what one consumer should see in its route's collection.
type e2eExpect struct {
	user, path, otherPath string
	full                  []string          // published unchanged
	redacted              map[string]string // id → a property that must be gone
	forbidden             []string          // strings no response to user may contain
}

func (x e2eExpect) ids() []string {
	out := slices.Clone(x.full)
	for id := range x.redacted {
		out = append(out, id)
	}
	if len(x.redacted) > 0 {
		// Published with the first redacted copy: the gateway's extension
		// definition, and its creator.
		out = append(out, policy.GatewayIdentity, policy.RedactionExtension)
	}
	slices.Sort(out)
	return out
}

// TestEndToEndDemoTopology: cert-a posts one mixed envelope to
// csirt-inbound of the demo topology; police (law-enforcement, ceiling
// AMBER, no minimisation) and prosecutor (judiciary, ceiling GREEN, drops
// individual identities and x_ properties) see exactly what their routes
// allow — through objects, object-by-id, versions and manifest — redacted
// where granular markings or minimisation say so, never each other's
// collection, and no byte of TLP:RED content.
//
// Expectations follow configs/ctigate.yaml and the policy defaults:
// unmarked objects and expired indicators are withheld, references to
// withheld objects are trimmed.
func TestEndToEndDemoTopology(t *testing.T) {
	gw := startServe(t, nil, "--config", demoConfig, "--data", t.TempDir(), "--listen", "127.0.0.1:0")
	client := &http.Client{Timeout: 10 * time.Second}
	res, b, err := request(t, client, "POST", gw.base+inboundPath+"objects/", "cert-a", e2eEnvelope())
	if err != nil || res.StatusCode != http.StatusAccepted || !strings.Contains(string(b), `"success_count":12`) {
		t.Fatalf("POST: %v %v %s", res, err, b)
	}

	redForAll := []string{e2eRed2Secret, e2eRed1Secret, e2eGranularSecret, e2eRed2, e2eRed1}
	police := e2eExpect{
		user: "police", path: lawEnforcementPath, otherPath: judiciaryPath,
		full: []string{e2eClear, e2eGreen, e2eAmber, e2eIndividual, e2eCustom},
		redacted: map[string]string{
			e2eGranular: "description",
			e2eReport:   "", // object_refs trimmed to the GREEN indicator
		},
		forbidden: append(slices.Clone(redForAll), e2eStrictValue, e2eUnmarkedValue, e2eExpiredValue,
			e2eAmberStrict, e2eUnmarked, e2eExpired),
	}
	prosecutor := e2eExpect{
		user: "prosecutor", path: judiciaryPath, otherPath: lawEnforcementPath,
		full: []string{e2eClear, e2eGreen},
		redacted: map[string]string{
			e2eGranular: "description",
			e2eCustom:   "x_cert_a_case",
			e2eReport:   "",
		},
		forbidden: append(slices.Clone(redForAll), e2eStrictValue, e2eUnmarkedValue, e2eExpiredValue,
			e2eAmberValue, e2eIndividualName, e2eCustomValue,
			e2eAmberStrict, e2eUnmarked, e2eExpired, e2eAmber, e2eIndividual),
	}
	all := []string{e2eClear, e2eGreen, e2eAmber, e2eAmberStrict, e2eRed2, e2eRed1, e2eUnmarked, e2eExpired,
		e2eIndividual, e2eGranular, e2eCustom, e2eReport}

	for _, x := range []e2eExpect{police, prosecutor} {
		t.Run(x.user, func(t *testing.T) {
			get := func(path string) (int, []byte) {
				t.Helper()
				res, b, err := request(t, client, "GET", gw.base+path, x.user, nil)
				if err != nil {
					t.Fatalf("GET %s as %s: %v", path, x.user, err)
				}
				for _, f := range x.forbidden {
					if strings.Contains(string(b), f) {
						t.Fatalf("GET %s as %s: response contains %q:\n%s", path, x.user, f, b)
					}
				}
				return res.StatusCode, b
			}
			want := x.ids()

			// Converge: poll until the route's collection holds the expected
			// set (every intermediate answer is also checked for leaks).
			var objs map[string]jsontext.Value
			deadline := time.Now().Add(30 * time.Second)
			for {
				st, b := get(x.path + "objects/")
				if st != http.StatusOK {
					t.Fatalf("GET objects as %s: %d %s", x.user, st, b)
				}
				objs = e2eObjects(t, b)
				got := slices.Sorted(mapKeys(objs))
				for _, id := range got {
					if !slices.Contains(want, id) {
						t.Fatalf("%s sees %s, which its route withholds", x.user, id)
					}
				}
				if slices.Equal(got, want) {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("%s sees\n%v\nwant\n%v", x.user, got, want)
				}
				time.Sleep(20 * time.Millisecond)
			}

			// The forms: originals unchanged, redacted ones say so.
			posted := e2eObjects(t, e2eEnvelope())
			for _, id := range x.full {
				if !e2eSameJSON(t, objs[id], posted[id]) {
					t.Errorf("%s: %s differs from what cert-a posted:\n%s", x.user, id, objs[id])
				}
			}
			for id, gone := range x.redacted {
				s := string(objs[id])
				if !strings.Contains(s, policy.RedactionExtension) {
					t.Errorf("%s: %s does not carry the redaction extension:\n%s", x.user, id, s)
				}
				var top map[string]any
				if err := json.Unmarshal(objs[id], &top); err != nil {
					t.Fatal(err)
				}
				if _, has := top[gone]; gone != "" && has {
					t.Errorf("%s: %s still has %s:\n%s", x.user, id, gone, s)
				}
			}
			var report struct {
				ObjectRefs []string `json:"object_refs"`
			}
			if err := json.Unmarshal(objs[e2eReport], &report); err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(report.ObjectRefs, []string{e2eGreen}) {
				t.Errorf("%s: report object_refs %v, want only the GREEN indicator", x.user, report.ObjectRefs)
			}

			// Object by id and versions: what the route holds, and 404 for
			// everything else.
			for _, id := range all {
				st, b := get(x.path + "objects/" + id + "/")
				vst, vb := get(x.path + "objects/" + id + "/versions/")
				if !slices.Contains(want, id) {
					if st != http.StatusNotFound || vst != http.StatusNotFound {
						t.Errorf("%s: withheld %s: object %d, versions %d; want 404 for both", x.user, id, st, vst)
					}
					continue
				}
				if st != http.StatusOK {
					t.Errorf("%s: GET %s: %d %s", x.user, id, st, b)
					continue
				}
				one := e2eObjects(t, b)
				if len(one) != 1 || !e2eSameJSON(t, one[id], objs[id]) {
					t.Errorf("%s: GET %s by id: %s, want %s", x.user, id, b, objs[id])
				}
				var v struct {
					Versions []string `json:"versions"`
				}
				if vst != http.StatusOK || json.Unmarshal(vb, &v) != nil || !slices.Equal(v.Versions, []string{e2eVersion}) {
					t.Errorf("%s: versions of %s: %d %s, want [%s]", x.user, id, vst, vb, e2eVersion)
				}
			}

			// Manifest.
			st, b := get(x.path + "manifest/")
			var m struct {
				Objects []struct {
					ID      string `json:"id"`
					Version string `json:"version"`
				} `json:"objects"`
			}
			if st != http.StatusOK || json.Unmarshal(b, &m) != nil {
				t.Fatalf("%s: manifest: %d %s", x.user, st, b)
			}
			var mids []string
			for _, e := range m.Objects {
				mids = append(mids, e.ID)
				if e.Version != e2eVersion && e.ID != policy.GatewayIdentity && e.ID != policy.RedactionExtension {
					t.Errorf("%s: manifest version of %s: %s", x.user, e.ID, e.Version)
				}
			}
			slices.Sort(mids)
			if !slices.Equal(mids, want) {
				t.Errorf("%s: manifest lists\n%v\nwant\n%v", x.user, mids, want)
			}

			// The other consumer's collection does not exist for them: 404
			// everywhere (TAXII 2.1 §5.7's rule for no read and no write).
			for _, p := range []string{"objects/", "manifest/", "objects/" + e2eGreen + "/", "objects/" + e2eGreen + "/versions/"} {
				if st, b := get(x.otherPath + p); st != http.StatusNotFound {
					t.Errorf("%s: GET %s%s: %d, want 404: %s", x.user, x.otherPath, p, st, b)
				}
			}
			// Nor the inbound collection; and the discovery resources carry
			// nothing forbidden either (get checks every body).
			if st, b := get(inboundPath + "objects/"); st != http.StatusNotFound {
				t.Errorf("%s: GET inbound objects: %d, want 404: %s", x.user, st, b)
			}
			for _, p := range []string{"/taxii2/", "/exchange/", "/exchange/collections/", x.path} {
				get(p)
			}
		})
	}
}

func mapKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// e2eObjects decodes an envelope into its objects by id; duplicates fail.
func e2eObjects(t *testing.T, b []byte) map[string]jsontext.Value {
	t.Helper()
	var env struct {
		Objects []jsontext.Value `json:"objects"`
	}
	if err := json.Unmarshal(b, &env); err != nil {
		t.Fatalf("decoding %s: %v", b, err)
	}
	out := map[string]jsontext.Value{}
	for _, o := range env.Objects {
		var x struct {
			ID string `json:"id"`
		}
		if err := json.Unmarshal(o, &x); err != nil {
			t.Fatal(err)
		}
		if _, dup := out[x.ID]; dup {
			t.Fatalf("%s appears twice in %s", x.ID, b)
		}
		out[x.ID] = o
	}
	return out
}

// e2eSameJSON reports whether a and b are the same JSON value.
func e2eSameJSON(t *testing.T, a, b jsontext.Value) bool {
	t.Helper()
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	return fmt.Sprint(x) == fmt.Sprint(y)
}
