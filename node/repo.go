// Package node is the local node: it opens a repository and composes the
// chunk store, the catalog and garbage collection into the operations the
// CLI and the dashboard use. (Serving peers comes with the peers work.)
package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/loftstore/loft/catalog"
	"github.com/loftstore/loft/cluster"
	"github.com/loftstore/loft/fault"
	"github.com/loftstore/loft/store"
	"github.com/loftstore/loft/transfer"
)

// Repository layout, relative to its directory.
const (
	catalogFile = "catalog.db"
	chunksDir   = "chunks"
	filterFile  = "chunks.filter"
	keyFile     = "node.key"
	certFile    = "node.crt"
)

var (
	// ErrNoRepository means the directory holds no loft repository.
	ErrNoRepository = fault.New(fault.Repository, "no loft repository")
	// ErrExists means init found a repository already there.
	ErrExists = fault.New(fault.Repository, "a loft repository already exists")
)

// Options configure a node.
type Options struct {
	Logger *slog.Logger
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
	// CreateTemp, when set, stages chunk files; tests inject faults with it.
	CreateTemp func(dir, pattern string) (store.TempFile, error)
	// SmallMax overrides store.SmallMax (see store.DiskOptions): tests
	// that reach chunk files set -1.
	SmallMax int
	// AllowBadKey opens a repository whose node.key does not parse or does
	// not match the node ID its catalog records, for check to report it
	// (KeyError); the node then never uses the network.
	AllowBadKey bool
	// MayRelease says the command only reads, or frees space: on a full
	// disk, opening may delete the repository's reserve to find the room
	// the catalog needs (see reserve.go). A command that would fill the
	// disk further leaves it.
	MayRelease bool
}

// Node is an open repository.
type Node struct {
	dir    string
	cat    *catalog.Catalog
	disk   *store.Disk
	codecs *store.Codecs
	params store.Params
	id     store.PeerID
	log    *slog.Logger
	now    func() time.Time
	cl     *cluster.Cluster

	filterOnce sync.Once
	filter     *catalog.Filter
	filterErr  error
	// filterMu guards when the filter was last saved, and whether puts
	// since then left it unsaved.
	filterMu    sync.Mutex
	filterSaved time.Time
	filterDirty bool

	bufs store.Buffers
	hub  hub      // a serving node's event stream
	svcs services // the surfaces the serving process runs beside it

	keyErr error // see Options.AllowBadKey

	closeOnce sync.Once
	closeErr  error
}

// KeyError returns what is wrong with the node's key, opened with
// Options.AllowBadKey; nil when nothing is.
func (n *Node) KeyError() error { return n.keyErr }

// InitOptions configure a new repository.
type InitOptions struct {
	Params store.Params // zero means store.DefaultParams()
}

// Init creates a repository in dir, which may exist but must not hold one.
func Init(ctx context.Context, dir string, iopts InitOptions, opts Options) (*Node, error) {
	p := iopts.Params
	if p == (store.Params{}) {
		p = store.DefaultParams()
	}
	if err := p.Validate(); err != nil {
		return nil, err
	}
	if _, err := os.Stat(filepath.Join(dir, catalogFile)); err == nil {
		return nil, fmt.Errorf("%s: %w", dir, ErrExists)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create repository: %w", err)
	}
	// A key left by an init that stopped before creating the catalog is
	// kept, and one written by a concurrent init is adopted: the node ID
	// must not change once it may have been seen. A key is never removed.
	keyPath := filepath.Join(dir, keyFile)
	ident, err := transfer.LoadIdentity(keyPath)
	if errors.Is(err, fs.ErrNotExist) {
		if ident, err = transfer.NewIdentity(); err == nil {
			if err = ident.Save(keyPath); errors.Is(err, fs.ErrExist) {
				ident, err = transfer.LoadIdentity(keyPath)
			}
		}
	}
	if err == nil {
		_, err = ident.Certificate(filepath.Join(dir, certFile))
	}
	if err != nil {
		return nil, fmt.Errorf("create repository: %w", err)
	}
	pj, _ := json.Marshal(p)
	meta := map[string]string{
		"chunking": string(pj),
		"node_id":  ident.ID().String(),
		"created":  time.Now().UTC().Format(time.RFC3339),
	}
	cat, err := catalog.Create(ctx, filepath.Join(dir, catalogFile), meta, catalog.Options{Origin: ident.ID().String(), Now: opts.Now})
	if errors.Is(err, fs.ErrExist) {
		return nil, fmt.Errorf("%s: %w", dir, ErrExists) // another init finished first
	}
	if err != nil {
		return nil, err
	}
	cat.Close()
	n, err := Open(ctx, dir, opts)
	if err == nil {
		n.ensureReserve()
	}
	return n, err
}

