package stix

import (
	"bytes"
	"testing"

	"github.com/go-json-experiment/json/jsontext"
)

func floor(data []byte, clone, scan, val bool) int {
	dec := jsontext.NewDecoder(bytes.NewBuffer(data))
	dec.ReadToken()
	dec.ReadValue()
	dec.ReadToken()
	n := 0
	for dec.PeekKind() != ']' {
		v, _ := dec.ReadValue()
		end := dec.InputOffset()
		raw := data[end-int64(len(v)) : end]
		if clone {
			raw = bytes.Clone(raw)
		}
		if scan {
			var m members
			scanKnown(raw, &m)
			if val {
				id, _ := idAndVersion(&m)
				validate(&m, id)
			}
		}
		n++
	}
	return n
}

func BenchmarkFloor(b *testing.B) {
	data := benchEnvelope(500)
	for _, c := range []struct {
		name             string
		clone, scan, val bool
	}{{"read", false, false, false}, {"clone", true, false, false}, {"scan", true, true, false}, {"validate", true, true, true}} {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				floor(data, c.clone, c.scan, c.val)
			}
			b.ReportMetric(float64(500*b.N)/b.Elapsed().Seconds(), "objects/s")
		})
	}
}
