package transfer

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/loftstore/loft/store"
)

// ALPN is the application protocol of ordinary connections between pinned
// peers.
const ALPN = "loft/1"

// JoinALPN is the application protocol of pairing connections: the only
// one on which a server accepts an unknown client, and only while an invite
// is outstanding.
const JoinALPN = "loft-join/1"

const (
	certValidity = 20 * 365 * 24 * time.Hour
	// certBackdate moves NotBefore into the past so that a peer whose clock
	// runs behind ours still finds a fresh certificate valid.
	certBackdate = 24 * time.Hour
	certPEMType  = "CERTIFICATE"
)

var errBadCert = errors.New("bad peer certificate")

// Certificate returns a self-signed X.509 certificate for the identity's key
// (ed25519, CN = node ID, valid 20 years, not a CA). If certPath holds a
// certificate for this same public key that is still valid, it is loaded;
// otherwise a new one is created and saved atomically at certPath (mode
// 0600). Since the node ID depends on the key only, replacing the
// certificate never changes who the node is to its peers.
func (id *Identity) Certificate(certPath string) (tls.Certificate, error) {
	pemBytes, err := os.ReadFile(certPath)
	switch {
	case err == nil:
		if leaf, ok := id.matchingCert(pemBytes); ok {
			return id.tlsCert(leaf), nil
		}
	case errors.Is(err, fs.ErrNotExist):
	default:
		// An unreadable file is reported rather than overwritten: the
		// cause (permissions, I/O error) needs a human.
		return tls.Certificate{}, fmt.Errorf("load certificate: %w", err)
	}
	der, err := id.newCertDER(time.Now())
	if err != nil {
		return tls.Certificate{}, err
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("create certificate: %w", err)
	}
	if err := writeFileAtomic(certPath, pem.EncodeToMemory(&pem.Block{Type: certPEMType, Bytes: der})); err != nil {
		return tls.Certificate{}, fmt.Errorf("save certificate: %w", err)
	}
	return id.tlsCert(leaf), nil
}

// matchingCert parses a PEM file holding exactly one certificate and
// reports whether it is valid now and belongs to this identity's key.
func (id *Identity) matchingCert(pemBytes []byte) (*x509.Certificate, bool) {
	blk, rest := pem.Decode(pemBytes)
	if blk == nil || blk.Type != certPEMType || len(bytes.TrimSpace(rest)) != 0 {
		return nil, false
	}
	leaf, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		return nil, false
	}
	peer, err := PeerIDOf(leaf)
	if err != nil || peer != id.ID() {
		return nil, false
	}
	return leaf, true
}

func (id *Identity) tlsCert(leaf *x509.Certificate) tls.Certificate {
	return tls.Certificate{Certificate: [][]byte{leaf.Raw}, PrivateKey: id.key, Leaf: leaf}
}

func (id *Identity) newCertDER(now time.Time) ([]byte, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("create certificate: %w", err)
	}
	notBefore := now.Add(-certBackdate).UTC().Truncate(time.Second)
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: id.ID().String()},
		NotBefore:             notBefore,
		NotAfter:              notBefore.Add(certValidity),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
		IsCA:                  false,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, id.key.Public(), id.key)
	if err != nil {
		return nil, fmt.Errorf("create certificate: %w", err)
	}
	return der, nil
}

// writeFileAtomic replaces path with data so that path holds either the old
// or the new content, even after a crash: temporary file, fsync, rename,
// fsync of the directory.
func writeFileAtomic(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name()) // fails harmlessly after the rename
	err = f.Chmod(0o600)
	if err == nil {
		_, err = f.Write(data)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err == nil {
		err = syncDir(filepath.Dir(path))
	}
	return err
}

// PeerIDOf checks that cert is self-signed with an ed25519 key and valid
// now, and returns the node ID derived from its public key. The subject is
// not consulted: the key alone names the node.
func PeerIDOf(cert *x509.Certificate) (store.PeerID, error) {
	if cert == nil {
		return store.PeerID{}, fmt.Errorf("%w: none", errBadCert)
	}
	pub, ok := cert.PublicKey.(ed25519.PublicKey)
	if cert.PublicKeyAlgorithm != x509.Ed25519 || !ok || len(pub) != ed25519.PublicKeySize {
		return store.PeerID{}, fmt.Errorf("%w: not an ed25519 key", errBadCert)
	}
	// CheckSignature (not CheckSignatureFrom) on purpose: the certificate is
	// its own issuer but is not a CA, which CheckSignatureFrom would refuse.
	if err := cert.CheckSignature(cert.SignatureAlgorithm, cert.RawTBSCertificate, cert.Signature); err != nil {
		return store.PeerID{}, fmt.Errorf("%w: not self-signed: %v", errBadCert, err)
	}
	now := time.Now()
	if now.Before(cert.NotBefore) || now.After(cert.NotAfter) {
		return store.PeerID{}, fmt.Errorf("%w: valid only from %s to %s", errBadCert,
			cert.NotBefore.Format(time.RFC3339), cert.NotAfter.Format(time.RFC3339))
	}
	return store.PeerID(sha256.Sum256(pub)), nil
}

