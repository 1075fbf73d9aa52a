package node

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"mime"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sync/errgroup"
	"golang.org/x/sync/semaphore"

	"github.com/loftstore/loft/catalog"
	"github.com/loftstore/loft/destdir"
	"github.com/loftstore/loft/names"
	"github.com/loftstore/loft/store"
)

// Limits of the put pipeline. Memory is bounded by these, never by the size
// of a file or of the repository.
const (
	// chunkBudget bounds the bytes of chunk data in flight (never less than
	// two chunks of the largest size). Two workers stay busy with 8 MiB;
	// more only raises the live heap, and with it how often the collector
	// runs under the process's memory target.
	chunkBudget = 8 << 20
	// filesInFlight bounds files read but not yet committed.
	filesInFlight = 256
	// readers is how many files are read and chunked at once.
	readers = 2
	// commitFiles, commitBytes and commitDelay say when finished files are
	// committed to the catalog: one transaction (and one flush) covers many
	// small files. The catalog work of a batch is serial, and what is left
	// of it when the reading ends is the tail of a put: 1,000 files of it
	// are about 0.2 s.
	commitFiles = 1000
	commitBytes = 256 << 20
	commitDelay = time.Second
	// progressEvery is how often Progress is called.
	progressEvery = 100 * time.Millisecond
)

// PutOptions configure Put.
type PutOptions struct {
	// As names the object for a single path or for stdin.
	As names.Name
	// Stdin is read for the path "-". An *os.File (a terminal, a pipe)
	// is read by a goroutine of its own, so that the end of ctx stops a
	// read that blocks; any other reader is read directly, by the put's
	// reader, and must return within a bounded time by itself (an HTTP
	// request body with read deadlines, a buffer).
	Stdin io.Reader
	// ContentType, when set, is the content type of what the path "-"
	// stores, instead of one detected from its name and first bytes.
	ContentType string
	// Meta, when set, is called once the path "-" was read to its end,
	// before its version is committed, for the metadata the version keeps
	// (an S3 gateway's ETag is the MD5 of what was read).
	Meta func() catalog.Meta
	// Commit, when set, commits what the path "-" read in place of adding
	// a version: it is given the version that would be added, inside the
	// transaction, after its chunks were made durable (a multipart
	// upload's part is stored this way). What it reports as Revived is
	// checked as a version's would be. The whole SHA-256 is not summed
	// for it (nv.SHA256 is zero): what a hook stores is a piece of
	// something summed as a whole later, as a part is when its upload
	// completes.
	Commit func(ctx context.Context, tx *catalog.Tx, nv catalog.NewVersion) (catalog.Added, error)
	// Progress, when set, is called from one goroutine every 100ms and once
	// at the end.
	Progress func(PutProgress)
	// Mirror makes the put of one directory a mirror: afterwards the
	// object named after it (or As) and everything below hold exactly the
	// tree, directories and symbolic links included; what the tree no
	// longer has is deleted, and a snapshot records the tree.
	Mirror bool
	// ForceRead reads every file, even one the files cache says is
	// unchanged.
	ForceRead bool
}

// PutProgress is a snapshot of a running put.
type PutProgress struct {
	FilesTotal int64 // found so far by a walk that runs ahead
	BytesTotal int64
	Files      int64 // committed or unchanged
	Bytes      int64 // read
	NewBytes   int64 // written to the chunk store
	Done       bool
}

// PutResult says what a put did.
type PutResult struct {
	Files        int64 `json:"files"`
	Unchanged    int64 `json:"unchanged"`
	Bytes        int64 `json:"bytes"`
	NewBytes     int64 `json:"new_bytes"`
	NewChunks    int64 `json:"new_chunks"`
	ReusedChunks int64 `json:"reused_chunks"`
	Pruned       int64 `json:"pruned_versions"`
	Removed      int64 `json:"removed"`    // deleted by a mirror put: gone from the tree
	Read         int64 `json:"files_read"` // files opened and read (not vouched for by the files cache)
	// Version is the version that the path "-" added (or found unchanged).
	Version *catalog.Version `json:"-"`
	// Snapshot is what a mirror put recorded.
	Snapshot *catalog.Snapshot `json:"snapshot,omitempty"`
	Skipped  []Skip            `json:"skipped"`
	Warnings []Skip            `json:"warnings"` // stored, with a remark
	Failed   []Failure         `json:"failed"`
	Duration time.Duration     `json:"duration_ns"`
}

