package main

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// rewriteConfig writes the demo configuration, changed by edit, to path.
func rewriteConfig(t *testing.T, path string, edit func(cfg map[string]any)) {
	t.Helper()
	b, err := os.ReadFile(demoVariant(t, edit))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// copyFile copies src over dst.
func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// certDER is the DER of the PEM certificate in file.
func certDER(t *testing.T, file string) []byte {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		t.Fatalf("%s holds no PEM block", file)
	}
	return blk.Bytes
}

// servedCert is the certificate a new TLS connection to base is shown.
func servedCert(t *testing.T, base string) []byte {
	t.Helper()
	conn, err := tls.Dial("tcp", strings.TrimPrefix(base, "https://"), &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0].Raw
}

// startPost starts a POST of size bytes to CERT-A's inbound collection
// of the gateway at base (http or https: any certificate) as cert-a,
// waits until the handler reads its body (the request expects 100
// Continue), and sends one byte of it; it returns the connection and a
// reader of the responses that follow.
func startPost(t *testing.T, base string, size int) (net.Conn, *bufio.Reader) {
	t.Helper()
	host, tlsOn := strings.CutPrefix(base, "https://")
	var (
		conn net.Conn
		err  error
	)
	if tlsOn {
		conn, err = tls.Dial("tcp", host, &tls.Config{InsecureSkipVerify: true})
	} else {
		conn, err = net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	req, _ := http.NewRequest("POST", base+inboundPath+"objects/", nil)
	req.SetBasicAuth("cert-a", demoPassword)
	head := fmt.Sprintf("POST %s HTTP/1.1\r\nHost: %s\r\nAccept: application/taxii+json;version=2.1\r\n"+
		"Content-Type: application/taxii+json;version=2.1\r\nContent-Length: %d\r\nAuthorization: %s\r\nExpect: 100-continue\r\n\r\n",
		req.URL.Path, req.URL.Host, size, req.Header.Get("Authorization"))
	if _, err := io.WriteString(conn, head); err != nil {
		t.Fatal(err)
	}
	rd := bufio.NewReader(conn)
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	status, err := rd.ReadString('\n')
	if err != nil || !strings.Contains(status, " 100 ") {
		t.Fatalf("POST: got %q %v, want 100 Continue", status, err)
	}
	for line := status; line != "\r\n"; {
		if line, err = rd.ReadString('\n'); err != nil {
			t.Fatal(err)
		}
	}
	_ = conn.SetReadDeadline(time.Time{})
	if _, err := io.WriteString(conn, "{"); err != nil {
		t.Fatal(err)
	}
	return conn, rd
}

// TestSIGHUPReloadsLogLevelTLSAndLimits: SIGHUP puts in force what the
// configuration file alone owns: the log level (request lines appear once
// it is info), the TLS certificate (new connections are shown the one now
// in the certificate file, under the same name) and the request limits
// (server.min_body_rate turned on: a body at 1 byte/s gets a TAXII 408).
// A configuration that does not load (a broken certificate file, a log
// format change) is refused, logged, and the one in force stays.
func TestSIGHUPReloadsLogLevelTLSAndLimits(t *testing.T) {
	cert1, key1, _ := selfSigned(t)
	cert2, key2, _ := selfSigned(t)
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	copyFile(t, cert1, certFile)
	copyFile(t, key1, keyFile)
	edit := func(level, format string, rate int) func(cfg map[string]any) {
		return func(cfg map[string]any) {
			cfg["log"] = map[string]any{"level": level, "format": format}
			cfg["tls"] = map[string]any{"cert_file": certFile, "key_file": keyFile}
			cfg["server"] = map[string]any{"min_body_rate": rate, "min_body_rate_grace": "1s", "min_body_rate_window": "1s"}
		}
	}
	path := filepath.Join(dir, "ctigate.yaml")
	rewriteConfig(t, path, edit("warn", "text", 0))
	var log lockedBuffer
	gw := startServeLog(t, nil, &log, "--config", path, "--data", t.TempDir(), "--listen", "127.0.0.1:0")
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	get := func() {
		t.Helper()
		if res, b, err := request(t, client, "GET", gw.base+"/taxii2/", "police", nil); err != nil || res.StatusCode != http.StatusOK {
			t.Fatalf("discovery: %v %v %s", res, err, b)
		}
	}
	requestLines := func() int { return strings.Count(log.String(), "msg=request ") }
	hup := func() {
		t.Helper()
		if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
	}
	get()
	if n := requestLines(); n != 0 {
		t.Fatalf("%d request lines logged at level warn", n)
	}
	if !bytes.Equal(servedCert(t, gw.base), certDER(t, cert1)) {
		t.Fatal("the gateway does not show the configured certificate")
	}
	// Limits off: a body at 1 byte/s is still being read after 2.5 s.
	conn, rd := startPost(t, gw.base, 1000)
	_ = conn.SetReadDeadline(time.Now().Add(2500 * time.Millisecond))
	if res, err := http.ReadResponse(rd, nil); err == nil {
		t.Fatalf("with server.min_body_rate 0, a stalled body was answered %d", res.StatusCode)
	}
	conn.Close()

	// The reload: level info, the certificate renewed under the same
	// file names, the body rate checked.
	copyFile(t, cert2, certFile)
	copyFile(t, key2, keyFile)
	rewriteConfig(t, path, edit("info", "text", 100))
	hup()
	waitFor(t, "the configuration reloaded", 10*time.Second, func() bool { return strings.Contains(log.String(), "configuration reloaded") })
	if l := log.String(); !strings.Contains(l, "log_level=info") || !strings.Contains(l, "tls_not_after=") {
		t.Errorf("the reload's log line names neither level nor certificate:\n%s", l)
	}
	get()
	if n := requestLines(); n != 1 {
		t.Errorf("%d request lines after the level became info, want 1", n)
	}
	if !bytes.Equal(servedCert(t, gw.base), certDER(t, cert2)) {
		t.Error("after the reload, new connections are not shown the renewed certificate")
	}
	conn, rd = startPost(t, gw.base, 1000)
	start := time.Now()
	_ = conn.SetReadDeadline(time.Now().Add(6 * time.Second))
	res, err := http.ReadResponse(rd, nil)
	if err != nil {
		t.Fatalf("with server.min_body_rate 100, a stalled body got no answer within 6 s: %v", err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusRequestTimeout || !strings.Contains(string(b), `"http_status":"408"`) {
		t.Errorf("stalled body after the reload: %d %s, want a TAXII 408", res.StatusCode, b)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("the 408 took %v; grace and window are 2 s", took)
	}

	// Refused: a certificate file that does not parse, then a log format
	// change (which needs a restart). What is in force stays.
	refused := func() int { return strings.Count(log.String(), "configuration not reloaded") }
	if err := os.WriteFile(certFile, []byte("not a certificate\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	rewriteConfig(t, path, edit("warn", "text", 100))
	hup()
	waitFor(t, "the broken certificate refused", 10*time.Second, func() bool { return refused() == 1 })
	if !strings.Contains(log.String(), "tls.cert_file") {
		t.Errorf("the refusal does not name tls.cert_file:\n%s", log.String())
	}
	copyFile(t, cert1, certFile)
	rewriteConfig(t, path, edit("warn", "json", 100))
	hup()
	waitFor(t, "the log format change refused", 10*time.Second, func() bool { return refused() == 2 })
	if !strings.Contains(log.String(), "log.format changed: restart") {
		t.Errorf("the refusal does not name log.format:\n%s", log.String())
	}
	if n := strings.Count(log.String(), "configuration reloaded"); n != 1 {
		t.Errorf("%d reloads logged, want 1", n)
	}
	before := requestLines()
	get()
	if requestLines() != before+1 {
		t.Error("a refused reload changed the log level")
	}
	if !bytes.Equal(servedCert(t, gw.base), certDER(t, cert2)) {
		t.Error("a refused reload changed the certificate shown")
	}
}

// TestSIGHUPWhileStopping: SIGHUP while serve finishes the requests under
// way after SIGTERM (when configuration reloads have already stopped)
// does not end the process: it stops cleanly, exit status 0, once the
// request ends.
func TestSIGHUPWhileStopping(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	dir := t.TempDir()
	exe := filepath.Join(dir, "ctigate")
	if out, err := exec.Command("go", "build", "-o", exe, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	cfg := demoVariant(t, func(cfg map[string]any) {
		cfg["server"] = map[string]any{"min_body_rate": 0} // the request below waits as long as the test
	})
	var log lockedBuffer
	cmd := exec.Command(exe, "serve", "--config", cfg, "--data", filepath.Join(dir, "data"), "--listen", "127.0.0.1:0")
	cmd.Env = childEnv()
	cmd.Stderr = &log
	srv := startServed(t, cmd, log.String)
	base := srv.base

	// A request under way: its body has not all arrived.
	conn, rd := startPost(t, base, 1000)
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "serve finishing requests", 10*time.Second, func() bool {
		return strings.Contains(log.String(), "shutting down: finishing requests under way")
	})
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	select {
	case <-srv.exited:
		t.Fatalf("serve ended on SIGHUP while stopping: %v\n%s", srv.err, log.String())
	case <-time.After(500 * time.Millisecond):
	}
	// The client gives up: the request ends, and serve with it.
	conn.Close()
	_, _ = rd.ReadByte()
	select {
	case <-srv.exited:
		if srv.err != nil {
			t.Fatalf("serve: %v\n%s", srv.err, log.String())
		}
	case <-time.After(45 * time.Second):
		t.Fatalf("serve did not stop within 45 s of its last request:\n%s", log.String())
	}
	if !strings.Contains(log.String(), "msg=stopped") {
		t.Errorf("serve did not log its clean stop:\n%s", log.String())
	}
}
