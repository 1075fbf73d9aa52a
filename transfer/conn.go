package transfer

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"runtime/debug"
	"slices"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/quic-go/quic-go"

	"github.com/loftstore/loft/fault"
	"github.com/loftstore/loft/store"
)

const (
	// protocolVersion 2: versions carry a kind and a link target, and the
	// change log carries purge and forget (issue 8); a node speaking 1
	// would store directories and links as empty files.
	protocolVersion = 2
	// helloTimeout bounds the hello exchange after the TLS handshake.
	helloTimeout = 10 * time.Second
	// maxIncomingRequests bounds the control requests of one connection
	// served at once; beyond it the peer gets fault.Busy.
	maxIncomingRequests = 32
	// maxPendingHellos bounds the accepted connections whose hello is
	// running or that wait for Accept.
	maxPendingHellos = 32
	maxNameLen       = 128
	// refusalLinger is how long a refused hello waits for the peer to read
	// the refusal and close.
	refusalLinger = 2 * time.Second
	maxVersions   = 16
	// maxErrorMsg caps the error message sent back in a response.
	maxErrorMsg = 4096
	// keptReadBuf is the largest control read buffer kept between frames;
	// a larger one is dropped so an occasional big message does not pin
	// memory for the life of the connection.
	keptReadBuf = 64 << 10

	defaultKeepAlive   = 5 * time.Second
	defaultIdleTimeout = 30 * time.Second
	defaultCallTimeout = 30 * time.Second
	defaultMaxStreams  = 64
)

// Config is shared by Listen and Dial. Allow, AllowJoin and the Handler are
// called from many goroutines at once and must be safe for that.
type Config struct {
	Identity *Identity
	Cert     tls.Certificate
	// Allow reports whether a peer is pinned; nil refuses everyone.
	Allow func(store.PeerID) bool
	// AllowJoin reports whether an invite is outstanding; nil refuses joins.
	AllowJoin func() bool
	// Handler serves the other side's requests; nil answers every request
	// with fault.Unsupported and cancels every incoming bulk stream. On a join
	// connection (Conn.Join) the handler must serve the pairing ops only:
	// the peer is not pinned.
	Handler Handler
	// Logger receives refusals and protocol violations; nil discards.
	Logger *slog.Logger
	// Name is this node's display name, sent in the hello.
	Name string

	KeepAlive   time.Duration // keep-alive period, default 5s
	IdleTimeout time.Duration // the connection dies after this long without traffic, default 30s
	// CallTimeout is the deadline of a Call whose ctx has none, of every
	// control-stream write, of a served request's ctx and the default
	// per-frame deadline of a Stream; default 30s.
	CallTimeout time.Duration
	MaxStreams  int // incoming bulk streams per connection, default 64
}

// Handler serves the requests of the other side of a connection.
type Handler interface {
	// Serve answers one control request; ctx ends with the connection or
	// after Config.CallTimeout. body is the request's JSON, owned by the
	// handler (decode it with DecodeBody). resp is JSON-encoded; an error
	// sends CodeOf(err) and the error's message instead.
	Serve(ctx context.Context, c *Conn, op Op, body []byte) (resp any, err error)
	// ServeStream handles a bulk stream opened by the other side; ctx ends
	// with the connection. The stream is closed after it returns.
	ServeStream(ctx context.Context, c *Conn, op Op, body []byte, s *Stream)
}

