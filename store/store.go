package store

import (
	"context"
	"time"

	"github.com/loftstore/loft/fault"
)

// ErrNotFound is returned when a chunk is not in a store.
var ErrNotFound = fault.New(fault.NotFound, "chunk not found")

// Info describes a stored chunk.
type Info struct {
	ID      ID
	Stored  int64 // bytes on disk, header included
	ModTime time.Time
}

// Store is a content-addressed chunk store. Chunks are immutable: writing a
// chunk that is already present is not an error. Implementations are safe
// for concurrent use.
type Store interface {
	// Get returns the plain bytes of a chunk after verifying them against
	// id; it may use buf's storage for them. A chunk whose bytes do not
	// match is an *IntegrityError, never returned data.
	Get(ctx context.Context, id ID, buf []byte) ([]byte, error)
	// Stat returns ErrNotFound when the chunk is absent.
	Stat(ctx context.Context, id ID) (Info, error)
	// Walk calls fn for every chunk in the store, in no particular order.
	Walk(ctx context.Context, fn func(Info) error) error
	// RemoveIfOlder removes the chunk if its file was last written before
	// cutoff, and reports whether it did. A concurrent write of the same chunk
	// either survives or was never lost: the check and the removal cannot be
	// split by a rename of a fresh copy into place.
	RemoveIfOlder(ctx context.Context, id ID, cutoff time.Time) (bool, error)
	// Remove removes the chunk; removing an absent chunk is not an error.
	Remove(ctx context.Context, id ID) error
	// NewBatch starts a group of writes made durable together.
	NewBatch() Batch
	// CleanTemp removes temporary files of writes that were never committed
	// and were last written before cutoff, and returns how many it removed.
	CleanTemp(ctx context.Context, cutoff time.Time) (int, error)
}

// Batch collects chunk writes and makes them durable together, which costs
// far less than one flush per chunk. Add and Commit may be called from
// several goroutines; Commit waits for nothing but the writes already added.
type Batch interface {
	// Add stages a chunk and returns its stored size. The chunk is neither
	// visible under its name nor durable until Commit returns.
	Add(ctx context.Context, id ID, plain []byte) (stored int64, err error)
	// Commit makes every chunk added so far durable under its final name. It
	// may be called several times; each call covers the chunks added since the
	// previous one. After an error the batch is unusable and must be aborted.
	Commit(ctx context.Context) error
	// Abort removes staged chunks that were not committed. It is safe to call
	// after Commit and more than once.
	Abort()
}
