package node

import (
	"context"
	"time"

	"github.com/loftstore/loft/catalog"
	"github.com/loftstore/loft/cluster"
	"github.com/loftstore/loft/transfer"
)

// Errors of the cluster that the node's callers see.
var (
	ErrNoPeer      = cluster.ErrNoPeer
	ErrUnreachable = cluster.ErrUnreachable
)

// JoinResult describes a pairing.
type JoinResult = cluster.JoinResult

// Invite creates a single-use pairing token valid for ttl. addrs are the
// addresses the joiner should dial (those serve listens on).
func (n *Node) Invite(ctx context.Context, addrs []string, ttl time.Duration) (transfer.Invite, error) {
	return n.cl.Invite(ctx, addrs, ttl)
}

// Join pairs with the node that printed token; listen is what this node
// tells the other to dial back (may be empty).
func (n *Node) Join(ctx context.Context, token string, listen []string) (JoinResult, error) {
	return n.cl.Join(ctx, token, listen)
}

// AddPeer pins a peer by ID and addresses.
func (n *Node) AddPeer(ctx context.Context, p catalog.Peer) error { return n.cl.AddPeer(ctx, p) }

// RemovePeer unpins a peer named by ID, ID prefix or name.
func (n *Node) RemovePeer(ctx context.Context, ref string) error { return n.cl.RemovePeer(ctx, ref) }
