package cluster

import (
	"context"
	"encoding/json"
	"time"

	"golang.org/x/sys/unix"

	"github.com/loftstore/loft/catalog"
	"github.com/loftstore/loft/transfer"
)

// Heartbeat is what this node tells peers about itself.
func (cl *Cluster) Heartbeat(ctx context.Context) (transfer.Heartbeat, error) {
	name, _ := cl.cat.Config(ctx, "name")
	hb := transfer.Heartbeat{Time: cl.now(), Name: name, Software: Software}
	var fs unix.Statfs_t
	if unix.Statfs(cl.dir, &fs) == nil {
		hb.Free = int64(fs.Bavail) * int64(fs.Bsize)
	}
	st, err := cl.heldTotals(ctx)
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
func (cl *Cluster) heldTotals(ctx context.Context) (catalog.GarbageTotals, error) {
	cl.held.mu.Lock()
	defer cl.held.mu.Unlock()
	if !cl.held.at.IsZero() && time.Since(cl.held.at) < heldTotalsAge {
		return cl.held.t, nil
	}
	t, err := cl.cat.HeldTotals(ctx)
	if err == nil {
		cl.held.t, cl.held.at = t, time.Now()
	}
	return t, err
}

const heldTotalsAge = 10 * time.Second

// peerInfo is what the catalog keeps of a peer's last heartbeat.
type peerInfo struct {
	transfer.Heartbeat
	RTT time.Duration `json:"rtt_ns"`
}

func (cl *Cluster) recordHeartbeat(ctx context.Context, peer string, hb transfer.Heartbeat, rtt time.Duration) {
	if rtt == 0 {
		// A heartbeat the peer sent: keep the round trip time we measured.
		if p, err := cl.cat.FindPeer(ctx, peer); err == nil {
			var old peerInfo
			if json.Unmarshal([]byte(p.Info), &old) == nil {
				rtt = old.RTT
			}
		}
	}
	b, _ := json.Marshal(peerInfo{Heartbeat: hb, RTT: rtt})
	if err := cl.cat.SeenPeer(ctx, peer, cl.now(), string(b)); err != nil {
		cl.log.Warn("peer state not recorded", "peer", peer[:8], "err", err)
	}
}

// Peer states.
const (
	StateOnline  = "online"
	StateSuspect = "suspect"
	StateOffline = "offline"
)

// stateOf derives a peer's state from when it was last heard of: online
// within three heartbeats, suspect within ten, offline after.
func stateOf(lastSeen, now time.Time, hb time.Duration) string {
	switch age := now.Sub(lastSeen); {
	case lastSeen.IsZero():
		return StateOffline
	case age <= 3*hb:
		return StateOnline
	case age <= 10*hb:
		return StateSuspect
	}
	return StateOffline
}

// CountingPeers returns the storage peers whose copies count towards the
// replica count now.
func (cl *Cluster) CountingPeers(ctx context.Context) (map[string]bool, error) {
	peers, err := cl.cat.Peers(ctx)
	if err != nil {
		return nil, err
	}
	hb, err := cl.cat.Duration(ctx, "heartbeat-interval")
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
		if stateOf(p.LastSeen, now, hb) != StateOffline || now.Sub(p.LastSeen) < grace {
			out[p.ID] = true
		}
	}
	return out, nil
}
