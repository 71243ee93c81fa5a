package pattern

import "testing"

// benchPatterns are typical indicator patterns, most of them single
// observables as CSIRT feeds send them.
var benchPatterns = []struct{ name, pattern string }{
	{"ipv4", `[ipv4-addr:value = '198.51.100.7']`},
	{"sha256", `[file:hashes.'SHA-256' = 'aec070645fe53ee3b3763059376134f058cc337247c978add178b6ccdfb0019f']`},
	{"url-and-domain", `[url:value = 'http://x.example/a'] AND [domain-name:value = 'x.example']`},
	{"domain-or-ips", `[domain-name:value = 'www.webserver.dynssl.com' OR ipv4-addr:value = '113.10.246.30' OR ipv4-addr:value = '219.90.112.203']`},
	{"followedby-within", `[file:hashes.MD5 = '79054025255fb1a26e4bc422aef54eb4'] FOLLOWEDBY [windows-registry-key:key = 'HKEY_LOCAL_MACHINE\\foo\\bar'] WITHIN 300 SECONDS`},
}

// BenchmarkParse parses the typical patterns in turn and reports
// patterns/s.
func BenchmarkParse(b *testing.B) {
	b.ReportAllocs()
	n, size := 0, 0
	for b.Loop() {
		s := benchPatterns[n%len(benchPatterns)].pattern
		if _, err := Parse(s); err != nil {
			b.Fatal(err)
		}
		n++
		size += len(s)
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "patterns/s")
	b.ReportMetric(float64(size)/float64(n), "B/pattern")
}

// BenchmarkParseEach parses each typical pattern on its own.
func BenchmarkParseEach(b *testing.B) {
	for _, bp := range benchPatterns {
		b.Run(bp.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(bp.pattern)))
			n := 0
			for b.Loop() {
				if _, err := Parse(bp.pattern); err != nil {
					b.Fatal(err)
				}
				n++
			}
			b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "patterns/s")
		})
	}
}

// BenchmarkParseObservables is what the search index does per indicator.
func BenchmarkParseObservables(b *testing.B) {
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		p, err := Parse(benchPatterns[n%len(benchPatterns)].pattern)
		if err != nil {
			b.Fatal(err)
		}
		if len(p.Observables()) == 0 {
			b.Fatal("no observables")
		}
		n++
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "patterns/s")
}