// Put stores files and directory trees (recursively) as objects. A path
// "-" reads opts.Stdin and needs opts.As. Inputs that cannot be read are
// listed in Failed and the others are still stored; an error return means
// the put as a whole failed (the store, the catalog, cancellation), and
// nothing of it is left half-committed.
//
// On a full disk it fails with an error of kind fault.NoSpace that says
// how much room there is and how much the put still needed; the
// repository's reserve is left alone (see reserve.go).
func (n *Node) Put(ctx context.Context, paths []string, opts PutOptions) (PutResult, error) {
	start := n.now()
	var p *putter
	var err error
	if !n.ensureReserve() {
		// What is left is the room rm and gc need: a put leaves it to them.
		p, err = &putter{}, fmt.Errorf("the room left is kept for rm and gc: %w", syscall.ENOSPC)
	} else if p, err = n.newPutter(ctx, opts); err != nil {
		return PutResult{}, err
	} else {
		err = p.run(ctx, paths)
	}
	p.res.Duration = n.now().Sub(start)
	if errors.Is(err, syscall.ENOSPC) {
		// How much input is left, for the message: counted for a few seconds
		// at most (a large tree), and not at all once interrupted.
		cctx, cancel := context.WithTimeout(ctx, countFor)
		var total int64
		countInputs(cctx, paths, func(_, bytes int64) { total += bytes })
		if cctx.Err() != nil {
			total = 0 // not known
		}
		cancel()
		err = n.diskFull("put", max(0, total-p.res.Bytes), err)
	}
	return p.res, err
}

// racyWindow is how long before a put a file must have been last changed
// for the files cache to vouch for it later (the coarsest timestamp tick
// among the file systems loft expects, FAT's 2 s).
const racyWindow = 2 * time.Second

// countFor bounds counting the input left when a put meets a full disk.
const countFor = 5 * time.Second

type putter struct {
	n      *Node
	opts   PutOptions
	ctx    context.Context
	sess   *catalog.Session
	filter *catalog.Filter
	batch  store.Batch
	budget *semaphore.Weighted
	files  *semaphore.Weighted

	work       chan *chunkTask
	done       chan *fileTask // finished files, to the committer
	assemblers sync.WaitGroup

	claimsMu sync.Mutex
	claims   map[store.ID]*claim

	prog struct{ filesTotal, bytesTotal, files, bytes, newBytes atomic.Int64 }

	cancel   context.CancelCauseFunc
	fatalErr atomic.Pointer[error]

	resMu sync.Mutex
	res   PutResult

	// useCache is set when the files cache may vouch for files: not with
	// ForceRead, nor when it is empty.
	useCache bool
	// settled is the time (Unix ns) before which a file's mtime and ctime
	// must lie for the files cache to record it: racyWindow before the
	// put began.
	settled int64

	// A mirror put's view of its tree: every name the walk found, the
	// directories it could not read, and the counts for the snapshot.
	mirrorMu sync.Mutex
	seen     map[string]struct{}
	partial  []names.Name
	tree     struct{ files, dirs, links int64 }
}

// claim is the first decision about a chunk in this put; later sightings
// of the same chunk wait for it instead of deciding again.
type claim struct {
	done    chan struct{}
	written bool  // staged by this put (and durable once a store commit covers it)
	stored  int64 // size of the chunk's file, whoever wrote it
	err     error
}

// chunkTask is one chunk on its way through the pipeline. Its buffer has
// two holders, the worker that stores it and the assembler that hashes the
// whole file; the last to let go returns it to the pool.
type chunkTask struct {
	file    *fileTask
	data    []byte
	buf     *[]byte
	size    int64
	holders atomic.Int32
	// whole is set by the reader before it sends the task when the task is
	// the whole file: the file's SHA-256 is then the chunk's ID.
	whole  bool
	id     store.ID
	stored int64
	wrote  bool
	done   chan struct{} // closed by the worker once id, stored and err are set
	err    error
}

type fileTask struct {
	src     *source
	order   chan *chunkTask
	readErr error
	changed bool
	cached  bool              // the files cache says the head is this file: nothing to add
	stat    *catalog.FileStat // how the file looked when read, for the files cache
	ctype   string
	nv      catalog.NewVersion
	newB    int64
	newC    int64
	reused  int64
}

func (n *Node) newPutter(ctx context.Context, opts PutOptions) (*putter, error) {
	filter, err := n.chunkFilter(ctx)
	if err != nil {
		return nil, err
	}
	return &putter{
		n: n, opts: opts, filter: filter,
		budget: semaphore.NewWeighted(max(chunkBudget, 2*int64(n.params.Max))),
		files:  semaphore.NewWeighted(filesInFlight),
		work:   make(chan *chunkTask, 2*runtime.GOMAXPROCS(0)),
		done:   make(chan *fileTask, filesInFlight),
		claims: make(map[store.ID]*claim),
		res:    PutResult{Skipped: []Skip{}, Warnings: []Skip{}, Failed: []Failure{}},
	}, nil
}

