package node

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sync/errgroup"
	"golang.org/x/sync/semaphore"

	"github.com/loftstore/loft/catalog"
	"github.com/loftstore/loft/destdir"
	"github.com/loftstore/loft/fault"
	"github.com/loftstore/loft/names"
	"github.com/loftstore/loft/store"
)

var (
	// ErrNeedDest means a destination must be given (restoring everything).
	ErrNeedDest = fault.New(fault.Invalid, "needs a destination directory")
	// ErrIsDir means a single-file form was used on a directory of objects.
	ErrIsDir = fault.New(fault.Invalid, "is a directory")
)

// GetOptions configure Get.
type GetOptions struct {
	// Version selects a version of a single object; 0 means the newest.
	Version int64
	// At restores what a snapshot saw (see ParseAt): the tree, or one
	// object, as it was then. Only this node's snapshots.
	At At
	// Stdout receives the object for the destination "-".
	Stdout io.Writer
	// Progress, when set, is called from one goroutine every 100ms and once
	// at the end.
	Progress func(GetProgress)
}

// GetProgress is a snapshot of a running get.
type GetProgress struct {
	FilesTotal int64
	BytesTotal int64
	Files      int64
	Bytes      int64
	Done       bool
}

// GetResult says what a get wrote.
type GetResult struct {
	Files    int64         `json:"files"`
	Bytes    int64         `json:"bytes"`
	Failed   []Failure     `json:"failed"`
	Duration time.Duration `json:"duration_ns"`
}

// Get writes an object, or every live object under a prefix, to dest.
// Each file is written to a temporary name, verified (every chunk against
// its ID, the whole against the version's size and SHA-256), flushed, given
// its mode and mtime, and only then renamed into place: a failed get never
// leaves a partial file under the final name. Every file is written through
// a destdir.Dir, so none lands outside dest. For "-" the object streams to
// opts.Stdout, each chunk verified before it is written.
func (n *Node) Get(ctx context.Context, target names.Prefix, dest string, opts GetOptions) (GetResult, error) {
	var src getSource = localSource{n.cat, n}
	if !opts.At.IsZero() {
		if opts.Version > 0 {
			return GetResult{}, fault.E(fault.Invalid, "--version and --at: give one")
		}
		snap, err := n.FindSnapshot(ctx, target, opts.At)
		if err != nil {
			return GetResult{}, err
		}
		src = atSource{localSource{n.cat, n}, snap.Seq}
	}
	return n.get(ctx, src, target, dest, opts)
}

// atSource reads the tree as a snapshot saw it: the newest versions
// written at or before change seq.
type atSource struct {
	localSource
	seq int64
}

func (s atSource) Head(ctx context.Context, name names.Name) (catalog.Version, error) {
	return s.HeadAt(ctx, name, s.seq)
}

func (s atSource) List(ctx context.Context, prefix names.Prefix, opts catalog.ListOptions, fn func(catalog.Entry) error) error {
	opts.AtSeq = s.seq
	return s.Catalog.List(ctx, prefix, opts, fn)
}

func (s atSource) Walk(ctx context.Context, prefix names.Prefix, fn func(catalog.Version) error) error {
	return s.List(ctx, prefix, catalog.ListOptions{Recursive: true, Below: true}, func(e catalog.Entry) error { return fn(e.Head) })
}

// getSource is where a get reads versions and chunks: this node's
// repository, or a peer's. The names in the versions it returns are as the
// source holds them: the getter parses each before it maps it to a path.
type getSource interface {
	Version(ctx context.Context, name names.Name, num int64) (catalog.Version, error)
	Head(ctx context.Context, name names.Name) (catalog.Version, error)
	List(ctx context.Context, prefix names.Prefix, opts catalog.ListOptions, fn func(catalog.Entry) error) error
	Walk(ctx context.Context, prefix names.Prefix, fn func(catalog.Version) error) error
	Chunks(ctx context.Context, v catalog.Version, from int64, fn func(idx int64, ref catalog.ChunkRef) error) error
	// Read returns a chunk's plain bytes, verified against its ID.
	Read(ctx context.Context, id store.ID, buf []byte) ([]byte, error)
}

type localSource struct {
	*catalog.Catalog
	n *Node
}

func (s localSource) Read(ctx context.Context, id store.ID, buf []byte) ([]byte, error) {
	return s.n.cl.ReadChunk(ctx, id, buf)
}

