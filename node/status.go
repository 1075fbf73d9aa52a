package node

import (
	"context"
	"time"

	"github.com/loftstore/loft/catalog"
	"github.com/loftstore/loft/cluster"
	"github.com/loftstore/loft/transfer"
)

// Status is the health of this node and what it knows of its peers.
type Status struct {
	Node        NodeStatus                    `json:"node"`
	Peers       []PeerStatus                  `json:"peers"`
	Replication ReplicationStatus             `json:"replication"`
	Transfer    *Transfer                     `json:"transfer,omitempty"`  // while a node serves
	InFlight    []InFlight                    `json:"in_flight,omitempty"` // in the serving process
	GC          catalog.GarbageTotals         `json:"gc_pending"`
	Loops       map[string]cluster.LoopRecord `json:"loops,omitempty"`
	History     HistoryStatus                 `json:"history"`
	Services    []ServiceStatus               `json:"services,omitempty"` // in the serving process
}

// HistoryStatus says what this node refused from its peers, and what
// happened to its history: its catalog going back in time and taking back
// what it lost, forks seen in other nodes' changes, peers' logs read again.
type HistoryStatus struct {
	Quarantined int64                  `json:"quarantined"`       // changes from peers refused
	Refused     []catalog.Quarantined  `json:"refused,omitempty"` // the newest of them
	Events      int64                  `json:"events"`            // history events in all
	Recent      []catalog.HistoryEvent `json:"recent,omitempty"`  // the newest of them
}

// historyShown bounds the refused changes and events a status lists.
const historyShown = 10

// History reports what this node refused from peers and what happened to
// its history.
func (n *Node) History(ctx context.Context) (HistoryStatus, error) {
	var h HistoryStatus
	var err error
	if h.Quarantined, h.Refused, err = n.cat.Quarantined(ctx, historyShown); err != nil {
		return h, err
	}
	h.Events, h.Recent, err = n.cat.History(ctx, historyShown)
	return h, err
}

// The parts of a status that the cluster knows.
type (
	PeerStatus        = cluster.PeerStatus
	ReplicationStatus = cluster.ReplicationStatus
	Transfer          = cluster.Transfer
	InFlight          = cluster.InFlight
)

// NodeStatus describes this node.
type NodeStatus struct {
	ID     string `json:"id"`
	Name   string `json:"name,omitempty"`
	Chunks int64  `json:"chunks"`
	Stored int64  `json:"stored_bytes"`
	Free   int64  `json:"free_bytes"`
	// ReceivingPaused is set while a serving node's full disk stops it from
	// receiving chunks: since when.
	ReceivingPaused time.Time `json:"receiving_paused,omitzero"`
}

// Status reports this node, its peers and replication health. While
// another process serves the repository, that process answers: it holds the
// peers' heartbeats, the traffic and the loops' results as they are now
// (only what changed is written to the catalog).
func (n *Node) Status(ctx context.Context) (Status, error) {
	if addrs := n.cl.ServingAddrs(ctx); len(addrs) > 0 && n.cl.ServingElsewhere() {
		if st, err := n.statusOfServe(ctx, addrs); err == nil {
			return st, nil
		}
	}
	return n.status(ctx)
}

// statusOfServe asks the process serving this repository for its status.
func (n *Node) statusOfServe(ctx context.Context, addrs []string) (Status, error) {
	c, err := n.cl.DialSelf(ctx, addrs)
	if err != nil {
		return Status{}, err
	}
	defer c.Close("done")
	var st Status
	err = c.Call(ctx, transfer.OpStatus, transfer.Empty{}, &st)
	return st, err
}

func (n *Node) status(ctx context.Context) (Status, error) {
	var st Status
	hb, err := n.cl.Self(ctx)
	if err != nil {
		return st, err
	}
	st.Node = NodeStatus{ID: n.id.String(), Name: hb.Name, Chunks: hb.Chunks, Stored: hb.Stored, Free: hb.Free,
		ReceivingPaused: n.cl.ReceivingPaused()}
	if st.Peers, err = n.cl.PeerStatuses(ctx); err != nil {
		return st, err
	}
	if st.Replication, err = n.cl.Replication(ctx); err != nil {
		return st, err
	}
	ggrace, err := n.cat.GCGrace(ctx)
	if err != nil {
		return st, err
	}
	st.GC, err = n.cat.GarbageTotals(ctx, catalog.SweepRule{Before: n.now().Add(-ggrace)})
	if err != nil {
		return st, err
	}
	st.Transfer = n.cl.LastTransfer(ctx)
	st.InFlight = n.cl.InFlight()
	st.Loops = n.cl.LoopRecords(ctx)
	st.Services = n.serviceStatuses()
	st.History, err = n.History(ctx)
	return st, err
}
