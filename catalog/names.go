package catalog

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/loftstore/loft/fault"
)

const (
	// MaxNameLen bounds an object name in bytes.
	MaxNameLen = 4096
	// MaxSegmentLen bounds one slash-separated segment, as file systems do.
	MaxSegmentLen = 255
)

// ErrBadName is wrapped by every name validation error.
var ErrBadName = fault.New(fault.Invalid, "bad object name")

// ValidName checks an object name: relative, slash-separated, valid UTF-8,
// with no empty, "." or ".." segment and no NUL byte. Names map to paths on
// restore, so anything that could escape the destination or be ambiguous is
// refused here, at the one entrance.
func ValidName(name string) error {
	bad := func(why string) error { return fmt.Errorf("%w %q: %s", ErrBadName, name, why) }
	switch {
	case name == "":
		return bad("name is empty")
	case len(name) > MaxNameLen:
		return bad(fmt.Sprintf("longer than %d bytes", MaxNameLen))
	case !utf8.ValidString(name):
		return bad("not valid UTF-8")
	case strings.IndexByte(name, 0) >= 0:
		return bad("contains a NUL byte")
	case name[0] == '/':
		return bad("must be relative, not start with /")
	}
	for seg := range strings.SplitSeq(name, "/") {
		switch {
		case seg == "":
			return bad("has an empty segment")
		case seg == "." || seg == "..":
			return bad(fmt.Sprintf("has a %q segment", seg))
		case len(seg) > MaxSegmentLen:
			return bad(fmt.Sprintf("has a segment longer than %d bytes", MaxSegmentLen))
		}
	}
	return nil
}

// CleanPrefix validates a listing prefix and returns it without trailing
// slashes; "" (and "/") mean the whole namespace.
func CleanPrefix(prefix string) (string, error) {
	p := strings.TrimRight(prefix, "/")
	if p == "" {
		return "", nil
	}
	if err := ValidName(p); err != nil {
		return "", err
	}
	return p, nil
}
