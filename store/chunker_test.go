package store

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"testing"
	"testing/iotest"
)

// smallParams keep chunker tests fast while still producing many chunks.
var smallParams = Params{Min: 1 << 10, Avg: 4 << 10, Max: 16 << 10}

// chunkAll returns copies of all chunks of c and the error that ended the
// stream (io.EOF at a clean end).
func chunkAll(t testing.TB, c *Chunker, limit int) ([][]byte, error) {
	t.Helper()
	var out [][]byte
	for {
		b, err := c.Next()
		if err != nil {
			if b != nil {
				t.Fatalf("Next returned %d bytes together with error %v", len(b), err)
			}
			return out, err
		}
		if len(b) == 0 {
			t.Fatal("Next returned an empty chunk without an error")
		}
		out = append(out, append([]byte(nil), b...))
		if len(out) > limit {
			t.Fatalf("more than %d chunks: the chunker does not make progress", limit)
		}
	}
}

// chunkBytes chunks data read through r (bytes.Reader when nil) and expects
// a clean io.EOF.
func chunkBytes(t testing.TB, data []byte, p Params, wrap func(io.Reader) io.Reader) [][]byte {
	t.Helper()
	var r io.Reader = bytes.NewReader(data)
	if wrap != nil {
		r = wrap(r)
	}
	chunks, err := chunkAll(t, NewChunker(r, p), len(data)+1)
	if err != io.EOF {
		t.Fatalf("stream ended with %v, want io.EOF", err)
	}
	return chunks
}

// checkChunks asserts that chunks reassemble to data and respect p's bounds:
// every chunk but the last has Min <= len <= Max, the last 1 <= len <= Max.
func checkChunks(t testing.TB, data []byte, chunks [][]byte, p Params) {
	t.Helper()
	if got := bytes.Join(chunks, nil); !bytes.Equal(got, data) {
		t.Fatalf("reassembled %d bytes from %d chunks do not equal the %d input bytes", len(got), len(chunks), len(data))
	}
	for i, c := range chunks {
		last := i == len(chunks)-1
		switch {
		case len(c) > p.Max:
			t.Fatalf("chunk %d of %d has %d bytes, above max %d", i, len(chunks), len(c), p.Max)
		case !last && len(c) < p.Min:
			t.Fatalf("chunk %d of %d has %d bytes, below min %d", i, len(chunks), len(c), p.Min)
		case len(c) < 1:
			t.Fatalf("chunk %d of %d is empty", i, len(chunks))
		}
	}
}

func chunkLens(chunks [][]byte) []int {
	l := make([]int, len(chunks))
	for i, c := range chunks {
		l[i] = len(c)
	}
	return l
}

// streamBytes returns n pseudo-random bytes defined by SHA-256 in counter
// mode, so pinned results cannot move with a PRNG implementation.
func streamBytes(seed string, n int) []byte {
	out := make([]byte, 0, n+sha256.Size)
	var ctr [8]byte
	for i := uint64(0); len(out) < n; i++ {
		binary.LittleEndian.PutUint64(ctr[:], i)
		h := sha256.Sum256(append([]byte(seed), ctr[:]...))
		out = append(out, h[:]...)
	}
	return out[:n]
}

func TestParamsValidate(t *testing.T) {
	good := []Params{
		DefaultParams(),
		smallParams,
		{Min: 64, Avg: 128, Max: 129},
		{Min: 127, Avg: 128, Max: 129},
		{Min: 64, Avg: 128, Max: MaxChunkSize},
		{Min: 1 << 20, Avg: 8 << 20, Max: MaxChunkSize},
	}
	for _, p := range good {
		if err := p.Validate(); err != nil {
			t.Errorf("%v: %v, want valid", p, err)
		}
	}
	bad := map[string]Params{
		"zero":                 {},
		"min below window":     {Min: 63, Avg: 128, Max: 256},
		"min negative":         {Min: -1, Avg: 128, Max: 256},
		"avg not power of two": {Min: 64, Avg: 192, Max: 256},
		"avg zero":             {Min: 64, Avg: 0, Max: 256},
		"avg negative":         {Min: 64, Avg: math.MinInt, Max: 256},
		"avg equals min":       {Min: 128, Avg: 128, Max: 256},
		"avg below min":        {Min: 256, Avg: 128, Max: 512},
		"max equals avg":       {Min: 64, Avg: 128, Max: 128},
		"max below avg":        {Min: 64, Avg: 128, Max: 100},
		"max above limit":      {Min: 64, Avg: 128, Max: MaxChunkSize + 1},
		"all above limit":      {Min: 16 << 20, Avg: 32 << 20, Max: 64 << 20},
	}
	for name, p := range bad {
		t.Run(name, func(t *testing.T) {
			err := p.Validate()
			if err == nil {
				t.Fatalf("%v: valid, want an error", p)
			}
			if !errors.Is(err, ErrBadParams) {
				t.Fatalf("%v: error %v is not ErrBadParams", p, err)
			}
		})
	}
}

