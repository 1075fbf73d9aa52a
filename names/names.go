// Package names holds the one type an object name has inside loft.
//
// A name comes from outside the process: a command line, a peer's change
// log or request, a remote put, and (to come) an S3 key or a synced file's
// path. It is parsed once, where it enters, into a Name, which cannot hold a
// name that breaks the rules below; code inside takes a Name, not a string,
// so an unchecked name reaches neither the catalog nor the file system.
//
// The rules: a name is relative, slash-separated, valid UTF-8, at most
// MaxLen bytes, with no empty, "." or ".." segment, no segment over
// MaxSegment bytes and no NUL byte. Names map to paths when objects are
// restored, so anything that could escape a destination, or mean two
// different paths, is refused.
package names

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/loftstore/loft/fault"
)

const (
	// MaxLen bounds a name in bytes.
	MaxLen = 4096
	// MaxSegment bounds one slash-separated segment, as file systems do.
	MaxSegment = 255
)

// ErrBad is wrapped by every error about a name that breaks the rules. Its
// kind is fault.Invalid.
var ErrBad = fault.New(fault.Invalid, "bad object name")

// Name is an object name that follows the rules. The zero Name is not a
// name (IsZero); every other value came from Parse or from joining valid
// parts.
type Name struct{ s string }

// Parse checks s against the rules and returns it as a Name.
func Parse(s string) (Name, error) {
	if err := check(s); err != nil {
		return Name{}, err
	}
	return Name{s}, nil
}

// ParseArg parses a name as a person types it: trailing slashes (a
// directory typed with its slash) are dropped first.
func ParseArg(s string) (Name, error) {
	t := strings.TrimRight(s, "/")
	if t == "" && s != "" {
		return Name{}, fmt.Errorf("%w %s: names the root, not an object", ErrBad, quote(s))
	}
	return Parse(t)
}

// Must is Parse for names known to be good (tests, constants); it panics
// on a bad one.
func Must(s string) Name {
	n, err := Parse(s)
	if err != nil {
		panic(err)
	}
	return n
}

func check(s string) error {
	bad := func(why string) error { return fmt.Errorf("%w %s: %s", ErrBad, quote(s), why) }
	switch {
	case s == "":
		return bad("name is empty")
	case len(s) > MaxLen:
		return bad(fmt.Sprintf("longer than %d bytes", MaxLen))
	case !utf8.ValidString(s):
		return bad("not valid UTF-8")
	case strings.IndexByte(s, 0) >= 0:
		return bad("contains a NUL byte")
	case s[0] == '/':
		return bad("must be relative, not start with /")
	}
	for seg := range strings.SplitSeq(s, "/") {
		switch {
		case seg == "":
			return bad("has an empty segment")
		case seg == "." || seg == "..":
			return bad(fmt.Sprintf("has a %q segment", seg))
		case len(seg) > MaxSegment:
			return bad(fmt.Sprintf("has a segment longer than %d bytes", MaxSegment))
		}
	}
	return nil
}

// quote quotes a name for an error message, shortened when it is long: a
// peer may send names of any length, and a message names the culprit
// without repeating all of it.
func quote(s string) string {
	const keep = 200
	if len(s) <= keep {
		return fmt.Sprintf("%q", s)
	}
	return fmt.Sprintf("%q… (%d bytes)", s[:keep], len(s))
}

// String returns the name.
func (n Name) String() string { return n.s }

// IsZero reports whether n is the zero Name, which is no name.
func (n Name) IsZero() bool { return n.s == "" }

// Base returns the last segment.
func (n Name) Base() string { return n.s[strings.LastIndexByte(n.s, '/')+1:] }

// Dir returns the prefix n is directly below (the root for a top-level
// name).
func (n Name) Dir() Prefix {
	if i := strings.LastIndexByte(n.s, '/'); i >= 0 {
		return Prefix{n.s[:i]}
	}
	return Prefix{}
}

// AsPrefix returns n as a prefix: what lies below it.
func (n Name) AsPrefix() Prefix { return Prefix{n.s} }

// Segments returns the slash-separated segments.
func (n Name) Segments() []string { return strings.Split(n.s, "/") }

// MarshalText returns the name.
func (n Name) MarshalText() ([]byte, error) { return []byte(n.s), nil }

// UnmarshalText parses b: a Name decoded from JSON follows the rules too.
func (n *Name) UnmarshalText(b []byte) error {
	p, err := Parse(string(b))
	if err != nil {
		return err
	}
	*n = p
	return nil
}

// Prefix names a directory of objects: the root (the zero Prefix), or a
// name, below which objects lie.
type Prefix struct{ s string }

// ParsePrefix parses a prefix: "" (or only slashes) means the root;
// trailing slashes are dropped; what remains must be a name.
func ParsePrefix(s string) (Prefix, error) {
	t := strings.TrimRight(s, "/")
	if t == "" {
		return Prefix{}, nil
	}
	if err := check(t); err != nil {
		return Prefix{}, err
	}
	return Prefix{t}, nil
}

// String returns the prefix without a trailing slash; "" for the root.
func (p Prefix) String() string { return p.s }

// IsRoot reports whether p is the root.
func (p Prefix) IsRoot() bool { return p.s == "" }

// Name returns the prefix as a name; false for the root.
func (p Prefix) Name() (Name, bool) { return Name{p.s}, p.s != "" }

// Lead returns what every name below p starts with: p and a slash, or ""
// for the root.
func (p Prefix) Lead() string {
	if p.s == "" {
		return ""
	}
	return p.s + "/"
}

// Join returns the name rel (slash-separated) has below p.
func (p Prefix) Join(rel string) (Name, error) { return Parse(p.Lead() + rel) }

// Rel returns the part of n below p, and whether n lies below p at all.
func (p Prefix) Rel(n Name) (string, bool) {
	if p.s == "" {
		return n.s, true
	}
	rest, ok := strings.CutPrefix(n.s, p.s+"/")
	return rest, ok
}

// Contains reports whether n lies below p.
func (p Prefix) Contains(n Name) bool {
	_, ok := p.Rel(n)
	return ok
}
