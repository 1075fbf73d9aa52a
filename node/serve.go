package node

import (
	"context"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/loftstore/loft/cluster"
)

// ServeOptions configure Serve.
type ServeOptions struct {
	// Listen is the UDP address; empty means the listen setting.
	Listen string
	// Advertise are the addresses peers are told to dial; empty means the
	// listen address, or every interface address when it is unspecified.
	Advertise []string
	// Ready, when set, is called with the bound address once serving.
	Ready func(addr string)
}

// Serve runs the node until ctx ends: the cluster's side (peers'
// connections, heartbeats, change exchange, replication, repair, scrub),
// the GC loop, and the event stream of the dashboard. The CLI keeps
// working on the repository meanwhile.
func (n *Node) Serve(ctx context.Context, opts ServeOptions) error {
	gcEvery, err := n.cat.Duration(ctx, "gc-interval")
	if err != nil {
		return err
	}
	hb, err := n.cat.Duration(ctx, "heartbeat-interval")
	if err != nil {
		return err
	}
	srv, err := n.cl.Listen(ctx, cluster.ListenOptions{Listen: opts.Listen, Advertise: opts.Advertise})
	if err != nil {
		return err
	}
	if opts.Ready != nil {
		opts.Ready(srv.Addr())
	}
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return srv.Run(ctx) })
	g.Go(func() error { n.publishLoop(ctx, max(hb, time.Second)); return nil })
	g.Go(func() error {
		cluster.Every(ctx, gcEvery, func() {
			res, err := n.GC(ctx, GCOptions{Grace: -1})
			if err != nil && ctx.Err() == nil {
				n.log.Warn("gc failed", "err", err)
			} else if res.Chunks > 0 {
				n.log.Info("gc", "chunks", res.Chunks, "bytes", res.Bytes)
			}
			n.cl.RecordLoop(ctx, "gc", res, err)
		})
		return nil
	})
	err = g.Wait()
	n.log.Info("stopped serving")
	return err
}
