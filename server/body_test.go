package server_test

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/go-json-experiment/json"

	"github.com/ctigate/ctigate/config"
)

// slowLimits: 100 bytes/s over 1 s windows, the first window 1 s longer.
func slowLimits(c *config.Config) {
	c.Server = config.ServerLimits{MinBodyRate: 100, MinBodyRateGrace: time.Second, MinBodyRateWindow: time.Second}
}

// rawPost opens a connection to g, sends the headers of a POST of an
// envelope of size bytes to the inbound collection (as user, "" for none)
// and returns the connection and a reader of its responses.
func rawPost(t *testing.T, g *gateway, user string, size int) (net.Conn, *bufio.Reader) {
	t.Helper()
	u, err := url.Parse(g.URL)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	head := "POST " + inbound + "objects/ HTTP/1.1\r\nHost: " + u.Host + "\r\n" +
		"Accept: application/taxii+json;version=2.1\r\nContent-Type: application/taxii+json;version=2.1\r\n" +
		fmt.Sprintf("Content-Length: %d\r\n", size)
	if user != "" {
		head += "Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+user+"-pw")) + "\r\n"
	}
	if _, err := io.WriteString(conn, head+"\r\n"); err != nil {
		t.Fatal(err)
	}
	return conn, bufio.NewReader(conn)
}

// TestSlowBodyGets408: a client that sends its body at 1 byte/s, below
// server.min_body_rate, gets a TAXII 408 once the grace and one window
// have passed, and its connection is closed; a client sending at a few
// hundred bytes/s in bursts, and a normal POST, are served.
func TestSlowBodyGets408(t *testing.T) {
	g := newGateway(t, slowLimits)
	body := env(indicator(1, "2026-01-01T00:00:00.000Z"))

	conn, rd := rawPost(t, g, "cert-a", len(body))
	start := time.Now()
	sent := make(chan struct{})
	go func() {
		defer close(sent)
		for i := 0; i < len(body); i++ {
			if _, err := conn.Write(body[i : i+1]); err != nil {
				return // the server closed the connection
			}
			time.Sleep(time.Second)
		}
	}()
	_ = conn.SetReadDeadline(time.Now().Add(6 * time.Second))
	res, err := http.ReadResponse(rd, nil)
	if err != nil {
		t.Fatalf("no answer to a body sent at 1 byte/s within 6 s: %v", err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	took := time.Since(start)
	if res.StatusCode != http.StatusRequestTimeout {
		t.Fatalf("slow body: %d %s, want 408", res.StatusCode, b)
	}
	if took < 1500*time.Millisecond || took > 5*time.Second {
		t.Errorf("the 408 came after %v; grace and window are 2 s", took)
	}
	r := response{Status: res.StatusCode, Header: res.Header, Body: b}
	if e := r.expectError(t, http.StatusRequestTimeout); !strings.Contains(e.Description, "server.min_body_rate") {
		t.Errorf("408 description %q does not name the setting", e.Description)
	}
	if !res.Close {
		t.Error("the 408 does not close the connection")
	}
	// The connection ends: the next read sees its end, not another answer.
	if _, err := rd.ReadByte(); err == nil {
		t.Error("the connection stays open after the 408")
	}
	conn.Close()
	<-sent

	// 400 bytes/s in bursts of 200 every half second: above the rate.
	body = env(indicator(2, "2026-01-01T00:00:00.000Z"), indicator(3, "2026-01-01T00:00:00.000Z"), indicator(4, "2026-01-01T00:00:00.000Z"))
	conn, rd = rawPost(t, g, "cert-a", len(body))
	go func() {
		for i := 0; i < len(body); i += 200 {
			if _, err := conn.Write(body[i:min(i+200, len(body))]); err != nil {
				return
			}
			time.Sleep(500 * time.Millisecond)
		}
	}()
	_ = conn.SetReadDeadline(time.Now().Add(8 * time.Second))
	res, err = http.ReadResponse(rd, nil)
	if err != nil {
		t.Fatalf("a body at 400 bytes/s: %v", err)
	}
	b, _ = io.ReadAll(res.Body)
	res.Body.Close()
	var st status
	if res.StatusCode != http.StatusAccepted || json.Unmarshal(b, &st) != nil || st.SuccessCount != 3 {
		t.Fatalf("a body at 400 bytes/s: %d %s, want 202 with 3 successes", res.StatusCode, b)
	}

	// A normal POST, and a read after it on the same gateway.
	g.post(inbound+"objects/", "cert-a", env(indicator(5, "2026-01-01T00:00:00.000Z"))).expect(t, http.StatusAccepted, nil)
	var e envelope
	g.get(inbound+"objects/", "cert-a").expect(t, http.StatusOK, &e)
	if len(e.Objects) != 4 {
		t.Errorf("%d objects stored, want 4", len(e.Objects))
	}
}

// TestSlowBodyUnauthenticated: the answer to a request whose body the
// gateway does not read (here a 401) comes at once and closes the
// connection, rather than after net/http has read the rest of the body at
// the client's pace.
func TestSlowBodyUnauthenticated(t *testing.T) {
	g := newGateway(t, slowLimits)
	conn, rd := rawPost(t, g, "", 1000)
	if _, err := conn.Write(bytes.Repeat([]byte(" "), 10)); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(3 * time.Second))
	res, err := http.ReadResponse(rd, nil)
	if err != nil {
		t.Fatalf("no answer within 3 s to an unauthenticated POST whose body is not sent: %v", err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	response{Status: res.StatusCode, Header: res.Header, Body: b}.expectError(t, http.StatusUnauthorized)
	if !res.Close {
		t.Error("the 401 to a request with an unread body keeps the connection")
	}
}
