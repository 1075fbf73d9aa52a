package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"slices"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/loftstore/loft/catalog"
	"github.com/loftstore/loft/store"
	"github.com/loftstore/loft/transfer"
)

// ListenOptions configure Listen.
type ListenOptions struct {
	// Listen is the UDP address; empty means the listen setting.
	Listen string
	// Advertise are the addresses peers are told to dial; empty means the
	// listen address, or every interface address when it is unspecified.
	Advertise []string
}

// Server is a node listening for its peers; Run serves it.
type Server struct {
	cl         *Cluster
	ln         *transfer.Listener
	lock       *os.File // the serve lock, held until Run ends
	advertised []string
	iv         map[string]time.Duration
}

// Listen binds the node's address. Until Run ends, peers may connect.
func (cl *Cluster) Listen(ctx context.Context, opts ListenOptions) (*Server, error) {
	nw, err := cl.network(ctx)
	if err != nil {
		return nil, err
	}
	if opts.Listen == "" {
		if opts.Listen, err = cl.cat.Config(ctx, "listen"); err != nil {
			return nil, err
		}
	}
	iv := map[string]time.Duration{}
	for _, k := range []string{"heartbeat-interval", "replicate-interval", "repair-interval", "scrub-interval"} {
		if iv[k], err = cl.cat.Duration(ctx, k); err != nil {
			return nil, err
		}
	}
	lock, err := cl.lockServe()
	if err != nil {
		return nil, err
	}
	ln, err := transfer.Listen(opts.Listen, nw.cfg)
	if err != nil {
		lock.Close()
		return nil, fmt.Errorf("serve: listen on %s: %w", opts.Listen, err)
	}
	advertised := opts.Advertise
	if len(advertised) == 0 {
		advertised = advertise(ln.Addr().String())
	}
	nw.serving(ln, advertised)
	cl.log.Info("serving", "node", cl.id.String(), "listen", ln.Addr().String(), "advertise", advertised)
	return &Server{cl: cl, ln: ln, lock: lock, advertised: advertised, iv: iv}, nil
}

// Addr returns the bound address.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Advertised returns the addresses peers are told to dial.
func (s *Server) Advertised() []string { return s.advertised }

// Run serves until ctx ends: it accepts peers' connections, keeps one to
// every pinned peer (heartbeats, change exchange, reconnects with
// backoff), and runs the replication, repair and scrub loops at the
// configured intervals. It closes the listener and every connection
// before it returns.
func (s *Server) Run(ctx context.Context) error {
	cl, ln, iv := s.cl, s.ln, s.iv
	nw := cl.net
	defer s.lock.Close() // last: while it is held, others read the records below as current
	defer nw.close()
	if err := cl.cat.OpenReaders(ctx); err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	// Where this node serves, for the dashboard and the command line of
	// this repository: written once; the lock says whether it is current.
	cl.setServing(ctx, s.advertised)
	defer cl.setServing(ctx, nil)
	cl.live.serving(true, iv["heartbeat-interval"])
	defer cl.persistAll(ctx)
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		for {
			c, err := ln.Accept(ctx)
			if err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return fmt.Errorf("serve: accept: %w", err)
			}
			if c.Join() {
				continue // the handler answers its one request
			}
			nw.adopt(c)
			go nw.serveConn(ctx, c)
		}
	})
	g.Go(func() error { cl.peerLoops(ctx, iv["heartbeat-interval"]); return nil })
	g.Go(func() error { cl.recordTraffic(ctx, max(iv["heartbeat-interval"], time.Second)); return nil })
	g.Go(func() error {
		Every(ctx, iv["replicate-interval"], func() {
			rep, err := cl.replicate(ctx)
			if err != nil && ctx.Err() == nil {
				cl.log.Warn("replication pass incomplete", "err", err)
			}
			if rep.Pushed > 0 || rep.Below > 0 {
				cl.log.Info("replication", "below", rep.Below, "pushed", rep.Pushed, "bytes", rep.PushedBytes)
			}
			cl.RecordLoop(ctx, "replicate", rep, err)
		})
		return nil
	})
	g.Go(func() error {
		Every(ctx, iv["repair-interval"], func() {
			var rep RepairReport
			var err error
			rep.ReplicasDropped, err = cl.VerifyReplicas(ctx)
			if err != nil && ctx.Err() == nil {
				cl.log.Warn("repair: replica check incomplete", "err", err)
			}
			cl.RecordLoop(ctx, "repair", rep, err)
		})
		return nil
	})
	g.Go(func() error {
		Every(ctx, iv["scrub-interval"], func() {
			rep, err := cl.Scrub(ctx)
			if err != nil && ctx.Err() == nil {
				cl.log.Warn("scrub incomplete", "err", err)
			}
			if rep.Corrupt > 0 {
				cl.log.Warn("scrub found corrupt chunks", "corrupt", rep.Corrupt, "repaired", rep.Repaired)
			}
			cl.RecordLoop(ctx, "scrub", rep, err)
		})
		return nil
	})
	return g.Wait()
}

