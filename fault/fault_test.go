package fault

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"syscall"
	"testing"
)

// TestTable pins the table: each kind's wire number, name, exit code and
// HTTP status. The README's exit-code table says the same; numbers on the
// wire never change.
func TestTable(t *testing.T) {
	for _, tc := range []struct {
		k    Kind
		num  uint16
		name string
		exit int
		http int
	}{
		{OK, 0, "ok", 0, 200},
		{Invalid, 1, "invalid", 2, 400},
		{Unsupported, 2, "unsupported", 8, 501},
		{NotFound, 3, "not_found", 3, 404},
		{Integrity, 4, "integrity", 4, 500},
		{Busy, 5, "busy", 6, 503},
		{Internal, 6, "internal", 1, 500},
		{Denied, 7, "denied", 8, 403},
		{TooLarge, 8, "too_large", 2, 413},
		{NoSpace, 9, "no_space", 7, 507},
		{Conflict, 10, "conflict", 1, 409},
		{Deleted, 11, "deleted", 3, 404},
		{Repository, 12, "repository", 6, 503},
		{Peer, 13, "peer", 8, 502},
		{Interrupted, 14, "interrupted", 130, 503},
		{Partial, 15, "partial", 5, 500},
	} {
		if uint16(tc.k) != tc.num || tc.k.String() != tc.name || tc.k.Exit() != tc.exit || tc.k.HTTPStatus() != tc.http {
			t.Errorf("kind %d: %d %q exit %d http %d, want %d %q exit %d http %d", tc.k, uint16(tc.k), tc.k, tc.k.Exit(),
				tc.k.HTTPStatus(), tc.num, tc.name, tc.exit, tc.http)
		}
	}
	seen := map[string]bool{}
	for _, k := range Kinds() {
		if seen[k.String()] {
			t.Errorf("two kinds named %q", k)
		}
		seen[k.String()] = true
	}
	if len(seen) != 16 {
		t.Errorf("Kinds lists %d kinds", len(seen))
	}
	if Kind(999).String() != "internal" || Kind(999).Exit() != 1 {
		t.Error("an unknown code (from a newer peer) is not internal")
	}
}

func TestOf(t *testing.T) {
	sentinel := New(NotFound, "no such thing")
	wrapped := fmt.Errorf("get a: %w", sentinel)
	for _, tc := range []struct {
		err  error
		want Kind
	}{
		{nil, OK},
		{errors.New("x"), Internal},
		{wrapped, NotFound},
		{E(Integrity, "chunk %s: %w", "ab", sentinel), Integrity}, // the outermost kind
		{fmt.Errorf("a: %w", Denied), Denied},                     // a bare Kind in a chain
		{fmt.Errorf("a: %w", context.Canceled), Interrupted},
		{E(Repository, "open: %w", syscall.ENOSPC), NoSpace}, // a full disk wins
		{&fs.PathError{Op: "open", Path: "x", Err: fs.ErrNotExist}, NotFound},
		{&fs.PathError{Op: "open", Path: "x", Err: fs.ErrPermission}, Internal},
	} {
		if got := Of(tc.err); got != tc.want {
			t.Errorf("Of(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
	if !errors.Is(wrapped, sentinel) || !errors.Is(wrapped, NotFound) || errors.Is(wrapped, Deleted) {
		t.Error("errors.Is on a sentinel and on its kind")
	}
	e := E(NoSpace, "put: need %d, have %d: %w", 10, 2, syscall.ENOSPC)
	if e.Error() != "put: need 10, have 2: no space left on device" || !errors.Is(e, syscall.ENOSPC) {
		t.Errorf("E: %v", e)
	}
}