// resolved returns cfg with defaults filled in (Logger included), after
// checking that the certificate belongs to the identity.
func (cfg Config) resolved() (*Config, error) {
	if cfg.Identity == nil {
		return nil, errors.New("transfer config: no identity")
	}
	if len(cfg.Cert.Certificate) == 0 {
		return nil, errors.New("transfer config: no certificate")
	}
	id, err := peerIDOfRaw(cfg.Cert.Certificate[:1])
	if err != nil {
		return nil, fmt.Errorf("transfer config: %w", err)
	}
	if id != cfg.Identity.ID() {
		return nil, errors.New("transfer config: certificate is not for this identity's key")
	}
	if len(cfg.Name) > maxNameLen || !utf8.ValidString(cfg.Name) {
		return nil, fmt.Errorf("transfer config: name must be valid UTF-8 of at most %d bytes", maxNameLen)
	}
	if cfg.KeepAlive <= 0 {
		cfg.KeepAlive = defaultKeepAlive
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = defaultIdleTimeout
	}
	if cfg.CallTimeout <= 0 {
		cfg.CallTimeout = defaultCallTimeout
	}
	if cfg.MaxStreams <= 0 {
		cfg.MaxStreams = defaultMaxStreams
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &cfg, nil
}

func (cfg *Config) quicConfig() *quic.Config {
	return &quic.Config{
		KeepAlivePeriod: cfg.KeepAlive,
		MaxIdleTimeout:  cfg.IdleTimeout,
		// +1: the control stream counts against the limit on the
		// accepting side.
		MaxIncomingStreams:    int64(cfg.MaxStreams) + 1,
		MaxIncomingUniStreams: -1,
	}
}

// Listener accepts connections on one UDP socket and dials from it, so
// peers see this node at one address.
type Listener struct {
	cfg  *Config
	log  *slog.Logger
	udp  *net.UDPConn
	tr   *quic.Transport
	ql   *quic.Listener
	ctx  context.Context // ends with Close
	stop context.CancelFunc

	ready chan *Conn    // connections past the hello, for Accept
	slots chan struct{} // bounds pending hellos
	wg    sync.WaitGroup

	mu      sync.Mutex
	closing bool
	conns   map[*Conn]struct{} // open connections, closed cleanly by Close

	closeOnce sync.Once
	closeErr  error
}

// Listen opens a UDP socket at addr (such as "127.0.0.1:0") and accepts
// connections on it.
func Listen(addr string, cfg Config) (*Listener, error) {
	c, err := cfg.resolved()
	if err != nil {
		return nil, err
	}
	log := c.Logger
	ua, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", addr, err)
	}
	udp, err := net.ListenUDP("udp", ua)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", addr, err)
	}
	tr := &quic.Transport{Conn: udp}
	ql, err := tr.Listen(serverTLS(c, log), c.quicConfig())
	if err != nil {
		tr.Close()
		udp.Close()
		return nil, fmt.Errorf("listen %s: %w", addr, err)
	}
	ctx, stop := context.WithCancel(context.Background())
	l := &Listener{
		cfg: c, log: log, udp: udp, tr: tr, ql: ql, ctx: ctx, stop: stop,
		ready: make(chan *Conn),
		slots: make(chan struct{}, maxPendingHellos),
		conns: make(map[*Conn]struct{}),
	}
	l.wg.Add(1)
	go l.acceptLoop()
	return l, nil
}

// Addr returns the local UDP address.
func (l *Listener) Addr() net.Addr { return l.udp.LocalAddr() }

// acceptLoop takes handshaken connections from quic-go and runs each one's
// hello in its own goroutine, so a slow peer does not hold up the others.
// At most maxPendingHellos run or wait for Accept; beyond that, quic-go's
// own bounded accept queue holds (and eventually refuses) newcomers.
func (l *Listener) acceptLoop() {
	defer l.wg.Done()
	for {
		select {
		case l.slots <- struct{}{}:
		case <-l.ctx.Done():
			return
		}
		qc, err := l.ql.Accept(l.ctx)
		if err != nil {
			<-l.slots
			if l.ctx.Err() == nil {
				l.log.Error("accept stopped", "err", err)
			}
			return
		}
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			defer func() { <-l.slots }()
			c, err := accept(l.ctx, qc, l.cfg)
			if err != nil {
				return // logged by accept
			}
			if !l.track(c) {
				return
			}
			select {
			case l.ready <- c:
			case <-l.ctx.Done():
				c.Close("listener closed")
			}
		}()
	}
}

// Accept returns the next connection whose hello succeeded. Connections
// that fail before that are logged and skipped. The error is ctx's, or
// net.ErrClosed once the listener is closed. The connection is served from
// the end of its hello, so the Handler may see requests on it before Accept
// returns it; the listener owns it and closes it with Close.
func (l *Listener) Accept(ctx context.Context) (*Conn, error) {
	select {
	case c := <-l.ready:
		return c, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("accept: %w", ctx.Err())
	case <-l.ctx.Done():
		return nil, fmt.Errorf("accept: %w", net.ErrClosed)
	}
}

// Dial connects to peer at addr from the listener's socket.
func (l *Listener) Dial(ctx context.Context, addr string, peer store.PeerID) (*Conn, error) {
	return l.dial(ctx, addr, peer, ALPN)
}

// DialJoin opens a pairing connection (JoinALPN) to peer at addr from the
// listener's socket.
func (l *Listener) DialJoin(ctx context.Context, addr string, peer store.PeerID) (*Conn, error) {
	return l.dial(ctx, addr, peer, JoinALPN)
}

