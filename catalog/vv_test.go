package catalog

import (
	"encoding/json"
	"fmt"
	"maps"
	"strings"
	"testing"
)

// orderName names an Order for messages.
func orderName(o Order) string {
	switch o {
	case Equal:
		return "Equal"
	case Before:
		return "Before"
	case After:
		return "After"
	case Concurrent:
		return "Concurrent"
	}
	return fmt.Sprintf("Order(%d)", int(o))
}

func TestVVCompare(t *testing.T) {
	for _, tc := range []struct {
		name string
		a, b VV
		want Order
	}{
		{"both nil", nil, nil, Equal},
		{"both empty", VV{}, VV{}, Equal},
		{"nil and empty", nil, VV{}, Equal},
		{"same", VV{"a": 1, "b": 2}, VV{"a": 1, "b": 2}, Equal},
		{"zero entry vs missing", VV{"a": 0}, VV{}, Equal},
		{"missing vs zero entry", VV{}, VV{"a": 0}, Equal},
		{"zero entries both sides", VV{"a": 1, "z": 0}, VV{"a": 1, "y": 0}, Equal},
		{"one behind", VV{"a": 1}, VV{"a": 2}, Before},
		{"one ahead", VV{"a": 3}, VV{"a": 2}, After},
		{"missing key is zero, before", VV{}, VV{"a": 1}, Before},
		{"missing key is zero, after", VV{"a": 1}, VV{}, After},
		{"b has extra origin", VV{"a": 1}, VV{"a": 1, "b": 1}, Before},
		{"a has extra origin", VV{"a": 1, "b": 1}, VV{"a": 1}, After},
		{"behind on one, equal on other", VV{"a": 1, "b": 5}, VV{"a": 2, "b": 5}, Before},
		{"disjoint origins", VV{"a": 1}, VV{"b": 1}, Concurrent},
		{"crossed", VV{"a": 2, "b": 1}, VV{"a": 1, "b": 2}, Concurrent},
		{"crossed with missing", VV{"a": 2}, VV{"a": 1, "b": 1}, Concurrent},
		{"zero entry does not make concurrent", VV{"a": 2, "b": 0}, VV{"a": 1}, After},
		{"zero entry vs positive", VV{"a": 0}, VV{"a": 1}, Before},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.a.Compare(tc.b); got != tc.want {
				t.Errorf("%v.Compare(%v) = %s, want %s", tc.a, tc.b, orderName(got), orderName(tc.want))
			}
			// The relation is antisymmetric.
			inv := map[Order]Order{Equal: Equal, Before: After, After: Before, Concurrent: Concurrent}[tc.want]
			if got := tc.b.Compare(tc.a); got != inv {
				t.Errorf("%v.Compare(%v) = %s, want %s", tc.b, tc.a, orderName(got), orderName(inv))
			}
		})
	}
}

func TestVVMerge(t *testing.T) {
	for _, tc := range []struct {
		a, b, want VV
	}{
		{nil, nil, VV{}},
		{VV{"a": 1}, nil, VV{"a": 1}},
		{nil, VV{"a": 1}, VV{"a": 1}},
		{VV{"a": 1, "b": 5}, VV{"a": 3, "c": 2}, VV{"a": 3, "b": 5, "c": 2}},
		{VV{"a": 3}, VV{"a": 1}, VV{"a": 3}},
		{VV{"a": 0}, VV{"b": 0}, VV{"a": 0, "b": 0}},
	} {
		a0, b0 := maps.Clone(tc.a), maps.Clone(tc.b)
		got := tc.a.Merge(tc.b)
		if !maps.Equal(got, tc.want) {
			t.Errorf("%v.Merge(%v) = %v, want %v", tc.a, tc.b, got, tc.want)
		}
		if !maps.Equal(tc.a, a0) || !maps.Equal(tc.b, b0) {
			t.Errorf("Merge changed its operands: %v, %v; were %v, %v", tc.a, tc.b, a0, b0)
		}
		// The merge follows (or equals) both operands, and is commutative.
		if o := got.Compare(tc.a); o != After && o != Equal {
			t.Errorf("merge %v vs a %v: %s", got, tc.a, orderName(o))
		}
		if o := got.Compare(tc.b); o != After && o != Equal {
			t.Errorf("merge %v vs b %v: %s", got, tc.b, orderName(o))
		}
		if !maps.Equal(got, tc.b.Merge(tc.a)) {
			t.Errorf("Merge is not commutative for %v, %v", tc.a, tc.b)
		}
	}
	// The result is a new map: changing it leaves the operands alone.
	a := VV{"a": 1}
	m := a.Merge(nil)
	m["a"] = 9
	if a["a"] != 1 {
		t.Errorf("Merge result aliases its operand")
	}
}

func TestVVStringRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		v    VV
		want string
	}{
		{nil, `{}`},
		{VV{}, `{}`},
		{VV{"a": 1}, `{"a":1}`},
		{VV{"b": 2, "a": 1, "c": 0}, `{"a":1,"b":2,"c":0}`},
		{VV{"z": 1, "a": 9223372036854775807}, `{"a":9223372036854775807,"z":1}`},
		{VV{`q"u\o<te>`: 3}, `{"q\"u\\o\u003cte\u003e":3}`},
		{VV{"é": 1}, `{"é":1}`},
	} {
		s := tc.v.String()
		if s != tc.want {
			t.Errorf("%#v.String() = %s, want %s", tc.v, s, tc.want)
		}
		if !json.Valid([]byte(s)) {
			t.Errorf("String() = %s is not valid JSON", s)
		}
		got, err := ParseVV(s)
		if err != nil {
			t.Errorf("ParseVV(%s): %v", s, err)
			continue
		}
		if got == nil {
			t.Errorf("ParseVV(%s) = nil map", s)
		}
		if len(got) != len(tc.v) || got.Compare(tc.v) != Equal {
			t.Errorf("ParseVV(String(%v)) = %v", tc.v, got)
		}
		if got.String() != s {
			t.Errorf("String is not stable: %s then %s", s, got.String())
		}
	}
	// Keys are sorted whatever the insertion order.
	for range 20 {
		v := VV{}
		for _, k := range []string{"n3", "n1", "n2", "n10"} {
			v[k] = int64(len(k))
		}
		if s := v.String(); s != `{"n1":2,"n10":3,"n2":2,"n3":2}` {
			t.Fatalf("String() = %s, keys not sorted", s)
		}
	}
}

func TestParseVV(t *testing.T) {
	many := func(n int) string {
		v := VV{}
		for i := range n {
			v[fmt.Sprintf("n%04d", i)] = 1
		}
		return v.String()
	}
	for _, tc := range []struct {
		in   string
		want VV // nil: refused
	}{
		{`{}`, VV{}},
		{`null`, VV{}},
		{` {"a" : 1 , "b":0} `, VV{"a": 1, "b": 0}},
		{`{"a":1,"a":2}`, VV{"a": 2}},
		{many(MaxOrigins), nil}, // checked below: accepted
		{`{"a":-1}`, nil},
		{`{"":1}`, nil},
		{`{"a":1,"":0}`, nil},
		{many(MaxOrigins + 1), nil},
		{``, nil},
		{`{`, nil},
		{`[]`, nil},
		{`[1,2]`, nil},
		{`"a"`, nil},
		{`1`, nil},
		{`{"a":"1"}`, nil},
		{`{"a":1.5}`, nil},
		{`{"a":1e2}`, nil},
		{`{"a":99999999999999999999}`, nil},
		{`{"a":1} {}`, nil},
		{`{"a":1}x`, nil},
		{`{"a":true}`, nil},
		{`{"a":null,"":1}`, nil},
	} {
		got, err := ParseVV(tc.in)
		name := tc.in
		if len(name) > 40 {
			name = name[:40] + "..."
		}
		if tc.in == many(MaxOrigins) {
			if err != nil || len(got) != MaxOrigins {
				t.Errorf("ParseVV(%d origins) = %d entries, %v; want accepted", MaxOrigins, len(got), err)
			}
			continue
		}
		if tc.want == nil {
			if err == nil {
				t.Errorf("ParseVV(%s) = %v, want an error", name, got)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseVV(%s): %v", name, err)
			continue
		}
		if !maps.Equal(got, tc.want) || got == nil {
			t.Errorf("ParseVV(%s) = %#v, want %#v", name, got, tc.want)
		}
	}
}

func FuzzParseVV(f *testing.F) {
	for _, s := range []string{`{}`, `null`, `{"a":1}`, `{"a":1,"b":2}`, `{"":1}`, `{"a":-1}`,
		`{"a":1,"a":0}`, `{"\u00e9":3}`, `{"a\xff":1}`, `[]`, ``, `{"a":9223372036854775807}`,
		`{"a":0,"b":0}`, `{"x":1.0}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := ParseVV(s)
		if err != nil {
			if v != nil {
				t.Errorf("ParseVV(%q) returned %v with error %v", s, v, err)
			}
			return
		}
		if v == nil {
			t.Fatalf("ParseVV(%q) accepted a nil vector", s)
		}
		if len(v) > MaxOrigins {
			t.Fatalf("ParseVV(%q) accepted %d origins", s, len(v))
		}
		for k, n := range v {
			if k == "" || n < 0 {
				t.Fatalf("ParseVV(%q) accepted entry %q:%d", s, k, n)
			}
		}
		enc := v.String()
		w, err := ParseVV(enc)
		if err != nil {
			t.Fatalf("ParseVV(%q) accepted, but its String %q is refused: %v", s, enc, err)
		}
		if w.Compare(v) != Equal || v.Compare(w) != Equal || !maps.Equal(v, w) {
			t.Fatalf("round trip of %q: %v then %v", s, v, w)
		}
		if w.String() != enc {
			t.Fatalf("String not stable: %q then %q", enc, w.String())
		}
		if v.Compare(v) != Equal {
			t.Fatalf("%v is not Equal to itself", v)
		}
		if strings.ContainsAny(enc, " \n\t") && !strings.ContainsAny(strings.Join(vvKeys(v), ""), " \n\t") {
			t.Fatalf("String %q has whitespace outside keys", enc)
		}
	})
}

func vvKeys(v VV) []string {
	out := make([]string, 0, len(v))
	for k := range v {
		out = append(out, k)
	}
	return out
}
