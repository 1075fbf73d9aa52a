package cli

import (
	"errors"
	"fmt"

	"github.com/loftstore/loft/fault"
)

// usageError is a mistake in how loft was called, with a hint.
type usageError struct {
	msg  string
	hint string
}

func (e *usageError) Error() string { return e.msg }

// Kind returns fault.Invalid: exit code 2.
func (e *usageError) Kind() fault.Kind { return fault.Invalid }

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

// Kind is fault.Partial, or fault.Integrity when an input failed on
// corrupt or missing data.
func (e *partialError) Kind() fault.Kind {
	if e.integrity {
		return fault.Integrity
	}
	return fault.Partial
}

// problemsError says check found problems it did not repair.
type problemsError struct{ n int }

// Kind returns fault.Integrity.
func (e *problemsError) Kind() fault.Kind { return fault.Integrity }

func (e *problemsError) Error() string {
	if e.n == 1 {
		return "check found 1 problem it did not repair"
	}
	return fmt.Sprintf("check found %d problems it did not repair", e.n)
}

// exitCode maps an error to the documented exit codes: those of its kind
// (package fault holds the one table).
func exitCode(err error) int { return fault.Of(err).Exit() }

// report prints err as one line (and a hint for usage errors) and returns
// the exit code.
func (e *runEnv) report(err error) int {
	if err == nil {
		return 0
	}
	kind := fault.Of(err)
	switch kind {
	case fault.Interrupted:
		fmt.Fprintln(e.Stderr, "loft: interrupted")
	default:
		fmt.Fprintf(e.Stderr, "loft: %v\n", err)
	}
	var ue *usageError
	if errors.As(err, &ue) && ue.hint != "" {
		fmt.Fprintf(e.Stderr, "Try: %s\n", ue.hint)
	}
	if e.json && !e.wroteJSON {
		var je jsonError
		je.Error.Code, je.Error.Exit, je.Error.Message = kind.String(), kind.Exit(), err.Error()
		e.writeJSON(je)
	}
	return kind.Exit()
}