// LoopRecord is the last result of a background loop, kept in the catalog
// so that status in another process can show it.
type LoopRecord struct {
	At     time.Time `json:"at"`
	Result any       `json:"result"`
	Error  string    `json:"error,omitempty"`
}

// RecordLoop keeps the last result of a loop for status: in memory, and in
// the catalog when it differs from the one written last (its time aside),
// so that a loop that finds nothing to do writes nothing.
func (cl *Cluster) RecordLoop(ctx context.Context, name string, result any, err error) {
	rec := LoopRecord{At: cl.now(), Result: result}
	if err != nil {
		rec.Error = err.Error()
	}
	what, _ := json.Marshal(LoopRecord{Result: rec.Result, Error: rec.Error})
	cl.loops.mu.Lock()
	if cl.loops.latest == nil {
		cl.loops.latest, cl.loops.saved = map[string]LoopRecord{}, map[string]string{}
	}
	cl.loops.latest[name] = rec
	same := cl.loops.saved[name] == string(what)
	cl.loops.saved[name] = string(what)
	cl.loops.mu.Unlock()
	if same {
		return
	}
	b, _ := json.Marshal(rec)
	wctx := context.WithoutCancel(ctx)
	cl.cat.Tx(wctx, func(tx *catalog.Tx) error { return tx.SetMeta(wctx, "loop."+name, string(b)) })
}

// peerLoops keeps one goroutine per pinned peer, started and stopped as
// peers are added and removed (by any process).
func (cl *Cluster) peerLoops(ctx context.Context, hb time.Duration) {
	var wg sync.WaitGroup
	running := map[string]context.CancelFunc{}
	defer func() {
		for _, stop := range running {
			stop()
		}
		wg.Wait()
	}()
	sync := func() {
		peers, err := cl.cat.Peers(ctx)
		if err != nil {
			return
		}
		seen := map[string]bool{}
		for _, p := range peers {
			seen[p.ID] = true
			if _, ok := running[p.ID]; ok {
				continue
			}
			pid, err := store.ParsePeerID(p.ID)
			if err != nil {
				continue
			}
			pctx, stop := context.WithCancel(ctx)
			running[p.ID] = stop
			wg.Add(1)
			go func() {
				defer wg.Done()
				cl.peerLoop(pctx, pid, hb)
			}()
		}
		for id, stop := range running {
			if !seen[id] {
				stop()
				delete(running, id)
			}
		}
	}
	sync()
	Every(ctx, hb, sync)
}

