package gc

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/loftstore/loft/catalog"
	"github.com/loftstore/loft/store"
)

// Kinds of findings.
const (
	KindCatalog  = "catalog"  // SQLite's own check failed
	KindMissing  = "missing"  // a referenced chunk has no file
	KindCorrupt  = "corrupt"  // a referenced chunk's file does not match its ID
	KindRefcount = "refcount" // a chunk's reference count disagrees with the versions
	KindOrphan   = "orphan"   // a chunk file that no row names
	// Findings the node adds, about what lies beyond the chunks: a change
	// from a peer that was refused, an event of the node's history, the
	// node's key.
	KindQuarantine = "quarantine"
	KindHistory    = "history"
	KindKey        = "key"
)

// Finding is one thing check found.
type Finding struct {
	Kind     string   `json:"kind"`
	Chunk    string   `json:"chunk,omitempty"`
	Detail   string   `json:"detail"`
	Users    []string `json:"used_by,omitempty"`
	Problem  bool     `json:"problem"` // false for harmless leftovers, such as orphans after a crash
	Repaired bool     `json:"repaired,omitempty"`
	// Note says, for a finding that is not a problem, what it means.
	Note string `json:"note,omitempty"`
}

// CheckOptions configure Check.
type CheckOptions struct {
	ReadData bool // read and verify every referenced chunk
	Repair   bool // rebuild reference counts, remove orphans and stale temporary files
	// KeepOrphans, when set, keeps orphans even with Repair (see Options).
	KeepOrphans string
	Now         func() time.Time
	Progress    func(Progress)
}

// Report is the outcome of Check.
type Report struct {
	Chunks   int64     `json:"chunks"`
	Read     int64     `json:"chunks_read"`
	ReadData bool      `json:"read_data"`
	Findings []Finding `json:"findings"`
}

// Unrepaired counts findings that are problems and were not repaired.
func (r Report) Unrepaired() int {
	n := 0
	for _, f := range r.Findings {
		if f.Problem && !f.Repaired {
			n++
		}
	}
	return n
}

// usersShown bounds how many versions a finding names.
const usersShown = 5

// Check audits the repository: the catalog file, every referenced chunk's
// presence (and with ReadData its content), reference counts against the
// version->chunk lists, and files no row names. With Repair it rebuilds
// reference counts and removes orphans and stale staged files. It never
// removes anything a version references.
func Check(ctx context.Context, cat *catalog.Catalog, st store.Store, opts CheckOptions) (Report, error) {
	gopts := Options{Now: opts.Now, Progress: opts.Progress, KeepOrphans: opts.KeepOrphans}
	rep := Report{ReadData: opts.ReadData, Findings: []Finding{}}
	add := func(f Finding) { rep.Findings = append(rep.Findings, f) }

	complaints, err := cat.QuickCheck(ctx)
	if err != nil {
		return rep, fmt.Errorf("check catalog: %w", err)
	}
	for _, c := range complaints {
		add(Finding{Kind: KindCatalog, Detail: c, Problem: true})
	}

	if err := checkChunks(ctx, cat, st, opts, &rep); err != nil {
		return rep, err
	}

	drift, err := cat.RefDrift(ctx)
	if err != nil {
		return rep, fmt.Errorf("check reference counts: %w", err)
	}
	if len(drift) > 0 && opts.Repair {
		if err := cat.Tx(ctx, func(tx *catalog.Tx) error {
			_, err := tx.RebuildRefs(ctx)
			return err
		}); err != nil {
			return rep, fmt.Errorf("rebuild reference counts: %w", err)
		}
	}
	for _, d := range drift {
		add(Finding{Kind: KindRefcount, Chunk: d.ID.String(), Problem: true, Repaired: opts.Repair,
			Detail: fmt.Sprintf("reference count is %d, versions hold %d", d.Refs, d.Actual)})
	}

	// Orphans are what a crash between writing chunks and committing leaves
	// behind. They are reported, not counted as problems; gc removes them
	// after the grace period, --repair now (sparing live writers' files).
	now := gopts.now()
	var orphans []store.Info
	err = eachOrphanBatch(ctx, cat, st, now, func(batch []store.Info) error {
		orphans = append(orphans, batch...)
		return nil
	})
	if err != nil {
		return rep, fmt.Errorf("check orphans: %w", err)
	}
	removed := make(store.IDSet)
	if opts.Repair && len(orphans) > 0 {
		r := Result{}
		if err := sweepOrphans(ctx, cat, st, &gopts, &r); err != nil {
			return rep, err
		}
		for _, in := range orphans {
			if _, err := st.Stat(ctx, in.ID); errors.Is(err, store.ErrNotFound) {
				removed.Add(in.ID)
			}
		}
	}
	for _, in := range orphans {
		note := "harmless; gc removes it"
		if opts.KeepOrphans != "" {
			note = "kept: " + opts.KeepOrphans
		}
		add(Finding{Kind: KindOrphan, Chunk: in.ID.String(), Repaired: removed.Has(in.ID), Note: note,
			Detail: fmt.Sprintf("file of %d bytes that no chunk row names, written %s", in.Stored, in.ModTime.Format(time.RFC3339))})
	}
	return rep, nil
}

// checkChunks verifies that every referenced chunk has a file of the
// recorded size, and with ReadData that its content matches its ID.
func checkChunks(ctx context.Context, cat *catalog.Catalog, st store.Store, opts CheckOptions, rep *Report) error {
	var mu sync.Mutex
	finding := func(kind string, id store.ID, detail string) {
		users, _ := cat.Users(ctx, id, usersShown)
		mu.Lock()
		rep.Findings = append(rep.Findings, Finding{Kind: kind, Chunk: id.String(), Detail: detail, Users: users, Problem: true})
		mu.Unlock()
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(runtime.GOMAXPROCS(0) + 1)
	err := cat.EachChunk(ctx, func(row catalog.ChunkRow) error {
		rep.Chunks++
		if row.Refs == 0 || !row.Held {
			return nil // garbage, whose file may be gone, or a chunk peers hold
		}
		if err := gctx.Err(); err != nil {
			return err
		}
		g.Go(func() error {
			info, err := st.Stat(gctx, row.ID)
			switch {
			case errors.Is(err, store.ErrNotFound):
				finding(KindMissing, row.ID, "chunk file is missing")
				return nil
			case err != nil:
				return err
			case info.Stored != row.Stored:
				finding(KindCorrupt, row.ID, fmt.Sprintf("file is %d bytes, catalog says %d", info.Stored, row.Stored))
				return nil
			}
			if !opts.ReadData {
				return nil
			}
			_, err = st.Get(gctx, row.ID, nil)
			var ie *store.IntegrityError
			switch {
			case errors.As(err, &ie):
				finding(KindCorrupt, row.ID, ie.Reason)
			case errors.Is(err, store.ErrNotFound):
				finding(KindMissing, row.ID, "chunk file is missing")
			case err != nil:
				return err
			}
			mu.Lock()
			rep.Read++
			n := rep.Read
			mu.Unlock()
			if opts.Progress != nil {
				opts.Progress(Progress{Phase: "read", Done: n})
			}
			return nil
		})
		return nil
	})
	if werr := g.Wait(); err == nil {
		err = werr
	}
	if err != nil {
		return fmt.Errorf("check chunks: %w", err)
	}
	return nil
}
