package node

import (
	"context"
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

func wireVersion(v catalog.Version) transfer.Version {
	return transfer.Version{Origin: v.Origin, Name: v.Name, Num: v.Num, Deleted: v.Deleted, Size: v.Size, Mode: v.Mode,
		MTime: v.MTime, ContentType: v.ContentType, SHA256: v.SHA256, Created: v.Created, Chunks: v.Chunks,
		Restored: v.RestoredFrom}
}

func versionOf(v transfer.Version) catalog.Version {
	return catalog.Version{Origin: v.Origin, Name: v.Name, Num: v.Num, Deleted: v.Deleted, Size: v.Size, Mode: v.Mode,
		MTime: v.MTime, ContentType: v.ContentType, SHA256: v.SHA256, Created: v.Created, Chunks: v.Chunks,
		RestoredFrom: v.Restored}
}

func wireVersions(vs []catalog.Version) []transfer.Version {
	out := make([]transfer.Version, len(vs))
	for i, v := range vs {
		out[i] = wireVersion(v)
	}
	return out
}

func wireRefs(refs []catalog.ChunkRef) []transfer.ChunkRef {
	out := make([]transfer.ChunkRef, len(refs))
	for i, r := range refs {
		out[i] = transfer.ChunkRef{ID: r.ID, Plain: r.Plain, Stored: r.Stored}
	}
	return out
}

func refsOf(refs []transfer.ChunkRef) []catalog.ChunkRef {
	out := make([]catalog.ChunkRef, len(refs))
	for i, r := range refs {
		out[i] = catalog.ChunkRef{ID: r.ID, Plain: r.Plain, Stored: r.Stored}
	}
	return out
}

// chunkPage returns a page of the chunk list of version num (0: newest)
// of name.
func (n *Node) chunkPage(ctx context.Context, name string, num, from int64, limit int) ([]catalog.ChunkRef, error) {
	var v catalog.Version
	var err error
	if num > 0 {
		v, err = n.cat.Version(ctx, name, num)
	} else {
		v, err = n.cat.Head(ctx, name)
	}
	if err != nil {
		return nil, err
	}
	var out []catalog.ChunkRef
	err = n.cat.Chunks(ctx, v, from, func(_ int64, ref catalog.ChunkRef) error {
		if len(out) == limit {
			return errStop
		}
		out = append(out, ref)
		return nil
	})
	if errors.Is(err, errStop) {
		err = nil
	}
	return out, err
}

// listPage answers a listing request a page at a time: entries after
// req.After, in name order.
func (n *Node) listPage(ctx context.Context, req transfer.ListReq) (transfer.ListResp, error) {
	var resp transfer.ListResp
	err := n.List(ctx, req.Prefix, catalog.ListOptions{Recursive: req.Recursive, Deleted: req.Deleted}, func(e catalog.Entry) error {
		if req.After != "" && e.Name <= req.After {
			return nil
		}
		if len(resp.Entries) == req.Limit {
			resp.More = true
			return errStop
		}
		resp.Entries = append(resp.Entries, transfer.Entry{Name: e.Name, Dir: e.Dir, Versions: e.Versions, Head: wireVersion(e.Head)})
		return nil
	})
	if errors.Is(err, errStop) {
		err = nil
	}
	return resp, err
}

// peerError turns a peer's error code back into the error the local
// operation would have returned, so the CLI maps it to the same exit code.
func peerError(err error) error {
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
