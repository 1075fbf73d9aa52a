package transfer

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/loftstore/loft/fault"
	"github.com/loftstore/loft/store"
)

// Ops of the test handler. Real ops live in messages.go; these only need to
// be non-zero.
const (
	opEcho        Op = 101 // answers its request
	opBlock       Op = 102 // blocks until released or its ctx ends
	opNotFound    Op = 103 // answers fault.NotFound
	opWho         Op = 104 // answers the caller's ID
	opStreamEcho  Op = 107 // echoes every frame until EOF
	opStreamStall Op = 108 // never reads
)

// testTimeout bounds every wait of these tests; nothing is expected to take
// anywhere near that long.
const testTimeout = 20 * time.Second

type testHandler struct {
	served  atomic.Int32
	release chan struct{} // closed to let opBlock and opStreamStall return
	started chan struct{} // one send per opBlock started
	ended   chan struct{} // one send per opBlock returned
}

func newTestHandler() *testHandler {
	return &testHandler{release: make(chan struct{}), started: make(chan struct{}, 64), ended: make(chan struct{}, 64)}
}

func (h *testHandler) Serve(ctx context.Context, c *Conn, op Op, body []byte) (any, error) {
	h.served.Add(1)
	switch op {
	case opEcho:
		var v json.RawMessage
		if err := DecodeBody(body, &v); err != nil {
			return nil, Errorf(fault.Invalid, "%v", err)
		}
		return v, nil
	case opBlock:
		h.started <- struct{}{}
		defer func() { h.ended <- struct{}{} }()
		select {
		case <-h.release:
			return "released", nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	case opNotFound:
		return nil, Errorf(fault.NotFound, "no such thing")
	case opWho:
		return c.Peer().String(), nil
	}
	return nil, Errorf(fault.Unsupported, "op %d", op)
}

func (h *testHandler) ServeStream(ctx context.Context, c *Conn, op Op, body []byte, s *Stream) {
	h.served.Add(1)
	switch op {
	case opStreamEcho:
		for range 100 {
			typ, b, err := s.ReadFrame(MaxDataFrame, nil)
			if errors.Is(err, io.EOF) {
				return
			}
			if err != nil {
				s.Cancel(fault.Invalid)
				return
			}
			if err := s.WriteFrame(typ, b); err != nil {
				return
			}
		}
	case opStreamStall:
		select {
		case <-h.release:
		case <-ctx.Done():
		}
	default:
		s.Cancel(fault.Unsupported)
	}
}

// logBuffer collects log output for assertions; it outlives the test
// safely, unlike t.Log.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

type testNode struct {
	id      *Identity
	cfg     Config
	handler *testHandler
	log     *logBuffer
	pins    sync.Map
}

func newTestNode(t *testing.T, name string) *testNode {
	t.Helper()
	id, err := NewIdentity()
	if err != nil {
		t.Fatal(err)
	}
	cert, err := id.Certificate(filepath.Join(t.TempDir(), "node.crt"))
	if err != nil {
		t.Fatal(err)
	}
	n := &testNode{id: id, handler: newTestHandler(), log: &logBuffer{}}
	n.cfg = Config{
		Identity: id,
		Cert:     cert,
		Allow: func(p store.PeerID) bool {
			_, ok := n.pins.Load(p)
			return ok
		},
		Handler:     n.handler,
		Logger:      slog.New(slog.NewTextHandler(n.log, nil)),
		Name:        name,
		CallTimeout: testTimeout,
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("log of %s:\n%s", name, n.log)
		}
	})
	return n
}

func pair(a, b *testNode) {
	a.pins.Store(b.id.ID(), true)
	b.pins.Store(a.id.ID(), true)
}

// listen starts a listener for n on loopback and accepts in the background;
// accepted connections arrive on the returned channel.
func listen(t *testing.T, n *testNode) (*Listener, chan *Conn) {
	t.Helper()
	l, err := Listen("127.0.0.1:0", n.cfg)
	if err != nil {
		t.Fatal(err)
	}
	ch := make(chan *Conn, 16)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := l.Accept(ctx)
			if err != nil {
				return
			}
			select {
			case ch <- c:
			default:
				c.Close("test backlog full")
			}
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		if err := l.Close(); err != nil {
			t.Errorf("close listener: %v", err)
		}
	})
	return l, ch
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

