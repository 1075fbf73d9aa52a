package node

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/loftstore/loft/catalog"
	"github.com/loftstore/loft/fault"
	"github.com/loftstore/loft/names"
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

// RefusedError says that a peer sent names that break the rules: the
// entries that carry them were skipped, the others delivered. Its kind is
// fault.Peer.
type RefusedError struct {
	Peer  string
	Count int
	First string // the first refused name, quoted and shortened
}

func (e *RefusedError) Error() string {
	return fmt.Sprintf("peer %s sent %d entries with names that break the rules (skipped), the first %s", e.Peer, e.Count, e.First)
}

// Kind returns fault.Peer.
func (e *RefusedError) Kind() fault.Kind { return fault.Peer }

// List pages through the peer's listing. Entries whose names do not parse
// are skipped; when any were, List returns a *RefusedError after the rest.
func (r *Remote) List(ctx context.Context, prefix names.Prefix, opts catalog.ListOptions, fn func(catalog.Entry) error) error {
	var refused *RefusedError
	err := r.list(ctx, prefix, opts, func(e catalog.Entry) error {
		if !entryNameOK(e) {
			if refused == nil {
				refused = &RefusedError{Peer: r.Peer.ID[:8], First: strconv.QuoteToASCII(truncate(e.Name, 200))}
			}
			refused.Count++
			return nil
		}
		return fn(e)
	})
	if err == nil && refused != nil {
		return refused
	}
	return err
}

// entryNameOK reports whether a listing entry from a peer has a name that
// follows the rules: an object's is a name, a directory's a name and one
// slash.
func entryNameOK(e catalog.Entry) bool {
	name := e.Name
	if e.Dir {
		var ok bool
		if name, ok = strings.CutSuffix(name, "/"); !ok {
			return false
		}
	}
	_, err := names.Parse(name)
	return err == nil
}

// list pages through the peer's listing, passing every entry as it came.
func (r *Remote) list(ctx context.Context, prefix names.Prefix, opts catalog.ListOptions, fn func(catalog.Entry) error) error {
	req := transfer.ListReq{Prefix: prefix.String(), Recursive: opts.Recursive, Deleted: opts.Deleted, Below: opts.Below, Limit: transfer.MaxEntries}
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

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

// Versions returns the versions of an object on the peer, newest first.
func (r *Remote) Versions(ctx context.Context, name names.Name) ([]catalog.Version, error) {
	var resp transfer.VersionsResp
	if err := r.call(ctx, transfer.OpVersions, transfer.NameReq{Name: name.String()}, &resp); err != nil {
		return nil, err
	}
	out := make([]catalog.Version, len(resp.Versions))
	for i, v := range resp.Versions {
		if v.Name != name.String() {
			return nil, r.answered("versions", name, v.Name)
		}
		out[i] = versionOf(v)
	}
	return out, nil
}

// answered is the error for an answer about another object than asked.
func (r *Remote) answered(op string, name names.Name, got string) error {
	return fault.E(fault.Peer, "peer %s answered %s of %s with %s", r.Peer.ID[:8], op, name, strconv.QuoteToASCII(truncate(got, 200)))
}

// Remove deletes objects on the peer.
func (r *Remote) Remove(ctx context.Context, objs []names.Name, recursive bool) (RemoveResult, error) {
	var res RemoveResult
	req := transfer.RemoveReq{Names: make([]string, len(objs)), Recursive: recursive}
	for i, o := range objs {
		req.Names[i] = o.String()
	}
	err := r.call(ctx, transfer.OpRemove, req, &res)
	for i := range res.Failed {
		f := &res.Failed[i]
		f.Err = fault.E(fault.Named(f.Code), "%s", f.Msg)
	}
	return res, err
}

// Restore makes an old version of an object on the peer the newest again.
func (r *Remote) Restore(ctx context.Context, name names.Name, num int64) (RestoreResult, error) {
	var res RestoreResult
	err := r.call(ctx, transfer.OpRestore, transfer.RestoreReq{Name: name.String(), Num: num}, &res)
	return res, err
}

// Stat returns the peer's repository totals.
func (r *Remote) Stat(ctx context.Context) (StatResult, error) {
	var res StatResult
	err := r.call(ctx, transfer.OpStat, transfer.Empty{}, &res)
	return res, err
}

// Status returns the peer's status.
func (r *Remote) Status(ctx context.Context) (Status, error) {
	var res Status
	err := r.call(ctx, transfer.OpStatus, transfer.Empty{}, &res)
	return res, err
}

// Get reads from the peer: versions, chunk lists and chunks all come over
// the connection, each chunk verified on arrival, each name checked before
// it becomes a path.
func (r *Remote) Get(ctx context.Context, target names.Prefix, dest string, opts GetOptions) (GetResult, error) {
	return r.n.get(ctx, remoteSource{r}, target, dest, opts)
}

type remoteSource struct{ r *Remote }

func (s remoteSource) Version(ctx context.Context, name names.Name, num int64) (catalog.Version, error) {
	var v transfer.Version
	if err := s.r.call(ctx, transfer.OpLookup, transfer.LookupReq{Name: name.String(), Num: num}, &v); err != nil {
		return catalog.Version{}, err
	}
	if v.Name != name.String() {
		return catalog.Version{}, s.r.answered("a lookup", name, v.Name)
	}
	return versionOf(v), nil
}

func (s remoteSource) Head(ctx context.Context, name names.Name) (catalog.Version, error) {
	return s.Version(ctx, name, 0)
}

func (s remoteSource) List(ctx context.Context, prefix names.Prefix, opts catalog.ListOptions, fn func(catalog.Entry) error) error {
	return s.r.List(ctx, prefix, opts, fn)
}

// Walk calls fn with the head of every live object below prefix, names as
// the peer sent them: the getter refuses, one by one, those that do not
// parse.
func (s remoteSource) Walk(ctx context.Context, prefix names.Prefix, fn func(catalog.Version) error) error {
	return s.r.list(ctx, prefix, catalog.ListOptions{Recursive: true, Below: true}, func(e catalog.Entry) error {
		if e.Dir || e.Head.Deleted {
			return nil
		}
		e.Head.Name = e.Name
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
			return fault.E(fault.Peer, "%s version %d: peer sent %d of %d chunk references", v.Name, v.Num, idx, v.Chunks)
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

// Close ends the connection's use and closes the local node it came from.
func (r *Remote) Close() error { return r.n.Close() }
