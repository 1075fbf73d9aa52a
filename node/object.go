package node

import (
	"context"
	"io"

	"golang.org/x/sync/semaphore"

	"github.com/loftstore/loft/catalog"
	"github.com/loftstore/loft/names"
	"github.com/loftstore/loft/store"
)

// The calls of this file serve one object at a time to a caller that is
// not a file system: the S3 gateway, and whatever else speaks for clients
// over a network. Put with the path "-" stores one.

// objectBudget bounds the chunk buffers of one ReadVersion: a few chunks
// ahead of a client, whatever the size of the object.
const objectBudget = 8 << 20

// ReadVersion writes length bytes of version v from offset off (length < 0:
// to the end) to w, in order, fetching a few chunks ahead. Every chunk is
// verified against its ID; a read of the whole version also checks its
// size and SHA-256. Chunks this node does not hold are fetched from peers.
// An error after w was written to leaves w with a prefix of the bytes.
func (n *Node) ReadVersion(ctx context.Context, v catalog.Version, off, length int64, w io.Writer) error {
	g := n.objectGetter(localSource{n.cat, n})
	sp := span{off, length}
	if off == 0 && (length < 0 || length >= v.Size) {
		sp = whole
	}
	sum, err := g.copyVersion(ctx, v, nil, sp, w)
	if err == nil && sp == whole {
		err = checkWhole(v, sum)
	}
	if err != nil {
		return g.prunedMeanwhile(ctx, v, err)
	}
	return nil
}

// objectGetter reads one object from src with objectBudget of buffers.
func (n *Node) objectGetter(src getSource) *getter {
	return &getter{n: n, src: src, budget: semaphore.NewWeighted(max(objectBudget, store.BufferSize(store.MaxStoredSize)))}
}

// CopyOptions configure Copy.
type CopyOptions struct {
	// Replace gives the copy ContentType and Meta instead of the source's.
	Replace     bool
	ContentType string
	Meta        catalog.Meta
}

// Copy adds a version of to with the content of version num of from (0:
// its newest). The copy shares the source's chunks: no data is read or
// written, whatever the size.
func (n *Node) Copy(ctx context.Context, from names.Name, num int64, to names.Name, opts CopyOptions) (catalog.Version, error) {
	var a catalog.Added
	err := n.cat.Tx(ctx, func(tx *catalog.Tx) error {
		var err error
		a, err = tx.CopyVersion(ctx, from, num, to, opts.Replace, opts.ContentType, opts.Meta)
		return err
	})
	return a.Version, err
}

// MakeDir stores name as an empty directory (a directory entry, as a
// mirror put stores one), unless it is one already.
func (n *Node) MakeDir(ctx context.Context, name names.Name) (catalog.Version, error) {
	var a catalog.Added
	err := n.cat.Tx(ctx, func(tx *catalog.Tx) error {
		if hv, err := n.cat.Head(ctx, name); err == nil && hv.Kind == catalog.KindDir && !hv.Deleted {
			a.Version = hv
			return nil
		}
		var err error
		a, err = tx.AddVersion(ctx, catalog.NewVersion{Name: name, Kind: catalog.KindDir, Mode: 0o755, MTime: n.now()})
		return err
	})
	return a.Version, err
}

// Delete adds a tombstone version to exactly the object name, whatever
// its kind: a directory entry goes, what lies below it stays.
func (n *Node) Delete(ctx context.Context, name names.Name) (catalog.Version, error) {
	var v catalog.Version
	err := n.freeing(func() error {
		return n.cat.Tx(ctx, func(tx *catalog.Tx) error {
			var err error
			v, err = tx.Delete(ctx, name)
			return err
		})
	})
	return v, err
}

// DropVersion drops version num of name for good, superseding it first
// when it is the newest (catalog's Tx.DropVersion), and returns it.
func (n *Node) DropVersion(ctx context.Context, name names.Name, num int64) (catalog.Version, error) {
	var v catalog.Version
	err := n.freeing(func() error {
		return n.cat.Tx(ctx, func(tx *catalog.Tx) error {
			var err error
			v, err = tx.DropVersion(ctx, name, num)
			return err
		})
	})
	return v, err
}

// ReadChunks writes the content of a chunk list to w, in order, each chunk
// verified against its ID, fetching a few ahead (as ReadVersion does):
// the parts of a multipart upload, read back to hash the object they make.
// label names what the chunks are in errors.
func (n *Node) ReadChunks(ctx context.Context, label string, refs []catalog.ChunkRef, w io.Writer) error {
	g := n.objectGetter(refSource{localSource{n.cat, n}, refs})
	var size int64
	for _, r := range refs {
		size += r.Plain
	}
	_, err := g.copyVersion(ctx, catalog.Version{Name: label, Size: size}, nil, whole, w)
	return err
}

// refSource reads a given chunk list in place of a version's.
type refSource struct {
	localSource
	refs []catalog.ChunkRef
}

func (s refSource) Chunks(ctx context.Context, _ catalog.Version, from int64, fn func(idx int64, ref catalog.ChunkRef) error) error {
	for i := from; i < int64(len(s.refs)); i++ {
		if err := fn(i, s.refs[i]); err != nil {
			return err
		}
	}
	return nil
}
