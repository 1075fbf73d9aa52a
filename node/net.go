package node

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"time"

	"github.com/loftstore/loft/catalog"
	"github.com/loftstore/loft/store"
	"github.com/loftstore/loft/transfer"
)

const certFile = "node.crt"

// ErrNoPeer means no pinned peer matches, or none is reachable.
var ErrNoPeer = errors.New("no such peer")

// ErrUnreachable means a peer could not be reached.
var ErrUnreachable = errors.New("peer unreachable")

// network is a node's side of the wire: its TLS identity, the connections
// it holds to peers, and, while it serves, its listener. It is created on
// first use, since most commands never touch the network.
type network struct {
	n   *Node
	cfg transfer.Config
	ln  *transfer.Listener // nil unless serving
	// advertised are the addresses peers are told to dial (while serving).
	advertised []string
	mu         sync.Mutex
	conn       map[store.PeerID]*transfer.Conn
	dial       map[store.PeerID]*dialing
}

// dialing lets concurrent users of a peer wait for one dial.
type dialing struct {
	done chan struct{}
	c    *transfer.Conn
	err  error
}

func (n *Node) network(ctx context.Context) (*network, error) {
	n.netOnce.Do(func() {
		ident, err := transfer.LoadIdentity(filepath.Join(n.dir, keyFile))
		if err != nil {
			n.netErr = err
			return
		}
		cert, err := ident.Certificate(filepath.Join(n.dir, certFile))
		if err != nil {
			n.netErr = err
			return
		}
		name, _ := n.cat.Config(ctx, "name")
		nw := &network{n: n, conn: make(map[store.PeerID]*transfer.Conn), dial: make(map[store.PeerID]*dialing)}
		nw.cfg = transfer.Config{
			Identity: ident,
			Cert:     cert,
			Allow:    n.pinned,
			AllowJoin: func() bool {
				ok, err := n.cat.InvitesPending(context.Background(), n.now())
				return err == nil && ok
			},
			Handler: &handler{n: n},
			Logger:  n.log,
			Name:    name,
		}
		n.net = nw
	})
	return n.net, n.netErr
}

// pinned reports whether id is a paired peer. It reads the catalog, so a
// peer added or removed by another process counts at once.
func (n *Node) pinned(id store.PeerID) bool {
	_, err := n.cat.FindPeer(context.Background(), id.String())
	return err == nil
}

// closeNetwork drops every connection.
func (nw *network) close() {
	nw.mu.Lock()
	conns := nw.conn
	nw.conn = map[store.PeerID]*transfer.Conn{}
	nw.mu.Unlock()
	for _, c := range conns {
		c.Close("closing")
	}
	if nw.ln != nil {
		nw.ln.Close()
	}
}

// connect returns a live connection to peer, dialing its addresses in turn
// when there is none. Concurrent callers share one dial.
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
	if d, ok := nw.dial[peer]; ok {
		nw.mu.Unlock()
		select {
		case <-d.done:
			return d.c, d.err
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	d := &dialing{done: make(chan struct{})}
	nw.dial[peer] = d
	nw.mu.Unlock()

	d.c, d.err = nw.dialPeer(ctx, peer)
	nw.mu.Lock()
	delete(nw.dial, peer)
	if d.err == nil {
		nw.conn[peer] = d.c
	}
	nw.mu.Unlock()
	close(d.done)
	return d.c, d.err
}

func (nw *network) dialPeer(ctx context.Context, peer store.PeerID) (*transfer.Conn, error) {
	p, err := nw.n.cat.FindPeer(ctx, peer.String())
	if err != nil {
		return nil, err
	}
	if len(p.Addrs) == 0 {
		return nil, fmt.Errorf("peer %s has no address: %w (loft peer add %s ADDR)", peer.Short(), ErrUnreachable, peer)
	}
	var errs []error
	for _, addr := range p.Addrs {
		dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		var c *transfer.Conn
		if nw.ln != nil {
			c, err = nw.ln.Dial(dctx, addr, peer)
		} else {
			c, err = transfer.Dial(dctx, addr, peer, nw.cfg)
		}
		cancel()
		if err == nil {
			if nw.ln == nil {
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
	// When both sides dial at once, requests go on the newer connection and
	// the older one idles out.
	nw.mu.Lock()
	nw.conn[c.Peer()] = c
	nw.mu.Unlock()
}

// peerConn is the entry point for code that talks to a peer by catalog ID.
func (n *Node) peerConn(ctx context.Context, id string) (*transfer.Conn, error) {
	pid, err := store.ParsePeerID(id)
	if err != nil {
		return nil, err
	}
	nw, err := n.network(ctx)
	if err != nil {
		return nil, err
	}
	return nw.connect(ctx, pid)
}

// ID strings of storage nodes, this one included.
func (n *Node) storageNodes(peers []catalog.Peer) []string {
	out := []string{n.id.String()}
	for _, p := range peers {
		out = append(out, p.ID)
	}
	return out
}