func TestParamsJSON(t *testing.T) {
	// The parameters are recorded in the repository; their JSON is format.
	raw, err := json.Marshal(Params{Min: 1, Avg: 2, Max: 3})
	if err != nil {
		t.Fatal(err)
	}
	if string(raw) != `{"min":1,"avg":2,"max":3}` {
		t.Fatalf("JSON = %s", raw)
	}
	if got := (Params{Min: 1, Avg: 2, Max: 3}).String(); got != "min=1 avg=2 max=3" {
		t.Fatalf("String() = %q", got)
	}
}

// TestGearTable pins the gear table, which is part of the repository format:
// a change would move every chunk boundary and defeat deduplication.
func TestGearTable(t *testing.T) {
	const want = "af9072da7cc162cc1467ff9846286bff1893bac18548aa6f32e1bfe4b0d6d865"
	h := sha256.New()
	for _, g := range gear {
		h.Write(binary.LittleEndian.AppendUint64(nil, g))
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != want {
		t.Fatalf("gear table hash = %s, want %s: the repository format changed", got, want)
	}
	seen := make(map[uint64]bool)
	for i, g := range gear {
		if seen[g] {
			t.Fatalf("gear[%d] = %#x repeats an earlier entry", i, g)
		}
		seen[g] = true
	}
}

// TestChunkerPinnedBoundaries pins the cut algorithm (masks, normalisation,
// min/max handling) on fixed input, beyond the gear table alone.
func TestChunkerPinnedBoundaries(t *testing.T) {
	data := streamBytes("loft boundaries", 1<<20)
	lens := chunkLens(chunkBytes(t, data, smallParams, nil))
	h := sha256.New()
	for _, l := range lens {
		h.Write(binary.LittleEndian.AppendUint32(nil, uint32(l)))
	}
	const wantSmall = "844f89c2dbc6180c81c79a6a662e226dc636484b944bd98fca41efd151c0591d"
	if got := hex.EncodeToString(h.Sum(nil)); got != wantSmall {
		t.Errorf("small params: %d chunks, boundary hash %s, want %s", len(lens), got, wantSmall)
	}

	data = streamBytes("loft default boundaries", 6<<20)
	lens = chunkLens(chunkBytes(t, data, DefaultParams(), nil))
	wantDefault := []int{1177382, 1695540, 1172429, 339788, 1442452, 463865}
	if fmt.Sprint(lens) != fmt.Sprint(wantDefault) {
		t.Errorf("default params: chunk lengths %v, want %v", lens, wantDefault)
	}
}

func TestChunkerSizes(t *testing.T) {
	p := smallParams
	sizes := []int{0, 1, 2, p.Min - 1, p.Min, p.Min + 1, p.Avg, p.Max - 1, p.Max, p.Max + 1,
		2*p.Max - 1, 2 * p.Max, 2*p.Max + 1, 3*p.Max + 7, 3 << 20}
	for _, n := range sizes {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			data := randomBytes(uint64(n), n)
			chunks := chunkBytes(t, data, p, nil)
			checkChunks(t, data, chunks, p)
			if n == 0 && len(chunks) != 0 {
				t.Fatalf("empty input gave %d chunks", len(chunks))
			}
			if n > 0 && n <= p.Min && len(chunks) != 1 {
				t.Fatalf("%d bytes (<= min) gave %d chunks, want 1", n, len(chunks))
			}
		})
	}
}

