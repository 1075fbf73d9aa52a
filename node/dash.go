package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/loftstore/loft/catalog"
	"github.com/loftstore/loft/cluster"
	"github.com/loftstore/loft/fault"
	"github.com/loftstore/loft/names"
	"github.com/loftstore/loft/transfer"
)

// Changes returns up to limit changes after seq after, oldest first: the
// activity feed.
func (n *Node) Changes(ctx context.Context, after int64, limit int) ([]catalog.Change, error) {
	return n.cat.Changes(ctx, after, limit)
}

// LastChanges returns the newest limit changes, oldest first.
func (n *Node) LastChanges(ctx context.Context, limit int) ([]catalog.Change, error) {
	return n.cat.LastChanges(ctx, limit)
}

// Copies returns the lowest number of copies among the chunks of name's
// newest version, counting this node and peers whose copies count (online,
// or offline for less than peer-grace). A deleted object has none.
func (n *Node) Copies(ctx context.Context, name names.Name) (int, error) {
	v, err := n.cat.Head(ctx, name)
	if err != nil {
		return 0, err
	}
	if v.Deleted || v.Chunks == 0 {
		return 0, nil
	}
	counts, err := n.cl.CountingPeers(ctx)
	if err != nil {
		return 0, err
	}
	low := -1
	err = n.cat.VersionCopies(ctx, v, func(cc catalog.ChunkCopies) error {
		c := cluster.Copies(cc, counts)
		if low < 0 || c < low {
			low = c
		}
		return nil
	})
	return max(low, 0), err
}

// Event is one item of a serving node's event stream.
type Event struct {
	Kind   string          `json:"kind"` // status, change, log
	At     time.Time       `json:"at"`
	Status *Status         `json:"status,omitempty"`
	Change *catalog.Change `json:"change,omitempty"`
	Level  string          `json:"level,omitempty"`
	Msg    string          `json:"msg,omitempty"`
}

// hub fans a serving node's events out to its subscribers. A subscriber
// that does not keep up loses events rather than slowing the node.
type hub struct {
	mu   sync.Mutex
	subs map[chan Event]struct{}
}

func (h *hub) subscribe() chan Event {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.subs == nil {
		h.subs = map[chan Event]struct{}{}
	}
	ch := make(chan Event, 256)
	h.subs[ch] = struct{}{}
	return ch
}

func (h *hub) unsubscribe(ch chan Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.subs, ch)
}

func (h *hub) publish(e Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for ch := range h.subs {
		select {
		case ch <- e:
		default:
		}
	}
}

func (h *hub) listening() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.subs) > 0
}

// hubHandler passes log records to the node's handler and publishes
// warnings and errors as events.
type hubHandler struct {
	slog.Handler
	h *hub
}

func (hh hubHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Level >= slog.LevelWarn && hh.h.listening() {
		msg := r.Message
		r.Attrs(func(a slog.Attr) bool {
			msg += " " + a.String()
			return true
		})
		hh.h.publish(Event{Kind: "log", At: r.Time, Level: r.Level.String(), Msg: msg})
	}
	return hh.Handler.Handle(ctx, r)
}

func (hh hubHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return hubHandler{hh.Handler.WithAttrs(as), hh.h}
}

func (hh hubHandler) WithGroup(name string) slog.Handler {
	return hubHandler{hh.Handler.WithGroup(name), hh.h}
}

// publishLoop feeds the event stream while the node serves: a status
// snapshot every interval (while someone listens) and the change log as it
// grows (whichever process wrote it). It only reads the catalog.
func (n *Node) publishLoop(ctx context.Context, every time.Duration) {
	last, _ := n.cat.LastSeq(ctx)
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		if n.hub.listening() {
			if st, err := n.Status(ctx); err == nil {
				n.hub.publish(Event{Kind: "status", At: n.now(), Status: &st})
			}
			for range 100 {
				chs, err := n.cat.Changes(ctx, last, 100)
				if err != nil || len(chs) == 0 {
					break
				}
				for i := range chs {
					n.hub.publish(Event{Kind: "change", At: chs[i].At, Change: &chs[i]})
				}
				last = chs[len(chs)-1].Seq
			}
		} else {
			last, _ = n.cat.LastSeq(ctx)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// serveEvents streams events to a subscriber (the dashboard) until it goes.
func (n *Node) serveEvents(ctx context.Context, s *transfer.Stream) error {
	ch := n.hub.subscribe()
	defer n.hub.unsubscribe(ch)
	for {
		select {
		case <-ctx.Done():
			return nil
		case e := <-ch:
			b, err := json.Marshal(e)
			if err != nil {
				return err
			}
			s.SetDeadline(time.Now().Add(30 * time.Second))
			if err := s.WriteFrame(frameEvent, b); err != nil {
				return err
			}
		}
	}
}

const frameEvent byte = 20

// ErrNotServing means no serve process runs on this repository.
var ErrNotServing = fault.New(fault.Peer, "no node is serving this repository")

// Events connects to the serve process running on this repository, if
// one does, and returns its event stream; the channel closes when the
// stream ends. The connection uses this repository's own key.
func (n *Node) Events(ctx context.Context) (<-chan Event, error) {
	addrs := n.cl.ServingAddrs(ctx)
	if len(addrs) == 0 {
		return nil, ErrNotServing
	}
	c, err := n.cl.DialSelf(ctx, addrs)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNotServing, err)
	}
	s, err := c.OpenStream(ctx, transfer.OpEvents, transfer.Empty{})
	if err != nil {
		c.Close("")
		return nil, err
	}
	out := make(chan Event, 64)
	go func() {
		defer close(out)
		defer c.Close("done")
		var buf []byte
		for {
			s.SetDeadline(time.Now().Add(60 * time.Second))
			typ, b, err := s.ReadFrame(transfer.MaxControlFrame, buf[:0])
			if err != nil {
				if !errors.Is(err, io.EOF) && ctx.Err() == nil {
					n.log.Info("event stream ended", "err", err)
				}
				return
			}
			buf = b
			var e Event
			if typ != frameEvent || json.Unmarshal(b, &e) != nil {
				continue
			}
			select {
			case out <- e:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out, nil
}

// ServingAddrs returns the addresses of the node serving this repository,
// if one does.
func (n *Node) ServingAddrs(ctx context.Context) []string { return n.cl.ServingAddrs(ctx) }
