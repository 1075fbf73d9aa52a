package cluster

import (
	"context"
	"fmt"
	"time"

	"github.com/loftstore/loft/store"
	"github.com/loftstore/loft/transfer"
)

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

// AddPeer pins a peer by ID and addresses.
