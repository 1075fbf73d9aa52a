package cluster

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/loftstore/loft/catalog"
	"github.com/loftstore/loft/fault"
	"github.com/loftstore/loft/store"
	"github.com/loftstore/loft/transfer"
)

// readLocal reads a chunk from this node's store.
func (cl *Cluster) readLocal(ctx context.Context, id store.ID, buf []byte) ([]byte, error) {
	return cl.disk.Get(ctx, id, buf)
}

// ReadChunk returns a chunk's plain bytes: from this node's store, or, when
// it does not hold a good copy, from a peer, verified on arrival. A corrupt
// local copy is replaced by the good one, atomically: it is never removed
// before a verified replacement is durable, so a transient read error
// cannot cost the last copy. Several reads run at once and each starts with
// a different peer, so a get of a file whose chunks lie on several peers
// reads from all of them.
func (cl *Cluster) ReadChunk(ctx context.Context, id store.ID, buf []byte) ([]byte, error) {
	data, err := cl.readLocal(ctx, id, buf)
	if err == nil || !(errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrIntegrity)) {
		return data, err
	}
	fetched, ferr := cl.fetchAny(ctx, id, buf)
	if ferr != nil {
		if ferr == errNoPeers {
			return nil, err
		}
		return nil, fmt.Errorf("%w (and no peer could supply it: %w)", err, ferr)
	}
	if errors.Is(err, store.ErrIntegrity) {
		cl.keepFetched(ctx, id, fetched)
	}
	return fetched, nil
}

var errNoPeers = errors.New("no peers")

