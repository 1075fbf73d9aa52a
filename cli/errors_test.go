package cli

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"syscall"
	"testing"

	"github.com/loftstore/loft/catalog"
	"github.com/loftstore/loft/fault"
	"github.com/loftstore/loft/names"
	"github.com/loftstore/loft/node"
	"github.com/loftstore/loft/store"
	"github.com/loftstore/loft/transfer"
)

// TestExitCodes pins the documented mapping from errors to exit codes,
// also through wrapping.
func TestExitCodes(t *testing.T) {
	wrap := func(err error) error { return fmt.Errorf("get photos/a.jpg: %w", err) }
	for _, tc := range []struct {
		err  error
		want int
	}{
		{nil, 0},
		{errors.New("boom"), 1},
		{fs.ErrPermission, 1},
		{usageErrorf("loft put FILE", "put needs a PATH"), 2},
		{wrap(names.ErrBad), 2},
		{wrap(node.ErrNeedName), 2},
		{node.ErrNeedDest, 2},
		{wrap(node.ErrIsDir), 2},
		{store.ErrBadParams, 2},
		{wrap(catalog.ErrBadSetting), 2},
		{wrap(node.ErrDestination), 2},
		{wrap(catalog.ErrNotFound), 3},
		{wrap(catalog.ErrDeleted), 3},
		{&fs.PathError{Op: "stat", Path: "x", Err: fs.ErrNotExist}, 3},
		{wrap(&store.IntegrityError{Object: "a", Reason: "bad"}), 4},
		{&problemsError{n: 2}, 4},
		{&partialError{failed: 1, total: 3}, 5},
		{&partialError{failed: 1, total: 3, integrity: true}, 4},
		{wrap(node.ErrNoRepository), 6},
		{node.ErrExists, 6},
		{wrap(catalog.ErrNewerFormat), 6},
		{wrap(catalog.ErrCorrupt), 6},
		{wrap(catalog.ErrBusy), 6},
		{wrap(&fs.PathError{Op: "write", Path: "x", Err: syscall.ENOSPC}), 7},
		{wrap(context.Canceled), 130},
		// Errors that crossed the wire keep their kind.
		{wrap(&transfer.CodeError{Code: fault.NotFound, Msg: "x"}), 3},
		{wrap(&transfer.CodeError{Code: fault.Deleted, Msg: "x"}), 3},
		{wrap(&transfer.CodeError{Code: fault.Integrity, Msg: "x"}), 4},
		{wrap(&transfer.CodeError{Code: fault.Invalid, Msg: "x"}), 2},
		{wrap(&transfer.CodeError{Code: fault.NoSpace, Msg: "x"}), 7},
		{wrap(&transfer.CodeError{Code: fault.Denied, Msg: "x"}), 8},
		{wrap(&transfer.CodeError{Code: 999, Msg: "a code from a newer peer"}), 1},
		{wrap(node.ErrNoPeer), 8},
		{wrap(transfer.ErrBadInvite), 8},
		// A full disk wins over the error it surfaced as.
		{fmt.Errorf("%w: %w", catalog.ErrCorrupt, syscall.ENOSPC), 7},
	} {
		if got := exitCode(tc.err); got != tc.want {
			t.Errorf("exitCode(%v) = %d, want %d", tc.err, got, tc.want)
		}
	}
}

// TestReport: one line per error, a hint after usage errors.
func TestReport(t *testing.T) {
	var b strings.Builder
	e := &runEnv{Env: Env{Stderr: &b}}
	if code := e.report(usageErrorf("loft get NAME [DEST]", "get needs a NAME")); code != 2 {
		t.Fatalf("code %d", code)
	}
	if b.String() != "loft: get needs a NAME\nTry: loft get NAME [DEST]\n" {
		t.Fatalf("usage report: %q", b.String())
	}
	b.Reset()
	e.report(context.Canceled)
	if b.String() != "loft: interrupted\n" {
		t.Fatalf("interrupt report: %q", b.String())
	}
}

func TestReorderArgs(t *testing.T) {
	e := &runEnv{Env: Env{Getenv: func(string) string { return "" }}}
	app := e.app()
	for _, tc := range []struct {
		in, want string
		err      bool
	}{
		{in: "loft", want: "loft"},
		{in: "loft ls", want: "loft ls"},
		{in: "loft put a --as b", want: "loft put --as b -- a"},
		{in: "loft put --as b a", want: "loft put --as b -- a"},
		{in: "loft --repo r put a --json", want: "loft --repo r put --json -- a"},
		{in: "loft put a -- -dash", want: "loft put -- a -dash"},
		{in: "loft put - --as x", want: "loft put --as x -- -"},
		{in: "loft gc --grace -1h", want: "loft gc --grace -1h"},
		{in: "loft put a --as=b", want: "loft put --as=b -- a"},
		{in: "loft get a --version 2 out", want: "loft get --version 2 -- a out"},
		{in: "loft nosuch a --x", want: "loft nosuch a --x"},
		{in: "loft put a --quiet", want: "loft --quiet put -- a"},
		{in: "loft put a --repo r --as b", want: "loft --repo r put --as b -- a"},
		{in: "loft ls --json --log-level debug", want: "loft --log-level debug ls --json"},
		{in: "loft put a --as", err: true},
		{in: "loft --repo", err: true},
	} {
		got, err := reorderArgs(app, strings.Fields(tc.in))
		if tc.err {
			if err == nil || exitCode(err) != 2 {
				t.Errorf("%q: want a usage error, got %v %v", tc.in, got, err)
			}
			continue
		}
		if err != nil || strings.Join(got, " ") != tc.want {
			t.Errorf("%q: got %q %v, want %q", tc.in, strings.Join(got, " "), err, tc.want)
		}
	}
}