// Open opens the repository in dir.
func Open(ctx context.Context, dir string, opts Options) (*Node, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	n := &Node{dir: dir, now: opts.Now}
	n.log = slog.New(hubHandler{opts.Logger.Handler(), &n.hub})
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		return nil, fmt.Errorf("%s: %w", dir, ErrNoRepository)
	}
	keyPath := filepath.Join(dir, keyFile)
	ident, keyErr := transfer.LoadIdentity(keyPath)
	if errors.Is(keyErr, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s: %w", dir, ErrNoRepository)
	}
	if keyErr == nil {
		n.id = ident.ID()
	}
	catOpts := catalog.Options{Origin: n.id.String(), Now: opts.Now}
	var err error
	n.cat, err = catalog.Open(ctx, filepath.Join(dir, catalogFile), catOpts)
	if errors.Is(err, syscall.ENOSPC) && opts.MayRelease && releaseReserveAt(dir) {
		n.log.Warn("the disk is full: released the repository's reserve to open it")
		n.cat, err = catalog.Open(ctx, filepath.Join(dir, catalogFile), catOpts)
	}
	if errors.Is(err, catalog.ErrNoCatalog) {
		return nil, fmt.Errorf("%s: %w", dir, ErrNoRepository)
	}
	if err != nil {
		return nil, err
	}
	// The catalog records the node ID: it is the origin of every change this
	// node made, so a key that gives another ID must not be used.
	recorded, err := n.cat.Meta(ctx, "node_id")
	if err != nil {
		n.cat.Close()
		return nil, err
	}
	if keyErr == nil && recorded != "" && n.id.String() != recorded {
		keyErr = fmt.Errorf("gives node ID %s, but the catalog records %s", n.id, recorded)
	}
	if keyErr != nil {
		n.cat.Close()
		keyErr = fault.E(fault.Repository, "%s: %w (restore node.key from a backup of this repository)", keyPath, keyErr)
		if !opts.AllowBadKey {
			return nil, keyErr
		}
		if n.id, err = store.ParsePeerID(recorded); err != nil {
			return nil, fmt.Errorf("%s: %w: the catalog records no valid node ID", dir, catalog.ErrCorrupt)
		}
		n.keyErr, ident, catOpts.Origin = keyErr, nil, recorded
		if n.cat, err = catalog.Open(ctx, filepath.Join(dir, catalogFile), catOpts); err != nil {
			return nil, err
		}
	}
	if err := n.loadParams(ctx); err != nil {
		n.cat.Close()
		return nil, err
	}
	n.codecs, err = store.NewCodecs(0)
	if err != nil {
		n.cat.Close()
		return nil, err
	}
	smallMax := opts.SmallMax
	if smallMax == 0 {
		// Where new chunks go; reads find a chunk in either place, so the
		// setting can change at any time.
		v, err := n.cat.Config(ctx, "small-chunk-max")
		if err != nil {
			n.codecs.Close()
			n.cat.Close()
			return nil, err
		}
		if smallMax, _ = strconv.Atoi(v); smallMax == 0 {
			smallMax = -1
		}
	}
	n.disk, err = store.OpenDisk(filepath.Join(dir, chunksDir), n.codecs, store.DiskOptions{CreateTemp: opts.CreateTemp, SmallMax: smallMax})
	if err != nil {
		n.codecs.Close()
		n.cat.Close()
		return nil, err
	}
	n.cl = cluster.New(cluster.Config{Dir: dir, ID: n.id, Identity: ident, CertPath: filepath.Join(dir, certFile), Catalog: n.cat, Store: n.disk, Buffers: &n.bufs,
		MaxChunk: n.params.Max, Logger: n.log, Now: n.now, Local: &handler{n: n}, Room: n.ensureReserve})
	return n, nil
}

