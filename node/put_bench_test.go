package node

import (
	"context"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
)

func benchFile(b *testing.B, size int64) string {
	p := filepath.Join(b.TempDir(), "data.bin")
	f, err := os.Create(p)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := io.CopyN(f, rand.NewChaCha8([32]byte{1}), size); err != nil {
		b.Fatal(err)
	}
	f.Close()
	return p
}

// BenchmarkPutNew puts new incompressible data into a fresh repository.
func BenchmarkPutNew(b *testing.B) {
	ctx := context.Background()
	src := benchFile(b, 256<<20)
	b.SetBytes(256 << 20)
	for i := 0; b.Loop(); i++ {
		b.StopTimer()
		dir := filepath.Join(b.TempDir(), "repo")
		n, err := Init(ctx, dir, InitOptions{}, Options{})
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if _, err := n.Put(ctx, []string{src}, PutOptions{}); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		n.Close()
		os.RemoveAll(dir)
		b.StartTimer()
	}
}
