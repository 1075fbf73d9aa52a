package store

import (
	"crypto/sha256"
	"fmt"

	"github.com/loftstore/loft/fault"
)

// ErrIntegrity marks data that does not match its ID. Callers test for it with
// errors.Is; the concrete error is *IntegrityError.
var ErrIntegrity = fault.New(fault.Integrity, "integrity error")

// IntegrityError says that the bytes named by ID hash to something else, or
// could not be decoded. Object is filled in by callers that know which object
// the chunk belongs to.
type IntegrityError struct {
	ID     ID
	Object string
	Reason string
}

func (e *IntegrityError) Error() string {
	if e.Object != "" {
		return fmt.Sprintf("object %s: chunk %s is corrupt: %s", e.Object, e.ID, e.Reason)
	}
	return fmt.Sprintf("chunk %s is corrupt: %s", e.ID, e.Reason)
}

// Is makes errors.Is match ErrIntegrity and the kind fault.Integrity.
func (e *IntegrityError) Is(target error) bool {
	return target == ErrIntegrity || target == fault.Integrity
}

// Kind returns fault.Integrity.
func (e *IntegrityError) Kind() fault.Kind { return fault.Integrity }

// Verify checks that data hashes to id. It is the one check applied to every
// chunk that crosses a boundary into loft's trust: read from disk or
// received from a peer. (Batch.Add trusts its caller, which computed the ID
// from the bytes it holds.)
func Verify(id ID, data []byte) error {
	if got := sha256.Sum256(data); got != id {
		return &IntegrityError{ID: id, Reason: fmt.Sprintf("content hashes to %s", ID(got).Short())}
	}
	return nil
}