func (l *Listener) dial(ctx context.Context, addr string, peer store.PeerID, alpn string) (*Conn, error) {
	if l.ctx.Err() != nil {
		return nil, fmt.Errorf("dial %s: %w", addr, net.ErrClosed)
	}
	ua, err := resolveUDP(ctx, addr)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", addr, err)
	}
	qc, err := l.tr.Dial(ctx, ua, clientTLS(l.cfg, peer, alpn), l.cfg.quicConfig())
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", addr, peerError(err))
	}
	c, err := dialHello(ctx, qc, l.cfg, peer, alpn, nil)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", addr, err)
	}
	if !l.track(c) {
		return nil, fmt.Errorf("dial %s: %w", addr, net.ErrClosed)
	}
	return c, nil
}

// track records an open connection so that Close can close it cleanly
// (closing the transport alone would drop connections without telling the
// peers, which would then wait for their idle timeout). It returns false,
// having closed c, once the listener is closing.
func (l *Listener) track(c *Conn) bool {
	l.mu.Lock()
	if l.closing {
		l.mu.Unlock()
		c.Close("listener closed")
		return false
	}
	l.conns[c] = struct{}{}
	l.wg.Add(1)
	l.mu.Unlock()
	go func() {
		defer l.wg.Done()
		<-c.Done()
		l.mu.Lock()
		delete(l.conns, c)
		l.mu.Unlock()
	}()
	return true
}

// Close stops accepting and closes every connection of the listener,
// accepted or dialed.
func (l *Listener) Close() error {
	l.closeOnce.Do(func() {
		l.mu.Lock()
		l.closing = true
		conns := make([]*Conn, 0, len(l.conns))
		for c := range l.conns {
			conns = append(conns, c)
		}
		l.mu.Unlock()
		l.stop()
		l.ql.Close()
		for _, c := range conns {
			c.Close("listener closed")
		}
		// Every goroutine is done before the socket goes: hellos in
		// progress end with l.ctx.
		l.wg.Wait()
		err := l.tr.Close()
		if uerr := l.udp.Close(); err == nil {
			err = uerr
		}
		if err != nil {
			l.closeErr = fmt.Errorf("close listener: %w", err)
		}
	})
	return l.closeErr
}

// Dial connects to peer at addr from a socket of its own, closed with the
// connection: for clients such as the CLI that do not listen.
func Dial(ctx context.Context, addr string, peer store.PeerID, cfg Config) (*Conn, error) {
	return dialAlone(ctx, addr, peer, cfg, ALPN)
}

// DialJoin opens a pairing connection (JoinALPN) like Dial.
func DialJoin(ctx context.Context, addr string, peer store.PeerID, cfg Config) (*Conn, error) {
	return dialAlone(ctx, addr, peer, cfg, JoinALPN)
}

func dialAlone(ctx context.Context, addr string, peer store.PeerID, cfg Config, alpn string) (*Conn, error) {
	c, err := cfg.resolved()
	if err != nil {
		return nil, err
	}
	ua, err := resolveUDP(ctx, addr)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", addr, err)
	}
	// Bind the loopback address for a loopback peer, else the wildcard of
	// the peer's family.
	local := &net.UDPAddr{}
	if ua.IP.IsLoopback() {
		local.IP = ua.IP
	}
	udp, err := net.ListenUDP("udp", local)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", addr, err)
	}
	tr := &quic.Transport{Conn: udp}
	release := func() {
		tr.Close()
		udp.Close()
	}
	qc, err := tr.Dial(ctx, ua, clientTLS(c, peer, alpn), c.quicConfig())
	if err != nil {
		release()
		return nil, fmt.Errorf("dial %s: %w", addr, peerError(err))
	}
	conn, err := dialHello(ctx, qc, c, peer, alpn, release)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", addr, err)
	}
	return conn, nil
}

// resolveUDP resolves "host:port", honouring ctx for a name lookup.
func resolveUDP(ctx context.Context, addr string) (*net.UDPAddr, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	if ap, err := netip.ParseAddrPort(addr); err == nil {
		return net.UDPAddrFromAddrPort(ap), nil
	}
	ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return nil, err
	}
	if len(ips) == 0 {
		return nil, fmt.Errorf("no address for %s", host)
	}
	p, err := net.DefaultResolver.LookupPort(ctx, "udp", port)
	if err != nil {
		return nil, err
	}
	return net.UDPAddrFromAddrPort(netip.AddrPortFrom(ips[0].Unmap(), uint16(p))), nil
}

// peerError turns a connection closed by the peer with a non-zero
// application code into a *CodeError, so that CodeOf tells why the peer hung
// up. A plain close (code 0) stays a *quic.ApplicationError.
func peerError(err error) error {
	var ae *quic.ApplicationError
	if errors.As(err, &ae) && ae.Remote && ae.ErrorCode != quic.ApplicationErrorCode(fault.OK) {
		return fmt.Errorf("closed by peer: %w", &CodeError{Code: Code(ae.ErrorCode), Msg: ae.ErrorMessage})
	}
	return err
}

