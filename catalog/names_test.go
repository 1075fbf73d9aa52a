package catalog

import (
	"errors"
	"path"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestValidName(t *testing.T) {
	seg := strings.Repeat("s", MaxSegmentLen)
	// The longest name: segments joined by slashes, topped up to exactly
	// MaxNameLen.
	long := strings.Repeat(strings.Repeat("s", 200)+"/", MaxNameLen/201)
	long += strings.Repeat("t", MaxNameLen-len(long))

	good := []string{
		"a", "a/b/c", "héllo/wörld", "日本語/ファイル.txt", "emoji/\U0001F600", "...", "a/...", ".hidden", "a/.b", "..a", "a..",
		"a b", "a\\b", "a:b", "-", "~", seg, seg + "/" + seg, long, "\u00a0", "a/b.c/d-e_f",
	}
	for _, n := range good {
		if err := ValidName(n); err != nil {
			t.Errorf("ValidName(%q) = %v, want nil", n, err)
		}
	}
	if len(long) != MaxNameLen {
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
		err := ValidName(n)
		if !errors.Is(err, ErrBadName) {
			t.Errorf("ValidName(%q) (%s) = %v, want ErrBadName", n, why, err)
		}
	}
}

func TestCleanPrefix(t *testing.T) {
	for in, want := range map[string]string{
		"": "", "/": "", "//": "", "a": "a", "a/": "a", "a//": "a", "a/b/": "a/b", "a/b": "a/b", "é/": "é",
	} {
		got, err := CleanPrefix(in)
		if err != nil || got != want {
			t.Errorf("CleanPrefix(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"/a", "a//b/", "./", "../", "a/./", "a\x00/", "\xff/", "/a/"} {
		if got, err := CleanPrefix(in); !errors.Is(err, ErrBadName) {
			t.Errorf("CleanPrefix(%q) = %q, %v; want ErrBadName", in, got, err)
		}
	}
}

// nameSpec is the specification ValidName implements, written out
// independently: it accepts exactly what it returns true for.
func nameSpec(name string) bool {
	if name == "" || len(name) > MaxNameLen || !utf8.ValidString(name) || strings.ContainsRune(name, 0) {
		return false
	}
	if strings.HasPrefix(name, "/") || path.Clean(name) != name {
		return false
	}
	for _, seg := range strings.Split(name, "/") {
		if seg == "" || seg == "." || seg == ".." || len(seg) > MaxSegmentLen {
			return false
		}
	}
	return true
}

func FuzzValidName(f *testing.F) {
	for _, s := range []string{"", "a", "a/b", "/a", "a/", "a//b", ".", "..", "a/../b", "a/./b", "a\x00", "\xff",
		"héllo/wörld", strings.Repeat("x", MaxSegmentLen+1), strings.Repeat("ab/", 1400), "...", "a/.b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		err := ValidName(name)
		if err != nil && !errors.Is(err, ErrBadName) {
			t.Fatalf("ValidName(%q) = %v, which does not wrap ErrBadName", name, err)
		}
		if want := nameSpec(name); (err == nil) != want {
			t.Fatalf("ValidName(%q) = %v, specification says valid=%v", name, err, want)
		}
		if err != nil {
			return
		}
		// Accepted names: the properties restore relies on.
		if len(name) == 0 || len(name) > MaxNameLen || !utf8.ValidString(name) || strings.IndexByte(name, 0) >= 0 {
			t.Fatalf("accepted %q", name)
		}
		if path.Clean(name) != name || path.IsAbs(name) {
			t.Fatalf("accepted %q, which path.Clean changes to %q", name, path.Clean(name))
		}
		for _, seg := range strings.Split(name, "/") {
			if seg == "" || seg == "." || seg == ".." || len(seg) > MaxSegmentLen {
				t.Fatalf("accepted %q with segment %q", name, seg)
			}
		}
		// An accepted name is its own listing prefix.
		if p, err := CleanPrefix(name); err != nil || p != name {
			t.Fatalf("CleanPrefix(%q) = %q, %v", name, p, err)
		}
	})
}