func TestChunkerLowEntropy(t *testing.T) {
	// Constant and periodic input never matches or matches everywhere; both
	// must still respect the bounds.
	p := smallParams
	for name, data := range map[string][]byte{
		"zeros":  make([]byte, 200<<10),
		"ones":   bytes.Repeat([]byte{0xff}, 200<<10),
		"period": bytes.Repeat([]byte("loft!"), 50<<10),
	} {
		t.Run(name, func(t *testing.T) {
			checkChunks(t, data, chunkBytes(t, data, p, nil), p)
		})
	}
}

func TestChunkerEOFRepeats(t *testing.T) {
	c := NewChunker(bytes.NewReader(nil), smallParams)
	for i := 0; i < 3; i++ {
		if b, err := c.Next(); err != io.EOF || b != nil {
			t.Fatalf("empty stream, call %d: %d bytes, %v; want nil, io.EOF", i, len(b), err)
		}
	}
	c = NewChunker(bytes.NewReader([]byte("abc")), smallParams)
	if b, err := c.Next(); err != nil || string(b) != "abc" {
		t.Fatalf("Next = %q, %v", b, err)
	}
	for i := 0; i < 3; i++ {
		if b, err := c.Next(); err != io.EOF || b != nil {
			t.Fatalf("after the data, call %d: %d bytes, %v; want nil, io.EOF", i, len(b), err)
		}
	}
}

// randomReads returns between 0 and max bytes per Read.
type randomReads struct {
	r   io.Reader
	rng *rand.Rand
	max int
}

func (r *randomReads) Read(p []byte) (int, error) {
	n := r.rng.IntN(r.max + 1)
	if n < len(p) {
		p = p[:n]
	}
	return r.r.Read(p)
}

func TestChunkerDeterministic(t *testing.T) {
	p := smallParams
	data := randomBytes(7, 1<<20)
	want := chunkLens(chunkBytes(t, data, p, nil))
	if again := chunkLens(chunkBytes(t, data, p, nil)); fmt.Sprint(again) != fmt.Sprint(want) {
		t.Fatal("the same input chunked twice gave different boundaries")
	}
	small := data[:256<<10]
	wantSmall := chunkLens(chunkBytes(t, small, p, nil))
	for name, tc := range map[string]struct {
		data []byte
		want []int
		wrap func(io.Reader) io.Reader
	}{
		"one byte":     {small, wantSmall, iotest.OneByteReader},
		"half":         {data, want, iotest.HalfReader},
		"data+EOF":     {data, want, iotest.DataErrReader},
		"one byte+EOF": {small, wantSmall, func(r io.Reader) io.Reader { return iotest.DataErrReader(iotest.OneByteReader(r)) }},
		"random sizes": {data, want, func(r io.Reader) io.Reader {
			return &randomReads{r: r, rng: rand.New(rand.NewPCG(1, 2)), max: 3000}
		}},
		"multi": {data, want, func(r io.Reader) io.Reader {
			// Splits the stream at awkward places: reads end at each part's end.
			b, _ := io.ReadAll(r)
			return io.MultiReader(bytes.NewReader(b[:p.Max-1]), bytes.NewReader(b[p.Max-1:2*p.Max+3]), bytes.NewReader(b[2*p.Max+3:]))
		}},
	} {
		t.Run(name, func(t *testing.T) {
			chunks := chunkBytes(t, tc.data, p, tc.wrap)
			checkChunks(t, tc.data, chunks, p)
			if got := chunkLens(chunks); fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Fatalf("boundaries depend on read sizes: got %d chunks, want %d", len(got), len(tc.want))
			}
		})
	}
}

// dataThenErr returns its data and, with the last of it, err.
type dataThenErr struct {
	data []byte
	err  error
}

func (r *dataThenErr) Read(p []byte) (int, error) {
	n := copy(p, r.data)
	r.data = r.data[n:]
	if len(r.data) == 0 {
		return n, r.err
	}
	return n, nil
}

