package node

import (
	"context"
	"errors"
	"io"
	"sync"

	"github.com/loftstore/loft/catalog"
	"github.com/loftstore/loft/cluster"
	"github.com/loftstore/loft/fault"
	"github.com/loftstore/loft/names"
	"github.com/loftstore/loft/store"
	"github.com/loftstore/loft/transfer"
)

// handler answers the requests a peer makes of this node's API: listings,
// versions, reads of chunk lists, removes and restores, remote puts, status,
// and the dashboard's event stream. The cluster answers the rest.
type handler struct {
	n *Node

	mu   sync.Mutex
	puts map[*transfer.Conn]*remotePut
}

// remotePut is the state a client's put keeps on this node: the write
// session that protects the chunks it was told this node holds, and the
// pages of a commit that has not arrived whole.
type remotePut struct {
	sess *catalog.Session

	mu     sync.Mutex // requests on one connection are served concurrently
	name   string     // of the pending commit
	chunks []catalog.ChunkRef
}

func (h *handler) Serve(ctx context.Context, c *transfer.Conn, op transfer.Op, body []byte) (any, error) {
	return h.serve(ctx, c, op, body)
}

func (h *handler) serve(ctx context.Context, c *transfer.Conn, op transfer.Op, body []byte) (any, error) {
	n := h.n
	switch op {
	case transfer.OpHave:
		var req transfer.IDList
		if err := transfer.DecodeBody(body, &req); err != nil {
			return nil, err
		}
		return h.have(ctx, c, req.IDs)
	case transfer.OpChunkList:
		var req transfer.ChunksReq
		if err := transfer.DecodeBody(body, &req); err != nil {
			return nil, err
		}
		name, err := names.Parse(req.Name)
		if err != nil {
			return nil, err
		}
		refs, err := n.chunkPage(ctx, name, req.Num, req.From, req.Limit)
		if err != nil {
			return nil, err
		}
		return transfer.ChunksResp{Chunks: cluster.WireRefs(refs)}, nil
	case transfer.OpList:
		var req transfer.ListReq
		if err := transfer.DecodeBody(body, &req); err != nil {
			return nil, err
		}
		return n.listPage(ctx, req)
	case transfer.OpVersions:
		var req transfer.NameReq
		if err := transfer.DecodeBody(body, &req); err != nil {
			return nil, err
		}
		name, err := names.Parse(req.Name)
		if err != nil {
			return nil, err
		}
		vs, err := n.Versions(ctx, name)
		if err != nil {
			return nil, err
		}
		if len(vs) > transfer.MaxVersions {
			vs = vs[:transfer.MaxVersions]
		}
		return transfer.VersionsResp{Versions: wireVersions(vs)}, nil
	case transfer.OpLookup:
		var req transfer.LookupReq
		if err := transfer.DecodeBody(body, &req); err != nil {
			return nil, err
		}
		name, err := names.Parse(req.Name)
		if err != nil {
			return nil, err
		}
		var v catalog.Version
		if req.Num > 0 {
			v, err = n.cat.Version(ctx, name, req.Num)
		} else {
			v, err = n.cat.Head(ctx, name)
		}
		if err != nil {
			return nil, err
		}
		return wireVersion(v), nil
	case transfer.OpStat:
		return n.Stat(ctx)
	case transfer.OpStatus:
		return n.Status(ctx)
	case transfer.OpRemove:
		var req transfer.RemoveReq
		if err := transfer.DecodeBody(body, &req); err != nil {
			return nil, err
		}
		objs := make([]names.Name, len(req.Names))
		for i, s := range req.Names {
			var err error
			if objs[i], err = names.ParseArg(s); err != nil {
				return nil, err
			}
		}
		res, err := n.Remove(ctx, objs, req.Recursive)
		if err != nil {
			return nil, err
		}
		return res, nil
	case transfer.OpRestore:
		var req transfer.RestoreReq
		if err := transfer.DecodeBody(body, &req); err != nil {
			return nil, err
		}
		name, err := names.Parse(req.Name)
		if err != nil {
			return nil, err
		}
		return n.Restore(ctx, name, req.Num)
	case transfer.OpBeginPut:
		return transfer.Empty{}, h.beginPut(ctx, c)
	case transfer.OpEndPut:
		h.endPut(c)
		return transfer.Empty{}, nil
	case transfer.OpCommit:
		var req transfer.CommitReq
		if err := transfer.DecodeBody(body, &req); err != nil {
			return nil, err
		}
		return h.commit(ctx, c, req)
	}
	return nil, transfer.Errorf(fault.Unsupported, "unknown operation %d", op)
}

func (h *handler) beginPut(ctx context.Context, c *transfer.Conn) error {
	// The lock covers the session's creation, so two concurrent begins on
	// one connection make one session.
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.puts == nil {
		h.puts = make(map[*transfer.Conn]*remotePut)
	}
	if _, ok := h.puts[c]; ok {
		return nil
	}
	sess, err := h.n.cat.BeginSession(ctx, "remote put from "+c.Peer().Short())
	if err != nil {
		return err
	}
	h.puts[c] = &remotePut{sess: sess}
	// The session ends with the connection, however it ends.
	go func() {
		<-c.Done()
		h.endPut(c)
	}()
	return nil
}

