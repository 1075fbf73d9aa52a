package store

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"
	"math/bits"

	"github.com/loftstore/loft/fault"
)

// MaxChunkSize bounds every chunk loft will ever create or accept, whatever a
// repository's parameters say. Decoders use it to refuse absurd lengths before
// allocating.
const MaxChunkSize = 16 << 20

// minWindow is the shortest chunk the chunker accepts as a minimum: the gear
// hash needs 64 bytes to depend on a full window.
const minWindow = 64

// Params are a repository's chunking parameters. They are recorded at init and
// never change afterwards: changing them would change every chunk boundary and
// defeat deduplication against existing data.
type Params struct {
	Min int `json:"min"`
	Avg int `json:"avg"`
	Max int `json:"max"`
}

// DefaultParams returns the parameters new repositories get. The README
// explains the choice; `make bench` prints the measurements behind it.
func DefaultParams() Params { return Params{Min: 256 << 10, Avg: 1 << 20, Max: 4 << 20} }

// ErrBadParams is returned for chunking parameters that cannot work.
var ErrBadParams = fault.New(fault.Invalid, "bad chunking parameters")

// Validate reports whether p can be used: Avg a power of two, and
// 64 <= Min < Avg < Max <= MaxChunkSize.
func (p Params) Validate() error {
	switch {
	case p.Min < minWindow:
		return fmt.Errorf("%w: min %d is below %d", ErrBadParams, p.Min, minWindow)
	case p.Avg&(p.Avg-1) != 0:
		return fmt.Errorf("%w: avg %d is not a power of two", ErrBadParams, p.Avg)
	case !(p.Min < p.Avg && p.Avg < p.Max):
		return fmt.Errorf("%w: want min < avg < max, have %d, %d, %d", ErrBadParams, p.Min, p.Avg, p.Max)
	case p.Max > MaxChunkSize:
		return fmt.Errorf("%w: max %d is above %d", ErrBadParams, p.Max, MaxChunkSize)
	}
	return nil
}

func (p Params) String() string { return fmt.Sprintf("min=%d avg=%d max=%d", p.Min, p.Avg, p.Max) }

// gear is the table of the gear rolling hash. It is part of the repository
// format: changing it changes every boundary. TestGearTable pins it.
var gear = makeGear()

func makeGear() (t [256]uint64) {
	for i := range t {
		h := sha256.Sum256([]byte(fmt.Sprintf("loft gear %d", i)))
		t[i] = binary.LittleEndian.Uint64(h[:8])
	}
	return t
}

// Chunker splits a stream into content-defined chunks with FastCDC's
// normalized chunking (level 2): below Avg a cut needs two more zero bits
// than above it, which narrows the size distribution around Avg. A cut
// depends only on the 64 bytes before it and on the chunk's start, so an
// edit disturbs the chunks around it and the boundaries after it resynchronise.
//
// A Chunker is not safe for concurrent use.
type Chunker struct {
	r     io.Reader
	p     Params
	maskS uint64 // used before Avg: harder to match
	maskL uint64 // used from Avg on: easier to match
	buf   []byte
	start int // buf[start:end] is read but not yet returned
	end   int
	err   error // sticky read error, io.EOF included
}

// NewChunker returns a chunker reading from r. p must be valid. A chunker
// made without a reader has no buffer until Reset gives it one: a put's
// readers each keep a chunker that a tree of small files never uses.
func NewChunker(r io.Reader, p Params) *Chunker {
	c := &Chunker{r: r, p: p}
	if r != nil {
		c.Reset(r, p)
	}
	return c
}

// Reset makes c read a new stream with parameters p, keeping its buffer when
// it is large enough.
func (c *Chunker) Reset(r io.Reader, p Params) { c.ResetSize(r, p, -1) }