func dial(t *testing.T, n *testNode, l *Listener, server *testNode) *Conn {
	t.Helper()
	c, err := Dial(testCtx(t), l.Addr().String(), server.id.ID(), n.cfg)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { c.Close("test over") })
	return c
}

func accepted(t *testing.T, ch chan *Conn) *Conn {
	t.Helper()
	select {
	case c := <-ch:
		return c
	case <-time.After(testTimeout):
		t.Fatal("no connection accepted")
		return nil
	}
}

func waitDone(t *testing.T, c *Conn) {
	t.Helper()
	select {
	case <-c.Done():
	case <-time.After(testTimeout):
		t.Fatal("connection still open")
	}
}

func echo(ctx context.Context, c *Conn, v int) error {
	var got int
	if err := c.Call(ctx, opEcho, v, &got); err != nil {
		return err
	}
	if got != v {
		return errors.New("echo returned another value")
	}
	return nil
}

func TestCallBothWays(t *testing.T) {
	a, b := newTestNode(t, "alpha"), newTestNode(t, "beta")
	pair(a, b)
	l, acc := listen(t, a)
	ctx := testCtx(t)
	cc := dial(t, b, l, a)
	sc := accepted(t, acc)

	if cc.Peer() != a.id.ID() || sc.Peer() != b.id.ID() {
		t.Fatal("peer IDs do not match the identities")
	}
	if cc.PeerName() != "alpha" || sc.PeerName() != "beta" || cc.Join() || sc.Join() {
		t.Fatalf("names %q %q, join %v %v", cc.PeerName(), sc.PeerName(), cc.Join(), sc.Join())
	}
	if err := echo(ctx, cc, 42); err != nil {
		t.Fatalf("client to server: %v", err)
	}
	if err := echo(ctx, sc, 43); err != nil {
		t.Fatalf("server to client: %v", err)
	}
	var who string
	if err := sc.Call(ctx, opWho, nil, &who); err != nil || who != a.id.ID().String() {
		t.Fatalf("server to client sees caller %q: %v", who, err)
	}
	err := cc.Call(ctx, opNotFound, nil, nil)
	var ce *CodeError
	if !errors.As(err, &ce) || ce.Code != fault.NotFound || ce.Msg != "no such thing" || CodeOf(err) != fault.NotFound {
		t.Fatalf("error response: %v", err)
	}
	if err.Error() != "no such thing" || !errors.Is(err, fault.NotFound) || fault.Of(err).Exit() != 3 {
		t.Fatalf("error text or kind: %v", err)
	}

	cc.Close("bye")
	waitDone(t, sc)
	if sc.Err() == nil || !strings.Contains(sc.Err().Error(), "bye") || !errors.Is(cc.Err(), net.ErrClosed) {
		t.Fatalf("reasons recorded: %v / %v", sc.Err(), cc.Err())
	}
	if strings.Contains(a.log.String(), "violation") {
		t.Fatalf("a clean close logged as a violation:\n%s", a.log)
	}
	if err := cc.Call(ctx, opEcho, 1, nil); err == nil {
		t.Fatal("call on a closed connection succeeded")
	}
}

func TestListenerDial(t *testing.T) {
	a, b := newTestNode(t, "alpha"), newTestNode(t, "beta")
	pair(a, b)
	la, acc := listen(t, a)
	lb, _ := listen(t, b)
	ctx := testCtx(t)
	cc, err := lb.Dial(ctx, la.Addr().String(), a.id.ID())
	if err != nil {
		t.Fatal(err)
	}
	sc := accepted(t, acc)
	// The listener's socket is the one dialing: peers see one address.
	if sc.RemoteAddr().String() != lb.Addr().String() {
		t.Fatalf("dialed from %s, listener at %s", sc.RemoteAddr(), lb.Addr())
	}
	if err := echo(ctx, cc, 1); err != nil {
		t.Fatal(err)
	}
	if err := echo(ctx, sc, 2); err != nil {
		t.Fatal(err)
	}
	// Closing the listener ends the connections dialed from it.
	lb.Close()
	waitDone(t, cc)
	waitDone(t, sc)
}

