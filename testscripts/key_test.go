package testscripts

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDamagedKey: one character of node.key changed, or the key replaced
// by another node's. Every command that opens the repository exits 6 with
// one line naming node.key; check reports it and still checks the data;
// serve does not start under another identity.
func TestDamagedKey(t *testing.T) {
	dir := t.TempDir()
	repo := filepath.Join(dir, "repo")
	must(t, repo, "init")
	id := strings.TrimSpace(must(t, repo, "id"))
	src := filepath.Join(dir, "f")
	randFile(t, src, 100<<10, 1)
	must(t, repo, "put", src)
	keyPath := filepath.Join(repo, "node.key")
	good, err := os.ReadFile(keyPath)
	if err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(dir, "other")
	must(t, other, "init")
	otherKey, err := os.ReadFile(filepath.Join(other, "node.key"))
	if err != nil {
		t.Fatal(err)
	}
	// One character of the key's base64 body changed: the PEM parses to
	// another key, or does not parse at all.
	flip := func(at int) []byte {
		b := bytes.Clone(good)
		body := bytes.Index(b, []byte("\n")) + 1 + at
		if b[body] == 'A' {
			b[body] = 'B'
		} else {
			b[body] = 'A'
		}
		return b
	}
	for name, key := range map[string][]byte{
		"one character (key bytes)":  flip(30),
		"one character (ASN.1 head)": flip(2),
		"another node's key":         otherKey,
		"not a key":                  []byte("garbage\n"),
	} {
		t.Run(name, func(t *testing.T) {
			if err := os.WriteFile(keyPath, key, 0o600); err != nil {
				t.Fatal(err)
			}
			defer os.WriteFile(keyPath, good, 0o600)
			for _, args := range [][]string{{"id"}, {"ls"}, {"put", src}, {"get", "f", filepath.Join(dir, "out")}, {"status"},
				{"serve", "--listen", "127.0.0.1:0"}} {
				out, errs, code := run(t, repo, args...)
				if code != 6 || out != "" || strings.Count(errs, "\n") != 1 || !strings.Contains(errs, "node.key") {
					t.Errorf("loft %s: exit %d, stdout %q, stderr %q; want 6 and one line naming node.key", args[0], code, out, errs)
				}
			}
			out, errs, code := run(t, repo, "check", "--read-data")
			if code != 6 || !strings.Contains(out, "key: ") || !strings.Contains(out, "read and verified") || !strings.Contains(errs, "node.key") {
				t.Errorf("check: exit %d\n%s%s", code, out, errs)
			}
		})
	}
	if got := strings.TrimSpace(must(t, repo, "id")); got != id {
		t.Fatalf("with the key back, id is %s, was %s", got, id)
	}
	must(t, repo, "check", "--read-data")
}
