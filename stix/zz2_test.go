package stix

import (
	"bytes"
	"testing"
)

func oneObj() []byte {
	data := benchEnvelope(2)
	i := bytes.Index(data, []byte(`},{`))
	return data[len(`{"objects":[`) : i+1]
}

func BenchmarkScanKnown(b *testing.B) {
	raw := oneObj()
	b.SetBytes(int64(len(raw)))
	for b.Loop() {
		var m members
		scanKnown(raw, &m)
	}
}
func BenchmarkValidate(b *testing.B) {
	raw := oneObj()
	var m members
	scanKnown(raw, &m)
	b.ReportAllocs()
	for b.Loop() {
		id, _ := idAndVersion(&m)
		validate(&m, id)
	}
}
func BenchmarkParseTS(b *testing.B) {
	s := []byte("2025-03-04T05:06:07.123Z")
	for b.Loop() {
		parseTimestamp(s)
	}
}
func BenchmarkUUID(b *testing.B) {
	s := []byte("e2e1a340-4415-4ba8-9671-f7343fbf0836")
	for b.Loop() {
		uuidProblem(s)
	}
}