// hello is the first request of the control stream, sent by the dialer.
type hello struct {
	Versions []int  `json:"versions"`
	Node     string `json:"node"`
	Name     string `json:"name"`
}

func (h *hello) Validate() error {
	if len(h.Versions) == 0 || len(h.Versions) > maxVersions {
		return fmt.Errorf("hello lists %d versions", len(h.Versions))
	}
	return validateNodeName(h.Node, h.Name)
}

// helloReply answers a hello with the version chosen.
type helloReply struct {
	Version int    `json:"version"`
	Node    string `json:"node"`
	Name    string `json:"name"`
}

func (h *helloReply) Validate() error { return validateNodeName(h.Node, h.Name) }

func validateNodeName(node, name string) error {
	if _, err := store.ParsePeerID(node); err != nil {
		return fmt.Errorf("hello node: %w", err)
	}
	if len(name) > maxNameLen || !utf8.ValidString(name) {
		return fmt.Errorf("hello name must be valid UTF-8 of at most %d bytes", maxNameLen)
	}
	return nil
}

// connPeer reads the peer's ID and the negotiated protocol off a finished
// handshake.
func connPeer(qc *quic.Conn) (store.PeerID, string, error) {
	st := qc.ConnectionState().TLS
	if len(st.PeerCertificates) != 1 {
		return store.PeerID{}, "", fmt.Errorf("%w: %d certificates", errBadCert, len(st.PeerCertificates))
	}
	id, err := PeerIDOf(st.PeerCertificates[0])
	return id, st.NegotiatedProtocol, err
}

// dialHello runs the dialer's side of the hello on a fresh connection. On
// failure the connection is closed and release (if any) is called.
func dialHello(ctx context.Context, qc *quic.Conn, cfg *Config, peer store.PeerID, alpn string, release func()) (*Conn, error) {
	fail := func(code Code, err error) (*Conn, error) {
		qc.CloseWithError(quic.ApplicationErrorCode(code), "hello failed")
		if release != nil {
			release()
		}
		return nil, err
	}
	got, proto, err := connPeer(qc)
	if err != nil {
		return fail(fault.Denied, err)
	}
	if got != peer || proto != alpn {
		return fail(fault.Denied, fmt.Errorf("%w: handshake with %s over %q, wanted %s over %q", errBadCert, got.Short(), proto, peer.Short(), alpn))
	}
	hctx, cancel := context.WithTimeout(ctx, helloTimeout)
	defer cancel()
	defer context.AfterFunc(hctx, func() {
		qc.CloseWithError(quic.ApplicationErrorCode(fault.Busy), "hello not finished in time")
	})()
	qs, err := qc.OpenStreamSync(hctx)
	if err != nil {
		return fail(fault.Internal, fmt.Errorf("open control stream: %w", peerError(err)))
	}
	deadline, _ := hctx.Deadline()
	qs.SetDeadline(deadline)
	req, _ := json.Marshal(hello{Versions: []int{protocolVersion}, Node: cfg.Identity.ID().String(), Name: cfg.Name})
	if err := WriteFrame(qs, frameRequest, appendRequest(nil, 0, opHello, req)); err != nil {
		return fail(fault.Internal, fmt.Errorf("send hello: %w", peerError(err)))
	}
	typ, body, err := ReadFrame(qs, MaxControlFrame, nil)
	if err != nil {
		return fail(fault.Invalid, fmt.Errorf("read hello reply: %w", peerError(err)))
	}
	id, code, payload, err := parseResponse(body)
	if err != nil || typ != frameResponse || id != 0 {
		return fail(fault.Invalid, fmt.Errorf("%w: hello reply is not a response to the hello", ErrBadMessage))
	}
	if code != fault.OK {
		return fail(code, fmt.Errorf("hello refused: %w", &CodeError{Code: code, Msg: truncateMsg(string(payload))}))
	}
	var rep helloReply
	if err := DecodeBody(payload, &rep); err != nil {
		return fail(fault.Invalid, fmt.Errorf("hello reply: %w", err))
	}
	if rep.Version != protocolVersion || rep.Node != peer.String() {
		return fail(fault.Invalid, fmt.Errorf("%w: hello reply for version %d from %q", ErrBadMessage, rep.Version, rep.Node))
	}
	qs.SetDeadline(time.Time{})
	return startConn(qc, qs, cfg, peer, rep.Name, alpn == JoinALPN, release), nil
}