func (n *Node) get(ctx context.Context, src getSource, target names.Prefix, dest string, opts GetOptions) (GetResult, error) {
	start := n.now()
	g := &getter{n: n, src: src, opts: opts, res: GetResult{Failed: []Failure{}},
		budget: semaphore.NewWeighted(max(readBudget, store.BufferSize(store.MaxStoredSize)))}
	stop := g.startProgress(ctx)
	err := g.run(ctx, target, dest)
	stop()
	g.res.Files, g.res.Bytes = g.files.Load(), g.bytes.Load()
	g.res.Duration = n.now().Sub(start)
	return g.res, err
}

type getter struct {
	n                      *Node
	src                    getSource
	opts                   GetOptions
	res                    GetResult
	files, bytes           atomic.Int64
	filesTotal, bytesTotal atomic.Int64
	// budget bounds the chunk buffers of every file being written at once.
	budget *semaphore.Weighted
	failMu sync.Mutex
}

func (g *getter) run(ctx context.Context, target names.Prefix, dest string) error {
	if name, ok := target.Name(); ok {
		v, err := g.single(ctx, name)
		switch {
		case err == nil && v.Kind == catalog.KindDir:
			// A stored directory: its tree.
		case err == nil:
			return g.one(ctx, v, dest)
		case !errors.Is(err, fault.NotFound) && !errors.Is(err, fault.Deleted):
			return err
		default:
			// Not an object (or a deleted one): maybe a directory of
			// objects. (A peer answers an empty listing with not-found:
			// that is no children, and the object's own error stands.)
			has, derr := g.hasChildren(ctx, name)
			if derr != nil && !errors.Is(derr, fault.NotFound) {
				return derr
			}
			if !has {
				return err
			}
		}
	}
	if g.opts.Version > 0 {
		return fmt.Errorf("%s %w: --version applies to one object", target, ErrIsDir)
	}
	return g.tree(ctx, target, dest)
}

// single resolves name to the version to restore.
func (g *getter) single(ctx context.Context, name names.Name) (catalog.Version, error) {
	if g.opts.Version > 0 {
		v, err := g.src.Version(ctx, name, g.opts.Version)
		if err == nil && v.Deleted {
			err = fmt.Errorf("%s version %d is a deletion: %w", name, v.Num, catalog.ErrDeleted)
		}
		return v, err
	}
	v, err := g.src.Head(ctx, name)
	if err == nil && v.Deleted {
		err = fmt.Errorf("object %s: %w (loft versions %s lists what can be restored)", name, catalog.ErrDeleted, name)
	}
	return v, err
}

func (g *getter) hasChildren(ctx context.Context, name names.Name) (bool, error) {
	found := false
	err := g.src.List(ctx, name.AsPrefix(), catalog.ListOptions{Recursive: true, Below: true}, func(catalog.Entry) error {
		found = true
		return errStop
	})
	if errors.Is(err, errStop) {
		err = nil
	}
	return found, err
}

var errStop = errors.New("stop")

// one writes a single object to dest: standard output, a file, or into a
// directory under the object's base name.
func (g *getter) one(ctx context.Context, v catalog.Version, dest string) error {
	g.filesTotal.Add(1)
	g.bytesTotal.Add(v.Size)
	if dest == "-" {
		if v.Kind != catalog.KindFile {
			return fault.E(fault.Invalid, "%s is a %s, not a file: give a destination", v.Name, v.Kind)
		}
		if g.opts.Stdout == nil {
			return fmt.Errorf("get %s: no standard output", v.Name)
		}
		sum, err := g.copyVersion(ctx, v, nil, whole, g.opts.Stdout)
		if err == nil {
			err = checkWhole(v, sum)
		}
		if err != nil {
			return g.prunedMeanwhile(ctx, v, err)
		}
		g.files.Add(1)
		return nil
	}
	name, err := names.Parse(v.Name)
	if err != nil {
		return err // a name the source should never have returned
	}
	dir, file := ".", name.Base()
	switch fi, err := os.Stat(dest); {
	case dest == "":
	case err == nil && fi.IsDir():
		dir = dest
	default:
		dir, file = filepath.Dir(dest), filepath.Base(dest)
	}
	rel, err := names.Parse(file)
	if err != nil {
		return fmt.Errorf("get %s: destination %s: %w", v.Name, dest, err)
	}
	d, err := destdir.Open(dir)
	if err != nil {
		return fmt.Errorf("get %s: %w", v.Name, err)
	}
	defer d.Close()
	if v.Kind == catalog.KindSymlink {
		return g.writeLink(v, d, rel)
	}
	if err := g.writeFile(ctx, v, nil, d, rel, true); err != nil {
		return err
	}
	return d.Sync()
}

