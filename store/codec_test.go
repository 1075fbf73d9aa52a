package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/klauspost/compress/zstd"
)

func newTestCodecs(t testing.TB, n int) *Codecs {
	t.Helper()
	c, err := NewCodecs(n)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func header(codec byte, reserved [3]byte, plainSize uint32) []byte {
	h := []byte(magic)
	h = append(h, codec)
	h = append(h, reserved[:]...)
	return binary.LittleEndian.AppendUint32(h, plainSize)
}

func TestCodecRoundTrip(t *testing.T) {
	c := newTestCodecs(t, 0)
	text := bytes.Repeat([]byte("loft stores chunks of backups. "), 2000)
	for _, tc := range []struct {
		name  string
		plain []byte
		codec Codec
	}{
		{"nil", nil, CodecPlain},
		{"empty", []byte{}, CodecPlain},
		{"one byte", []byte{7}, CodecPlain},
		{"small text", []byte("hello, hello, hello, hello"), CodecPlain},
		{"127 zeros", make([]byte, 127), CodecPlain}, // too short to try
		{"128 zeros", make([]byte, 128), CodecZstd},
		{"random 100", randomBytes(20, 100), CodecPlain},
		{"random 3000", randomBytes(21, 3000), CodecPlain},
		{"random 64K", randomBytes(22, 64<<10), CodecPlain},
		{"random 1M", randomBytes(23, 1<<20), CodecPlain},
		{"zeros 64K", make([]byte, 64<<10), CodecZstd},
		{"zeros 1M", make([]byte, 1<<20), CodecZstd},
		{"text", text, CodecZstd},
		{"zeros max", make([]byte, MaxChunkSize), CodecZstd},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stored, codec := c.Encode(nil, tc.plain)
			if codec != tc.codec {
				t.Fatalf("codec %v, want %v", codec, tc.codec)
			}
			h, err := ParseHeader(stored)
			if err != nil {
				t.Fatal(err)
			}
			if h.Codec != codec || h.PlainSize != len(tc.plain) {
				t.Fatalf("header %+v, want codec %v, size %d", h, codec, len(tc.plain))
			}
			switch codec {
			case CodecPlain:
				if len(stored) != len(tc.plain)+headerSize {
					t.Fatalf("plain chunk stored in %d bytes, want %d", len(stored), len(tc.plain)+headerSize)
				}
				if !bytes.Equal(stored[headerSize:], tc.plain) {
					t.Fatal("plain payload is not the plain bytes")
				}
			case CodecZstd:
				if len(stored) >= len(tc.plain) {
					t.Fatalf("compressible %d bytes stored in %d", len(tc.plain), len(stored))
				}
			}
			got, err := c.Decode(nil, stored)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, tc.plain) {
				t.Fatalf("decoded %d bytes differ from the %d encoded", len(got), len(tc.plain))
			}
		})
	}
}

func TestCodecBuffers(t *testing.T) {
	c := newTestCodecs(t, 1)
	zeros := make([]byte, 10000)
	random := randomBytes(24, 10000)

	// Encode and Decode write to dst[:0], whatever dst held before.
	dst := bytes.Repeat([]byte{0xEE}, 50000)
	stored, codec := c.Encode(dst, random)
	if codec != CodecPlain || !bytes.Equal(stored[headerSize:], random) {
		t.Fatal("Encode into a used buffer")
	}
	if &stored[0] != &dst[0] {
		t.Fatal("Encode did not reuse a large enough dst")
	}
	storedZ, codec := c.Encode(nil, zeros)
	if codec != CodecZstd {
		t.Fatalf("codec %v", codec)
	}
	for _, s := range [][]byte{append([]byte(nil), stored...), storedZ} {
		buf := bytes.Repeat([]byte{0xEE}, 20000)
		got, err := c.Decode(buf, s)
		if err != nil {
			t.Fatal(err)
		}
		h, _ := ParseHeader(s)
		if len(got) != h.PlainSize {
			t.Fatalf("decoded %d bytes, want %d", len(got), h.PlainSize)
		}
		if &got[0] != &buf[0] {
			t.Fatalf("Decode of %v did not reuse a large enough buffer", h.Codec)
		}
		// A buffer too small is replaced, not overrun.
		small := make([]byte, 10)
		got2, err := c.Decode(small, s)
		if err != nil || !bytes.Equal(got2, got) {
			t.Fatalf("decode into a small buffer: %v", err)
		}
	}
}

