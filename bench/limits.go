package main

import (
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/loftstore/loft/store"
)

// limits are the ceilings measured in this run.
type limits struct {
	sha      float64 // MB/s, one core
	md5      float64 // MB/s, one core: an S3 ETag's hash
	chunker  float64 // MB/s, one core
	pipeline float64 // MB/s: read + chunk + hash each chunk + hash the whole, all cores
	cpu      float64 // MB/s: the CPU ceiling of any put of new data, derived from sha and chunker
	bigFile  string
}

func (b *bench) limits(ctx context.Context, sz sizes) (*limits, error) {
	fmt.Println("limits:")
	l := &limits{bigFile: filepath.Join(b.dir, "big.bin")}
	if err := writeRandomFile(l.bigFile, sz.big, 1); err != nil {
		return nil, err
	}
	buf := randomBytes(64<<20, 2)
	l.sha = measure(func() int64 { sha256.Sum256(buf); return int64(len(buf)) })
	b.add(row{name: "limit: SHA-256, one core", value: fmt.Sprintf("%.0f MB/s", l.sha)})
	l.md5 = measure(func() int64 { md5.Sum(buf); return int64(len(buf)) })
	b.add(row{name: "limit: MD5, one core", value: fmt.Sprintf("%.0f MB/s", l.md5)})
	p := store.DefaultParams()
	ch := store.NewChunker(nil, p)
	l.chunker = measure(func() int64 {
		ch.Reset(bytesReader(buf), p)
		for {
			if _, err := ch.Next(); err != nil {
				return int64(len(buf))
			}
		}
	})
	b.add(row{name: "limit: chunker, one core", value: fmt.Sprintf("%.0f MB/s", l.chunker)})
	var err error
	if l.pipeline, err = pipelineLimit(l.bigFile, p); err != nil {
		return nil, err
	}
	b.add(row{name: "limit: read+chunk+hash pipeline, all cores", value: fmt.Sprintf("%.0f MB/s", l.pipeline)})
	// Every byte of a put is chunked once and hashed twice (its chunk's ID
	// and the whole object's SHA-256); spread over every core, that alone
	// takes 2/sha + 1/chunker seconds per MB of CPU.
	procs := float64(runtime.GOMAXPROCS(0))
	l.cpu = procs / (2/l.sha + 1/l.chunker)
	b.add(row{name: fmt.Sprintf("limit: chunk + 2 SHA-256 passes on %d cores (derived)", int(procs)), value: fmt.Sprintf("%.0f MB/s", l.cpu)})
	return l, nil
}

// measure runs fn for at least a second and returns MB/s.
func measure(fn func() int64) float64 {
	var n int64
	start := time.Now()
	for time.Since(start) < time.Second {
		n += fn()
	}
	return mbps(n, time.Since(start))
}

// pipelineLimit reads, chunks and hashes a file the way put does, without
// storing anything: the ceiling for a put of data the repository has.
func pipelineLimit(path string, p store.Params) (float64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	start := time.Now()
	ch := store.NewChunker(f, p)
	work := make(chan []byte, 8)
	whole := make(chan []byte, 8)
	var g errgroup.Group
	var n atomic.Int64
	for range runtime.GOMAXPROCS(0) {
		g.Go(func() error {
			for c := range work {
				sha256.Sum256(c)
			}
			return nil
		})
	}
	g.Go(func() error {
		h := sha256.New()
		for c := range whole {
			h.Write(c)
		}
		return nil
	})
	for {
		c, err := ch.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return 0, err
		}
		cp := append([]byte(nil), c...)
		n.Add(int64(len(cp)))
		work <- cp
		whole <- cp
	}
	close(work)
	close(whole)
	g.Wait()
	return mbps(n.Load(), time.Since(start)), nil
}

