package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"io"
	"math/big"
	"os"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/loftstore/loft/store"
)

// quicLimit is the ceiling of any transfer between two nodes on this
// machine: quic-go itself, with its default configuration, moving total
// bytes on one stream over loopback inside this process, in 1 MiB writes,
// from the first write until the receiver has read the last byte.
func quicLimit(ctx context.Context, total int64) (float64, error) {
	return quicRun(ctx, total, nil, "")
}

// quicWorkLimit is the ceiling of a remote put on this machine: the same
// transfer, but the sender reads src through the chunker and hashes every
// chunk twice (its ID and the whole file), and the receiver hashes every
// chunk once more (verification) and writes it to a file in dir, flushed at
// the end: the work a remote put cannot skip, without the protocol around it.
func quicWorkLimit(ctx context.Context, total int64, src, dir string) (float64, error) {
	return quicRun(ctx, total, &src, dir)
}

func quicRun(ctx context.Context, total int64, src *string, dir string) (float64, error) {
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
		if src == nil {
			n, err := io.CopyBuffer(io.Discard, s, make([]byte, 1<<20))
			got <- result{n, time.Now(), err}
			return
		}
		n, err := receiveWork(s, dir)
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
	start := time.Now()
	if src != nil {
		if err := sendWork(s, *src, total); err != nil {
			return 0, err
		}
	}
	buf := randomBytes(1<<20, 9)
	for sent := int64(0); src == nil && sent < total; {
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

func sendWork(w io.Writer, src string, total int64) error {
	f, err := os.Open(src)
	if err != nil {
		return err
	}
	defer f.Close()
	ch := store.NewChunker(io.LimitReader(f, total), store.DefaultParams())
	whole := sha256.New()
	for {
		c, err := ch.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		store.Sum(c)
		whole.Write(c)
		if _, err := w.Write(c); err != nil {
			return err
		}
	}
}

func receiveWork(r io.Reader, dir string) (int64, error) {
	f, err := os.CreateTemp(dir, "quic-work-*")
	if err != nil {
		return 0, err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	buf := make([]byte, 1<<20)
	var n int64
	for {
		k, err := io.ReadFull(r, buf)
		if k > 0 {
			sha256.Sum256(buf[:k])
			if _, werr := f.Write(buf[:k]); werr != nil {
				return n, werr
			}
			n += int64(k)
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return n, f.Sync()
		}
		if err != nil {
			return n, err
		}
	}
}
