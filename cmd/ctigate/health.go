package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/ctigate/ctigate/config"
)

// runHealth checks a gateway's /healthz or /readyz: for container health
// checks, where the image has no shell or curl, and, with --wait, for
// scripts that start a gateway and wait until it is ready.
func runHealth(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("health", flag.ContinueOnError)
	fs.SetOutput(stderr)
	target := fs.String("url", "http://127.0.0.1:8080/healthz", "health endpoint to check")
	insecure := fs.Bool("insecure", false, "skip certificate verification (loopback addresses only)")
	wait := fs.Duration("wait", 0, "retry until the endpoint answers 200 or this long has passed (0: check once)")
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	u, err := url.Parse(*target)
	if err != nil {
		return fmt.Errorf("health: %w", err)
	}
	if *insecure && !config.IsLoopback(u.Hostname()) {
		return fmt.Errorf("health: --insecure is only for loopback addresses, not %s", u.Hostname())
	}
	client := &http.Client{Timeout: 3 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: *insecure, MinVersion: tls.VersionTLS12}, // #nosec: loopback only
	}}
	deadline := time.Now().Add(*wait)
	for {
		body, err := checkHealth(ctx, client, u)
		if err == nil {
			fmt.Fprintf(stdout, "%s\n", bytes.TrimSpace(body))
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// checkHealth asks u once and returns its body when it answers 200.
func checkHealth(ctx context.Context, client *http.Client, u *url.URL) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, err
	}
	res, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("health: %w", err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(res.Body, 4096))
	if res.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("health: %s answered %d: %s", u, res.StatusCode, body)
	}
	return body, nil
}
