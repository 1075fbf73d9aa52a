package catalog

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/loftstore/loft/store"
)

// unknownIDs are IDs no test adds as chunks.
func unknownIDs(n int) []store.ID {
	out := make([]store.ID, n)
	for i := range out {
		out[i] = store.Sum([]byte{'u', byte(i), byte(i >> 8)})
	}
	return out
}

// allRows returns the ID of every chunk row.
func allRows(t *testing.T, c *Catalog) []store.ID {
	t.Helper()
	var out []store.ID
	if err := c.EachChunk(context.Background(), func(r ChunkRow) error { out = append(out, r.ID); return nil }); err != nil {
		t.Fatal(err)
	}
	return out
}

func checkFilterHasRows(t *testing.T, c *Catalog, f *Filter) {
	t.Helper()
	rows := allRows(t, c)
	if len(rows) == 0 {
		t.Fatal("no chunk rows to check")
	}
	for _, id := range rows {
		if !f.MayHave(id) {
			t.Fatalf("filter misses chunk row %s", id.Short())
		}
	}
}

func loadFilter(t *testing.T, c *Catalog, path string) *Filter {
	t.Helper()
	f, err := c.LoadFilter(context.Background(), path)
	if err != nil {
		t.Fatalf("LoadFilter: %v", err)
	}
	return f
}

func TestFilterFresh(t *testing.T) {
	c, path := newCatalog(t, Options{})
	fpath := filepath.Join(filepath.Dir(path), "filter")
	f := loadFilter(t, c, fpath)
	for _, id := range unknownIDs(1000) {
		if f.MayHave(id) {
			t.Fatalf("empty filter may have %s", id.Short())
		}
	}
	if f.Full() {
		t.Fatal("empty filter is full")
	}
	if _, err := os.Stat(fpath); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("LoadFilter wrote a file: %v", err)
	}

	// Built from a catalog with rows, every row is in it and nothing else.
	add(t, c, nv("a", "a", 1, 2, 3))
	setConfig(t, c, "keep-versions", "1")
	add(t, c, nv("a", "b", 4)) // rows 1-3 unreferenced, still rows
	f = loadFilter(t, c, fpath)
	checkFilterHasRows(t, c, f)
	for _, id := range unknownIDs(1000) {
		if f.MayHave(id) {
			t.Fatalf("filter of 4 rows may have unknown %s", id.Short())
		}
	}
	// Add is visible at once.
	f.Add(cid(77))
	if !f.MayHave(cid(77)) {
		t.Fatal("Add not visible")
	}
}