// chunkLister is a source that reads the chunk lists of many versions at
// once (a catalog: see catalog.ChunkLists).
type chunkLister interface {
	ChunkLists(ctx context.Context, vs []catalog.Version) ([][]catalog.ChunkRef, error)
}

// listBatch is how many files of a tree restore have their chunk lists
// read together.
const listBatch = 100

// restoreWorkers is how many files a tree restore writes at once: reading
// a chunk, writing and closing a small file each wait on the disk, and
// the chunk buffers of all of them share one budget.
const restoreWorkers = 8

// tree restores every live object below target into the directory dest,
// each under its name relative to target: files (several at once, each
// through a temporary name), and stored directories and symbolic links. A
// directory gets its mode and mtime after everything in it is written,
// deepest first; target's own directory entry goes to dest itself. One
// flush of the file system at the end makes it all durable.
func (g *getter) tree(ctx context.Context, target names.Prefix, dest string) error {
	switch {
	case dest == "-":
		return fmt.Errorf("%s %w: cannot write a directory to standard output", target, ErrIsDir)
	case dest == "" && target.IsRoot():
		return fmt.Errorf("restoring everything %w", ErrNeedDest)
	case dest == "":
		n, _ := target.Name()
		dest = n.Base()
	}
	// Totals first, so progress can show them; without progress, only
	// whether there is anything.
	var root *catalog.Version
	if n, ok := target.Name(); ok {
		if v, err := g.src.Head(ctx, n); err == nil && !v.Deleted && v.Kind == catalog.KindDir {
			root = &v
		}
	}
	if err := g.src.Walk(ctx, target, func(v catalog.Version) error {
		g.filesTotal.Add(1)
		g.bytesTotal.Add(v.Size)
		if g.opts.Progress == nil {
			return errEnough
		}
		return nil
	}); err != nil && !errors.Is(err, errEnough) {
		return err
	}
	if g.filesTotal.Load() == 0 && root == nil {
		return fmt.Errorf("%s: %w", target, catalog.ErrNotFound)
	}
	if fi, err := os.Stat(dest); err == nil && !fi.IsDir() {
		return fmt.Errorf("%s: %w: a tree needs a directory", dest, ErrDestination)
	}
	if err := os.MkdirAll(dest, 0o755); err != nil {
		return fmt.Errorf("get: %w", err)
	}
	d, err := destdir.Open(dest)
	if err != nil {
		return fmt.Errorf("get: %w", err)
	}
	defer d.Close()

	type dirMeta struct {
		rel  string
		mode fs.FileMode
		time time.Time
	}
	var dirs []dirMeta
	var links []catalog.Version
	if root != nil {
		dirs = append(dirs, dirMeta{"", fs.FileMode(root.Mode), root.MTime})
	}
	type fileWork struct {
		v    catalog.Version
		refs []catalog.ChunkRef // nil: asked of the source by the worker
	}
	work := make(chan fileWork)
	eg, ectx := errgroup.WithContext(ctx)
	for range restoreWorkers {
		eg.Go(func() error {
			for fw := range work {
				v := fw.v
				rel, err := relPath(target, v.Name)
				if err == nil {
					err = g.writeFile(ectx, v, fw.refs, d, rel, false) // unflushed: the end flushes all
				}
				if err != nil {
					if ectx.Err() != nil || errors.Is(err, syscall.ENOSPC) {
						return err // every later file would fail the same way
					}
					g.fail(newFailure(v.Name, err))
				}
			}
			return nil
		})
	}
	// Files go to the workers a batch at a time, with their chunk lists
	// read in one query when the source can (its own catalog).
	lister, _ := g.src.(chunkLister)
	var files []catalog.Version
	hand := func() error {
		var lists [][]catalog.ChunkRef
		if lister != nil && len(files) > 0 {
			var err error
			if lists, err = lister.ChunkLists(ectx, files); err != nil {
				if ectx.Err() != nil {
					return ectx.Err()
				}
				// Each file asks for its own list, and fails alone if
				// it must, as a file whose list is unreadable always did.
				g.n.log.Debug("chunk lists of a batch of files", "err", err)
				lists = nil
			}
		}
		for i, v := range files {
			fw := fileWork{v: v}
			if lists != nil {
				fw.refs = lists[i]
			}
			select {
			case work <- fw:
			case <-ectx.Done():
				return ectx.Err()
			}
		}
		files = files[:0]
		return nil
	}
	eg.Go(func() error {
		defer close(work)
		err := g.src.Walk(ectx, target, func(v catalog.Version) error {
			if v.Kind == catalog.KindDir {
				// Made now, so the files in it find it; finished last.
				rel, err := relPath(target, v.Name)
				if err == nil {
					err = d.MkdirAll(rel)
				}
				if err != nil {
					g.fail(newFailure(v.Name, err))
					return nil
				}
				dirs = append(dirs, dirMeta{rel.String(), fs.FileMode(v.Mode), v.MTime})
				g.files.Add(1)
				return nil
			}
			if v.Kind == catalog.KindSymlink {
				// Made after every file: no write goes through a link
				// this restore made, whatever the names below it.
				links = append(links, v)
				return nil
			}
			if files = append(files, v); len(files) == listBatch {
				return hand()
			}
			return nil
		})
		if err == nil {
			err = hand()
		}
		return err
	})
	if err := eg.Wait(); err != nil {
		return err
	}
	for _, v := range links {
		rel, err := relPath(target, v.Name)
		if err == nil {
			err = g.writeLink(v, d, rel)
		}
		if err != nil {
			g.fail(newFailure(v.Name, err))
		}
	}
	// Deepest first: a directory's name sorts before everything in it.
	sort.Slice(dirs, func(i, j int) bool { return dirs[i].rel > dirs[j].rel })
	for _, m := range dirs {
		if err := d.SetDir(m.rel, m.mode, m.time); err != nil {
			g.fail(newFailure(path.Join(target.String(), m.rel), err))
		}
	}
	return d.SyncAll()
}

