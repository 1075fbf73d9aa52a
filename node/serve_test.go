package node

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	mrand "math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/loftstore/loft/catalog"
	"github.com/loftstore/loft/cluster"
	"github.com/loftstore/loft/fault"
	"github.com/loftstore/loft/store"
	"github.com/loftstore/loft/transfer"
)

// serveTimeout bounds every wait of these tests: a dial, a call, the wait
// for a close or for a log line. It is a ceiling against hangs, not a
// timing assertion.
const serveTimeout = 20 * time.Second

// Wire constants of transfer's control stream that the package does not
// export; the raw clients below speak the protocol by hand (see
// transfer/conn.go and transfer/frame.go).
const (
	rawProtocolVersion = 2 // protocolVersion
	rawFrameRequest    = 1 // frameRequest: 8-byte ID, 2-byte op, JSON
	rawFrameResponse   = 2 // frameResponse: 8-byte ID, 2-byte code, body
	rawFrameStream     = 3 // frameStream: 2-byte op, JSON
)

// syncBuffer collects a node's log; slog writes to it from many goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Len()
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// since returns what was logged after offset from.
func (s *syncBuffer) since(from int) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return string(s.b.Bytes()[from:])
}

// logLine returns the first line logged after from that contains every one
// of want, or "".
func (s *syncBuffer) logLine(from int, want ...string) string {
	for line := range strings.Lines(s.since(from)) {
		ok := true
		for _, w := range want {
			ok = ok && strings.Contains(line, w)
		}
		if ok {
			return line
		}
	}
	return ""
}

// waitLine waits (bounded) for a line logged after from that contains every
// one of want, and returns it.
func (s *syncBuffer) waitLine(t *testing.T, what string, from int, want ...string) string {
	t.Helper()
	return s.waitLineFor(t, what, serveTimeout, from, want...)
}

func (s *syncBuffer) waitLineFor(t *testing.T, what string, limit time.Duration, from int, want ...string) string {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		if line := s.logLine(from, want...); line != "" {
			return line
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: no log line with %q after %v; logged since the case began:\n%s", what, want, limit, s.since(from))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// servingNode is a node serving on a loopback port, in-process.
type servingNode struct {
	n    *Node
	addr string
	log  *syncBuffer
}

func startServing(t *testing.T, name string) *servingNode {
	t.Helper()
	log := &syncBuffer{}
	logger := slog.New(slog.NewTextHandler(log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	dir := filepath.Join(t.TempDir(), name)
	n, err := Init(context.Background(), dir, InitOptions{}, Options{Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- n.Serve(ctx, ServeOptions{Listen: "127.0.0.1:0", Ready: func(addr string) { ready <- addr }})
	}()
	s := &servingNode{n: n, log: log}
	// Registered before any client connection: cleanups run last-in first
	// out, so the clients hang up before the server stops.
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("serve %s: %v", name, err)
			}
		case <-time.After(serveTimeout):
			t.Errorf("serve %s did not return within %v of its context ending", name, serveTimeout)
		}
		n.Close()
	})
	select {
	case s.addr = <-ready:
	case err := <-done:
		t.Fatalf("serve %s: %v", name, err)
	case <-time.After(serveTimeout):
		t.Fatalf("serve %s not ready", name)
	}
	return s
}

// clientPeer is an identity that dials the serving node.
type clientPeer struct {
	name string
	id   *transfer.Identity
	cert tls.Certificate
	cfg  transfer.Config
}

func newClientPeer(t *testing.T, name string) *clientPeer {
	t.Helper()
	id, err := transfer.NewIdentity()
	if err != nil {
		t.Fatal(err)
	}
	cert, err := id.Certificate(filepath.Join(t.TempDir(), name+".crt"))
	if err != nil {
		t.Fatal(err)
	}
	return &clientPeer{name: name, id: id, cert: cert, cfg: transfer.Config{Identity: id, Cert: cert, Name: name}}
}

func (p *clientPeer) pin(t *testing.T, s *servingNode) {
	t.Helper()
	if err := s.n.AddPeer(context.Background(), catalog.Peer{ID: p.id.ID().String()}); err != nil {
		t.Fatal(err)
	}
}

func timeoutCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), serveTimeout)
	t.Cleanup(cancel)
	return ctx
}

