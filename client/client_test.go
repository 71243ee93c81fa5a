package client

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-json-experiment/json/jsontext"
)

func objs(sizes ...int) []jsontext.Value {
	out := make([]jsontext.Value, len(sizes))
	for i, n := range sizes {
		pad := n - len(`{"id":"x--00000","p":""}`)
		out[i] = jsontext.Value(fmt.Sprintf(`{"id":"x--%05d","p":"%s"}`, i, strings.Repeat("a", pad)))
	}
	return out
}

func TestSplit(t *testing.T) {
	in := objs(100, 300, 5000, 200, 200, 200, 990, 985, 50)
	const limit = 1000
	envs, tooBig := Split(in, limit, 3)
	if len(tooBig) != 2 || tooBig[0] != 2 || tooBig[1] != 6 {
		t.Fatalf("tooBig = %v, want [2 6] (5000 and 990 bytes do not fit with the envelope's 14 bytes)", tooBig)
	}
	var got []jsontext.Value
	for _, e := range envs {
		if len(e) == 0 || len(e) > 3 {
			t.Errorf("envelope of %d objects", len(e))
		}
		if n := int64(len(Envelope(e))); n > limit || n != EnvelopeSize(e) {
			t.Errorf("envelope is %d bytes (size says %d), limit %d", n, EnvelopeSize(e), limit)
		}
		if !jsontext.Value(Envelope(e)).IsValid() {
			t.Errorf("invalid envelope %s", Envelope(e))
		}
		got = append(got, e...)
	}
	want := []int{0, 1, 3, 4, 5, 7, 8}
	if len(got) != len(want) {
		t.Fatalf("got %d objects back, want %d", len(got), len(want))
	}
	for i, w := range want {
		if ObjectID(got[i]) != fmt.Sprintf("x--%05d", w) {
			t.Errorf("order: got %s at %d", ObjectID(got[i]), i)
		}
	}
	// An object exactly at the limit fits on its own.
	exact := objs(limit - 14)
	if envs, tb := Split(exact, limit, 0); len(envs) != 1 || len(tb) != 0 {
		t.Errorf("exact fit: %d envelopes, tooBig %v", len(envs), tb)
	}
}

func TestBackoff(t *testing.T) {
	base, maxd := 100*time.Millisecond, 2*time.Second
	for attempt, want := range []time.Duration{100, 200, 400, 800, 1600, 2000, 2000} {
		want *= time.Millisecond
		lo := Backoff(attempt, base, maxd, func() float64 { return 0 })
		hi := Backoff(attempt, base, maxd, func() float64 { return 0.999999 })
		if lo != want/2 || hi > want || hi < want-want/1000 {
			t.Errorf("attempt %d: range [%s, %s], want [%s, %s)", attempt, lo, hi, want/2, want)
		}
	}
	if d := Backoff(100, base, maxd, func() float64 { return 0.5 }); d > maxd {
		t.Errorf("no cap: %s", d)
	}
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	if d, ok := RetryAfter("3", now); !ok || d != 3*time.Second {
		t.Errorf("seconds: %s %v", d, ok)
	}
	if d, ok := RetryAfter(now.Add(5*time.Second).Format(http.TimeFormat), now); !ok || d != 5*time.Second {
		t.Errorf("date: %s %v", d, ok)
	}
	if _, ok := RetryAfter("soon", now); ok {
		t.Error("garbage accepted")
	}
}

func testClient(t *testing.T, h http.HandlerFunc) (*Client, *[]time.Duration) {
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	c, err := New(srv.URL+"/taxii2/", "root", Credentials{Token: "tok"})
	if err != nil {
		t.Fatal(err)
	}
	var slept []time.Duration
	c.Sleep = func(_ context.Context, d time.Duration) error { slept = append(slept, d); return nil }
	c.MaxAttempts = 4
	return c, &slept
}

