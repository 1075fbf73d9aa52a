package cluster

import (
	"context"
	"fmt"
	"time"

	"github.com/loftstore/loft/store"
	"github.com/loftstore/loft/transfer"
)

// ConfirmHistory compares this node's own history with what each storage
// peer holds of it (see audit), taking back what the catalog lost. It
// returns why orphan chunk files must stay: "" once every storage peer has
// confirmed the history, else the first peer that could not.
func (cl *Cluster) ConfirmHistory(ctx context.Context) string {
	peers, err := cl.cat.Peers(ctx)
	if err != nil {
		return err.Error()
	}
	for _, p := range storagePeers(peers) {
		c, err := cl.Conn(ctx, p.ID)
		if err == nil {
			err = cl.audit(ctx, c)
		}
		if err != nil {
			return fmt.Sprintf("this node's history is not yet confirmed by peer %s (%v)", p.ID[:8], err)
		}
	}
	return ""
}

// SpareInUse is the cluster half of the GC rule: of the chunks this node
// would sweep, it keeps those any peer still needs. A peer that cannot be
// asked keeps all of them.
func (cl *Cluster) SpareInUse(grace time.Duration) func(context.Context, []store.ID) (store.IDSet, error) {
	return func(ctx context.Context, ids []store.ID) (store.IDSet, error) {
		peers, err := cl.cat.Peers(ctx)
		if err != nil {
			return nil, err
		}
		spared := make(store.IDSet)
		for _, p := range peers {
			if len(p.Addrs) == 0 && p.LastSeen.IsZero() {
				// A client that never served has no catalog of the
				// cluster's versions: whatever it writes, it writes here.
				continue
			}
			c, err := cl.Conn(ctx, p.ID)
			var bits transfer.Bits
			if err == nil {
				err = c.Call(ctx, transfer.OpInUse, transfer.InUseReq{IDs: ids, Grace: grace}, &bits)
			}
			if err == nil && len(bits.Bits) != len(ids) {
				err = fmt.Errorf("answered %d of %d", len(bits.Bits), len(ids))
			}
			if err != nil {
				cl.log.Info("gc keeps garbage a peer could not vouch for", "peer", p.ID[:8], "err", err)
				for _, id := range ids {
					spared.Add(id)
				}
				return spared, nil
			}
			for i, id := range ids {
				if bits.Bits[i] {
					spared.Add(id)
				}
			}
		}
		return spared, nil
	}
}
