package store

import (
	"bytes"
	"io"
	"math/rand/v2"
	"testing"
)

func randomBytes(seed uint64, n int) []byte {
	r := rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8), byte(seed >> 16)})
	b := make([]byte, n)
	r.Read(b)
	return b
}

func BenchmarkChunker(b *testing.B) {
	data := randomBytes(1, 64<<20)
	c := NewChunker(nil, DefaultParams())
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		c.Reset(bytes.NewReader(data), DefaultParams())
		for {
			if _, err := c.Next(); err == io.EOF {
				break
			}
		}
	}
}