func TestDoRetries(t *testing.T) {
	var n atomic.Int32
	c, slept := testClient(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer tok" || r.URL.Path != "/root/" {
			t.Errorf("request %s %s", r.URL.Path, r.Header.Get("Authorization"))
		}
		switch n.Add(1) {
		case 1:
			w.WriteHeader(503)
		case 2:
			w.Header().Set("Retry-After", "7")
			w.WriteHeader(429)
		default:
			fmt.Fprint(w, `{"max_content_length":2048}`)
		}
	})
	limit, err := c.MaxContentLength(context.Background())
	if err != nil || limit != 2048 || c.Retries() != 2 {
		t.Fatalf("limit %d err %v retries %d", limit, err, c.Retries())
	}
	if len(*slept) != 2 || (*slept)[1] != 7*time.Second {
		t.Errorf("slept %v; want the second wait to honour Retry-After: 7", *slept)
	}
}

func TestDoNoRetryOn4xxAndBounded(t *testing.T) {
	var n atomic.Int32
	c, _ := testClient(t, func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		if r.Method == http.MethodPost {
			w.WriteHeader(400)
			fmt.Fprint(w, `{"title":"bad","description":"nope"}`)
			return
		}
		w.WriteHeader(502)
	})
	_, err := c.Post(context.Background(), "col", []byte(`{"objects":[{}]}`), 0, 1)
	if err == nil || !strings.Contains(err.Error(), "HTTP 400: bad: nope") || n.Load() != 1 {
		t.Fatalf("400: err %v after %d requests", err, n.Load())
	}
	n.Store(0)
	if _, err := c.MaxContentLength(context.Background()); err == nil || n.Load() != 4 {
		t.Fatalf("502: err %v after %d requests, want 4", err, n.Load())
	}
}

func TestPostFollowsPendingStatus(t *testing.T) {
	var polls atomic.Int32
	c, _ := testClient(t, func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Method == http.MethodPost:
			w.WriteHeader(202)
			fmt.Fprint(w, `{"id":"s1","status":"pending","total_count":2,"pending_count":2}`)
		case r.URL.Path == "/root/status/s1/" && polls.Add(1) < 3:
			fmt.Fprint(w, `{"id":"s1","status":"pending","total_count":2,"success_count":1,"pending_count":1}`)
		case r.URL.Path == "/root/status/s1/":
			fmt.Fprint(w, `{"id":"s1","status":"complete","total_count":2,"success_count":1,"failure_count":1,"failures":[{"id":"x--1","version":"v","message":"bad"}]}`)
		}
	})
	st, err := c.Post(context.Background(), "col", []byte(`{"objects":[{},{}]}`), time.Millisecond, 10)
	if err != nil || st.Status != "complete" || st.SuccessCount != 1 || len(st.Failures) != 1 || polls.Load() != 3 {
		t.Fatalf("status %+v err %v polls %d", st, err, polls.Load())
	}
}

func TestReadObjects(t *testing.T) {
	for name, in := range map[string]string{
		"bundle":   `{"type":"bundle","id":"bundle--1","objects":[ {"id":"a--1"}, {"id":"a--2"} ]}`,
		"envelope": "{\n \"more\": false, \"objects\": [{\"id\":\"a--1\"},{\"id\":\"a--2\"}]\n}",
		"jsonl":    "{\"id\":\"a--1\"}\n\n{\"id\": \"a--2\"}\n",
	} {
		got, err := ReadObjects([]byte(in))
		if err != nil || len(got) != 2 || string(got[1]) != `{"id":"a--2"}` {
			t.Errorf("%s: %q %v", name, got, err)
		}
	}
	if got, err := ReadObjects([]byte(`{"id":"a--1"}`)); err != nil || len(got) != 1 {
		t.Errorf("one line: %q %v", got, err)
	}
	if _, err := ReadObjects([]byte("{\"id\":\"a--1\"}\n[1]\n")); err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Errorf("bad line: %v", err)
	}
}

func TestNewRefusesURLCredentials(t *testing.T) {
	_, err := New("http://u:secret@h/", "r", Credentials{})
	if err == nil || strings.Contains(err.Error(), "secret") {
		t.Fatalf("err %v", err)
	}
	if s := fmt.Sprint(Credentials{User: "u", Password: "secret"}, Credentials{Token: "secret"}); strings.Contains(s, "secret") {
		t.Fatalf("credentials printed: %s", s)
	}
}