func TestChunkerReadError(t *testing.T) {
	p := smallParams
	boom := errors.New("boom")
	data := randomBytes(8, 200<<10)
	full := chunkBytes(t, data, p, nil)
	for _, n := range []int{0, 1, p.Min, p.Max, p.Max + 5, 2 * p.Max, 3*p.Max + 17, 100000} {
		for name, r := range map[string]io.Reader{
			"separate": io.MultiReader(bytes.NewReader(data[:n]), iotest.ErrReader(boom)),
			"together": &dataThenErr{data: data[:n], err: boom},
		} {
			t.Run(fmt.Sprintf("%d/%s", n, name), func(t *testing.T) {
				c := NewChunker(r, p)
				chunks, err := chunkAll(t, c, n+1)
				if err != boom {
					t.Fatalf("stream ended with %v, want %v", err, boom)
				}
				// Every byte read before the error comes out as chunks first.
				checkChunks(t, data[:n], chunks, p)
				// The error does not move boundaries that end before it.
				end := 0
				for i, ch := range chunks {
					end += len(ch)
					if end >= n {
						break
					}
					if !bytes.Equal(ch, full[i]) {
						t.Fatalf("chunk %d before the error differs from the clean stream's", i)
					}
				}
				for i := 0; i < 3; i++ {
					if b, err := c.Next(); err != boom || b != nil {
						t.Fatalf("call %d after the error: %d bytes, %v; want nil, %v", i, len(b), err, boom)
					}
				}
			})
		}
	}
}

func TestChunkerChunkCapacity(t *testing.T) {
	// Appending to a returned chunk must not overwrite the bytes after it.
	p := smallParams
	data := randomBytes(9, 100<<10)
	c := NewChunker(bytes.NewReader(data), p)
	var got []byte
	for {
		b, err := c.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, b...)
		_ = append(b, bytes.Repeat([]byte{0xAA}, 64)...)
	}
	if !bytes.Equal(got, data) {
		t.Fatal("appending to returned chunks corrupted the following chunks")
	}
}

func TestChunkerReset(t *testing.T) {
	p := smallParams
	d1, d2, d3 := randomBytes(10, 150<<10), randomBytes(11, 90<<10), randomBytes(12, 300<<10)

	c := NewChunker(bytes.NewReader(d1), p)
	first, err := c.Next()
	if err != nil {
		t.Fatal(err)
	}
	buf := &first[0]
	if _, err := chunkAll(t, c, len(d1)); err != io.EOF {
		t.Fatal(err)
	}

	// After EOF, Reset starts over: the sticky error is gone.
	c.Reset(bytes.NewReader(d2), p)
	b, err := c.Next()
	if err != nil {
		t.Fatalf("Next after Reset: %v", err)
	}
	if &b[0] != buf {
		t.Fatal("Reset with the same params allocated a new buffer")
	}
	got := [][]byte{append([]byte(nil), b...)} // b is valid until the next Next
	rest, err := chunkAll(t, c, len(d2))
	if err != io.EOF {
		t.Fatal(err)
	}
	got = append(got, rest...)
	if want := chunkBytes(t, d2, p, nil); fmt.Sprint(chunkLens(got)) != fmt.Sprint(chunkLens(want)) {
		t.Fatal("chunks after Reset differ from a fresh chunker's")
	}
	checkChunks(t, d2, got, p)

	// Reset in the middle of a stream drops what was buffered.
	c.Reset(bytes.NewReader(d1), p)
	if _, err := c.Next(); err != nil {
		t.Fatal(err)
	}
	smaller := Params{Min: 256, Avg: 1024, Max: 4096}
	c.Reset(bytes.NewReader(d3), smaller)
	got, err = chunkAll(t, c, len(d3))
	if err != io.EOF {
		t.Fatal(err)
	}
	checkChunks(t, d3, got, smaller)
	c.Reset(bytes.NewReader(d3), smaller)
	b, err = c.Next()
	if err != nil {
		t.Fatal(err)
	}
	if &b[0] != buf {
		t.Fatal("Reset with a smaller max allocated a new buffer")
	}
	if fmt.Sprint(chunkLens(got)) != fmt.Sprint(chunkLens(chunkBytes(t, d3, smaller, nil))) {
		t.Fatal("chunks after Reset with new params differ from a fresh chunker's")
	}

	// A larger max needs a larger buffer; chunking must still be right.
	larger := Params{Min: 4 << 10, Avg: 16 << 10, Max: 64 << 10}
	c.Reset(bytes.NewReader(d3), larger)
	got, err = chunkAll(t, c, len(d3))
	if err != io.EOF {
		t.Fatal(err)
	}
	checkChunks(t, d3, got, larger)
	if fmt.Sprint(chunkLens(got)) != fmt.Sprint(chunkLens(chunkBytes(t, d3, larger, nil))) {
		t.Fatal("chunks after Reset with a larger max differ from a fresh chunker's")
	}
}

