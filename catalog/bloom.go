package catalog

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sync"

	"github.com/bits-and-blooms/bloom/v3"

	"github.com/loftstore/loft/store"
)

const (
	// filterFP is the false-positive rate a filter is sized for at capacity.
	filterFP = 0.01
	// minFilterCapacity keeps small repositories from rebuilding often.
	minFilterCapacity = 1 << 20
	// maxFilterCapacity bounds what a filter file may claim (4 Gi chunks).
	maxFilterCapacity = 1 << 32
)

// Filter is a Bloom filter over the IDs of every chunk row. It answers
// "certainly not in the catalog" without a query. It is never the source of
// truth: a hit means "look it up", a miss only lets a writer skip the
// lookup, and nothing is ever deleted because of it. It is safe for
// concurrent use.
type Filter struct {
	catchUp   sync.Mutex // one catch-up at a time
	mu        sync.RWMutex
	f         *bloom.BloomFilter
	capacity  uint64
	n         uint64 // IDs added
	watermark int64  // highest chunk row id added
}

func newFilter(capacity uint64) *Filter {
	capacity = max(capacity, minFilterCapacity)
	return &Filter{f: bloom.NewWithEstimates(uint(capacity), filterFP), capacity: capacity}
}

// MayHave reports whether id may have a chunk row.
func (f *Filter) MayHave(id store.ID) bool {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.f.Test(id[:])
}

// Add records id.
func (f *Filter) Add(id store.ID) {
	f.mu.Lock()
	f.f.Add(id[:])
	f.n++
	f.mu.Unlock()
}

// Full reports whether more IDs were added than the filter was sized for.
func (f *Filter) Full() bool {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.n > f.capacity
}

// LoadFilter returns the filter saved at path brought up to date with the
// catalog, or a new one built from the catalog when the file is missing,
// damaged or full. Loading then costs a read of the file and a query for
// the chunks added since it was saved.
func (c *Catalog) LoadFilter(ctx context.Context, path string) (*Filter, error) {
	f, err := readFilter(path)
	if err == nil && !f.Full() {
		if err := c.catchUp(ctx, f); err != nil {
			return nil, err
		}
		if !f.Full() {
			return f, nil
		}
	}
	var count uint64
	if err := c.r.QueryRowContext(ctx, `SELECT count(*) FROM chunks`).Scan(&count); err != nil {
		return nil, fmt.Errorf("build chunk filter: %w", classify(err))
	}
	f = newFilter(2 * count) // headroom: grows again only after doubling
	if err := c.catchUp(ctx, f); err != nil {
		return nil, err
	}
	return f, nil
}

// CatchUp adds to f every chunk row added since it was loaded or last
// caught up. Row ids only grow (AUTOINCREMENT), so the rows above the
// filter's watermark are exactly those.
func (c *Catalog) CatchUp(ctx context.Context, f *Filter) error { return c.catchUp(ctx, f) }

func (c *Catalog) catchUp(ctx context.Context, f *Filter) error {
	f.catchUp.Lock()
	defer f.catchUp.Unlock()
	for {
		f.mu.RLock()
		from := f.watermark
		f.mu.RUnlock()
		rows, err := c.r.QueryContext(ctx, `SELECT id, hash FROM chunks WHERE id > ? ORDER BY id LIMIT 10000`, from)
		if err != nil {
			return fmt.Errorf("load chunk filter: %w", classify(err))
		}
		n := 0
		for rows.Next() {
			var id int64
			var h []byte
			if err := rows.Scan(&id, &h); err != nil {
				rows.Close()
				return fmt.Errorf("load chunk filter: %w", classify(err))
			}
			f.mu.Lock()
			f.f.Add(h)
			f.n++
			f.watermark = id
			f.mu.Unlock()
			n++
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("load chunk filter: %w", classify(err))
		}
		if n < 10000 {
			return nil
		}
	}
}

// SaveFilter brings f up to date and writes it to path (temp file and
// rename). The file is a cache: losing it costs a rebuild, nothing more, so
// it is not flushed to disk.
func (c *Catalog) SaveFilter(ctx context.Context, f *Filter, path string) error {
	if err := c.catchUp(ctx, f); err != nil {
		return err
	}
	b := f.encode()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("save chunk filter: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("save chunk filter: %w", err)
	}
	return nil
}

// Filter file format:
//
//	magic "lbf1", then big-endian uint64 capacity, n, watermark, m, k,
//	then m/64 (rounded up) big-endian uint64 words of bits, then the
//	SHA-256 of everything before it.
const filterMagic = "lbf1"

var errFilterFile = errors.New("bad chunk filter file")

func (f *Filter) encode() []byte {
	f.mu.RLock()
	defer f.mu.RUnlock()
	words := f.f.BitSet().Words()
	var buf bytes.Buffer
	buf.WriteString(filterMagic)
	for _, v := range []uint64{f.capacity, f.n, uint64(f.watermark), uint64(f.f.Cap()), uint64(f.f.K())} {
		buf.Write(binary.BigEndian.AppendUint64(nil, v))
	}
	for _, w := range words {
		buf.Write(binary.BigEndian.AppendUint64(nil, w))
	}
	sum := sha256.Sum256(buf.Bytes())
	buf.Write(sum[:])
	return buf.Bytes()
}

func readFilter(path string) (*Filter, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	if err != nil {
		return nil, fmt.Errorf("read chunk filter: %w", err)
	}
	return decodeFilter(b)
}

// decodeFilter parses a filter file. The sizes it claims must match what
// the capacity implies and the length of the data, so a damaged file is
// refused before anything is allocated from it.
func decodeFilter(b []byte) (*Filter, error) {
	const head = 4 + 5*8
	if len(b) < head+sha256.Size || string(b[:4]) != filterMagic {
		return nil, fmt.Errorf("%w: bad header", errFilterFile)
	}
	body, sum := b[:len(b)-sha256.Size], b[len(b)-sha256.Size:]
	if got := sha256.Sum256(body); !bytes.Equal(got[:], sum) {
		return nil, fmt.Errorf("%w: checksum mismatch", errFilterFile)
	}
	u := func(i int) uint64 { return binary.BigEndian.Uint64(b[4+8*i:]) }
	capacity, n, watermark, m, k := u(0), u(1), int64(u(2)), u(3), u(4)
	if capacity < minFilterCapacity || capacity > maxFilterCapacity || watermark < 0 {
		return nil, fmt.Errorf("%w: capacity %d", errFilterFile, capacity)
	}
	wantM, wantK := bloom.EstimateParameters(uint(capacity), filterFP)
	if m != uint64(wantM) || k != uint64(wantK) {
		return nil, fmt.Errorf("%w: size %d/%d does not match capacity %d", errFilterFile, m, k, capacity)
	}
	nwords := (m + 63) / 64
	if uint64(len(body)-head) != nwords*8 {
		return nil, fmt.Errorf("%w: %d bytes of bits, want %d", errFilterFile, len(body)-head, nwords*8)
	}
	words := make([]uint64, nwords)
	for i := range words {
		words[i] = binary.BigEndian.Uint64(body[head+8*i:])
	}
	return &Filter{f: bloom.FromWithM(words, uint(m), uint(k)), capacity: capacity, n: n, watermark: watermark}, nil
}
