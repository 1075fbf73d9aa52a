package node

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/loftstore/loft/catalog"
	"github.com/loftstore/loft/gc"
	"github.com/loftstore/loft/names"
)

// List calls fn with the entries below prefix (see catalog.Catalog.List).
// A prefix that names neither an object nor a directory of objects is
// ErrNotFound, as a missing path is for ls; the root always exists.
func (n *Node) List(ctx context.Context, prefix names.Prefix, opts catalog.ListOptions, fn func(catalog.Entry) error) error {
	found := false
	err := n.cat.List(ctx, prefix, opts, func(e catalog.Entry) error {
		found = true
		return fn(e)
	})
	if err == nil && !found && !prefix.IsRoot() {
		name, _ := prefix.Name()
		if v, herr := n.cat.HeadAt(ctx, name, opts.AtSeq); herr == nil && v.Kind == catalog.KindDir && !v.Deleted {
			return nil // an empty directory
		}
		err = fmt.Errorf("%s: %w", prefix, catalog.ErrNotFound)
	}
	return err
}

// Versions returns the versions of an object, newest first.
func (n *Node) Versions(ctx context.Context, name names.Name) ([]catalog.Version, error) {
	return n.cat.Versions(ctx, name)
}

// RemoveResult says what Remove deleted.
type RemoveResult struct {
	Deleted []catalog.Version `json:"deleted"`
	Failed  []Failure         `json:"failed"`
}

// removeBatch bounds the objects one transaction tombstones, so that a
// large recursive delete never holds the write lock for long.
const removeBatch = 500

// Remove adds a tombstone version to each named object; with recursive, to
// every live object below a name too. Deleting is reversible with Restore
// until the older versions are pruned and collected.
func (n *Node) Remove(ctx context.Context, objs []names.Name, recursive bool) (RemoveResult, error) {
	res := RemoveResult{Deleted: []catalog.Version{}, Failed: []Failure{}}
	for _, name := range objs {
		targets, fail, err := n.targets(ctx, name, recursive, false, "delete")
		if err != nil {
			return res, err
		}
		if fail != nil {
			res.Failed = append(res.Failed, *fail)
			continue
		}
		done, err := inBatches(ctx, n, targets, func(tx *catalog.Tx, t names.Name) (catalog.Version, bool, error) {
			v, err := tx.Delete(ctx, t)
			if errors.Is(err, catalog.ErrDeleted) || errors.Is(err, catalog.ErrNotFound) {
				return v, false, nil // deleted meanwhile by someone else
			}
			return v, err == nil, err
		})
		res.Deleted = append(res.Deleted, done...)
		if err != nil {
			return res, err
		}
	}
	return res, nil
}

