// Package gc reclaims space and audits the repository: the two-phase sweep
// of unreferenced chunks, the orphan sweep, and the reference count audit
// and rebuild behind `loft check`.
//
// Phase one is logical and happens elsewhere: deleting or pruning a version
// drops reference counts in the same transaction, stamping chunks that reach
// zero with the time and the change that did it. Phase two is here: a chunk
// is removed once it has been unreferenced for longer than the grace period
// and since before the oldest live write session started. The check, the
// row deletion and the file removal happen inside one catalog transaction,
// so a writer's commit sees either the chunk referenced (and the sweep skips
// it) or gone (and the writer, holding the data, writes it again). Writers
// are never stopped: each sweep transaction covers a small batch.
package gc

import (
	"context"
	"fmt"
	"time"

	"github.com/loftstore/loft/catalog"
	"github.com/loftstore/loft/store"
)

// mtimeMargin covers file systems whose timestamps are coarser than the
// clock a session's start was read from (a second on some, a few
// milliseconds of coarse clock on ext4). Files this close to a live
// session's start are spared.
const mtimeMargin = 2 * time.Second

// sweepBatch is how many chunks one sweep transaction removes: small enough
// that a writer waiting for the catalog never waits long.
const sweepBatch = 256

// Options configure a run.
type Options struct {
	Grace  time.Duration
	DryRun bool
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
	// Progress, when set, is called as work advances.
	Progress func(Progress)
	// Spare, when set, is asked about each batch of garbage before the
	// sweep removes it, and returns the chunks that must stay: in a
	// cluster, those a version on another node references. It runs outside
	// the catalog's write lock, since it may wait on the network; an error
	// stops the sweep, removing nothing more.
	Spare func(ctx context.Context, ids []store.ID) (store.IDSet, error)
	// KeepOrphans, when set, says why orphan chunk files must stay this run:
	// in a cluster, a file no row names may belong to a change this node's
	// catalog lost and a peer still holds, until the node has compared its
	// history with every peer (staged temporary files still go).
	KeepOrphans string
}

// Progress reports how far a run is.
type Progress struct {
	Phase string // "sweep", "orphans", "check", "read"
	Done  int64
	Total int64 // 0 when unknown
}

func (o *Options) now() time.Time {
	if o.Now == nil {
		return time.Now()
	}
	return o.Now()
}

func (o *Options) progress(p Progress) {
	if o.Progress != nil {
		o.Progress(p)
	}
}

// Result says what a run removed, or with DryRun would remove.
type Result struct {
	DryRun      bool                  `json:"dry_run"`
	Grace       time.Duration         `json:"grace_ns"`
	Chunks      int64                 `json:"chunks"`
	Bytes       int64                 `json:"bytes"`
	Orphans     int64                 `json:"orphans"`
	OrphanBytes int64                 `json:"orphan_bytes"`
	Temps       int                   `json:"temp_files"`
	Sessions    int                   `json:"live_sessions"`
	OrphansKept string                `json:"orphans_kept,omitempty"` // why orphans were not swept
	Pending     catalog.GarbageTotals `json:"pending"`
	Started     time.Time             `json:"started"`
	Finished    time.Time             `json:"finished"`
}

// compacter is a store that holds removed chunks' space until told to
// give it back to the file system (store.Disk: its small-chunk database).
type compacter interface {
	Compact(ctx context.Context) error
}

// Run sweeps garbage chunks, orphan chunk files and stale temporary files,
// and records the run in the catalog.
func Run(ctx context.Context, cat *catalog.Catalog, st store.Store, opts Options) (Result, error) {
	res := Result{DryRun: opts.DryRun, Grace: opts.Grace, Started: opts.now()}
	var err error
	if opts.DryRun {
		err = preview(ctx, cat, st, &opts, &res)
	} else {
		err = sweep(ctx, cat, st, &opts, &res)
		if err == nil {
			err = sweepOrphans(ctx, cat, st, &opts, &res)
		}
		if c, ok := st.(compacter); ok && err == nil {
			// Rows removed leave free pages inside a database file: the
			// disk gets them back only now.
			err = c.Compact(ctx)
		}
	}
	res.Finished = opts.now()
	if err == nil {
		res.Pending, err = cat.GarbageTotals(ctx, catalog.SweepRule{Before: opts.now().Add(-opts.Grace)})
	}
	if !opts.DryRun {
		run := catalog.GCRun{Started: res.Started, Finished: res.Finished, Grace: opts.Grace,
			Chunks: res.Chunks, Bytes: res.Bytes, Orphans: res.Orphans, OrphanBytes: res.OrphanBytes}
		if err != nil {
			run.Error = err.Error()
		}
		if rerr := cat.RecordGC(context.WithoutCancel(ctx), run); rerr != nil && err == nil {
			err = rerr
		}
	}
	return res, err
}