// ResetSize is Reset for a stream expected to hold size bytes (-1:
// unknown). A small stream gets a buffer of about its size, not the window
// a large one needs, and a buffer far larger than the stream is given
// back: a tree of small files then keeps little memory live, which is what
// sets how often the collector runs. The hint never changes the chunks: a stream
// longer than its hint grows the buffer before any cut is made.
func (c *Chunker) ResetSize(r io.Reader, p Params, size int64) {
	b := bits.TrailingZeros(uint(p.Avg))
	full := p.window()
	need := full
	if size >= 0 && size < int64(full) {
		need = min(full, int(size+1+smallBufRound-1)/smallBufRound*smallBufRound)
	}
	if cap(c.buf) < need || (cap(c.buf) > 4*need && cap(c.buf) > smallBufKeep) {
		c.buf = make([]byte, need)
	}
	*c = Chunker{r: r, p: p, maskS: topBits(b + 2), maskL: topBits(b - 2), buf: c.buf[:min(cap(c.buf), full)]}
}

const (
	// readAhead is what a full buffer holds beyond the Max bytes a cut may
	// look at. Each refill moves the unread rest (up to Max) to the front,
	// so a smaller read-ahead means more copying per byte read, a larger one
	// more memory live per reader: 2 MiB chunked 5% slower than 4 MiB (the
	// old 2*Max) in BenchmarkChunker, 1 MiB 13%.
	readAhead = 2 << 20
	// smallBufRound is the step in which buffers for small streams are sized.
	smallBufRound = 64 << 10
	// smallBufKeep is the capacity a chunker keeps however small its streams.
	smallBufKeep = 1 << 20
)

// window is the buffer a stream longer than its hint needs: the Max bytes
// a cut may look at, and readAhead.
func (p Params) window() int { return p.Max + readAhead }

// topBits returns a mask of the n highest bits. The high bits of the gear
// hash depend on the last 64 bytes; the low ones on only the last few.
func topBits(n int) uint64 { return ^uint64(0) << (64 - n) }

// Next returns the next chunk. The slice is valid until the next call to Next
// or Reset. At the end of the stream it returns io.EOF; a read error is
// returned once the data read before it has been returned as chunks.
func (c *Chunker) Next() ([]byte, error) {
	if c.end-c.start < c.p.Max && c.err == nil {
		c.fill()
	}
	if c.start == c.end {
		return nil, c.err // fill returns only with Max bytes buffered or err set
	}
	n := c.cut(c.buf[c.start:c.end])
	chunk := c.buf[c.start : c.start+n : c.start+n]
	c.start += n
	return chunk, nil
}

func (c *Chunker) fill() {
	if c.start > 0 {
		c.end = copy(c.buf, c.buf[c.start:c.end])
		c.start = 0
	}
	for empty := 0; c.end < c.p.Max && c.err == nil; {
		if c.end == len(c.buf) {
			// Longer than its size hint: grow to the full window, so that
			// cuts are where they would be without the hint.
			c.buf = append(c.buf, make([]byte, c.p.window()-len(c.buf))...)
			c.buf = c.buf[:cap(c.buf)]
		}
		for c.end < len(c.buf) && c.err == nil {
			var n int
			n, c.err = c.r.Read(c.buf[c.end:])
			c.end += n
			if n > 0 {
				empty = 0
			} else if empty++; empty >= maxEmptyReads {
				c.err = io.ErrNoProgress // as bufio does with a reader that never delivers
			}
		}
	}
}

// maxEmptyReads is how many reads returning nothing and no error in a row
// the chunker tolerates.
const maxEmptyReads = 100

// cut returns the length of the chunk at the start of data.
func (c *Chunker) cut(data []byte) int {
	n := len(data)
	if n <= c.p.Min {
		return n
	}
	if n > c.p.Max {
		n = c.p.Max
	}
	normal := c.p.Avg
	if normal > n {
		normal = n
	}
	var fp uint64
	for i, b := range data[c.p.Min:normal] {
		fp = fp<<1 + gear[b]
		if fp&c.maskS == 0 {
			return c.p.Min + i + 1
		}
	}
	for i, b := range data[normal:n] {
		fp = fp<<1 + gear[b]
		if fp&c.maskL == 0 {
			return normal + i + 1
		}
	}
	return n
}
