package store

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// TempFile is the part of *os.File that staging a chunk uses.
type TempFile interface {
	io.Writer
	Sync() error
	Close() error
	Name() string
}

// DiskOptions configure a Disk store.
type DiskOptions struct {
	// CreateTemp creates a file for staging a chunk. Nil means os.CreateTemp.
	// Tests inject faults, a full disk for one, through it.
	CreateTemp func(dir, pattern string) (TempFile, error)
	// SmallMax overrides the largest stored size kept in the small-chunk
	// database: 0 means SmallMax, a negative value none (every chunk a
	// file). Reads find a chunk in either place whatever it is.
	SmallMax int
}

// Disk stores chunks as files under root: root/ab/cd/<64 hex>, written to
// root/tmp first. Every file under its final name is complete and durable:
// Batch.Commit flushes staged files before it renames them. Chunks whose
// stored form is at most SmallMax bytes are rows of root/small.db instead
// (see small); every method covers both.
type Disk struct {
	small    *small
	smallMax int
	root     string
	tmp      string
	codecs   *Codecs
	create   func(dir, pattern string) (TempFile, error)
	flush    flusher
	early    *writeback
	dirs     sync.Map // chunk directories known to exist
}

// earlyWriteback is the chunk size from which staging asks the kernel to
// start writing at once; smaller chunks wait for the commit's flush, which
// costs less than the extra open the hint needs.
const earlyWriteback = 256 << 10

const tmpPrefix = "w-"

// OpenDisk opens (creating if needed) a disk store rooted at root.
func OpenDisk(root string, codecs *Codecs, opts DiskOptions) (*Disk, error) {
	d := &Disk{root: root, tmp: filepath.Join(root, "tmp"), codecs: codecs, create: opts.CreateTemp,
		small: &small{path: smallPath(root)}, smallMax: opts.SmallMax}
	if d.smallMax == 0 {
		d.smallMax = SmallMax
	}
	if d.create == nil {
		d.create = func(dir, pattern string) (TempFile, error) { return os.CreateTemp(dir, pattern) }
	}
	if err := os.MkdirAll(d.tmp, 0o755); err != nil {
		return nil, fmt.Errorf("open chunk store: %w", err)
	}
	fl, err := newFlusher(root)
	if err != nil {
		return nil, fmt.Errorf("open chunk store: %w", err)
	}
	d.flush = fl
	d.early = startWriteback()
	return d, nil
}

// Close releases the store's resources.
func (d *Disk) Close() error {
	d.early.stop()
	return errors.Join(d.small.close(), d.flush.Close())
}

// Path returns the file name of a chunk.
func (d *Disk) Path(id ID) string {
	h := id.String()
	return filepath.Join(d.root, h[0:2], h[2:4], h)
}

// Get reads, decodes and verifies a chunk. A plain chunk is read into buf
// and returned in place when buf can hold its file; a compressed one is
// decoded into new memory.
func (d *Disk) Get(ctx context.Context, id ID, buf []byte) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	// The small-chunk database first: most chunks of a tree are rows, and
	// a lookup that misses costs less than an open that misses (a file
	// chunk is large, so one more query is small beside reading it).
	// A row that cannot be read or does not verify does not hide a file of
	// the same chunk (one written when small-chunk-max was lower, or a
	// repair): its error stands only when there is no file.
	stored, serr := d.small.get(ctx, id, buf)
	if serr == nil {
		plain, err := d.decode(id, stored)
		if err == nil {
			return plain, nil
		}
		serr = err
	} else if !errors.Is(serr, ErrNotFound) {
		serr = fmt.Errorf("read chunk %s: %w", id, serr)
	}
	f, err := os.Open(d.Path(id))
	if errors.Is(err, fs.ErrNotExist) {
		if errors.Is(serr, ErrNotFound) {
			return nil, fmt.Errorf("chunk %s: %w", id, ErrNotFound)
		}
		return nil, serr
	}
	if err != nil {
		return nil, fmt.Errorf("read chunk %s: %w", id, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("read chunk %s: %w", id, err)
	}
	size := fi.Size()
	if size < headerSize || size > MaxStoredSize {
		return nil, &IntegrityError{ID: id, Reason: fmt.Sprintf("file is %d bytes", size)}
	}
	if int64(cap(buf)) < size {
		buf = make([]byte, size)
	}
	stored = buf[:size]
	if _, err := io.ReadFull(f, stored); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, &IntegrityError{ID: id, Reason: "file shrank while it was read"}
		}
		return nil, fmt.Errorf("read chunk %s: %w", id, err)
	}
	return d.decode(id, stored)
}

