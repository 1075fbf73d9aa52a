package store

import (
	"encoding/binary"
	"fmt"
	"runtime"

	"github.com/klauspost/compress"
	"github.com/klauspost/compress/zstd"
	"github.com/loftstore/loft/fault"
)

// On-disk chunk format, version 1:
//
//	offset size  field
//	0      4     magic "lfc1"
//	4      1     codec: 0 plain, 1 zstd
//	5      3     reserved, zero
//	8      4     plain length, little endian
//	12     ...   payload: the plain bytes, or one zstd frame
//
// The header lets the format evolve (a new magic or codec) and lets a reader
// size its buffer and reject absurd lengths before decompressing.
const (
	headerSize = 12
	magic      = "lfc1"
)

// Codec says how a chunk's payload is encoded.
type Codec uint8

const (
	CodecPlain Codec = 0
	CodecZstd  Codec = 1
)

func (c Codec) String() string {
	switch c {
	case CodecPlain:
		return "plain"
	case CodecZstd:
		return "zstd"
	}
	return fmt.Sprintf("codec(%d)", uint8(c))
}

// ErrFormat marks bytes that are not a chunk of a format this loft reads.
var ErrFormat = fault.New(fault.Integrity, "bad chunk format")

// Codecs encodes and decodes chunk files. It is safe for concurrent use.
type Codecs struct {
	enc *zstd.Encoder
	dec *zstd.Decoder
}

// NewCodecs returns encoders and decoders sized for n concurrent callers
// (runtime.GOMAXPROCS when n <= 0).
func NewCodecs(n int) (*Codecs, error) {
	if n <= 0 {
		n = runtime.GOMAXPROCS(0)
	}
	enc, err := zstd.NewWriter(nil,
		zstd.WithEncoderLevel(zstd.SpeedFastest),
		zstd.WithEncoderConcurrency(n),
		zstd.WithEncoderCRC(false), // the chunk ID already covers the content
		zstd.WithLowerEncoderMem(true),
		zstd.WithWindowSize(1<<20))
	if err != nil {
		return nil, fmt.Errorf("zstd encoder: %w", err)
	}
	dec, err := zstd.NewReader(nil,
		zstd.WithDecoderConcurrency(n),
		zstd.WithDecoderMaxMemory(MaxChunkSize),
		zstd.WithDecodeAllCapLimit(true),
		zstd.WithDecoderLowmem(true))
	if err != nil {
		enc.Close()
		return nil, fmt.Errorf("zstd decoder: %w", err)
	}
	return &Codecs{enc: enc, dec: dec}, nil
}

// Close releases the encoders and decoders.
func (c *Codecs) Close() {
	c.enc.Close()
	c.dec.Close()
}

// sampleSize is how much of a chunk the compressibility estimate looks at,
// taken from three places. Incompressible data then costs a few microseconds
// per chunk instead of a full compression attempt.
const sampleSize = 3 * 1024

// worthTrying reports whether compressing plain might save space.
func worthTrying(plain []byte) bool {
	if len(plain) < 128 {
		return false
	}
	if len(plain) <= sampleSize {
		return compress.Estimate(plain) > 0.05
	}
	third := sampleSize / 3
	mid := len(plain)/2 - third/2
	var s [sampleSize]byte
	copy(s[:third], plain[:third])
	copy(s[third:2*third], plain[mid:mid+third])
	copy(s[2*third:], plain[len(plain)-third:])
	return compress.Estimate(s[:]) > 0.05
}

// Encode appends the stored form of plain to dst[:0] and returns it with the
// codec chosen: zstd when it saves at least 1/32 of the size, else plain.
func (c *Codecs) Encode(dst, plain []byte) ([]byte, Codec) {
	out := appendHeader(dst[:0], CodecPlain, len(plain))
	if z, ok := c.compress(out, plain); ok {
		z[4] = byte(CodecZstd)
		return z, CodecZstd
	}
	return append(out, plain...), CodecPlain
}

// EncodeParts is Encode without the copy of incompressible data: it returns
// the header and the payload, which is plain itself when compression does not
// pay, and otherwise lives in buf.
func (c *Codecs) EncodeParts(buf, plain []byte) (hdr [headerSize]byte, payload []byte, codec Codec) {
	codec, payload = CodecPlain, plain
	if z, ok := c.compress(buf[:0], plain); ok {
		codec, payload = CodecZstd, z
	}
	appendHeader(hdr[:0], codec, len(plain))
	return hdr, payload, codec
}

// compress appends the zstd frame of plain to dst and reports whether it
// saves at least 1/32 of the size. Chunks that look incompressible from a
// sample are not compressed at all.
func (c *Codecs) compress(dst, plain []byte) ([]byte, bool) {
	if !worthTrying(plain) {
		return dst, false
	}
	z := c.enc.EncodeAll(plain, dst)
	saved := len(plain) - (len(z) - len(dst))
	return z, saved > 0 && saved >= len(plain)/32
}

func appendHeader(dst []byte, codec Codec, n int) []byte {
	dst = append(dst, magic...)
	dst = append(dst, byte(codec), 0, 0, 0)
	return binary.LittleEndian.AppendUint32(dst, uint32(n))
}

// Header is the parsed fixed-size start of a stored chunk.
type Header struct {
	Codec     Codec
	PlainSize int
}

// ParseHeader parses and checks the header at the start of stored.
func ParseHeader(stored []byte) (Header, error) {
	if len(stored) < headerSize {
		return Header{}, fmt.Errorf("%w: %d bytes is shorter than the header", ErrFormat, len(stored))
	}
	if string(stored[:4]) != magic {
		return Header{}, fmt.Errorf("%w: unknown magic %q", ErrFormat, stored[:4])
	}
	if stored[5]|stored[6]|stored[7] != 0 {
		return Header{}, fmt.Errorf("%w: reserved header bytes are set", ErrFormat)
	}
	h := Header{Codec: Codec(stored[4]), PlainSize: int(binary.LittleEndian.Uint32(stored[8:12]))}
	if h.Codec != CodecPlain && h.Codec != CodecZstd {
		return Header{}, fmt.Errorf("%w: unknown codec %d", ErrFormat, h.Codec)
	}
	if h.PlainSize > MaxChunkSize {
		return Header{}, fmt.Errorf("%w: plain size %d is above the limit %d", ErrFormat, h.PlainSize, MaxChunkSize)
	}
	return h, nil
}

// Decode appends the plain bytes of the stored chunk to dst[:0]. It checks the
// format, not the content: callers verify the result against the chunk's ID.
func (c *Codecs) Decode(dst, stored []byte) ([]byte, error) {
	h, err := ParseHeader(stored)
	if err != nil {
		return nil, err
	}
	payload := stored[headerSize:]
	switch h.Codec {
	case CodecPlain:
		if len(payload) != h.PlainSize {
			return nil, fmt.Errorf("%w: payload is %d bytes, header says %d", ErrFormat, len(payload), h.PlainSize)
		}
		return append(dst[:0], payload...), nil
	default: // CodecZstd; ParseHeader refused the rest
		if cap(dst) < h.PlainSize {
			dst = make([]byte, 0, h.PlainSize)
		}
		out, err := c.dec.DecodeAll(payload, dst[:0:h.PlainSize])
		if err != nil {
			return nil, fmt.Errorf("%w: zstd: %v", ErrFormat, err)
		}
		if len(out) != h.PlainSize {
			return nil, fmt.Errorf("%w: decoded %d bytes, header says %d", ErrFormat, len(out), h.PlainSize)
		}
		return out, nil
	}
}