func (p *putter) run(parent context.Context, paths []string) (err error) {
	ctx, cancel := context.WithCancelCause(parent)
	defer cancel(nil)
	p.ctx, p.cancel = ctx, cancel
	p.sess, err = p.n.cat.BeginSession(ctx, "put")
	if err != nil {
		return err
	}
	defer func() {
		if eerr := p.sess.End(context.WithoutCancel(ctx)); err == nil {
			err = eerr
		}
	}()
	// Every chunk row that existed when the session began must be in the
	// filter: a miss makes the put write the chunk itself, and only rows
	// made later are covered by the session. (The filter may have been
	// loaded long ago, or a moment before the session.)
	if err := p.n.cat.CatchUp(ctx, p.filter); err != nil {
		return err
	}
	p.batch = p.n.disk.NewBatch()
	defer p.batch.Abort()
	if !p.opts.ForceRead {
		if p.useCache, err = p.n.cat.HasCachedFiles(ctx); err != nil {
			return err
		}
	}
	p.settled = time.Now().Add(-racyWindow).UnixNano()

	stopProgress := p.startProgress(ctx, paths)
	defer stopProgress()

	g, gctx := errgroup.WithContext(ctx)
	p.ctx = gctx
	// The walk runs ahead of the readers; a stage between them asks the
	// files cache about a batch of files at a time.
	walked := make(chan *source, 2*cacheBatch)
	sources := make(chan *source, cacheBatch)
	g.Go(func() error {
		defer close(sources)
		return p.lookUpCached(gctx, walked, sources)
	})
	send := func(s *source) error {
		select {
		case walked <- s:
			return nil
		case <-gctx.Done():
			return gctx.Err()
		}
	}
	var prefix names.Name
	if p.opts.Mirror {
		if len(paths) != 1 || paths[0] == "-" {
			return fmt.Errorf("%w, not %d paths", ErrNotDir, len(paths))
		}
		if prefix, err = rootName(paths[0], p.opts.As); err != nil {
			return err
		}
		if fi, err := os.Stat(paths[0]); err != nil {
			return err
		} else if !fi.IsDir() {
			return fmt.Errorf("%s %w", paths[0], ErrNotDir)
		}
		p.seen = make(map[string]struct{})
	}
	g.Go(func() error {
		defer close(walked)
		if p.opts.Mirror {
			return walkMirror(gctx, paths[0], prefix, func(s *source) error {
				p.see(s)
				return send(s)
			}, p.skip, p.fail, func(n names.Name) {
				p.mirrorMu.Lock()
				p.partial = append(p.partial, n)
				p.mirrorMu.Unlock()
			})
		}
		return walk(gctx, paths, p.opts.As, send, p.skip, p.fail)
	})
	var readersWG sync.WaitGroup
	for range readers {
		readersWG.Add(1)
		g.Go(func() error {
			defer readersWG.Done()
			ch := store.NewChunker(nil, p.n.params) // one buffer per reader, reused
			for s := range sources {
				if err := p.read(s, ch); err != nil {
					return err
				}
			}
			return nil
		})
	}
	var workersWG sync.WaitGroup
	for range runtime.GOMAXPROCS(0) + 2 {
		workersWG.Add(1)
		g.Go(func() error {
			defer workersWG.Done()
			for t := range p.work {
				p.storeChunk(t)
			}
			return nil
		})
	}
	g.Go(func() error {
		readersWG.Wait()
		close(p.work)
		// Every file's assembler sends to p.done before releasing its slot,
		// so once all slots are free again no send is left.
		if err := p.files.Acquire(gctx, filesInFlight); err != nil {
			return err
		}
		close(p.done)
		return nil
	})
	g.Go(p.commitLoop)
	err = g.Wait()
	workersWG.Wait()
	// Every path of read closes the file's order channel, and workers finish
	// every task, so each assembler ends; none may touch the result after
	// Put returns it.
	p.assemblers.Wait()
	if fe := p.fatalErr.Load(); fe != nil {
		err = *fe // the cause, not the cancellation it led to
	}
	if err == nil && p.opts.Mirror {
		err = p.finishMirror(ctx, prefix, paths[0])
	}
	if err == nil {
		p.n.saveFilter(ctx)
	}
	return err
}

// vanished passes over a file of a tree that was removed between the walk
// and its read: for a mirror, it is not in the tree (so it is deleted).
func (p *putter) vanished(s *source) {
	if p.opts.Mirror {
		p.mirrorMu.Lock()
		delete(p.seen, s.name.String())
		switch s.kind {
		case catalog.KindDir:
			p.tree.dirs--
		case catalog.KindSymlink:
			p.tree.links--
		default:
			p.tree.files--
		}
		p.mirrorMu.Unlock()
	}
	p.skip(Skip{Path: s.path, Reason: "removed while the tree was walked"})
}

// see records a name of a mirror's tree.
func (p *putter) see(s *source) {
	p.mirrorMu.Lock()
	defer p.mirrorMu.Unlock()
	p.seen[s.name.String()] = struct{}{}
	switch s.kind {
	case catalog.KindDir:
		p.tree.dirs++
	case catalog.KindSymlink:
		p.tree.links++
	default:
		p.tree.files++
	}
}