// rule returns the sweep rule and the orphan cutoff for the given live
// sessions.
func rules(now time.Time, grace time.Duration, live []catalog.Session) (catalog.SweepRule, time.Time) {
	seq, started := catalog.OldestLive(live)
	rule := catalog.SweepRule{Before: now.Add(-grace), Live: len(live) > 0, BelowSeq: seq}
	cutoff := rule.Before
	if len(live) > 0 {
		if s := started.Add(-mtimeMargin); s.Before(cutoff) {
			cutoff = s
		}
	}
	return rule, cutoff
}

func sweep(ctx context.Context, cat *catalog.Catalog, st store.Store, opts *Options, res *Result) error {
	if opts.Spare != nil {
		return sweepSparing(ctx, cat, st, opts, res)
	}
	for {
		var removed []catalog.Garbage
		err := cat.Tx(ctx, func(tx *catalog.Tx) error {
			live, err := tx.LiveSessions(ctx)
			if err != nil {
				return err
			}
			res.Sessions = len(live)
			rule, cutoff := rules(opts.now(), opts.Grace, live)
			gs, err := tx.Garbage(ctx, rule, sweepBatch)
			if err != nil {
				return err
			}
			removed, err = remove(ctx, tx, st, gs, cutoff)
			return err
		})
		if err != nil {
			return fmt.Errorf("sweep: %w", err)
		}
		res.count(removed)
		opts.progress(Progress{Phase: "sweep", Done: res.Chunks})
		if len(removed) == 0 {
			return nil
		}
	}
}

// sweepSparing pages through the garbage, asks opts.Spare about each page
// outside the write lock, and removes, in a transaction that checks the
// rule again, what it did not spare. Spared chunks do not stop the pages
// after them.
func sweepSparing(ctx context.Context, cat *catalog.Catalog, st store.Store, opts *Options, res *Result) error {
	page := catalog.SweepRule{Before: opts.now().Add(-opts.Grace)}
	for {
		gs, err := cat.Garbage(ctx, page, sweepBatch)
		if err != nil || len(gs) == 0 {
			return err
		}
		page = page.After(gs[len(gs)-1])
		ids := make([]store.ID, len(gs))
		for i, g := range gs {
			ids[i] = g.ID
		}
		spared, err := opts.Spare(ctx, ids)
		if err != nil {
			return fmt.Errorf("sweep: %w", err)
		}
		var removed []catalog.Garbage
		err = cat.Tx(ctx, func(tx *catalog.Tx) error {
			live, err := tx.LiveSessions(ctx)
			if err != nil {
				return err
			}
			res.Sessions = len(live)
			rule, cutoff := rules(opts.now(), opts.Grace, live)
			var todo []catalog.Garbage
			for _, g := range gs {
				if !spared.Has(g.ID) && rule.Allows(g) {
					todo = append(todo, g)
				}
			}
			removed, err = remove(ctx, tx, st, todo, cutoff)
			return err
		})
		if err != nil {
			return fmt.Errorf("sweep: %w", err)
		}
		res.count(removed)
		opts.progress(Progress{Phase: "sweep", Done: res.Chunks})
	}
}

// remove deletes the rows of gs that are still garbage, and their files.
// Files go before the commit: if it fails, the rows stay with their files
// possibly gone, which writers check for (catalog.Tx.Protect); the reverse
// order could let a writer reference a row whose file is about to vanish.
// A file written since the oldest live session began is a fresh copy that
// session may be about to reference: it stays, as an orphan if nobody does.
func remove(ctx context.Context, tx *catalog.Tx, st store.Store, gs []catalog.Garbage, cutoff time.Time) ([]catalog.Garbage, error) {
	removed, err := tx.DeleteGarbage(ctx, gs)
	if err != nil {
		return nil, err
	}
	for _, g := range removed {
		if _, err := st.RemoveIfOlder(ctx, g.ID, cutoff); err != nil {
			return nil, err
		}
	}
	return removed, nil
}

