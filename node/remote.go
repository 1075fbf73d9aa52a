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
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"
	"golang.org/x/sync/semaphore"

	"github.com/loftstore/loft/catalog"
	"github.com/loftstore/loft/fault"
	"github.com/loftstore/loft/store"
	"github.com/loftstore/loft/transfer"
)

// Remote is a paired peer used as the repository: the CLI's --node. Reads
// and writes go over one connection; this node lends only its identity.
type Remote struct {
	n    *Node
	Peer catalog.Peer
	c    *transfer.Conn
}

// Remote connects to a paired peer named by ID, ID prefix or name; ref ""
// means the default-node setting.
func (n *Node) Remote(ctx context.Context, ref string) (*Remote, error) {
	if ref == "" {
		var err error
		if ref, err = n.cat.Config(ctx, "default-node"); err != nil {
			return nil, err
		}
		if ref == "" {
			return nil, fmt.Errorf("--node: %w: no peer given and no default-node set (loft config set default-node PEER)", ErrNoPeer)
		}
	}
	p, err := n.cat.FindPeer(ctx, ref)
	if errors.Is(err, catalog.ErrNotFound) {
		return nil, fmt.Errorf("--node %s: %w (loft peer ls shows the paired ones)", ref, ErrNoPeer)
	}
	if err != nil {
		return nil, err
	}
	c, err := n.cl.Conn(ctx, p.ID)
	if err != nil {
		return nil, err
	}
	return &Remote{n: n, Peer: p, c: c}, nil
}

func (r *Remote) call(ctx context.Context, op transfer.Op, req, resp any) error {
	return r.c.Call(ctx, op, req, resp)
}

// List pages through the peer's listing.
func (r *Remote) List(ctx context.Context, prefix string, opts catalog.ListOptions, fn func(catalog.Entry) error) error {
	req := transfer.ListReq{Prefix: prefix, Recursive: opts.Recursive, Deleted: opts.Deleted, Limit: transfer.MaxEntries}
	for range 1 << 20 {
		var resp transfer.ListResp
		if err := r.call(ctx, transfer.OpList, req, &resp); err != nil {
			return err
		}
		for _, e := range resp.Entries {
			if err := fn(catalog.Entry{Name: e.Name, Dir: e.Dir, Versions: e.Versions, Head: versionOf(e.Head)}); err != nil {
				return err
			}
		}
		if !resp.More || len(resp.Entries) == 0 {
			return nil
		}
		req.After = resp.Entries[len(resp.Entries)-1].Name
	}
	return nil
}

func (r *Remote) Versions(ctx context.Context, name string) ([]catalog.Version, error) {
	var resp transfer.VersionsResp
	if err := r.call(ctx, transfer.OpVersions, transfer.NameReq{Name: name}, &resp); err != nil {
		return nil, err
	}
	out := make([]catalog.Version, len(resp.Versions))
	for i, v := range resp.Versions {
		out[i] = versionOf(v)
	}
	return out, nil
}

func (r *Remote) Remove(ctx context.Context, names []string, recursive bool) (RemoveResult, error) {
	var res RemoveResult
	err := r.call(ctx, transfer.OpRemove, transfer.RemoveReq{Names: names, Recursive: recursive}, &res)
	for i := range res.Failed {
		f := &res.Failed[i]
		f.Err = fault.E(fault.Named(f.Code), "%s", f.Msg)
	}
	return res, err
}

func (r *Remote) Restore(ctx context.Context, name string, num int64) (RestoreResult, error) {
	var res RestoreResult
	err := r.call(ctx, transfer.OpRestore, transfer.RestoreReq{Name: name, Num: num}, &res)
	return res, err
}

func (r *Remote) Stat(ctx context.Context) (StatResult, error) {
	var res StatResult
	err := r.call(ctx, transfer.OpStat, transfer.Empty{}, &res)
	return res, err
}

func (r *Remote) Status(ctx context.Context) (Status, error) {
	var res Status
	err := r.call(ctx, transfer.OpStatus, transfer.Empty{}, &res)
	return res, err
}

