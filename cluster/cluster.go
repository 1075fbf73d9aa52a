// Package cluster is a node's life among its peers: pairing, the
// connections to pinned peers, heartbeats and peer state, the exchange of
// change logs, replication, repair, scrub, and the cluster half of the GC
// rule. It works on the node's catalog and chunk store; the node composes
// it into the API the command line and the dashboard use, and answers the
// requests a peer makes of that API (listings, remote puts) through the
// Local handler.
package cluster

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/loftstore/loft/catalog"
	"github.com/loftstore/loft/store"
	"github.com/loftstore/loft/transfer"
)

// Software is the version string peers exchange.
const Software = "loft/0.3"

// Config configures a Cluster.
type Config struct {
	// ID is the node's ID; Identity its key (nil: the node has no usable key
	// and never uses the network). CertPath is where its certificate is kept
	// (and renewed when missing or expired).
	ID       store.PeerID
	Identity *transfer.Identity
	CertPath string
	// Dir is the repository directory: heartbeats tell peers the free
	// space of its file system.
	Dir     string
	Catalog *catalog.Catalog
	Store   store.Store
	// Buffers lends chunk buffers; MaxChunk is the repository's largest
	// chunk.
	Buffers  *store.Buffers
	MaxChunk int
	Logger   *slog.Logger
	Now      func() time.Time
	// Local answers the requests this package does not: those a peer makes
	// of the node's own API. On a join connection it is never called.
	Local transfer.Handler
	// Room reports whether the repository keeps its reserve, making it again
	// when it can (see node's reserve): while it does not, the node receives
	// no chunks, so what a full disk gave back stays for rm and gc. Nil:
	// always.
	Room func() bool
}

// Cluster is one node's side of its cluster. Its network is created on
// first use: most commands never touch it.
type Cluster struct {
	dir      string
	ident    *transfer.Identity
	certPath string
	id       store.PeerID
	cat      *catalog.Catalog
	disk     store.Store
	bufs     *store.Buffers
	maxChunk int
	log      *slog.Logger
	now      func() time.Time
	local    transfer.Handler
	room     func() bool

	traffic   traffic
	transfers flights    // in flight, while serving
	live      liveness   // peers' heartbeats, while serving
	full      full       // receiving paused by a full disk
	auditing  sync.Mutex // one history audit at a time (see audit)
	// The serving process's newest traffic figures and loop results; the
	// catalog gets them when they change (see recordTraffic, RecordLoop).
	lastTransfer atomic.Pointer[Transfer]
	loops        struct {
		mu     sync.Mutex
		latest map[string]LoopRecord
		saved  map[string]string
	}
	held struct { // see heldTotals
		mu sync.Mutex
		at time.Time
		t  catalog.GarbageTotals
	}

	netOnce sync.Once
	net     *network
	netErr  error
}

// New returns the cluster side of the node cfg describes.
func New(cfg Config) *Cluster {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Cluster{dir: cfg.Dir, ident: cfg.Identity, certPath: cfg.CertPath, id: cfg.ID, cat: cfg.Catalog, disk: cfg.Store, bufs: cfg.Buffers, maxChunk: cfg.MaxChunk,
		log: cfg.Logger, now: cfg.Now, local: cfg.Local, room: cfg.Room}
}

// Close drops every connection and stops listening.
func (cl *Cluster) Close() {
	if cl.net != nil {
		cl.net.close()
	}
}

// ID returns this node's ID.
func (cl *Cluster) ID() store.PeerID { return cl.id }

// Every runs fn at each interval until ctx ends, the first time after one
// interval.
func Every(ctx context.Context, d time.Duration, fn func()) {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			fn()
		}
	}
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
