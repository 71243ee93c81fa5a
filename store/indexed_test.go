package store

import (
	"testing"

	"github.com/go-json-experiment/json"
)

var indexedLines = []string{
	`{"action":"received","collection":"24f70a31-7be5-4fdd-8353-9784877646c1","nonce":"yPBNb0I3asVqjGe4BOIK1g","object_id":"indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f","object_version":"2026-11-20T09:00:00.000Z","org":"CERT-A","prev":"6279418017afa1437ec1b7cabae84f6d6f354a2af18075643321208c4a33566a","seq":12,"sha256":"b54c72c1","time":"2026-12-06T21:09:13.145330Z","user":"cert-a","hash":"4c2af7511c9e7c6bfd8454ff215a2a39601f2c0f819efcaea35af045dfa4b999"}`,
	`{"action":"delivered","collection":"c","count":3,"first_added":"2026-01-01T00:00:00.000001Z","last_added":"2026-01-01T00:00:00.000003Z","removed":["a","b\n"],"seq":7,"hash":"h","ok":true,"no":false,"nil":null,"f":-1.5e+3}`,
	`{"action":"withheld","detail":{"nested":[1,{"x":"y"}]},"seq":9}`,
	`{"seq":1,"object_id":"indicator--\u00e9\"q","hash":""}`,
	`{"reason":"caf\u00e9 \ud83d\ude00","seq":2}`,
	`{"reason":"\ud83d","seq":2}`,
	`{}`,
	`{"seq":1,"seq":2}`,
	`{"nonce":"a","nonce":"b"}`,
	`{"seq":"1"}`,
	`{"seq":-1}`,
	`{"seq":1.5}`,
	`{"seq":1e2}`,
	`{"seq":01}`,
	`{"count":01}`,
	`{"count":1.}`,
	`{"count":tru}`,
	`{"action":7}`,
	`{"hash":null}`,
	`[1]`,
	`{"seq":1} {}`,
	`{"seq":1}x`,
	`{"seq":1`,
	`{"seq" :1}`,
	`{ "seq":1}`,
	``,
	`{`,
	`{"seq":18446744073709551615,"action":"x"}`,
	`{"seq":18446744073709551616}`,
	"{\"action\":\"a\x01\"}",
	"{\"action\":\"\xff\"}",
	`{"removed":[],"seq":3}`,
	`{"removed":[[1]],"seq":3}`,
	`{"removed":[1,],"seq":3}`,
}

// TestDecodeIndexed: decodeIndexed reads what json.Unmarshal into an
// indexed reads, and refuses what it refuses; the lines of the ledger's
// usual form take the fast path.
func TestDecodeIndexed(t *testing.T) {
	for _, line := range indexedLines {
		checkDecodeIndexed(t, []byte(line))
	}
	var e IndexedEntry
	for _, line := range indexedLines[:2] {
		if !fastIndexed([]byte(line), &e) {
			t.Errorf("%s: not read by the fast path", line)
		}
	}
}

func checkDecodeIndexed(t *testing.T, line []byte) {
	t.Helper()
	var want, got, fast IndexedEntry
	werr := json.Unmarshal(line, &want)
	gerr := decodeIndexed(line, &got)
	if (werr == nil) != (gerr == nil) {
		t.Fatalf("%q: decodeIndexed error %v, json.Unmarshal error %v", line, gerr, werr)
	}
	if werr == nil && got != want {
		t.Fatalf("%q: decodeIndexed %+v, json.Unmarshal %+v", line, got, want)
	}
	if fastIndexed(line, &fast) && (werr != nil || fast != want) {
		t.Fatalf("%q: the fast path read %+v; json.Unmarshal %+v, %v", line, fast, want, werr)
	}
}

func FuzzDecodeIndexed(f *testing.F) {
	for _, line := range indexedLines {
		f.Add([]byte(line))
	}
	f.Fuzz(func(t *testing.T, line []byte) { checkDecodeIndexed(t, line) })
}

// BenchmarkDecodeIndexed: a received entry's line, by json.Unmarshal and
// by decodeIndexed.
//
//	go test ./store -run '^$' -bench DecodeIndexed
func BenchmarkDecodeIndexed(b *testing.B) {
	line := []byte(indexedLines[0])
	b.Run("unmarshal", func(b *testing.B) {
		for b.Loop() {
			var e IndexedEntry
			if err := json.Unmarshal(line, &e); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("decodeIndexed", func(b *testing.B) {
		for b.Loop() {
			var e IndexedEntry
			if err := decodeIndexed(line, &e); err != nil {
				b.Fatal(err)
			}
		}
	})
}