// accept runs the acceptor's side of the hello on a fresh connection. On
// failure the reason is logged and the connection closed.
func accept(ctx context.Context, qc *quic.Conn, cfg *Config) (*Conn, error) {
	fail := func(code Code, err error) (*Conn, error) {
		cfg.Logger.Warn("connection failed", "remote", qc.RemoteAddr().String(), "err", err)
		qc.CloseWithError(quic.ApplicationErrorCode(code), "hello failed")
		return nil, err
	}
	peer, proto, err := connPeer(qc)
	if err != nil {
		return fail(fault.Denied, err)
	}
	switch proto {
	case ALPN:
		// Checked again after the handshake: the pins may have changed
		// since, and a refusal costs nothing here.
		if cfg.Allow == nil || !cfg.Allow(peer) {
			return fail(fault.Denied, fmt.Errorf("peer %s is not paired", peer))
		}
	case JoinALPN:
	default:
		return fail(fault.Unsupported, fmt.Errorf("unexpected application protocol %q", proto))
	}
	hctx, cancel := context.WithTimeout(ctx, helloTimeout)
	defer cancel()
	// Reads and writes do not watch hctx: closing the connection when it
	// ends (timeout or listener closed) unblocks them.
	defer context.AfterFunc(hctx, func() {
		qc.CloseWithError(quic.ApplicationErrorCode(fault.Busy), "hello not finished in time")
	})()
	qs, err := qc.AcceptStream(hctx)
	if err != nil {
		return fail(fault.Invalid, fmt.Errorf("peer %s: no control stream: %w", peer, peerError(err)))
	}
	deadline, _ := hctx.Deadline()
	qs.SetDeadline(deadline)
	typ, body, err := ReadFrame(qs, MaxControlFrame, nil)
	if err != nil {
		code := fault.Invalid
		if errors.Is(err, ErrFrameTooLarge) {
			code = fault.TooLarge
		}
		return fail(code, fmt.Errorf("peer %s: read hello: %w", peer, peerError(err)))
	}
	id, op, payload, err := parseRequest(body)
	if err != nil || typ != frameRequest || id != 0 || op != opHello {
		return fail(fault.Invalid, fmt.Errorf("peer %s: %w: first message is not a hello", peer, ErrBadMessage))
	}
	var h hello
	if err := DecodeBody(payload, &h); err != nil {
		return fail(fault.Invalid, fmt.Errorf("peer %s: hello: %w", peer, err))
	}
	if h.Node != peer.String() {
		return fail(fault.Invalid, fmt.Errorf("peer %s: hello names node %q", peer, h.Node))
	}
	if !slices.Contains(h.Versions, protocolVersion) {
		msg := fmt.Sprintf("no common protocol version: we speak %d, peer %v", protocolVersion, h.Versions)
		// The peer learns why: the answer is sent, then the peer gets a
		// moment to hang up itself (closing at once could discard the
		// answer still queued).
		if WriteFrame(qs, frameResponse, appendResponse(nil, 0, fault.Unsupported, []byte(msg))) == nil && qs.Close() == nil {
			t := time.NewTimer(refusalLinger)
			select {
			case <-qc.Context().Done():
			case <-hctx.Done():
			case <-t.C:
			}
			t.Stop()
		}
		return fail(fault.Unsupported, fmt.Errorf("peer %s: %s", peer, msg))
	}
	rep, _ := json.Marshal(helloReply{Version: protocolVersion, Node: cfg.Identity.ID().String(), Name: cfg.Name})
	if err := WriteFrame(qs, frameResponse, appendResponse(nil, 0, fault.OK, rep)); err != nil {
		return fail(fault.Internal, fmt.Errorf("peer %s: send hello reply: %w", peer, peerError(err)))
	}
	qs.SetDeadline(time.Time{})
	return startConn(qc, qs, cfg, peer, h.Name, proto == JoinALPN, nil), nil
}

// Conn is a connection to one peer after a successful hello: a control
// stream carrying requests both ways, plus bulk streams.
type Conn struct {
	qc       *quic.Conn
	ctrl     *quic.Stream
	cfg      *Config
	log      *slog.Logger
	peer     store.PeerID
	peerName string
	join     bool
	release  func() // frees a socket owned by the connection

	ctx    context.Context // ends with the connection; parent of handler contexts
	cancel context.CancelFunc
	done   chan struct{}

	wlock    chan struct{} // serializes control writes; a channel so waiting honours ctx
	inflight chan struct{} // incoming requests being served

	nextID  atomic.Uint64 // last request ID issued
	mu      sync.Mutex
	pending map[uint64]chan response
	err     error
	closed  bool
}

type response struct {
	code    Code
	payload []byte
}

