package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ctigate/ctigate/config"
	"github.com/ctigate/ctigate/fanout"
	"github.com/ctigate/ctigate/policy"
	"github.com/ctigate/ctigate/store/bolt"
)

// TestGracefulShutdownFinishesRequests: a POST still being uploaded when
// the server is told to stop completes (202, objects stored), and serve
// then returns cleanly with the store closed and fan-out drained.
func TestGracefulShutdownFinishesRequests(t *testing.T) {
	data := t.TempDir()
	args := []string{"--config", demoConfig, "--data", data, "--listen", "127.0.0.1:0"}
	gw := startServe(t, nil, args...)

	objs := make([]string, 50)
	for i := range objs {
		objs[i] = indicatorJSON(i)
	}
	body := []byte(`{"objects":[` + strings.Join(objs, ",") + `]}`)
	pr, pw := io.Pipe()
	req, _ := http.NewRequest("POST", gw.base+inboundPath+"objects/", pr)
	req.ContentLength = int64(len(body))
	req.Header.Set("Accept", "application/taxii+json;version=2.1")
	req.Header.Set("Content-Type", "application/taxii+json;version=2.1")
	req.SetBasicAuth("cert-a", "cert-a-demo")
	type result struct {
		code int
		body []byte
		err  error
	}
	resc := make(chan result, 1)
	go func() {
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			resc <- result{err: err}
			return
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		resc <- result{code: res.StatusCode, body: b}
	}()
	half := len(body) / 2
	if _, err := pw.Write(body[:half]); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond) // the request is in flight
	gw.cancel()
	time.Sleep(100 * time.Millisecond) // shutdown has begun
	if _, err := pw.Write(body[half:]); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	r := <-resc
	if r.err != nil || r.code != 202 || !bytes.Contains(r.body, []byte(`"success_count":50`)) {
		t.Fatalf("in-flight POST: %d %s %v", r.code, r.body, r.err)
	}
	if err := <-gw.done; err != nil {
		t.Fatalf("serve: %v", err)
	}
	gw.cancel = nil
	checkDrained(t, data)

	// Everything is there after a restart.
	gw2 := startServe(t, nil, args...)
	res, b, err := request(t, http.DefaultClient, "GET", gw2.base+inboundPath+"manifest/", "cert-a", nil)
	if err != nil || res.StatusCode != 200 || bytes.Count(b, []byte(`"date_added"`)) != 50 {
		t.Fatalf("after restart: %v %.200s", err, b)
	}
}

// TestServeClientCertificates: with tls.client_ca_file, a client without a
// certificate signed by that CA cannot connect.
func TestServeClientCertificates(t *testing.T) {
	certFile, keyFile, pool := selfSigned(t)

	// A client CA and a client certificate it signed.
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "police CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	clKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	clTmpl := &x509.Certificate{SerialNumber: big.NewInt(3), Subject: pkix.Name{CommonName: "police system"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	clDER, err := x509.CreateCertificate(rand.Reader, clTmpl, caCert, &clKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	env := func(k string) string {
		return map[string]string{"CTIGATE_TLS_CERT_FILE": certFile, "CTIGATE_TLS_KEY_FILE": keyFile, "CTIGATE_TLS_CLIENT_CA_FILE": caFile}[k]
	}
	gw := startServe(t, env, "--config", demoConfig, "--data", t.TempDir(), "--listen", "127.0.0.1:0")

	without := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	if _, _, err := request(t, without, "GET", gw.base+"/taxii2/", "police", nil); err == nil {
		t.Error("a client without a certificate was served")
	}
	with := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool,
		Certificates: []tls.Certificate{{Certificate: [][]byte{clDER}, PrivateKey: clKey}}}}}
	res, _, err := request(t, with, "GET", gw.base+"/taxii2/", "police", nil)
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("client with certificate: %v %v", res, err)
	}
}

// checkDrained checks that no route of the demo configuration is behind
// its sources in the store under data: a clean stop drains fan-out.
func checkDrained(t *testing.T, data string) {
	t.Helper()
	cfg, err := config.Load(demoConfig, nil)
	if err != nil {
		t.Fatal(err)
	}
	routes, err := policy.CompileRoutes(cfg.Routes)
	if err != nil {
		t.Fatal(err)
	}
	st, err := bolt.Open(filepath.Join(data, "ctigate.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	backlog := fanout.New(fanout.Options{Store: st, Routes: routes}).Backlog(context.Background())
	if len(backlog) == 0 {
		t.Fatal("no routes")
	}
	for _, b := range backlog {
		if b.Depth != 0 {
			t.Errorf("route %s is %d versions behind %s after a clean stop", b.Route, b.Depth, b.Source)
		}
	}
}

// TestShutdownDrainsFanOut: a POST of several fan-out batches that
// completes while the gateway stops is fully processed by every route
// before the store closes.
func TestShutdownDrainsFanOut(t *testing.T) {
	data := t.TempDir()
	gw := startServe(t, nil, "--config", demoConfig, "--data", data, "--listen", "127.0.0.1:0")
	objs := make([]string, 4*fanout.DefaultBatchSize)
	for i := range objs {
		objs[i] = indicatorJSON(i)
	}
	body := []byte(`{"objects":[` + strings.Join(objs, ",") + `]}`)
	pr, pw := io.Pipe()
	req, _ := http.NewRequest("POST", gw.base+inboundPath+"objects/", pr)
	req.ContentLength = int64(len(body))
	req.Header.Set("Accept", "application/taxii+json;version=2.1")
	req.Header.Set("Content-Type", "application/taxii+json;version=2.1")
	req.SetBasicAuth("cert-a", "cert-a-demo")
	codes := make(chan int, 1)
	go func() {
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			codes <- 0
			return
		}
		res.Body.Close()
		codes <- res.StatusCode
	}()
	if _, err := pw.Write(body[:len(body)/2]); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond) // the request is in flight (as in TestGracefulShutdownFinishesRequests)
	gw.cancel()                        // stop while the POST is being uploaded
	time.Sleep(100 * time.Millisecond) // shutdown has begun
	if _, err := pw.Write(body[len(body)/2:]); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	if c := <-codes; c != http.StatusAccepted {
		t.Fatalf("in-flight POST: %d", c)
	}
	if err := <-gw.done; err != nil {
		t.Fatalf("serve: %v", err)
	}
	gw.cancel = nil
	checkDrained(t, data)
}