// targets resolves a name given to rm: the object (unless it is deleted
// and withDeleted is not set), and with recursive everything below it. A
// name with objects below it and no recursive, or with nothing at all, is
// a Failure (verb says what was asked, for the message).
func (n *Node) targets(ctx context.Context, name names.Name, recursive, withDeleted bool, verb string) ([]names.Name, *Failure, error) {
	var targets []names.Name
	head, err := n.cat.Head(ctx, name)
	if err == nil && (withDeleted || !head.Deleted) {
		targets = append(targets, name)
	} else if err != nil && !errors.Is(err, catalog.ErrNotFound) {
		return nil, nil, err
	}
	if len(targets) > 0 && !recursive && head.Kind != catalog.KindDir {
		return targets, nil, nil // a stored directory is a directory: -r
	}
	var below []names.Name
	err = n.cat.List(ctx, name.AsPrefix(), catalog.ListOptions{Recursive: true, Below: true, Deleted: withDeleted}, func(e catalog.Entry) error {
		if b, err := names.Parse(e.Name); err == nil { // the catalog holds only names that parse
			below = append(below, b)
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	switch {
	case (len(below) > 0 || head.Kind == catalog.KindDir) && !recursive:
		f := newFailure(name.String(), fmt.Errorf("%s %w: use -r to %s what is below it", name, ErrIsDir, verb))
		return nil, &f, nil
	case len(below) == 0 && len(targets) == 0:
		e := fmt.Errorf("%s: %w", name, catalog.ErrNotFound)
		if head.Deleted {
			e = fmt.Errorf("object %s: %w", name, catalog.ErrDeleted)
		}
		f := newFailure(name.String(), e)
		return nil, &f, nil
	}
	return append(targets, below...), nil, nil
}

// inBatches runs fn for each target, removeBatch of them a transaction,
// so that a large recursive change never holds the write lock for long,
// and returns what fn made of each, for the transactions that committed
// (fn says with ok whether it made anything). On a full disk it uses the
// reserve (freeing), which may run a batch twice.
func inBatches[T any](ctx context.Context, n *Node, targets []names.Name, fn func(tx *catalog.Tx, t names.Name) (T, bool, error)) ([]T, error) {
	var out []T
	for start := 0; start < len(targets); start += removeBatch {
		part := targets[start:min(start+removeBatch, len(targets))]
		var done []T
		err := n.freeing(func() error {
			return n.cat.Tx(ctx, func(tx *catalog.Tx) error {
				done = done[:0]
				for _, t := range part {
					v, ok, err := fn(tx, t)
					if err != nil {
						return err
					}
					if ok {
						done = append(done, v)
					}
				}
				return nil
			})
		})
		if err != nil {
			return out, err
		}
		out = append(out, done...)
	}
	return out, nil
}

// RestoreResult says what Restore did.
type RestoreResult struct {
	catalog.Version
	// Unchanged is set when the version asked for already was the newest.
	Unchanged bool `json:"unchanged"`
}

// Restore makes version num of name the newest again (num 0: the newest
// version that is not a deletion). No data is copied.
func (n *Node) Restore(ctx context.Context, name names.Name, num int64) (RestoreResult, error) {
	var r RestoreResult
	err := n.cat.Tx(ctx, func(tx *catalog.Tx) error {
		v, added, err := tx.Restore(ctx, name, num)
		r = RestoreResult{Version: v, Unchanged: !added}
		return err
	})
	return r, err
}

// StatResult describes the repository.
type StatResult struct {
	Info
	catalog.Stats
	Grace       time.Duration `json:"gc_grace_ns"`
	DedupRatio  float64       `json:"dedup_ratio"`
	Compression float64       `json:"compression_ratio"`
}

// Stat returns repository totals.
func (n *Node) Stat(ctx context.Context) (StatResult, error) {
	info, err := n.Info(ctx)
	if err != nil {
		return StatResult{}, err
	}
	grace, err := n.cat.GCGrace(ctx)
	if err != nil {
		return StatResult{}, err
	}
	st, err := n.cat.Stats(ctx, catalog.SweepRule{Before: n.now().Add(-grace)})
	if err != nil {
		return StatResult{}, err
	}
	r := StatResult{Info: info, Stats: st, Grace: grace}
	if st.PlainBytes > 0 {
		r.DedupRatio = float64(st.LogicalBytes) / float64(st.PlainBytes)
	}
	if st.StoredBytes > 0 {
		r.Compression = float64(st.PlainBytes) / float64(st.StoredBytes)
	}
	return r, nil
}

// GCOptions configure GC.
type GCOptions struct {
	Grace    time.Duration // negative: the configured gc-grace
	DryRun   bool
	Progress func(gc.Progress)
}

// GC runs garbage collection.
func (n *Node) GC(ctx context.Context, opts GCOptions) (gc.Result, error) {
	grace := opts.Grace
	if grace < 0 {
		var err error
		if grace, err = n.cat.GCGrace(ctx); err != nil {
			return gc.Result{}, err
		}
	}
	gopts := gc.Options{Grace: grace, DryRun: opts.DryRun, Now: n.now, Progress: opts.Progress}
	peers, err := n.cat.Peers(ctx)
	if err != nil {
		return gc.Result{}, err
	}
	if len(peers) > 0 {
		// In a cluster, a chunk goes only when no peer's catalog needs it,
		// and a file no row names only once the peers have confirmed that
		// this catalog lost nothing (it may belong to a lost change).
		gopts.Spare = n.cl.SpareInUse(grace)
		if !opts.DryRun {
			gopts.KeepOrphans = n.cl.ConfirmHistory(ctx)
		}
	}
	var res gc.Result
	err = n.freeing(func() error {
		var err error
		res, err = gc.Run(ctx, n.cat, n.disk, gopts)
		return err
	})
	if err == nil && !opts.DryRun {
		n.ensureReserve() // the room gc made is kept for the next full disk
	}
	return res, err
}

// GCRuns returns recent GC runs, newest first.
func (n *Node) GCRuns(ctx context.Context, limit int) ([]catalog.GCRun, error) {
	return n.cat.GCRuns(ctx, limit)
}

// Check audits the repository (see gc.Check).
func (n *Node) Check(ctx context.Context, opts gc.CheckOptions) (gc.Report, error) {
	if opts.Now == nil {
		opts.Now = n.now
	}
	if peers, err := n.cat.Peers(ctx); err == nil && len(peers) > 0 && opts.Repair {
		if n.keyErr != nil {
			opts.KeepOrphans = "this node's key is damaged: its peers cannot confirm its history"
		} else {
			opts.KeepOrphans = n.cl.ConfirmHistory(ctx)
		}
	}
	rep, err := gc.Check(ctx, n.cat, n.disk, opts)
	if err != nil {
		return rep, err
	}
	if n.keyErr != nil {
		rep.Findings = append(rep.Findings, gc.Finding{Kind: gc.KindKey, Problem: true, Detail: n.keyErr.Error()})
	}
	// What the chunks do not show: changes refused from peers, and what
	// happened to this node's history. They are notes, not problems: each
	// was handled when it happened.
	h, err := n.History(ctx)
	if err != nil {
		return rep, err
	}
	for _, q := range h.Refused {
		rep.Findings = append(rep.Findings, gc.Finding{Kind: gc.KindQuarantine, Note: "refused and skipped; the changes after it were applied",
			Detail: fmt.Sprintf("change %s/%d for %s from peer %s (%d times, last %s): %s", q.Origin, q.OriginSeq, q.Name, q.Peer, q.Count,
				q.Last.UTC().Format(time.RFC3339), q.Reason)})
	}
	if more := h.Quarantined - int64(len(h.Refused)); more > 0 {
		rep.Findings = append(rep.Findings, gc.Finding{Kind: gc.KindQuarantine, Note: "loft status --json lists the newest",
			Detail: fmt.Sprintf("%d more changes refused from peers", more)})
	}
	for _, ev := range h.Recent {
		rep.Findings = append(rep.Findings, gc.Finding{Kind: gc.KindHistory, Note: "handled when it happened",
			Detail: fmt.Sprintf("%s at %s, peer %s: %s", ev.Kind, ev.At.UTC().Format(time.RFC3339), ev.Peer, ev.Detail)})
	}
	return rep, nil
}

// Config returns every setting and its value, keys sorted.
func (n *Node) Config(ctx context.Context) (map[string]string, []string, error) {
	return n.cat.ConfigAll(ctx)
}

// ConfigGet returns one setting.
func (n *Node) ConfigGet(ctx context.Context, key string) (string, error) {
	return n.cat.Config(ctx, key)
}

// ConfigSet changes a setting.
func (n *Node) ConfigSet(ctx context.Context, key, value string) error {
	return n.cat.Tx(ctx, func(tx *catalog.Tx) error { return tx.SetConfig(ctx, key, value) })
}