func TestUnknownPeerRefused(t *testing.T) {
	a, b := newTestNode(t, "alpha"), newTestNode(t, "beta")
	b.pins.Store(a.id.ID(), true) // b trusts a, a does not know b
	l, acc := listen(t, a)
	if _, err := Dial(testCtx(t), l.Addr().String(), a.id.ID(), b.cfg); err == nil {
		t.Fatal("dial by an unknown peer succeeded")
	}
	if !strings.Contains(a.log.String(), "unknown peer") || !strings.Contains(a.log.String(), b.id.ID().String()) {
		t.Fatalf("refusal not logged with the peer ID:\n%s", a.log)
	}
	// Nil Allow refuses everyone too.
	c := newTestNode(t, "gamma")
	c.cfg.Allow = nil
	lc, _ := listen(t, c)
	if _, err := Dial(testCtx(t), lc.Addr().String(), c.id.ID(), b.cfg); err == nil {
		t.Fatal("dial to a node with nil Allow succeeded")
	}
	// Once pinned, b gets in: the listener kept serving.
	a.pins.Store(b.id.ID(), true)
	cc := dial(t, b, l, a)
	accepted(t, acc)
	if err := echo(testCtx(t), cc, 7); err != nil {
		t.Fatal(err)
	}
	if n := a.handler.served.Load(); n != 1 {
		t.Fatalf("handler served %d requests, want 1", n)
	}
}

func TestJoin(t *testing.T) {
	a, b := newTestNode(t, "alpha"), newTestNode(t, "joiner")
	var invite atomic.Bool
	a.cfg.AllowJoin = invite.Load
	l, acc := listen(t, a)
	ctx := testCtx(t)

	if _, err := DialJoin(ctx, l.Addr().String(), a.id.ID(), b.cfg); err == nil {
		t.Fatal("join without an invite succeeded")
	}
	invite.Store(true)
	// An invite opens JoinALPN only.
	if _, err := Dial(ctx, l.Addr().String(), a.id.ID(), b.cfg); err == nil {
		t.Fatal("unknown peer got in on the main protocol during an invite")
	}
	cc, err := DialJoin(ctx, l.Addr().String(), a.id.ID(), b.cfg)
	if err != nil {
		t.Fatalf("join with an invite: %v", err)
	}
	defer cc.Close("done")
	sc := accepted(t, acc)
	if !cc.Join() || !sc.Join() || sc.Peer() != b.id.ID() {
		t.Fatalf("join flags %v %v, peer %s", cc.Join(), sc.Join(), sc.Peer().Short())
	}
	if err := echo(ctx, cc, 5); err != nil {
		t.Fatal(err)
	}
	invite.Store(false)
	if _, err := DialJoin(ctx, l.Addr().String(), a.id.ID(), b.cfg); err == nil {
		t.Fatal("join after the invite ended succeeded")
	}
	// The joiner must also check who it joins.
	invite.Store(true)
	other := newTestNode(t, "other")
	if _, err := DialJoin(ctx, l.Addr().String(), other.id.ID(), b.cfg); err == nil {
		t.Fatal("join to the wrong server ID succeeded")
	}
}

func TestWrongALPNRefused(t *testing.T) {
	a, b := newTestNode(t, "alpha"), newTestNode(t, "beta")
	pair(a, b)
	var invite atomic.Bool
	invite.Store(true)
	a.cfg.AllowJoin = invite.Load
	l, acc := listen(t, a)
	for _, protos := range [][]string{{"h3"}, {"h3", JoinALPN}} {
		tc := clientTLS(&b.cfg, a.id.ID(), "")
		tc.NextProtos = protos
		qc, err := quic.DialAddr(testCtx(t), l.Addr().String(), tc, &quic.Config{})
		if err == nil {
			qc.CloseWithError(0, "")
			t.Fatalf("handshake offering %q succeeded", protos)
		}
	}
	if !strings.Contains(a.log.String(), "no supported application protocol") {
		t.Fatalf("refusal not logged:\n%s", a.log)
	}
	select {
	case <-acc:
		t.Fatal("a connection was accepted")
	default:
	}
}

