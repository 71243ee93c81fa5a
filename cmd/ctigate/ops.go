package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"
	"time"
)

// opsListener is the operations listener: /metrics (Prometheus text),
// /healthz and /readyz, plain HTTP without authentication.
type opsListener struct {
	hs   *http.Server
	done chan struct{}
}

// startOps serves the operations endpoints on addr ("" for none) and
// prints where on stdout.
func startOps(addr string, metrics, health http.Handler, log *slog.Logger, stdout io.Writer) (*opsListener, error) {
	o := &opsListener{}
	if addr == "" {
		return o, nil
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", metrics)
	mux.Handle("GET /healthz", health)
	mux.Handle("GET /readyz", health)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("ops.listen: %w", err)
	}
	o.hs = &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      30 * time.Second,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	o.done = make(chan struct{})
	go func() {
		defer close(o.done)
		if err := o.hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("operations listener stopped", "err", err)
		}
	}()
	u := fmt.Sprintf("http://%s/", ln.Addr())
	log.Info("operations endpoints listening", "metrics", u+"metrics")
	fmt.Fprintf(stdout, "ctigate: serving operations at %s\n", u)
	return o, nil
}

// Close stops the listener; calling it again does nothing.
func (o *opsListener) Close() error {
	if o.hs == nil {
		return nil
	}
	err := o.hs.Close()
	<-o.done
	o.hs = nil
	return err
}

// buildVersion is the module version the binary was built from.
func buildVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "devel"
}
