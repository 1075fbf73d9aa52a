// Package fault is loft's one table of error kinds. Every error that a
// user, a script or a peer can see has a kind, and the kind alone decides
// the command line's exit code, the code an error travels with between
// nodes, the code in --json output and the HTTP status of the gateways.
//
// Packages keep their own sentinels (catalog.ErrNotFound,
// store.ErrIntegrity) and give each a kind with New; an error wraps them
// with %w as usual. Callers that only care about the kind, wherever the
// error came from (this node, or a peer over the wire), ask
// errors.Is(err, fault.NotFound) or fault.Of(err).
package fault

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"syscall"
)

// Kind is the kind of an error. Its number is the code the error carries
// on the wire: never renumber or reuse one, only add.
type Kind uint16

// The kinds.
const (
	OK          Kind = 0
	Invalid     Kind = 1  // bad flags, arguments, names, settings, requests
	Unsupported Kind = 2  // an operation the other side does not know
	NotFound    Kind = 3  // no such object, version, chunk or path
	Integrity   Kind = 4  // stored data is corrupt or missing
	Busy        Kind = 5  // the catalog's write lock was held too long (a peer's: Peer)
	Internal    Kind = 6  // anything else: I/O, permissions, bugs
	Denied      Kind = 7  // not allowed: a refused invite, a foreign dashboard
	TooLarge    Kind = 8  // over a size cap
	NoSpace     Kind = 9  // the disk is full
	Conflict    Kind = 10 // the state changed under the request
	Deleted     Kind = 11 // the object's newest version is a deletion
	Repository  Kind = 12 // no repository, a newer format, a damaged catalog or key
	Peer        Kind = 13 // no such paired peer, or it cannot be reached, or it broke the protocol
	Interrupted Kind = 14 // stopped by a signal, or the serving node is stopping
	Partial     Kind = 15 // some inputs failed, the others were done
)

// info is a kind's row of the table.
type info struct {
	name string // in --json output and logs; stable
	exit int    // the command line's exit code
	http int    // the gateways' HTTP status
	text string // what the kind alone says
}

func (k Kind) info() info {
	switch k {
	case OK:
		return info{"ok", 0, http.StatusOK, "ok"}
	case Invalid:
		return info{"invalid", 2, http.StatusBadRequest, "invalid request"}
	case Unsupported:
		return info{"unsupported", 8, http.StatusNotImplemented, "unsupported operation"}
	case NotFound:
		return info{"not_found", 3, http.StatusNotFound, "not found"}
	case Integrity:
		return info{"integrity", 4, http.StatusInternalServerError, "stored data is corrupt or missing"}
	case Busy:
		return info{"busy", 6, http.StatusServiceUnavailable, "catalog is busy"}
	case Denied:
		return info{"denied", 8, http.StatusForbidden, "denied"}
	case TooLarge:
		return info{"too_large", 2, http.StatusRequestEntityTooLarge, "too large"}
	case NoSpace:
		return info{"no_space", 7, http.StatusInsufficientStorage, "no space left"}
	case Conflict:
		return info{"conflict", 1, http.StatusConflict, "conflict"}
	case Deleted:
		return info{"deleted", 3, http.StatusNotFound, "object is deleted"}
	case Repository:
		return info{"repository", 6, http.StatusServiceUnavailable, "repository unusable"}
	case Peer:
		return info{"peer", 8, http.StatusBadGateway, "peer unavailable"}
	case Interrupted:
		return info{"interrupted", 130, http.StatusServiceUnavailable, "interrupted"}
	case Partial:
		return info{"partial", 5, http.StatusInternalServerError, "some inputs failed"}
	}
	return info{"internal", 1, http.StatusInternalServerError, "internal error"} // Internal, and codes from newer peers
}

// Kinds lists every kind, in code order.
func Kinds() []Kind {
	return []Kind{OK, Invalid, Unsupported, NotFound, Integrity, Busy, Internal, Denied, TooLarge, NoSpace,
		Conflict, Deleted, Repository, Peer, Interrupted, Partial}
}

// Named returns the kind with the given name, Internal for an unknown one.
func Named(name string) Kind {
	for _, k := range Kinds() {
		if k.String() == name {
			return k
		}
	}
	return Internal
}

// String returns the kind's stable name, as --json output shows it.
func (k Kind) String() string { return k.info().name }

// Exit returns the command line's exit code for the kind.
func (k Kind) Exit() int { return k.info().exit }

// HTTPStatus returns the HTTP status for the kind.
func (k Kind) HTTPStatus() int { return k.info().http }

// Error makes a Kind usable as the target of errors.Is, and as an error
// of its own (wrapped with %w, it gives the chain its kind).
func (k Kind) Error() string { return k.info().text }

// Kind returns k: a Kind in an error chain is that chain's kind.
func (k Kind) Kind() Kind { return k }

// Error is an error of a kind. Sentinels are *Errors made by New; E wraps.
type Error struct {
	kind Kind
	msg  string
	err  error
}

// New returns a sentinel error of kind k with text as its message.
func New(k Kind, text string) error { return &Error{kind: k, msg: text} }

// E returns an error of kind k, formatted as fmt.Errorf does (%w wraps).
func E(k Kind, format string, args ...any) error {
	err := fmt.Errorf(format, args...)
	return &Error{kind: k, msg: err.Error(), err: err}
}

func (e *Error) Error() string { return e.msg }

// Kind returns the error's kind.
func (e *Error) Kind() Kind { return e.kind }

// Unwrap returns the error E formatted, which wraps what %w named.
func (e *Error) Unwrap() error { return e.err }

// Is reports whether target is this error's kind.
func (e *Error) Is(target error) bool {
	k, ok := target.(Kind)
	return ok && k == e.kind
}

// Of returns the kind of err: Interrupted for a cancelled context, NoSpace
// for a full disk, then the kind of the outermost error in the chain that
// has one (the most specific: wrapping adds context, not a new cause),
// NotFound for a missing file, Internal for anything else.
func Of(err error) Kind {
	switch {
	case err == nil:
		return OK
	case errors.Is(err, context.Canceled):
		return Interrupted
	case errors.Is(err, syscall.ENOSPC):
		return NoSpace
	}
	var k interface{ Kind() Kind }
	if errors.As(err, &k) {
		return k.Kind()
	}
	if errors.Is(err, fs.ErrNotExist) {
		return NotFound
	}
	return Internal
}
