package cluster

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/loftstore/loft/catalog"
	"github.com/loftstore/loft/fault"
	"github.com/loftstore/loft/transfer"
)

// Invite creates a single-use pairing token valid for ttl. addrs are the
// addresses the joiner should dial (those serve listens on).
func (cl *Cluster) Invite(ctx context.Context, addrs []string, ttl time.Duration) (transfer.Invite, error) {
	var inv transfer.Invite
	if len(addrs) == 0 {
		return inv, fmt.Errorf("invite: no address to put in the token (use --addr HOST:PORT)")
	}
	if len(addrs) > transfer.MaxAddrs {
		addrs = addrs[:transfer.MaxAddrs]
	}
	if _, err := rand.Read(inv.Secret[:]); err != nil {
		return inv, err
	}
	inv.Node, inv.Addrs, inv.Expires = cl.id, addrs, cl.now().Add(ttl).Truncate(time.Second)
	if err := cl.cat.AddInvite(ctx, inv.Secret[:], inv.Expires); err != nil {
		return inv, fmt.Errorf("invite: %w", err)
	}
	return inv, nil
}

// JoinResult describes a pairing.
type JoinResult struct {
	Peer  string   `json:"peer"`
	Name  string   `json:"name,omitempty"`
	Addrs []string `json:"addrs"`
}

// Join pairs with the node that printed token: it proves the token's secret
// over a join connection, and on success both nodes have pinned each other.
// listen is what this node tells the other to dial back (may be empty).
func (cl *Cluster) Join(ctx context.Context, token string, listen []string) (JoinResult, error) {
	inv, err := transfer.ParseInvite(token)
	if err != nil {
		return JoinResult{}, err
	}
	if cl.now().After(inv.Expires) {
		return JoinResult{}, fmt.Errorf("join: the invite expired at %s", inv.Expires.Format(time.RFC3339))
	}
	if inv.Node == cl.id {
		return JoinResult{}, fmt.Errorf("join: the invite is this node's own")
	}
	nw, err := cl.network(ctx)
	if err != nil {
		return JoinResult{}, err
	}
	name, _ := cl.cat.Config(ctx, "name")
	var errs []error
	for _, addr := range inv.Addrs {
		dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		c, err := transfer.DialJoin(dctx, addr, inv.Node, nw.cfg)
		if err != nil {
			cancel()
			errs = append(errs, fmt.Errorf("%s: %w", addr, err))
			continue
		}
		var resp transfer.JoinResp
		err = c.Call(dctx, transfer.OpJoin, transfer.JoinReq{Proof: transfer.JoinProof(inv.Secret, cl.id, inv.Node), Name: name, Listen: listen}, &resp)
		c.Close("joined")
		cancel()
		if err != nil {
			return JoinResult{}, fmt.Errorf("join: %w", err)
		}
		addrs := append([]string{addr}, resp.Listen...)
		addrs = slices.Compact(addrs)
		if err := cl.cat.AddPeer(ctx, catalog.Peer{ID: inv.Node.String(), Name: resp.Name, Addrs: addrs}); err != nil {
			return JoinResult{}, err
		}
		return JoinResult{Peer: inv.Node.String(), Name: resp.Name, Addrs: addrs}, nil
	}
	return JoinResult{}, fmt.Errorf("join: %w: %w", ErrUnreachable, errors.Join(errs...))
}

func (cl *Cluster) acceptJoin(ctx context.Context, c *transfer.Conn, req transfer.JoinReq) (transfer.JoinResp, error) {
	joiner := c.Peer()
	addrs := req.Listen
	if len(addrs) > transfer.MaxAddrs {
		addrs = addrs[:transfer.MaxAddrs]
	}
	err := cl.cat.UseInvite(ctx, cl.now(), req.Proof, func(secret []byte) []byte {
		var s [16]byte
		copy(s[:], secret)
		return transfer.JoinProof(s, joiner, cl.id)
	}, catalog.Peer{ID: joiner.String(), Name: req.Name, Addrs: addrs})
	if errors.Is(err, catalog.ErrInvite) {
		cl.log.Warn("join refused: no invite matches", "peer", joiner.Short(), "addr", c.RemoteAddr())
		return transfer.JoinResp{}, transfer.Errorf(fault.Denied, "no valid invite matches (expired, used, or wrong token)")
	}
	if err != nil {
		return transfer.JoinResp{}, err
	}
	cl.log.Info("paired", "peer", joiner.Short(), "name", req.Name)
	name, _ := cl.cat.Config(ctx, "name")
	var listen []string
	if cl.net != nil {
		listen = cl.net.listenAddrs()
	}
	return transfer.JoinResp{Name: name, Listen: listen}, nil
}

// AddPeer pins a peer by ID and addresses.
func (cl *Cluster) AddPeer(ctx context.Context, p catalog.Peer) error {
	if p.ID == cl.id.String() {
		return fmt.Errorf("peer add: %s is this node", p.ID)
	}
	return cl.cat.AddPeer(ctx, p)
}

// RemovePeer unpins a peer named by ID, ID prefix or name.
func (cl *Cluster) RemovePeer(ctx context.Context, ref string) error {
	p, err := cl.cat.FindPeer(ctx, ref)
	if errors.Is(err, catalog.ErrNotFound) {
		return fmt.Errorf("peer rm %s: %w (loft peer ls lists them)", ref, ErrNoPeer)
	}
	if err != nil {
		return err
	}
	return cl.cat.RemovePeer(ctx, p.ID)
}