// Get reads from the peer: versions, chunk lists and chunks all come over
// the connection, each chunk verified on arrival.
func (r *Remote) Get(ctx context.Context, name, dest string, opts GetOptions) (GetResult, error) {
	return r.n.get(ctx, remoteSource{r}, name, dest, opts)
}

type remoteSource struct{ r *Remote }

func (s remoteSource) Version(ctx context.Context, name string, num int64) (catalog.Version, error) {
	var v transfer.Version
	err := s.r.call(ctx, transfer.OpLookup, transfer.LookupReq{Name: name, Num: num}, &v)
	return versionOf(v), err
}

func (s remoteSource) Head(ctx context.Context, name string) (catalog.Version, error) {
	return s.Version(ctx, name, 0)
}

func (s remoteSource) List(ctx context.Context, prefix string, opts catalog.ListOptions, fn func(catalog.Entry) error) error {
	return s.r.List(ctx, prefix, opts, fn)
}

// Walk calls fn with the head of every live object below name.
func (s remoteSource) Walk(ctx context.Context, name string, fn func(catalog.Version) error) error {
	prefix := ""
	if name != "" {
		prefix = name + "/"
	}
	return s.r.List(ctx, prefix, catalog.ListOptions{Recursive: true}, func(e catalog.Entry) error {
		if e.Dir || e.Head.Deleted {
			return nil
		}
		return fn(e.Head)
	})
}

func (s remoteSource) Chunks(ctx context.Context, v catalog.Version, from int64, fn func(idx int64, ref catalog.ChunkRef) error) error {
	for idx := from; idx < v.Chunks; {
		var resp transfer.ChunksResp
		err := s.r.call(ctx, transfer.OpChunkList, transfer.ChunksReq{Name: v.Name, Num: v.Num, From: idx, Limit: transfer.MaxIDs}, &resp)
		if err != nil {
			return err
		}
		if len(resp.Chunks) == 0 {
			return fmt.Errorf("%s version %d: peer sent %d of %d chunk references", v.Name, v.Num, idx, v.Chunks)
		}
		for _, ref := range resp.Chunks {
			if err := fn(idx, catalog.ChunkRef{ID: ref.ID, Plain: ref.Plain, Stored: ref.Stored}); err != nil {
				return err
			}
			idx++
		}
	}
	return nil
}

func (s remoteSource) Read(ctx context.Context, id store.ID, buf []byte) ([]byte, error) {
	data, err := s.r.n.cl.FetchFrom(ctx, s.r.Peer.ID, id, buf, true)
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("chunk %s: %w", id.Short(), store.ErrNotFound)
	}
	return data, err
}

// RemotePutResult adds what crossed the network to a put's result.
type RemotePutResult struct {
	PutResult
	BytesSent    int64 `json:"bytes_sent"`
	BytesSkipped int64 `json:"bytes_skipped"` // chunks the node already held
}

// Put chunks files here and stores them on the peer: for each batch of
// chunks it asks which ones the peer lacks (have/want), sends only those,
// and once the peer has acknowledged every chunk durable, commits the
// version there in one transaction. The peer holds a write session for
// the connection, so chunks it said it has stay until the commit. Run
// again after an interruption, it sends only what the peer still lacks.
func (r *Remote) Put(ctx context.Context, paths []string, opts PutOptions) (RemotePutResult, error) {
	res := RemotePutResult{PutResult: PutResult{Skipped: []Skip{}, Warnings: []Skip{}, Failed: []Failure{}}}
	start := r.n.now()
	if err := r.call(ctx, transfer.OpBeginPut, transfer.Empty{}, nil); err != nil {
		return res, err
	}
	defer r.call(context.WithoutCancel(ctx), transfer.OpEndPut, transfer.Empty{}, nil)
	for _, p := range paths {
		if err := r.putPath(ctx, p, opts, &res); err != nil {
			return res, err
		}
	}
	res.Duration = r.n.now().Sub(start)
	return res, nil
}