func (h *handler) endPut(c *transfer.Conn) {
	h.mu.Lock()
	rp := h.puts[c]
	delete(h.puts, c)
	h.mu.Unlock()
	if rp != nil {
		rp.sess.End(context.Background())
	}
}

func (h *handler) session(c *transfer.Conn) *remotePut {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.puts[c]
}

// have answers a have/want query. During a client's put, an unreferenced
// chunk reported as present is protected for the put's session first, as a
// local put protects the chunks it reuses, so a sweep cannot take it
// before the commit.
func (h *handler) have(ctx context.Context, c *transfer.Conn, ids []store.ID) (transfer.Bits, error) {
	n := h.n
	held, err := n.cat.HeldAmong(ctx, ids)
	if err != nil {
		return transfer.Bits{}, err
	}
	bits := make([]bool, len(ids))
	rp := h.session(c)
	for i, id := range ids {
		if !held.Has(id) {
			continue
		}
		if rp == nil {
			bits[i] = true
			continue
		}
		st, err := n.cat.Lookup(ctx, id)
		if err != nil {
			return transfer.Bits{}, err
		}
		if st.Refs > 0 {
			bits[i] = true
			continue
		}
		err = n.cat.Tx(ctx, func(tx *catalog.Tx) error {
			bits[i], err = n.protectHeld(ctx, tx, id, rp.sess.StartSeq)
			return err
		})
		if err != nil {
			return transfer.Bits{}, err
		}
	}
	return transfer.Bits{Bits: bits}, nil
}

// commit adds a client's version once every chunk of it is here, durable.
func (h *handler) commit(ctx context.Context, c *transfer.Conn, req transfer.CommitReq) (transfer.CommitResp, error) {
	rp := h.session(c)
	if rp == nil {
		return transfer.CommitResp{}, transfer.Errorf(fault.Invalid, "commit without a put session")
	}
	name, err := names.Parse(req.Name)
	if err != nil {
		return transfer.CommitResp{}, err
	}
	rp.mu.Lock()
	if rp.name != req.Name {
		rp.name, rp.chunks = req.Name, nil // a commit abandoned part way is dropped
	}
	if len(rp.chunks)+len(req.Chunks) > catalog.MaxVersionChunks {
		rp.name, rp.chunks = "", nil
		rp.mu.Unlock()
		return transfer.CommitResp{}, transfer.Errorf(fault.TooLarge, "version of more than %d chunks", catalog.MaxVersionChunks)
	}
	for _, r := range req.Chunks {
		rp.chunks = append(rp.chunks, catalog.ChunkRef{ID: r.ID, Plain: r.Plain, Stored: r.Stored})
	}
	if req.More {
		rp.mu.Unlock()
		return transfer.CommitResp{}, nil
	}
	refs := rp.chunks
	rp.name, rp.chunks = "", nil
	rp.mu.Unlock()

	var plain int64
	ids := make([]store.ID, len(refs))
	for i, r := range refs {
		ids[i] = r.ID
		plain += r.Plain
	}
	if plain != req.Size {
		return transfer.CommitResp{}, transfer.Errorf(fault.Invalid, "%s: chunks add up to %d bytes, not %d", req.Name, plain, req.Size)
	}
	var added catalog.Added
	err = h.n.cat.Tx(ctx, func(tx *catalog.Tx) error {
		// Under the write lock: every chunk must be here, held, and, if no
		// version references it, protected for this put's session with its
		// file present.
		held, err := tx.HeldRefs(ctx, ids)
		if err != nil {
			return err
		}
		for i, r := range refs {
			st, ok := held[r.ID]
			if !ok {
				return transfer.Errorf(fault.NotFound, "chunk %s is not on this node", r.ID)
			}
			refs[i].Stored = st.Stored
			if st.Refs == 0 {
				ok, err := h.n.protectHeld(ctx, tx, r.ID, rp.sess.StartSeq)
				if err != nil {
					return err
				}
				if !ok {
					return transfer.Errorf(fault.NotFound, "chunk %s is not on this node", r.ID)
				}
			}
		}
		added, err = tx.AddVersion(ctx, catalog.NewVersion{Name: name, Size: req.Size, Mode: req.Mode,
			MTime: req.MTime, ContentType: req.ContentType, SHA256: req.SHA256, Chunks: refs})
		return err
	})
	if err != nil {
		return transfer.CommitResp{}, err
	}
	h.n.log.Info("remote put", "peer", c.Peer().Short(), "name", req.Name, "version", added.Version.Num, "unchanged", added.Unchanged)
	return transfer.CommitResp{Version: wireVersion(added.Version), Unchanged: added.Unchanged}, nil
}

// ServeStream handles the stream a serving node's own dashboard opens:
// its event stream.
func (h *handler) ServeStream(ctx context.Context, c *transfer.Conn, op transfer.Op, body []byte, s *transfer.Stream) {
	var err error
	switch {
	case op != transfer.OpEvents:
		err = transfer.Errorf(fault.Unsupported, "unknown stream operation %d", op)
	case c.Peer() != h.n.id:
		err = transfer.Errorf(fault.Denied, "events are for this node's own dashboard")
	default:
		err = h.n.serveEvents(ctx, s)
	}
	if err != nil && !errors.Is(err, io.EOF) && ctx.Err() == nil {
		h.n.log.Warn("stream ended", "peer", c.Peer().Short(), "op", op, "err", err)
		s.Cancel(transfer.CodeOf(err))
	}
}
