// Package transfer is loft's wire: node identity, and (with the peers work)
// QUIC connections, framing and chunk transfer.
package transfer

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"

	"github.com/loftstore/loft/fault"
	"github.com/loftstore/loft/store"
)

// Identity is a node's key pair. The node ID is derived from the public key.
type Identity struct {
	key ed25519.PrivateKey
}

// NewIdentity generates a key pair.
func NewIdentity() (*Identity, error) {
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate node key: %w", err)
	}
	return &Identity{key: key}, nil
}

// ID returns the node ID.
func (id *Identity) ID() store.PeerID {
	return store.PeerID(sha256.Sum256(id.key.Public().(ed25519.PublicKey)))
}

const keyType = "PRIVATE KEY"

// Save writes the private key as PKCS#8 PEM, readable by the owner only.
// The key is written and flushed under a temporary name and linked into
// place, so path never holds a partial key, even after a crash; Save fails
// with fs.ErrExist if a key is there already.
func (id *Identity) Save(path string) error {
	der, err := x509.MarshalPKCS8PrivateKey(id.key)
	if err != nil {
		return fmt.Errorf("save node key: %w", err)
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("save node key: %w", err)
	}
	defer os.Remove(f.Name())
	err = f.Chmod(0o600)
	if err == nil {
		err = pem.Encode(f, &pem.Block{Type: keyType, Bytes: der})
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Link(f.Name(), path)
	}
	if err == nil {
		err = syncDir(filepath.Dir(path))
	}
	if err != nil {
		return fmt.Errorf("save node key: %w", err)
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

var errBadKey = fault.New(fault.Repository, "not an ed25519 node key")

// LoadIdentity reads a key written by Save.
func LoadIdentity(path string) (*Identity, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load node key: %w", err)
	}
	return ParseIdentity(b)
}

// ParseIdentity decodes a PEM-encoded PKCS#8 ed25519 key.
func ParseIdentity(b []byte) (*Identity, error) {
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != keyType {
		return nil, fmt.Errorf("load node key: %w", errBadKey)
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("load node key: %w: %v", errBadKey, err)
	}
	key, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("load node key: %w", errBadKey)
	}
	return &Identity{key: key}, nil
}
