package cluster

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/loftstore/loft/catalog"
	"github.com/loftstore/loft/fault"
	"github.com/loftstore/loft/store"
	"github.com/loftstore/loft/transfer"
)

// rank orders nodes for a chunk by rendezvous hashing: each node's score is
// a hash of its ID and the chunk's, so adding or removing a node moves only
// the chunks for which it ranks first.
func rank(id store.ID, nodes []string) []string {
	type scored struct {
		node  string
		score uint64
	}
	s := make([]scored, len(nodes))
	for i, nd := range nodes {
		h := sha256.New()
		h.Write([]byte(nd))
		h.Write(id[:])
		s[i] = scored{nd, binary.BigEndian.Uint64(h.Sum(nil))}
	}
	slices.SortFunc(s, func(a, b scored) int {
		if a.score != b.score {
			if a.score > b.score {
				return -1
			}
			return 1
		}
		if a.node < b.node {
			return -1
		}
		return 1
	})
	out := make([]string, len(s))
	for i := range s {
		out[i] = s[i].node
	}
	return out
}

// Replicas returns the configured replica count, capped by the number of
// storage nodes: this one and its storage peers.
func (cl *Cluster) Replicas(ctx context.Context, peers int) (int, error) {
	v, err := cl.cat.Config(ctx, "replicas")
	if err != nil {
		return 0, err
	}
	r, err := strconv.Atoi(v)
	if err != nil {
		return 0, err
	}
	return min(r, peers+1), nil
}

// ReplicationReport says what a replication pass saw and did.
type ReplicationReport struct {
	Chunks      int64 `json:"chunks"`       // referenced chunks this node holds
	Below       int64 `json:"below"`        // of those, with fewer than R counted copies
	BelowBytes  int64 `json:"below_bytes"`  //
	Pushed      int64 `json:"pushed"`       // copies made by this pass
	PushedBytes int64 `json:"pushed_bytes"` //
	Confirmed   int64 `json:"confirmed"`    // copies a peer already had
}

// replicate makes sure every chunk this node holds has R copies among the
// nodes that count: this one, and peers that are online or have been
// offline for less than the peer grace. Missing copies go to the
// highest-ranked counting peers that lack them; a peer's copy counts once it
// confirms it durable.
func (cl *Cluster) replicate(ctx context.Context) (ReplicationReport, error) {
	var rep ReplicationReport
	all, state, err := cl.states(ctx)
	peers := storagePeers(all)
	if err != nil || len(peers) == 0 {
		return rep, err
	}
	r, err := cl.Replicas(ctx, len(peers))
	if err != nil {
		return rep, err
	}
	counts, err := cl.CountingPeers(ctx)
	if err != nil {
		return rep, err
	}
	online := map[string]bool{}
	for _, p := range peers {
		if state[p.ID] == StateOnline {
			online[p.ID] = true
		}
	}
	nodes := []string{cl.id.String()}
	for _, p := range peers {
		nodes = append(nodes, p.ID)
	}
	// One worker per online peer offers that peer its batches, so peers are
	// served at once; the walk hands batches over with a short queue, which
	// bounds the chunk lists held.
	var mu sync.Mutex
	var errs []error
	queues := map[string]chan []catalog.ChunkCopies{}
	var wg sync.WaitGroup
	for peer := range online {
		q := make(chan []catalog.ChunkCopies, 1)
		queues[peer] = q
		wg.Add(1)
		go func() {
			defer wg.Done()
			failed := false
			for batch := range q {
				if failed {
					continue // the peer failed: drain, skip it for this pass
				}
				pushed, bytes, had, err := cl.offer(ctx, peer, batch)
				mu.Lock()
				rep.Pushed += pushed
				rep.PushedBytes += bytes
				rep.Confirmed += had
				if err != nil {
					errs = append(errs, fmt.Errorf("peer %s: %w", peer[:8], err))
					failed = true
				}
				mu.Unlock()
			}
		}()
	}
	want := map[string][]catalog.ChunkCopies{}
	send := func(peer string) {
		if len(want[peer]) > 0 {
			queues[peer] <- want[peer]
			want[peer] = nil
		}
	}
	err = cl.cat.EachReferenced(ctx, func(cc catalog.ChunkCopies) error {
		if !cc.Held {
			return nil
		}
		mu.Lock()
		rep.Chunks++
		mu.Unlock()
		have := 1
		holders := map[string]bool{cl.id.String(): true}
		for _, p := range cc.Peers {
			holders[p] = true
			if counts[p] {
				have++
			}
		}
		if have >= r {
			return nil
		}
		mu.Lock()
		rep.Below++
		rep.BelowBytes += cc.Stored
		mu.Unlock()
		need := r - have
		for _, nd := range rank(cc.ID, nodes) {
			if need == 0 {
				break
			}
			if holders[nd] || !online[nd] {
				continue
			}
			want[nd] = append(want[nd], cc)
			need--
			if len(want[nd]) == replicateBatch {
				send(nd)
			}
		}
		return ctx.Err()
	})
	for peer, q := range queues {
		if err == nil {
			send(peer)
		}
		close(q)
	}
	wg.Wait()
	if err != nil {
		return rep, err
	}
	return rep, errors.Join(errs...)
}