// TestChunkerEditResilience checks content-defined chunking's point: an edit
// changes the chunks around it only. Boundaries before it never move and
// those after it resynchronise.
func TestChunkerEditResilience(t *testing.T) {
	p := smallParams
	data := randomBytes(13, 2<<20)
	off := 1<<20 + 12345
	orig := chunkBytes(t, data, p, nil)
	for name, edited := range map[string][]byte{
		"insert": concat(data[:off], []byte("0123456789"), data[off:]),
		"delete": concat(data[:off], data[off+10:]),
		"modify": concat(data[:off], []byte("0123456789"), data[off+10:]),
	} {
		t.Run(name, func(t *testing.T) {
			mod := chunkBytes(t, edited, p, nil)
			checkChunks(t, edited, mod, p)
			end := 0
			before := 0
			for i, c := range orig {
				end += len(c)
				if end > off {
					break
				}
				before++
				if !bytes.Equal(c, mod[i]) {
					t.Fatalf("chunk %d ends at %d, before the edit at %d, but changed", i, end, off)
				}
			}
			if before < len(orig)/3 {
				t.Fatalf("only %d of %d chunks lie before the edit", before, len(orig))
			}
			origSet := make(map[ID]bool)
			for _, c := range orig {
				origSet[Sum(c)] = true
			}
			modSet := make(map[ID]bool)
			newChunks := 0
			for _, c := range mod {
				modSet[Sum(c)] = true
				if !origSet[Sum(c)] {
					newChunks++
				}
			}
			lost := 0
			for _, c := range orig {
				if !modSet[Sum(c)] {
					lost++
				}
			}
			if newChunks > 3 || lost > 3 {
				t.Fatalf("edit of 10 bytes changed too much: %d new chunks, %d lost, of %d", newChunks, lost, len(orig))
			}
			if newChunks == 0 {
				t.Fatal("edit produced no new chunk")
			}
		})
	}
}

