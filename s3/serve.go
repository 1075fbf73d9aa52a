package s3

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"
)

// ServeOptions configure Serve.
type ServeOptions struct {
	// Addr is the TCP address to listen on, HOST:PORT.
	Addr string
	// CertFile and KeyFile, when both set, serve HTTPS with them.
	CertFile, KeyFile string
	// Ready, when set, is called with the bound address once serving.
	Ready func(addr string)
}

// Serve serves the gateway until ctx ends, then lets the requests in
// flight finish for a few seconds.
func (g *Gateway) Serve(ctx context.Context, opts ServeOptions) error {
	if (opts.CertFile == "") != (opts.KeyFile == "") {
		return errors.New("s3: give both a certificate and its key for HTTPS, or neither")
	}
	ln, err := net.Listen("tcp", opts.Addr)
	if err != nil {
		return fmt.Errorf("s3: %w", err)
	}
	srv := &http.Server{
		Handler: g,
		// A client has this long to send its headers; bodies are bounded
		// by the idle time between reads (Options.BodyIdle), not in total.
		ReadHeaderTimeout: 30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          nil,
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
	if opts.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(opts.CertFile, opts.KeyFile)
		if err != nil {
			ln.Close()
			return fmt.Errorf("s3: %w", err)
		}
		srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		ln = tls.NewListener(ln, srv.TLSConfig)
	}
	if opts.Ready != nil {
		opts.Ready(ln.Addr().String())
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	expired := make(chan struct{})
	go func() { defer close(expired); g.expireLoop(ctx) }()
	defer func() { <-expired }()
	select {
	case err := <-done:
		return fmt.Errorf("s3: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		// Requests still running see their context end (BaseContext is
		// ctx) and their connections closed; they return soon, and the
		// node must not close under them.
		srv.Close()
	}
	<-done
	g.inflight.Wait()
	return nil
}

// expireEvery is how often serve looks for idle multipart uploads.
const expireEvery = 10 * time.Minute

// expireLoop aborts the multipart uploads that received no part for the
// multipart-expiry setting, until ctx ends; gc collects their chunks.
func (g *Gateway) expireLoop(ctx context.Context) {
	t := time.NewTicker(expireEvery)
	defer t.Stop()
	for {
		if err := g.ExpireUploads(ctx); err != nil && ctx.Err() == nil {
			g.opts.Log.Warn("s3: expiring multipart uploads failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// ExpireUploads aborts the multipart uploads idle for longer than the
// multipart-expiry setting.
func (g *Gateway) ExpireUploads(ctx context.Context) error {
	d, err := g.cat.Duration(ctx, "multipart-expiry")
	if err != nil {
		return err
	}
	n, err := g.cat.ExpireUploads(ctx, g.opts.Now().Add(-d))
	if n > 0 {
		g.opts.Log.Info("s3: aborted idle multipart uploads", "uploads", n, "idle", d)
	}
	return err
}
