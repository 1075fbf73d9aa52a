package cluster

import (
	"context"

	"github.com/loftstore/loft/catalog"
	"github.com/loftstore/loft/fault"
	"github.com/loftstore/loft/transfer"
)

// pullChanges applies a peer's changes after this node's cursor for it,
// page by page, and returns how many it applied.
//
// A change is checked where it enters (catalog.ParseRemote). One that fails
// the check, or whose chunk list the peer cannot give, or that the catalog
// refuses, is quarantined: recorded, reported by status and check, and
// skipped. The cursor moves past it, so it never holds up the changes
// after it. Only the connection failing stops a pull, to be retried.
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
		// arrive by another path) and quarantined.
		type item struct {
			in   catalog.Incoming
			refs []catalog.ChunkRef
		}
		type refused struct {
			rv  catalog.RemoteVersion
			err error
		}
		var group []item
		var bad []refused
		var groupRefs int
		apply := func(last int64) error {
			err := cl.cat.Tx(ctx, func(tx *catalog.Tx) error {
				for _, it := range group {
					var ap catalog.Applied
					err := tx.Savepoint(ctx, func() error {
						var err error
						ap, err = tx.ApplyRemote(ctx, it.in, it.refs)
						return err
					})
					if err != nil {
						bad = append(bad, refused{it.in.Version(), err})
						continue
					}
					if !ap.Duplicate {
						applied++
					}
					if ap.Conflict != "" {
						cl.log.Warn("concurrent writes: a conflict copy shows one of them", "name", it.in.Name(), "copy", ap.Conflict)
					}
				}
				for _, r := range bad {
					cl.log.Warn("change from peer quarantined", "peer", peer[:8], "origin_seq", r.rv.OriginSeq, "err", r.err)
					if err := tx.Quarantine(ctx, peer, r.rv, r.err); err != nil {
						return err
					}
				}
				if last > 0 {
					return tx.SetPullSeq(ctx, peer, last)
				}
				return nil
			})
			group, bad, groupRefs = group[:0], bad[:0], 0
			return err
		}
		for _, ch := range resp.Changes {
			rv := remoteOf(ch.Version)
			in, err := catalog.ParseRemote(rv)
			if err != nil {
				bad = append(bad, refused{rv, err})
				continue
			}
			var refs []catalog.ChunkRef
			if !rv.Gone && !rv.Deleted && rv.Chunks > 0 {
				refs, err = cl.fetchChunkList(ctx, c, transfer.ChunksReq{Origin: rv.Origin, OriginSeq: rv.OriginSeq}, rv.Chunks)
				switch k := fault.Of(err); {
				case err == nil:
				case k == fault.NotFound:
					rv.Gone, refs = true, nil // pruned since the page was read
					if in, err = catalog.ParseRemote(rv); err != nil {
						return applied, err
					}
				case k == fault.Peer || k == fault.Interrupted:
					return applied, err
				default:
					bad = append(bad, refused{rv, err})
					continue
				}
			}
			group = append(group, item{in, refs})
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
		return nil, fault.E(fault.TooLarge, "version of %d chunks is over the limit of %d", count, catalog.MaxVersionChunks)
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
			return nil, fault.E(fault.Invalid, "peer %s sent %d of %d chunk references", c.Peer().Short(), len(out), count)
		}
		out = append(out, RefsOf(resp.Chunks)...)
	}
	return out[:count], nil
}
