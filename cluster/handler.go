package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"syscall"
	"time"

	"github.com/loftstore/loft/catalog"
	"github.com/loftstore/loft/fault"
	"github.com/loftstore/loft/store"
	"github.com/loftstore/loft/transfer"
)

// handler answers a peer's requests: the cluster's own ops here, the rest
// by the node's Local handler. A request from a join connection may only
// be a join.
type handler struct {
	cl *Cluster
}

func (h *handler) Serve(ctx context.Context, c *transfer.Conn, op transfer.Op, body []byte) (any, error) {
	if c.Join() != (op == transfer.OpJoin) {
		return nil, transfer.Errorf(fault.Denied, "operation %d not allowed on this connection", op)
	}
	return h.serve(ctx, c, op, body)
}

func (h *handler) serve(ctx context.Context, c *transfer.Conn, op transfer.Op, body []byte) (any, error) {
	cl := h.cl
	switch op {
	case transfer.OpJoin:
		var req transfer.JoinReq
		if err := transfer.DecodeBody(body, &req); err != nil {
			return nil, err
		}
		return cl.acceptJoin(ctx, c, req)
	case transfer.OpHeartbeat:
		var hb transfer.Heartbeat
		if err := transfer.DecodeBody(body, &hb); err != nil {
			return nil, err
		}
		cl.heard(ctx, c.Peer().String(), hb, 0)
		cl.learnPeer(ctx, c.Peer().String(), hb)
		return cl.Heartbeat(ctx)
	case transfer.OpInUse:
		var req transfer.InUseReq
		if err := transfer.DecodeBody(body, &req); err != nil {
			return nil, err
		}
		used, err := cl.cat.InUseAmong(ctx, req.IDs, cl.now().Add(-req.Grace))
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
		at := catalog.Identity{Origin: req.AfterOrigin, Seq: req.AfterOriginSeq}
		return fitPage(req.Limit, func(limit int) (transfer.ChangesResp, error) {
			ex, last, lastAt, err := cl.cat.ExportChanges(ctx, req.After, at, limit, c.Peer().String())
			if errors.Is(err, catalog.ErrCursor) {
				return transfer.ChangesResp{Reset: true}, nil
			}
			if err != nil {
				return transfer.ChangesResp{}, err
			}
			resp := changesResp(ex, last)
			resp.LastOrigin, resp.LastOriginSeq, resp.More = lastAt.Origin, lastAt.Seq, last > req.After
			return resp, nil
		})
	case transfer.OpOrigin:
		var req transfer.OriginReq
		if err := transfer.DecodeBody(body, &req); err != nil {
			return nil, err
		}
		return fitPage(req.Limit, func(limit int) (transfer.ChangesResp, error) {
			ex, last, err := cl.cat.ExportOrigin(ctx, req.Origin, req.After, limit)
			if err != nil {
				return transfer.ChangesResp{}, err
			}
			resp := changesResp(ex, last)
			resp.More = len(ex) == limit
			resp.High, err = cl.cat.Highest(ctx, req.Origin)
			return resp, err
		})
	case transfer.OpVersionChunks:
		var req transfer.ChunksReq
		if err := transfer.DecodeBody(body, &req); err != nil {
			return nil, err
		}
		refs, err := cl.cat.IdentityChunks(ctx, req.Origin, req.OriginSeq, req.From, req.Limit)
		if err != nil {
			return nil, err
		}
		return transfer.ChunksResp{Chunks: WireRefs(refs)}, nil
	}
	if cl.local == nil {
		return nil, transfer.Errorf(fault.Unsupported, "unknown operation %d", op)
	}
	return cl.local.Serve(ctx, c, op, body)
}

// fitPage calls page with limit, halving it until the answer fits in a
// control frame: with long names and vectors, fewer changes go in one.
func fitPage(limit int, page func(limit int) (transfer.ChangesResp, error)) (transfer.ChangesResp, error) {
	for ; ; limit = max(1, limit/2) {
		resp, err := page(limit)
		if err != nil {
			return resp, err
		}
		if b, _ := json.Marshal(resp); len(b) < transfer.MaxControlFrame-4096 || limit == 1 {
			return resp, nil
		}
	}
}

func changesResp(ex []catalog.Exported, last int64) transfer.ChangesResp {
	resp := transfer.ChangesResp{Changes: make([]transfer.Change, len(ex)), Last: last}
	for i, e := range ex {
		resp.Changes[i] = transfer.Change{Seq: e.Seq, Version: wireRemote(e.Version)}
	}
	return resp
}