// replicateBatch is how many chunks one offer (a have/want round trip and a
// push stream) carries.
const replicateBatch = 64

// offer asks peer which of the chunks it holds, records those as replicas,
// and pushes the rest, recording each once the peer acknowledges it durable.
func (cl *Cluster) offer(ctx context.Context, peer string, batch []catalog.ChunkCopies) (pushed, bytes, had int64, err error) {
	if len(batch) == 0 {
		return 0, 0, 0, nil
	}
	c, err := cl.Conn(ctx, peer)
	if err != nil {
		return 0, 0, 0, err
	}
	ids := make([]store.ID, len(batch))
	for i, cc := range batch {
		ids[i] = cc.ID
	}
	var bits transfer.Bits
	if err := c.Call(ctx, transfer.OpHave, transfer.IDList{IDs: ids}, &bits); err != nil {
		return 0, 0, 0, err
	}
	if len(bits.Bits) != len(ids) {
		return 0, 0, 0, fault.E(fault.Peer, "peer %s answered %d of %d chunks", peer[:8], len(bits.Bits), len(ids))
	}
	var present, missing []store.ID
	for i, id := range ids {
		if bits.Bits[i] {
			present = append(present, id)
		} else {
			missing = append(missing, id)
		}
	}
	if err := cl.cat.AddReplicas(ctx, peer, present); err != nil {
		return 0, 0, 0, err
	}
	var total int64
	sizes := make(map[store.ID]int64, len(batch))
	for _, cc := range batch {
		sizes[cc.ID] = cc.Plain
	}
	for _, id := range missing {
		total += sizes[id]
	}
	tr := cl.transfers.start(peer, "replicate", len(missing), total)
	defer cl.transfers.end(tr)
	acked, sent, err := cl.Push(ctx, c, missing, cl.readLocal, func(id store.ID) { tr.add(sizes[id]) })
	if len(acked) > 0 {
		if aerr := cl.cat.AddReplicas(ctx, peer, acked); aerr != nil && err == nil {
			err = aerr
		}
	}
	return int64(len(acked)), sent, int64(len(present)), err
}

// Push sends chunks this node holds on one stream and returns those the
// peer acknowledged durable, and the bytes sent.
//
// read supplies each chunk's bytes; written, when set, is told once a
// chunk has been handed to the stream, when read's buffer may be reused.
func (cl *Cluster) Push(ctx context.Context, c *transfer.Conn, ids []store.ID, read func(context.Context, store.ID, []byte) ([]byte, error), written func(store.ID)) ([]store.ID, int64, error) {
	if len(ids) == 0 {
		return nil, 0, nil
	}
	s, err := c.OpenStream(ctx, transfer.OpPush, transfer.PushReq{})
	if err != nil {
		return nil, 0, err
	}
	acks := make(chan []store.ID, 1)
	ackErr := make(chan error, 1)
	go func() {
		var got []store.ID
		var buf []byte
		for {
			typ, b, err := s.ReadFrame(transfer.MaxControlFrame, buf[:0])
			if errors.Is(err, io.EOF) {
				acks <- got
				ackErr <- nil
				return
			}
			if err != nil {
				acks <- got
				ackErr <- err
				return
			}
			buf = b
			id, code, err := transfer.ParseAck(b)
			if typ != transfer.FrameAck || err != nil {
				acks <- got
				ackErr <- fmt.Errorf("peer %s: bad acknowledgement", c.Peer().Short())
				return
			}
			if code == fault.OK {
				got = append(got, id)
			} else {
				cl.log.Warn("peer refused a chunk", "peer", c.Peer().Short(), "chunk", id.Short(), "code", code)
			}
		}
	}()
	var sent int64
	var buf []byte
	frame := make([]byte, 0, store.IDSize+(1<<20))
	var werr error
	for _, id := range ids {
		data, err := read(ctx, id, buf)
		if err != nil {
			cl.log.Warn("chunk not pushed", "chunk", id.Short(), "err", err)
			continue
		}
		buf = data[:0]
		frame = append(append(frame[:0], id[:]...), data...)
		s.SetDeadline(time.Now().Add(60 * time.Second))
		if werr = s.WriteFrame(transfer.FrameChunk, frame); werr != nil {
			break
		}
		if written != nil {
			written(id)
		}
		sent += int64(len(data))
		cl.traffic.pushed.Add(int64(len(data)))
	}
	if werr == nil {
		werr = s.CloseWrite()
	} else {
		s.Cancel(fault.Internal)
	}
	s.SetDeadline(time.Now().Add(60 * time.Second))
	got := <-acks
	if err := <-ackErr; werr == nil {
		werr = err
	}
	if werr != nil {
		werr = fmt.Errorf("push to %s: %w", c.Peer().Short(), werr)
	}
	return got, sent, werr
}
