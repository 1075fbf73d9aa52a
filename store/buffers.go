package store

import (
	"math/bits"
	"sync"
)

// Buffers hands out chunk buffers by size class, so that moving many
// chunks allocates a handful of buffers, not one per chunk. Classes are 4
// KiB, then quarter steps between powers of two: at most 25% is wasted.
type Buffers struct{ classes [4 * 26]sync.Pool }

// Get returns a buffer of at least n bytes (its length is its capacity).
func (bp *Buffers) Get(n int) *[]byte {
	size, i := sizeClass(n)
	if b, ok := bp.classes[i].Get().(*[]byte); ok {
		return b
	}
	b := make([]byte, size)
	return &b
}

// Put gives a buffer from Get back; nil is ignored.
func (bp *Buffers) Put(b *[]byte) {
	if b == nil {
		return
	}
	if size, i := sizeClass(cap(*b)); size == cap(*b) {
		bp.classes[i].Put(b)
	}
}

// BufferSize is the capacity of the buffer a chunk of n bytes gets, which
// is what memory budgets count.
func BufferSize(n int) int64 {
	size, _ := sizeClass(n)
	return int64(size)
}

// sizeClass returns the size of the smallest class that holds n bytes and
// the class's index.
func sizeClass(n int) (size, index int) {
	if n <= 4096 {
		return 4096, 0
	}
	e := bits.Len(uint(n - 1)) // 2^(e-1) < n <= 2^e, e >= 13
	step := 1 << (e - 3)       // a quarter of 2^(e-1)
	q := (n - 1 - 1<<(e-1)) / step
	return 1<<(e-1) + (q+1)*step, (e-12)*4 + q
}