// fetchAny reads a chunk from the first peer that has a good copy: those
// that confirmed one first, starting at a different one per chunk.
func (cl *Cluster) fetchAny(ctx context.Context, id store.ID, buf []byte) ([]byte, error) {
	peers, state, err := cl.states(ctx)
	if err != nil {
		return nil, err
	}
	if len(peers) == 0 {
		return nil, errNoPeers
	}
	holders, _ := cl.cat.Holders(ctx, id)
	// Online confirmed holders first, then other online peers, then the
	// rest; each tier starts at a place that depends on the chunk, which
	// spreads the reads of a file over the peers.
	var tiers [4][]string
	for _, p := range peers {
		if len(p.Addrs) == 0 && p.LastSeen.IsZero() {
			continue // a client that only dials in: it holds no replicas
		}
		t := 0
		if !slices.Contains(holders, p.ID) {
			t = 1
		}
		if state[p.ID] != StateOnline {
			t += 2
		}
		tiers[t] = append(tiers[t], p.ID)
	}
	var order []string
	for _, t := range tiers {
		order = append(order, rotate(t, int(id[0])<<8|int(id[1]))...)
	}
	if len(order) == 0 {
		return nil, errNoPeers
	}
	var errs []error
	for _, peer := range order {
		data, err := cl.FetchFrom(ctx, peer, id, buf, false)
		if err == nil {
			return data, nil
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	return nil, errors.Join(errs...)
}

func rotate(s []string, k int) []string {
	if len(s) == 0 {
		return nil
	}
	k %= len(s)
	return append(slices.Clone(s[k:]), s[:k]...)
}

// FetchFrom reads one chunk from a peer and verifies it.
func (cl *Cluster) FetchFrom(ctx context.Context, peer string, id store.ID, buf []byte, relay bool) ([]byte, error) {
	fctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	c, err := cl.Conn(fctx, peer)
	if err != nil {
		return nil, err
	}
	s, err := c.OpenStream(fctx, transfer.OpFetch, transfer.FetchReq{IDs: []store.ID{id}, Relay: relay})
	if err != nil {
		return nil, err
	}
	defer s.Cancel(fault.OK)
	s.SetDeadline(time.Now().Add(60 * time.Second))
	typ, b, err := s.ReadFrame(transfer.MaxDataFrame, buf[:0])
	if err != nil {
		return nil, fmt.Errorf("fetch %s from %s: %w", id.Short(), peer[:8], err)
	}
	if typ == transfer.FrameMiss {
		got, code, err := transfer.ParseAck(b)
		switch {
		case err != nil || got != id:
			return nil, fault.E(fault.Peer, "fetch %s from %s: a miss for another chunk", id.Short(), peer[:8])
		case code == fault.Integrity:
			return nil, &store.IntegrityError{ID: id, Reason: "corrupt on peer " + peer[:8] + ", which has no good copy"}
		}
		return nil, fmt.Errorf("fetch %s from %s: %w", id.Short(), peer[:8], store.ErrNotFound)
	}
	if typ != transfer.FrameChunk || len(b) < store.IDSize || store.ID(b[:store.IDSize]) != id {
		return nil, fault.E(fault.Peer, "fetch %s from %s: an answer that is not the chunk", id.Short(), peer[:8])
	}
	data := b[store.IDSize:]
	if err := store.Verify(id, data); err != nil {
		cl.log.Warn("peer sent a corrupt chunk", "peer", peer[:8], "chunk", id.Short())
		return nil, err
	}
	cl.traffic.fetched.Add(int64(len(data)))
	return data, nil
}

// keepFetched stores a good copy of a chunk this node should hold.
func (cl *Cluster) keepFetched(ctx context.Context, id store.ID, data []byte) {
	b := cl.disk.NewBatch()
	defer b.Abort()
	stored, err := b.Add(ctx, id, data)
	if err == nil {
		err = b.Commit(ctx)
	}
	if err == nil {
		_, err = cl.cat.StoreReceived(ctx, []catalog.ChunkRef{{ID: id, Plain: int64(len(data)), Stored: stored}})
	}
	if err != nil {
		cl.log.Warn("repaired chunk not stored", "chunk", id.Short(), "err", err)
		return
	}
	cl.log.Info("chunk repaired from a replica", "chunk", id.String())
}

// ScrubReport says what a scrub found.
type ScrubReport struct {
	Chunks   int64 `json:"chunks"`
	Corrupt  int64 `json:"corrupt"`
	Repaired int64 `json:"repaired"`
}

// RepairReport says what a repair pass found. The copies it forgets are
// made again by the next replication pass; chunks whose holder has been
// offline past peer-grace are copied elsewhere by replication too.
type RepairReport struct {
	ReplicasDropped int64 `json:"replicas_dropped"` // copies peers no longer hold
}

// Scrub re-reads every chunk this node holds; a corrupt one is replaced
// from a replica.
func (cl *Cluster) Scrub(ctx context.Context) (ScrubReport, error) {
	var rep ScrubReport
	var buf []byte
	err := cl.cat.EachReferenced(ctx, func(cc catalog.ChunkCopies) error {
		if !cc.Held {
			return nil
		}
		rep.Chunks++
		data, err := cl.readLocal(ctx, cc.ID, buf)
		if err == nil {
			buf = data[:0]
			return nil
		}
		cl.log.Warn("scrub: bad chunk", "chunk", cc.ID.String(), "err", err)
		if !errors.Is(err, store.ErrIntegrity) && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		rep.Corrupt++
		if data, err := cl.fetchAny(ctx, cc.ID, nil); err == nil {
			cl.keepFetched(ctx, cc.ID, data)
			rep.Repaired++
		} else {
			cl.log.Warn("chunk could not be repaired", "chunk", cc.ID.String(), "err", err)
		}
		return ctx.Err()
	})
	return rep, err
}

// VerifyReplicas asks each online storage peer whether it still holds the
// chunks it confirmed, and forgets the copies it denies (lost to a disk, or
// collected when no version referenced the chunk for a while), so that
// replication makes them again.
func (cl *Cluster) VerifyReplicas(ctx context.Context) (dropped int64, err error) {
	peers, state, err := cl.states(ctx)
	if err != nil {
		return 0, err
	}
	for _, p := range storagePeers(peers) {
		if state[p.ID] != StateOnline {
			continue
		}
		c, err := cl.Conn(ctx, p.ID)
		if err != nil {
			continue
		}
		var after int64
		for {
			ids, next, err := cl.cat.ReplicasOf(ctx, p.ID, after, transfer.MaxIDs)
			if err != nil {
				return dropped, err
			}
			if len(ids) == 0 {
				break
			}
			after = next
			var bits transfer.Bits
			if err := c.Call(ctx, transfer.OpHave, transfer.IDList{IDs: ids}, &bits); err != nil || len(bits.Bits) != len(ids) {
				break
			}
			var gone []store.ID
			for i, id := range ids {
				if !bits.Bits[i] {
					gone = append(gone, id)
				}
			}
			if len(gone) > 0 {
				cl.log.Warn("a peer no longer holds chunks it confirmed", "peer", p.ID[:8], "chunks", len(gone))
				if err := cl.cat.DropReplicas(ctx, p.ID, gone); err != nil {
					return dropped, err
				}
				dropped += int64(len(gone))
			}
		}
	}
	return dropped, nil
}
