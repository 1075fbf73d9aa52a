package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
	"syscall"
	"time"

	"github.com/loftstore/loft/catalog"
	"github.com/loftstore/loft/store"
	"github.com/loftstore/loft/transfer"
)

// handler answers a peer's requests on this node's repository. A request
// from a join connection may only be a join.
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

// maxPendingChunks bounds the chunk list of one commit held in memory.
const maxPendingChunks = 1 << 22

func (h *handler) Serve(ctx context.Context, c *transfer.Conn, op transfer.Op, body []byte) (any, error) {
	resp, err := h.serve(ctx, c, op, body)
	if err != nil {
		err = coded(err)
	}
	return resp, err
}

// coded gives an error the code the peer maps back to the same error.
func coded(err error) error {
	var ce *transfer.CodeError
	switch {
	case errors.As(err, &ce):
		return err
	case errors.Is(err, catalog.ErrNotFound), errors.Is(err, catalog.ErrDeleted):
		return transfer.Errorf(transfer.CodeNotFound, "%v", err)
	case errors.Is(err, store.ErrIntegrity):
		return transfer.Errorf(transfer.CodeIntegrity, "%v", err)
	case errors.Is(err, syscall.ENOSPC):
		return transfer.Errorf(transfer.CodeNoSpace, "%v", err)
	case errors.Is(err, transfer.ErrBadMessage), errors.Is(err, catalog.ErrBadName), errors.Is(err, catalog.ErrBadSetting),
		errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, transfer.ErrFrameTooLarge):
		return transfer.Errorf(transfer.CodeBadRequest, "%v", err)
	}
	return transfer.Errorf(transfer.CodeInternal, "%v", err)
}