// finishMirror deletes what the tree no longer has and records the
// snapshot, in one transaction: a snapshot exists only of a complete tree.
// Every file and entry is committed by now.
func (p *putter) finishMirror(ctx context.Context, prefix names.Name, dir string) error {
	keep := func(name string) bool {
		if _, ok := p.seen[name]; ok {
			return true
		}
		n, err := names.Parse(name)
		if err != nil {
			return true // not this put's to judge
		}
		for _, d := range p.partial {
			if d.AsPrefix().Contains(n) {
				return true
			}
		}
		return false
	}
	source, err := filepath.Abs(dir)
	if err != nil {
		source = dir
	}
	var snap catalog.Snapshot
	var removed int64
	p.resMu.Lock()
	failed := len(p.res.Failed)
	p.resMu.Unlock()
	err = p.n.cat.Tx(ctx, func(tx *catalog.Tx) error {
		var err error
		if removed, err = tx.DeleteMissing(ctx, prefix.AsPrefix(), keep); err != nil {
			return err
		}
		if failed > 0 {
			return nil // a snapshot is of a complete tree, or none
		}
		p.resMu.Lock()
		s := catalog.Snapshot{Source: source, Files: p.tree.files, Dirs: p.tree.dirs, Links: p.tree.links,
			Bytes: p.res.Bytes, NewBytes: p.res.NewBytes, Removed: removed}
		p.resMu.Unlock()
		snap, err = tx.AddSnapshot(ctx, prefix.AsPrefix(), s)
		return err
	})
	if err != nil {
		return fmt.Errorf("finish the mirror of %s: %w", dir, err)
	}
	p.resMu.Lock()
	defer p.resMu.Unlock()
	p.res.Removed = removed
	if failed > 0 {
		p.res.Warnings = append(p.res.Warnings, Skip{Path: dir,
			Reason: fmt.Sprintf("no snapshot recorded: %d inputs could not be stored (what they were stays as it was)", failed)})
	} else {
		p.res.Snapshot = &snap
	}
	return nil
}

// fatal records the first error that ends the whole put and stops it.
func (p *putter) fatal(err error) {
	if p.fatalErr.CompareAndSwap(nil, &err) {
		p.cancel(err)
	}
}

func (p *putter) skip(s Skip) {
	p.resMu.Lock()
	p.res.Skipped = append(p.res.Skipped, s)
	p.resMu.Unlock()
}

func (p *putter) fail(f Failure) {
	p.resMu.Lock()
	p.res.Failed = append(p.res.Failed, f)
	p.resMu.Unlock()
}

// newTask returns a chunk task of file ft with a buffer for n bytes, whose
// budget the caller holds.
func (p *putter) newTask(ft *fileTask, n int) *chunkTask {
	buf := p.n.bufs.Get(n)
	t := &chunkTask{file: ft, buf: buf, data: (*buf)[:n], size: int64(n), done: make(chan struct{})}
	t.holders.Store(2)
	return t
}

// send hands t to the workers and to its file's assembler. On an error
// (the put is over) it has closed ft.order.
func (p *putter) send(ctx context.Context, ft *fileTask, t *chunkTask) error {
	p.prog.bytes.Add(t.size)
	// To the workers first: once the assembler has a task, a worker must
	// be bound to finish it.
	select {
	case p.work <- t:
	case <-ctx.Done():
		p.release(t)
		close(ft.order)
		return ctx.Err()
	}
	select {
	case ft.order <- t:
		return nil
	case <-ctx.Done():
		p.drop(t) // the assembler's hold
		close(ft.order)
		return ctx.Err()
	}
}

// readWhole reads a file expected to hold size bytes, at most one chunk's
// worth, into a chunk task. When the file holds that or less it returns
// the task (nil for nothing read; a read error is ft.readErr). When it
// holds more (it grew since its stat), it returns instead a reader of the
// whole file, what was read first included, for the chunker. An error
// means the put is over.
func (p *putter) readWhole(ctx context.Context, ft *fileTask, r io.Reader, size int) (*chunkTask, io.Reader, error) {
	if err := p.budget.Acquire(ctx, store.BufferSize(size)); err != nil {
		return nil, nil, err
	}
	t := p.newTask(ft, size)
	n, err := readFull(r, t.data)
	if err == nil {
		var more [1]byte
		var m int
		if m, err = readFull(r, more[:]); m == 1 {
			// Grown: the chunker takes over, from the first byte.
			head := append(append(make([]byte, 0, n+1), t.data[:n]...), more[0])
			p.release(t)
			return nil, io.MultiReader(bytes.NewReader(head), r), nil
		}
	}
	if err == io.EOF {
		err = nil // the end, or shrunk since its stat: what is there is the file now
	}
	if err != nil {
		ft.readErr = fmt.Errorf("read %s: %w", ft.src.path, err)
	}
	if err != nil || n == 0 {
		p.release(t)
		return nil, nil, nil
	}
	// Shrunk: the budget goes back by what was not read.
	p.budget.Release(store.BufferSize(size) - store.BufferSize(n))
	t.data, t.size = t.data[:n], int64(n)
	return t, nil, nil
}

