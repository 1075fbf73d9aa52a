package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/loftstore/loft/catalog"
	"github.com/loftstore/loft/fault"
	"github.com/loftstore/loft/transfer"
	"golang.org/x/sys/unix"
)

// liveness is what a serving node knows of its peers between heartbeats.
// Heartbeats come every interval, and writing each to the catalog would
// keep an idle node writing (home servers run on SD cards and small SSDs):
// they stay here, and a peer's record in the catalog is written only when
// its state changes, its figures move, or serving stops. While a node
// serves, other processes on the repository take a peer's state from that
// record (see states).
type liveness struct {
	// writing serializes persist: each reads, writes and records what the
	// catalog holds in turn, so an older figure never overwrites a newer.
	writing sync.Mutex
	mu      sync.Mutex
	on      bool          // this process serves
	every   time.Duration // its heartbeat interval
	peers   map[string]*live
}

type live struct {
	seen  time.Time
	info  peerInfo
	saved struct { // what the catalog holds
		ok    bool
		state string
		info  peerInfo
		seen  time.Time
	}
}

// peerInfo is what the catalog keeps of a peer's last heartbeat.
type peerInfo struct {
	transfer.Heartbeat
	RTT time.Duration `json:"rtt_ns"`
}

// moved reports whether a peer's figures changed enough to be worth a
// write: its chunks, name, software or addresses, or its free space by more
// than 1%.
func (a peerInfo) moved(b peerInfo) bool {
	d := a.Free - b.Free
	return a.Chunks != b.Chunks || a.Stored != b.Stored || a.Name != b.Name || a.Software != b.Software ||
		!slices.Equal(a.Listen, b.Listen) || d*100 > b.Free || -d*100 > b.Free
}

// heard records a heartbeat from peer; rtt is the round trip measured (0
// for a heartbeat the peer sent, which keeps the last one). Only a serving
// process keeps them: a command line process that a peer reaches over its
// connection has no use for them.
func (cl *Cluster) heard(ctx context.Context, peer string, hb transfer.Heartbeat, rtt time.Duration) {
	cl.live.mu.Lock()
	if !cl.live.on {
		cl.live.mu.Unlock()
		return
	}
	l := cl.live.entry(peer)
	l.seen = cl.now()
	if rtt == 0 {
		rtt = l.info.RTT
	}
	l.info = peerInfo{Heartbeat: hb, RTT: rtt}
	cl.live.mu.Unlock()
	cl.persist(ctx, peer, false)
}

// serving marks this process as serving (or no longer), with heartbeats
// every interval.
func (lv *liveness) serving(on bool, every time.Duration) {
	lv.mu.Lock()
	lv.on, lv.every = on, every
	lv.mu.Unlock()
}

func (lv *liveness) entry(peer string) *live {
	if lv.peers == nil {
		lv.peers = map[string]*live{}
	}
	l, ok := lv.peers[peer]
	if !ok {
		l = &live{}
		lv.peers[peer] = l
	}
	return l
}

// persist writes peer's record to the catalog when its state changed or its
// figures moved since the last write, or, with force, when anything did.
func (cl *Cluster) persist(ctx context.Context, peer string, force bool) {
	cl.live.writing.Lock()
	defer cl.live.writing.Unlock()
	cl.live.mu.Lock()
	l, ok := cl.live.peers[peer]
	if !ok || l.seen.IsZero() {
		cl.live.mu.Unlock()
		return
	}
	state := stateOf(l.seen, cl.now(), cl.live.every)
	if l.saved.ok && l.saved.state == state && !l.info.moved(l.saved.info) && !(force && !l.saved.seen.Equal(l.seen)) {
		cl.live.mu.Unlock()
		return
	}
	seen, info := l.seen, l.info
	cl.live.mu.Unlock()
	b, _ := json.Marshal(info)
	if err := cl.cat.SeenPeer(context.WithoutCancel(ctx), peer, seen, string(b), state); err != nil {
		cl.log.Warn("peer state not recorded", "peer", peer[:8], "err", err)
		return
	}
	cl.live.mu.Lock()
	l.saved.ok, l.saved.state, l.saved.info, l.saved.seen = true, state, info, seen
	cl.live.mu.Unlock()
}

// persistAll writes every peer's record that changed, as serving stops.
func (cl *Cluster) persistAll(ctx context.Context) {
	cl.live.mu.Lock()
	peers := make([]string, 0, len(cl.live.peers))
	for p := range cl.live.peers {
		peers = append(peers, p)
	}
	cl.live.mu.Unlock()
	for _, p := range peers {
		cl.persist(ctx, p, true)
	}
	cl.live.serving(false, 0)
}

// states returns the pinned peers, each with the time it was last heard of
// and its state now, as this process best knows them: from the heartbeats
// it receives while it serves; from the catalog's record while another
// process serves this repository; from when each was last heard of
// otherwise (nobody exchanges heartbeats then).
func (cl *Cluster) states(ctx context.Context) ([]catalog.Peer, map[string]string, error) {
	peers, err := cl.cat.Peers(ctx)
	if err != nil {
		return nil, nil, err
	}
	every, err := cl.cat.Duration(ctx, "heartbeat-interval")
	if err != nil {
		return nil, nil, err
	}
	now := cl.now()
	out := make(map[string]string, len(peers))
	cl.live.mu.Lock()
	on := cl.live.on
	for i := range peers {
		p := &peers[i]
		if l, ok := cl.live.peers[p.ID]; ok && on && !l.seen.IsZero() {
			b, _ := json.Marshal(l.info)
			p.LastSeen, p.Info = l.seen, string(b)
		}
	}
	cl.live.mu.Unlock()
	other := !on && cl.ServingElsewhere()
	for _, p := range peers {
		switch {
		case other && p.State != "":
			out[p.ID] = p.State
		default:
			out[p.ID] = stateOf(p.LastSeen, now, every)
		}
	}
	return peers, out, nil
}