// writeLimit (settled first) writes total bytes as files of size each through the store's
// own batch, made durable exactly as put makes one file's chunks durable
// (one batch commit once all are staged), with as many writers as put uses,
// but with no chunking, hashing or catalog: the ceiling for new data.
func writeLimit(ctx context.Context, dir string, total int64, size int) (float64, error) {
	codecs, err := store.NewCodecs(0)
	if err != nil {
		return 0, err
	}
	defer codecs.Close()
	d, err := store.OpenDisk(dir, codecs, store.DiskOptions{})
	if err != nil {
		return 0, err
	}
	defer d.Close()
	defer os.RemoveAll(dir)
	pool := randomBytes(64<<20, 3)
	settle()
	batch := d.NewBatch()
	defer batch.Abort()
	var next atomic.Int64
	start := time.Now()
	g, gctx := errgroup.WithContext(ctx)
	for range runtime.GOMAXPROCS(0) + 2 {
		g.Go(func() error {
			for {
				i := next.Add(1) - 1
				if i*int64(size) >= total {
					return nil
				}
				var id store.ID
				binary.LittleEndian.PutUint64(id[:], uint64(i))
				id[31] = 0xbe
				off := (i * 7919 * 4096) % int64(len(pool)-size)
				if _, err := batch.Add(gctx, id, pool[off:off+int64(size)]); err != nil {
					return err
				}
			}
		})
	}
	if err := g.Wait(); err != nil {
		return 0, err
	}
	if err := batch.Commit(ctx); err != nil {
		return 0, err
	}
	return mbps(total, time.Since(start)), nil
}

// writeSmallLimit writes n files of 1-64 KiB through the store's batch,
// committed every 1000 files as put commits small files, with put's number
// of writers: the file system's ceiling for many small new files.
func writeSmallLimit(ctx context.Context, dir string, n int) (int, int64, time.Duration, error) {
	codecs, err := store.NewCodecs(0)
	if err != nil {
		return 0, 0, 0, err
	}
	defer codecs.Close()
	d, err := store.OpenDisk(dir, codecs, store.DiskOptions{})
	if err != nil {
		return 0, 0, 0, err
	}
	defer d.Close()
	defer os.RemoveAll(dir)
	pool := randomBytes(16<<20, 4)
	rng := rand.New(rand.NewPCG(4, 4))
	sizes := make([]int, n)
	var total int64
	for i := range sizes {
		sizes[i] = 1024 + rng.IntN(63*1024+1)
		total += int64(sizes[i])
	}
	settle()
	start := time.Now()
	for lo := 0; lo < n; lo += 1000 {
		batch := d.NewBatch()
		var next atomic.Int64
		next.Store(int64(lo))
		hi := min(lo+1000, n)
		g, gctx := errgroup.WithContext(ctx)
		for range runtime.GOMAXPROCS(0) + 2 {
			g.Go(func() error {
				for {
					i := next.Add(1) - 1
					if i >= int64(hi) {
						return nil
					}
					var id store.ID
					binary.LittleEndian.PutUint64(id[:], uint64(i))
					id[31] = 0x5a
					off := (i * 7919) % int64(len(pool)-sizes[i])
					if _, err := batch.Add(gctx, id, pool[off:off+int64(sizes[i])]); err != nil {
						return err
					}
				}
			})
		}
		if err := g.Wait(); err != nil {
			batch.Abort()
			return 0, 0, 0, err
		}
		if err := batch.Commit(ctx); err != nil {
			return 0, 0, 0, err
		}
	}
	return n, total, time.Since(start), nil
}

func randomBytes(n int, seed uint64) []byte {
	b := make([]byte, n)
	rand.NewChaCha8(seedOf(seed)).Read(b)
	return b
}

func seedOf(s uint64) (seed [32]byte) {
	binary.LittleEndian.PutUint64(seed[:], s)
	return seed
}

// writeRandomFile writes size incompressible bytes from a seeded generator.
func writeRandomFile(path string, size int64, seed uint64) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	_, err = io.CopyN(f, rand.NewChaCha8(seedOf(seed)), size)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

type byteReader struct {
	b []byte
}

func bytesReader(b []byte) *byteReader { return &byteReader{b} }

func (r *byteReader) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, io.EOF
	}
	n := copy(p, r.b)
	r.b = r.b[n:]
	return n, nil
}

func human(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%d GiB", n>>30)
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d B", n)
}
