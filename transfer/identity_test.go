package transfer

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

func TestIdentitySaveLoad(t *testing.T) {
	id, err := NewIdentity()
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "node.key")
	if err := id.Save(p); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(p)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode: %v %v", fi.Mode(), err)
	}
	back, err := LoadIdentity(p)
	if err != nil || back.ID() != id.ID() {
		t.Fatalf("loaded identity differs: %v", err)
	}
	if err := id.Save(p); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("Save over an existing key: %v", err)
	}
	other, _ := NewIdentity()
	if other.ID() == id.ID() {
		t.Fatal("two identities with one ID")
	}
}

func TestParseIdentityRejects(t *testing.T) {
	for _, in := range []string{"", "garbage", "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
		"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"} {
		if _, err := ParseIdentity([]byte(in)); !errors.Is(err, errBadKey) {
			t.Errorf("ParseIdentity(%q) = %v", in, err)
		}
	}
}

// fixedIdentity is a key that is the same in every run, for fuzz seeds.
func fixedIdentity(seed byte) *Identity {
	return &Identity{key: ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seed}, ed25519.SeedSize))}
}

func FuzzParseIdentity(f *testing.F) {
	id := fixedIdentity(1)
	p := filepath.Join(f.TempDir(), "k")
	id.Save(p)
	good, _ := os.ReadFile(p)
	f.Add(good)
	f.Add([]byte("-----BEGIN PRIVATE KEY-----\n\n-----END PRIVATE KEY-----\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := ParseIdentity(b)
		if err == nil && got.ID() == ([32]byte{}) {
			t.Fatal("parsed an identity with a zero ID")
		}
	})
}
