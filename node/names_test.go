package node

import "github.com/loftstore/loft/names"

// Helpers for tests that name objects with string literals.

func nm(s string) names.Name { return names.Must(s) }

func nms(ss ...string) []names.Name {
	out := make([]names.Name, len(ss))
	for i, s := range ss {
		out[i] = names.Must(s)
	}
	return out
}

func pfx(s string) names.Prefix {
	p, err := names.ParsePrefix(s)
	if err != nil {
		panic(err)
	}
	return p
}
