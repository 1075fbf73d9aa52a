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
	"github.com/loftstore/loft/node"
	"github.com/loftstore/loft/store"
)

// TestExitCodes pins the documented mapping from errors to exit codes,
// also through wrapping.
func TestExitCodes(t *testing.T) {
	wrap := func(err error) error { return fmt.Errorf("get photos/a.jpg: %w", err) }
	for _, tc := range []struct {
		err  error
		want int
	}{
		{nil, ExitOK},
		{errors.New("boom"), ExitError},
		{fs.ErrPermission, ExitError},
		{usageErrorf("loft put FILE", "put needs a PATH"), ExitUsage},
		{wrap(catalog.ErrBadName), ExitUsage},
		{wrap(node.ErrNeedName), ExitUsage},
		{node.ErrNeedDest, ExitUsage},
		{wrap(node.ErrIsDir), ExitUsage},
		{store.ErrBadParams, ExitUsage},
		{wrap(catalog.ErrBadSetting), ExitUsage},
		{wrap(node.ErrDestination), ExitUsage},
		{wrap(catalog.ErrNotFound), ExitNotFound},
		{wrap(catalog.ErrDeleted), ExitNotFound},
		{&fs.PathError{Op: "stat", Path: "x", Err: fs.ErrNotExist}, ExitNotFound},
		{wrap(&store.IntegrityError{Object: "a", Reason: "bad"}), ExitIntegrity},
		{&problemsError{n: 2}, ExitIntegrity},
		{&partialError{failed: 1, total: 3}, ExitPartial},
		{&partialError{failed: 1, total: 3, integrity: true}, ExitIntegrity},
		{wrap(node.ErrNoRepository), ExitRepository},
		{node.ErrExists, ExitRepository},
		{wrap(catalog.ErrNewerFormat), ExitRepository},
		{wrap(catalog.ErrCorrupt), ExitRepository},
		{wrap(catalog.ErrBusy), ExitRepository},
		{wrap(&fs.PathError{Op: "write", Path: "x", Err: syscall.ENOSPC}), ExitNoSpace},
		{wrap(context.Canceled), ExitInterrupted},
		// A full disk wins over the error it surfaced as.
		{fmt.Errorf("%w: %w", catalog.ErrCorrupt, syscall.ENOSPC), ExitNoSpace},
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
	if code := e.report(usageErrorf("loft get NAME [DEST]", "get needs a NAME")); code != ExitUsage {
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
			if err == nil || exitCode(err) != ExitUsage {
				t.Errorf("%q: want a usage error, got %v %v", tc.in, got, err)
			}
			continue
		}
		if err != nil || strings.Join(got, " ") != tc.want {
			t.Errorf("%q: got %q %v, want %q", tc.in, strings.Join(got, " "), err, tc.want)
		}
	}
}
