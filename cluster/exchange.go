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
//
// The cursor is a sequence of the peer's log and the identity of the change
// read there. A peer whose log went back in time (its catalog restored from
// a backup) no longer has that change there and says so: the log is read
// again from the start, which skips what this node has (no chunk list is
// fetched for a change it holds) and applies what it lacks.
func (cl *Cluster) pullChanges(ctx context.Context, c *transfer.Conn) (int, error) {
	peer := c.Peer().String()
	applied := 0
	for range 10_000 { // bounded: a page per round trip, up to 5M changes a call
		p, err := cl.cat.FindPeer(ctx, peer)
		if err != nil {
			return applied, err
		}
		req := transfer.ChangesReq{After: p.PullSeq, AfterOrigin: p.Pull.Origin, AfterOriginSeq: p.Pull.Seq, Limit: transfer.MaxChanges}
		var resp transfer.ChangesResp
		if err := c.Call(ctx, transfer.OpChanges, req, &resp); err != nil {
			return applied, err
		}
		if resp.Reset {
			cl.log.Warn("a peer's change log went back in time: reading it again from the start", "peer", peer[:8], "was_at", p.PullSeq)
			err := cl.cat.Tx(ctx, func(tx *catalog.Tx) error {
				if err := tx.RecordHistory(ctx, catalog.HistoryLogReset, peer, map[string]any{"was_at": p.PullSeq, "was_change": p.Pull}); err != nil {
					return err
				}
				return tx.SetPull(ctx, peer, 0, catalog.Identity{})
			})
			if err != nil {
				return applied, err
			}
			continue
		}
		if resp.Last <= p.PullSeq {
			return applied, nil
		}
		n, err := cl.applyPage(ctx, c, resp.Changes, func(tx *catalog.Tx) error {
			return tx.SetPull(ctx, peer, resp.Last, catalog.Identity{Origin: resp.LastOrigin, Seq: resp.LastOriginSeq})
		})
		applied += n
		if err != nil {
			return applied, err
		}
		if !resp.More {
			return applied, nil
		}
	}
	return applied, nil
}

// applyPage applies a page of a peer's changes; done runs in the
// transaction that applies the last of them (it moves the cursor). Chunk
// lists are read outside the write lock, and applied in groups of at most
// applyRefs references, which bounds the memory a page of large versions
// takes. Each change applies in a savepoint: one that fails is undone whole
// (its identity too, so it can still arrive by another path) and
// quarantined. A change this node holds with the same content is skipped
// before its chunk list is read.
func (cl *Cluster) applyPage(ctx context.Context, c *transfer.Conn, changes []transfer.Change, done func(*catalog.Tx) error) (int, error) {
	peer := c.Peer().String()
	known, err := cl.knownChanges(ctx, changes)
	if err != nil {
		return 0, err
	}
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
	var groupRefs, applied int
	apply := func(last bool) error {
		var forks []catalog.Identity
		err := cl.cat.Tx(ctx, func(tx *catalog.Tx) error {
			forks = forks[:0]
			for _, it := range group {
				var ap catalog.Applied
				err := tx.Savepoint(ctx, func() error {
					var err error
					ap, err = tx.ApplyRemote(ctx, it.in, it.refs)
					return err
				})
				if err != nil {
					if catalog.AboutNode(err) {
						return err // the page is tried again at the next exchange
					}
					bad = append(bad, refused{it.in.Version(), err})
					continue
				}
				if ap.Fork {
					rv := it.in.Version()
					forks = append(forks, catalog.Identity{Origin: rv.Origin, Seq: rv.OriginSeq})
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
			if len(forks) > 0 {
				cl.log.Warn("a peer sent changes whose identity this node applied with another content; set aside until their origin renumbers them",
					"peer", peer[:8], "changes", len(forks))
				if err := tx.RecordHistory(ctx, catalog.HistoryFork, peer, map[string]any{"changes": forks}); err != nil {
					return err
				}
			}
			if last {
				return done(tx)
			}
			return nil
		})
		group, bad, groupRefs = group[:0], bad[:0], 0
		return err
	}
	for _, ch := range changes {
		rv := remoteOf(ch.Version)
		if known[catalog.Identity{Origin: rv.Origin, Seq: rv.OriginSeq}].Knows(rv) {
			continue // held already: nothing to read or apply
		}
		in, err := catalog.ParseRemote(rv)
		if err != nil {
			bad = append(bad, refused{rv, err})
			continue
		}
		in = in.From(peer)
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
				in = in.From(peer)
			case k == fault.Peer || catalog.AboutNode(err):
				return applied, err
			default:
				bad = append(bad, refused{rv, err})
				continue
			}
		}
		group = append(group, item{in, refs})
		groupRefs += len(refs)
		if groupRefs >= applyRefs {
			if err := apply(false); err != nil {
				return applied, err
			}
		}
	}
	return applied, apply(true)
}