func (h *handler) serve(ctx context.Context, c *transfer.Conn, op transfer.Op, body []byte) (any, error) {
	n := h.n
	if c.Join() != (op == transfer.OpJoin) {
		return nil, transfer.Errorf(transfer.CodeDenied, "operation %d not allowed on this connection", op)
	}
	switch op {
	case transfer.OpJoin:
		var req transfer.JoinReq
		if err := transfer.DecodeBody(body, &req); err != nil {
			return nil, err
		}
		return n.acceptJoin(ctx, c, req)
	case transfer.OpHeartbeat:
		var hb transfer.Heartbeat
		if err := transfer.DecodeBody(body, &hb); err != nil {
			return nil, err
		}
		n.recordHeartbeat(ctx, c.Peer().String(), hb, 0)
		n.learnPeer(ctx, c.Peer().String(), hb)
		return n.heartbeat(ctx)
	case transfer.OpHave:
		var req transfer.IDList
		if err := transfer.DecodeBody(body, &req); err != nil {
			return nil, err
		}
		return h.have(ctx, c, req.IDs)
	case transfer.OpInUse:
		var req transfer.InUseReq
		if err := transfer.DecodeBody(body, &req); err != nil {
			return nil, err
		}
		used, err := n.cat.InUseAmong(ctx, req.IDs, n.now().Add(-req.Grace))
		if err != nil {
			return nil, err
		}
		bits := make([]bool, len(req.IDs))
		for i, id := range req.IDs {
			bits[i] = used.Has(id)
		}
		return transfer.Bits{Bits: bits}, nil
	case transfer.OpChanges:
		var req transfer.ChangesReq
		if err := transfer.DecodeBody(body, &req); err != nil {
			return nil, err
		}
		// A page must fit in a control frame: with long names and vectors,
		// fewer changes go in one.
		for limit := req.Limit; ; limit = max(1, limit/2) {
			ex, last, err := n.cat.ExportChanges(ctx, req.After, limit, c.Peer().String())
			if err != nil {
				return nil, err
			}
			resp := transfer.ChangesResp{Changes: make([]transfer.Change, len(ex)), Last: last}
			for i, e := range ex {
				resp.Changes[i] = transfer.Change{Seq: e.Seq, Version: wireRemote(e.Version)}
			}
			resp.More = last > req.After
			if b, _ := json.Marshal(resp); len(b) < transfer.MaxControlFrame-4096 || limit == 1 {
				return resp, nil
			}
		}
	case transfer.OpVersionChunks, transfer.OpChunkList:
		var req transfer.ChunksReq
		if err := transfer.DecodeBody(body, &req); err != nil {
			return nil, err
		}
		var refs []catalog.ChunkRef
		var err error
		if op == transfer.OpVersionChunks {
			refs, err = n.cat.IdentityChunks(ctx, req.Origin, req.OriginSeq, req.From, req.Limit)
		} else {
			refs, err = n.chunkPage(ctx, req.Name, req.Num, req.From, req.Limit)
		}
		if err != nil {
			return nil, err
		}
		return transfer.ChunksResp{Chunks: wireRefs(refs)}, nil
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
		vs, err := n.Versions(ctx, req.Name)
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
		var v catalog.Version
		var err error
		if req.Num > 0 {
			v, err = n.cat.Version(ctx, req.Name, req.Num)
		} else {
			v, err = n.cat.Head(ctx, req.Name)
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
		res, err := n.Remove(ctx, req.Names, req.Recursive)
		if err != nil {
			return nil, err
		}
		return res, nil
	case transfer.OpRestore:
		var req transfer.RestoreReq
		if err := transfer.DecodeBody(body, &req); err != nil {
			return nil, err
		}
		return n.Restore(ctx, req.Name, req.Num)
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
	return nil, transfer.Errorf(transfer.CodeUnsupported, "unknown operation %d", op)
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
		return transfer.CommitResp{}, transfer.Errorf(transfer.CodeBadRequest, "commit without a put session")
	}
	rp.mu.Lock()
	if rp.name != req.Name {
		rp.name, rp.chunks = req.Name, nil // a commit abandoned part way is dropped
	}
	if len(rp.chunks)+len(req.Chunks) > maxPendingChunks {
		rp.name, rp.chunks = "", nil
		rp.mu.Unlock()
		return transfer.CommitResp{}, transfer.Errorf(transfer.CodeTooLarge, "version of more than %d chunks", maxPendingChunks)
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
		return transfer.CommitResp{}, transfer.Errorf(transfer.CodeBadRequest, "%s: chunks add up to %d bytes, not %d", req.Name, plain, req.Size)
	}
	var added catalog.Added
	err := h.n.cat.Tx(ctx, func(tx *catalog.Tx) error {
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
				return transfer.Errorf(transfer.CodeNotFound, "chunk %s is not on this node", r.ID)
			}
			refs[i].Stored = st.Stored
			if st.Refs == 0 {
				ok, err := h.n.protectHeld(ctx, tx, r.ID, rp.sess.StartSeq)
				if err != nil {
					return err
				}
				if !ok {
					return transfer.Errorf(transfer.CodeNotFound, "chunk %s is not on this node", r.ID)
				}
			}
		}
		added, err = tx.AddVersion(ctx, catalog.NewVersion{Name: req.Name, Size: req.Size, Mode: req.Mode,
			MTime: req.MTime, ContentType: req.ContentType, SHA256: req.SHA256, Chunks: refs})
		return err
	})
	if err != nil {
		return transfer.CommitResp{}, err
	}
	h.n.log.Info("remote put", "peer", c.Peer().Short(), "name", req.Name, "version", added.Version.Num, "unchanged", added.Unchanged)
	return transfer.CommitResp{Version: wireVersion(added.Version), Unchanged: added.Unchanged}, nil
}

// ServeStream handles bulk streams: chunks pushed to this node, and chunks
// a peer fetches from it.
func (h *handler) ServeStream(ctx context.Context, c *transfer.Conn, op transfer.Op, body []byte, s *transfer.Stream) {
	if c.Join() {
		s.Cancel(transfer.CodeDenied)
		return
	}
	var err error
	switch op {
	case transfer.OpPush:
		err = h.n.receivePush(ctx, c, s)
	case transfer.OpEvents:
		if c.Peer() != h.n.id {
			err = transfer.Errorf(transfer.CodeDenied, "events are for this node's own dashboard")
			break
		}
		err = h.n.serveEvents(ctx, s)
	case transfer.OpFetch:
		var req transfer.FetchReq
		if err = transfer.DecodeBody(body, &req); err == nil {
			err = h.n.serveFetch(ctx, s, req.IDs, req.Relay)
		}
	default:
		err = fmt.Errorf("unknown stream operation %d", op)
	}
	if err != nil && !errors.Is(err, io.EOF) && ctx.Err() == nil {
		h.n.log.Warn("stream ended", "peer", c.Peer().Short(), "op", op, "err", err)
		s.Cancel(transfer.CodeOf(coded(err)))
	}
}