func concat(parts ...[]byte) []byte {
	var out []byte
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// fuzzParams maps fuzz integers onto valid small parameters.
func fuzzParams(minSeed uint16, avgShift uint8, maxSeed uint16) Params {
	min := minWindow + int(minSeed%449) // 64..512
	avg := 1
	for avg <= min {
		avg <<= 1
	}
	avg <<= avgShift % 3
	max := avg + 1 + int(maxSeed)%(3*avg)
	return Params{Min: min, Avg: avg, Max: max}
}

func FuzzChunker(f *testing.F) {
	// Small seeds keep each run, and the minimisation of new inputs, cheap.
	f.Add(randomBytes(1, 1500), uint16(0), uint8(0), uint16(0), []byte("ins"), uint32(700))
	f.Add(randomBytes(2, 2000), uint16(100), uint8(1), uint16(500), []byte("0123456789"), uint32(1000))
	f.Add(make([]byte, 1000), uint16(0), uint8(0), uint16(0), []byte{1}, uint32(500))
	f.Add(bytes.Repeat([]byte("abc"), 400), uint16(7), uint8(2), uint16(9), []byte{}, uint32(0))
	f.Add([]byte{}, uint16(0), uint8(0), uint16(0), []byte("x"), uint32(0))
	f.Add(randomBytes(3, 300), uint16(448), uint8(0), uint16(65535), []byte("tail"), uint32(300))
	f.Fuzz(func(t *testing.T, data []byte, minSeed uint16, avgShift uint8, maxSeed uint16, insert []byte, offSeed uint32) {
		p := fuzzParams(minSeed, avgShift, maxSeed)
		if err := p.Validate(); err != nil {
			t.Fatalf("fuzzParams made invalid %v: %v", p, err)
		}
		orig := chunkBytes(t, data, p, nil)
		checkChunks(t, data, orig, p)
		if one := chunkBytes(t, data, p, iotest.OneByteReader); fmt.Sprint(chunkLens(one)) != fmt.Sprint(chunkLens(orig)) {
			t.Fatalf("%v: one-byte reads moved boundaries", p)
		}

		if len(insert) > 32 {
			insert = insert[:32]
		}
		off := int(offSeed % uint32(len(data)+1))
		edited := concat(data[:off], insert, data[off:])
		mod := chunkBytes(t, edited, p, nil)
		checkChunks(t, edited, mod, p)
		// Boundaries are found left to right from the stream's start, and a
		// cut looks at no byte after it, so every chunk that ends at or
		// before the insert point is unchanged. The stream's last chunk is
		// the exception: its end was the end of data, which the insert moved.
		end := 0
		for i, c := range orig {
			end += len(c)
			if end > off || end == len(data) {
				break
			}
			if i >= len(mod) || !bytes.Equal(c, mod[i]) {
				t.Fatalf("%v: chunk %d ends at %d, before the insert at %d, but changed", p, i, end, off)
			}
		}
	})
}

// zeroReads returns (0, nil) forever; after limit calls it gives up with
// errGaveUp so that a chunker that keeps reading cannot hang the test.
type zeroReads struct{ calls, limit int }

var errGaveUp = errors.New("test reader: still being read after many empty reads")

func (r *zeroReads) Read(p []byte) (int, error) {
	r.calls++
	if r.calls > r.limit {
		return 0, errGaveUp
	}
	return 0, nil
}

func TestChunkerNoProgress(t *testing.T) {
	r := &zeroReads{limit: 10000}
	_, err := NewChunker(r, smallParams).Next()
	if err != io.ErrNoProgress {
		t.Fatalf("Next on a reader that never makes progress: %v after %d reads, want io.ErrNoProgress", err, r.calls)
	}
}

// TestChunkerSizeHint checks that a size hint changes how much memory a
// chunker holds, never where it cuts: too small, too large, zero or exact,
// with whole and one-byte reads.
func TestChunkerSizeHint(t *testing.T) {
	p := DefaultParams()
	data := randomBytes(20, 11<<20)
	want := chunkLens(chunkBytes(t, data, p, nil))
	c := NewChunker(nil, p)
	for _, tc := range []struct {
		hint int64
		wrap func(io.Reader) io.Reader
	}{
		{-1, nil}, {0, nil}, {100, nil}, {1 << 20, nil}, {int64(p.Max) + 1, nil},
		{int64(len(data)), nil}, {1 << 40, nil}, {70 << 10, iotest.HalfReader}, {0, iotest.DataErrReader},
	} {
		var r io.Reader = bytes.NewReader(data)
		if tc.wrap != nil {
			r = tc.wrap(r)
		}
		c.ResetSize(r, p, tc.hint)
		got, err := chunkAll(t, c, len(data))
		if err != io.EOF {
			t.Fatalf("hint %d: %v", tc.hint, err)
		}
		checkChunks(t, data, got, p)
		if fmt.Sprint(chunkLens(got)) != fmt.Sprint(want) {
			t.Fatalf("hint %d: cuts %v, want %v", tc.hint, chunkLens(got), want)
		}
	}
	// A small stream after a large one gets a small buffer back.
	small := randomBytes(21, 10<<10)
	c.ResetSize(bytes.NewReader(small), p, int64(len(small)))
	if cap(c.buf) > smallBufKeep {
		t.Fatalf("buffer for a 10 KiB stream after an 11 MiB one: %d bytes", cap(c.buf))
	}
	got, err := chunkAll(t, c, len(small))
	if err != io.EOF || len(got) != 1 || !bytes.Equal(got[0], small) {
		t.Fatalf("10 KiB stream: %d chunks, %v", len(got), err)
	}
}
