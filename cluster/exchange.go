package cluster

import (
	"context"
	"errors"
	"fmt"

	"github.com/loftstore/loft/catalog"
	"github.com/loftstore/loft/transfer"
)

// pullChanges applies a peer's changes after this node's cursor for it,
// page by page, and returns how many it applied.
func (cl *Cluster) pullChanges(ctx context.Context, c *transfer.Conn) (int, error) {
	peer := c.Peer().String()
	applied := 0
	for range 10_000 { // bounded: a page per round trip, up to 5M changes a call
		p, err := cl.cat.FindPeer(ctx, peer)
		if err != nil {
			return applied, err
		}
		var resp transfer.ChangesResp
		if err := c.Call(ctx, transfer.OpChanges, transfer.ChangesReq{After: p.PullSeq, Limit: transfer.MaxChanges}, &resp); err != nil {
			return applied, err
		}
		if resp.Last <= p.PullSeq {
			return applied, nil
		}
		// Chunk lists are read outside the write lock, and applied in groups
		// of at most applyRefs references, which bounds the memory a page
		// of large versions takes. Each change applies in a savepoint: one
		// that fails is undone whole (its identity too, so it can still
		// arrive by another path), logged, and skipped.
		type item struct {
			v    transfer.Version
			refs []catalog.ChunkRef
		}
		var group []item
		var groupRefs int
		apply := func(last int64) error {
			err := cl.cat.Tx(ctx, func(tx *catalog.Tx) error {
				for _, it := range group {
					var ap catalog.Applied
					err := tx.Savepoint(ctx, func() error {
						var err error
						ap, err = tx.ApplyRemote(ctx, remoteOf(it.v), it.refs)
						return err
					})
					if err != nil {
						cl.log.Warn("change from peer not applied", "peer", peer[:8], "origin", it.v.Origin[:min(8, len(it.v.Origin))],
							"origin_seq", it.v.OriginSeq, "name", it.v.Name, "err", err)
						continue
					}
					if !ap.Duplicate {
						applied++
					}
					if ap.Conflict != "" {
						cl.log.Warn("concurrent writes: a conflict copy shows one of them", "name", it.v.Name, "copy", ap.Conflict)
					}
				}
				if last > 0 {
					return tx.SetPullSeq(ctx, peer, last)
				}
				return nil
			})
			group, groupRefs = group[:0], 0
			return err
		}
		for _, ch := range resp.Changes {
			v := ch.Version
			var refs []catalog.ChunkRef
			if !v.Gone && !v.Deleted && v.Chunks > 0 {
				refs, err = cl.fetchChunkList(ctx, c, transfer.ChunksReq{Origin: v.Origin, OriginSeq: v.OriginSeq}, v.Chunks)
				if errors.Is(err, catalog.ErrNotFound) {
					v.Gone, refs = true, nil // pruned since the page was read
				} else if err != nil {
					return applied, err
				}
			}
			group = append(group, item{v, refs})
			groupRefs += len(refs)
			if groupRefs >= applyRefs {
				if err := apply(0); err != nil {
					return applied, err
				}
			}
		}
		if err := apply(resp.Last); err != nil {
			return applied, err
		}
		if !resp.More {
			return applied, nil
		}
	}
	return applied, nil
}

// applyRefs bounds the chunk references of changes applied together.
const applyRefs = 1 << 16

// fetchChunkList reads a version's whole chunk list from a peer, a page at
// a time.
func (cl *Cluster) fetchChunkList(ctx context.Context, c *transfer.Conn, req transfer.ChunksReq, count int64) ([]catalog.ChunkRef, error) {
	if count > catalog.MaxVersionChunks {
		return nil, fmt.Errorf("version of %d chunks is over the limit of %d", count, catalog.MaxVersionChunks)
	}
	out := make([]catalog.ChunkRef, 0, count)
	op := transfer.OpVersionChunks
	if req.Origin == "" {
		op = transfer.OpChunkList
	}
	for int64(len(out)) < count {
		req.From, req.Limit = int64(len(out)), transfer.MaxIDs
		var resp transfer.ChunksResp
		if err := c.Call(ctx, op, req, &resp); err != nil {
			return nil, err
		}
		if len(resp.Chunks) == 0 {
			return nil, fmt.Errorf("peer %s sent %d of %d chunk references", c.Peer().Short(), len(out), count)
		}
		out = append(out, RefsOf(resp.Chunks)...)
	}
	return out[:count], nil
}
