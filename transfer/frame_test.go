package transfer

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/loftstore/loft/fault"
)

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

func TestFrameRoundTrip(t *testing.T) {
	var b bytes.Buffer
	big := bytes.Repeat([]byte{7}, 300<<10)
	for _, body := range [][]byte{nil, []byte("x"), big} {
		if err := WriteFrame(&b, 4, body); err != nil {
			t.Fatal(err)
		}
	}
	buf := make([]byte, 0, 16)
	for _, want := range [][]byte{nil, []byte("x"), big} {
		typ, got, err := ReadFrame(&b, MaxDataFrame, buf)
		if err != nil || typ != 4 || !bytes.Equal(got, want) {
			t.Fatalf("frame of %d bytes: type %d, %d bytes: %v", len(want), typ, len(got), err)
		}
	}
	if _, _, err := ReadFrame(&b, MaxDataFrame, nil); err != io.EOF {
		t.Fatalf("end: %v", err)
	}
	// A large enough buffer is reused.
	WriteFrame(&b, 1, []byte("abc"))
	buf = make([]byte, 0, 8)
	_, got, _ := ReadFrame(&b, 8, buf)
	if &got[0] != &buf[:1][0] {
		t.Fatal("buffer not reused")
	}
}

func TestReadFrameLimits(t *testing.T) {
	// Over the cap: an error before any of the body is read.
	var b bytes.Buffer
	WriteFrame(&b, 1, make([]byte, 101))
	cr := &countingReader{r: &b}
	if _, _, err := ReadFrame(cr, 100, nil); !errors.Is(err, ErrFrameTooLarge) || cr.n != frameHeaderSize {
		t.Fatalf("oversized: read %d bytes: %v", cr.n, err)
	}
	// A header announcing 4 GiB costs nothing either.
	if _, _, err := ReadFrame(bytes.NewReader([]byte{1, 0xff, 0xff, 0xff, 0xff}), MaxDataFrame, nil); !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("huge: %v", err)
	}
	// Truncations.
	for _, in := range []string{"\x01", "\x01\x00\x00\x00", "\x01\x00\x00\x00\x05", "\x01\x00\x00\x00\x05abc"} {
		if _, _, err := ReadFrame(strings.NewReader(in), 100, nil); !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Errorf("%q: %v", in, err)
		}
	}
	// A truncated large frame (the growing path).
	var big bytes.Buffer
	WriteFrame(&big, 1, make([]byte, 1<<20))
	if _, _, err := ReadFrame(io.LimitReader(&big, 700<<10), MaxDataFrame, nil); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("large truncated: %v", err)
	}
	if err := WriteFrame(io.Discard, 1, make([]byte, MaxDataFrame+1)); !errors.Is(err, ErrFrameTooLarge) {
		t.Errorf("writing an oversized frame: %v", err)
	}
}

type validated struct {
	N int `json:"n"`
}

func (v *validated) Validate() error {
	if v.N > 10 {
		return errors.New("n over 10")
	}
	return nil
}

func TestDecodeBody(t *testing.T) {
	var v validated
	if err := DecodeBody([]byte(` {"n": 3, "future": true} `), &v); err != nil || v.N != 3 {
		t.Fatalf("good body: %+v %v", v, err)
	}
	for _, in := range []string{``, `{`, `{"n": 3} {}`, `{"n": 3}x`, `{"n": "a"}`, `{"n": 11}`} {
		if err := DecodeBody([]byte(in), &v); !errors.Is(err, ErrBadMessage) {
			t.Errorf("%q: %v", in, err)
		}
	}
}

func TestCodes(t *testing.T) {
	if CodeOf(nil) != fault.OK || CodeOf(errors.New("x")) != fault.Internal {
		t.Fatal("CodeOf of plain errors")
	}
	err := Errorf(fault.NoSpace, "disk %s full", "a")
	wrapped := errors.Join(errors.New("ctx"), err)
	if CodeOf(wrapped) != fault.NoSpace || err.Error() != "disk a full" || !errors.Is(wrapped, fault.NoSpace) {
		t.Fatalf("%v", err)
	}
}
