package cluster

import (
	"context"
	"encoding/json"
	"time"

	"github.com/loftstore/loft/catalog"
)

// PeerStatus is what status shows of a peer.
type PeerStatus struct {
	ID       string        `json:"id"`
	Name     string        `json:"name,omitempty"`
	Role     string        `json:"role"` // storage, or client (no address: uses this node, holds no replicas)
	State    string        `json:"state"`
	LastSeen time.Time     `json:"last_seen,omitzero"`
	RTT      time.Duration `json:"rtt_ns"`
	Chunks   int64         `json:"chunks"`
	Stored   int64         `json:"stored_bytes"`
	Free     int64         `json:"free_bytes"`
	Addrs    []string      `json:"addrs"`
}

// ReplicationStatus counts the copies of the chunks versions reference.
type ReplicationStatus struct {
	Replicas int `json:"replicas"`
	// Chunks referenced by some version, and their stored bytes.
	Chunks int64 `json:"chunks"`
	Bytes  int64 `json:"bytes"`
	// Below: chunks with fewer than Replicas copies among the nodes that
	// count (this one, peers online or offline for less than peer-grace).
	Below      int64 `json:"below"`
	BelowBytes int64 `json:"below_bytes"`
	// UnderRepair: of those, chunks this node holds and will copy.
	UnderRepair int64 `json:"under_repair"`
	// Unplaced: chunks no node is known to hold from here (held by peers
	// that have not yet confirmed them to this node).
	Unplaced int64 `json:"unplaced"`
}

// PeerStatuses reports every pinned peer as this node knows it.
func (cl *Cluster) PeerStatuses(ctx context.Context) ([]PeerStatus, error) {
	peers, state, err := cl.states(ctx)
	if err != nil {
		return nil, err
	}
	out := []PeerStatus{}
	for _, p := range peers {
		ps := PeerStatus{ID: p.ID, Name: p.Name, Role: "storage", State: state[p.ID], LastSeen: p.LastSeen, Addrs: p.Addrs}
		if len(p.Addrs) == 0 {
			ps.Role = "client"
		}
		var info peerInfo
		if json.Unmarshal([]byte(p.Info), &info) == nil {
			ps.RTT, ps.Chunks, ps.Stored, ps.Free = info.RTT, info.Chunks, info.Stored, info.Free
		}
		out = append(out, ps)
	}
	return out, nil
}

// Replication counts the copies of every referenced chunk among the nodes
// that count.
func (cl *Cluster) Replication(ctx context.Context) (ReplicationStatus, error) {
	var rs ReplicationStatus
	peers, err := cl.cat.Peers(ctx)
	if err != nil {
		return rs, err
	}
	counts, err := cl.CountingPeers(ctx)
	if err != nil {
		return rs, err
	}
	r, err := cl.Replicas(ctx, len(storagePeers(peers)))
	if err != nil {
		return rs, err
	}
	rs.Replicas = r
	err = cl.cat.EachReferenced(ctx, func(cc catalog.ChunkCopies) error {
		rs.Chunks++
		rs.Bytes += cc.Stored
		have := Copies(cc, counts)
		if have == 0 && !cc.Held && len(cc.Peers) == 0 {
			rs.Unplaced++
			return nil
		}
		if have < r {
			rs.Below++
			rs.BelowBytes += cc.Stored
			if cc.Held {
				rs.UnderRepair++
			}
		}
		return nil
	})
	return rs, err
}

// Copies counts the copies of a chunk that count: this node's, and those of
// the peers in counts (CountingPeers).
func Copies(cc catalog.ChunkCopies, counts map[string]bool) int {
	n := 0
	if cc.Held {
		n++
	}
	for _, p := range cc.Peers {
		if counts[p] {
			n++
		}
	}
	return n
}

// LoopRecords returns the last result of each background loop.
func (cl *Cluster) LoopRecords(ctx context.Context) map[string]LoopRecord {
	out := map[string]LoopRecord{}
	for _, name := range []string{"replicate", "repair", "scrub", "gc"} {
		if v, err := cl.cat.Meta(ctx, "loop."+name); err == nil && v != "" {
			var rec LoopRecord
			if json.Unmarshal([]byte(v), &rec) == nil {
				out[name] = rec
			}
		}
	}
	cl.loops.mu.Lock()
	for name, rec := range cl.loops.latest {
		out[name] = rec // this process serves: its newest, not only the last written
	}
	cl.loops.mu.Unlock()
	return out
}

// LastTransfer returns the traffic figures a serving node recorded last.
func (cl *Cluster) LastTransfer(ctx context.Context) *Transfer {
	if t := cl.lastTransfer.Load(); t != nil {
		return t // this process serves
	}
	v, err := cl.cat.Meta(ctx, "transfer")
	if err != nil || v == "" {
		return nil
	}
	var t Transfer
	if json.Unmarshal([]byte(v), &t) != nil {
		return nil
	}
	return &t
}

// InFlight returns the transfers under way in this process.
func (cl *Cluster) InFlight() []InFlight { return cl.transfers.snapshot() }
