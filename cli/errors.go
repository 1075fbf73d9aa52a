package cli

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"syscall"

	"github.com/loftstore/loft/catalog"
	"github.com/loftstore/loft/node"
	"github.com/loftstore/loft/store"
	"github.com/loftstore/loft/transfer"
)

// Exit codes. The README documents them; TestExitCodes pins them.
const (
	ExitOK          = 0
	ExitError       = 1   // anything not listed below
	ExitUsage       = 2   // bad flags, arguments or object names
	ExitNotFound    = 3   // no such object, version or path
	ExitIntegrity   = 4   // stored data is corrupt or missing; check found problems
	ExitPartial     = 5   // some inputs failed, the rest was done
	ExitRepository  = 6   // no repository, a newer format, a damaged or busy catalog
	ExitNoSpace     = 7   // the disk is full
	ExitPeer        = 8   // a peer is unknown, unreachable, or refused the request
	ExitInterrupted = 130 // stopped by SIGINT or SIGTERM
)

// usageError is a mistake in how loft was called, with a hint.
type usageError struct {
	msg  string
	hint string
}

func (e *usageError) Error() string { return e.msg }

func usageErrorf(hint, format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...), hint: hint}
}

// partialError says some inputs failed; the details were printed already.
// When one of them failed on corrupt or missing data, the error is an
// integrity error too, which has the stronger exit code.
type partialError struct {
	failed, total int
	integrity     bool
}

func (e *partialError) Error() string {
	return fmt.Sprintf("%d of %d inputs failed", e.failed, e.total)
}

func (e *partialError) Is(target error) bool { return e.integrity && target == store.ErrIntegrity }

// problemsError says check found problems it did not repair.
type problemsError struct{ n int }

func (e *problemsError) Error() string {
	if e.n == 1 {
		return "check found 1 problem it did not repair"
	}
	return fmt.Sprintf("check found %d problems it did not repair", e.n)
}

// exitCode maps an error to the documented exit codes. The order matters:
// the first match wins, most specific first.
func exitCode(err error) int {
	var ue *usageError
	var pe *partialError
	var ce *problemsError
	switch {
	case err == nil:
		return ExitOK
	case errors.Is(err, context.Canceled):
		return ExitInterrupted
	case errors.Is(err, syscall.ENOSPC):
		return ExitNoSpace
	case errors.As(err, &ue), errors.Is(err, catalog.ErrBadName), errors.Is(err, node.ErrNeedName),
		errors.Is(err, node.ErrNeedDest), errors.Is(err, node.ErrIsDir), errors.Is(err, store.ErrBadParams),
		errors.Is(err, catalog.ErrBadSetting), errors.Is(err, node.ErrDestination),
		errors.Is(err, node.ErrSpecialFile), errors.Is(err, node.ErrDuplicateName), errors.Is(err, store.ErrBadPeerID):
		return ExitUsage
	case errors.Is(err, store.ErrIntegrity), errors.As(err, &ce):
		return ExitIntegrity
	case errors.As(err, &pe):
		return ExitPartial
	case errors.Is(err, node.ErrNoRepository), errors.Is(err, node.ErrExists), errors.Is(err, catalog.ErrNewerFormat),
		errors.Is(err, catalog.ErrCorrupt), errors.Is(err, catalog.ErrBusy), errors.Is(err, catalog.ErrNoCatalog):
		return ExitRepository
	case errors.Is(err, catalog.ErrNotFound), errors.Is(err, catalog.ErrDeleted), errors.Is(err, fs.ErrNotExist):
		return ExitNotFound
	case errors.Is(err, node.ErrNoPeer), errors.Is(err, node.ErrUnreachable), errors.Is(err, node.ErrRemoteRefused),
		errors.Is(err, transfer.ErrBadInvite), errors.Is(err, catalog.ErrInvite):
		return ExitPeer
	}
	return ExitError
}

// report prints err as one line (and a hint for usage errors) and returns
// the exit code.
func (e *runEnv) report(err error) int {
	code := exitCode(err)
	if err == nil {
		return code
	}
	switch code {
	case ExitInterrupted:
		fmt.Fprintln(e.Stderr, "loft: interrupted")
	default:
		fmt.Fprintf(e.Stderr, "loft: %v\n", err)
	}
	var ue *usageError
	if errors.As(err, &ue) && ue.hint != "" {
		fmt.Fprintf(e.Stderr, "Try: %s\n", ue.hint)
	}
	return code
}
