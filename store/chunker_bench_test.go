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

func BenchmarkEncodeIncompressible(b *testing.B) {
	c, err := NewCodecs(1)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	data := randomBytes(2, 1<<20)
	b.SetBytes(int64(len(data)))
	buf := make([]byte, 0, 2<<20)
	for b.Loop() {
		c.EncodeParts(buf, data)
	}
}

func BenchmarkEncodeText(b *testing.B) {
	c, err := NewCodecs(1)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	data := bytes.Repeat([]byte("loft stores files as content-defined chunks. "), 1<<20/45)
	b.SetBytes(int64(len(data)))
	buf := make([]byte, 0, 2<<20)
	for b.Loop() {
		c.EncodeParts(buf, data)
	}
}

func BenchmarkSHA256(b *testing.B) {
	data := randomBytes(3, 1<<20)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		Sum(data)
	}
}