// knownChanges returns what this node holds of the changes in a page.
func (cl *Cluster) knownChanges(ctx context.Context, changes []transfer.Change) (map[catalog.Identity]catalog.Logged, error) {
	byOrigin := map[string][]int64{}
	for _, ch := range changes {
		byOrigin[ch.Version.Origin] = append(byOrigin[ch.Version.Origin], ch.Version.OriginSeq)
	}
	out := map[catalog.Identity]catalog.Logged{}
	for origin, seqs := range byOrigin {
		ls, err := cl.cat.Logged(ctx, origin, seqs)
		if err != nil {
			return nil, err
		}
		for s, l := range ls {
			out[catalog.Identity{Origin: origin, Seq: s}] = l
		}
	}
	return out, nil
}

// audit compares what a peer holds of this node's own history with what
// this node's catalog holds, from where the last audit with the peer
// stopped. A change the peer holds that this catalog lacks, or holds with
// another content, was lost: the catalog went back in time (restored from
// a backup, or a WAL SQLite dropped). It is taken back (catalog.TakeBack),
// and this node continues after it. The audit runs on every exchange, so
// on start and on every new connection; with nothing new it costs a round
// trip and writes nothing.
//
// Audits run one at a time in a process (with every peer, the same lost
// change would be fetched twice); TakeBack skips what another process
// took back first.
func (cl *Cluster) audit(ctx context.Context, c *transfer.Conn) error {
	cl.auditing.Lock()
	defer cl.auditing.Unlock()
	peer, me := c.Peer().String(), cl.id.String()
	for range 10_000 {
		p, err := cl.cat.FindPeer(ctx, peer)
		if err != nil {
			return err
		}
		var resp transfer.ChangesResp
		if err := c.Call(ctx, transfer.OpOrigin, transfer.OriginReq{Origin: me, After: p.AuditSeq, Limit: transfer.MaxChanges}, &resp); err != nil {
			return err
		}
		if len(resp.Changes) == 0 || resp.Last <= p.AuditSeq {
			return nil
		}
		seqs := make([]int64, len(resp.Changes))
		for i, ch := range resp.Changes {
			seqs[i] = ch.Version.OriginSeq
		}
		held, err := cl.cat.Logged(ctx, me, seqs)
		if err != nil {
			return err
		}
		var lost []catalog.Lost
		var bad []catalog.RemoteVersion
		var reasons []error
		for _, ch := range resp.Changes {
			rv := remoteOf(ch.Version)
			if held[rv.OriginSeq].Knows(rv) {
				continue
			}
			in, err := catalog.ParseRemote(rv)
			if err == nil && rv.Origin != me {
				err = fault.E(fault.Invalid, "asked for this node's changes, got one of %s", rv.Origin)
			}
			var refs []catalog.ChunkRef
			if err == nil && !rv.Gone && !rv.Deleted && rv.Chunks > 0 {
				refs, err = cl.fetchChunkList(ctx, c, transfer.ChunksReq{Origin: rv.Origin, OriginSeq: rv.OriginSeq}, rv.Chunks)
				if k := fault.Of(err); k == fault.Peer || k == fault.NotFound || catalog.AboutNode(err) {
					return err // retried at the next exchange
				}
			}
			if err != nil {
				bad, reasons = append(bad, rv), append(reasons, err)
				continue
			}
			lost = append(lost, catalog.Lost{In: in, Chunks: refs})
		}
		var taken catalog.Taken
		err = cl.cat.Tx(ctx, func(tx *catalog.Tx) error {
			var err error
			if taken, err = tx.TakeBack(ctx, lost, resp.High); err != nil {
				return err
			}
			for i, rv := range bad {
				if err := tx.Quarantine(ctx, peer, rv, reasons[i]); err != nil {
					return err
				}
			}
			if len(lost) > 0 {
				detail := map[string]any{"first": lost[0].In.Version().OriginSeq, "taken_back": taken.Applied, "renumbered": taken.Reissued}
				if err := tx.RecordHistory(ctx, catalog.HistoryRewound, peer, detail); err != nil {
					return err
				}
			}
			return tx.SetAudit(ctx, peer, resp.Last)
		})
		if err != nil {
			return err
		}
		if len(lost) > 0 {
			cl.log.Warn("this node's catalog had gone back in time: took back the changes a peer held",
				"peer", peer[:8], "taken_back", taken.Applied, "renumbered", len(taken.Reissued))
			cl.adopt(ctx, lost)
		}
		if !resp.More {
			return nil
		}
	}
	return nil
}

// adopt marks as held the chunks of taken-back versions whose files this
// node still has: written before the catalog went back in time, kept
// since (gc spares them until the audit is done).
func (cl *Cluster) adopt(ctx context.Context, lost []catalog.Lost) {
	var refs []catalog.ChunkRef
	for _, l := range lost {
		for _, r := range l.Chunks {
			if info, err := cl.disk.Stat(ctx, r.ID); err == nil {
				refs = append(refs, catalog.ChunkRef{ID: r.ID, Plain: r.Plain, Stored: info.Stored})
			}
		}
	}
	if len(refs) == 0 {
		return
	}
	if _, err := cl.cat.StoreReceived(ctx, refs); err != nil {
		cl.log.Warn("chunks of taken-back changes not marked held; replication will copy them again", "err", err)
	}
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
