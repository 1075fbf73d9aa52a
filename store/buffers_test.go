package store

import "testing"

func TestSizeClass(t *testing.T) {
	prev := 0
	for n := 1; n <= 20<<20; n += 1 + n/97 {
		size, i := sizeClass(n)
		if size < n || (n > 4096 && float64(size) > 1.25*float64(n)+1) {
			t.Fatalf("sizeClass(%d) = %d", n, size)
		}
		if s2, i2 := sizeClass(size); s2 != size || i2 != i {
			t.Fatalf("class %d of %d is not stable: %d, %d", i, size, s2, i2)
		}
		if i < prev || i >= 4*26 {
			t.Fatalf("index %d for %d", i, n)
		}
		prev = i
	}
}