func (g *getter) fail(f Failure) {
	g.failMu.Lock()
	g.res.Failed = append(g.res.Failed, f)
	g.failMu.Unlock()
}

// writeLink restores a symbolic link as a link: its target is never
// followed, wherever it points.
func (g *getter) writeLink(v catalog.Version, d *destdir.Dir, rel names.Name) error {
	if v.Target == "" || len(v.Target) > catalog.MaxTarget || strings.IndexByte(v.Target, 0) >= 0 {
		return fault.E(fault.Integrity, "get %s: a symbolic link without a usable target", v.Name)
	}
	if err := d.Symlink(rel, v.Target, v.MTime); err != nil {
		return fmt.Errorf("get %s: %w", v.Name, err)
	}
	g.files.Add(1)
	return nil
}

// relPath parses an object name a source returned and gives the path it
// has below target. A name that does not parse, or is not below target,
// is refused: a peer may send anything.
func relPath(target names.Prefix, name string) (names.Name, error) {
	n, err := names.Parse(name)
	if err != nil {
		return names.Name{}, err
	}
	rel, ok := target.Rel(n)
	if !ok {
		return names.Name{}, fmt.Errorf("%w %q: not below %q", names.ErrBad, name, target)
	}
	return names.Parse(rel)
}

// writeFile restores one version to rel in d, through a temporary file,
// flushed when sync is set.
func (g *getter) writeFile(ctx context.Context, v catalog.Version, refs []catalog.ChunkRef, d *destdir.Dir, rel names.Name, sync bool) (err error) {
	if v.Kind != catalog.KindFile {
		return fault.E(fault.Integrity, "get %s: a %q is not a file", v.Name, v.Kind)
	}
	f, err := d.Create(rel)
	if err != nil {
		return fmt.Errorf("get %s: %w", v.Name, err)
	}
	defer f.Abort()
	sum, err := g.copyVersion(ctx, v, refs, whole, f)
	if err == nil {
		err = checkWhole(v, sum)
	}
	if err != nil {
		return g.prunedMeanwhile(ctx, v, err)
	}
	if err := f.Commit(fs.FileMode(v.Mode), v.MTime, sync); err != nil {
		return fmt.Errorf("get %s: %w", v.Name, err)
	}
	g.files.Add(1)
	return nil
}

// ErrDestination means something at the destination is in the way: not a
// regular file where get writes a file, not a directory where it writes a
// tree.
var ErrDestination = destdir.ErrInTheWay

