package node

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/loftstore/loft/catalog"
	"github.com/loftstore/loft/store"
	"github.com/loftstore/loft/transfer"
)

// Software is the version string peers exchange.
const Software = "loft/0.3"

// ---- pairing ----

// Invite creates a single-use pairing token valid for ttl. addrs are the
// addresses the joiner should dial (those serve listens on).
func (n *Node) Invite(ctx context.Context, addrs []string, ttl time.Duration) (transfer.Invite, error) {
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
	inv.Node, inv.Addrs, inv.Expires = n.id, addrs, n.now().Add(ttl).Truncate(time.Second)
	if err := n.cat.AddInvite(ctx, inv.Secret[:], inv.Expires); err != nil {
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
func (n *Node) Join(ctx context.Context, token string, listen []string) (JoinResult, error) {
	inv, err := transfer.ParseInvite(token)
	if err != nil {
		return JoinResult{}, err
	}
	if n.now().After(inv.Expires) {
		return JoinResult{}, fmt.Errorf("join: the invite expired at %s", inv.Expires.Format(time.RFC3339))
	}
	if inv.Node == n.id {
		return JoinResult{}, fmt.Errorf("join: the invite is this node's own")
	}
	nw, err := n.network(ctx)
	if err != nil {
		return JoinResult{}, err
	}
	name, _ := n.cat.Config(ctx, "name")
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
		err = c.Call(dctx, transfer.OpJoin, transfer.JoinReq{Proof: transfer.JoinProof(inv.Secret, n.id, inv.Node), Name: name, Listen: listen}, &resp)
		c.Close("joined")
		cancel()
		if err != nil {
			return JoinResult{}, fmt.Errorf("join: %w", peerError(err))
		}
		addrs := append([]string{addr}, resp.Listen...)
		addrs = slices.Compact(addrs)
		if err := n.cat.AddPeer(ctx, catalog.Peer{ID: inv.Node.String(), Name: resp.Name, Addrs: addrs}); err != nil {
			return JoinResult{}, err
		}
		return JoinResult{Peer: inv.Node.String(), Name: resp.Name, Addrs: addrs}, nil
	}
	return JoinResult{}, fmt.Errorf("join: %w: %w", ErrUnreachable, errors.Join(errs...))
}

func (n *Node) acceptJoin(ctx context.Context, c *transfer.Conn, req transfer.JoinReq) (transfer.JoinResp, error) {
	joiner := c.Peer()
	addrs := req.Listen
	if len(addrs) > transfer.MaxAddrs {
		addrs = addrs[:transfer.MaxAddrs]
	}
	err := n.cat.UseInvite(ctx, n.now(), req.Proof, func(secret []byte) []byte {
		var s [16]byte
		copy(s[:], secret)
		return transfer.JoinProof(s, joiner, n.id)
	}, catalog.Peer{ID: joiner.String(), Name: req.Name, Addrs: addrs})
	if errors.Is(err, catalog.ErrInvite) {
		n.log.Warn("join refused: no invite matches", "peer", joiner.Short(), "addr", c.RemoteAddr())
		return transfer.JoinResp{}, transfer.Errorf(transfer.CodeDenied, "no valid invite matches (expired, used, or wrong token)")
	}
	if err != nil {
		return transfer.JoinResp{}, err
	}
	n.log.Info("paired", "peer", joiner.Short(), "name", req.Name)
	name, _ := n.cat.Config(ctx, "name")
	var listen []string
	if n.net != nil {
		listen = n.net.listenAddrs()
	}
	return transfer.JoinResp{Name: name, Listen: listen}, nil
}

// ---- heartbeats and peer state ----

// heartbeat is what this node tells peers about itself.
func (n *Node) heartbeat(ctx context.Context) (transfer.Heartbeat, error) {
	name, _ := n.cat.Config(ctx, "name")
	hb := transfer.Heartbeat{Time: n.now(), Name: name, Software: Software}
	var fs unix.Statfs_t
	if unix.Statfs(n.dir, &fs) == nil {
		hb.Free = int64(fs.Bavail) * int64(fs.Bsize)
	}
	st, err := n.heldTotals(ctx)
	if err != nil {
		return hb, err
	}
	hb.Chunks, hb.Stored = st.Chunks, st.Bytes
	if n.net != nil {
		hb.Listen = n.net.listenAddrs()
	}
	return hb, nil
}

// heldTotals counts the chunks this node holds. Counting scans the chunk
// table, so heartbeats share one count for up to heldTotalsAge.
func (n *Node) heldTotals(ctx context.Context) (catalog.GarbageTotals, error) {
	n.held.mu.Lock()
	defer n.held.mu.Unlock()
	if !n.held.at.IsZero() && time.Since(n.held.at) < heldTotalsAge {
		return n.held.t, nil
	}
	t, err := n.cat.HeldTotals(ctx)
	if err == nil {
		n.held.t, n.held.at = t, time.Now()
	}
	return t, err
}

const heldTotalsAge = 10 * time.Second

// peerInfo is what the catalog keeps of a peer's last heartbeat.
type peerInfo struct {
	transfer.Heartbeat
	RTT time.Duration `json:"rtt_ns"`
}

func (n *Node) recordHeartbeat(ctx context.Context, peer string, hb transfer.Heartbeat, rtt time.Duration) {
	if rtt == 0 {
		// A heartbeat the peer sent: keep the round trip time we measured.
		if p, err := n.cat.FindPeer(ctx, peer); err == nil {
			var old peerInfo
			if json.Unmarshal([]byte(p.Info), &old) == nil {
				rtt = old.RTT
			}
		}
	}
	b, _ := json.Marshal(peerInfo{Heartbeat: hb, RTT: rtt})
	if err := n.cat.SeenPeer(ctx, peer, n.now(), string(b)); err != nil {
		n.log.Warn("peer state not recorded", "peer", peer[:8], "err", err)
	}
}

// Peer states.
const (
	StateOnline  = "online"
	StateSuspect = "suspect"
	StateOffline = "offline"
)

// stateOf derives a peer's state from when it was last heard of: online
// within three heartbeats, suspect within ten, offline after.
func stateOf(lastSeen, now time.Time, hb time.Duration) string {
	switch age := now.Sub(lastSeen); {
	case lastSeen.IsZero():
		return StateOffline
	case age <= 3*hb:
		return StateOnline
	case age <= 10*hb:
		return StateSuspect
	}
	return StateOffline
}

// ---- change log exchange ----

// pullChanges applies a peer's changes after this node's cursor for it,
// page by page, and returns how many it applied.
func (n *Node) pullChanges(ctx context.Context, c *transfer.Conn) (int, error) {
	peer := c.Peer().String()
	applied := 0
	for range 10_000 { // bounded: a page per round trip, up to 5M changes a call
		p, err := n.cat.FindPeer(ctx, peer)
		if err != nil {
			return applied, err
		}
		var resp transfer.ChangesResp
		if err := c.Call(ctx, transfer.OpChanges, transfer.ChangesReq{After: p.PullSeq, Limit: transfer.MaxChanges}, &resp); err != nil {
			return applied, peerError(err)
		}
		if resp.Last <= p.PullSeq {
			return applied, nil
		}
		// Chunk lists are read outside the write lock, and applied in groups
		// of at most applyRefs references, which bounds the memory a page
		// of large versions takes. Each change applies in a savepoint: one
		// that fails is undone whole (its identity too, so it can still
		// arrive by another path), logged, and skipped.
		type item struct {
			v    transfer.Version
			refs []catalog.ChunkRef
		}
		var group []item
		var groupRefs int
		apply := func(last int64) error {
			err := n.cat.Tx(ctx, func(tx *catalog.Tx) error {
				for _, it := range group {
					var ap catalog.Applied
					err := tx.Savepoint(ctx, func() error {
						var err error
						ap, err = tx.ApplyRemote(ctx, remoteOf(it.v), it.refs)
						return err
					})
					if err != nil {
						n.log.Warn("change from peer not applied", "peer", peer[:8], "origin", it.v.Origin[:min(8, len(it.v.Origin))],
							"origin_seq", it.v.OriginSeq, "name", it.v.Name, "err", err)
						continue
					}
					if !ap.Duplicate {
						applied++
					}
					if ap.Conflict != "" {
						n.log.Warn("concurrent writes: a conflict copy shows one of them", "name", it.v.Name, "copy", ap.Conflict)
					}
				}
				if last > 0 {
					return tx.SetPullSeq(ctx, peer, last)
				}
				return nil
			})
			group, groupRefs = group[:0], 0
			return err
		}
		for _, ch := range resp.Changes {
			v := ch.Version
			var refs []catalog.ChunkRef
			if !v.Gone && !v.Deleted && v.Chunks > 0 {
				refs, err = n.fetchChunkList(ctx, c, transfer.ChunksReq{Origin: v.Origin, OriginSeq: v.OriginSeq}, v.Chunks)
				if errors.Is(err, catalog.ErrNotFound) {
					v.Gone, refs = true, nil // pruned since the page was read
				} else if err != nil {
					return applied, err
				}
			}
			group = append(group, item{v, refs})
			groupRefs += len(refs)
			if groupRefs >= applyRefs {
				if err := apply(0); err != nil {
					return applied, err
				}
			}
		}
		if err := apply(resp.Last); err != nil {
			return applied, err
		}
		if !resp.More {
			return applied, nil
		}
	}
	return applied, nil
}

// applyRefs bounds the chunk references of changes applied together.
const applyRefs = 1 << 16

// fetchChunkList reads a version's whole chunk list from a peer, a page at
// a time.
func (n *Node) fetchChunkList(ctx context.Context, c *transfer.Conn, req transfer.ChunksReq, count int64) ([]catalog.ChunkRef, error) {
	if count > maxPendingChunks {
		return nil, fmt.Errorf("version of %d chunks is over the limit of %d", count, maxPendingChunks)
	}
	out := make([]catalog.ChunkRef, 0, count)
	op := transfer.OpVersionChunks
	if req.Origin == "" {
		op = transfer.OpChunkList
	}
	for int64(len(out)) < count {
		req.From, req.Limit = int64(len(out)), transfer.MaxIDs
		var resp transfer.ChunksResp
		if err := c.Call(ctx, op, req, &resp); err != nil {
			return nil, peerError(err)
		}
		if len(resp.Chunks) == 0 {
			return nil, fmt.Errorf("peer %s sent %d of %d chunk references", c.Peer().Short(), len(out), count)
		}
		out = append(out, refsOf(resp.Chunks)...)
	}
	return out[:count], nil
}

// ---- replication ----

// rank orders nodes for a chunk by rendezvous hashing: each node's score is
// a hash of its ID and the chunk's, so adding or removing a node moves only
// the chunks for which it ranks first.
func rank(id store.ID, nodes []string) []string {
	type scored struct {
		node  string
		score uint64
	}
	s := make([]scored, len(nodes))
	for i, nd := range nodes {
		h := sha256.New()
		h.Write([]byte(nd))
		h.Write(id[:])
		s[i] = scored{nd, binary.BigEndian.Uint64(h.Sum(nil))}
	}
	slices.SortFunc(s, func(a, b scored) int {
		if a.score != b.score {
			if a.score > b.score {
				return -1
			}
			return 1
		}
		if a.node < b.node {
			return -1
		}
		return 1
	})
	out := make([]string, len(s))
	for i := range s {
		out[i] = s[i].node
	}
	return out
}

// Replicas returns the configured replica count, capped by the number of
// storage nodes: this one and its storage peers.
func (n *Node) Replicas(ctx context.Context, peers int) (int, error) {
	v, err := n.cat.Config(ctx, "replicas")
	if err != nil {
		return 0, err
	}
	r, err := strconv.Atoi(v)
	if err != nil {
		return 0, err
	}
	return min(r, peers+1), nil
}

// ReplicationReport says what a replication pass saw and did.
type ReplicationReport struct {
	Chunks      int64 `json:"chunks"`       // referenced chunks this node holds
	Below       int64 `json:"below"`        // of those, with fewer than R counted copies
	BelowBytes  int64 `json:"below_bytes"`  //
	Pushed      int64 `json:"pushed"`       // copies made by this pass
	PushedBytes int64 `json:"pushed_bytes"` //
	Confirmed   int64 `json:"confirmed"`    // copies a peer already had
}

// replicate makes sure every chunk this node holds has R copies among the
// nodes that count: this one, and peers that are online or have been
// offline for less than the peer grace. Missing copies go to the
// highest-ranked counting peers that lack them; a peer's copy counts once it
// confirms it durable.
func (n *Node) replicate(ctx context.Context, hbEvery time.Duration) (ReplicationReport, error) {
	var rep ReplicationReport
	all, err := n.cat.Peers(ctx)
	peers := storagePeers(all)
	if err != nil || len(peers) == 0 {
		return rep, err
	}
	r, err := n.Replicas(ctx, len(peers))
	if err != nil {
		return rep, err
	}
	counts, err := n.countingPeers(ctx)
	if err != nil {
		return rep, err
	}
	online := map[string]bool{}
	for _, p := range peers {
		if stateOf(p.LastSeen, n.now(), hbEvery) == StateOnline {
			online[p.ID] = true
		}
	}
	nodes := []string{n.id.String()}
	for _, p := range peers {
		nodes = append(nodes, p.ID)
	}
	// One worker per online peer offers that peer its batches, so peers are
	// served at once; the walk hands batches over with a short queue, which
	// bounds the chunk lists held.
	var mu sync.Mutex
	var errs []error
	queues := map[string]chan []catalog.ChunkCopies{}
	var wg sync.WaitGroup
	for peer := range online {
		q := make(chan []catalog.ChunkCopies, 1)
		queues[peer] = q
		wg.Add(1)
		go func() {
			defer wg.Done()
			failed := false
			for batch := range q {
				if failed {
					continue // the peer failed: drain, skip it for this pass
				}
				pushed, bytes, had, err := n.offer(ctx, peer, batch)
				mu.Lock()
				rep.Pushed += pushed
				rep.PushedBytes += bytes
				rep.Confirmed += had
				if err != nil {
					errs = append(errs, fmt.Errorf("peer %s: %w", peer[:8], err))
					failed = true
				}
				mu.Unlock()
			}
		}()
	}
	want := map[string][]catalog.ChunkCopies{}
	send := func(peer string) {
		if len(want[peer]) > 0 {
			queues[peer] <- want[peer]
			want[peer] = nil
		}
	}
	err = n.cat.EachReferenced(ctx, func(cc catalog.ChunkCopies) error {
		if !cc.Held {
			return nil
		}
		mu.Lock()
		rep.Chunks++
		mu.Unlock()
		have := 1
		holders := map[string]bool{n.id.String(): true}
		for _, p := range cc.Peers {
			holders[p] = true
			if counts[p] {
				have++
			}
		}
		if have >= r {
			return nil
		}
		mu.Lock()
		rep.Below++
		rep.BelowBytes += cc.Stored
		mu.Unlock()
		need := r - have
		for _, nd := range rank(cc.ID, nodes) {
			if need == 0 {
				break
			}
			if holders[nd] || !online[nd] {
				continue
			}
			want[nd] = append(want[nd], cc)
			need--
			if len(want[nd]) == replicateBatch {
				send(nd)
			}
		}
		return ctx.Err()
	})
	for peer, q := range queues {
		if err == nil {
			send(peer)
		}
		close(q)
	}
	wg.Wait()
	if err != nil {
		return rep, err
	}
	return rep, errors.Join(errs...)
}

// replicateBatch is how many chunks one offer (a have/want round trip and a
// push stream) carries.
const replicateBatch = 64

// offer asks peer which of the chunks it holds, records those as replicas,
// and pushes the rest, recording each once the peer acknowledges it durable.
func (n *Node) offer(ctx context.Context, peer string, batch []catalog.ChunkCopies) (pushed, bytes, had int64, err error) {
	if len(batch) == 0 {
		return 0, 0, 0, nil
	}
	c, err := n.peerConn(ctx, peer)
	if err != nil {
		return 0, 0, 0, err
	}
	ids := make([]store.ID, len(batch))
	for i, cc := range batch {
		ids[i] = cc.ID
	}
	var bits transfer.Bits
	if err := c.Call(ctx, transfer.OpHave, transfer.IDList{IDs: ids}, &bits); err != nil {
		return 0, 0, 0, peerError(err)
	}
	if len(bits.Bits) != len(ids) {
		return 0, 0, 0, fmt.Errorf("peer %s answered %d of %d chunks", peer[:8], len(bits.Bits), len(ids))
	}
	var present, missing []store.ID
	for i, id := range ids {
		if bits.Bits[i] {
			present = append(present, id)
		} else {
			missing = append(missing, id)
		}
	}
	if err := n.cat.AddReplicas(ctx, peer, present); err != nil {
		return 0, 0, 0, err
	}
	var total int64
	sizes := make(map[store.ID]int64, len(batch))
	for _, cc := range batch {
		sizes[cc.ID] = cc.Plain
	}
	for _, id := range missing {
		total += sizes[id]
	}
	tr := n.transfers.start(peer, "replicate", len(missing), total)
	defer n.transfers.end(tr)
	acked, sent, err := n.push(ctx, c, missing, n.readLocal, func(id store.ID) { tr.add(sizes[id]) })
	if len(acked) > 0 {
		if aerr := n.cat.AddReplicas(ctx, peer, acked); aerr != nil && err == nil {
			err = aerr
		}
	}
	return int64(len(acked)), sent, int64(len(present)), err
}

// push sends chunks this node holds on one stream and returns those the
// peer acknowledged durable, and the bytes sent.
//
// read supplies each chunk's bytes; written, when set, is told once a
// chunk has been handed to the stream, when read's buffer may be reused.
func (n *Node) push(ctx context.Context, c *transfer.Conn, ids []store.ID, read func(context.Context, store.ID, []byte) ([]byte, error), written func(store.ID)) ([]store.ID, int64, error) {
	if len(ids) == 0 {
		return nil, 0, nil
	}
	s, err := c.OpenStream(ctx, transfer.OpPush, transfer.PushReq{})
	if err != nil {
		return nil, 0, err
	}
	acks := make(chan []store.ID, 1)
	ackErr := make(chan error, 1)
	go func() {
		var got []store.ID
		var buf []byte
		for {
			typ, b, err := s.ReadFrame(transfer.MaxControlFrame, buf[:0])
			if errors.Is(err, io.EOF) {
				acks <- got
				ackErr <- nil
				return
			}
			if err != nil {
				acks <- got
				ackErr <- err
				return
			}
			buf = b
			id, code, err := parseAck(b)
			if typ != transfer.FrameAck || err != nil {
				acks <- got
				ackErr <- fmt.Errorf("peer %s: bad acknowledgement", c.Peer().Short())
				return
			}
			if code == transfer.CodeOK {
				got = append(got, id)
			} else {
				n.log.Warn("peer refused a chunk", "peer", c.Peer().Short(), "chunk", id.Short(), "code", code)
			}
		}
	}()
	var sent int64
	var buf []byte
	frame := make([]byte, 0, store.IDSize+(1<<20))
	var werr error
	for _, id := range ids {
		data, err := read(ctx, id, buf)
		if err != nil {
			n.log.Warn("chunk not pushed", "chunk", id.Short(), "err", err)
			continue
		}
		buf = data[:0]
		frame = append(append(frame[:0], id[:]...), data...)
		s.SetDeadline(time.Now().Add(60 * time.Second))
		if werr = s.WriteFrame(transfer.FrameChunk, frame); werr != nil {
			break
		}
		if written != nil {
			written(id)
		}
		sent += int64(len(data))
		n.traffic.pushed.Add(int64(len(data)))
	}
	if werr == nil {
		werr = s.CloseWrite()
	} else {
		s.Cancel(transfer.CodeInternal)
	}
	s.SetDeadline(time.Now().Add(60 * time.Second))
	got := <-acks
	if err := <-ackErr; werr == nil {
		werr = err
	}
	return got, sent, werr
}

// ---- reads ----

// readLocal reads a chunk from this node's store.
func (n *Node) readLocal(ctx context.Context, id store.ID, buf []byte) ([]byte, error) {
	return n.disk.Get(ctx, id, buf)
}

// readChunk returns a chunk's plain bytes: from this node's store, or, when
// it does not hold a good copy, from a peer, verified on arrival. A corrupt
// local copy is replaced by the good one, atomically: it is never removed
// before a verified replacement is durable, so a transient read error
// cannot cost the last copy. Several reads run at once and each starts with
// a different peer, so a get of a file whose chunks lie on several peers
// reads from all of them.
func (n *Node) readChunk(ctx context.Context, id store.ID, buf []byte) ([]byte, error) {
	data, err := n.readLocal(ctx, id, buf)
	if err == nil || !(errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrIntegrity)) {
		return data, err
	}
	fetched, ferr := n.fetchAny(ctx, id, buf)
	if ferr != nil {
		if ferr == errNoPeers {
			return nil, err
		}
		return nil, fmt.Errorf("%w (and no peer could supply it: %w)", err, ferr)
	}
	if errors.Is(err, store.ErrIntegrity) {
		n.keepFetched(ctx, id, fetched)
	}
	return fetched, nil
}