// dial connects p to s with the transport's own client.
func (p *clientPeer) dial(t *testing.T, s *servingNode) *transfer.Conn {
	t.Helper()
	c, err := transfer.Dial(timeoutCtx(t), s.addr, s.n.ID(), p.cfg)
	if err != nil {
		t.Fatalf("%s: dial: %v", p.name, err)
	}
	t.Cleanup(func() { c.Close("test over") })
	return c
}

// rawTLS is what a hand-driven quic-go client presents: p's certificate,
// the given ALPN, no server verification.
func (p *clientPeer) rawTLS(alpn string) *tls.Config {
	return &tls.Config{
		MinVersion:         tls.VersionTLS13,
		Certificates:       []tls.Certificate{p.cert},
		NextProtos:         []string{alpn},
		ServerName:         "loft",
		InsecureSkipVerify: true,
	}
}

// rawDial opens a bare quic-go connection as p over transfer.ALPN and, with
// hello, runs the hello by hand. It returns the connection and its control
// stream.
func (p *clientPeer) rawDial(t *testing.T, s *servingNode, hello bool) (*quic.Conn, *quic.Stream) {
	t.Helper()
	ctx := timeoutCtx(t)
	qc, err := quic.DialAddr(ctx, s.addr, p.rawTLS(transfer.ALPN), &quic.Config{})
	if err != nil {
		t.Fatalf("%s: raw dial: %v", p.name, err)
	}
	t.Cleanup(func() { qc.CloseWithError(0, "") })
	qs, err := qc.OpenStreamSync(ctx)
	if err != nil {
		t.Fatalf("%s: open control stream: %v", p.name, err)
	}
	if !hello {
		return qc, qs
	}
	h, _ := json.Marshal(map[string]any{"versions": []int{rawProtocolVersion}, "node": p.id.ID().String(), "name": "raw"})
	body := binary.BigEndian.AppendUint64(nil, 0) // request ID 0
	body = binary.BigEndian.AppendUint16(body, 0) // op 0: the hello
	if err := transfer.WriteFrame(qs, rawFrameRequest, append(body, h...)); err != nil {
		t.Fatalf("%s: send hello: %v", p.name, err)
	}
	qs.SetReadDeadline(time.Now().Add(serveTimeout))
	typ, rep, err := transfer.ReadFrame(qs, transfer.MaxControlFrame, nil)
	if err != nil {
		t.Fatalf("%s: read hello reply: %v", p.name, err)
	}
	if typ != rawFrameResponse || len(rep) < 10 || binary.BigEndian.Uint64(rep) != 0 || binary.BigEndian.Uint16(rep[8:]) != uint16(fault.OK) {
		t.Fatalf("%s: hello reply type %d: %q", p.name, typ, rep)
	}
	qs.SetReadDeadline(time.Time{})
	return qc, qs
}

// rawStream opens a bulk stream by hand on a raw connection: the opening
// frame names op and carries req.
func rawStream(t *testing.T, qc *quic.Conn, op transfer.Op, req any) *quic.Stream {
	t.Helper()
	qs, err := qc.OpenStreamSync(timeoutCtx(t))
	if err != nil {
		t.Fatalf("open raw stream: %v", err)
	}
	js, _ := json.Marshal(req)
	if err := transfer.WriteFrame(qs, rawFrameStream, append(binary.BigEndian.AppendUint16(nil, uint16(op)), js...)); err != nil {
		t.Fatalf("open raw stream: %v", err)
	}
	return qs
}

// closedBy waits for s to close a raw connection and returns the
// application code it closed it with.
func closedBy(t *testing.T, what string, qc *quic.Conn) transfer.Code {
	t.Helper()
	select {
	case <-qc.Context().Done():
	case <-time.After(serveTimeout):
		t.Fatalf("%s: the node did not close the connection within %v", what, serveTimeout)
	}
	var ae *quic.ApplicationError
	if err := context.Cause(qc.Context()); !errors.As(err, &ae) || !ae.Remote {
		t.Fatalf("%s: connection ended by %v, not closed by the node", what, err)
	}
	return transfer.Code(ae.ErrorCode)
}