func startConn(qc *quic.Conn, ctrl *quic.Stream, cfg *Config, peer store.PeerID, name string, join bool, release func()) *Conn {
	ctx, cancel := context.WithCancel(qc.Context())
	c := &Conn{
		qc: qc, ctrl: ctrl, cfg: cfg, peer: peer, peerName: name, join: join, release: release,
		log:      cfg.Logger.With("peer", peer.String(), "remote", qc.RemoteAddr().String()),
		ctx:      ctx,
		cancel:   cancel,
		done:     make(chan struct{}),
		wlock:    make(chan struct{}, 1),
		inflight: make(chan struct{}, maxIncomingRequests),
		pending:  make(map[uint64]chan response),
	}
	go func() {
		<-ctx.Done()
		c.shutdown(fault.OK, "", fault.E(fault.Peer, "connection to %s: %w", peer.Short(), peerError(context.Cause(qc.Context()))))
	}()
	go c.readLoop()
	go c.acceptStreams()
	return c
}

// Peer returns the peer's node ID, as proven in the TLS handshake.
func (c *Conn) Peer() store.PeerID { return c.peer }

// PeerName returns the display name the peer sent in its hello
// (unauthenticated beyond the peer's ID).
func (c *Conn) PeerName() string { return c.peerName }

// Join reports whether this is a pairing connection (JoinALPN).
func (c *Conn) Join() bool { return c.join }

// RemoteAddr returns the peer's UDP address.
func (c *Conn) RemoteAddr() net.Addr { return c.qc.RemoteAddr() }

// Done is closed when the connection is gone.
func (c *Conn) Done() <-chan struct{} { return c.done }

// Err tells why the connection ended; nil before Done is closed. A close by
// the peer with a code wraps a *CodeError; a local Close wraps
// net.ErrClosed.
func (c *Conn) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// Close closes the connection, telling the peer reason. It is idempotent.
func (c *Conn) Close(reason string) error {
	c.shutdown(fault.OK, reason, fmt.Errorf("closed locally (%s): %w", reason, net.ErrClosed))
	return nil
}

// shutdown ends the connection once: it records why, wakes every waiter,
// and closes the QUIC connection with code and reason.
func (c *Conn) shutdown(code Code, reason string, cause error) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	c.err = cause
	c.mu.Unlock()
	close(c.done)
	c.cancel()
	c.qc.CloseWithError(quic.ApplicationErrorCode(code), reason)
	if c.release != nil {
		c.release()
	}
}

// violation ends the connection because the peer broke the protocol.
func (c *Conn) violation(code Code, err error) {
	if c.ctx.Err() != nil {
		return // the error is a consequence of the connection ending
	}
	c.log.Warn("closing connection: protocol violation", "err", err)
	c.shutdown(code, "protocol violation", fault.E(fault.Peer, "protocol violation by %s: %w", c.peer.Short(), err))
}

// readLoop is the connection's only control-stream reader. It hands
// responses to the waiting Call and starts a goroutine per request.
func (c *Conn) readLoop() {
	var buf []byte
	for {
		typ, body, err := ReadFrame(c.ctrl, MaxControlFrame, buf)
		if err != nil {
			switch {
			case errors.Is(err, ErrFrameTooLarge):
				c.violation(fault.TooLarge, err)
			case errors.Is(err, io.EOF):
				c.violation(fault.Invalid, errors.New("control stream closed"))
			case errors.Is(err, io.ErrUnexpectedEOF) || errors.As(err, new(*quic.StreamError)):
				c.violation(fault.Invalid, fmt.Errorf("control stream: %w", err))
			default:
				// The connection itself ended (closed by either side, idle
				// timeout, transport closed): not the peer's fault.
				c.shutdown(fault.OK, "", fault.E(fault.Peer, "connection to %s: %w", c.peer.Short(), peerError(err)))
			}
			return
		}
		if cap(body) <= keptReadBuf {
			buf = body[:0]
		} else {
			buf = nil
		}
		switch typ {
		case frameRequest:
			id, op, payload, err := parseRequest(body)
			if err == nil && id == 0 {
				err = fmt.Errorf("%w: request ID 0 after the hello", ErrBadMessage)
			}
			if err != nil {
				c.violation(fault.Invalid, err)
				return
			}
			if !c.serveRequest(id, op, slices.Clone(payload)) {
				return
			}
		case frameResponse:
			id, code, payload, err := parseResponse(body)
			if err != nil {
				c.violation(fault.Invalid, err)
				return
			}
			c.mu.Lock()
			ch, ok := c.pending[id]
			delete(c.pending, id)
			c.mu.Unlock()
			if ok {
				ch <- response{code: code, payload: slices.Clone(payload)} // buffered: never blocks
				continue
			}
			// A late answer to a Call that gave up is normal; an ID never
			// issued is not.
			if id == 0 || id > c.nextID.Load() {
				c.violation(fault.Invalid, fmt.Errorf("%w: response to unknown request %d", ErrBadMessage, id))
				return
			}
		default:
			c.violation(fault.Invalid, fmt.Errorf("%w: frame type %d on the control stream", ErrBadMessage, typ))
			return
		}
	}
}

