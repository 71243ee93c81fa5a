package policy

import (
	"testing"

	"github.com/ctigate/ctigate/stix"
)

// BenchmarkEvaluate evaluates a typical TLP:GREEN indicator (created by a
// published identity, with external references and kill chain phases)
// for the default AMBER route: the common case, published unchanged.
//
//	go test ./policy -run '^$' -bench Evaluate -cpu 1 -benchtime 2s
func BenchmarkEvaluate(b *testing.B) {
	raw := indicator(marked(stix.TLP2Green),
		member{"created_by_ref", `"` + identID + `"`},
		member{"labels", `["c2","botnet"]`},
		member{"kill_chain_phases", `[{"kill_chain_name":"mitre-attack","phase_name":"command-and-control"}]`},
		member{"external_references", `[{"source_name":"cert-a","external_id":"CERT-A-2024-0042","url":"https://cert-a.example/advisories/2024-0042"}]`},
		member{"confidence", `80`})
	r := mustCompile(b, baseConfig())
	bench := func(b *testing.B, in Input) {
		b.SetBytes(int64(len(in.Raw)))
		b.ReportAllocs()
		for b.Loop() {
			if d := Evaluate(in, r, testNow); d.Action != Publish {
				b.Fatalf("got %s (%s)", d.Action, d.Detail)
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "objects/s")
	}
	in := input(b, raw, nil)
	in.Published = func(id string) bool { return id == identID }
	b.Run("hashed", func(b *testing.B) { bench(b, in) }) // ingest's hash given, as the fan-out has it
	b.Run("unhashed", func(b *testing.B) {
		in := in
		in.SHA256 = [32]byte{}
		bench(b, in)
	})
}