// streamEnded reads a raw stream until the node ends it and returns how it
// ended: nil for a clean end, else the reset.
func streamEnded(t *testing.T, what string, qs *quic.Stream) error {
	t.Helper()
	qs.SetReadDeadline(time.Now().Add(serveTimeout))
	_, err := io.Copy(io.Discard, qs)
	var ne interface{ Timeout() bool }
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("%s: the node did not end the stream within %v", what, serveTimeout)
	}
	return err
}

// roundTrip checks that c (the good peer) still gets answers from s.
func roundTrip(t *testing.T, c *transfer.Conn, after string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), serveTimeout)
	defer cancel()
	var hb transfer.Heartbeat
	if err := c.Call(ctx, transfer.OpHeartbeat, transfer.Heartbeat{Time: time.Now(), Software: "test"}, &hb); err != nil {
		t.Fatalf("after %s: the good peer's heartbeat failed: %v", after, err)
	}
	if hb.Software != cluster.Software {
		t.Fatalf("after %s: heartbeat answered %+v", after, hb)
	}
	var list transfer.ListResp
	if err := c.Call(ctx, transfer.OpList, transfer.ListReq{Prefix: "", Limit: 10}, &list); err != nil {
		t.Fatalf("after %s: the good peer's list failed: %v", after, err)
	}
}

// refusedInHandshake checks that a dial failed because the node aborted the
// TLS handshake (a QUIC crypto error sent by the node), not later.
func refusedInHandshake(t *testing.T, what string, err error) {
	t.Helper()
	var te *quic.TransportError
	if !errors.As(err, &te) || !te.Remote || !te.ErrorCode.IsCryptoError() {
		t.Fatalf("%s: dial failed with %v, want a TLS refusal by the node", what, err)
	}
	t.Logf("%s: refused: %v", what, err)
}