func (n *Node) loadParams(ctx context.Context) error {
	pj, err := n.cat.Meta(ctx, "chunking")
	if err != nil {
		return fmt.Errorf("open repository: %w", err)
	}
	if err := json.Unmarshal([]byte(pj), &n.params); err != nil {
		return fmt.Errorf("open repository: chunking parameters %q: %w", pj, err)
	}
	if err := n.params.Validate(); err != nil {
		return fmt.Errorf("open repository: %w", err)
	}
	return nil
}

// Close releases the repository.
// Closing it again does nothing.
func (n *Node) Close() error {
	n.closeOnce.Do(func() {
		n.filterMu.Lock()
		dirty := n.filterDirty
		n.filterSaved = time.Time{}
		n.filterMu.Unlock()
		if dirty {
			n.saveFilter(context.Background())
		}
		n.cl.Close()
		err := n.disk.Close()
		n.codecs.Close()
		n.closeErr = errors.Join(err, n.cat.Close())
	})
	return n.closeErr
}

// Dir returns the repository directory.
func (n *Node) Dir() string { return n.dir }

// ID returns the node ID.
func (n *Node) ID() store.PeerID { return n.id }

// Params returns the repository's chunking parameters.
func (n *Node) Params() store.Params { return n.params }

// Catalog and Store expose the parts, for tests and the dashboard.
func (n *Node) Catalog() *catalog.Catalog { return n.cat }
func (n *Node) Store() store.Store        { return n.disk }

// chunkFilter loads the Bloom filter on first use: only writers need it.
func (n *Node) chunkFilter(ctx context.Context) (*catalog.Filter, error) {
	n.filterOnce.Do(func() {
		n.filter, n.filterErr = n.cat.LoadFilter(ctx, filepath.Join(n.dir, filterFile))
	})
	return n.filter, n.filterErr
}

func (n *Node) saveFilter(ctx context.Context) {
	if n.filter == nil {
		return
	}
	n.filterMu.Lock()
	defer n.filterMu.Unlock()
	// A command saves after its one put; a serving process that puts many
	// (the S3 gateway's requests) saves at most every filterSaveEvery, and
	// once more as it closes. A filter saved before the newest chunks is
	// only older: the catalog catches it up when it is loaded.
	if !n.filterSaved.IsZero() && time.Since(n.filterSaved) < filterSaveEvery {
		n.filterDirty = true
		return
	}
	n.filterSaved, n.filterDirty = time.Now(), false
	if err := n.cat.SaveFilter(ctx, n.filter, filepath.Join(n.dir, filterFile)); err != nil {
		n.log.Warn("chunk filter not saved; it will be rebuilt", "err", err)
	}
}

// filterSaveEvery bounds how often a process saves the chunk filter.
const filterSaveEvery = 30 * time.Second

// Info describes the repository for `loft version` and `loft stat`.
type Info struct {
	Dir      string       `json:"repository"`
	NodeID   string       `json:"node_id"`
	Format   int          `json:"format"`
	Chunking store.Params `json:"chunking"`
	Created  string       `json:"created"`
}

// Info returns the repository's identity and format.
func (n *Node) Info(ctx context.Context) (Info, error) {
	created, err := n.cat.Meta(ctx, "created")
	if err != nil {
		return Info{}, err
	}
	return Info{Dir: n.dir, NodeID: n.id.String(), Format: catalog.Format, Chunking: n.params, Created: created}, nil
}