func TestEncodeParts(t *testing.T) {
	c := newTestCodecs(t, 1)
	random := randomBytes(25, 10000)
	zeros := make([]byte, 10000)

	hdr, payload, codec := c.EncodeParts(nil, random)
	if codec != CodecPlain {
		t.Fatalf("random data: codec %v", codec)
	}
	if len(payload) != len(random) || &payload[0] != &random[0] {
		t.Fatal("EncodeParts copied incompressible data instead of returning it")
	}
	if h, err := ParseHeader(hdr[:]); err != nil || h.Codec != CodecPlain || h.PlainSize != len(random) {
		t.Fatalf("header %+v, %v", h, err)
	}

	buf := make([]byte, 0, 20000)
	hdr, payload, codec = c.EncodeParts(buf, zeros)
	if codec != CodecZstd {
		t.Fatalf("zeros: codec %v", codec)
	}
	if len(payload) >= len(zeros) || &payload[:1][0] != &buf[:1][0] {
		t.Fatal("compressed payload does not live in the buffer passed in")
	}
	if h, err := ParseHeader(hdr[:]); err != nil || h.Codec != CodecZstd || h.PlainSize != len(zeros) {
		t.Fatalf("header %+v, %v", h, err)
	}
	// Header and payload together are the stored form Encode returns.
	stored := append(hdr[:], payload...)
	if got, err := c.Decode(nil, stored); err != nil || !bytes.Equal(got, zeros) {
		t.Fatalf("decode of header+payload: %v", err)
	}
	if enc, _ := c.Encode(nil, zeros); !bytes.Equal(enc, stored) {
		t.Fatal("Encode and EncodeParts disagree")
	}
	// A buffer too small is replaced.
	hdr, payload, _ = c.EncodeParts(make([]byte, 0, 3), zeros)
	if got, err := c.Decode(nil, append(hdr[:], payload...)); err != nil || !bytes.Equal(got, zeros) {
		t.Fatalf("decode after EncodeParts into a small buffer: %v", err)
	}
}

func TestEncodeReusedBuffer(t *testing.T) {
	c := newTestCodecs(t, 1)
	plain := bytes.Repeat([]byte("compressible text "), 500)
	dst := make([]byte, 0, 64<<10)
	stored, codec := c.Encode(dst, plain)
	if codec != CodecZstd {
		t.Fatalf("codec %v", codec)
	}
	got, err := c.Decode(nil, stored)
	if err != nil {
		t.Fatalf("decode of what Encode wrote into a reused buffer: %v", err)
	}
	if !bytes.Equal(got, plain) {
		t.Fatal("round trip through a reused buffer changed the data")
	}
}

func TestParseHeaderRejects(t *testing.T) {
	valid := header(byte(CodecPlain), [3]byte{}, 5)
	for name, in := range map[string][]byte{
		"nil":           nil,
		"short":         valid[:headerSize-1],
		"magic only":    []byte(magic),
		"bad magic":     append([]byte("lfc2"), valid[4:]...),
		"zstd magic":    append([]byte{0x28, 0xb5, 0x2f, 0xfd}, valid[4:]...),
		"reserved 5":    header(0, [3]byte{1, 0, 0}, 5),
		"reserved 6":    header(0, [3]byte{0, 0x80, 0}, 5),
		"reserved 7":    header(1, [3]byte{0, 0, 0xff}, 5),
		"codec 2":       header(2, [3]byte{}, 5),
		"codec 255":     header(255, [3]byte{}, 5),
		"size over max": header(0, [3]byte{}, MaxChunkSize+1),
		"size max u32":  header(1, [3]byte{}, 0xffffffff),
	} {
		t.Run(name, func(t *testing.T) {
			h, err := ParseHeader(in)
			if !errors.Is(err, ErrFormat) {
				t.Fatalf("ParseHeader = %+v, %v; want ErrFormat", h, err)
			}
			c := newTestCodecs(t, 1)
			if out, err := c.Decode(nil, append(in, make([]byte, 5)...)); !errors.Is(err, ErrFormat) || out != nil {
				t.Fatalf("Decode = %d bytes, %v; want ErrFormat", len(out), err)
			}
		})
	}
	for _, size := range []uint32{0, 1, MaxChunkSize} {
		for _, codec := range []Codec{CodecPlain, CodecZstd} {
			h, err := ParseHeader(header(byte(codec), [3]byte{}, size))
			if err != nil || h.Codec != codec || h.PlainSize != int(size) {
				t.Fatalf("ParseHeader(%v, %d) = %+v, %v", codec, size, h, err)
			}
		}
	}
}