// readFull reads into buf until it is full or the reader fails; the end
// of the stream is io.EOF. A reader that keeps returning nothing without an
// error fails with io.ErrNoProgress, as it does in the chunker.
func readFull(r io.Reader, buf []byte) (int, error) {
	n, empty := 0, 0
	for n < len(buf) {
		m, err := r.Read(buf[n:])
		n += m
		if err != nil {
			return n, err
		}
		if m > 0 {
			empty = 0
		} else if empty++; empty >= 100 {
			return n, io.ErrNoProgress
		}
	}
	return n, nil
}

// cacheBatch is how many sources lookUpCached takes at most for one query.
const cacheBatch = 100

// lookUpCached passes the walk's sources on to the readers and, when the
// files cache may vouch for files, gives the regular files among them what
// it holds: one query for a batch of files, not one a file (the batch is
// what the walk has ready, up to cacheBatch).
func (p *putter) lookUpCached(ctx context.Context, in <-chan *source, out chan<- *source) error {
	batch := make([]*source, 0, cacheBatch)
	ns := make([]names.Name, 0, cacheBatch)
	for s := range in {
		batch = append(batch[:0], s)
	more:
		for len(batch) < cacheBatch {
			select {
			case s, ok := <-in:
				if !ok {
					break more
				}
				batch = append(batch, s)
			default:
				break more
			}
		}
		ns = ns[:0]
		for _, s := range batch {
			if p.useCache && s.kind == catalog.KindFile && !s.stream && s.path != "-" {
				ns = append(ns, s.name)
			}
		}
		if len(ns) > 0 {
			fc, err := p.n.cat.CachedFiles(ctx, ns)
			if err != nil {
				return err
			}
			for _, s := range batch {
				s.cache = fc
			}
		}
		for _, s := range batch {
			select {
			case out <- s:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}
	return nil
}

// read chunks one source and hands the chunks to the workers and, in order,
// to the file's assembler. It returns an error only for fatal conditions;
// a file that cannot be read is a Failure.
func (p *putter) read(s *source, ch *store.Chunker) error {
	ctx := p.ctx
	label := s.path
	// The stat is needed only here; a tree's sources live until its commit.
	defer func() { s.info = nil }()
	if s.info == nil && s.path != "-" && !s.stream {
		// Stat here, not in the walk: the readers stat (and read) several
		// files at once, which a cold cache needs.
		fi, err := os.Lstat(s.path)
		if errors.Is(err, fs.ErrNotExist) {
			p.vanished(s)
			return nil
		}
		if err != nil {
			p.fail(newFailure(s.path, err))
			return nil
		}
		if s.kind == catalog.KindFile && !fi.Mode().IsRegular() {
			// Swapped since the walk (a link now, say): never followed.
			p.fail(newFailure(s.path, fmt.Errorf("%s: changed kind while the tree was walked (now a %s)", s.path, destdir.KindOf(fi.Mode()))))
			return nil
		}
		s.info = fi
	}
	if s.kind != catalog.KindFile {
		t := s.info.Mode().Type()
		if (s.kind == catalog.KindDir) != (t == fs.ModeDir) || (s.kind == catalog.KindSymlink) != (t == fs.ModeSymlink) {
			p.fail(newFailure(s.path, fmt.Errorf("%s: changed kind while the tree was walked (now a %s)", s.path, destdir.KindOf(t))))
			return nil
		}
		if s.kind == catalog.KindSymlink {
			target, err := os.Readlink(s.path)
			if err != nil {
				p.fail(newFailure(s.path, err))
				return nil
			}
			s.target = target
		}
		return p.entry(&fileTask{src: s, nv: catalog.NewVersion{Name: s.name, Kind: s.kind, Target: s.target,
			Mode: modeBits(s.info.Mode()), MTime: s.info.ModTime()}})
	}
	if s.cache != nil && s.info != nil && s.info.Mode().IsRegular() {
		if st, ok := statOf(s.info); ok {
			if v, hit := s.cache.Hit(s.name, st); hit {
				p.prog.bytes.Add(v.Size)
				return p.entry(&fileTask{src: s, cached: true, reused: v.Chunks, nv: catalog.NewVersion{Name: s.name, Size: v.Size}})
			}
		}
	}
	r, before, err := s.open(ctx, p.opts.Stdin)
	if errors.Is(err, fs.ErrNotExist) && s.info != nil && s.path != "-" {
		p.vanished(s)
		return nil
	}
	if err != nil {
		p.fail(newFailure(s.path, err))
		return nil
	}
	defer r.Close()
	p.resMu.Lock()
	p.res.Read++
	p.resMu.Unlock()
	if before != nil {
		s.mode = before.Mode()
	}
	if err := p.files.Acquire(ctx, 1); err != nil {
		return err
	}
	ft := &fileTask{src: s, order: make(chan *chunkTask, 64), ctype: contentType(s.name.String(), nil)}
	p.assemblers.Go(func() { p.assemble(ft, label) })

	size := int64(-1)
	if before != nil {
		size = before.Size()
	}
	var src io.Reader = r
	if size > 0 && size <= int64(p.n.params.Min) {
		// No larger than the smallest chunk: the file is one chunk, so it
		// is read straight into that chunk's buffer, without a chunker
		// window to fill and copy out of. A file that grew since its stat
		// goes on through the chunker with what was read so far.
		t, rest, err := p.readWhole(ctx, ft, r, int(size))
		switch {
		case err != nil:
			close(ft.order)
			return err
		case t != nil:
			ft.ctype = contentType(s.name.String(), t.data)
			t.whole = rest == nil
			if err := p.send(ctx, ft, t); err != nil {
				return err
			}
		}
		src = rest
	}
	if src != nil {
		ch.ResetSize(src, p.n.params, size)
		for first := true; ; first = false {
			data, err := ch.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				ft.readErr = fmt.Errorf("read %s: %w", label, err)
				break
			}
			if first {
				ft.ctype = contentType(s.name.String(), data)
			}
			if err := p.budget.Acquire(ctx, store.BufferSize(len(data))); err != nil {
				close(ft.order)
				return err
			}
			t := p.newTask(ft, len(data))
			copy(t.data, data)
			if err := p.send(ctx, ft, t); err != nil {
				return err
			}
		}
	}
	if ft.readErr == nil && changed(r, before) {
		ft.changed = true
	}
	if before != nil && !ft.changed {
		// A file written just before or during the put may be written
		// again within the same timestamp tick (coarse on older kernels,
		// NFS, FAT) without its stat changing: it is not cached, and is
		// read again next time.
		if st, ok := statOf(before); ok && st.MTime < p.settled && st.CTime < p.settled {
			ft.stat = &st
		}
	}
	if before != nil {
		ft.nv.MTime = before.ModTime()
	} else {
		ft.nv.MTime = p.n.now()
	}
	close(ft.order)
	return nil
}

// assemble hashes the whole file as its chunks arrive, in order and
// without waiting for the workers, then collects the chunk references once
// each chunk is stored and passes the finished file to the committer.
func (p *putter) assemble(ft *fileTask, label string) {
	defer p.files.Release(1)
	var h hash.Hash
	if !p.hooked(ft) {
		h = sha256.New()
	}
	var size int64
	var tasks []*chunkTask
	for t := range ft.order {
		if h != nil && !t.whole {
			h.Write(t.data)
		}
		size += t.size
		tasks = append(tasks, t)
		p.drop(t)
	}
	ft.order = nil // closed and drained; the task waits for its commit without it
	refs := make([]catalog.ChunkRef, 0, len(tasks))
	var failed error
	for _, t := range tasks {
		<-t.done // workers finish every task, also after cancellation
		if t.err != nil && failed == nil {
			failed = t.err
		}
		refs = append(refs, catalog.ChunkRef{ID: t.id, Plain: t.size, Stored: t.stored})
		if t.wrote {
			ft.newB += t.stored
			ft.newC++
		} else {
			ft.reused++
		}
	}
	if failed != nil {
		return // fatal: the worker reported it and the put is stopping
	}
	if ft.readErr != nil {
		p.fail(newFailure(label, ft.readErr))
		return
	}
	ft.nv.Name = ft.src.name
	ft.nv.Size = size
	ft.nv.Mode = modeBits(ft.src.mode)
	ft.nv.ContentType = ft.ctype
	if ft.src.path == "-" {
		if p.opts.ContentType != "" {
			ft.nv.ContentType = p.opts.ContentType
		}
		if p.opts.Meta != nil {
			ft.nv.Meta = p.opts.Meta()
		}
	}
	switch {
	case h != nil && len(tasks) == 1 && tasks[0].whole:
		ft.nv.SHA256 = catalog.Digest(tasks[0].id) // summed once, by the worker
	case h != nil:
		ft.nv.SHA256 = catalog.Digest(sumOf(h))
	}
	ft.nv.Chunks = refs
	if ft.changed {
		p.resMu.Lock()
		p.res.Warnings = append(p.res.Warnings, Skip{Path: label, Reason: "changed while it was read; stored as read"})
		p.resMu.Unlock()
	}
	select {
	case p.done <- ft:
	case <-p.ctx.Done():
	}
}

// entry passes a file task that needs no reading (a directory, a link, a
// file the files cache vouches for) straight to the committer.
func (p *putter) entry(ft *fileTask) error {
	if err := p.files.Acquire(p.ctx, 1); err != nil {
		return err
	}
	defer p.files.Release(1)
	select {
	case p.done <- ft:
		return nil
	case <-p.ctx.Done():
		return p.ctx.Err()
	}
}

// modeBits is what a version keeps of a mode: the permissions and the
// setuid, setgid and sticky bits.
func modeBits(m fs.FileMode) uint32 {
	return uint32(m & (fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky))
}

func sumOf(h hash.Hash) (d [32]byte) {
	h.Sum(d[:0])
	return d
}

// drop lets go of one hold on the task's buffer.
func (p *putter) drop(t *chunkTask) {
	if t.holders.Add(-1) == 0 {
		p.release(t)
	}
}

func (p *putter) release(t *chunkTask) {
	p.budget.Release(store.BufferSize(int(t.size)))
	p.n.bufs.Put(t.buf)
	t.buf, t.data = nil, nil
}

// storeChunk hashes a chunk and stores it unless the repository has it.
func (p *putter) storeChunk(t *chunkTask) {
	defer p.drop(t)
	defer close(t.done)
	if err := p.ctx.Err(); err != nil {
		t.err = err
		return
	}
	t.id = store.Sum(t.data)
	p.claimsMu.Lock()
	c, seen := p.claims[t.id]
	if !seen {
		c = &claim{done: make(chan struct{})}
		p.claims[t.id] = c
	}
	p.claimsMu.Unlock()
	if seen {
		<-c.done
		t.stored, t.err = c.stored, c.err
		return
	}
	defer close(c.done)
	have, stored, err := p.have(t.id)
	if err == nil && !have {
		stored, err = p.batch.Add(p.ctx, t.id, t.data)
	}
	t.stored, c.stored = stored, stored
	if err != nil {
		c.err, t.err = err, err
		p.fatal(err)
		return
	}
	if have {
		return
	}
	c.written, t.wrote = true, true
	p.filter.Add(t.id)
	p.prog.newBytes.Add(t.stored)
}

// have reports whether the repository holds the chunk in a way this put may
// rely on without writing it, and the size of its file: referenced (GC
// spares anything that loses its references after this session began), or
// unreferenced but protected for this session with its file present.
func (p *putter) have(id store.ID) (bool, int64, error) {
	if !p.filter.MayHave(id) {
		return false, 0, nil
	}
	st, err := p.n.cat.Lookup(p.ctx, id)
	if err != nil || !st.Known || !st.Held {
		return false, 0, err // a chunk only a peer holds is written here too
	}
	if st.Refs > 0 {
		return true, st.Stored, nil
	}
	var ok bool
	err = p.n.cat.Tx(p.ctx, func(tx *catalog.Tx) error {
		ok, err = p.n.protectHeld(p.ctx, tx, id, p.sess.StartSeq)
		return err
	})
	return ok, st.Stored, err
}

// protectHeld protects an unreferenced chunk for the write session that
// started at change startSeq and reports whether the chunk can be relied
// on: it has a row and its file is there (a sweep that failed to commit may
// have removed the file but not the row; the writer then writes it again).
// Every writer that reuses a chunk it did not write checks this, in a
// transaction: a local put, and a client's put served here.
func (n *Node) protectHeld(ctx context.Context, tx *catalog.Tx, id store.ID, startSeq int64) (bool, error) {
	known, err := tx.Protect(ctx, id, startSeq)
	if err != nil || !known {
		return false, err
	}
	_, err = n.disk.Stat(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

// commitLoop collects finished files into batches and hands each to two
// committer goroutines in turn, so that collecting, and with it the
// pipeline, goes on while a batch commits: one store commit makes a batch's
// chunks durable, then one catalog transaction adds its versions, while the
// store commit of the next batch runs (the two are different files; the
// catalog transaction is the longer, and the one every batch waits for).
// At most one batch waits at each stage. A failed commit stops the put.
func (p *putter) commitLoop() error {
	batches := make(chan []*fileTask, 1)
	durable := make(chan []*fileTask)
	committed := make(chan struct{})
	stage := func(in <-chan []*fileTask, out chan<- []*fileTask, commit func([]*fileTask) error) {
		if out != nil {
			defer close(out)
		} else {
			defer close(committed)
		}
		for files := range in {
			if err := commit(files); err != nil {
				p.fatal(err)
				for range in {
				}
				return
			}
			if out != nil {
				out <- files
			}
		}
	}
	go stage(batches, durable, p.commitStore)
	go stage(durable, nil, p.commit)
	var pending []*fileTask
	var pendingBytes int64
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	hand := func() error {
		if len(pending) == 0 {
			return nil
		}
		select {
		case batches <- pending:
			pending, pendingBytes = nil, 0
			return nil
		case <-p.ctx.Done():
			return p.ctx.Err()
		}
	}
	err := func() error {
		for {
			select {
			case ft, ok := <-p.done:
				if !ok {
					return hand()
				}
				if len(pending) == 0 {
					timer.Reset(commitDelay)
				}
				pending = append(pending, ft)
				pendingBytes += ft.nv.Size
				if len(pending) >= commitFiles || pendingBytes >= commitBytes {
					if err := hand(); err != nil {
						return err
					}
				}
			case <-timer.C:
				if err := hand(); err != nil {
					return err
				}
			case <-p.ctx.Done():
				return p.ctx.Err()
			}
		}
	}()
	close(batches)
	<-committed
	return err
}

// commitStore makes every chunk the put has stored so far durable: those
// of files, and of any file read since.
func (p *putter) commitStore(files []*fileTask) error {
	return p.batch.Commit(p.ctx)
}

// commit adds the versions of files, whose chunks commitStore made
// durable, in one catalog transaction.
func (p *putter) commit(files []*fileTask) error {
	if len(files) == 0 {
		return nil
	}
	added := make([]catalog.Added, len(files))
	err := p.n.cat.Tx(p.ctx, func(tx *catalog.Tx) error {
		fresh := make([]names.Name, 0, len(files))
		for _, ft := range files {
			if !ft.cached && !p.hooked(ft) {
				fresh = append(fresh, ft.nv.Name)
			}
		}
		if err := tx.Prefetch(p.ctx, fresh); err != nil {
			return err
		}
		nvs := make([]catalog.NewVersion, 0, len(fresh))
		for _, ft := range files {
			if !ft.cached && !p.hooked(ft) {
				nvs = append(nvs, ft.nv)
			}
		}
		got, err := tx.AddVersions(p.ctx, nvs)
		if err != nil {
			return err
		}
		var cache []catalog.CachedStat
		for i, ft := range files {
			if ft.cached {
				added[i] = catalog.Added{Unchanged: true}
				continue
			}
			var a catalog.Added
			if p.hooked(ft) {
				if a, err = p.opts.Commit(p.ctx, tx, ft.nv); err != nil {
					return err
				}
			} else {
				a = got[0]
				got = got[1:]
			}
			if err := p.checkRevived(a.Revived); err != nil {
				return fmt.Errorf("add %s: %w", ft.nv.Name, err)
			}
			if ft.stat != nil {
				cache = append(cache, catalog.CachedStat{Name: ft.nv.Name, Stat: *ft.stat, Num: a.Version.Num})
			}
			if ft.src.path == "-" {
				p.resMu.Lock()
				p.res.Version = &a.Version
				p.resMu.Unlock()
			}
			added[i] = a
		}
		return tx.CacheFiles(p.ctx, cache)
	})
	if err != nil {
		return err
	}
	p.claimsMu.Lock()
	for _, ft := range files {
		for _, r := range ft.nv.Chunks {
			delete(p.claims, r.ID) // committed: later sightings find the row
		}
	}
	p.claimsMu.Unlock()
	p.resMu.Lock()
	defer p.resMu.Unlock()
	for i, ft := range files {
		if added[i].Unchanged {
			p.res.Unchanged++
		} else {
			p.res.Files++
		}
		p.res.Bytes += ft.nv.Size
		p.res.NewBytes += ft.newB
		p.res.NewChunks += ft.newC
		p.res.ReusedChunks += ft.reused
		p.res.Pruned += int64(len(added[i].Pruned))
		p.prog.files.Add(1)
	}
	return nil
}

// hooked reports whether the file is committed by opts.Commit.
func (p *putter) hooked(ft *fileTask) bool { return p.opts.Commit != nil && ft.src.path == "-" }

// checkRevived makes sure that every chunk the transaction gave its first
// reference, and that this put did not write itself, still has its file:
// it was protected (see have). It runs inside the transaction, where no
// sweep can interleave, and turns any hole in the rules that keep such
// files alive into a failed put rather than a version that points at
// nothing. (A chunk this put wrote was made durable by the store commit
// just before, and its session keeps sweeps off it.)
func (p *putter) checkRevived(ids []store.ID) error {
	for _, id := range ids {
		p.claimsMu.Lock()
		c, ok := p.claims[id]
		p.claimsMu.Unlock()
		if ok && c.written {
			continue
		}
		if _, err := p.n.disk.Stat(p.ctx, id); err != nil {
			return fmt.Errorf("chunk %s was removed while this put ran: %w", id, err)
		}
	}
	return nil
}

// startProgress runs the progress reporter and the walk that counts totals.
func (p *putter) startProgress(ctx context.Context, paths []string) (stop func()) {
	if p.opts.Progress == nil {
		return func() {}
	}
	ctx, cancel := context.WithCancel(ctx)
	var counting sync.WaitGroup
	counting.Go(func() {
		countInputs(ctx, paths, func(files, bytes int64) {
			p.prog.filesTotal.Add(files)
			p.prog.bytesTotal.Add(bytes)
		})
	})
	stopTick := tick(ctx, func(done bool) {
		p.opts.Progress(PutProgress{FilesTotal: p.prog.filesTotal.Load(), BytesTotal: p.prog.bytesTotal.Load(),
			Files: p.prog.files.Load(), Bytes: p.prog.bytes.Load(), NewBytes: p.prog.newBytes.Load(), Done: done})
	})
	return func() {
		cancel()
		counting.Wait()
		stopTick()
	}
}

// tick calls report(false) every progressEvery until the returned stop is
// called, which calls report(true) once the ticking has ended.
func tick(ctx context.Context, report func(done bool)) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(progressEvery)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				report(false)
			case <-ctx.Done():
				return
			}
		}
	}()
	return func() {
		cancel()
		<-finished
		report(true)
	}
}

// contentType guesses from the name, then from the first bytes.
func contentType(name string, head []byte) string {
	if t := mime.TypeByExtension(path.Ext(name)); t != "" {
		return t
	}
	if len(head) == 0 {
		return ""
	}
	return http.DetectContentType(head[:min(len(head), 512)])
}