func heldTotals(t *testing.T, n *Node) catalog.GarbageTotals {
	t.Helper()
	h, err := n.Catalog().HeldTotals(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// notStored fails if the node holds id, knows it in its catalog, or has its
// file.
func notStored(t *testing.T, what string, n *Node, ids ...store.ID) {
	t.Helper()
	ctx := context.Background()
	for _, id := range ids {
		st, err := n.Catalog().Lookup(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if st.Known || st.Held {
			t.Errorf("%s: the node recorded chunk %s: %+v", what, id.Short(), st)
		}
		if _, err := n.Store().Stat(ctx, id); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("%s: chunk file %s: stat says %v, want not found", what, id.Short(), err)
		}
	}
}

func chunkFrame(id store.ID, data []byte) []byte {
	return append(slices.Clone(id[:]), data...)
}

// TestServeMisbehavingPeers runs one serving node with two pinned clients:
// a good one that must keep being served, and a bad one that breaks the
// protocol in every way the transport has to survive.
func TestServeMisbehavingPeers(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for the node's 30s stream write deadline")
	}
	s := startServing(t, "s")
	good, bad := newClientPeer(t, "good"), newClientPeer(t, "bad")
	good.pin(t, s)
	bad.pin(t, s)
	badID, badShort := bad.id.ID().String(), bad.id.ID().Short()

	// A few MiB for the fetch the bad peer stalls.
	data := randomData(61, 6<<20)
	src := filepath.Join(t.TempDir(), "big.bin")
	writeFile(t, src, data, 0o644)
	if _, err := s.n.Put(context.Background(), []string{src}, PutOptions{As: nm("big.bin")}); err != nil {
		t.Fatal(err)
	}
	var held []store.ID
	ch := store.NewChunker(bytes.NewReader(data), s.n.Params())
	for {
		c, err := ch.Next()
		if err != nil {
			break
		}
		held = append(held, store.Sum(c))
	}
	if have, err := s.n.Catalog().HeldAmong(context.Background(), held); err != nil || len(have) != len(slices.Compact(slices.Clone(held))) {
		t.Fatalf("the node holds %d of the %d chunks put: %v", len(have), len(held), err)
	}

	goodConn := good.dial(t, s)
	roundTrip(t, goodConn, "connecting")

	// 6 (started first, checked last). The bad peer asks for a fetch of
	// many MiB and never reads it: flow control stops the node's writes
	// within the first chunk. The other cases run while it is stalled, so
	// every round trip below is also made while the node has a write
	// blocked towards the bad peer.
	stallFrom := s.log.Len()
	stallConn := bad.dial(t, s)
	var ids []store.ID
	for len(ids) < 64 {
		ids = append(ids, held...)
	}
	stalled, err := stallConn.OpenStream(timeoutCtx(t), transfer.OpFetch, transfer.FetchReq{IDs: ids})
	if err != nil {
		t.Fatalf("open the fetch stream: %v", err)
	}
	defer stalled.Cancel(fault.OK)
	roundTrip(t, goodConn, "a fetch stream stopped being read")

	t.Run("unknown identity", func(t *testing.T) {
		from := s.log.Len()
		stranger := newClientPeer(t, "stranger")
		c, err := transfer.Dial(timeoutCtx(t), s.addr, s.n.ID(), stranger.cfg)
		if err == nil {
			c.Close("")
			t.Fatal("an unpinned identity got a connection")
		}
		refusedInHandshake(t, "unknown identity", err)
		s.log.waitLine(t, "unknown identity", from, "refused connection: unknown peer", stranger.id.ID().String())
		roundTrip(t, goodConn, "an unknown identity dialed")
	})

	t.Run("wrong ALPN", func(t *testing.T) {
		from := s.log.Len()
		// The bad peer's own, pinned, certificate: the protocol alone is
		// wrong.
		qc, err := quic.DialAddr(timeoutCtx(t), s.addr, bad.rawTLS("h3"), &quic.Config{})
		if err == nil {
			qc.CloseWithError(0, "")
			t.Fatal("a client offering only h3 got a connection")
		}
		refusedInHandshake(t, "wrong ALPN", err)
		s.log.waitLine(t, "wrong ALPN", from, "refused connection: no supported application protocol", "h3")
		roundTrip(t, goodConn, "a wrong ALPN")
	})

	t.Run("oversized control frame", func(t *testing.T) {
		for _, announced := range []uint32{transfer.MaxControlFrame + 1, 1<<32 - 1} {
			from := s.log.Len()
			qc, qs := bad.rawDial(t, s, true)
			hdr := []byte{rawFrameRequest, 0, 0, 0, 0}
			binary.BigEndian.PutUint32(hdr[1:], announced)
			// The header and a little of the body: the node must refuse on
			// the header, not wait for (or allocate) the announced size.
			qs.Write(append(hdr, make([]byte, 100)...))
			if code := closedBy(t, "oversized control frame", qc); code != fault.TooLarge {
				t.Errorf("announcing %d bytes: connection closed with code %d (%s), want %d (%s)", announced, code, code, fault.TooLarge, fault.TooLarge)
			}
			s.log.waitLine(t, "oversized control frame", from, "protocol violation", "frame too large", badID)
			roundTrip(t, goodConn, "an oversized control frame")
		}
		// The same before the hello: the hello's read is capped too.
		from := s.log.Len()
		qc, qs := bad.rawDial(t, s, false)
		qs.Write([]byte{rawFrameRequest, 0xff, 0xff, 0xff, 0xff})
		if code := closedBy(t, "oversized hello", qc); code != fault.TooLarge {
			t.Errorf("oversized hello: connection closed with code %d (%s), want %d", code, code, fault.TooLarge)
		}
		s.log.waitLine(t, "oversized hello", from, "connection failed", "frame too large", badID)
		roundTrip(t, goodConn, "an oversized hello")
	})

	t.Run("oversized bulk frame", func(t *testing.T) {
		from := s.log.Len()
		before := heldTotals(t, s.n)
		qc, _ := bad.rawDial(t, s, true)
		ps := rawStream(t, qc, transfer.OpPush, transfer.PushReq{})
		ps.Write([]byte{transfer.FrameChunk, 0xff, 0xff, 0xff, 0xff})
		if err := streamEnded(t, "oversized chunk frame", ps); err == nil {
			t.Error("the node ended the push stream cleanly after an oversized chunk frame")
		}
		s.log.waitLine(t, "oversized chunk frame", from, "stream ended", "peer="+badShort, "op=32", "frame too large")
		if after := heldTotals(t, s.n); after != before {
			t.Errorf("held chunks went from %+v to %+v", before, after)
		}
		roundTrip(t, goodConn, "an oversized chunk frame")
	})

	t.Run("random bytes", func(t *testing.T) {
		for seed := range uint64(4) {
			from := s.log.Len()
			qc, qs := bad.rawDial(t, s, true)
			junk := make([]byte, 4096)
			rng := mrand.NewChaCha8([32]byte{byte(seed), 99})
			rng.Read(junk)
			switch seed {
			case 0:
				// An unknown frame type whose length fits in the junk: refused
				// on the type, with the stream still open.
				junk[0], junk[1], junk[2], junk[3], junk[4] = 0xee, 0, 0, 0, 16
				qs.Write(junk)
			case 1:
				// A request frame longer than what follows, then the end of
				// the stream: a truncated frame.
				junk[0], junk[1], junk[2], junk[3], junk[4] = rawFrameRequest, 0, 0, 0xff, 0xff
				qs.Write(junk)
				qs.Close()
			default:
				// Anything at all, then the end of the control stream.
				qs.Write(junk)
				qs.Close()
			}
			code := closedBy(t, "random bytes", qc)
			if code != fault.Invalid && code != fault.TooLarge {
				t.Errorf("seed %d: connection closed with code %d (%s), want bad request or too large", seed, code, code)
			}
			s.log.waitLine(t, "random bytes", from, "protocol violation", badID)
			roundTrip(t, goodConn, "random bytes on the control stream")
		}
	})

	t.Run("truncated push", func(t *testing.T) {
		whole := randomData(71, 300<<10)
		part := randomData(72, 300<<10)
		wholeID, partID := store.Sum(whole), store.Sum(part)
		for _, end := range []string{"fin", "reset"} {
			from := s.log.Len()
			before := heldTotals(t, s.n)
			qc, _ := bad.rawDial(t, s, true)
			ps := rawStream(t, qc, transfer.OpPush, transfer.PushReq{})
			// One whole, valid chunk, then half of the next one.
			if err := transfer.WriteFrame(ps, transfer.FrameChunk, chunkFrame(wholeID, whole)); err != nil {
				t.Fatal(err)
			}
			frame := chunkFrame(partID, part)
			hdr := []byte{transfer.FrameChunk, 0, 0, 0, 0}
			binary.BigEndian.PutUint32(hdr[1:], uint32(len(frame)))
			ps.Write(hdr)
			ps.Write(frame[:len(frame)/2])
			if end == "fin" {
				ps.Close()
			} else {
				ps.CancelWrite(quic.StreamErrorCode(fault.Invalid))
			}
			if err := streamEnded(t, "truncated push", ps); err == nil {
				t.Errorf("%s: the node ended a truncated push cleanly", end)
			}
			s.log.waitLine(t, "truncated push", from, "stream ended", "peer="+badShort, "op=32")
			if after := heldTotals(t, s.n); after != before {
				t.Errorf("%s: held chunks went from %+v to %+v", end, before, after)
			}
			// Nothing from the stream is kept, not even the whole chunk:
			// it was never acknowledged, so the sender sends it again.
			notStored(t, "truncated push ("+end+")", s.n, partID, wholeID)
			qc.CloseWithError(0, "")
			roundTrip(t, goodConn, "a truncated push stream")
		}
	})

	t.Run("chunk not matching its ID", func(t *testing.T) {
		from := s.log.Len()
		before := heldTotals(t, s.n)
		c := bad.dial(t, s)
		ps, err := c.OpenStream(timeoutCtx(t), transfer.OpPush, transfer.PushReq{})
		if err != nil {
			t.Fatal(err)
		}
		liar, claimed := randomData(81, 200<<10), randomData(82, 200<<10)
		claimedID := store.Sum(claimed)
		honest := randomData(83, 100<<10)
		honestID := store.Sum(honest)
		if err := ps.WriteFrame(transfer.FrameChunk, chunkFrame(claimedID, liar)); err != nil {
			t.Fatal(err)
		}
		if err := ps.WriteFrame(transfer.FrameChunk, chunkFrame(honestID, honest)); err != nil {
			t.Fatal(err)
		}
		if err := ps.CloseWrite(); err != nil {
			t.Fatal(err)
		}
		acks := map[store.ID]transfer.Code{}
		var order []store.ID
		for range 10 {
			typ, b, err := ps.ReadFrame(transfer.MaxControlFrame, nil)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("reading acknowledgements: %v", err)
			}
			if typ != transfer.FrameAck {
				t.Fatalf("frame type %d on a push stream, want acknowledgements", typ)
			}
			id, code, err := transfer.ParseAck(b)
			if err != nil {
				t.Fatal(err)
			}
			acks[id] = code
			order = append(order, id)
		}
		if len(order) != 2 {
			t.Fatalf("%d acknowledgements, want 2: %v", len(order), acks)
		}
		if code, ok := acks[claimedID]; !ok || code != fault.Integrity {
			t.Errorf("the chunk not matching its ID was acknowledged with code %d (%s) (present %v), want %d (%s)", code, code, ok, fault.Integrity, fault.Integrity)
		}
		if code, ok := acks[honestID]; !ok || code != fault.OK {
			t.Errorf("the valid chunk after it was acknowledged with code %d (%s) (present %v), want ok", code, code, ok)
		}
		s.log.waitLine(t, "chunk not matching its ID", from, "pushed chunk failed verification", "peer="+badShort, "chunk="+claimedID.Short())
		notStored(t, "chunk not matching its ID", s.n, claimedID, store.Sum(liar))
		st, err := s.n.Catalog().Lookup(context.Background(), honestID)
		if err != nil || !st.Held {
			t.Errorf("the valid chunk pushed after the bad one is not held: %+v, %v", st, err)
		}
		if after := heldTotals(t, s.n); after.Chunks != before.Chunks+1 {
			t.Errorf("held chunks went from %d to %d, want one more (the valid chunk only)", before.Chunks, after.Chunks)
		}
		roundTrip(t, goodConn, "a chunk not matching its ID")
	})

	t.Run("peer that stops reading", func(t *testing.T) {
		// The fetch opened at the start has not been read. Whatever the
		// cases above took, the good peer was served meanwhile; once more
		// here, in case the node has not yet given up.
		if s.log.logLine(stallFrom, "stream ended", "op=33") == "" {
			roundTrip(t, goodConn, "a fetch stream stalled")
		}
		// The node's fetch writes have a 30s deadline (serveFetch): it
		// must give up on the stream and say so.
		line := s.log.waitLineFor(t, "stalled fetch", 30*time.Second+serveTimeout, stallFrom, "stream ended", "peer="+badShort, "op=33")
		t.Logf("the node gave up: %s", strings.TrimSpace(line))
		// The stream is then cancelled: reading it ends in an error after
		// at most the frames that were in flight.
		var err error
		for range 200 {
			if _, _, err = stalled.ReadFrame(transfer.MaxDataFrame, nil); err != nil {
				break
			}
		}
		if err == nil || errors.Is(err, io.EOF) {
			t.Errorf("the stalled fetch stream ended with %v, want a cancellation by the node", err)
		}
		roundTrip(t, goodConn, "the node gave up on a stalled fetch")
	})

	roundTrip(t, goodConn, "every misbehaviour")
	if t.Failed() {
		t.Logf("node log:\n%s", s.log)
	}
}