// peerIDOfRaw parses the certificate a peer presented in the handshake.
// Exactly one certificate is expected: there is no chain without a CA.
func peerIDOfRaw(raw [][]byte) (store.PeerID, error) {
	if len(raw) != 1 {
		return store.PeerID{}, fmt.Errorf("%w: %d certificates presented, want 1", errBadCert, len(raw))
	}
	cert, err := x509.ParseCertificate(raw[0])
	if err != nil {
		return store.PeerID{}, fmt.Errorf("%w: %v", errBadCert, err)
	}
	return PeerIDOf(cert)
}

// serverTLS builds the listener's TLS configuration. The decision to accept
// a client is taken in the handshake, so an unknown or unwanted client never
// gets a connection: GetConfigForClient picks the protocol from the
// client's ALPN offer, and the returned config's VerifyPeerCertificate
// checks the client's ID against it.
func serverTLS(cfg *Config, log *slog.Logger) *tls.Config {
	base := &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{cfg.Cert},
		ClientAuth:   tls.RequireAnyClientCert,
		// A resumed session skips VerifyPeerCertificate; resumption would
		// let a peer unpinned since its last connection back in.
		SessionTicketsDisabled: true,
	}
	conf := base.Clone()
	conf.NextProtos = []string{ALPN, JoinALPN}
	conf.GetConfigForClient = func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
		var remote string
		if hello.Conn != nil {
			remote = hello.Conn.RemoteAddr().String()
		}
		c := base.Clone()
		switch {
		case slices.Contains(hello.SupportedProtos, ALPN):
			c.NextProtos = []string{ALPN}
			c.VerifyPeerCertificate = func(raw [][]byte, _ [][]*x509.Certificate) error {
				peer, err := peerIDOfRaw(raw)
				if err != nil {
					log.Warn("refused connection: bad certificate", "remote", remote, "err", err)
					return err
				}
				if cfg.Allow == nil || !cfg.Allow(peer) {
					log.Warn("refused connection: unknown peer", "remote", remote, "peer", peer.String())
					return fmt.Errorf("%w: peer %s is not paired", errBadCert, peer.Short())
				}
				return nil
			}
		case len(hello.SupportedProtos) == 1 && hello.SupportedProtos[0] == JoinALPN:
			if cfg.AllowJoin == nil || !cfg.AllowJoin() {
				log.Warn("refused join connection: no invite outstanding", "remote", remote)
				return nil, errors.New("no invite outstanding")
			}
			c.NextProtos = []string{JoinALPN}
			c.VerifyPeerCertificate = func(raw [][]byte, _ [][]*x509.Certificate) error {
				peer, err := peerIDOfRaw(raw)
				if err != nil {
					log.Warn("refused join connection: bad certificate", "remote", remote, "err", err)
					return err
				}
				log.Info("join connection", "remote", remote, "peer", peer.String())
				return nil
			}
		default:
			log.Warn("refused connection: no supported application protocol", "remote", remote, "alpn", hello.SupportedProtos)
			return nil, fmt.Errorf("unsupported application protocols %q", hello.SupportedProtos)
		}
		return c, nil
	}
	return conf
}

// clientTLS builds the TLS configuration of a connection to peer. There is
// no CA, so the standard verification is off and VerifyPeerCertificate
// checks instead that the server's key is the one peer names.
func clientTLS(cfg *Config, peer store.PeerID, alpn string) *tls.Config {
	return &tls.Config{
		MinVersion:         tls.VersionTLS13,
		Certificates:       []tls.Certificate{cfg.Cert},
		NextProtos:         []string{alpn},
		ServerName:         "loft", // SNI is meaningless here; a constant reveals nothing
		InsecureSkipVerify: true,
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			got, err := peerIDOfRaw(raw)
			if err != nil {
				return err
			}
			if got != peer {
				return fmt.Errorf("%w: server is %s, dialed %s", errBadCert, got.Short(), peer.Short())
			}
			return nil
		},
	}
}
