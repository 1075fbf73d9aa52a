package names

import (
	"encoding/json"
	"errors"
	"path"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestParse(t *testing.T) {
	seg := strings.Repeat("s", MaxSegment)
	// The longest name: segments joined by slashes, topped up to exactly
	// MaxLen.
	long := strings.Repeat(strings.Repeat("s", 200)+"/", MaxLen/201)
	long += strings.Repeat("t", MaxLen-len(long))

	good := []string{
		"a", "a/b/c", "héllo/wörld", "日本語/ファイル.txt", "emoji/\U0001F600", "...", "a/...", ".hidden", "a/.b", "..a", "a..",
		"a b", "a\\b", "a:b", "-", "~", seg, seg + "/" + seg, long, "\u00a0", "a/b.c/d-e_f",
	}
	for _, n := range good {
		if err := check(n); err != nil {
			t.Errorf("Parse(%q) = %v, want nil", n, err)
		}
	}
	if len(long) != MaxLen {
		t.Fatalf("test name is %d bytes", len(long))
	}

	bad := map[string]string{
		"":                     "empty",
		"/a":                   "absolute",
		"/":                    "root",
		"a/":                   "trailing slash",
		"a//b":                 "empty segment",
		".":                    "dot",
		"..":                   "dot-dot",
		"a/..":                 "trailing dot-dot",
		"../a":                 "leading dot-dot",
		"a/../b":               "inner dot-dot",
		"a/./b":                "inner dot",
		"./a":                  "leading dot",
		"a\x00b":               "NUL",
		"\x00":                 "only NUL",
		"a\xffb":               "invalid UTF-8",
		"\xc3":                 "truncated UTF-8",
		"\xed\xa0\x80":         "surrogate",
		long + "x":             "too long",
		seg + "x":              "segment too long",
		"a/" + seg + "x/b":     "inner segment too long",
		strings.Repeat("/", 3): "slashes",
	}
	for n, why := range bad {
		err := check(n)
		if !errors.Is(err, ErrBad) {
			t.Errorf("ValidName(%q) (%s) = %v, want ErrBad", n, why, err)
		}
	}
}

func TestParsePrefix(t *testing.T) {
	for in, want := range map[string]string{
		"": "", "/": "", "//": "", "a": "a", "a/": "a", "a//": "a", "a/b/": "a/b", "a/b": "a/b", "é/": "é",
	} {
		got, err := ParsePrefix(in)
		if err != nil || got.String() != want || got.IsRoot() != (want == "") {
			t.Errorf("ParsePrefix(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"/a", "a//b/", "./", "../", "a/./", "a\x00/", "\xff/", "/a/"} {
		if got, err := ParsePrefix(in); !errors.Is(err, ErrBad) {
			t.Errorf("ParsePrefix(%q) = %q, %v; want ErrBad", in, got, err)
		}
	}
}

func TestNameParts(t *testing.T) {
	n := Must("a/b/c.txt")
	if n.Base() != "c.txt" || n.Dir().String() != "a/b" || n.AsPrefix().Lead() != "a/b/c.txt/" {
		t.Errorf("parts of %s: %q %q %q", n, n.Base(), n.Dir(), n.AsPrefix().Lead())
	}
	if top := Must("top"); top.Base() != "top" || !top.Dir().IsRoot() {
		t.Errorf("parts of top: %q %q", top.Base(), top.Dir())
	}
	p, _ := ParsePrefix("a/b")
	if rel, ok := p.Rel(n); !ok || rel != "c.txt" {
		t.Errorf("Rel = %q %v", rel, ok)
	}
	if _, ok := p.Rel(Must("a/bc")); ok {
		t.Error("a/bc is not below a/b")
	}
	if j, err := p.Join("x/y"); err != nil || j.String() != "a/b/x/y" {
		t.Errorf("Join = %v %v", j, err)
	}
	if _, err := p.Join("../x"); !errors.Is(err, ErrBad) {
		t.Errorf("Join of ../x: %v", err)
	}
	var root Prefix
	if rel, ok := root.Rel(n); !ok || rel != n.String() || root.Lead() != "" {
		t.Errorf("root Rel = %q %v", rel, ok)
	}
	var dec struct{ N Name }
	if err := json.Unmarshal([]byte(`{"N":"a/../b"}`), &dec); !errors.Is(err, ErrBad) {
		t.Errorf("decoding a bad name from JSON: %v", err)
	}
	if err := json.Unmarshal([]byte(`{"N":"a/b"}`), &dec); err != nil || dec.N.String() != "a/b" {
		t.Errorf("decoding a name from JSON: %v %v", dec.N, err)
	}
	long := strings.Repeat("x", 5000)
	if _, err := Parse(long); err == nil || len(err.Error()) > 300 {
		t.Errorf("the error about a 5000-byte name is %d bytes", len(err.Error()))
	}
}

// nameSpec is the specification Parse implements, written out
// independently: it accepts exactly what it returns true for.
func nameSpec(name string) bool {
	if name == "" || len(name) > MaxLen || !utf8.ValidString(name) || strings.ContainsRune(name, 0) {
		return false
	}
	if strings.HasPrefix(name, "/") || path.Clean(name) != name {
		return false
	}
	for _, seg := range strings.Split(name, "/") {
		if seg == "" || seg == "." || seg == ".." || len(seg) > MaxSegment {
			return false
		}
	}
	return true
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"", "a", "a/b", "/a", "a/", "a//b", ".", "..", "a/../b", "a/./b", "a\x00", "\xff",
		"héllo/wörld", strings.Repeat("x", MaxSegment+1), strings.Repeat("ab/", 1400), "...", "a/.b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		n, err := Parse(name)
		if err != nil && !errors.Is(err, ErrBad) {
			t.Fatalf("Parse(%q) = %v, which does not wrap ErrBad", name, err)
		}
		if want := nameSpec(name); (err == nil) != want {
			t.Fatalf("Parse(%q) = %v, specification says valid=%v", name, err, want)
		}
		if err != nil {
			return
		}
		// Accepted names: the properties restore relies on.
		if len(name) == 0 || len(name) > MaxLen || !utf8.ValidString(name) || strings.IndexByte(name, 0) >= 0 {
			t.Fatalf("accepted %q", name)
		}
		if path.Clean(name) != name || path.IsAbs(name) {
			t.Fatalf("accepted %q, which path.Clean changes to %q", name, path.Clean(name))
		}
		for _, seg := range strings.Split(name, "/") {
			if seg == "" || seg == "." || seg == ".." || len(seg) > MaxSegment {
				t.Fatalf("accepted %q with segment %q", name, seg)
			}
		}
		// An accepted name is its own listing prefix, and what it says.
		if p, err := ParsePrefix(name); err != nil || p.String() != name || n.String() != name {
			t.Fatalf("ParsePrefix(%q) = %q, %v", name, p, err)
		}
	})
}