func (r *Remote) putPath(ctx context.Context, p string, opts PutOptions, res *RemotePutResult) error {
	if p == "-" {
		if opts.As == "" {
			return fmt.Errorf("put -: %w", ErrNeedName)
		}
		return r.putFile(ctx, opts.Stdin, opts.As, 0o644, r.n.now(), res)
	}
	fi, err := os.Stat(p)
	if err != nil {
		return err
	}
	base := opts.As
	if base == "" {
		base = filepath.ToSlash(filepath.Base(filepath.Clean(p)))
	}
	if !fi.IsDir() {
		return r.putOne(ctx, p, base, fi, res)
	}
	return filepath.WalkDir(p, func(fp string, d fs.DirEntry, err error) error {
		if err != nil {
			res.Failed = append(res.Failed, newFailure(fp, err))
			return nil
		}
		if d.IsDir() || !d.Type().IsRegular() {
			if !d.IsDir() {
				res.Skipped = append(res.Skipped, Skip{Path: fp, Reason: "not a regular file"})
			}
			return nil
		}
		rel, _ := filepath.Rel(p, fp)
		fi, err := d.Info()
		if err != nil {
			res.Failed = append(res.Failed, newFailure(fp, err))
			return nil
		}
		return r.putOne(ctx, fp, path.Join(base, filepath.ToSlash(rel)), fi, res)
	})
}

func (r *Remote) putOne(ctx context.Context, fp, name string, fi fs.FileInfo, res *RemotePutResult) error {
	f, err := os.Open(fp)
	if err != nil {
		res.Failed = append(res.Failed, newFailure(fp, err))
		return nil
	}
	defer f.Close()
	return r.putFile(ctx, f, name, uint32(fi.Mode().Perm()), fi.ModTime(), res)
}

// A remote put offers chunks in batches of remoteBatch (one have/want
// round trip each) and sends the missing ones on up to remoteStreams
// streams at once. remoteBudget bounds the chunk bytes held in memory:
// read but not yet acknowledged by the peer. It stays well below the
// process's soft memory limit, or the collector would run without pause.
const (
	remoteBatch   = 8
	remoteStreams = 4
	remoteBudget  = 20 << 20
)