func TestDecodeRejects(t *testing.T) {
	c := newTestCodecs(t, 1)
	plain := []byte("0123456789")
	compressible := bytes.Repeat([]byte("abcdefgh"), 4096)
	z, codec := c.Encode(nil, compressible)
	if codec != CodecZstd {
		t.Fatalf("test data not compressed: %v", codec)
	}
	withSize := func(stored []byte, n int) []byte {
		s := append([]byte(nil), stored...)
		binary.LittleEndian.PutUint32(s[8:12], uint32(n))
		return s
	}
	// A frame without a content size in its header, as a streaming encoder
	// writes it: the decoder cannot refuse it up front.
	var streamed bytes.Buffer
	zw, err := zstd.NewWriter(&streamed, zstd.WithEncoderCRC(false))
	if err != nil {
		t.Fatal(err)
	}
	zw.Write(compressible)
	zw.Close()
	noFCS := append(header(byte(CodecZstd), [3]byte{}, uint32(len(compressible))), streamed.Bytes()...)
	if got, err := c.Decode(nil, noFCS); err != nil || !bytes.Equal(got, compressible) {
		t.Fatalf("streamed frame with the right size: %v", err)
	}

	cases := map[string][]byte{
		"plain payload short":     append(header(0, [3]byte{}, 11), plain...),
		"plain payload long":      append(header(0, [3]byte{}, 9), plain...),
		"plain no payload":        header(0, [3]byte{}, 1),
		"zstd size smaller":       withSize(z, len(compressible)-1),
		"zstd size larger":        withSize(z, len(compressible)+1),
		"zstd size zero":          withSize(z, 0),
		"zstd size max":           withSize(z, MaxChunkSize),
		"streamed size smaller":   withSize(noFCS, len(compressible)-1),
		"streamed size larger":    withSize(noFCS, len(compressible)+1),
		"zstd payload is garbage": append(header(1, [3]byte{}, 10), plain...),
		"zstd frame and garbage":  append(append([]byte(nil), z...), 1, 2, 3),
		"zstd frame twice":        append(append([]byte(nil), z...), z[headerSize:]...),
	}
	for _, cut := range []int{headerSize + 1, headerSize + 4, headerSize + 6, len(z) / 2, len(z) - 1} {
		cases[fmt.Sprintf("zstd truncated to %d", cut)] = z[:cut:cut]
	}
	for name, in := range cases {
		t.Run(name, func(t *testing.T) {
			out, err := c.Decode(nil, in)
			if err == nil {
				t.Fatalf("Decode accepted it: %d bytes", len(out))
			}
			if !errors.Is(err, ErrFormat) {
				t.Fatalf("error %v is not ErrFormat", err)
			}
		})
	}
}

func TestCodecString(t *testing.T) {
	for c, want := range map[Codec]string{CodecPlain: "plain", CodecZstd: "zstd", 7: "codec(7)"} {
		if got := c.String(); got != want {
			t.Errorf("Codec(%d).String() = %q, want %q", uint8(c), got, want)
		}
	}
}