// gcChunk makes chunk i a row, then deletes the row as gc would, leaving
// nothing in the catalog: a filter that still has it was loaded from a file,
// not rebuilt.
func gcChunk(t *testing.T, c *Catalog, i int) {
	t.Helper()
	ctx := context.Background()
	setConfig(t, c, "keep-versions", "1")
	add(t, c, nv("gc-me", "1", i))
	add(t, c, nv("gc-me", "2"))
	err := c.Tx(ctx, func(tx *Tx) error {
		gs, err := tx.Garbage(ctx, SweepRule{Before: t0.Add(1000 * time.Hour)}, 100)
		if err != nil {
			return err
		}
		_, err = tx.DeleteGarbage(ctx, gs)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if k, _ := c.Known(ctx, ids(i)); len(k) != 0 {
		t.Fatalf("chunk %d still has a row", i)
	}
}

func TestFilterSaveLoadCatchUp(t *testing.T) {
	c, path := newCatalog(t, Options{})
	fpath := filepath.Join(filepath.Dir(path), "filter")
	add(t, c, nv("a", "a", 1, 2, 3))
	add(t, c, nv("gc-me", "1", 500))
	f := loadFilter(t, c, fpath)
	// Rows added after loading: SaveFilter catches up before writing.
	add(t, c, nv("b", "b", 4, 5))
	if err := c.SaveFilter(context.Background(), f, fpath); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(fpath + ".tmp"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("temporary file left: %v", err)
	}
	if !f.MayHave(cid(4)) {
		t.Fatal("SaveFilter did not bring the filter up to date")
	}
	gcChunk(t, c, 500)
	// Rows added after the save: LoadFilter catches up from the watermark.
	add(t, c, nv("c", "c", 6, 7, 1))
	g := loadFilter(t, c, fpath)
	checkFilterHasRows(t, c, g)
	if !g.MayHave(cid(500)) {
		t.Fatal("the saved filter was not used: a deleted row's ID is gone")
	}
	for _, id := range unknownIDs(1000) {
		if g.MayHave(id) {
			t.Fatalf("loaded filter may have unknown %s", id.Short())
		}
	}
	// Saving the loaded filter again gives a file that loads the same.
	if err := c.SaveFilter(context.Background(), g, fpath); err != nil {
		t.Fatal(err)
	}
	b1, _ := os.ReadFile(fpath)
	h := loadFilter(t, c, fpath)
	if !bytes.Equal(h.encode(), b1) {
		t.Fatal("a loaded filter with nothing to catch up encodes differently from its file")
	}
}

// filterField offsets in the file: magic, then capacity, n, watermark, m, k.
const (
	offCapacity  = 4
	offN         = 12
	offWatermark = 20
	offM         = 28
	offK         = 36
)

// resum replaces the trailing SHA-256 so a deliberately wrong field gets
// past the checksum.
func resum(b []byte) []byte {
	b = bytes.Clone(b)
	body := b[:len(b)-sha256.Size]
	sum := sha256.Sum256(body)
	copy(b[len(body):], sum[:])
	return b
}

func setU64(b []byte, off int, v uint64) []byte {
	b = bytes.Clone(b)
	binary.BigEndian.PutUint64(b[off:], v)
	return resum(b)
}

func TestFilterDamagedFile(t *testing.T) {
	c, path := newCatalog(t, Options{})
	dir := filepath.Dir(path)
	fpath := filepath.Join(dir, "filter")
	add(t, c, nv("a", "a", 1, 2, 3))
	add(t, c, nv("gc-me", "1", 500))
	f := loadFilter(t, c, fpath)
	if err := c.SaveFilter(context.Background(), f, fpath); err != nil {
		t.Fatal(err)
	}
	good, err := os.ReadFile(fpath)
	if err != nil {
		t.Fatal(err)
	}
	gcChunk(t, c, 500)
	add(t, c, nv("b", "b", 4))

	// The good file is used.
	if g := loadFilter(t, c, fpath); !g.MayHave(cid(500)) {
		t.Fatal("good filter file not used")
	}

	flip := func(i int) []byte { b := bytes.Clone(good); b[i] ^= 0x40; return b }
	wrongMagic := bytes.Clone(good)
	copy(wrongMagic, "lbf2")
	damaged := map[string][]byte{
		"empty":              {},
		"magic only":         []byte(filterMagic),
		"flipped header":     flip(offN + 7),
		"flipped bits":       flip(len(good) / 2),
		"flipped checksum":   flip(len(good) - 1),
		"truncated half":     good[:len(good)/2],
		"truncated by one":   good[:len(good)-1],
		"one byte more":      append(bytes.Clone(good), 0),
		"wrong magic":        resum(wrongMagic),
		"huge capacity":      setU64(good, offCapacity, 1<<40),
		"max capacity":       setU64(good, offCapacity, maxFilterCapacity),
		"capacity too small": setU64(good, offCapacity, minFilterCapacity-1),
		"capacity 0":         setU64(good, offCapacity, 0),
		"wrong m":            setU64(good, offM, binary.BigEndian.Uint64(good[offM:])+64),
		"wrong k":            setU64(good, offK, binary.BigEndian.Uint64(good[offK:])+1),
		"negative watermark": setU64(good, offWatermark, 1<<63),
		"full":               setU64(good, offN, binary.BigEndian.Uint64(good[offCapacity:])+1),
		"bits cut, resummed": resum(append(bytes.Clone(good[:len(good)-sha256.Size-8]), make([]byte, sha256.Size)...)),
	}
	for name, b := range damaged {
		t.Run(name, func(t *testing.T) {
			if name != "full" {
				if _, err := decodeFilter(b); !errors.Is(err, errFilterFile) {
					t.Fatalf("decodeFilter accepted the damaged file: %v", err)
				}
			}
			if err := os.WriteFile(fpath, b, 0o644); err != nil {
				t.Fatal(err)
			}
			g := loadFilter(t, c, fpath)
			checkFilterHasRows(t, c, g)
			if g.MayHave(cid(500)) {
				t.Fatal("damaged filter file was used, not rebuilt")
			}
			if g.Full() {
				t.Fatal("rebuilt filter is full")
			}
		})
	}

	// A file that cannot be read (a directory) is rebuilt around too.
	if err := os.Remove(fpath); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(fpath, 0o755); err != nil {
		t.Fatal(err)
	}
	checkFilterHasRows(t, c, loadFilter(t, c, fpath))
}

func TestFilterEncodeDecode(t *testing.T) {
	f := newFilter(0)
	if f.capacity != minFilterCapacity {
		t.Fatalf("capacity %d", f.capacity)
	}
	for i := range 100 {
		f.Add(cid(i))
	}
	f.watermark = 12345
	b := f.encode()
	g, err := decodeFilter(b)
	if err != nil {
		t.Fatal(err)
	}
	if g.capacity != f.capacity || g.n != 100 || g.watermark != 12345 {
		t.Fatalf("decoded capacity %d n %d watermark %d", g.capacity, g.n, g.watermark)
	}
	if !bytes.Equal(g.encode(), b) {
		t.Fatal("re-encoding a decoded filter changed it")
	}
	for i := range 100 {
		if !g.MayHave(cid(i)) {
			t.Fatalf("decoded filter lost chunk %d", i)
		}
	}
	for _, id := range unknownIDs(200) {
		if g.MayHave(id) != f.MayHave(id) {
			t.Fatalf("decoded filter answers differently for %s", id.Short())
		}
	}
	// A larger capacity round-trips as well.
	h := newFilter(3 * minFilterCapacity)
	h.Add(cid(1))
	hb := h.encode()
	if d, err := decodeFilter(hb); err != nil || !bytes.Equal(d.encode(), hb) {
		t.Fatalf("capacity %d: %v", h.capacity, err)
	}
}

// TestFilterConcurrentSave: Filter is documented safe for concurrent use,
// and SaveFilter may run from a periodic saver and at shutdown at once.
func TestFilterConcurrentSave(t *testing.T) {
	c, path := newCatalog(t, Options{})
	dir := filepath.Dir(path)
	add(t, c, nv("a", "a", 1, 2, 3))
	f := loadFilter(t, c, filepath.Join(dir, "filter"))
	for round := range 10 {
		add(t, c, nv("b", fmt.Sprint(round), 10+round))
		var wg sync.WaitGroup
		errs := make([]error, 4)
		for i := range errs {
			wg.Go(func() {
				errs[i] = c.SaveFilter(context.Background(), f, filepath.Join(dir, fmt.Sprint("filter", i)))
			})
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			t.Fatal(err)
		}
	}
	checkFilterHasRows(t, c, f)
}

func FuzzDecodeFilter(f *testing.F) {
	small := newFilter(0)
	for i := range 20 {
		small.Add(cid(i))
	}
	small.watermark = 20
	good := small.encode()
	f.Add(good)
	f.Add(good[:4+5*8+sha256.Size])
	f.Add(resum(bytes.Clone(good[:4+5*8+sha256.Size])))
	f.Add(setU64(good, offCapacity, 1<<40))
	f.Add(setU64(good, offCapacity, maxFilterCapacity))
	f.Add([]byte(filterMagic))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		g, err := decodeFilter(b)
		if err != nil {
			if !errors.Is(err, errFilterFile) {
				t.Fatalf("error %v does not wrap errFilterFile", err)
			}
			return
		}
		if !bytes.Equal(g.encode(), b) {
			t.Fatal("re-encoding an accepted file changed it")
		}
		if g.capacity < minFilterCapacity || g.capacity > maxFilterCapacity || g.watermark < 0 {
			t.Fatalf("accepted capacity %d watermark %d", g.capacity, g.watermark)
		}
		// Whatever was accepted answers queries without panicking.
		g.MayHave(cid(1))
		g.Add(cid(2))
		if !g.MayHave(cid(2)) {
			t.Fatal("Add not visible")
		}
	})
}
