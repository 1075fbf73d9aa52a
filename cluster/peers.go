package cluster

import (
	"context"
	"time"

	"golang.org/x/sys/unix"

	"github.com/loftstore/loft/catalog"
	"github.com/loftstore/loft/transfer"
)

// Heartbeat is what this node tells peers about itself. Its chunk counts
// may be up to heldTotalsAge old; Self counts them now.
func (cl *Cluster) Heartbeat(ctx context.Context) (transfer.Heartbeat, error) {
	return cl.self(ctx, false)
}

// Self is Heartbeat with the chunk counts taken now, for status.
func (cl *Cluster) Self(ctx context.Context) (transfer.Heartbeat, error) { return cl.self(ctx, true) }

func (cl *Cluster) self(ctx context.Context, fresh bool) (transfer.Heartbeat, error) {
	name, _ := cl.cat.Config(ctx, "name")
	hb := transfer.Heartbeat{Time: cl.now(), Name: name, Software: Software}
	var fs unix.Statfs_t
	if unix.Statfs(cl.dir, &fs) == nil {
		hb.Free = int64(fs.Bavail) * int64(fs.Bsize)
	}
	st, err := cl.heldTotals(ctx, fresh)
	if err != nil {
		return hb, err
	}
	hb.Chunks, hb.Stored = st.Chunks, st.Bytes
	if cl.net != nil {
		hb.Listen = cl.net.listenAddrs()
	}
	return hb, nil
}

// heldTotals counts the chunks this node holds. Counting scans the chunk
// table, so heartbeats share one count for up to heldTotalsAge.
func (cl *Cluster) heldTotals(ctx context.Context, fresh bool) (catalog.GarbageTotals, error) {
	cl.held.mu.Lock()
	defer cl.held.mu.Unlock()
	if !fresh && !cl.held.at.IsZero() && time.Since(cl.held.at) < heldTotalsAge {
		return cl.held.t, nil
	}
	t, err := cl.cat.HeldTotals(ctx)
	if err == nil {
		cl.held.t, cl.held.at = t, time.Now()
	}
	return t, err
}

const heldTotalsAge = 10 * time.Second

// CountingPeers returns the storage peers whose copies count towards the
// replica count now.
func (cl *Cluster) CountingPeers(ctx context.Context) (map[string]bool, error) {
	peers, state, err := cl.states(ctx)
	if err != nil {
		return nil, err
	}
	grace, err := cl.cat.Duration(ctx, "peer-grace")
	if err != nil {
		return nil, err
	}
	now := cl.now()
	out := map[string]bool{}
	for _, p := range storagePeers(peers) {
		if state[p.ID] != StateOffline || now.Sub(p.LastSeen) < grace {
			out[p.ID] = true
		}
	}
	return out, nil
}