// peerLoop keeps a connection to one peer: heartbeats every hb, then the
// peer's new changes; reconnects with exponential backoff up to 30s.
func (cl *Cluster) peerLoop(ctx context.Context, peer store.PeerID, hb time.Duration) {
	nw := cl.net
	backoff := time.Second
	wasUp := false
	for ctx.Err() == nil {
		err := cl.exchange(ctx, nw, peer, hb)
		cl.persist(ctx, peer.String(), false) // a state that changed as time passed (suspect, offline)
		if err == nil {
			if !wasUp {
				cl.log.Info("peer online", "peer", peer.Short())
			}
			wasUp, backoff = true, time.Second
			sleep(ctx, hb)
			continue
		}
		if wasUp || backoff == time.Second {
			cl.log.Info("peer unreachable", "peer", peer.Short(), "err", err, "retry", backoff)
		}
		wasUp = false
		sleep(ctx, backoff)
		backoff = min(2*backoff, 30*time.Second)
	}
}

func (cl *Cluster) exchange(ctx context.Context, nw *network, peer store.PeerID, hb time.Duration) error {
	cctx, cancel := context.WithTimeout(ctx, max(3*hb, 5*time.Second))
	defer cancel()
	c, err := nw.connect(cctx, peer)
	if err != nil {
		return err
	}
	mine, err := cl.Heartbeat(ctx)
	if err != nil {
		return err
	}
	start := time.Now()
	var theirs transfer.Heartbeat
	if err := c.Call(cctx, transfer.OpHeartbeat, mine, &theirs); err != nil {
		return err
	}
	cl.heard(ctx, peer.String(), theirs, time.Since(start))
	cl.learnPeer(ctx, peer.String(), theirs)
	// This node's own history first: what a peer holds of it that this
	// catalog lost is taken back before anything else is written.
	if err := cl.audit(ctx, c); err != nil && ctx.Err() == nil {
		cl.log.Warn("history audit failed", "peer", peer.Short(), "err", err)
	}
	if _, err := cl.pullChanges(ctx, c); err != nil && ctx.Err() == nil {
		cl.log.Warn("change exchange failed", "peer", peer.Short(), "err", err)
	}
	return nil
}

// advertise lists the addresses peers should dial for a listener bound to
// addr: addr itself, or each interface address when it is unspecified.
func advertise(addr string) []string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsUnspecified() {
		return []string{addr}
	}
	ifaddrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil
	}
	var out []string
	for _, a := range ifaddrs {
		ipn, ok := a.(*net.IPNet)
		if !ok || ipn.IP.IsLinkLocalUnicast() {
			continue
		}
		if ipn.IP.To4() == nil && ip.To4() != nil {
			continue
		}
		out = append(out, net.JoinHostPort(ipn.IP.String(), port))
	}
	slices.SortStableFunc(out, func(a, b string) int { // loopback last
		la, lb := isLoopback(a), isLoopback(b)
		switch {
		case la == lb:
			return 0
		case la:
			return 1
		}
		return -1
	})
	if len(out) > transfer.MaxAddrs {
		out = out[:transfer.MaxAddrs]
	}
	return out
}

func isLoopback(hostport string) bool {
	h, _, _ := net.SplitHostPort(hostport)
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// learnPeer adds the addresses a peer advertises to those known for it
// (the ones known first stay first: an address given at pairing, or behind
// a port forward, is not replaced by what the peer sees of itself), and
// takes the peer's name when the user gave it none.
func (cl *Cluster) learnPeer(ctx context.Context, id string, hb transfer.Heartbeat) {
	p, err := cl.cat.PeerByID(ctx, id)
	if err != nil {
		return
	}
	addrs := slices.Clone(p.Addrs)
	for _, a := range hb.Listen {
		if !slices.Contains(addrs, a) && len(addrs) < transfer.MaxAddrs {
			addrs = append(addrs, a)
		}
	}
	name := ""
	if p.Name == "" && hb.Name != "" {
		name = hb.Name
	}
	if len(addrs) != len(p.Addrs) || name != "" {
		cl.cat.AddPeer(ctx, catalog.Peer{ID: id, Name: name, Addrs: addrs})
	}
}
