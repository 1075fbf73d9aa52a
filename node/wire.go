package node

import (
	"context"
	"errors"
	"strings"

	"github.com/loftstore/loft/catalog"
	"github.com/loftstore/loft/names"
	"github.com/loftstore/loft/transfer"
)

// Conversions between catalog records and their wire form.

func wireVersion(v catalog.Version) transfer.Version {
	return transfer.Version{Origin: v.Origin, Name: v.Name, Num: v.Num, Deleted: v.Deleted, Size: v.Size, Mode: v.Mode,
		MTime: v.MTime, ContentType: v.ContentType, SHA256: v.SHA256, Created: v.Created, Chunks: v.Chunks,
		Restored: v.RestoredFrom, Kind: string(v.Kind), Target: v.Target, Meta: v.Meta.Encode()}
}

func versionOf(v transfer.Version) catalog.Version {
	// A peer's metadata that does not parse is shown as none: this is a
	// listing for display, and the version itself is what it is.
	meta, _ := catalog.ParseMeta(v.Meta)
	return catalog.Version{Origin: v.Origin, Name: v.Name, Num: v.Num, Deleted: v.Deleted, Size: v.Size, Mode: v.Mode,
		MTime: v.MTime, ContentType: v.ContentType, SHA256: v.SHA256, Created: v.Created, Chunks: v.Chunks,
		RestoredFrom: v.Restored, Kind: catalog.Kind(v.Kind), Target: v.Target, Meta: meta}
}

func wireVersions(vs []catalog.Version) []transfer.Version {
	out := make([]transfer.Version, len(vs))
	for i, v := range vs {
		out[i] = wireVersion(v)
	}
	return out
}

// chunkPage returns a page of the chunk list of version num (0: newest)
// of name.
func (n *Node) chunkPage(ctx context.Context, name names.Name, num, from int64, limit int) ([]catalog.ChunkRef, error) {
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
	prefix, err := names.ParsePrefix(req.Prefix)
	if err != nil {
		return resp, err
	}
	opts := catalog.ListOptions{Recursive: req.Recursive, Deleted: req.Deleted, Below: req.Below || strings.HasSuffix(req.Prefix, "/")}
	err = n.List(ctx, prefix, opts, func(e catalog.Entry) error {
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
