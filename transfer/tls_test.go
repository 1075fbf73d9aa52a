package transfer

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestCertificatePersistence(t *testing.T) {
	id, _ := NewIdentity()
	p := filepath.Join(t.TempDir(), "node.crt")
	c1, err := id.Certificate(p)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(p)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("certificate file mode %v: %v", fi.Mode(), err)
	}
	if got, err := PeerIDOf(c1.Leaf); err != nil || got != id.ID() {
		t.Fatalf("certificate names %s: %v", got.Short(), err)
	}
	if c1.Leaf.Subject.CommonName != id.ID().String() || c1.Leaf.IsCA {
		t.Fatalf("subject %q, CA %v", c1.Leaf.Subject.CommonName, c1.Leaf.IsCA)
	}
	if d := c1.Leaf.NotAfter.Sub(c1.Leaf.NotBefore); d < 19*365*24*time.Hour {
		t.Fatalf("validity %v", d)
	}
	c2, err := id.Certificate(p)
	if err != nil || !bytes.Equal(c1.Certificate[0], c2.Certificate[0]) {
		t.Fatalf("second call did not load the saved certificate: %v", err)
	}

	// A certificate for another key is replaced, and the node keeps its ID.
	other, _ := NewIdentity()
	if _, err := other.Certificate(p); err != nil {
		t.Fatal(err)
	}
	c3, err := id.Certificate(p)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(c3.Certificate[0], c1.Certificate[0]) {
		t.Fatal("expected a fresh certificate")
	}
	if got, _ := PeerIDOf(c3.Leaf); got != id.ID() {
		t.Fatal("replacement certificate names another node")
	}
	c4, _ := id.Certificate(p)
	if !bytes.Equal(c3.Certificate[0], c4.Certificate[0]) {
		t.Fatal("replacement was not saved")
	}

	// Garbage is replaced too.
	if err := os.WriteFile(p, []byte("junk"), 0o600); err != nil {
		t.Fatal(err)
	}
	if c, err := id.Certificate(p); err != nil || c.Leaf == nil {
		t.Fatalf("over garbage: %v", err)
	}
	if m, _ := filepath.Glob(filepath.Join(filepath.Dir(p), ".*tmp*")); len(m) != 0 {
		t.Fatalf("temporary files left: %v", m)
	}
}

func TestPeerIDOfRejects(t *testing.T) {
	id, _ := NewIdentity()
	other, _ := NewIdentity()
	now := time.Now()
	mk := func(tmpl, parent *x509.Certificate, pub, priv any) *x509.Certificate {
		t.Helper()
		der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, priv)
		if err != nil {
			t.Fatal(err)
		}
		c, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	tmpl := func(from, to time.Time) *x509.Certificate {
		return &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "x"}, NotBefore: from, NotAfter: to}
	}
	valid := tmpl(now.Add(-time.Hour), now.Add(time.Hour))
	if got, err := PeerIDOf(mk(valid, valid, id.key.Public(), id.key)); err != nil || got != id.ID() {
		t.Fatalf("valid certificate refused: %v", err)
	}
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	cases := map[string]*x509.Certificate{
		"expired":               mk(tmpl(now.Add(-2*time.Hour), now.Add(-time.Hour)), valid, id.key.Public(), id.key),
		"not yet valid":         mk(tmpl(now.Add(time.Hour), now.Add(2*time.Hour)), valid, id.key.Public(), id.key),
		"ecdsa":                 mk(valid, valid, ec.Public(), ec),
		"signed by another key": mk(valid, valid, id.key.Public(), other.key),
	}
	for name, c := range cases {
		if _, err := PeerIDOf(c); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := PeerIDOf(nil); err == nil {
		t.Error("nil accepted")
	}
}
