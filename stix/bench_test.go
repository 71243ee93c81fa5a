package stix

import (
	"bytes"
	"fmt"
	"testing"
)

// benchEnvelope returns a compact envelope of n realistic indicators of
// about 450 bytes each, every one with its own id and timestamps.
func benchEnvelope(n int) []byte {
	var b bytes.Buffer
	b.WriteString(`{"objects":[`)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		ts := fmt.Sprintf("2025-%02d-%02dT%02d:%02d:%02d.%03dZ", 1+i%12, 1+i%28, i%24, i%60, (i*7)%60, i%1000)
		fmt.Fprintf(&b, `{"type":"indicator","spec_version":"2.1",`+
			`"id":"indicator--%08x-%04x-4%03x-%x%03x-%012x",`+
			`"created":"%s","modified":"%s",`+
			`"name":"C2 server 198.51.%d.%d",`+
			`"indicator_types":["malicious-activity"],`+
			`"pattern":"[ipv4-addr:value = '198.51.%d.%d']","pattern_type":"stix",`+
			`"valid_from":"%s","confidence":85,`+
			`"object_marking_refs":["marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da"]}`,
			0x9a000000+i*7919, i&0xffff, i&0xfff, 8+i%4, i&0xfff, 0x5e0000000000+i*104729,
			ts, ts,
			i/256, i%256,
			i/256, i%256,
			ts)
	}
	b.WriteString(`]}`)
	return b.Bytes()
}

func BenchmarkDecodeEnvelope(b *testing.B) {
	const n = 500
	data := benchEnvelope(n)
	items, err := DecodeEnvelope(data)
	if err != nil {
		b.Fatal(err)
	}
	for _, it := range items {
		if it.Err != nil {
			b.Fatal(it.Err)
		}
	}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := DecodeEnvelope(data); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "objects/s")
	b.ReportMetric(float64(len(data))/n, "bytes/object")
}

// BenchmarkDecodeEnvelopeDuplicate measures the careful path: the same
// envelope, but its last object repeats a member name, which sends the
// whole envelope through per-object strict decoding.
func BenchmarkDecodeEnvelopeDuplicate(b *testing.B) {
	const n = 500
	data := benchEnvelope(n)
	data = append(data[:len(data)-len(`}]}`)], `,"pattern_type":"stix"}]}`...)
	items, err := DecodeEnvelope(data)
	if err != nil {
		b.Fatal(err)
	}
	if items[n-1].Err == nil || items[0].Err != nil {
		b.Fatalf("want only the last object to fail; got %v, %v", items[0].Err, items[n-1].Err)
	}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeEnvelope(data); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "objects/s")
}

// BenchmarkIngestPipeline is what ingest does to each object before the
// store: strict decoding and per-type validation (DecodeEnvelope, patterns
// parsed), marking resolution and the RFC 8785 hash (ResolveHash). Run it
// with -cpu 1 for the one-core figure.
func BenchmarkIngestPipeline(b *testing.B) {
	const n = 500
	data := benchEnvelope(n)
	m := NewMarkings()
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		items, err := DecodeEnvelope(data)
		if err != nil {
			b.Fatal(err)
		}
		for i := range items {
			if items[i].Err != nil {
				b.Fatal(items[i].Err)
			}
			res, _, err := m.ResolveHash(items[i].Raw)
			if err != nil || res.TLP != TLPGreen {
				b.Fatalf("resolve: %v %v", res.TLP, err)
			}
		}
	}
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "objects/s")
}
