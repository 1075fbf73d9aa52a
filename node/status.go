package node

import (
	"context"
	"encoding/json"
	"time"

	"github.com/loftstore/loft/catalog"
)

// Status is the health of this node and what it knows of its peers.
type Status struct {
	Node        NodeStatus            `json:"node"`
	Peers       []PeerStatus          `json:"peers"`
	Replication ReplicationStatus     `json:"replication"`
	Transfer    *Transfer             `json:"transfer,omitempty"`  // while a node serves
	InFlight    []InFlight            `json:"in_flight,omitempty"` // in the serving process
	GC          catalog.GarbageTotals `json:"gc_pending"`
	Loops       map[string]loopRecord `json:"loops,omitempty"`
}

type NodeStatus struct {
	ID     string `json:"id"`
	Name   string `json:"name,omitempty"`
	Chunks int64  `json:"chunks"`
	Stored int64  `json:"stored_bytes"`
	Free   int64  `json:"free_bytes"`
}

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

// Status reports this node, its peers and replication health.
func (n *Node) Status(ctx context.Context) (Status, error) {
	var st Status
	hb, err := n.heartbeat(ctx)
	if err != nil {
		return st, err
	}
	st.Node = NodeStatus{ID: n.id.String(), Name: hb.Name, Chunks: hb.Chunks, Stored: hb.Stored, Free: hb.Free}
	hbEvery, err := n.cat.Duration(ctx, "heartbeat-interval")
	if err != nil {
		return st, err
	}
	peers, err := n.cat.Peers(ctx)
	if err != nil {
		return st, err
	}
	now := n.now()
	st.Peers = []PeerStatus{}
	for _, p := range peers {
		ps := PeerStatus{ID: p.ID, Name: p.Name, Role: "storage", State: stateOf(p.LastSeen, now, hbEvery), LastSeen: p.LastSeen, Addrs: p.Addrs}
		if len(p.Addrs) == 0 {
			ps.Role = "client"
		}
		var info peerInfo
		if json.Unmarshal([]byte(p.Info), &info) == nil {
			ps.RTT, ps.Chunks, ps.Stored, ps.Free = info.RTT, info.Chunks, info.Stored, info.Free
		}
		st.Peers = append(st.Peers, ps)
	}
	counts, err := n.countingPeers(ctx)
	if err != nil {
		return st, err
	}
	r, err := n.Replicas(ctx, len(storagePeers(peers)))
	if err != nil {
		return st, err
	}
	st.Replication.Replicas = r
	err = n.cat.EachReferenced(ctx, func(cc catalog.ChunkCopies) error {
		st.Replication.Chunks++
		st.Replication.Bytes += cc.Stored
		have := 0
		if cc.Held {
			have++
		}
		for _, p := range cc.Peers {
			if counts[p] {
				have++
			}
		}
		if have == 0 && !cc.Held && len(cc.Peers) == 0 {
			st.Replication.Unplaced++
			return nil
		}
		if have < r {
			st.Replication.Below++
			st.Replication.BelowBytes += cc.Stored
			if cc.Held {
				st.Replication.UnderRepair++
			}
		}
		return nil
	})
	if err != nil {
		return st, err
	}
	ggrace, err := n.cat.GCGrace(ctx)
	if err != nil {
		return st, err
	}
	st.GC, err = n.cat.GarbageTotals(ctx, catalog.SweepRule{Before: now.Add(-ggrace)})
	if err != nil {
		return st, err
	}
	if v, err := n.cat.Meta(ctx, "transfer"); err == nil && v != "" {
		var t Transfer
		if json.Unmarshal([]byte(v), &t) == nil {
			st.Transfer = &t
		}
	}
	st.InFlight = n.transfers.snapshot()
	st.Loops = map[string]loopRecord{}
	for _, name := range []string{"replicate", "repair", "scrub", "gc"} {
		if v, err := n.cat.Meta(ctx, "loop."+name); err == nil && v != "" {
			var rec loopRecord
			if json.Unmarshal([]byte(v), &rec) == nil {
				st.Loops[name] = rec
			}
		}
	}
	return st, nil
}