// serveRequest serves one incoming request in its own goroutine, or answers
// fault.Peer when maxIncomingRequests are already being served (to the
// caller, this node is the peer that could not answer: fault.Busy is about
// its own catalog). It returns false once the connection is gone.
func (c *Conn) serveRequest(id uint64, op Op, body []byte) bool {
	select {
	case c.inflight <- struct{}{}:
	default:
		return c.respond(id, fault.Peer, []byte("too many concurrent requests")) == nil
	}
	go func() {
		defer func() { <-c.inflight }()
		code, payload := c.runHandler(op, body)
		c.respond(id, code, payload)
	}()
	return true
}

// runHandler calls the Handler and encodes its answer. A panic becomes
// fault.Internal: one bad request must not take the node down.
func (c *Conn) runHandler(op Op, body []byte) (code Code, payload []byte) {
	if op == opHello {
		return fault.Invalid, []byte("hello after the hello")
	}
	if c.cfg.Handler == nil {
		return fault.Unsupported, []byte("this node serves no requests")
	}
	ctx, cancel := context.WithTimeout(c.ctx, c.cfg.CallTimeout)
	defer cancel()
	defer func() {
		if p := recover(); p != nil {
			c.log.Error("request handler panicked", "op", op, "panic", p, "stack", string(debug.Stack()))
			code, payload = fault.Internal, []byte("internal error")
		}
	}()
	resp, err := c.cfg.Handler.Serve(ctx, c, op, body)
	if err != nil {
		code, msg := CodeOf(err), err.Error()
		if errors.Is(err, context.DeadlineExceeded) && ctx.Err() != nil {
			code = fault.Peer // this node took longer than a call may
		}
		if ce, ok := err.(*CodeError); ok {
			msg = ce.Msg // the caller's *CodeError adds the "peer error" part
		}
		if code == fault.OK {
			code = fault.Internal
		}
		return code, []byte(truncateMsg(msg))
	}
	payload, err = json.Marshal(resp)
	if err != nil {
		c.log.Error("cannot encode response", "op", op, "err", err)
		return fault.Internal, []byte("cannot encode response")
	}
	if len(payload)+10 > MaxControlFrame {
		c.log.Error("response too large", "op", op, "bytes", len(payload))
		return fault.TooLarge, []byte("response too large")
	}
	return fault.OK, payload
}

func truncateMsg(s string) string {
	if len(s) <= maxErrorMsg {
		return s
	}
	s = s[:maxErrorMsg]
	for len(s) > 0 && !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s
}

func (c *Conn) respond(id uint64, code Code, payload []byte) error {
	return c.writeControl(context.Background(), controlFrame(frameResponse, appendResponse(nil, id, code, payload)))
}

// controlFrame builds a whole control frame in one slice, so that it goes
// out in one write.
func controlFrame(typ byte, body []byte) []byte {
	b := make([]byte, frameHeaderSize, frameHeaderSize+len(body))
	b[0] = typ
	b[1], b[2], b[3], b[4] = byte(len(body)>>24), byte(len(body)>>16), byte(len(body)>>8), byte(len(body))
	return append(b, body...)
}

// writeControl writes one whole frame on the control stream. Writes are
// serialized, and each has a deadline of CallTimeout so that a peer that
// stops reading cannot block anyone for longer. A failed write may have
// left half a frame on the stream, so it ends the connection.
func (c *Conn) writeControl(ctx context.Context, frame []byte) error {
	select {
	case c.wlock <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	case <-c.done:
		return c.Err()
	}
	defer func() { <-c.wlock }()
	if err := c.ctrl.SetWriteDeadline(time.Now().Add(c.cfg.CallTimeout)); err != nil {
		return err
	}
	if _, err := c.ctrl.Write(frame); err != nil {
		if c.ctx.Err() == nil {
			c.log.Warn("closing connection: control stream write failed", "err", err)
			c.shutdown(fault.Internal, "control stream write failed", fault.E(fault.Peer, "control stream to %s: %w", c.peer.Short(), err))
		}
		return c.Err()
	}
	return nil
}