// TestServeRefusesJoinWithoutInvite checks that a join connection needs an
// outstanding invite, that one with a wrong proof is refused at OpJoin, and
// that a real join pins both sides.
func TestServeRefusesJoinWithoutInvite(t *testing.T) {
	s := startServing(t, "s")
	ctx := timeoutCtx(t)
	stranger := newClientPeer(t, "stranger")

	// No invite: refused in the handshake.
	from := s.log.Len()
	if c, err := transfer.DialJoin(ctx, s.addr, s.n.ID(), stranger.cfg); err == nil {
		c.Close("")
		t.Fatal("a join connection was accepted without an invite")
	} else {
		refusedInHandshake(t, "join without invite", err)
	}
	s.log.waitLine(t, "join without invite", from, "refused join connection: no invite outstanding")

	inv, err := s.n.Invite(ctx, []string{s.addr}, time.Minute)
	if err != nil {
		t.Fatal(err)
	}

	// An invite exists: the join connection gets through the handshake, but
	// a wrong proof is refused, and so is any other request on it.
	from = s.log.Len()
	c, err := transfer.DialJoin(ctx, s.addr, s.n.ID(), stranger.cfg)
	if err != nil {
		t.Fatalf("join dial with an invite outstanding: %v", err)
	}
	defer c.Close("test over")
	if !c.Join() {
		t.Fatal("DialJoin returned an ordinary connection")
	}
	var wrong [16]byte
	rand.Read(wrong[:])
	var resp transfer.JoinResp
	err = c.Call(ctx, transfer.OpJoin, transfer.JoinReq{Proof: transfer.JoinProof(wrong, stranger.id.ID(), s.n.ID()), Name: "stranger"}, &resp)
	if code := transfer.CodeOf(err); code != fault.Denied {
		t.Fatalf("join with a wrong proof: %v (code %s), want denied", err, code)
	}
	s.log.waitLine(t, "wrong proof", from, "join refused: no invite matches", "peer="+stranger.id.ID().Short())
	var hb transfer.Heartbeat
	err = c.Call(ctx, transfer.OpHeartbeat, transfer.Heartbeat{Time: time.Now(), Software: "test"}, &hb)
	if code := transfer.CodeOf(err); code != fault.Denied {
		t.Fatalf("heartbeat on a join connection: %v (code %s), want denied", err, code)
	}
	if _, err := s.n.Catalog().PeerByID(ctx, stranger.id.ID().String()); !errors.Is(err, catalog.ErrNotFound) {
		t.Fatalf("the stranger is pinned after a wrong proof: %v", err)
	}
	if sc, err := transfer.Dial(ctx, s.addr, s.n.ID(), stranger.cfg); err == nil {
		sc.Close("")
		t.Fatal("the stranger got an ordinary connection")
	}
	c.Close("done")

	// The wrong proof did not use the invite up: a real join pins both
	// sides.
	dir := filepath.Join(t.TempDir(), "joiner")
	j, err := Init(ctx, dir, InitOptions{}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	res, err := j.Join(ctx, inv.String(), nil)
	if err != nil {
		t.Fatalf("join with the token: %v", err)
	}
	if res.Peer != s.n.ID().String() || !slices.Contains(res.Addrs, s.addr) {
		t.Fatalf("joined %+v, want %s at %s", res, s.n.ID(), s.addr)
	}
	if p, err := j.Catalog().PeerByID(ctx, s.n.ID().String()); err != nil || !slices.Contains(p.Addrs, s.addr) {
		t.Fatalf("the joiner did not pin the server: %+v, %v", p, err)
	}
	if _, err := s.n.Catalog().PeerByID(ctx, j.ID().String()); err != nil {
		t.Fatalf("the server did not pin the joiner: %v", err)
	}
	// Pinned both ways: the joiner gets an ordinary connection.
	r, err := j.Remote(ctx, s.n.ID().String())
	if err != nil {
		t.Fatalf("connect after joining: %v", err)
	}
	if _, err := r.Stat(ctx); err != nil {
		t.Fatalf("stat over the new pairing: %v", err)
	}

	// The invite was single-use: no join connection any more.
	from = s.log.Len()
	if c, err := transfer.DialJoin(ctx, s.addr, s.n.ID(), stranger.cfg); err == nil {
		c.Close("")
		t.Fatal("a join connection was accepted after the invite was used")
	} else {
		refusedInHandshake(t, "join with a used invite", err)
	}
	s.log.waitLine(t, "used invite", from, "refused join connection: no invite outstanding")
	if t.Failed() {
		t.Logf("node log:\n%s", s.log)
	}
}