// prunedMeanwhile explains an integrity error of a version that was pruned
// while it was read (its chunk list and chunks go with it): that is not
// damage, and is reported as the version being gone.
func (g *getter) prunedMeanwhile(ctx context.Context, v catalog.Version, err error) error {
	if !errors.Is(err, store.ErrIntegrity) {
		return err
	}
	name, perr := names.Parse(v.Name)
	if perr != nil {
		return err
	}
	if _, verr := g.src.Version(ctx, name, v.Num); errors.Is(verr, fault.NotFound) {
		return fmt.Errorf("%s version %d was pruned while it was read: %w", v.Name, v.Num, catalog.ErrNotFound)
	}
	return err
}

type wholeSum struct {
	size int64
	sum  [32]byte
}

func checkWhole(v catalog.Version, got wholeSum) error {
	if got.size != v.Size || got.sum != v.SHA256 {
		return &store.IntegrityError{Object: v.Name, Reason: fmt.Sprintf(
			"reassembled %d bytes with SHA-256 %x, version %d says %d bytes with %s",
			got.size, got.sum[:6], v.Num, v.Size, v.SHA256.String()[:12])}
	}
	return nil
}

// readAhead is how many chunks are fetched ahead of the writer, and
// readBudget how many bytes of buffers they may hold, whatever the number
// of CPUs.
func readAhead() int { return runtime.GOMAXPROCS(0) + 2 }

const readBudget = 16 << 20

type fetch struct {
	ref  catalog.ChunkRef
	pos  int64 // of the chunk's first byte in the version
	buf  *[]byte
	data []byte
	err  error
	done chan struct{}
}

// span is a byte range of a version: from off, n bytes (n < 0: to the end).
type span struct{ off, n int64 }

// whole is the span of all of a version.
var whole = span{0, -1}

// end returns the offset after the span in a version of size bytes.
func (s span) end(size int64) int64 {
	if s.n < 0 || s.off+s.n > size {
		return size
	}
	return s.off + s.n
}

// errEnough ends a walk early: of a version's chunks past the span it
// reads, of a tree once it is known not to be empty.
var errEnough = errors.New("span read")

// copyVersion writes the bytes of span sp of v to w in order, fetching and
// verifying several chunks at once (and none outside the span), and
// returns the size and SHA-256 of what it wrote.
func (g *getter) copyVersion(ctx context.Context, v catalog.Version, refs []catalog.ChunkRef, sp span, w io.Writer) (wholeSum, error) {
	if sp == whole && len(refs) == 1 {
		return g.copyOne(ctx, v, refs[0], w)
	}
	var out wholeSum
	window := readAhead()
	budget := g.budget
	// The budget is shared by the files written at once: what a failed
	// copy still holds goes back when it returns.
	var held atomic.Int64
	defer func() { budget.Release(held.Load()) }()
	jobs := make(chan *fetch, window)
	order := make(chan *fetch, window)
	eg, ectx := errgroup.WithContext(ctx)
	eg.Go(func() error {
		defer close(jobs)
		defer close(order)
		end := sp.end(v.Size)
		var pos int64
		chunks := g.src.Chunks
		if refs != nil {
			chunks = listed(refs)
		}
		err := chunks(ectx, v, 0, func(_ int64, ref catalog.ChunkRef) error {
			if err := ref.Check(); err != nil {
				return fault.E(fault.Integrity, "get %s: %w", v.Name, err)
			}
			at := pos
			pos += ref.Plain
			if sp != whole && at >= end {
				return errEnough
			}
			if sp != whole && pos <= sp.off {
				return nil // before the span
			}
			f := &fetch{ref: ref, pos: at, done: make(chan struct{})}
			if err := budget.Acquire(ectx, store.BufferSize(int(ref.Stored))); err != nil {
				return err
			}
			held.Add(store.BufferSize(int(ref.Stored)))
			select {
			case jobs <- f:
			case <-ectx.Done():
				return ectx.Err()
			}
			select {
			case order <- f:
				return nil
			case <-ectx.Done():
				return ectx.Err()
			}
		})
		if errors.Is(err, errEnough) {
			return nil
		}
		return err
	})
	for range window {
		eg.Go(func() error {
			for f := range jobs {
				f.buf = g.n.bufs.Get(int(f.ref.Stored))
				f.data, f.err = g.src.Read(ectx, f.ref.ID, *f.buf)
				close(f.done)
			}
			return nil
		})
	}
	h := sha256.New()
	eg.Go(func() error {
		for f := range order {
			select {
			case <-f.done:
			case <-ectx.Done():
				return ectx.Err()
			}
			if f.err != nil {
				return chunkError(v, f.ref.ID, f.err)
			}
			if err := plainSize(v, f.ref, f.data); err != nil {
				return err
			}
			data := f.data
			if sp != whole {
				data = data[max(0, sp.off-f.pos):min(int64(len(data)), sp.end(v.Size)-f.pos)]
			}
			h.Write(data)
			if _, err := w.Write(data); err != nil {
				return fmt.Errorf("get %s: %w", v.Name, err)
			}
			out.size += int64(len(data))
			g.bytes.Add(int64(len(data)))
			g.n.bufs.Put(f.buf)
			budget.Release(store.BufferSize(int(f.ref.Stored)))
			held.Add(-store.BufferSize(int(f.ref.Stored)))
			f.buf, f.data = nil, nil
		}
		return nil
	})
	if err := eg.Wait(); err != nil {
		return out, err
	}
	h.Sum(out.sum[:0])
	return out, nil
}