// Call sends a request and waits for its response, until ctx's deadline or,
// if ctx has none, Config.CallTimeout. req is JSON-encoded; the response is
// decoded into resp (unless nil) with DecodeBody. A response with a non-zero
// code returns a *CodeError.
func (c *Conn) Call(ctx context.Context, op Op, req, resp any) error {
	if op == opHello {
		return fmt.Errorf("call: op 0 is reserved for the hello")
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.cfg.CallTimeout)
		defer cancel()
	}
	payload, err := json.Marshal(req)
	if err != nil {
		return fmt.Errorf("call op %d: %w", op, err)
	}
	if len(payload)+10 > MaxControlFrame {
		return fmt.Errorf("call op %d: request of %d bytes: %w", op, len(payload), ErrFrameTooLarge)
	}
	ch := make(chan response, 1)
	id := c.nextID.Add(1)
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return fmt.Errorf("call op %d: %w", op, c.Err())
	}
	c.pending[id] = ch
	c.mu.Unlock()
	forget := func() {
		c.mu.Lock()
		delete(c.pending, id)
		c.mu.Unlock()
	}
	if err := c.writeControl(ctx, controlFrame(frameRequest, appendRequest(nil, id, op, payload))); err != nil {
		forget()
		return fmt.Errorf("call op %d: %w", op, err)
	}
	select {
	case r := <-ch:
		if r.code != fault.OK {
			return &CodeError{Code: r.code, Msg: truncateMsg(string(r.payload))}
		}
		if resp != nil {
			if err := DecodeBody(r.payload, resp); err != nil {
				return fault.E(fault.Peer, "call op %d: bad response from %s: %w", op, c.peer.Short(), err)
			}
		}
		return nil
	case <-ctx.Done():
		forget()
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return fault.E(fault.Peer, "call op %d: no answer from %s in time: %w", op, c.peer.Short(), ctx.Err())
		}
		return fmt.Errorf("call op %d: %w", op, ctx.Err())
	case <-c.done:
		return fmt.Errorf("call op %d: %w", op, c.Err())
	}
}

// OpenStream opens a bulk stream and sends its request (op and JSON req).
// Waiting for the peer's stream credit ends with ctx or, if ctx has no
// deadline, after Config.CallTimeout.
func (c *Conn) OpenStream(ctx context.Context, op Op, req any) (*Stream, error) {
	payload, err := json.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("open stream op %d: %w", op, err)
	}
	if len(payload)+2 > MaxControlFrame {
		return nil, fmt.Errorf("open stream op %d: request of %d bytes: %w", op, len(payload), ErrFrameTooLarge)
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.cfg.CallTimeout)
		defer cancel()
	}
	qs, err := c.qc.OpenStreamSync(ctx)
	if err != nil {
		return nil, fault.E(fault.Peer, "open stream op %d to %s: %w", op, c.peer.Short(), peerError(err))
	}
	s := newStream(qs, c.cfg.CallTimeout)
	body := make([]byte, 2, 2+len(payload))
	body[0], body[1] = byte(op>>8), byte(op)
	if err := s.WriteFrame(frameStream, append(body, payload...)); err != nil {
		s.Cancel(fault.Internal)
		return nil, fmt.Errorf("open stream op %d: %w", op, err)
	}
	return s, nil
}

// acceptStreams serves the bulk streams the peer opens, each in its own
// goroutine; quic-go's stream limit (Config.MaxStreams) bounds how many.
func (c *Conn) acceptStreams() {
	for {
		qs, err := c.qc.AcceptStream(c.ctx)
		if err != nil {
			return
		}
		go c.serveStream(qs)
	}
}

func (c *Conn) serveStream(qs *quic.Stream) {
	s := newStream(qs, c.cfg.CallTimeout)
	typ, body, err := s.ReadFrame(MaxControlFrame, nil)
	var op Op
	var payload []byte
	if err == nil {
		if typ != frameStream {
			err = fmt.Errorf("%w: stream opened with frame type %d", ErrBadMessage, typ)
		} else {
			op, payload, err = parseStreamRequest(body)
		}
	}
	if err != nil {
		if c.ctx.Err() == nil {
			c.log.Warn("bad bulk stream request", "err", err)
		}
		s.Cancel(fault.Invalid)
		return
	}
	if c.cfg.Handler == nil {
		s.Cancel(fault.Unsupported)
		return
	}
	defer func() {
		if p := recover(); p != nil {
			c.log.Error("stream handler panicked", "op", op, "panic", p, "stack", string(debug.Stack()))
			s.Cancel(fault.Internal)
		}
	}()
	c.cfg.Handler.ServeStream(c.ctx, c, op, payload, s)
	// Close our side and stop reading: the stream is then complete and its
	// credit returns to the peer.
	qs.Close()
	qs.CancelRead(quic.StreamErrorCode(fault.OK))
}
