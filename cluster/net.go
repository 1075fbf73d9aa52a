package cluster

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/loftstore/loft/catalog"
	"github.com/loftstore/loft/fault"
	"github.com/loftstore/loft/store"
	"github.com/loftstore/loft/transfer"
)

// ErrNoPeer means no pinned peer matches, or none is reachable.
var ErrNoPeer = fault.New(fault.Peer, "no such peer")

// ErrUnreachable means a peer could not be reached.
var ErrUnreachable = fault.New(fault.Peer, "peer unreachable")

// network is a node's side of the wire: its TLS identity, the connections
// it holds to peers, and, while it serves, its listener. It is created on
// first use, since most commands never touch the network.
type network struct {
	cl  *Cluster
	cfg transfer.Config

	mu sync.Mutex
	ln *transfer.Listener // nil unless serving
	// advertised are the addresses peers are told to dial (while serving).
	advertised []string
	conn       map[store.PeerID]*transfer.Conn
	dial       map[store.PeerID]*dialing
	failed     map[store.PeerID]failure
}

// dialing lets concurrent users of a peer wait for one dial.
type dialing struct {
	done chan struct{}
	c    *transfer.Conn
	err  error
}

func (cl *Cluster) network(ctx context.Context) (*network, error) {
	cl.netOnce.Do(func() {
		ident := cl.ident
		if ident == nil {
			cl.netErr = fault.E(fault.Repository, "this node has no usable key (node.key)")
			return
		}
		cert, err := ident.Certificate(cl.certPath)
		if err != nil {
			cl.netErr = err
			return
		}
		name, _ := cl.cat.Config(ctx, "name")
		nw := &network{cl: cl, conn: make(map[store.PeerID]*transfer.Conn), dial: make(map[store.PeerID]*dialing),
			failed: make(map[store.PeerID]failure)}
		nw.cfg = transfer.Config{
			Identity: ident,
			Cert:     cert,
			Allow:    cl.pinned,
			AllowJoin: func() bool {
				ok, err := cl.cat.InvitesPending(context.Background(), cl.now())
				return err == nil && ok
			},
			Handler: &handler{cl: cl},
			Logger:  cl.log,
			Name:    name,
		}
		cl.net = nw
	})
	return cl.net, cl.netErr
}

// pinned reports whether id is this node or a paired peer, by its exact
// ID (never a name, which peers choose). It reads the catalog, so a peer added or
// removed by another process counts at once.
func (cl *Cluster) pinned(id store.PeerID) bool {
	if id == cl.id {
		return true // this repository's own key: its dashboard or command line
	}
	_, err := cl.cat.PeerByID(context.Background(), id.String())
	return err == nil
}

// closeNetwork drops every connection.
func (nw *network) close() {
	nw.mu.Lock()
	conns := nw.conn
	nw.conn = map[store.PeerID]*transfer.Conn{}
	ln := nw.ln
	nw.mu.Unlock()
	for _, c := range conns {
		c.Close("closing")
	}
	if ln != nil {
		ln.Close()
	}
}