func (r *Remote) putFile(ctx context.Context, rd io.Reader, name string, mode uint32, mtime time.Time, res *RemotePutResult) error {
	if err := catalog.ValidName(name); err != nil {
		return err
	}
	g, gctx := errgroup.WithContext(ctx)
	budget := semaphore.NewWeighted(remoteBudget)
	work := make(chan []pending)
	var sent, skipped, newChunks, reused atomic.Int64
	for range remoteStreams {
		g.Go(func() error {
			for batch := range work {
				acked, n, err := r.pushData(gctx, batch, budget)
				sent.Add(n)
				if err != nil {
					return err
				}
				if acked != len(batch) {
					return fmt.Errorf("peer stored %d of %d chunks", acked, len(batch))
				}
				newChunks.Add(int64(len(batch)))
			}
			return nil
		})
	}
	var refs []transfer.ChunkRef
	var size int64
	whole := sha256.New()
	g.Go(func() error {
		defer close(work)
		ch := store.NewChunker(rd, r.n.params)
		var batch []pending
		offer := func() error {
			if len(batch) == 0 {
				return nil
			}
			ids := make([]store.ID, len(batch))
			for i, b := range batch {
				ids[i] = b.id
			}
			var bits transfer.Bits
			if err := r.call(gctx, transfer.OpHave, transfer.IDList{IDs: ids}, &bits); err != nil {
				return err
			}
			if len(bits.Bits) != len(ids) {
				return fmt.Errorf("peer answered %d of %d chunks", len(bits.Bits), len(ids))
			}
			var missing []pending
			for i, b := range batch {
				if bits.Bits[i] {
					skipped.Add(int64(len(b.data)))
					reused.Add(1)
					r.release([]pending{b}, budget)
				} else {
					missing = append(missing, b)
				}
			}
			batch = nil
			if len(missing) == 0 {
				return nil
			}
			select {
			case work <- missing:
				return nil
			case <-gctx.Done():
				return gctx.Err()
			}
		}
		for {
			data, err := ch.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				return fmt.Errorf("read %s: %w", name, err)
			}
			need := store.BufferSize(len(data))
			if !budget.TryAcquire(need) {
				// The budget is held by chunks in flight and by this batch:
				// send the batch on before waiting, or nothing would free it.
				if err := offer(); err != nil {
					return err
				}
				if err := budget.Acquire(gctx, need); err != nil {
					return err
				}
			}
			buf := r.n.bufs.Get(len(data))
			id := store.Sum(data)
			whole.Write(data)
			size += int64(len(data))
			refs = append(refs, transfer.ChunkRef{ID: id, Plain: int64(len(data)), Stored: int64(len(data))})
			batch = append(batch, pending{id: id, data: append((*buf)[:0], data...), buf: buf})
			if len(batch) == remoteBatch {
				if err := offer(); err != nil {
					return err
				}
			}
		}
		return offer()
	})
	err := g.Wait()
	res.BytesSent += sent.Load()
	res.BytesSkipped += skipped.Load()
	res.NewBytes += sent.Load()
	if err != nil {
		return err
	}
	// Every chunk is acknowledged durable on the peer: commit the version.
	var sum [32]byte
	copy(sum[:], whole.Sum(nil))
	req := transfer.CommitReq{Name: name, Size: size, Mode: mode, MTime: mtime, SHA256: sum}
	for len(refs) > transfer.MaxIDs {
		page := req
		page.Chunks, page.More = refs[:transfer.MaxIDs], true
		if err := r.call(ctx, transfer.OpCommit, page, nil); err != nil {
			return err
		}
		refs = refs[transfer.MaxIDs:]
	}
	req.Chunks = refs
	var cr transfer.CommitResp
	if err := r.call(ctx, transfer.OpCommit, req, &cr); err != nil {
		return err
	}
	if cr.Unchanged {
		res.Unchanged++
	} else {
		res.Files++
	}
	res.Bytes += size
	res.NewChunks += newChunks.Load()
	res.ReusedChunks += reused.Load()
	return nil
}

// pushData sends chunks held in memory on one stream and returns how many
// the peer acknowledged durable and the bytes sent. Each chunk's buffer goes
// back to the pool as soon as the chunk is written to the stream: if the
// peer does not acknowledge it, the put fails, and its rerun reads the
// file again.
func (r *Remote) pushData(ctx context.Context, chunks []pending, budget *semaphore.Weighted) (int, int64, error) {
	byID := make(map[store.ID]pending, len(chunks))
	ids := make([]store.ID, len(chunks))
	for i, c := range chunks {
		ids[i] = c.id
		byID[c.id] = c
	}
	read := func(_ context.Context, id store.ID, _ []byte) ([]byte, error) { return byID[id].data, nil }
	written := func(id store.ID) {
		if c, ok := byID[id]; ok {
			delete(byID, id)
			r.release([]pending{c}, budget)
		}
	}
	acked, sent, err := r.n.cl.Push(ctx, r.c, ids, read, written)
	for _, c := range byID { // not written: an error stopped the stream
		r.release([]pending{c}, budget)
	}
	return len(acked), sent, err
}

// pending is a chunk of a remote put, waiting to be offered.
type pending struct {
	id   store.ID
	data []byte
	buf  *[]byte // from the node's buffer pool
}

// release returns chunks' buffers to the pool and their bytes to budget.
func (r *Remote) release(chunks []pending, budget *semaphore.Weighted) {
	for _, c := range chunks {
		budget.Release(int64(cap(*c.buf)))
		r.n.bufs.Put(c.buf)
	}
}

// Close ends the connection's use and closes the local node it came from.
func (r *Remote) Close() error { return r.n.Close() }