// ServeStream handles bulk streams: chunks pushed to this node, and chunks
// a peer fetches from it.
func (h *handler) ServeStream(ctx context.Context, c *transfer.Conn, op transfer.Op, body []byte, s *transfer.Stream) {
	if c.Join() {
		s.Cancel(fault.Denied)
		return
	}
	var err error
	switch op {
	case transfer.OpPush:
		err = h.cl.receivePush(ctx, c, s)
	case transfer.OpFetch:
		var req transfer.FetchReq
		if err = transfer.DecodeBody(body, &req); err == nil {
			err = h.cl.serveFetch(ctx, s, req.IDs, req.Relay)
		}
	default:
		if h.cl.local == nil {
			s.Cancel(fault.Unsupported)
			return
		}
		h.cl.local.ServeStream(ctx, c, op, body, s)
		return
	}
	if err != nil && !errors.Is(err, io.EOF) && ctx.Err() == nil {
		h.cl.log.Warn("stream ended", "peer", c.Peer().Short(), "op", op, "err", err)
		s.Cancel(transfer.CodeOf(err))
	}
}

// receivePush stores chunks a peer sends, verified against their IDs, and
// acknowledges each once it is durable. Chunks are committed in groups: a
// group ends when the sender pauses or after 16 chunks.
//
// A node whose disk is full pauses what it receives: the push that met the
// full disk fails with fault.NoSpace, and later ones are refused at once
// (the sender retries at its next pass) until the disk has room again.
func (cl *Cluster) receivePush(ctx context.Context, c *transfer.Conn, s *transfer.Stream) error {
	if err := cl.receiving(); err != nil {
		return err
	}
	if cl.room != nil && !cl.room() {
		cl.pauseReceiving()
		return transfer.Errorf(fault.NoSpace, "this node's disk is nearly full: receiving is paused until it has room")
	}
	err := cl.receive(ctx, c, s)
	if errors.Is(err, syscall.ENOSPC) {
		cl.pauseReceiving()
		return transfer.Errorf(fault.NoSpace, "this node's disk is full: receiving is paused until it has room")
	}
	return err
}

func (cl *Cluster) receive(ctx context.Context, c *transfer.Conn, s *transfer.Stream) error {
	buf := make([]byte, 0, 1<<20)
	batch := cl.disk.NewBatch()
	defer batch.Abort()
	var pending []catalog.ChunkRef
	flush := func() error {
		if len(pending) == 0 {
			return nil
		}
		if err := batch.Commit(ctx); err != nil {
			return err
		}
		had, err := cl.cat.StoreReceived(ctx, pending)
		if err != nil {
			return err
		}
		cl.traffic.dupReceived.Add(int64(had))
		for _, r := range pending {
			cl.traffic.received.Add(r.Plain)
		}
		for _, r := range pending {
			if err := s.WriteFrame(transfer.FrameAck, transfer.AckBody(r.ID, fault.OK)); err != nil {
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
			return transfer.Errorf(fault.Invalid, "expected a chunk frame")
		}
		id := store.ID(b[:store.IDSize])
		plain := b[store.IDSize:]
		if err := store.Verify(id, plain); err != nil {
			cl.log.Warn("pushed chunk failed verification", "peer", c.Peer().Short(), "chunk", id.Short())
			if err := s.WriteFrame(transfer.FrameAck, transfer.AckBody(id, fault.Integrity)); err != nil {
				return err
			}
			continue
		}
		stored, err := batch.Add(ctx, id, plain)
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

// serveFetch sends the chunks asked for, each verified on read; a chunk
// this node does not hold (or holds corrupt) is answered with FrameMiss.
// With relay (a client reading through this node), a chunk this node lacks
// is fetched from its peers; peers ask without relay, so a fetch crosses
// at most two hops.
func (cl *Cluster) serveFetch(ctx context.Context, s *transfer.Stream, ids []store.ID, relay bool) error {
	// One pooled buffer holds the frame: the chunk is read in place after
	// room for its ID, so a chunk is neither allocated nor copied again.
	pb := cl.bufs.Get(store.IDSize + cl.maxChunk)
	defer cl.bufs.Put(pb)
	read := cl.readLocal
	if relay {
		read = cl.ReadChunk
	}
	for _, id := range ids {
		frame := (*pb)[:store.IDSize]
		data, err := read(ctx, id, (*pb)[store.IDSize:store.IDSize])
		if err != nil {
			code := fault.NotFound
			if errors.Is(err, store.ErrIntegrity) {
				code = fault.Integrity
			}
			if err := s.WriteFrame(transfer.FrameMiss, transfer.AckBody(id, code)); err != nil {
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
		cl.traffic.served.Add(int64(len(data)))
	}
	return s.CloseWrite()
}
