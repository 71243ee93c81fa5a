package load

import (
	"bytes"
	"context"
	"testing"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
)

// FuzzCountEnvelope checks that countEnvelope never panics and agrees with
// a full JSON decoder on every well-formed envelope.
func FuzzCountEnvelope(f *testing.F) {
	for _, s := range []string{
		`{"more":false}`,
		`{"more":true,"next":"a\"b","objects":[{},{"x":[1,{"y":"]},{"}]},{"z":null}]}`,
		`{"objects":[{"a":"\\"},{"b":"\\\"}"},{"c":"[{"}],"more":true,"next":"x\u0041"}`,
		` { "objects" : [ { "id" : "x" } ] , "more" : false } `,
		`{"objects":[{}],"x":[1,2,{"y":[]}],"z":-1.5e3,"w":null}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := countEnvelope(b)
		// The oracle: a strict decoder, and TAXII's types for the members.
		var members map[string]jsontext.Value
		if t := bytes.TrimLeft(b, " \t\r\n"); len(t) == 0 || t[0] != '{' || json.Unmarshal(b, &members) != nil {
			return // not a well-formed envelope: any error (or none) will do
		}
		var want struct {
			More    bool             `json:"more"`
			Next    string           `json:"next"`
			Objects []jsontext.Value `json:"objects"`
		}
		kinds := map[string]jsontext.Kind{"more": 't', "next": '"', "objects": '['}
		for name, kind := range kinds {
			if v, ok := members[name]; ok && v.Kind() != kind && !(kind == 't' && v.Kind() == 'f') {
				return
			}
		}
		if json.Unmarshal(b, &want) != nil {
			return
		}
		for _, o := range want.Objects {
			if o.Kind() != '{' {
				return
			}
		}
		if err != nil {
			t.Fatalf("%q: countEnvelope: %v", b, err)
		}
		if got.objects != len(want.Objects) || got.more != want.More || got.next != want.Next {
			t.Fatalf("%q: got %+v, want %d objects, more %v, next %q", b, got, len(want.Objects), want.More, want.Next)
		}
	})
}

// BenchmarkCountEnvelope measures the consumer's cost per page of 1000
// generated indicators.
func BenchmarkCountEnvelope(b *testing.B) {
	envs, err := generate(context.Background(), 1000, 1000, 2)
	if err != nil {
		b.Fatal(err)
	}
	body := append([]byte(`{"more":true,"next":"MTIzNDU2Nzg5MDEyMzQ1Njc4OTA","objects":`), bytes.TrimSuffix(bytes.TrimPrefix(envs[0].body, []byte(`{"objects":`)), []byte("}"))...)
	body = append(body, '}')
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		p, err := countEnvelope(body)
		if err != nil || p.objects != 1000 {
			b.Fatal(p, err)
		}
	}
}
