package cluster

import (
	"github.com/loftstore/loft/catalog"
	"github.com/loftstore/loft/transfer"
)

// Conversions between catalog records and their wire form.

func wireRemote(rv catalog.RemoteVersion) transfer.Version {
	return transfer.Version{Origin: rv.Origin, OriginSeq: rv.OriginSeq, Op: rv.Op, Name: rv.Name, Deleted: rv.Deleted,
		Size: rv.Size, Mode: rv.Mode, MTime: rv.MTime, ContentType: rv.ContentType, SHA256: rv.SHA256,
		Created: rv.Created, VV: rv.VV, Chunks: rv.Chunks, Gone: rv.Gone, Hash: rv.Hash, Kind: string(rv.Kind), Target: rv.Target,
		Drop: wireDrop(rv.Drop), Meta: rv.Meta}
}

func wireDrop(ids []catalog.Identity) []transfer.VersionID {
	if len(ids) == 0 {
		return nil
	}
	out := make([]transfer.VersionID, len(ids))
	for i, id := range ids {
		out[i] = transfer.VersionID{Origin: id.Origin, Seq: id.Seq}
	}
	return out
}

func dropOf(ids []transfer.VersionID) []catalog.Identity {
	if len(ids) == 0 {
		return nil
	}
	out := make([]catalog.Identity, len(ids))
	for i, id := range ids {
		out[i] = catalog.Identity{Origin: id.Origin, Seq: id.Seq}
	}
	return out
}

func remoteOf(v transfer.Version) catalog.RemoteVersion {
	return catalog.RemoteVersion{Origin: v.Origin, OriginSeq: v.OriginSeq, Op: v.Op, Name: v.Name, Deleted: v.Deleted,
		Size: v.Size, Mode: v.Mode, MTime: v.MTime, ContentType: v.ContentType, SHA256: v.SHA256,
		Created: v.Created, VV: v.VV, Chunks: v.Chunks, Gone: v.Gone, Hash: v.Hash, Kind: catalog.Kind(v.Kind), Target: v.Target,
		Drop: dropOf(v.Drop), Meta: v.Meta}
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