// Peer states.
const (
	StateOnline  = "online"
	StateSuspect = "suspect"
	StateOffline = "offline"
)

// stateOf derives a peer's state from when it was last heard of: online
// within three heartbeats, suspect within ten, offline after.
func stateOf(lastSeen, now time.Time, every time.Duration) string {
	switch age := now.Sub(lastSeen); {
	case lastSeen.IsZero():
		return StateOffline
	case age <= 3*every:
		return StateOnline
	case age <= 10*every:
		return StateSuspect
	}
	return StateOffline
}

// serveLock is the file a serving process holds a lock on: the kernel
// drops it when the process ends, however it ends, so other processes tell
// whether a node serves this repository without a record that would have
// to be kept fresh by writing it.
func (cl *Cluster) serveLock() string { return filepath.Join(cl.dir, "locks", "serve") }

// ErrServing means another process serves this repository already.
var ErrServing = fault.New(fault.Busy, "another loft serve runs on this repository")

// lockServe takes the serve lock, or fails with ErrServing.
func (cl *Cluster) lockServe() (*os.File, error) {
	if err := os.MkdirAll(filepath.Dir(cl.serveLock()), 0o755); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(cl.serveLock(), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	held, err := lockFile(f)
	if err == nil && !held {
		err = ErrServing
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("serve: %w", err)
	}
	return f, nil
}

// ServingElsewhere reports whether another process serves this repository.
func (cl *Cluster) ServingElsewhere() bool {
	cl.live.mu.Lock()
	on := cl.live.on
	cl.live.mu.Unlock()
	if on {
		return false
	}
	f, err := os.Open(cl.serveLock())
	if err != nil {
		return false
	}
	defer f.Close()
	return lockedByOther(f)
}

// servingRecord says where this repository's serving process listens.
type servingRecord struct {
	Addrs []string `json:"addrs"`
}

// setServing records the addresses the serving process listens on; nil
// clears the record.
func (cl *Cluster) setServing(ctx context.Context, addrs []string) {
	v := ""
	if addrs != nil {
		b, _ := json.Marshal(servingRecord{Addrs: addrs})
		v = string(b)
	}
	wctx := context.WithoutCancel(ctx) // cleared even as serve stops
	if err := cl.cat.Tx(wctx, func(tx *catalog.Tx) error { return tx.SetMeta(wctx, "serving", v) }); err != nil {
		cl.log.Warn("serving record not written", "err", err)
	}
}

// ServingAddrs returns the addresses of the process serving this
// repository, if one does.
func (cl *Cluster) ServingAddrs(ctx context.Context) []string {
	if !cl.ServingElsewhere() {
		cl.live.mu.Lock()
		on := cl.live.on
		cl.live.mu.Unlock()
		if !on {
			return nil
		}
	}
	v, err := cl.cat.Meta(ctx, "serving")
	var rec servingRecord
	if err != nil || v == "" || json.Unmarshal([]byte(v), &rec) != nil {
		return nil
	}
	return rec.Addrs
}

// full is set while a serving node's disk is full: it receives no chunks.
type full struct {
	mu    sync.Mutex
	since time.Time
}

// pauseReceiving records that receiving met a full disk.
func (cl *Cluster) pauseReceiving() {
	cl.full.mu.Lock()
	defer cl.full.mu.Unlock()
	if cl.full.since.IsZero() {
		cl.full.since = cl.now()
		cl.log.Warn("the disk is full: receiving chunks is paused until it has room")
	}
}

// receiving says whether this node receives chunks: an error of kind
// fault.NoSpace while its disk is full, which ends once the file system
// has room for a few chunks again, and the reserve is back.
func (cl *Cluster) receiving() error {
	cl.full.mu.Lock()
	defer cl.full.mu.Unlock()
	if cl.full.since.IsZero() {
		return nil
	}
	var fs unix.Statfs_t
	if unix.Statfs(cl.dir, &fs) == nil && int64(fs.Bavail)*int64(fs.Bsize) >= 2*int64(cl.maxChunk) && (cl.room == nil || cl.room()) {
		cl.log.Info("the disk has room again: receiving chunks", "paused_for", cl.now().Sub(cl.full.since).Round(time.Second))
		cl.full.since = time.Time{}
		return nil
	}
	return transfer.Errorf(fault.NoSpace, "this node's disk has been full since %s: receiving is paused until it has room",
		cl.full.since.UTC().Format(time.RFC3339))
}

// ReceivingPaused returns since when receiving has been paused by a full
// disk; zero when it is not.
func (cl *Cluster) ReceivingPaused() time.Time {
	if cl.receiving() == nil {
		return time.Time{}
	}
	cl.full.mu.Lock()
	defer cl.full.mu.Unlock()
	return cl.full.since
}
