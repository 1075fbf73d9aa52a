package transfer

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/loftstore/loft/fault"
	"github.com/loftstore/loft/store"
)

// A frame is one type byte, a 4-byte big-endian body length, then the body.
// Every reader states the largest body it accepts, so a peer can never make
// loft allocate more than that cap.
const frameHeaderSize = 5

// MaxControlFrame caps one control-stream message (request or response) and
// the request frame that opens a bulk stream.
const MaxControlFrame = 1 << 20

// MaxDataFrame caps one frame on a bulk stream: a whole chunk plus room for
// its header.
const MaxDataFrame = store.MaxChunkSize + 4096

// Frame types of the control stream and of a bulk stream's opening frame.
// Bulk streams carry further frames whose types are chosen by the caller
// (messages.go).
const (
	frameRequest  byte = 1 // 8-byte request ID, 2-byte op, JSON
	frameResponse byte = 2 // 8-byte request ID, 2-byte code, JSON or error message
	frameStream   byte = 3 // 2-byte op, JSON: the first frame of a bulk stream
)

// readChunk is how much of a frame body ReadFrame allocates ahead of the
// bytes actually received, so that a header announcing a large frame costs
// the receiver nothing until the data arrives.
const readChunk = 64 << 10

var (
	// ErrFrameTooLarge reports a frame whose announced length is above the
	// reader's cap (or, when writing, above MaxDataFrame).
	ErrFrameTooLarge = fault.New(fault.TooLarge, "frame too large")
	// ErrBadMessage reports a message that does not decode or validate.
	ErrBadMessage = fault.New(fault.Invalid, "bad message")
)

// WriteFrame writes one frame. Bodies above MaxDataFrame are refused with
// ErrFrameTooLarge since no reader would accept them.
func WriteFrame(w io.Writer, typ byte, body []byte) error {
	if len(body) > MaxDataFrame {
		return fmt.Errorf("write frame of %d bytes: %w", len(body), ErrFrameTooLarge)
	}
	var hdr [frameHeaderSize]byte
	hdr[0] = typ
	binary.BigEndian.PutUint32(hdr[1:], uint32(len(body)))
	if len(body) <= 4096 {
		// One write for small frames: fewer stream frames on the wire.
		b := make([]byte, 0, frameHeaderSize+len(body))
		b = append(append(b, hdr[:]...), body...)
		if _, err := w.Write(b); err != nil {
			return fmt.Errorf("write frame: %w", err)
		}
		return nil
	}
	if _, err := w.Write(hdr[:]); err != nil {
		return fmt.Errorf("write frame: %w", err)
	}
	if _, err := w.Write(body); err != nil {
		return fmt.Errorf("write frame: %w", err)
	}
	return nil
}

// ReadFrame reads one frame. The body lives in buf when buf has the capacity,
// otherwise in a new slice that grows with the bytes received (never more
// than about twice what arrived). A length above max is ErrFrameTooLarge,
// reported before any of the body is read. A clean end of stream before the
// first header byte is io.EOF; any other truncation is io.ErrUnexpectedEOF.
func ReadFrame(r io.Reader, max int, buf []byte) (typ byte, body []byte, err error) {
	var hdr [frameHeaderSize]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		if errors.Is(err, io.EOF) {
			return 0, nil, io.EOF
		}
		return 0, nil, fmt.Errorf("read frame header: %w", err)
	}
	n := int64(binary.BigEndian.Uint32(hdr[1:]))
	if n > int64(max) {
		return 0, nil, fmt.Errorf("frame of %d bytes, limit %d: %w", n, max, ErrFrameTooLarge)
	}
	size := int(n)
	if cap(buf) >= size {
		body = buf[:size]
		if _, err := io.ReadFull(r, body); err != nil {
			return 0, nil, truncated(err)
		}
		return hdr[0], body, nil
	}
	body = make([]byte, 0, min(size, readChunk))
	for len(body) < size {
		if len(body) == cap(body) {
			grown := make([]byte, len(body), min(size, 2*cap(body)))
			copy(grown, body)
			body = grown
		}
		m, err := io.ReadFull(r, body[len(body):cap(body)])
		body = body[:len(body)+m]
		if err != nil {
			return 0, nil, truncated(err)
		}
	}
	return hdr[0], body, nil
}

// truncated maps the end of the stream inside a frame body to
// io.ErrUnexpectedEOF: a frame whose header arrived is never a clean end.
func truncated(err error) error {
	if errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	return fmt.Errorf("read frame body: %w", err)
}

// DecodeBody decodes a JSON body into v. Unknown fields are ignored (newer
// peers may add some), but anything after the JSON value is refused. When v
// has a Validate method it is called, so that every message's caps (list
// lengths, string sizes) are enforced in one place. Failures wrap
// ErrBadMessage.
func DecodeBody(body []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%w: %w", ErrBadMessage, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return fmt.Errorf("%w: trailing data after the JSON value", ErrBadMessage)
	}
	if val, ok := v.(interface{ Validate() error }); ok {
		if err := val.Validate(); err != nil {
			return fmt.Errorf("%w: %w", ErrBadMessage, err)
		}
	}
	return nil
}

// appendRequest encodes a control request frame body.
func appendRequest(b []byte, id uint64, op Op, payload []byte) []byte {
	b = binary.BigEndian.AppendUint64(b, id)
	b = binary.BigEndian.AppendUint16(b, uint16(op))
	return append(b, payload...)
}

