package store

import "testing"

func TestKernelAtLeast(t *testing.T) {
	for _, tc := range []struct {
		release string
		want    bool
	}{
		{"5.8.0", true}, {"5.10.0-21-amd64", true}, {"6.18.44-fc-v657", true},
		{"5.7.19", false}, {"4.19.0-27-amd64", false}, {"4.4.302+", false}, {"", false}, {"x", false},
	} {
		if got := kernelAtLeast(tc.release, 5, 8); got != tc.want {
			t.Errorf("kernelAtLeast(%q, 5, 8) = %v", tc.release, got)
		}
	}
}