// receivePush stores chunks a peer sends, verified against their IDs, and
// acknowledges each once it is durable. Chunks are committed in groups: a
// group ends when the sender pauses or after 16 chunks.
func (n *Node) receivePush(ctx context.Context, c *transfer.Conn, s *transfer.Stream) error {
	buf := make([]byte, 0, 1<<20)
	batch := n.disk.NewBatch()
	defer batch.Abort()
	var pending []catalog.ChunkRef
	flush := func() error {
		if len(pending) == 0 {
			return nil
		}
		if err := batch.Commit(ctx); err != nil {
			return err
		}
		had, err := n.cat.StoreReceived(ctx, pending)
		if err != nil {
			return err
		}
		n.traffic.dupReceived.Add(int64(had))
		for _, r := range pending {
			n.traffic.received.Add(r.Plain)
		}
		for _, r := range pending {
			if err := s.WriteFrame(transfer.FrameAck, ackBody(r.ID, transfer.CodeOK)); err != nil {
				return err
			}
		}
		pending = pending[:0]
		return nil
	}
	for {
		s.SetDeadline(time.Now().Add(30 * time.Second))
		typ, b, err := s.ReadFrame(transfer.MaxDataFrame, buf[:0])
		if errors.Is(err, io.EOF) {
			if err := flush(); err != nil {
				return err
			}
			return s.CloseWrite()
		}
		if err != nil {
			return err
		}
		if cap(b) > cap(buf) && cap(b) <= 2*store.MaxChunkSize {
			buf = b[:0]
		}
		if typ != transfer.FrameChunk || len(b) < store.IDSize {
			return transfer.Errorf(transfer.CodeBadRequest, "expected a chunk frame")
		}
		id := store.ID(b[:store.IDSize])
		plain := b[store.IDSize:]
		if err := store.Verify(id, plain); err != nil {
			n.log.Warn("pushed chunk failed verification", "peer", c.Peer().Short(), "chunk", id.Short())
			if err := s.WriteFrame(transfer.FrameAck, ackBody(id, transfer.CodeIntegrity)); err != nil {
				return err
			}
			continue
		}
		stored, err := batch.Add(ctx, id, plain)
		if errors.Is(err, syscall.ENOSPC) {
			return transfer.Errorf(transfer.CodeNoSpace, "no space left on this node")
		}
		if err != nil {
			return err
		}
		pending = append(pending, catalog.ChunkRef{ID: id, Plain: int64(len(plain)), Stored: stored})
		if len(pending) >= 16 {
			if err := flush(); err != nil {
				return err
			}
		}
	}
}

func ackBody(id store.ID, code transfer.Code) []byte {
	b := make([]byte, store.IDSize+2)
	copy(b, id[:])
	b[store.IDSize], b[store.IDSize+1] = byte(code>>8), byte(code)
	return b
}

func parseAck(b []byte) (store.ID, transfer.Code, error) {
	if len(b) != store.IDSize+2 {
		return store.ID{}, 0, fmt.Errorf("acknowledgement of %d bytes: %w", len(b), transfer.ErrBadMessage)
	}
	return store.ID(b[:store.IDSize]), transfer.Code(b[store.IDSize])<<8 | transfer.Code(b[store.IDSize+1]), nil
}

// serveFetch sends the chunks asked for, each verified on read; a chunk
// this node does not hold (or holds corrupt) is answered with FrameMiss.
// With relay (a client reading through this node), a chunk this node lacks
// is fetched from its peers; peers ask without relay, so a fetch crosses
// at most two hops.
func (n *Node) serveFetch(ctx context.Context, s *transfer.Stream, ids []store.ID, relay bool) error {
	// One pooled buffer holds the frame: the chunk is read in place after
	// room for its ID, so a chunk is neither allocated nor copied again.
	pb := n.bufs.get(store.IDSize + n.params.Max)
	defer n.bufs.put(pb)
	read := n.readLocal
	if relay {
		read = n.readChunk
	}
	for _, id := range ids {
		frame := (*pb)[:store.IDSize]
		data, err := read(ctx, id, (*pb)[store.IDSize:store.IDSize])
		if err != nil {
			code := transfer.CodeNotFound
			if errors.Is(err, store.ErrIntegrity) {
				code = transfer.CodeIntegrity
			}
			if err := s.WriteFrame(transfer.FrameMiss, ackBody(id, code)); err != nil {
				return err
			}
			continue
		}
		copy(frame, id[:])
		if len(data) > 0 && cap(*pb) >= store.IDSize+len(data) && &data[0] == &(*pb)[store.IDSize] {
			frame = (*pb)[:store.IDSize+len(data)] // read in place
		} else {
			frame = append(append([]byte(nil), id[:]...), data...) // larger than the buffer
		}
		s.SetDeadline(time.Now().Add(30 * time.Second))
		if err := s.WriteFrame(transfer.FrameChunk, frame); err != nil {
			return err
		}
		n.traffic.served.Add(int64(len(data)))
	}
	return s.CloseWrite()
}
