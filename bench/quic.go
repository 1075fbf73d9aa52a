package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"io"
	"math/big"
	"time"

	"github.com/quic-go/quic-go"
)

// quicLimit is the ceiling of any transfer between two nodes on this
// machine: quic-go itself, with its default configuration, moving total
// bytes on one stream over loopback inside this process, in 1 MiB writes,
// from the first write until the receiver has read the last byte.
func quicLimit(ctx context.Context, total int64) (float64, error) {
	ctx, cancel := context.WithTimeout(ctx, phaseTimeout(total))
	defer cancel()
	cert, pool, err := throwawayCert()
	if err != nil {
		return 0, err
	}
	const alpn = "bench"
	ln, err := quic.ListenAddr("127.0.0.1:0", &tls.Config{
		MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{cert}, NextProtos: []string{alpn},
	}, nil)
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	type result struct {
		n   int64
		end time.Time
		err error
	}
	got := make(chan result, 1)
	go func() {
		conn, err := ln.Accept(ctx)
		if err != nil {
			got <- result{err: err}
			return
		}
		s, err := conn.AcceptStream(ctx)
		if err != nil {
			got <- result{err: err}
			return
		}
		n, err := io.CopyBuffer(io.Discard, s, make([]byte, 1<<20))
		got <- result{n, time.Now(), err}
	}()
	conn, err := quic.DialAddr(ctx, ln.Addr().String(), &tls.Config{
		MinVersion: tls.VersionTLS13, RootCAs: pool, ServerName: "bench", NextProtos: []string{alpn},
	}, nil)
	if err != nil {
		return 0, err
	}
	defer conn.CloseWithError(0, "")
	s, err := conn.OpenStreamSync(ctx)
	if err != nil {
		return 0, err
	}
	buf := randomBytes(1<<20, 9)
	start := time.Now()
	for sent := int64(0); sent < total; {
		n := min(int64(len(buf)), total-sent)
		if _, err := s.Write(buf[:n]); err != nil {
			return 0, err
		}
		sent += n
	}
	if err := s.Close(); err != nil {
		return 0, err
	}
	select {
	case r := <-got:
		if r.err != nil {
			return 0, r.err
		}
		if r.n != total {
			return 0, fmt.Errorf("quic limit: received %d of %d bytes", r.n, total)
		}
		return mbps(total, r.end.Sub(start)), nil
	case <-ctx.Done():
		return 0, fmt.Errorf("quic limit: %w", ctx.Err())
	}
}

// throwawayCert returns a self-signed certificate for the name "bench" and
// a pool that trusts it.
func throwawayCert() (tls.Certificate, *x509.CertPool, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "bench"},
		DNSNames:              []string{"bench"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool, nil
}