// appendResponse encodes a control response frame body.
func appendResponse(b []byte, id uint64, code Code, payload []byte) []byte {
	b = binary.BigEndian.AppendUint64(b, id)
	b = binary.BigEndian.AppendUint16(b, uint16(code))
	return append(b, payload...)
}

// parseRequest splits a request frame body. payload aliases body.
func parseRequest(body []byte) (id uint64, op Op, payload []byte, err error) {
	if len(body) < 10 {
		return 0, 0, nil, fmt.Errorf("%w: request of %d bytes", ErrBadMessage, len(body))
	}
	return binary.BigEndian.Uint64(body), Op(binary.BigEndian.Uint16(body[8:])), body[10:], nil
}

// parseResponse splits a response frame body. payload aliases body.
func parseResponse(body []byte) (id uint64, code Code, payload []byte, err error) {
	if len(body) < 10 {
		return 0, 0, nil, fmt.Errorf("%w: response of %d bytes", ErrBadMessage, len(body))
	}
	return binary.BigEndian.Uint64(body), Code(binary.BigEndian.Uint16(body[8:])), body[10:], nil
}

// parseStreamRequest splits the opening frame body of a bulk stream.
func parseStreamRequest(body []byte) (op Op, payload []byte, err error) {
	if len(body) < 2 {
		return 0, nil, fmt.Errorf("%w: stream request of %d bytes", ErrBadMessage, len(body))
	}
	return Op(binary.BigEndian.Uint16(body)), body[2:], nil
}

// Stream is a bulk stream: raw frames in both directions. One goroutine may
// read while another writes; two concurrent readers (or writers) are not
// allowed.
//
// Deadlines: after SetDeadline(t) with a non-zero t, every ReadFrame and
// WriteFrame fails once t has passed. Without one (or after
// SetDeadline(time.Time{})), each ReadFrame and WriteFrame gets its own
// deadline of Config.CallTimeout from its start, so a stalled peer never
// blocks a goroutine forever.
//
// The opener ends a stream either by CloseWrite and reading until io.EOF, or
// by Cancel. A Cancel by the peer shows up in ReadFrame and WriteFrame as a
// *CodeError with the peer's code.
type Stream struct {
	qs          *quic.Stream
	callTimeout time.Duration

	mu       sync.Mutex
	deadline time.Time
}

func newStream(qs *quic.Stream, callTimeout time.Duration) *Stream {
	return &Stream{qs: qs, callTimeout: callTimeout}
}

func (s *Stream) opDeadline() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.deadline.IsZero() {
		return s.deadline
	}
	return time.Now().Add(s.callTimeout)
}

// SetDeadline sets the deadline of all later reads and writes; the zero time
// restores the default per-frame deadline.
func (s *Stream) SetDeadline(t time.Time) error {
	s.mu.Lock()
	s.deadline = t
	s.mu.Unlock()
	// Also applied to the stream right away, so that a read or write
	// already blocked sees a shortened deadline.
	if t.IsZero() {
		return nil
	}
	if err := s.qs.SetDeadline(t); err != nil {
		return fmt.Errorf("set stream deadline: %w", err)
	}
	return nil
}

// WriteFrame writes one frame (body at most MaxDataFrame).
func (s *Stream) WriteFrame(typ byte, body []byte) error {
	if err := s.qs.SetWriteDeadline(s.opDeadline()); err != nil {
		return fmt.Errorf("write frame: %w", err)
	}
	return streamError(WriteFrame(s.qs, typ, body))
}

// ReadFrame reads one frame of at most max body bytes, reusing buf when it
// is large enough (see the package-level ReadFrame). io.EOF means the peer
// half-closed the stream after a whole frame.
func (s *Stream) ReadFrame(max int, buf []byte) (byte, []byte, error) {
	if err := s.qs.SetReadDeadline(s.opDeadline()); err != nil {
		return 0, nil, fmt.Errorf("read frame: %w", err)
	}
	typ, body, err := ReadFrame(s.qs, max, buf)
	if err != nil && !errors.Is(err, io.EOF) {
		return 0, nil, streamError(err)
	}
	return typ, body, err
}

// CloseWrite half-closes the stream: the peer's ReadFrame sees io.EOF after
// the frames already written. Reading stays possible.
func (s *Stream) CloseWrite() error {
	if err := s.qs.Close(); err != nil {
		return fmt.Errorf("close stream: %w", err)
	}
	return nil
}

// Cancel aborts both directions; the peer sees a *CodeError with code.
// Data not yet delivered is discarded.
func (s *Stream) Cancel(code Code) {
	s.qs.CancelRead(quic.StreamErrorCode(code))
	s.qs.CancelWrite(quic.StreamErrorCode(code))
}

// streamError turns a cancellation by the peer with a non-zero code into a
// *CodeError carrying that code, so callers can use CodeOf. A frame over the
// cap or malformed keeps its own kind; the stream's transport failing (a
// deadline, the connection lost, a stop with code 0) is of kind fault.Peer.
func streamError(err error) error {
	var se *quic.StreamError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &se) && se.Remote && se.ErrorCode != quic.StreamErrorCode(fault.OK):
		return fmt.Errorf("stream cancelled by peer: %w", &CodeError{Code: Code(se.ErrorCode), Msg: "stream cancelled"})
	case errors.Is(err, ErrFrameTooLarge), errors.Is(err, ErrBadMessage):
		return err
	}
	return fault.E(fault.Peer, "stream: %w", err)
}