var errNoPeers = errors.New("no peers")

// fetchAny reads a chunk from the first peer that has a good copy: those
// that confirmed one first, starting at a different one per chunk.
func (n *Node) fetchAny(ctx context.Context, id store.ID, buf []byte) ([]byte, error) {
	peers, err := n.cat.Peers(ctx)
	if err != nil {
		return nil, err
	}
	if len(peers) == 0 {
		return nil, errNoPeers
	}
	hb, err := n.cat.Duration(ctx, "heartbeat-interval")
	if err != nil {
		return nil, err
	}
	holders, _ := n.cat.Holders(ctx, id)
	// Online confirmed holders first, then other online peers, then the
	// rest; each tier starts at a place that depends on the chunk, which
	// spreads the reads of a file over the peers.
	var tiers [4][]string
	now := n.now()
	for _, p := range peers {
		if len(p.Addrs) == 0 && p.LastSeen.IsZero() {
			continue // a client that only dials in: it holds no replicas
		}
		t := 0
		if !slices.Contains(holders, p.ID) {
			t = 1
		}
		if stateOf(p.LastSeen, now, hb) != StateOnline {
			t += 2
		}
		tiers[t] = append(tiers[t], p.ID)
	}
	var order []string
	for _, t := range tiers {
		order = append(order, rotate(t, int(id[0])<<8|int(id[1]))...)
	}
	if len(order) == 0 {
		return nil, errNoPeers
	}
	var errs []error
	for _, peer := range order {
		data, err := n.fetchFrom(ctx, peer, id, buf, false)
		if err == nil {
			return data, nil
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	return nil, errors.Join(errs...)
}

func rotate(s []string, k int) []string {
	if len(s) == 0 {
		return nil
	}
	k %= len(s)
	return append(slices.Clone(s[k:]), s[:k]...)
}

// fetchFrom reads one chunk from a peer and verifies it.
func (n *Node) fetchFrom(ctx context.Context, peer string, id store.ID, buf []byte, relay bool) ([]byte, error) {
	fctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	c, err := n.peerConn(fctx, peer)
	if err != nil {
		return nil, err
	}
	s, err := c.OpenStream(fctx, transfer.OpFetch, transfer.FetchReq{IDs: []store.ID{id}, Relay: relay})
	if err != nil {
		return nil, err
	}
	defer s.Cancel(transfer.CodeOK)
	s.SetDeadline(time.Now().Add(60 * time.Second))
	typ, b, err := s.ReadFrame(transfer.MaxDataFrame, buf[:0])
	if err != nil {
		return nil, fmt.Errorf("fetch %s from %s: %w", id.Short(), peer[:8], err)
	}
	if typ != transfer.FrameChunk || len(b) < store.IDSize || store.ID(b[:store.IDSize]) != id {
		return nil, fmt.Errorf("fetch %s from %s: %w", id.Short(), peer[:8], store.ErrNotFound)
	}
	data := b[store.IDSize:]
	if err := store.Verify(id, data); err != nil {
		n.log.Warn("peer sent a corrupt chunk", "peer", peer[:8], "chunk", id.Short())
		return nil, err
	}
	n.traffic.fetched.Add(int64(len(data)))
	return data, nil
}

// keepFetched stores a good copy of a chunk this node should hold.
func (n *Node) keepFetched(ctx context.Context, id store.ID, data []byte) {
	b := n.disk.NewBatch()
	defer b.Abort()
	stored, err := b.Add(ctx, id, data)
	if err == nil {
		err = b.Commit(ctx)
	}
	if err == nil {
		_, err = n.cat.StoreReceived(ctx, []catalog.ChunkRef{{ID: id, Plain: int64(len(data)), Stored: stored}})
	}
	if err != nil {
		n.log.Warn("repaired chunk not stored", "chunk", id.Short(), "err", err)
		return
	}
	n.log.Info("chunk repaired from a replica", "chunk", id.String())
}

// ScrubReport says what a scrub found.
type ScrubReport struct {
	Chunks   int64 `json:"chunks"`
	Corrupt  int64 `json:"corrupt"`
	Repaired int64 `json:"repaired"`
}

// RepairReport says what a repair pass found. The copies it forgets are
// made again by the next replication pass; chunks whose holder has been
// offline past peer-grace are copied elsewhere by replication too.
type RepairReport struct {
	ReplicasDropped int64 `json:"replicas_dropped"` // copies peers no longer hold
}

// Scrub re-reads every chunk this node holds; a corrupt one is replaced
// from a replica.
func (n *Node) Scrub(ctx context.Context) (ScrubReport, error) {
	var rep ScrubReport
	var buf []byte
	err := n.cat.EachReferenced(ctx, func(cc catalog.ChunkCopies) error {
		if !cc.Held {
			return nil
		}
		rep.Chunks++
		data, err := n.readLocal(ctx, cc.ID, buf)
		if err == nil {
			buf = data[:0]
			return nil
		}
		n.log.Warn("scrub: bad chunk", "chunk", cc.ID.String(), "err", err)
		if !errors.Is(err, store.ErrIntegrity) && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		rep.Corrupt++
		if data, err := n.fetchAny(ctx, cc.ID, nil); err == nil {
			n.keepFetched(ctx, cc.ID, data)
			rep.Repaired++
		} else {
			n.log.Warn("chunk could not be repaired", "chunk", cc.ID.String(), "err", err)
		}
		return ctx.Err()
	})
	return rep, err
}

// VerifyReplicas asks each online storage peer whether it still holds the
// chunks it confirmed, and forgets the copies it denies (lost to a disk, or
// collected when no version referenced the chunk for a while), so that
// replication makes them again.
func (n *Node) VerifyReplicas(ctx context.Context, hb time.Duration) (dropped int64, err error) {
	peers, err := n.cat.Peers(ctx)
	if err != nil {
		return 0, err
	}
	for _, p := range storagePeers(peers) {
		if stateOf(p.LastSeen, n.now(), hb) != StateOnline {
			continue
		}
		c, err := n.peerConn(ctx, p.ID)
		if err != nil {
			continue
		}
		var after int64
		for {
			ids, next, err := n.cat.ReplicasOf(ctx, p.ID, after, transfer.MaxIDs)
			if err != nil {
				return dropped, err
			}
			if len(ids) == 0 {
				break
			}
			after = next
			var bits transfer.Bits
			if err := c.Call(ctx, transfer.OpHave, transfer.IDList{IDs: ids}, &bits); err != nil || len(bits.Bits) != len(ids) {
				break
			}
			var gone []store.ID
			for i, id := range ids {
				if !bits.Bits[i] {
					gone = append(gone, id)
				}
			}
			if len(gone) > 0 {
				n.log.Warn("a peer no longer holds chunks it confirmed", "peer", p.ID[:8], "chunks", len(gone))
				if err := n.cat.DropReplicas(ctx, p.ID, gone); err != nil {
					return dropped, err
				}
				dropped += int64(len(gone))
			}
		}
	}
	return dropped, nil
}

// spareInUse is the cluster half of the GC rule: of the chunks this node
// would sweep, it keeps those any peer still needs. A peer that cannot be
// asked keeps all of them.
func (n *Node) spareInUse(grace time.Duration) func(context.Context, []store.ID) (store.IDSet, error) {
	return func(ctx context.Context, ids []store.ID) (store.IDSet, error) {
		peers, err := n.cat.Peers(ctx)
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
			c, err := n.peerConn(ctx, p.ID)
			var bits transfer.Bits
			if err == nil {
				err = c.Call(ctx, transfer.OpInUse, transfer.InUseReq{IDs: ids, Grace: grace}, &bits)
			}
			if err == nil && len(bits.Bits) != len(ids) {
				err = fmt.Errorf("answered %d of %d", len(bits.Bits), len(ids))
			}
			if err != nil {
				n.log.Info("gc keeps garbage a peer could not vouch for", "peer", p.ID[:8], "err", err)
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
func (n *Node) AddPeer(ctx context.Context, p catalog.Peer) error {
	if p.ID == n.id.String() {
		return fmt.Errorf("peer add: %s is this node", p.ID)
	}
	return n.cat.AddPeer(ctx, p)
}

// RemovePeer unpins a peer named by ID, ID prefix or name.
func (n *Node) RemovePeer(ctx context.Context, ref string) error {
	p, err := n.cat.FindPeer(ctx, ref)
	if errors.Is(err, catalog.ErrNotFound) {
		return fmt.Errorf("peer rm %s: %w (loft peer ls lists them)", ref, ErrNoPeer)
	}
	if err != nil {
		return err
	}
	return n.cat.RemovePeer(ctx, p.ID)
}