// copyOne writes the whole of a version of one chunk, ref, to w, without
// the pipeline of copyVersion: most files of a tree are one chunk. The
// source verified the chunk against its ID, the SHA-256 of these very
// bytes, so that is the sum of the whole.
func (g *getter) copyOne(ctx context.Context, v catalog.Version, ref catalog.ChunkRef, w io.Writer) (wholeSum, error) {
	if err := ref.Check(); err != nil {
		return wholeSum{}, fault.E(fault.Integrity, "get %s: %w", v.Name, err)
	}
	size := store.BufferSize(int(ref.Stored))
	if err := g.budget.Acquire(ctx, size); err != nil {
		return wholeSum{}, err
	}
	defer g.budget.Release(size)
	buf := g.n.bufs.Get(int(ref.Stored))
	defer g.n.bufs.Put(buf)
	data, err := g.src.Read(ctx, ref.ID, *buf)
	if err != nil {
		return wholeSum{}, chunkError(v, ref.ID, err)
	}
	if err := plainSize(v, ref, data); err != nil {
		return wholeSum{}, err
	}
	if _, err := w.Write(data); err != nil {
		return wholeSum{}, fmt.Errorf("get %s: %w", v.Name, err)
	}
	g.bytes.Add(int64(len(data)))
	return wholeSum{size: int64(len(data)), sum: ref.ID}, nil
}

// plainSize checks that a chunk of v, as read, holds the bytes its
// reference says.
func plainSize(v catalog.Version, ref catalog.ChunkRef, data []byte) error {
	if int64(len(data)) != ref.Plain {
		return &store.IntegrityError{ID: ref.ID, Object: v.Name, Reason: fmt.Sprintf(
			"chunk holds %d bytes, the catalog says %d", len(data), ref.Plain)}
	}
	return nil
}

// listed serves a chunk list already read as Chunks would from a source.
func listed(refs []catalog.ChunkRef) func(context.Context, catalog.Version, int64, func(int64, catalog.ChunkRef) error) error {
	return func(ctx context.Context, _ catalog.Version, from int64, fn func(int64, catalog.ChunkRef) error) error {
		for i := from; i < int64(len(refs)); i++ {
			if err := fn(i, refs[i]); err != nil {
				return err
			}
		}
		return ctx.Err()
	}
}

// chunkError names the object in errors about its chunks.
func chunkError(v catalog.Version, id store.ID, err error) error {
	var ie *store.IntegrityError
	if errors.As(err, &ie) {
		e := *ie
		e.Object = v.Name
		return &e
	}
	if errors.Is(err, store.ErrNotFound) {
		return &store.IntegrityError{ID: id, Object: v.Name, Reason: "chunk file is missing"}
	}
	return fmt.Errorf("get %s: %w", v.Name, err)
}

func (g *getter) startProgress(ctx context.Context) (stop func()) {
	if g.opts.Progress == nil {
		return func() {}
	}
	return tick(ctx, func(done bool) {
		g.opts.Progress(GetProgress{FilesTotal: g.filesTotal.Load(), BytesTotal: g.bytesTotal.Load(),
			Files: g.files.Load(), Bytes: g.bytes.Load(), Done: done})
	})
}