func (res *Result) count(removed []catalog.Garbage) {
	for _, g := range removed {
		res.Chunks++
		res.Bytes += g.Stored
	}
}

// sweepOrphans removes chunk files that no row names, and staged files of
// writes that never committed, once they are older than the cutoff.
func sweepOrphans(ctx context.Context, cat *catalog.Catalog, st store.Store, opts *Options, res *Result) error {
	res.OrphansKept = opts.KeepOrphans
	var err error
	if opts.KeepOrphans == "" {
		err = sweepOrphanFiles(ctx, cat, st, opts, res)
	}
	if err != nil {
		return fmt.Errorf("sweep orphans: %w", err)
	}
	return cat.Tx(ctx, func(tx *catalog.Tx) error {
		live, err := tx.LiveSessions(ctx)
		if err != nil {
			return err
		}
		_, cutoff := rules(opts.now(), opts.Grace, live)
		res.Temps, err = st.CleanTemp(ctx, cutoff)
		return err
	})
}

func sweepOrphanFiles(ctx context.Context, cat *catalog.Catalog, st store.Store, opts *Options, res *Result) error {
	return eachOrphanBatch(ctx, cat, st, opts.now().Add(-opts.Grace), func(batch []store.Info) error {
		return cat.Tx(ctx, func(tx *catalog.Tx) error {
			live, err := tx.LiveSessions(ctx)
			if err != nil {
				return err
			}
			_, cutoff := rules(opts.now(), opts.Grace, live)
			ids := make([]store.ID, len(batch))
			for i, in := range batch {
				ids[i] = in.ID
			}
			known, err := tx.Known(ctx, ids) // again, under the write lock
			if err != nil {
				return err
			}
			for _, in := range batch {
				if known.Has(in.ID) {
					continue
				}
				removed, err := st.RemoveIfOlder(ctx, in.ID, cutoff)
				if err != nil {
					return err
				}
				if removed {
					res.Orphans++
					res.OrphanBytes += in.Stored
				}
			}
			opts.progress(Progress{Phase: "orphans", Done: res.Orphans})
			return nil
		})
	})
}

// eachOrphanBatch walks the store and calls fn with batches of files that
// have no chunk row and were written before cutoff.
func eachOrphanBatch(ctx context.Context, cat *catalog.Catalog, st store.Store, cutoff time.Time, fn func([]store.Info) error) error {
	const per = 500
	batch := make([]store.Info, 0, per)
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		ids := make([]store.ID, len(batch))
		for i, in := range batch {
			ids[i] = in.ID
		}
		known, err := cat.Known(ctx, ids)
		if err != nil {
			return err
		}
		var orphans []store.Info
		for _, in := range batch {
			if !known.Has(in.ID) {
				orphans = append(orphans, in)
			}
		}
		batch = batch[:0]
		if len(orphans) == 0 {
			return nil
		}
		return fn(orphans)
	}
	err := st.Walk(ctx, func(in store.Info) error {
		if !in.ModTime.Before(cutoff) {
			return nil
		}
		batch = append(batch, in)
		if len(batch) == per {
			return flush()
		}
		return nil
	})
	if err != nil {
		return err
	}
	return flush()
}

// preview fills res with what a run would remove now, changing nothing.
func preview(ctx context.Context, cat *catalog.Catalog, st store.Store, opts *Options, res *Result) error {
	live, err := cat.Sessions(ctx)
	if err != nil {
		return err
	}
	res.Sessions = len(live)
	rule, cutoff := rules(opts.now(), opts.Grace, live)
	totals, err := cat.GarbageTotals(ctx, rule)
	if err != nil {
		return err
	}
	res.Chunks, res.Bytes = totals.ReclaimChunks, totals.ReclaimBytes
	return eachOrphanBatch(ctx, cat, st, cutoff, func(batch []store.Info) error {
		for _, in := range batch {
			res.Orphans++
			res.OrphanBytes += in.Stored
		}
		return nil
	})
}