// TestCodecFormatPinned pins the header layout of the on-disk format.
func TestCodecFormatPinned(t *testing.T) {
	c := newTestCodecs(t, 1)
	stored, _ := c.Encode(nil, []byte("abc"))
	want := []byte{'l', 'f', 'c', '1', 0, 0, 0, 0, 3, 0, 0, 0, 'a', 'b', 'c'}
	if !bytes.Equal(stored, want) {
		t.Fatalf("Encode(abc) = %x, want %x", stored, want)
	}
	stored, _ = c.Encode(nil, make([]byte, 0x10203))
	if !bytes.Equal(stored[:12], []byte{'l', 'f', 'c', '1', 1, 0, 0, 0, 0x03, 0x02, 0x01, 0}) {
		t.Fatalf("zstd header = %x", stored[:12])
	}
	// The payload is a standard zstd frame any decoder reads.
	d, err := zstd.NewReader(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	plain, err := d.DecodeAll(stored[12:], nil)
	if err != nil || !bytes.Equal(plain, make([]byte, 0x10203)) {
		t.Fatalf("payload is not a plain zstd frame: %v", err)
	}
}

func TestCodecsConcurrent(t *testing.T) {
	c := newTestCodecs(t, 2) // fewer encoders than goroutines: they must queue
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var dst, buf []byte // reused, as Disk does with its buffers
			for i := 0; i < 20; i++ {
				var plain []byte
				if (g+i)%2 == 0 {
					plain = randomBytes(uint64(100*g+i), 5000+i*100)
				} else {
					plain = bytes.Repeat([]byte(fmt.Sprintf("goroutine %d round %d ", g, i)), 300)
				}
				var err error
				hdr, payload, _ := c.EncodeParts(dst, plain)
				if cap(payload) > cap(dst) {
					dst = payload[:0]
				}
				stored := append(hdr[:], payload...)
				buf, err = c.Decode(buf, stored)
				if err != nil {
					errs <- err
					return
				}
				if !bytes.Equal(buf, plain) {
					errs <- fmt.Errorf("goroutine %d round %d: round trip differs", g, i)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func FuzzDecode(f *testing.F) {
	c, err := NewCodecs(1)
	if err != nil {
		f.Fatal(err)
	}
	defer c.Close()
	for _, plain := range [][]byte{
		nil,
		[]byte("hello"),
		make([]byte, 1000),
		bytes.Repeat([]byte("loft "), 500),
		randomBytes(30, 500),
	} {
		stored, _ := c.Encode(nil, plain)
		f.Add(append([]byte(nil), stored...))
	}
	f.Add(header(1, [3]byte{}, 0))
	f.Add(header(0, [3]byte{}, MaxChunkSize))
	f.Fuzz(func(t *testing.T, stored []byte) {
		out, err := c.Decode(nil, stored)
		if err != nil {
			if !errors.Is(err, ErrFormat) {
				t.Fatalf("error %v is not ErrFormat", err)
			}
			if out != nil {
				t.Fatalf("Decode returned %d bytes with an error", len(out))
			}
			return
		}
		h, err := ParseHeader(stored)
		if err != nil {
			t.Fatalf("Decode accepted what ParseHeader refuses: %v", err)
		}
		if len(out) != h.PlainSize || len(out) > MaxChunkSize {
			t.Fatalf("decoded %d bytes, header says %d (limit %d)", len(out), h.PlainSize, MaxChunkSize)
		}
		if h.Codec == CodecPlain && !bytes.Equal(out, stored[headerSize:]) {
			t.Fatal("plain chunk decoded to something other than its payload")
		}
		// Decoding into a used buffer gives the same bytes.
		again, err := c.Decode(bytes.Repeat([]byte{0xEE}, 64), stored)
		if err != nil || !bytes.Equal(again, out) {
			t.Fatalf("second decode: %v", err)
		}
		// What decodes, re-encodes to something that decodes the same.
		re, _ := c.Encode(nil, out)
		back, err := c.Decode(nil, re)
		if err != nil || !bytes.Equal(back, out) {
			t.Fatalf("re-encoding: %v", err)
		}
	})
}