// decode turns a chunk's stored form into its plain bytes, verified; a
// plain chunk's are returned in place.
func (d *Disk) decode(id ID, stored []byte) ([]byte, error) {
	size := len(stored)
	if size < headerSize || size > MaxStoredSize {
		return nil, &IntegrityError{ID: id, Reason: fmt.Sprintf("stored form is %d bytes", size)}
	}
	h, err := ParseHeader(stored)
	var plain []byte
	switch {
	case err != nil:
	case h.Codec == CodecPlain && size-headerSize != h.PlainSize:
		err = fmt.Errorf("%w: payload is %d bytes, header says %d", ErrFormat, size-headerSize, h.PlainSize)
	case h.Codec == CodecPlain:
		plain = stored[headerSize:]
	default:
		plain, err = d.codecs.Decode(nil, stored)
	}
	if err != nil {
		return nil, &IntegrityError{ID: id, Reason: err.Error()}
	}
	if err := Verify(id, plain); err != nil {
		return nil, err
	}
	return plain, nil
}

// MaxStoredSize bounds a chunk file: the largest chunk plus the header and
// zstd's worst-case growth, with room to spare. A stored size above it, from
// a peer or a catalog, is refused before any buffer is sized by it.
const MaxStoredSize = MaxChunkSize + MaxChunkSize/64 + 4096

// Stat reports a chunk's stored size and modification time.
func (d *Disk) Stat(ctx context.Context, id ID) (Info, error) {
	in, serr := d.small.stat(ctx, id) // first, as Get reads
	if serr == nil {
		return in, nil
	}
	fi, err := os.Stat(d.Path(id))
	if errors.Is(err, fs.ErrNotExist) {
		if errors.Is(serr, ErrNotFound) {
			return Info{}, fmt.Errorf("chunk %s: %w", id, ErrNotFound)
		}
		return Info{}, fmt.Errorf("stat chunk %s: %w", id, serr)
	}
	if err != nil {
		return Info{}, fmt.Errorf("stat chunk %s: %w", id, err)
	}
	return Info{ID: id, Stored: fi.Size(), ModTime: fi.ModTime()}, nil
}

// Remove removes a chunk file.
func (d *Disk) Remove(ctx context.Context, id ID) error {
	if err := os.Remove(d.Path(id)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove chunk %s: %w", id, err)
	}
	if _, err := d.small.remove(ctx, id, time.Time{}); err != nil {
		return fmt.Errorf("remove chunk %s: %w", id, err)
	}
	return nil
}

// RemoveIfOlder moves the chunk aside first, then decides on what it moved:
// a copy renamed into place by a concurrent writer either arrived before the
// move (it is new, so it goes back) or after it (it stays). Either way the
// name ends up holding a complete copy whenever a writer put one there.
func (d *Disk) RemoveIfOlder(ctx context.Context, id ID, cutoff time.Time) (bool, error) {
	p := d.Path(id)
	aside := filepath.Join(d.tmp, "rm-"+id.String()+"-"+randomSuffix())
	if err := os.Rename(p, aside); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			removed, err := d.small.remove(ctx, id, cutoff)
			if err != nil {
				return false, fmt.Errorf("remove chunk %s: %w", id, err)
			}
			return removed, nil
		}
		return false, fmt.Errorf("remove chunk %s: %w", id, err)
	}
	fi, err := os.Stat(aside)
	if err == nil && !fi.ModTime().Before(cutoff) {
		// Hard-linking back never replaces a copy that a writer has put in
		// place since the move; both hold the same bytes.
		if err := os.Link(aside, p); err != nil && !errors.Is(err, fs.ErrExist) {
			return false, fmt.Errorf("put back chunk %s: %w", id, err)
		}
		os.Remove(aside)
		return false, nil
	}
	if err := os.Remove(aside); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return false, fmt.Errorf("remove chunk %s: %w", id, err)
	}
	return true, nil
}

