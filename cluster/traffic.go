package cluster

import (
	"context"
	"encoding/json"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/loftstore/loft/catalog"
)

// traffic counts the chunk bytes this process moved.
type traffic struct {
	pushed, received, fetched, served atomic.Int64
	// dupReceived counts chunks pushed here that this node held already:
	// have/want should keep it at zero.
	dupReceived atomic.Int64
}

// Transfer is what status shows of a serving node's chunk traffic: totals
// since serve started, and rates over the last heartbeat interval.
type Transfer struct {
	At            time.Time `json:"at"`
	PushedBytes   int64     `json:"pushed_bytes"`   // sent to peers by replication and repair
	ReceivedBytes int64     `json:"received_bytes"` // pushed here by peers and clients
	FetchedBytes  int64     `json:"fetched_bytes"`  // read from peers
	ServedBytes   int64     `json:"served_bytes"`   // read by peers from here
	DupReceived   int64     `json:"duplicate_chunks_received"`
	SendRate      float64   `json:"send_bytes_per_second"`
	RecvRate      float64   `json:"receive_bytes_per_second"`
}

func (cl *Cluster) transferNow(prev Transfer) Transfer {
	t := Transfer{At: cl.now(), PushedBytes: cl.traffic.pushed.Load(), ReceivedBytes: cl.traffic.received.Load(),
		FetchedBytes: cl.traffic.fetched.Load(), ServedBytes: cl.traffic.served.Load(), DupReceived: cl.traffic.dupReceived.Load()}
	if d := t.At.Sub(prev.At).Seconds(); !prev.At.IsZero() && d > 0 {
		t.SendRate = float64(t.PushedBytes+t.ServedBytes-prev.PushedBytes-prev.ServedBytes) / d
		t.RecvRate = float64(t.ReceivedBytes+t.FetchedBytes-prev.ReceivedBytes-prev.FetchedBytes) / d
	}
	return t
}

// sameFigures reports whether t and u show the same traffic (their times
// aside).
func (t Transfer) sameFigures(u Transfer) bool {
	t.At, u.At = time.Time{}, time.Time{}
	return t == u
}

// recordTraffic keeps the transfer figures in the catalog every interval,
// so that status in another process can show them.
func (cl *Cluster) recordTraffic(ctx context.Context, every time.Duration) {
	var prev, saved Transfer
	record := func() {
		t := cl.transferNow(prev)
		prev = t
		cl.lastTransfer.Store(&t)
		// Written only when something moved: an idle node writes nothing.
		if !saved.At.IsZero() && t.sameFigures(saved) {
			return
		}
		saved = t
		b, _ := json.Marshal(t)
		wctx := context.WithoutCancel(ctx) // the last record is written as serve stops
		cl.cat.Tx(wctx, func(tx *catalog.Tx) error { return tx.SetMeta(wctx, "transfer", string(b)) })
	}
	record()
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			record()
			return
		case <-tick.C:
			record()
		}
	}
}

// InFlight is a transfer under way in a serving node: a batch of chunks
// being pushed to a peer.
type InFlight struct {
	Peer   string    `json:"peer"`
	Kind   string    `json:"kind"` // replicate
	Chunks int       `json:"chunks"`
	Done   int64     `json:"done_bytes"`
	Total  int64     `json:"total_bytes"`
	Since  time.Time `json:"since"`
}

type flight struct {
	mu   *sync.Mutex
	info InFlight
}

func (f *flight) add(n int64) {
	f.mu.Lock()
	f.info.Done += n
	f.mu.Unlock()
}

// flights tracks the transfers in flight, for status.
type flights struct {
	mu  sync.Mutex
	set map[*flight]struct{}
}

func (fs *flights) start(peer, kind string, chunks int, total int64) *flight {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if fs.set == nil {
		fs.set = map[*flight]struct{}{}
	}
	f := &flight{mu: &fs.mu, info: InFlight{Peer: peer, Kind: kind, Chunks: chunks, Total: total, Since: time.Now()}}
	fs.set[f] = struct{}{}
	return f
}

func (fs *flights) end(f *flight) {
	fs.mu.Lock()
	delete(fs.set, f)
	fs.mu.Unlock()
}

func (fs *flights) snapshot() []InFlight {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	out := make([]InFlight, 0, len(fs.set))
	for f := range fs.set {
		out = append(out, f.info)
	}
	slices.SortFunc(out, func(a, b InFlight) int { return a.Since.Compare(b.Since) })
	return out
}