// connect returns a live connection to peer, dialing its addresses in turn
// when there is none. Concurrent callers share one dial, which runs on its
// own deadline so that one impatient caller does not fail the others. A
// failed dial is remembered for a while: a dead peer costs one timeout,
// not one per chunk.
func (nw *network) connect(ctx context.Context, peer store.PeerID) (*transfer.Conn, error) {
	nw.mu.Lock()
	if c, ok := nw.conn[peer]; ok {
		select {
		case <-c.Done():
			delete(nw.conn, peer)
		default:
			nw.mu.Unlock()
			return c, nil
		}
	}
	if f, ok := nw.failed[peer]; ok && time.Since(f.at) < redialAfter {
		nw.mu.Unlock()
		return nil, f.err
	}
	d, ok := nw.dial[peer]
	if !ok {
		d = &dialing{done: make(chan struct{})}
		nw.dial[peer] = d
		go func() {
			dctx, cancel := context.WithTimeout(context.Background(), dialTimeout)
			defer cancel()
			c, err := nw.dialPeer(dctx, peer)
			nw.mu.Lock()
			delete(nw.dial, peer)
			if err == nil {
				c = nw.keep(c)
				delete(nw.failed, peer)
			} else {
				nw.failed[peer] = failure{at: time.Now(), err: err}
			}
			d.c, d.err = c, err
			nw.mu.Unlock()
			close(d.done)
		}()
	}
	nw.mu.Unlock()
	select {
	case <-d.done:
		return d.c, d.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

const (
	dialTimeout = 10 * time.Second
	redialAfter = 5 * time.Second
)

type failure struct {
	at  time.Time
	err error
}

// keep records c as the connection to use for its peer: the newest. An
// older one is not closed: when two nodes dial each other at once, each
// may use a different one of the two, and two connections accepted from
// one peer ID are two of its processes (serve and a command line), so
// closing either would break a user. Both end with their peers.
// The caller holds nw.mu.
func (nw *network) keep(c *transfer.Conn) *transfer.Conn {
	nw.conn[c.Peer()] = c
	return c
}

func (nw *network) dialPeer(ctx context.Context, peer store.PeerID) (*transfer.Conn, error) {
	p, err := nw.cl.cat.FindPeer(ctx, peer.String())
	if err != nil {
		return nil, err
	}
	if len(p.Addrs) == 0 {
		return nil, fmt.Errorf("peer %s has no address: %w (loft peer add %s ADDR)", peer.Short(), ErrUnreachable, peer)
	}
	var errs []error
	nw.mu.Lock()
	ln := nw.ln
	nw.mu.Unlock()
	for _, addr := range p.Addrs {
		dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		var c *transfer.Conn
		if ln != nil {
			c, err = ln.Dial(dctx, addr, peer)
		} else {
			c, err = transfer.Dial(dctx, addr, peer, nw.cfg)
		}
		cancel()
		if err == nil {
			if ln == nil {
				// A client connection still answers the peer's requests
				// (fetches of chunks this node holds, for one).
				go nw.serveConn(context.WithoutCancel(ctx), c)
			}
			return c, nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", addr, err))
	}
	return nil, fmt.Errorf("peer %s: %w: %w", peer.Short(), ErrUnreachable, errors.Join(errs...))
}

// serveConn waits for a connection to end and forgets it.
func (nw *network) serveConn(ctx context.Context, c *transfer.Conn) {
	select {
	case <-c.Done():
	case <-ctx.Done():
	}
	nw.mu.Lock()
	if nw.conn[c.Peer()] == c {
		delete(nw.conn, c.Peer())
	}
	nw.mu.Unlock()
}

// adopt records an accepted connection as the one to use for its peer.
func (nw *network) adopt(c *transfer.Conn) {
	nw.mu.Lock()
	nw.keep(c)
	nw.mu.Unlock()
}

// serving records the listener and the addresses peers are told to dial.
func (nw *network) serving(ln *transfer.Listener, advertised []string) {
	nw.mu.Lock()
	nw.ln, nw.advertised = ln, advertised
	nw.mu.Unlock()
}

// listenAddrs returns the advertised addresses, nil when not serving.
func (nw *network) listenAddrs() []string {
	nw.mu.Lock()
	defer nw.mu.Unlock()
	return nw.advertised
}

// Conn is the entry point for code that talks to a peer by catalog ID.
func (cl *Cluster) Conn(ctx context.Context, id string) (*transfer.Conn, error) {
	pid, err := store.ParsePeerID(id)
	if err != nil {
		return nil, err
	}
	nw, err := cl.network(ctx)
	if err != nil {
		return nil, err
	}
	return nw.connect(ctx, pid)
}

// storagePeers returns the peers that hold replicas: those with an address
// to dial. A peer without one is a client (a laptop using this node with
// --node): it is never sent replicas and does not count towards them.
func storagePeers(peers []catalog.Peer) []catalog.Peer {
	var out []catalog.Peer
	for _, p := range peers {
		if len(p.Addrs) > 0 {
			out = append(out, p)
		}
	}
	return out
}

// DialSelf connects to the serve process of this repository at one of
// addrs (loopback first: it runs on this machine), with the repository's
// own key, which that process accepts as itself.
func (cl *Cluster) DialSelf(ctx context.Context, addrs []string) (*transfer.Conn, error) {
	nw, err := cl.network(ctx)
	if err != nil {
		return nil, err
	}
	err = errors.New("no address")
	for _, addr := range localFirst(addrs) {
		dctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		c, derr := transfer.Dial(dctx, addr, cl.id, nw.cfg)
		cancel()
		if derr == nil {
			return c, nil
		}
		err = derr
	}
	return nil, err
}

// localFirst orders addresses loopback first: the serve process is on
// this machine.
func localFirst(addrs []string) []string {
	out := slices.Clone(addrs)
	slices.SortStableFunc(out, func(a, b string) int {
		la, lb := isLoopback(a), isLoopback(b)
		switch {
		case la == lb:
			return 0
		case la:
			return -1
		}
		return 1
	})
	return out
}