// Walk lists the chunk files, then the small chunks. Files whose names are
// not chunk IDs are skipped.
func (d *Disk) Walk(ctx context.Context, fn func(Info) error) error {
	if err := d.walkFiles(ctx, fn); err != nil {
		return err
	}
	if err := d.small.walk(ctx, fn); err != nil {
		return fmt.Errorf("walk chunk store: %w", err)
	}
	return nil
}

func (d *Disk) walkFiles(ctx context.Context, fn func(Info) error) error {
	top, err := readDirNames(d.root)
	if err != nil {
		return fmt.Errorf("walk chunk store: %w", err)
	}
	for _, a := range top {
		if !isHexPair(a) {
			continue
		}
		mid, err := readDirNames(filepath.Join(d.root, a))
		if errors.Is(err, syscall.ENOTDIR) {
			continue // a stray file with a directory's name
		}
		if err != nil {
			return fmt.Errorf("walk chunk store: %w", err)
		}
		for _, b := range mid {
			if !isHexPair(b) {
				continue
			}
			dir := filepath.Join(d.root, a, b)
			ents, err := os.ReadDir(dir)
			if err != nil && !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, syscall.ENOTDIR) {
				return fmt.Errorf("walk chunk store: %w", err)
			}
			for _, e := range ents {
				if err := ctx.Err(); err != nil {
					return err
				}
				id, err := ParseID(e.Name())
				if err != nil || e.Name() != id.String() || !strings.HasPrefix(e.Name(), a+b) || !e.Type().IsRegular() {
					continue // not a chunk: only the canonical name is one
				}
				fi, err := e.Info()
				if errors.Is(err, fs.ErrNotExist) {
					continue
				}
				if err != nil {
					return fmt.Errorf("walk chunk store: %w", err)
				}
				if err := fn(Info{ID: id, Stored: fi.Size(), ModTime: fi.ModTime()}); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// CleanTemp removes staged files older than cutoff.
func (d *Disk) CleanTemp(ctx context.Context, cutoff time.Time) (int, error) {
	ents, err := os.ReadDir(d.tmp)
	if err != nil {
		return 0, fmt.Errorf("clean temporary chunks: %w", err)
	}
	n := 0
	for _, e := range ents {
		fi, err := e.Info()
		if err != nil || !fi.ModTime().Before(cutoff) {
			continue
		}
		if err := os.Remove(filepath.Join(d.tmp, e.Name())); err == nil {
			n++
		}
	}
	return n, nil
}

func readDirNames(dir string) ([]string, error) {
	f, err := os.Open(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return f.Readdirnames(-1)
}

func isHexPair(s string) bool {
	return len(s) == 2 && strings.IndexFunc(s, func(r rune) bool {
		return !('0' <= r && r <= '9' || 'a' <= r && r <= 'f')
	}) < 0
}

func randomSuffix() string {
	var b [6]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// ensureDir makes a chunk directory (and its parent) unless it is known to
// exist. A directory made here becomes durable with the commit's flush.
func (d *Disk) ensureDir(dir string) error {
	if _, ok := d.dirs.Load(dir); ok {
		return nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	d.dirs.Store(dir, struct{}{})
	return nil
}

// Compact gives the file system back the room of small chunks removed
// since the last time (gc calls it after a sweep).
func (d *Disk) Compact(ctx context.Context) error { return d.small.compact(ctx) }

// NewBatch starts a batch of writes.
func (d *Disk) NewBatch() Batch {
	return &diskBatch{d: d, small: &smallBatch{s: d.small, tmp: d.tmp}}
}

type staged struct {
	id   ID
	temp string
}

type diskBatch struct {
	d        *Disk
	small    *smallBatch
	commitMu sync.Mutex // one Commit at a time: a later one waits for an earlier
	mu       sync.Mutex // guards staged and failed
	staged   []staged
	failed   error
}

var encodeBufs = sync.Pool{New: func() any { b := make([]byte, 0, 64<<10); return &b }}

func (b *diskBatch) Add(ctx context.Context, id ID, plain []byte) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if len(plain) > MaxChunkSize {
		return 0, fmt.Errorf("stage chunk %s: %d bytes is above the chunk limit %d", id, len(plain), MaxChunkSize)
	}
	bp := encodeBufs.Get().(*[]byte)
	defer encodeBufs.Put(bp)
	hdr, payload, codec := b.d.codecs.EncodeParts(*bp, plain)
	if codec != CodecPlain && cap(payload) > cap(*bp) {
		*bp = payload[:0] // keep the grown buffer for the next chunk
	}
	if n := len(hdr) + len(payload); n <= b.d.smallMax {
		data := make([]byte, 0, n)
		data = append(append(data, hdr[:]...), payload...)
		if err := b.small.add(smallChunk{id: id, data: data}); err != nil {
			return 0, fmt.Errorf("stage chunk %s: %w", id, err)
		}
		return int64(n), nil
	}

	f, err := b.d.create(b.d.tmp, tmpPrefix+id.Short()+"-*")
	if err != nil {
		return 0, fmt.Errorf("stage chunk %s: %w", id, err)
	}
	_, werr := f.Write(hdr[:])
	if werr == nil {
		_, werr = f.Write(payload)
	}
	cerr := f.Close()
	if err := errors.Join(werr, cerr); err != nil {
		os.Remove(f.Name())
		return 0, fmt.Errorf("stage chunk %s: %w", id, err)
	}
	if len(plain) >= earlyWriteback {
		b.d.early.hint(f.Name())
	}
	// The chunk's directory is made now, by the staging writer, so that the
	// commit only renames; creating directories is slow on some file
	// systems, and the commit is serial.
	if err := b.d.ensureDir(filepath.Dir(b.d.Path(id))); err != nil {
		os.Remove(f.Name())
		return 0, fmt.Errorf("stage chunk %s: %w", id, err)
	}
	b.mu.Lock()
	b.staged = append(b.staged, staged{id: id, temp: f.Name()})
	b.mu.Unlock()
	return int64(len(hdr) + len(payload)), nil
}

// Commit flushes the staged files, renames them into place and flushes the
// renames. A crash before the second flush leaves complete files under final
// names, or staged files that CleanTemp removes later; never a torn chunk.
func (b *diskBatch) Commit(ctx context.Context) error {
	b.commitMu.Lock()
	defer b.commitMu.Unlock()
	b.mu.Lock()
	if b.failed != nil {
		defer b.mu.Unlock()
		return b.failed
	}
	todo := b.staged
	b.staged = nil
	b.mu.Unlock()
	var err error
	if len(todo) > 0 {
		err = b.commit(ctx, todo)
	}
	if err == nil {
		err = b.small.commit(ctx)
	}
	if err != nil {
		b.mu.Lock()
		b.failed = err
		b.staged = append(b.staged, todo...)
		b.mu.Unlock()
	}
	return err
}

func (b *diskBatch) commit(ctx context.Context, todo []staged) error {
	temps := make([]string, len(todo))
	for i, s := range todo {
		temps[i] = s.temp
	}
	if err := b.d.flush.Files(temps); err != nil {
		return fmt.Errorf("flush chunks: %w", err)
	}
	dirs := make(map[string]struct{})
	for i, s := range todo {
		if err := ctx.Err(); err != nil {
			return err
		}
		p := b.d.Path(s.id)
		dir := filepath.Dir(p)
		err := os.Rename(s.temp, p)
		if errors.Is(err, fs.ErrNotExist) {
			// Removed since staging (a sweep of empty directories, or a
			// test): make it again.
			b.d.dirs.Delete(dir)
			if err = b.d.ensureDir(dir); err == nil {
				err = os.Rename(s.temp, p)
			}
		}
		dirs[filepath.Dir(dir)] = struct{}{}
		dirs[filepath.Dir(filepath.Dir(dir))] = struct{}{}
		if err != nil {
			return fmt.Errorf("store chunk %s: %w", s.id, err)
		}
		todo[i].temp = ""
		dirs[dir] = struct{}{}
	}
	dirs[b.d.tmp] = struct{}{}
	if err := b.d.flush.Dirs(dirs); err != nil {
		return fmt.Errorf("flush chunk directories: %w", err)
	}
	return nil
}

func (b *diskBatch) Abort() {
	b.small.abort()
	b.mu.Lock()
	todo := b.staged
	b.staged = nil
	b.mu.Unlock()
	for _, s := range todo {
		if s.temp != "" {
			os.Remove(s.temp)
		}
	}
}