func TestWrongServerIDRefused(t *testing.T) {
	a, b, c := newTestNode(t, "alpha"), newTestNode(t, "beta"), newTestNode(t, "gamma")
	pair(a, b)
	pair(c, b)
	l, _ := listen(t, a)
	_, err := Dial(testCtx(t), l.Addr().String(), c.id.ID(), b.cfg)
	if err == nil {
		t.Fatal("dial reached a server with another ID")
	}
	if a.handler.served.Load() != 0 {
		t.Fatal("the handler was called")
	}
}

// rawConn is a hand-driven client: real TLS as a pinned peer, then whatever
// bytes a test wants on the control stream.
func rawConn(t *testing.T, n *testNode, l *Listener, server *testNode, hello bool) (*quic.Conn, *quic.Stream) {
	t.Helper()
	ctx := testCtx(t)
	qc, err := quic.DialAddr(ctx, l.Addr().String(), clientTLS(&n.cfg, server.id.ID(), ALPN), &quic.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { qc.CloseWithError(0, "") })
	qs, err := qc.OpenStreamSync(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !hello {
		return qc, qs
	}
	sendHello(t, qs, n, []int{protocolVersion})
	typ, body, err := ReadFrame(qs, MaxControlFrame, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, code, _, err := parseResponse(body); err != nil || typ != frameResponse || code != fault.OK {
		t.Fatalf("hello reply type %d code %d: %v", typ, code, err)
	}
	return qc, qs
}

func sendHello(t *testing.T, qs *quic.Stream, n *testNode, versions []int) {
	t.Helper()
	h, _ := json.Marshal(hello{Versions: versions, Node: n.id.ID().String(), Name: "raw"})
	if err := WriteFrame(qs, frameRequest, appendRequest(nil, 0, opHello, h)); err != nil {
		t.Fatal(err)
	}
}

// closedWith waits for the server to close a raw connection and returns its
// application error code.
func closedWith(t *testing.T, qc *quic.Conn) Code {
	t.Helper()
	select {
	case <-qc.Context().Done():
	case <-time.After(testTimeout):
		t.Fatal("server did not close the connection")
	}
	var ae *quic.ApplicationError
	if !errors.As(context.Cause(qc.Context()), &ae) {
		t.Fatalf("closed by %v", context.Cause(qc.Context()))
	}
	return Code(ae.ErrorCode)
}

// misbehave runs bad, a raw client's misbehaviour, against a listener that
// also serves a well-behaved connection, and checks that only the raw
// connection is closed, with code want.
func misbehave(t *testing.T, afterHello bool, want Code, bad func(qs *quic.Stream, r *testNode)) {
	a, b, r := newTestNode(t, "alpha"), newTestNode(t, "beta"), newTestNode(t, "raw")
	pair(a, b)
	pair(a, r)
	l, acc := listen(t, a)
	ctx := testCtx(t)
	good := dial(t, b, l, a)
	accepted(t, acc)

	qc, qs := rawConn(t, r, l, a, afterHello)
	var rc *Conn
	if afterHello {
		rc = accepted(t, acc)
	}
	bad(qs, r)
	if got := closedWith(t, qc); got != want {
		t.Fatalf("raw connection closed with code %d, want %d", got, want)
	}
	if rc != nil {
		waitDone(t, rc)
		if rc.Err() == nil {
			t.Fatal("no reason recorded")
		}
	}
	if err := echo(ctx, good, 9); err != nil {
		t.Fatalf("the other connection suffered: %v", err)
	}
	if !strings.Contains(a.log.String(), r.id.ID().String()) {
		t.Fatalf("closing not logged with the peer ID:\n%s", a.log)
	}
}

func TestOversizedFrameClosesOnlyThatConnection(t *testing.T) {
	for _, afterHello := range []bool{false, true} {
		misbehave(t, afterHello, fault.TooLarge, func(qs *quic.Stream, _ *testNode) {
			hdr := []byte{frameRequest, 0, 0, 0, 0}
			hdr[1], hdr[2], hdr[3], hdr[4] = 0, 0x10, 0, 1 // MaxControlFrame+1
			qs.Write(hdr)
		})
	}
}

func TestGarbageOnControlStream(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, afterHello := range []bool{false, true} {
		for range 3 {
			junk := make([]byte, 512)
			for i := range junk {
				junk[i] = byte(rng.UintN(256))
			}
			// An unknown frame type, with a length inside the junk.
			junk[0], junk[1], junk[2], junk[3] = 0xee, 0, 0, 0
			misbehave(t, afterHello, fault.Invalid, func(qs *quic.Stream, _ *testNode) { qs.Write(junk) })
		}
	}
	// A well-formed frame with a bad body: a response to a request never sent.
	misbehave(t, true, fault.Invalid, func(qs *quic.Stream, _ *testNode) {
		WriteFrame(qs, frameResponse, appendResponse(nil, 77, fault.OK, []byte("{}")))
	})
	// A request too short to hold its ID and op.
	misbehave(t, true, fault.Invalid, func(qs *quic.Stream, _ *testNode) { WriteFrame(qs, frameRequest, []byte{1, 2, 3}) })
}

func TestTruncatedFrame(t *testing.T) {
	misbehave(t, true, fault.Invalid, func(qs *quic.Stream, _ *testNode) {
		qs.Write([]byte{frameRequest, 0, 0, 0, 100})
		qs.Write(make([]byte, 10))
		qs.Close()
	})
}

func TestVersionMismatch(t *testing.T) {
	misbehave(t, false, fault.Unsupported, func(qs *quic.Stream, r *testNode) {
		h, _ := json.Marshal(hello{Versions: []int{99}, Node: r.id.ID().String(), Name: "raw"})
		WriteFrame(qs, frameRequest, appendRequest(nil, 0, opHello, h))
		// The refusal says why before the connection closes.
		typ, body, err := ReadFrame(qs, MaxControlFrame, nil)
		if _, code, msg, perr := parseResponse(body); err != nil || perr != nil || typ != frameResponse || code != fault.Unsupported {
			t.Errorf("refusal: type %d code %d %q: %v %v", typ, code, msg, err, perr)
		}
	})
}

func TestCallDeadline(t *testing.T) {
	a, b := newTestNode(t, "alpha"), newTestNode(t, "beta")
	pair(a, b)
	l, acc := listen(t, a)
	cc := dial(t, b, l, a)
	accepted(t, acc)

	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	err := cc.Call(ctx, opBlock, nil, nil)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("blocked call: %v", err)
	}
	// The handler answers late; the abandoned response is dropped without
	// harming the connection.
	<-a.handler.started
	close(a.handler.release)
	<-a.handler.ended
	for i := range 3 {
		if err := echo(testCtx(t), cc, i); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case <-cc.Done():
		t.Fatalf("connection closed: %v", cc.Err())
	default:
	}
}

func TestBusy(t *testing.T) {
	a, b := newTestNode(t, "alpha"), newTestNode(t, "beta")
	pair(a, b)
	l, acc := listen(t, a)
	cc := dial(t, b, l, a)
	accepted(t, acc)
	ctx := testCtx(t)

	errs := make(chan error, maxIncomingRequests)
	for range maxIncomingRequests {
		go func() { errs <- cc.Call(ctx, opBlock, nil, nil) }()
	}
	for range maxIncomingRequests {
		<-a.handler.started
	}
	if err := cc.Call(ctx, opEcho, 1, nil); CodeOf(err) != fault.Peer || !strings.Contains(err.Error(), "too many concurrent requests") {
		t.Fatalf("call beyond the limit: %v; want a peer error saying it has too many requests", err)
	}
	close(a.handler.release)
	for range maxIncomingRequests {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if err := echo(ctx, cc, 1); err != nil {
		t.Fatal(err)
	}
}

func TestNilHandler(t *testing.T) {
	a, b := newTestNode(t, "alpha"), newTestNode(t, "beta")
	pair(a, b)
	b.cfg.Handler = nil
	l, acc := listen(t, a)
	dial(t, b, l, a)
	sc := accepted(t, acc)
	ctx := testCtx(t)
	if err := sc.Call(ctx, opEcho, 1, nil); CodeOf(err) != fault.Unsupported {
		t.Fatalf("call to a pure client: %v", err)
	}
	s, err := sc.OpenStream(ctx, opStreamEcho, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.ReadFrame(MaxDataFrame, nil); CodeOf(err) != fault.Unsupported {
		t.Fatalf("stream to a pure client: %v", err)
	}
}

func TestConcurrentCalls(t *testing.T) {
	a, b := newTestNode(t, "alpha"), newTestNode(t, "beta")
	pair(a, b)
	l, acc := listen(t, a)
	cc := dial(t, b, l, a)
	sc := accepted(t, acc)
	ctx := testCtx(t)

	// 16 callers per side keep at most 32 requests in flight at each end,
	// the limit above which a refusal would be correct.
	const callers, calls = 8, 25
	var wg sync.WaitGroup
	errs := make(chan error, 2*callers)
	for g := range 2 * callers {
		c := cc
		if g%2 == 1 {
			c = sc
		}
		wg.Go(func() {
			for i := range calls {
				if err := echo(ctx, c, g*1000+i); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

func TestStreamRoundTrip(t *testing.T) {
	a, b := newTestNode(t, "alpha"), newTestNode(t, "beta")
	pair(a, b)
	l, acc := listen(t, a)
	cc := dial(t, b, l, a)
	accepted(t, acc)
	ctx := testCtx(t)

	data := make([]byte, 4<<20)
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range data {
		data[i] = byte(rng.UintN(256))
	}
	s, err := cc.OpenStream(ctx, opStreamEcho, map[string]int{"n": 2})
	if err != nil {
		t.Fatal(err)
	}
	// Write from one goroutine while reading in another: the echo of the
	// first frame flows back while the second is still being sent.
	werr := make(chan error, 1)
	go func() {
		err := s.WriteFrame(9, data)
		if err == nil {
			err = s.WriteFrame(10, []byte("small"))
		}
		if err == nil {
			err = s.CloseWrite()
		}
		werr <- err
	}()
	typ, got, err := s.ReadFrame(MaxDataFrame, nil)
	if err != nil || typ != 9 || !bytes.Equal(got, data) {
		t.Fatalf("big frame: type %d, %d bytes, equal %v: %v", typ, len(got), bytes.Equal(got, data), err)
	}
	typ, got, err = s.ReadFrame(MaxDataFrame, got)
	if err != nil || typ != 10 || string(got) != "small" {
		t.Fatalf("small frame: type %d %q: %v", typ, got, err)
	}
	if _, _, err := s.ReadFrame(MaxDataFrame, nil); !errors.Is(err, io.EOF) {
		t.Fatalf("end of stream: %v", err)
	}
	if err := <-werr; err != nil {
		t.Fatal(err)
	}
}

func TestStalledStreamWriteDeadline(t *testing.T) {
	a, b := newTestNode(t, "alpha"), newTestNode(t, "beta")
	pair(a, b)
	l, acc := listen(t, a)
	cc := dial(t, b, l, a)
	accepted(t, acc)
	defer close(a.handler.release)

	s, err := cc.OpenStream(testCtx(t), opStreamStall, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SetDeadline(time.Now().Add(300 * time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	// Far more than QUIC's flow-control windows: the peer does not read,
	// so a write must block until the deadline.
	frame := make([]byte, 4<<20)
	for i := range 16 {
		err = s.WriteFrame(5, frame)
		if err != nil {
			break
		}
		if i == 15 {
			t.Fatal("64 MiB written to a peer that reads nothing")
		}
	}
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("write to a stalled peer: %v", err)
	}
	s.Cancel(fault.Busy)
	if err := echo(testCtx(t), cc, 3); err != nil {
		t.Fatalf("connection hurt by the stalled stream: %v", err)
	}
}

func TestConfigChecks(t *testing.T) {
	a, b := newTestNode(t, "alpha"), newTestNode(t, "beta")
	cfg := a.cfg
	cfg.Cert = b.cfg.Cert
	if _, err := Listen("127.0.0.1:0", cfg); err == nil {
		t.Fatal("listen with another node's certificate")
	}
	cfg = a.cfg
	cfg.Cert = tls.Certificate{}
	if _, err := Dial(testCtx(t), "127.0.0.1:1", b.id.ID(), cfg); err == nil {
		t.Fatal("dial without a certificate")
	}
}
