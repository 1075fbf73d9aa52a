package cluster

import (
	"errors"
	"strings"
	"syscall"

	"github.com/loftstore/loft/catalog"
	"github.com/loftstore/loft/transfer"
)

// Conversions between catalog records and their wire form.

func wireRemote(rv catalog.RemoteVersion) transfer.Version {
	return transfer.Version{Origin: rv.Origin, OriginSeq: rv.OriginSeq, Op: rv.Op, Name: rv.Name, Deleted: rv.Deleted,
		Size: rv.Size, Mode: rv.Mode, MTime: rv.MTime, ContentType: rv.ContentType, SHA256: rv.SHA256,
		Created: rv.Created, VV: rv.VV, Chunks: rv.Chunks, Gone: rv.Gone}
}

func remoteOf(v transfer.Version) catalog.RemoteVersion {
	return catalog.RemoteVersion{Origin: v.Origin, OriginSeq: v.OriginSeq, Op: v.Op, Name: v.Name, Deleted: v.Deleted,
		Size: v.Size, Mode: v.Mode, MTime: v.MTime, ContentType: v.ContentType, SHA256: v.SHA256,
		Created: v.Created, VV: v.VV, Chunks: v.Chunks, Gone: v.Gone}
}

func WireRefs(refs []catalog.ChunkRef) []transfer.ChunkRef {
	out := make([]transfer.ChunkRef, len(refs))
	for i, r := range refs {
		out[i] = transfer.ChunkRef{ID: r.ID, Plain: r.Plain, Stored: r.Stored}
	}
	return out
}

func RefsOf(refs []transfer.ChunkRef) []catalog.ChunkRef {
	out := make([]catalog.ChunkRef, len(refs))
	for i, r := range refs {
		out[i] = catalog.ChunkRef{ID: r.ID, Plain: r.Plain, Stored: r.Stored}
	}
	return out
}

// PeerError turns a peer's error code back into the error the local
// operation would have returned, so the CLI maps it to the same exit code.
func PeerError(err error) error {
	var ce *transfer.CodeError
	if !errors.As(err, &ce) {
		return err
	}
	switch ce.Code {
	case transfer.CodeNotFound:
		if strings.Contains(ce.Msg, catalog.ErrDeleted.Error()) {
			return &remoteError{ce.Msg, catalog.ErrDeleted}
		}
		return &remoteError{ce.Msg, catalog.ErrNotFound}
	case transfer.CodeIntegrity:
		return &remoteError{ce.Msg, ErrRemoteIntegrity}
	case transfer.CodeBadRequest, transfer.CodeDenied:
		return &remoteError{ce.Msg, ErrRemoteRefused}
	case transfer.CodeNoSpace:
		return &remoteError{"peer: " + ce.Msg, syscall.ENOSPC}
	}
	return err
}

// remoteError is a peer's error message with the local error it stands for.
type remoteError struct {
	msg string
	err error
}

func (e *remoteError) Error() string { return e.msg }
func (e *remoteError) Unwrap() error { return e.err }

var (
	// ErrRemoteIntegrity means a peer found corrupt data.
	ErrRemoteIntegrity = errors.New("integrity error on the peer")
	// ErrRemoteRefused means a peer refused a request as invalid.
	ErrRemoteRefused = errors.New("refused by the peer")
)
