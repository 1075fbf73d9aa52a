package node

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"
	"golang.org/x/sync/semaphore"

	"github.com/loftstore/loft/fault"
	"github.com/loftstore/loft/names"
	"github.com/loftstore/loft/store"
	"github.com/loftstore/loft/transfer"
)

// RemotePutResult adds what crossed the network to a put's result.
type RemotePutResult struct {
	PutResult
	BytesSent    int64 `json:"bytes_sent"`
	BytesSkipped int64 `json:"bytes_skipped"` // chunks the node already held
}

// Put chunks files here and stores them on the peer. Its inputs are those
// of the local put, found by the same walk with the same checks (walk,
// source.open): what a local put would store, skip or refuse, this stores,
// skips or refuses alike. For each batch of chunks it asks which ones the
// peer lacks (have/want), sends only those, and once the peer has
// acknowledged every chunk durable, commits the version there in one
// transaction. The peer holds a write session for the connection, so
// chunks it said it has stay until the commit. Run again after an
// interruption, it sends only what the peer still lacks.
func (r *Remote) Put(ctx context.Context, paths []string, opts PutOptions) (RemotePutResult, error) {
	res := RemotePutResult{PutResult: PutResult{Skipped: []Skip{}, Warnings: []Skip{}, Failed: []Failure{}}}
	start := r.n.now()
	if err := r.call(ctx, transfer.OpBeginPut, transfer.Empty{}, nil); err != nil {
		return res, err
	}
	defer r.call(context.WithoutCancel(ctx), transfer.OpEndPut, transfer.Empty{}, nil)
	skip := func(s Skip) { res.Skipped = append(res.Skipped, s) }
	fail := func(f Failure) { res.Failed = append(res.Failed, f) }
	err := walk(ctx, paths, opts.As, func(s *source) error {
		rd, before, err := s.open(ctx, opts.Stdin)
		if err != nil {
			fail(newFailure(s.path, err))
			return nil
		}
		defer rd.Close()
		mode, mtime := s.mode, r.n.now()
		if before != nil {
			mode, mtime = before.Mode(), before.ModTime()
		}
		err = r.putFile(ctx, rd, s.name, uint32(mode.Perm()), mtime, &res)
		var re *readError
		if errors.As(err, &re) {
			fail(newFailure(s.path, re.err))
			return nil
		}
		if err == nil && changed(rd, before) {
			res.Warnings = append(res.Warnings, Skip{Path: s.path, Reason: "changed while it was read; stored as read"})
		}
		return err
	}, skip, fail)
	res.Duration = r.n.now().Sub(start)
	return res, err
}

// readError is a failure to read one input: it fails that input, not the
// put.
type readError struct{ err error }

func (e *readError) Error() string { return e.err.Error() }
func (e *readError) Unwrap() error { return e.err }

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

// putFile stores one input on the peer. A failure to read it is a
// *readError; any other error fails the put.
func (r *Remote) putFile(ctx context.Context, rd io.Reader, name names.Name, mode uint32, mtime time.Time, res *RemotePutResult) error {
	g, gctx := errgroup.WithContext(ctx)
	budget := semaphore.NewWeighted(remoteBudget)
	work := make(chan []pending)
	var sending idSet // chunks sent but not yet acknowledged: bounded by the budget
	var sent, skipped, newChunks, reused atomic.Int64
	for range remoteStreams {
		g.Go(func() error {
			for batch := range work {
				acked, n, err := r.pushData(gctx, batch, budget)
				for _, c := range batch {
					sending.remove(c.id)
				}
				sent.Add(n)
				if err != nil {
					return err
				}
				if acked != len(batch) {
					return fault.E(fault.Peer, "peer stored %d of %d chunks", acked, len(batch))
				}
				newChunks.Add(int64(len(batch)))
			}
			return nil
		})
	}
	var refs []transfer.ChunkRef
	var size int64
	ctype := contentType(name.String(), nil) // as put guesses it, from the name and the first chunk
	whole := sha256.New()
	g.Go(func() error {
		defer close(work)
		ch := store.NewChunker(rd, r.n.params)
		var batch []pending
		offer := func() error {
			if len(batch) == 0 {
				return nil
			}
			// A chunk repeated within the batch, or already on its way in
			// an earlier batch, is sent once: the rest are reused, as the
			// local put's claims make them. (Once acknowledged, the peer
			// answers that it has it.)
			ids := make([]store.ID, 0, len(batch))
			var unique []pending
			seen := make(map[store.ID]bool, len(batch))
			for _, b := range batch {
				if seen[b.id] || sending.has(b.id) {
					skipped.Add(int64(len(b.data)))
					reused.Add(1)
					r.release([]pending{b}, budget)
					continue
				}
				seen[b.id] = true
				ids = append(ids, b.id)
				unique = append(unique, b)
			}
			batch = nil
			var bits transfer.Bits
			if err := r.call(gctx, transfer.OpHave, transfer.IDList{IDs: ids}, &bits); err != nil {
				r.release(unique, budget)
				return err
			}
			if len(bits.Bits) != len(ids) {
				r.release(unique, budget)
				return fault.E(fault.Peer, "peer answered %d of %d chunks", len(bits.Bits), len(ids))
			}
			var missing []pending
			for i, b := range unique {
				if bits.Bits[i] {
					skipped.Add(int64(len(b.data)))
					reused.Add(1)
					r.release([]pending{b}, budget)
				} else {
					missing = append(missing, b)
					sending.add(b.id)
				}
			}
			if len(missing) == 0 {
				return nil
			}
			select {
			case work <- missing:
				return nil
			case <-gctx.Done():
				r.release(missing, budget)
				return gctx.Err()
			}
		}
		for {
			data, err := ch.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				r.release(batch, budget)
				return &readError{fmt.Errorf("read %s: %w", name, err)}
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
			if size == 0 {
				ctype = contentType(name.String(), data)
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
	req := transfer.CommitReq{Name: name.String(), Size: size, Mode: mode, MTime: mtime, ContentType: ctype, SHA256: sum}
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
// the peer acknowledged durable and the bytes sent. The chunks' IDs are
// distinct. Each chunk's buffer goes back to the pool as soon as the chunk
// is written to the stream: if the peer does not acknowledge it, the put
// fails, and its rerun reads the file again.
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

// idSet is a set of chunk IDs safe for concurrent use.
type idSet struct {
	mu  sync.Mutex
	set store.IDSet
}

func (s *idSet) add(id store.ID) {
	s.mu.Lock()
	if s.set == nil {
		s.set = store.IDSet{}
	}
	s.set.Add(id)
	s.mu.Unlock()
}

func (s *idSet) remove(id store.ID) {
	s.mu.Lock()
	delete(s.set, id)
	s.mu.Unlock()
}

func (s *idSet) has(id store.ID) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.set.Has(id)
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
